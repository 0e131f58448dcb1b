"""The reciprocal unit against the golden model on boundary and random sums (Amaranth simulation), every method."""

import numpy as np
import pytest

from int8attn.golden import SoftmaxConfig, SoftmaxModel
from int8attn.hdl.reciprocal import Reciprocal
from int8attn.verif.sim import simulate, stream_get, stream_put

MIN_SUM_BITS = 20


def boundary_sums(sum_width: int, random_count: int = 1000) -> np.ndarray:
    """Every power of two in range with its neighbours, the extremes, and random sums."""
    low, high = 1 << (MIN_SUM_BITS - 1), (1 << sum_width) - 1
    edges = [value + delta for k in range(MIN_SUM_BITS - 1, sum_width + 1) for delta in (-1, 0, 1)
             for value in (1 << k,)]
    edges += [low, high, 3 << (sum_width - 2), (1 << 31) - 1, 1 << 31]
    rng = np.random.default_rng(sum_width)
    bits = rng.integers(MIN_SUM_BITS, sum_width + 1, random_count)
    randoms = [int(rng.integers(1 << (b - 1), 1 << b)) for b in bits]
    return np.array(sorted({s for s in edges + randoms if low <= s <= high}), dtype=np.int64)


def run(dut: Reciprocal, sums: np.ndarray) -> list[tuple[int, int]]:
    """Offer the sums back to back; collect ``(scale, shift)`` of each."""
    results: list[tuple[int, int]] = []

    async def source(ctx):
        for value in sums:
            await stream_put(ctx, dut.i, int(value))

    async def sink(ctx):
        for _ in sums:
            payload = await stream_get(ctx, dut.o)
            results.append((payload.scale, payload.shift))

    simulate(dut, source, sink)
    return results


@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "iterative"])
@pytest.mark.parametrize("sum_width", [20, 23, 30, 32, 33, 36])
def test_newton_reciprocal_matches_model(sum_width: int, pipelined: bool):
    check(sum_width, SoftmaxConfig(n=1, lanes=1), pipelined)


@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "iterative"])
@pytest.mark.parametrize("steps", [0, 1, 2])
def test_fewer_newton_steps_match_model(steps: int, pipelined: bool):
    check(30, SoftmaxConfig(n=1, lanes=1, mode="lut", reciprocal_steps=steps, output_bits=12), pipelined)


@pytest.mark.parametrize("bits", [1, 5, 12])
def test_reciprocal_table_matches_model(bits: int):
    check(33, SoftmaxConfig(n=1, lanes=1, mode="lut", reciprocal="lut", reciprocal_bits=bits, output_bits=4), True)


def check(sum_width: int, config: SoftmaxConfig, pipelined: bool) -> None:
    model = SoftmaxModel(config)
    sums = boundary_sums(sum_width)
    expected = model.reciprocal(sums)
    table = model.reciprocal_table if config.reciprocal == "lut" else None
    dut = Reciprocal(sum_width, MIN_SUM_BITS, config.output_bits, steps=config.reciprocal_steps, table=table,
                     pipelined=pipelined)
    got = run(dut, sums)
    mismatches = [(int(s), g, (int(es), int(eh))) for s, g, es, eh in
                  zip(sums, got, expected.scale, expected.shift, strict=True) if g != (es, eh)]
    assert not mismatches, f"{len(mismatches)} of {len(sums)} sums differ, first (sum, rtl, model): {mismatches[:3]}"
