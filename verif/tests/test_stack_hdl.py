"""The encoder stack's stream plumbing in Amaranth simulation: :class:`~int8attn.hdl.streams.LaneConverter` (split,
gather, both through the gcd) and :class:`~int8attn.hdl.streams.StreamFork` keep every element, its order and the
``last`` flags under random stalls; a link's timing model (:meth:`~int8attn.hdl.stack.Link.timing`) gives the cycles
the simulated link takes and offers its beats; the skip-queue rule."""

import gc
import math

import numpy as np
import pytest
from amaranth import ClockDomain, Module

from int8attn.golden.stack_unit import StackConfig
from int8attn.hdl.stack import EncoderStack, Link, folded_input, recorded, slice_timing
from int8attn.hdl.streams import LaneBeat, LaneConverter, StreamBuffer, StreamFork
from int8attn.verif.sim import simulate

BITS = 8


def beats_of(elements: np.ndarray, lanes: int, frame: int) -> list[tuple[list[int], int]]:
    """``(lanes' values, last)`` of each beat of ``elements`` in frames of ``frame`` elements."""
    return [(elements[start:start + lanes].tolist(), int((start + lanes) % frame == 0))
            for start in range(0, len(elements), lanes)]


def payload(lanes: list[int], last: int) -> dict:
    return {"data": lanes, "last": last}


@pytest.mark.parametrize(("in_lanes", "out_lanes"), [(8, 1), (1, 8), (4, 6), (6, 4), (2, 8)])
def test_converter_keeps_elements_and_frames(in_lanes: int, out_lanes: int) -> None:
    """Random elements in frames of ``2·lcm`` elements, random idle cycles on the input and stalls on the output."""
    frame = 2 * math.lcm(in_lanes, out_lanes)
    rng = np.random.default_rng(in_lanes * 10 + out_lanes)
    elements = rng.integers(-128, 128, 6 * frame)
    dut = LaneConverter(in_lanes, out_lanes, BITS)
    received: list[tuple[list[int], int]] = []

    async def source(ctx):
        for lanes, last in beats_of(elements, in_lanes, frame):
            while rng.random() < 0.3:
                await ctx.tick()
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, payload(lanes, last))
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        while len(received) < len(elements) // out_lanes:
            ready = rng.random() < 0.7
            ctx.set(dut.o.ready, ready)
            _, _, valid, data = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid and ready:
                received.append(([int(value) for value in data.data], int(data.last)))

    simulate(dut, source, sink, deadline=1e-3)
    assert received == beats_of(elements, out_lanes, frame)


def _offered_to_folded_consumer(dut, in_lanes: int, offers: list[int], takes: int, beats: int,
                                folds: int) -> tuple[list[int], list[int]]:
    """Simulate ``dut`` (``i`` of ``in_lanes`` lanes, ``o``) with a beat offered on ``i`` at each cycle of ``offers``
    (or the cycle after the previous one is taken) and ``o`` taken as a folded engine takes rows (a row's ``beats``
    beats only in its first fold, ``folds`` folds) until ``takes`` beats are out: the cycles ``i`` took each beat
    and those ``o`` gave each."""
    accepted: list[int] = []
    taken: list[int] = []

    async def source(ctx):
        cycle = 0
        for beat in range(len(offers)):
            while cycle < offers[beat]:
                await ctx.tick()
                cycle += 1
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, payload([beat % 100] * in_lanes, 0))
            while True:
                _, _, ready = await ctx.tick().sample(dut.i.ready)
                if ready:
                    accepted.append(cycle)
                cycle += 1
                if ready:
                    break
            ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        cycle, beat, free = 0, 0, 0
        while len(taken) < takes:
            ready = cycle >= free
            ctx.set(dut.o.ready, ready)
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            if valid and ready:
                taken.append(cycle)
                beat += 1
                if beat == beats:
                    beat, free = 0, cycle + (folds - 1) * beats + 1
            cycle += 1

    simulate(dut, source, consumer, deadline=1e-3)
    return accepted, taken


@pytest.mark.parametrize(("in_lanes", "out_lanes", "folds"), [(8, 1, 1), (1, 4, 3), (4, 6, 2), (2, 2, 4)])
def test_link_timing_model_matches_simulation(in_lanes: int, out_lanes: int, folds: int) -> None:
    """Beats offered at irregular cycles to a link whose consumer takes rows as a folded engine does (a row's beats
    only in its first fold, ``folds`` folds): the model's cycles of every take equal the simulated ones."""
    frame = math.lcm(in_lanes, out_lanes) * 2
    beats = frame // out_lanes
    rng = np.random.default_rng(folds)
    link = Link(in_lanes, out_lanes, before=8 if in_lanes > math.gcd(in_lanes, out_lanes) else 0,
                after=16 if folds > 1 else 0, target="generic")
    count = 8 * frame // in_lanes
    offers = np.cumsum(rng.integers(1, 4, count)).tolist()
    _, taken = _offered_to_folded_consumer(link, in_lanes, offers, count * in_lanes // out_lanes, beats, folds)
    model, model_taken = recorded(folded_input(beats, folds))
    feed = link.timing(model)
    for offer in offers:
        feed(offer)
    assert model_taken == taken


@pytest.mark.parametrize("folds", [1, 3])
def test_slice_timing_model_matches_simulation(folds: int) -> None:
    """Beats offered at irregular cycles to a register slice in front of a consumer that takes rows as a folded
    engine does: the model's cycles of every beat taken by the slice and by the consumer equal the simulated ones."""
    beats, count = 4, 24
    rng = np.random.default_rng(folds)
    offers = np.cumsum(rng.integers(1, 4, count)).tolist()
    accepted, taken = _offered_to_folded_consumer(StreamBuffer(LaneBeat(1, BITS)), 1, offers, count, beats, folds)
    model, model_taken = recorded(folded_input(beats, folds))
    take = slice_timing(model)
    assert [take(offer) for offer in offers] == accepted
    assert model_taken == taken


def test_fork_passes_each_beat_to_both_outputs_once() -> None:
    rng = np.random.default_rng(5)
    dut = StreamFork(LaneBeat(2, BITS), 2)
    values = rng.integers(-128, 128, (40, 2)).tolist()
    received: list[list] = [[], []]

    async def source(ctx):
        for lanes in values:
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, payload(lanes, 0))
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)

    def sink(index: int):
        async def bench(ctx):
            while len(received[index]) < len(values):
                ready = rng.random() < 0.6
                ctx.set(dut.o[index].ready, ready)
                _, _, valid, data = await ctx.tick().sample(dut.o[index].valid, dut.o[index].payload)
                if valid and ready:
                    received[index].append([int(value) for value in data.data])
        return bench

    top = Module()
    top.domains.sync = ClockDomain()
    top.submodules.fork = dut
    simulate(top, source, sink(0), sink(1), deadline=1e-4)
    assert received == [values, values]


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_skip_queues_hold_a_sequence_and_the_branch() -> None:
    """Each skip queue holds ``sequence_beats · (2 + ⌈L / C⌉)`` beats (module docstring of :mod:`int8attn.hdl.stack`),
    at least two sequences."""
    stack = EncoderStack(StackConfig(lanes=4))
    for block in stack.blocks:
        cycles = block.cycles_per_frame
        for name, taken in (("skip", "add1_taken"), ("skip1", "add2_taken")):
            latency = block.branch_latencies[taken]
            assert block.skip_depths[name] == block.sequence_beats * (2 + -(-latency // cycles))
            assert block.skip_depths[name] >= 2 * block.sequence_beats
    del stack, block
    gc.collect()
