"""cocotb testbench of the emitted attention unit: every output bit against the golden model.

Run through :func:`int8attn.verif.runner.run`. The tests are ``check`` (random and directed sequences under random
idle input cycles and output backpressure) and ``cycle`` (back-to-back sequences, no stalls: the first sequence's
latency exactly the sidecar's, the run within ``cycles_per_frame`` a sequence).
"""

from collections.abc import Iterator

import cocotb
import numpy as np
from cocotb.handle import HierarchyObject

from int8attn.golden.stimuli import directed_int8_rows, mixed_int8_rows
from int8attn.verif.testbench import StreamTB, check_test, sequence_cycle_test


def random_sequences(tb: StreamTB, count: int) -> Iterator[tuple[str, np.ndarray]]:
    return mixed_int8_rows(count, tb.inputs["i"].elements, tb.rng)


def directed_sequences(tb: StreamTB) -> Iterator[tuple[str, np.ndarray]]:
    return directed_int8_rows(tb.inputs["i"].elements, tb.rng)


@cocotb.test()
async def check(dut: HierarchyObject) -> None:
    """Random and directed sequences, random idle input cycles and output backpressure; every bit checked."""
    await check_test(dut, random_sequences, directed_sequences)


@cocotb.test()
async def cycle(dut: HierarchyObject) -> None:
    """No stalls, back-to-back sequences: the first sequence's latency exactly the sidecar's, the run within
    ``cycles_per_frame`` a sequence (:func:`~int8attn.verif.testbench.sequence_cycle_test`)."""
    await sequence_cycle_test(dut, random_sequences)
