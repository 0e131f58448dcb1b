"""The block-RAM :class:`~int8attn.hdl.streams.Queue` and the LUT-RAM :class:`~int8attn.hdl.streams.ShallowQueue`
in Amaranth simulation: order, no loss or duplication, their flags, full rate when both sides are always willing, and
the write-to-read latency they state; the register slice :class:`~int8attn.hdl.streams.StreamBuffer` likewise."""

import gc

import numpy as np
import pytest

from int8attn.hdl.streams import Queue, ShallowQueue, StreamBuffer
from int8attn.verif.sim import simulate

WIDTH = 12


def exchange(queue: Queue | ShallowQueue, words: list[int], write_chance: float, read_chance: float,
             seed: int, ports: list[tuple[int, int, int]] | None = None) -> tuple[list[int], list[int]]:
    """Write ``words`` and read them back with random willingness on both sides (writing only while ``w_rdy``, as
    :class:`ShallowQueue` asks); the words read and, per cycle, the number of words inside the queue (written and
    not read). ``ports``, if given, receives each cycle's ``w_rdy``, ``r_rdy`` and ``r_data`` (0 while not
    ``r_rdy``)."""
    rng = np.random.default_rng(seed)
    got: list[int] = []
    inside: list[int] = []

    async def bench(ctx):
        pending = list(words)
        count = 0
        while len(got) < len(words):
            write = bool(pending) and rng.random() < write_chance and bool(ctx.get(queue.w_rdy))
            read = rng.random() < read_chance
            ctx.set(queue.w_en, write)
            ctx.set(queue.w_data, pending[0] if write else 0)
            ctx.set(queue.r_en, read)
            _, _, w_rdy, r_rdy, r_data = await ctx.tick().sample(queue.w_rdy, queue.r_rdy, queue.r_data)
            if write and w_rdy:
                pending.pop(0)
                count += 1
            if read and r_rdy:
                got.append(r_data)
                count -= 1
            inside.append(count)
            if ports is not None:
                ports.append((w_rdy, r_rdy, r_data if r_rdy else 0))
            assert len(inside) < 20 * len(words) + 100, "the queue stopped delivering"

    simulate(queue, bench)
    return got, inside


@pytest.mark.parametrize("target", ["generic", "xc7"])
@pytest.mark.parametrize("depth", [1, 3, 17])
@pytest.mark.parametrize(("write_chance", "read_chance"), [(1.0, 1.0), (0.9, 0.3), (0.3, 0.9), (0.6, 0.6)])
def test_words_leave_in_order_once(target: str, depth: int, write_chance: float, read_chance: float) -> None:
    """Through the SyncFIFO read-ahead stage (``generic``) and the ShallowQueue one (``xc7``, a LUT-RAM target)."""
    words = [int(w) for w in np.random.default_rng(depth).integers(0, 1 << WIDTH, 300)]
    queue = Queue(WIDTH, depth, target)
    got, inside = exchange(queue, words, write_chance, read_chance, seed=depth)
    assert got == words
    assert max(inside) <= depth + queue.read_ahead


@pytest.mark.parametrize("target", ["generic", "xc7"])
def test_full_rate_and_latency(target: str) -> None:
    """With both sides always willing one word passes per cycle after the first has taken :attr:`latency` cycles."""
    queue = Queue(WIDTH, 8, target)
    words = list(range(64))
    got, inside = exchange(queue, words, 1.0, 1.0, seed=0)
    assert got == words
    assert len(inside) == len(words) + queue.latency


@pytest.mark.parametrize("target", ["generic", "xc7"])
def test_w_rdy_drops_when_the_ram_is_full(target: str) -> None:
    queue = Queue(WIDTH, 4, target)
    got, inside = exchange(queue, list(range(40)), 1.0, 0.05, seed=1)
    assert got == list(range(40))
    assert max(inside) == 4 + queue.read_ahead


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="depth"):
        Queue(WIDTH, 0)
    gc.collect()


