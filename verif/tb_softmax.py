"""cocotb testbench of the emitted softmax unit: every output bit against the golden model.

Run through :func:`int8attn.verif.runner.run`, which passes the parameters as ``INT8ATTN_*`` environment variables
(:class:`~int8attn.verif.runner.TBSettings`). The tests are ``check`` (random and directed rows under random stalls),
``cycle`` (exact latency and throughput, :func:`~int8attn.verif.testbench.cycle_test`) and ``framing`` (the sticky
``error`` output on mis-framed rows).
"""

from collections.abc import Iterator

import cocotb
import numpy as np
from cocotb.handle import HierarchyObject
from cocotb.triggers import ReadOnly, RisingEdge

from int8attn.golden.stimuli import directed_int8_rows, mixed_int8_rows
from int8attn.verif.runner import TBSettings
from int8attn.verif.testbench import StreamTB, check_test, cycle_test


def random_rows(tb: StreamTB, count: int) -> Iterator[tuple[str, np.ndarray]]:
    return mixed_int8_rows(count, tb.inputs["i"].elements, tb.rng)


def directed_rows(tb: StreamTB) -> Iterator[tuple[str, np.ndarray]]:
    return directed_int8_rows(tb.inputs["i"].elements, tb.rng, rom_depth=tb.model.rom_depth)


@cocotb.test()
async def check(dut: HierarchyObject) -> None:
    """Random and directed rows, random idle input cycles and output backpressure; every bit checked."""
    await check_test(dut, random_rows, directed_rows)


@cocotb.test()
async def cycle(dut: HierarchyObject) -> None:
    """No stalls, at least ``CYCLE_TEST_ROWS`` back-to-back rows: exact latency, gap-free output, measured
    throughput."""
    await cycle_test(dut, random_rows)


def send_misframed(tb: StreamTB, row: np.ndarray, last_at: int | None) -> None:
    """Queue the beats of ``row`` up to beat ``last_at``, which carries ``last``; all of them, none with ``last``, for
    ``None``."""
    lanes = tb.source.layout.lanes
    end = tb.inputs["i"].beats_per_frame if last_at is None else last_at + 1
    for beat in range(end):
        tb.source.send_beat(row[beat * lanes:(beat + 1) * lanes], beat == last_at)


@cocotb.test()
async def framing(dut: HierarchyObject) -> None:
    """Early and missing ``last``: sticky ``error``, the row dropped, later rows intact; reset clears ``error``."""
    settings = TBSettings.from_env()
    tb = StreamTB(dut, settings, "framing", idle=settings.idle, backpressure=settings.backpressure)
    stall = max(settings.idle, settings.backpressure)
    n, beats = tb.inputs["i"].elements, tb.inputs["i"].beats_per_frame
    error = tb.error
    if error is None:
        raise ValueError("the sidecar lists no 1-bit error output")

    def row(count: int = 1) -> np.ndarray:
        return tb.rng.integers(-128, 128, (count, n)).astype(np.int8)

    cases: list[tuple[str, int | None]] = [(f"no last on beat {beats - 1}", None)]
    if beats >= 2:
        early = int(tb.rng.integers(beats - 1))
        cases.insert(0, (f"early last on beat {early}", early))
    for case, last_at in cases:
        await tb.reset()
        await ReadOnly()
        if dut.error.value != 0:
            tb.errors.append(f"{case}: error output is {dut.error.value} right after reset")
        await RisingEdge(tb.clk)
        tb.send(row(), f"{case}: row before")
        await tb.drain(stall)
        if error.since is not None:
            tb.errors.append(f"{case}: error high at cycle {error.since} before any framing error")
        start = len(tb.monitors["i"].beats)
        if last_at is None:
            send_misframed(tb, row()[0], None)
            send_misframed(tb, row()[0], 0)
            bad = start + beats - 1
        else:
            send_misframed(tb, row()[0], last_at)
            bad = start + last_at
        tb.send(row(2), f"{case}: rows after")
        await tb.drain(stall)
        accepted = tb.monitors["i"].beats
        if len(accepted) <= bad:
            tb.errors.append(f"{case}: the mis-framed beat was never accepted")
        elif error.since is None:
            tb.errors.append(f"{case}: error output never went high")
        elif error.since < accepted[bad].cycle:
            tb.errors.append(f"{case}: error high at cycle {error.since}, before the mis-framed beat was "
                             f"accepted at cycle {accepted[bad].cycle}")
    await tb.reset()
    tb.send(row(), "row after the final reset")
    await tb.drain(stall)
    tb.error_is_low()
    tb.finish()
