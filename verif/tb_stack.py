"""cocotb testbench of the emitted encoder-stack unit: every output bit against the golden model.

Run through :func:`int8attn.verif.runner.run`. The tests are ``check`` (random and directed token sequences under
random idle input cycles and output backpressure) and ``cycle`` (back-to-back sequences, no stalls: the first
sequence's latency exactly the sidecar's, counted from its last token, and the run within ``cycles_per_frame`` a
sequence).
"""

from collections.abc import Iterator

import cocotb
import numpy as np
from cocotb.handle import HierarchyObject

from int8attn.verif.tb_embedding import directed_sequences
from int8attn.verif.testbench import StreamTB, check_test, sequence_cycle_test


def random_sequences(tb: StreamTB, count: int) -> Iterator[tuple[str, np.ndarray]]:
    """Uniform token ids, and every fourth sequence of two to four distinct ids (repeated tokens concentrate the
    attention and widen the activations)."""
    config = tb.model.config
    for index in range(count):
        if index % 4 == 3:
            ids = tb.rng.choice(config.vocab, size=min(int(tb.rng.integers(2, 5)), config.vocab), replace=False)
            yield "few ids", tb.rng.choice(ids, config.seq_len)
        else:
            yield "uniform", tb.rng.integers(0, config.vocab, config.seq_len)


@cocotb.test()
async def check(dut: HierarchyObject) -> None:
    """Random and directed token sequences, random idle input cycles and output backpressure; every bit checked."""
    await check_test(dut, random_sequences, directed_sequences)


@cocotb.test()
async def cycle(dut: HierarchyObject) -> None:
    """No stalls, back-to-back sequences: the first sequence's first output beat exactly ``latency_cycles`` after its
    last token, the run within ``cycles_per_frame`` a sequence
    (:func:`~int8attn.verif.testbench.sequence_cycle_test`)."""
    await sequence_cycle_test(dut, random_sequences)