@pytest.mark.parametrize("count", ShallowQueue.COUNTS)
@pytest.mark.parametrize("depth", [1, 2, 5, 18])
@pytest.mark.parametrize(("write_chance", "read_chance"), [(1.0, 1.0), (0.9, 0.3), (0.3, 0.9), (0.6, 0.6)])
def test_shallow_queue_keeps_order_and_fills_to_its_depth(count: str, depth: int, write_chance: float,
                                                          read_chance: float) -> None:
    words = [int(w) for w in np.random.default_rng(depth).integers(0, 1 << WIDTH, 300)]
    got, inside = exchange(ShallowQueue(WIDTH, depth, count), words, write_chance, read_chance, seed=depth)
    assert got == words
    assert max(inside) <= depth
    if write_chance > read_chance:
        assert max(inside) == depth


@pytest.mark.parametrize("depth", [1, 2, 3, 33])
@pytest.mark.parametrize(("write_chance", "read_chance"), [(0.9, 0.3), (0.3, 0.9), (0.6, 0.6)])
def test_shallow_queue_counts_give_the_same_ports_every_cycle(depth: int, write_chance: float,
                                                              read_chance: float) -> None:
    """The binary count's flags are the thermometer code's on every cycle: the same traffic sees the same ``w_rdy``,
    ``r_rdy`` and ``r_data``."""
    words = [int(w) for w in np.random.default_rng(depth).integers(0, 1 << WIDTH, 300)]
    traces = {}
    for count in ShallowQueue.COUNTS:
        traces[count] = []
        exchange(ShallowQueue(WIDTH, depth, count), words, write_chance, read_chance, seed=depth,
                 ports=traces[count])
    assert traces["binary"] == traces["thermometer"]


@pytest.mark.parametrize("count", ShallowQueue.COUNTS)
def test_shallow_queue_full_rate_and_latency(count: str) -> None:
    queue = ShallowQueue(WIDTH, 4, count)
    words = list(range(64))
    got, inside = exchange(queue, words, 1.0, 1.0, seed=0)
    assert got == words
    assert len(inside) == len(words) + queue.latency


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_shallow_queue_refuses_bad_sizes() -> None:
    with pytest.raises(ValueError, match="depth"):
        ShallowQueue(WIDTH, 0)
    with pytest.raises(ValueError, match="count"):
        ShallowQueue(WIDTH, 4, "gray")
    gc.collect()


@pytest.mark.parametrize(("send_chance", "take_chance"), [(1.0, 1.0), (0.9, 0.3), (0.3, 0.9), (0.7, 0.7)])
def test_stream_buffer_keeps_order_rate_and_registers(send_chance: float, take_chance: float) -> None:
    """:class:`StreamBuffer`: every beat once and in order under random willingness; at full willingness a beat every
    cycle, :attr:`~StreamBuffer.LATENCY` cycles later; ``i.ready`` and ``o.valid`` never follow ``o.ready`` or
    ``i.valid`` within a cycle (both are registers)."""
    buffer = StreamBuffer(WIDTH)
    words = [int(w) for w in np.random.default_rng(7).integers(0, 1 << WIDTH, 300)]
    rng = np.random.default_rng(int(send_chance * 10 + take_chance * 100))
    got: list[int] = []
    cycles = 0

    async def bench(ctx):
        nonlocal cycles
        pending = list(words)
        while len(got) < len(words):
            send = bool(pending) and rng.random() < send_chance
            take = rng.random() < take_chance
            ready, valid = ctx.get(buffer.i.ready), ctx.get(buffer.o.valid)
            ctx.set(buffer.i.valid, send)
            ctx.set(buffer.i.payload, pending[0] if send else 0)
            ctx.set(buffer.o.ready, take)
            assert (ctx.get(buffer.i.ready), ctx.get(buffer.o.valid)) == (ready, valid)
            _, _, i_ready, o_valid, o_payload = await ctx.tick().sample(buffer.i.ready, buffer.o.valid,
                                                                         buffer.o.payload)
            if send and i_ready:
                pending.pop(0)
            if take and o_valid:
                got.append(o_payload)
            cycles += 1
            assert cycles < 20 * len(words), "the buffer stopped delivering"

    simulate(buffer, bench)
    assert got == words
    if send_chance == take_chance == 1.0:
        assert cycles == len(words) + StreamBuffer.LATENCY
