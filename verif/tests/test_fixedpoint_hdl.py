"""The fixed-point blocks of ``hdl/fixedpoint.py`` against ``golden/fixedpoint.py`` (Amaranth simulation).

Boundaries (``INT32_MIN·INT32_MIN``, exact halves of both signs at every shift 0..31, the int32 extremes), random
values, exhaustive sweeps of 8-bit shapes, and random ``en`` stalls.
"""

import gc

import numpy as np
import pytest
from amaranth import Module, Signal, signed, unsigned

from int8attn.golden.fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    rounding_divide_by_pot,
    saturating_shift_left,
    srdhm,
    wrap32,
)
from int8attn.hdl.fixedpoint import (
    RoundingDivideByPot,
    SaturatingRoundingDoublingHighMul,
    ShiftLeft,
    clamp,
    saturated,
    saturation_test,
    shape_bounds,
)
from int8attn.verif.sim import simulate

EDGES = [INT32_MIN, INT32_MIN + 1, -(1 << 30) - 1, -(1 << 30), -(1 << 30) + 1, -2, -1, 0, 1, 2,
         (1 << 30) - 1, 1 << 30, (1 << 30) + 1, INT32_MAX - 1, INT32_MAX]


def run(dut, operands: dict[str, np.ndarray], enables: np.ndarray | None = None) -> np.ndarray:
    """Apply operand set ``k`` until an enabled clock edge takes it; return ``o`` for each operand set.

    ``en`` on cycle ``c`` is ``enables[c % len(enables)]``, high once every operand set is in.
    """
    count = len(next(iter(operands.values())))
    enables = np.ones(count, dtype=bool) if enables is None else enables
    results: list[int] = []

    async def bench(ctx):
        issued = cycle = 0
        pipeline = [False] * dut.latency
        while len(results) < count:
            enable = bool(enables[cycle % len(enables)]) if issued < count else True
            cycle += 1
            ctx.set(dut.en, enable)
            if issued < count:
                for name, values in operands.items():
                    ctx.set(getattr(dut, name), int(values[issued]))
            await ctx.tick()
            if enable:
                pipeline = [issued < count] + pipeline[:-1]
                issued += enable
                if pipeline[-1]:
                    results.append(ctx.get(dut.o))

    simulate(dut, bench, deadline=1e-8 * (4 * count + 100))
    return np.array(results, dtype=np.int64)


def assert_equal(got: np.ndarray, expected: np.ndarray, operands: dict[str, np.ndarray]) -> None:
    wrong = np.flatnonzero(got != expected)
    if len(wrong):
        k = wrong[0]
        inputs = ", ".join(f"{name}={int(values[k])}" for name, values in operands.items())
        pytest.fail(f"{len(wrong)} of {len(got)} results differ; first: {inputs}: rtl {got[k]}, golden {expected[k]}")


