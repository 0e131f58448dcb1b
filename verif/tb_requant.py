"""cocotb testbench of the emitted requantizer: every output bit against the golden model.

Run through :func:`int8attn.verif.runner.run`. The tests are ``check`` (random and directed int32 rows under random
idle input cycles and output backpressure) and ``cycle`` (exact latency and ``lanes`` elements per cycle), both the
shared bodies of :mod:`int8attn.verif.testbench`. The requantizer works beat by beat: its sidecar's ``latency_from`` is
``first``, so the latency counts from an input beat to its own output beat.
"""

from collections.abc import Iterator

import cocotb
import numpy as np
from cocotb.handle import HierarchyObject

from int8attn.golden.stimuli import directed_int32_rows, mixed_int32_rows
from int8attn.verif.testbench import StreamTB, check_test, cycle_test


def random_rows(tb: StreamTB, count: int) -> Iterator[tuple[str, np.ndarray]]:
    return mixed_int32_rows(count, tb.inputs["i"].elements, tb.rng)


def directed_rows(tb: StreamTB) -> Iterator[tuple[str, np.ndarray]]:
    return directed_int32_rows(tb.inputs["i"].elements, tb.rng)


@cocotb.test()
async def check(dut: HierarchyObject) -> None:
    """Random and directed int32 rows, random idle input cycles and output backpressure; every bit checked."""
    await check_test(dut, random_rows, directed_rows)


@cocotb.test()
async def cycle(dut: HierarchyObject) -> None:
    """No stalls, at least ``CYCLE_TEST_ROWS`` back-to-back rows: each beat ``latency_cycles`` after its input beat,
    gap-free output, ``lanes`` elements per cycle."""
    await cycle_test(dut, random_rows)
