"""cocotb testbench of the emitted matmul unit: every output bit against the golden model.

Run through :func:`int8attn.verif.runner.run`. The tests are ``check`` (random and directed operand pairs under
random idle cycles on both inputs and output backpressure) and ``cycle`` (exact latency from each frame's first LHS
beat, one output beat every ``k / simd`` cycles, ``m · (n / pe) · (k / simd)`` cycles a frame), the shared bodies of
:mod:`int8attn.verif.testbench`.
"""

from collections.abc import Iterator

import cocotb
import numpy as np
from cocotb.handle import HierarchyObject

from int8attn.verif.testbench import StreamTB, check_test, cycle_test


def _frame(tb: StreamTB, stream: str, kind: str) -> np.ndarray:
    size = tb.inputs[stream].elements
    if kind == "uniform":
        return tb.rng.integers(-128, 128, size).astype(np.int8)
    return np.clip(np.rint(tb.rng.normal(0, 30, size)), -128, 127).astype(np.int8)


def random_frames(tb: StreamTB, count: int) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    for index in range(count):
        kind = ("uniform", "normal")[index % 2]
        yield kind, {stream: _frame(tb, stream, kind) for stream in ("lhs", "rhs")}


def directed_frames(tb: StreamTB) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    config = tb.model.config
    sizes = {stream: tb.inputs[stream].elements for stream in ("lhs", "rhs")}
    points = {"lhs": config.lhs_zero_point, "rhs": config.rhs_zero_point}
    for lhs, rhs in ((-128, -128), (127, 127), (-128, 127), (127, -128), ("zero point", 127), (-128, "zero point")):
        values = {"lhs": lhs, "rhs": rhs}
        frames = {stream: np.full(sizes[stream], points[stream] if values[stream] == "zero point" else values[stream],
                                  dtype=np.int8) for stream in sizes}
        yield f"lhs {lhs}, rhs {rhs}", frames


@cocotb.test()
async def check(dut: HierarchyObject) -> None:
    """Random and directed operands, random idle input cycles and output backpressure; every bit checked."""
    await check_test(dut, random_frames, directed_frames)


@cocotb.test()
async def cycle(dut: HierarchyObject) -> None:
    """No stalls, at least ``CYCLE_TEST_ROWS`` back-to-back frames: exact latency, evenly spaced output beats, full
    rate."""
    await cycle_test(dut, random_frames)