def exact_halves(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Operand pairs whose product is an odd multiple of 2^30: SRDHM's ties, of both signs."""
    split = rng.integers(0, 31, count)
    a_odd = rng.integers(0, 1 << 14, count) * 2 + 1
    b_odd = rng.integers(0, 1 << 14, count) * 2 + 1
    a = wrap32((a_odd << split) * rng.choice([-1, 1], count))
    b = wrap32((b_odd << (30 - split)) * rng.choice([-1, 1], count))
    return a, b


def test_srdhm_matches_golden():
    rng = np.random.default_rng(1)
    grid = np.array(EDGES, dtype=np.int64)
    a_ties, b_ties = exact_halves(rng, 600)
    a = np.concatenate([np.repeat(grid, len(grid)), a_ties, rng.integers(INT32_MIN, INT32_MAX + 1, 800)])
    b = np.concatenate([np.tile(grid, len(grid)), b_ties, rng.integers(INT32_MIN, INT32_MAX + 1, 800)])
    assert np.any(a * b == 1 << 62)
    assert np.count_nonzero(a * b % (1 << 31) == 1 << 30) > 500
    operands = {"a": a, "b": b}
    assert_equal(run(SaturatingRoundingDoublingHighMul(), operands), srdhm(a, b), operands)


def test_srdhm_with_an_unsigned_multiplier_matches_golden():
    rng = np.random.default_rng(2)
    dut = SaturatingRoundingDoublingHighMul(b_shape=unsigned(31))
    assert not dut.saturates
    a_ties, b_ties = exact_halves(rng, 300)
    a = np.concatenate([np.repeat(EDGES, 4), a_ties, rng.integers(INT32_MIN, INT32_MAX + 1, 300)])
    b = np.concatenate([np.tile([0, 1, 1 << 30, INT32_MAX], len(EDGES)), np.abs(b_ties),
                        rng.integers(0, INT32_MAX + 1, 300)])
    operands = {"a": a, "b": b}
    assert_equal(run(dut, operands), srdhm(a, b), operands)


def test_rdbpot_ties_at_every_exponent_match_golden():
    exponent = np.repeat(np.arange(32), 24)
    k = np.tile(np.arange(-6, 6), 64)
    offset = np.tile(np.repeat([-1, 0, 1, 0], 6), 32)
    ties = (k << exponent) + ((1 << exponent) >> 1) + offset
    x = np.clip(np.concatenate([ties, np.repeat(EDGES, 32)]), INT32_MIN, INT32_MAX)
    exponent = np.concatenate([exponent, np.tile(np.arange(32), len(EDGES))])
    rng = np.random.default_rng(3)
    x = np.concatenate([x, rng.integers(INT32_MIN, INT32_MAX + 1, 600)])
    exponent = np.concatenate([exponent, rng.integers(0, 32, 600)])
    operands = {"x": x, "exponent": exponent}
    assert_equal(run(RoundingDivideByPot(), operands), rounding_divide_by_pot(x, exponent), operands)


def test_rdbpot_is_exhaustively_exact_on_int8():
    x, exponent = (v.ravel() for v in np.meshgrid(np.arange(-128, 128), np.arange(8)))
    operands = {"x": x, "exponent": exponent}
    assert_equal(run(RoundingDivideByPot(signed(8), 7), operands), rounding_divide_by_pot(x, exponent), operands)


@pytest.mark.parametrize("saturate", [False, True], ids=["wrapping", "saturating"])
def test_shift_left_matches_golden(saturate: bool):
    rng = np.random.default_rng(4)
    exponent = np.concatenate([np.repeat(np.arange(32), len(EDGES) + 6), rng.integers(0, 32, 500)])
    boundaries = [[(1 << (31 - e)) + d for d in (-1, 0)] + [-(1 << (31 - e)) + d for d in (-1, 0, 1, 2)]
                  for e in range(32)]
    x = np.concatenate([np.array([EDGES + b for b in boundaries]).ravel(), rng.integers(INT32_MIN, INT32_MAX + 1, 500)])
    x = np.clip(x, INT32_MIN, INT32_MAX)
    expected = saturating_shift_left(x, exponent) if saturate else wrap32(x << exponent)
    operands = {"x": x, "exponent": exponent}
    assert_equal(run(ShiftLeft(saturate=saturate), operands), expected, operands)


@pytest.mark.parametrize("saturate", [False, True], ids=["wrapping", "saturating"])
def test_shift_left_is_exhaustively_exact_on_int8(saturate: bool):
    x, exponent = (v.ravel() for v in np.meshgrid(np.arange(-128, 128), np.arange(8)))
    shifted = x << exponent
    expected = np.clip(shifted, -128, 127) if saturate else (shifted + 128) % 256 - 128
    operands = {"x": x, "exponent": exponent}
    assert_equal(run(ShiftLeft(signed(8), 7, saturate=saturate), operands), expected, operands)


def test_blocks_hold_while_disabled():
    rng = np.random.default_rng(5)
    a, b = rng.integers(INT32_MIN, INT32_MAX + 1, (2, 300))
    enables = rng.random(300) < 0.6
    operands = {"a": a, "b": b}
    assert_equal(run(SaturatingRoundingDoublingHighMul(), operands, enables), srdhm(a, b), operands)
    x, exponent = rng.integers(INT32_MIN, INT32_MAX + 1, 300), rng.integers(0, 32, 300)
    operands = {"x": x, "exponent": exponent}
    assert_equal(run(RoundingDivideByPot(), operands, enables), rounding_divide_by_pot(x, exponent), operands)


@pytest.mark.parametrize(("shape", "low", "high"), [(signed(8), -3, 5), (unsigned(4), 0, 9), (signed(4), -8, 2)])
def test_clamp_is_exhaustively_exact(shape, low, high):
    value = Signal(shape)
    result = Signal(signed(8))
    m = Module()
    m.d.comb += result.eq(clamp(value, low, high))
    shape_low, shape_high = shape_bounds(shape)
    got: list[tuple[int, int]] = []

    async def bench(ctx):
        for v in range(shape_low, shape_high + 1):
            ctx.set(value, v)
            got.append((v, ctx.get(result)))

    simulate(m, bench)
    assert got == [(v, min(max(v, low), high)) for v in range(shape_low, shape_high + 1)]


@pytest.mark.parametrize(("width", "bits"), [(10, 4), (6, 6), (3, 5), (9, 1)])
def test_saturation_is_exhaustively_exact(width: int, bits: int):
    value = Signal(signed(width))
    result = Signal(signed(bits))
    m = Module()
    m.d.comb += result.eq(saturated(*saturation_test(value, bits), bits))
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    got: list[tuple[int, int]] = []

    async def bench(ctx):
        for v in range(-(1 << (width - 1)), 1 << (width - 1)):
            ctx.set(value, v)
            got.append((v, ctx.get(result)))

    simulate(m, bench)
    assert got == [(v, min(max(v, low), high)) for v, _ in got]


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_constructors_name_the_bad_argument():
    with pytest.raises(ValueError, match="b_shape"):
        SaturatingRoundingDoublingHighMul(b_shape=unsigned(32))
    with pytest.raises(ValueError, match="a_shape"):
        SaturatingRoundingDoublingHighMul(a_shape=signed(33))
    with pytest.raises(ValueError, match="max_exponent"):
        RoundingDivideByPot(max_exponent=32)
    with pytest.raises(ValueError, match="max_exponent"):
        ShiftLeft(max_exponent=-1)
    with pytest.raises(ValueError, match="low"):
        clamp(Signal(8), 5, 4)
    with pytest.raises(ValueError, match="bits"):
        saturation_test(Signal(signed(8)), 0)
    with pytest.raises(ValueError, match="signed"):
        saturation_test(Signal(8), 4)
    gc.collect()
