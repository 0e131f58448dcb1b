"""The add unit's :class:`~int8attn.hdl.add.InputTerm` on every int8 input against TinyMind's
``multiplyByQuantizedMultiplier`` (Amaranth simulation, ``generic`` and ``xc7``, whose DSP products are behavioural),
and the embedding unit's constant product and its sticky error on a token id beyond the vocabulary."""

import numpy as np
import pytest
from amaranth import Module, Signal, unsigned

from int8attn.golden.add import tinymind_multiply_by_quantized_multiplier
from int8attn.golden.embedding_unit import EmbeddingConfig
from int8attn.hdl.add import InputTerm, saturation_bounds, term_exponent
from int8attn.hdl.embedding import Embedding, times_constant
from int8attn.verif.sim import simulate, stream_get, stream_put

EVERY_INPUT = np.arange(-128, 128)
TERMS = {  # zero point, left shift, multiplier, TinyMind shift
    "tinymind add1 a": (-128, 20, 1546956583, 4),
    "power of two, no shift": (-9, 20, 1 << 30, 0),
    "no left shift, left-shifted term": (0, 0, 12345, -3),
    "saturates both ways": (0, 23, (1 << 31) - 1, -31),
    "saturates above only": (-128, 23, 1 << 30, -1),
    "saturates below only": (127, 23, 987654321, -1),
    "exactly INT32_MIN": (0, 23, 1 << 30, -1),
    "zero multiplier": (3, 20, 0, 2),
    "largest right shift": (5, 20, (1 << 31) - 1, 31),
    "small multiplier, mid shifts": (100, 10, 99999, -15),
}


@pytest.mark.parametrize("target", ["generic", "xc7"])
@pytest.mark.parametrize("name", TERMS)
def test_input_term_matches_tinymind_on_every_input(name: str, target: str) -> None:
    zero_point, left_shift, multiplier, shift = TERMS[name]
    term = InputTerm(zero_point=zero_point, left_shift=left_shift, multiplier=multiplier, shift=shift, target=target)
    outputs = []

    async def testbench(ctx) -> None:
        for value in [*EVERY_INPUT, *[0] * term.latency]:
            ctx.set(term.x, int(value))
            await ctx.tick()
            outputs.append(ctx.get(term.o))

    simulate(term, testbench)
    expected = tinymind_multiply_by_quantized_multiplier((EVERY_INPUT - zero_point) << left_shift, multiplier, shift)
    got = np.array(outputs[term.latency - 1:term.latency - 1 + EVERY_INPUT.size])
    np.testing.assert_array_equal(got, expected)


def test_terms_cover_the_saturation_cases() -> None:
    bounds = {name: saturation_bounds(term_exponent(left_shift, shift))
              for name, (_, left_shift, _, shift) in TERMS.items()}
    centred = {name: (-128 - zp, 127 - zp) for name, (zp, *_) in TERMS.items()}
    assert any(centred[name][0] < low and centred[name][1] > high for name, (low, high) in bounds.items())
    assert any(centred[name][0] >= low and centred[name][1] > high for name, (low, high) in bounds.items())
    assert any(centred[name][0] < low and centred[name][1] <= high for name, (low, high) in bounds.items())


@pytest.mark.parametrize("constant", [1, 2, 3, 6, 7, 12, 64, 255])
def test_times_constant(constant: int) -> None:
    m = Module()
    value = Signal(unsigned(6))
    product = Signal(16)
    m.d.comb += product.eq(times_constant(value, constant))
    results = []

    async def testbench(ctx) -> None:
        for number in range(64):
            ctx.set(value, number)
            results.append(ctx.get(product))

    simulate(m, testbench)
    assert results == [number * constant for number in range(64)]


def test_token_beyond_the_vocabulary_raises_error() -> None:
    """vocab 10 in 4-bit ids: ids 10..15 raise the sticky ``error``; the rows of valid ids come out meanwhile."""
    config = EmbeddingConfig(vocab=10, embed_dim=4, lanes=4, seq_len=2)
    dut = Embedding(config)
    flags = []

    async def testbench(ctx) -> None:
        for token, last in ((3, 0), (9, 1)):
            await stream_put(ctx, dut.i, {"data": [token], "last": last})
        flags.append(ctx.get(dut.error))
        await stream_put(ctx, dut.i, {"data": [12], "last": 0})
        await ctx.tick()
        flags.append(ctx.get(dut.error))

    rows = []

    async def sink(ctx) -> None:
        for _ in range(2):
            payload = await stream_get(ctx, dut.o)
            rows.append([int(value) for value in payload.data])

    simulate(dut, testbench, sink)
    assert flags == [0, 1]
    assert rows == config.layers.embedding.table[[3, 9]].tolist()
