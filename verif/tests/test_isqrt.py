"""The integer square root block in Amaranth's simulator: ``⌊√(x·2^p)⌋`` exactly, pipelined and iterative, at the
edges of its widths (the layernorm's ``d·2^28`` up to 60 bits), with the sink stalling, and its latency."""

import math

import numpy as np
import pytest

from int8attn.hdl.isqrt import IntegerSqrt
from int8attn.verif.sim import simulate, stream_get, stream_monitor, stream_put

CASES = [(32, 28, True), (32, 28, False), (14, 28, True), (5, 0, True), (5, 0, False), (1, 0, True), (2, 1, False)]


def edge_values(width: int, prescale: int, rng: np.random.Generator) -> list[int]:
    """0, 1, the largest values, values whose radicand is a perfect square and one either side, random ones."""
    top = (1 << width) - 1
    roots = [1 << k for k in range((width + prescale) // 2)] + [math.isqrt(top << prescale)]
    squares = {(root * root) >> prescale for root in roots}
    values = {0, 1, top, top - 1} | {value + delta for value in squares for delta in (-1, 0, 1)}
    values |= {int(value) for value in rng.integers(0, top, 24, endpoint=True)}
    return sorted(value for value in values if 0 <= value <= top)


def monitors(dut: IntegerSqrt, accepted: list, delivered: list) -> tuple:
    """Background testbenches recording the transfers on ``i`` and ``o``."""
    async def inputs(ctx):
        await stream_monitor(ctx, dut.i, accepted)

    async def outputs(ctx):
        await stream_monitor(ctx, dut.o, delivered)

    return inputs, outputs


@pytest.mark.parametrize(("width", "prescale", "pipelined"), CASES)
def test_roots_are_exact(width: int, prescale: int, pipelined: bool) -> None:
    dut = IntegerSqrt(width, prescale, pipelined=pipelined)
    values = edge_values(width, prescale, np.random.default_rng(width))
    roots, accepted, delivered = [], [], []

    async def source(ctx):
        for value in values:
            await stream_put(ctx, dut.i, value)

    async def sink(ctx):
        for index in range(len(values)):
            if index % 3 == 2:
                await ctx.tick().repeat(2)
            roots.append(await stream_get(ctx, dut.o))

    simulate(dut, source, sink, deadline=1e-2, background=monitors(dut, accepted, delivered))
    assert roots == [math.isqrt(value << prescale) for value in values]
    assert dut.root_bits == (width + prescale + 1) // 2
    assert delivered[0][0] - accepted[0][0] == dut.latency


def test_full_rate_when_pipelined() -> None:
    dut = IntegerSqrt(14, 28, pipelined=True)
    values = list(range(0, 1 << 14, 331))
    accepted, delivered = [], []

    async def source(ctx):
        for value in values:
            await stream_put(ctx, dut.i, value)

    async def sink(ctx):
        ctx.set(dut.o.ready, 1)
        await ctx.tick().repeat(len(values) + dut.latency + 2)

    simulate(dut, source, sink, background=monitors(dut, accepted, delivered))
    assert [cycle for cycle, _ in accepted] == list(range(accepted[0][0], accepted[0][0] + len(values)))
    assert [cycle - dut.latency for cycle, _ in delivered] == [cycle for cycle, _ in accepted]
    assert [payload for _, payload in delivered] == [math.isqrt(value << 28) for value in values]

