"""cocotb testbench of the emitted add unit: every output bit against the golden model.

Run through :func:`int8attn.verif.runner.run`. The tests are ``check`` (random and directed operand pairs under
random idle cycles on both inputs and output backpressure) and ``cycle`` (exact latency from each frame's first
joined beat, ``lanes`` elements per cycle), the shared bodies of :mod:`int8attn.verif.testbench`. The unit works
beat by beat: its sidecar's ``latency_from`` is ``first``.
"""

from collections.abc import Iterator

import cocotb
import numpy as np
from cocotb.handle import HierarchyObject

from int8attn.verif.testbench import StreamTB, check_test, cycle_test

OPERANDS = ("a", "b")
EXTREMES = (-128, -127, -1, 0, 1, 126, 127)


def _frame(tb: StreamTB, kind: str) -> np.ndarray:
    size = tb.inputs["a"].elements
    if kind == "uniform":
        return tb.rng.integers(-128, 128, size).astype(np.int8)
    return np.clip(np.rint(tb.rng.normal(0, 40, size)), -128, 127).astype(np.int8)


def random_frames(tb: StreamTB, count: int) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    for index in range(count):
        kind = ("uniform", "normal")[index % 2]
        yield kind, {name: _frame(tb, kind) for name in OPERANDS}


def directed_frames(tb: StreamTB) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    """Each operand at its zero point and at the extremes (the terms' saturation and the sum's clamp), every pair of
    :data:`EXTREMES` laid along the frames, and ``a`` running through all 256 values against a random ``b``."""
    config = tb.model.config
    size = tb.inputs["a"].elements
    points = {"a": config.a_zero_point, "b": config.b_zero_point}
    for a, b in ((-128, -128), (127, 127), (-128, 127), (127, -128), ("zero point", 127), (-128, "zero point")):
        values = {"a": a, "b": b}
        yield f"a {a}, b {b}", {name: np.full(size, points[name] if values[name] == "zero point" else values[name],
                                              dtype=np.int8) for name in OPERANDS}
    pairs = np.array([(a, b) for a in EXTREMES for b in EXTREMES], dtype=np.int8)
    sweep = np.arange(-128, 128, dtype=np.int8)
    for label, a, b in (("extreme pairs", pairs[:, 0], pairs[:, 1]),
                        ("every a", sweep, tb.rng.integers(-128, 128, sweep.size).astype(np.int8))):
        count = -(-a.size // size)
        a, b = (np.resize(values, count * size).reshape(count, size) for values in (a, b))
        for index in range(count):
            yield f"{label} {index}", {"a": a[index], "b": b[index]}


@cocotb.test()
async def check(dut: HierarchyObject) -> None:
    """Random and directed operands, random idle input cycles and output backpressure; every bit checked."""
    await check_test(dut, random_frames, directed_frames)


@cocotb.test()
async def cycle(dut: HierarchyObject) -> None:
    """No stalls, at least ``CYCLE_TEST_ROWS`` back-to-back frames: exact latency, gap-free output, ``lanes`` elements
    per cycle."""
    await cycle_test(dut, random_frames)
