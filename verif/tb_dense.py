"""cocotb testbench of the emitted dense unit: every output bit against the golden model.

Run through :func:`int8attn.verif.runner.run`. The tests are ``check`` (random and directed int8 rows under random
idle input cycles and output backpressure) and ``cycle`` (exact latency from each row's last input beat, one output
beat every ``in_features / simd`` cycles, ``(out_features / pe) · (in_features / simd)`` cycles a row), the shared
bodies of :mod:`int8attn.verif.testbench`.
"""

from collections.abc import Iterator

import cocotb
import numpy as np
from cocotb.handle import HierarchyObject

from int8attn.golden.stimuli import directed_int8_rows, mixed_int8_rows
from int8attn.verif.testbench import StreamTB, check_test, cycle_test


def random_rows(tb: StreamTB, count: int) -> Iterator[tuple[str, np.ndarray]]:
    return mixed_int8_rows(count, tb.inputs["i"].elements, tb.rng)


def directed_rows(tb: StreamTB) -> Iterator[tuple[str, np.ndarray]]:
    n = tb.inputs["i"].elements
    yield "all at the input zero point", np.full(n, tb.model.input_zero_point, dtype=np.int8)
    yield from directed_int8_rows(n, tb.rng)


@cocotb.test()
async def check(dut: HierarchyObject) -> None:
    """Random and directed rows, random idle input cycles and output backpressure; every bit checked."""
    await check_test(dut, random_rows, directed_rows)


@cocotb.test()
async def cycle(dut: HierarchyObject) -> None:
    """No stalls, at least ``CYCLE_TEST_ROWS`` back-to-back rows: exact latency, evenly spaced output beats, full
    rate."""
    await cycle_test(dut, random_rows)
