"""cocotb testbench of the emitted embedding unit: every output bit against the golden model.

Run through :func:`int8attn.verif.runner.run`. The tests are ``check`` (random and directed token sequences under
random idle input cycles and output backpressure) and ``cycle`` (exact latency from each sequence's first token,
``lanes`` output elements per cycle), the shared bodies of :mod:`int8attn.verif.testbench`. A token's row takes
``E / P`` output beats, so tokens are taken at ``P / E`` per cycle.
"""

from collections.abc import Iterator

import cocotb
import numpy as np
from cocotb.handle import HierarchyObject

from int8attn.verif.testbench import StreamTB, check_test, cycle_test


def random_sequences(tb: StreamTB, count: int) -> Iterator[tuple[str, np.ndarray]]:
    config = tb.model.config
    for _ in range(count):
        yield "uniform", tb.rng.integers(0, config.vocab, config.seq_len)


def directed_sequences(tb: StreamTB) -> Iterator[tuple[str, np.ndarray]]:
    """Every token id in order, then in descending order, then each id alone (a constant sequence); the encoder
    stack's too."""
    config = tb.model.config
    count = -(-config.vocab // config.seq_len)
    every = np.resize(np.arange(config.vocab), count * config.seq_len).reshape(count, config.seq_len)
    for index, sequence in enumerate(every):
        yield f"every id {index}", sequence
        yield f"every id {index} reversed", sequence[::-1].copy()
    for token in range(config.vocab):
        yield f"id {token} alone", np.full(config.seq_len, token)


@cocotb.test()
async def check(dut: HierarchyObject) -> None:
    """Random and directed token sequences, random idle input cycles and output backpressure; every bit checked."""
    await check_test(dut, random_sequences, directed_sequences)


@cocotb.test()
async def cycle(dut: HierarchyObject) -> None:
    """No stalls, at least ``CYCLE_TEST_ROWS`` back-to-back sequences: exact latency, gap-free output, ``lanes``
    elements per cycle."""
    await cycle_test(dut, random_sequences)
