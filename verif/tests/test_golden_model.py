"""The golden model against committed vectors, TFLite's own outputs, gemmlowp's definitions and float softmax."""

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from int8attn.cli import main
from int8attn.golden import SoftmaxConfig, SoftmaxModel
from int8attn.golden.fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    count_leading_zeros32,
    exp_on_negative_values,
    one_over_one_plus_x_for_x_in_0_1,
    quantize_multiplier_greater_than_one,
    rounding_divide_by_pot,
    srdhm,
)
from int8attn.golden.tinymind import llround
from int8attn.golden.vectors import CASES, INDEX, VECTORS_DIR, load_vectors, write_vectors

SHARED_VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors"
TFLITE = SHARED_VECTORS / "tflite_softmax_int8"
TINYMIND_STACK = SHARED_VECTORS / "tinymind_encoder_stack.npz"
WIDE_SUM = 512 << 19


def float_softmax(x: np.ndarray, config: SoftmaxConfig) -> np.ndarray:
    """Float64 softmax of int8 rows with TFLite's float32 ``β`` and ``s``, quantised to scale 1/256, zero point −128."""
    beta_scale = float(np.float32(config.beta)) * float(np.float32(config.input_scale))
    x = x.astype(np.float64)
    e = np.exp(beta_scale * (x - x.max(axis=1, keepdims=True)))
    return np.clip(np.rint(e / e.sum(axis=1, keepdims=True) * 256) - 128, -128, 127).astype(np.int64)


def config_id(config: SoftmaxConfig) -> str:
    return "_".join(f"{key}{value}" for key, value in config.as_dict().items() if key != "lanes")


def random_rows(rng: np.random.Generator, rows: int, n: int) -> np.ndarray:
    return rng.integers(-128, 128, (rows, n), dtype=np.int8)


# (a) committed golden vectors

COMMITTED = load_vectors()


@pytest.mark.parametrize("vectors", COMMITTED, ids=lambda vectors: config_id(vectors.config))
def test_model_reproduces_committed_vectors(vectors):
    y = SoftmaxModel(vectors.config)(vectors.x)
    assert y.dtype == vectors.y.dtype
    np.testing.assert_array_equal(y, vectors.y)


def test_committed_vectors_are_the_generators_and_small(tmp_path):
    assert [v.config for v in COMMITTED] == [case.config for case in CASES]
    assert sum(path.stat().st_size for path in VECTORS_DIR.iterdir()) < 1 << 20
    write_vectors(tmp_path)
    for fresh, committed in zip(load_vectors(tmp_path), COMMITTED, strict=True):
        np.testing.assert_array_equal(fresh.x, committed.x)
        np.testing.assert_array_equal(fresh.y, committed.y)
    assert (tmp_path / INDEX).read_text() == (VECTORS_DIR / INDEX).read_text()


# (b) TFLite's reference kernel

def _tflite_cases() -> list:
    if not TFLITE.with_suffix(".json").exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"TFLite vectors not found at {SHARED_VECTORS}"))]
    return json.loads(TFLITE.with_suffix(".json").read_text())["cases"]


@pytest.mark.parametrize("mode", ["tflite", "lut"], ids=["tflite", "lut-default-knobs"])
@pytest.mark.parametrize("case", _tflite_cases(), ids=lambda case: f"case{case['case']}" if case else "absent")
def test_model_matches_tflite(case, mode: str):
    config = SoftmaxConfig(n=case["n"], lanes=1, input_scale=float(np.float32(case["input_scale"])),
                           beta=float(np.float32(case["beta"])), input_zero_point=case["input_zero_point"], mode=mode)
    with np.load(TFLITE.with_suffix(".npz")) as archive:
        x, y = archive[f"case{case['case']}_x"], archive[f"case{case['case']}_y"]
    assert x.shape == (case["rows"], case["n"])
    np.testing.assert_array_equal(SoftmaxModel(config)(x), y)


# (c) gemmlowp primitives against their published definitions

def _c_divide(numerator: int, denominator: int) -> int:
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator > 0) else -quotient


def srdhm_definition(a: int, b: int) -> int:
    """gemmlowp ``SaturatingRoundingDoublingHighMul(int32_t, int32_t)``, line by line in Python integers."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = 1 << 30 if ab >= 0 else 1 - (1 << 30)
    return _c_divide(ab + nudge, 1 << 31)


def half_away_from_zero(value: Fraction) -> int:
    magnitude = int(abs(value) + Fraction(1, 2))
    return magnitude if value >= 0 else -magnitude


SRDHM_EDGES = [(INT32_MIN, INT32_MIN), (INT32_MIN, INT32_MAX), (INT32_MAX, INT32_MAX), (INT32_MIN, 1), (1, 1),
               (1 << 15, 1 << 15), (-(1 << 15), 1 << 15), (3 << 14, 1 << 15), (-(3 << 14), 1 << 15), (0, INT32_MIN)]


def test_srdhm_overflow_case_saturates():
    assert srdhm(INT32_MIN, INT32_MIN) == INT32_MAX == srdhm_definition(INT32_MIN, INT32_MIN)


def test_srdhm_matches_definition():
    rng = np.random.default_rng(1)
    pairs = SRDHM_EDGES + [tuple(map(int, pair)) for pair in rng.integers(INT32_MIN, INT32_MAX, (2000, 2))]
    a, b = np.array(pairs).T
    assert srdhm(a, b).tolist() == [srdhm_definition(x, y) for x, y in pairs]


@pytest.mark.parametrize("exponent", [1, 2, 3, 12, 31, 35, 40])
def test_rounding_divide_by_pot_rounds_half_away_from_zero(exponent):
    half = 1 << (exponent - 1)
    unit = 1 << exponent
    edges = [0, half, -half, unit + half, -(unit + half), half - 1, -(half - 1), half + 1, -(half + 1),
             INT32_MIN, INT32_MAX, 5 * unit + half, -(5 * unit + half)]
    randoms = np.random.default_rng(exponent).integers(-(1 << 45), 1 << 45, 500).tolist()
    x = edges + randoms
    expected = [half_away_from_zero(Fraction(value, unit)) for value in x]
    assert rounding_divide_by_pot(np.array(x), exponent).tolist() == expected


def test_exp_on_negative_values():
    assert exp_on_negative_values(0) == INT32_MAX
    a = np.concatenate([-np.arange(1, 32 << 26, 1 << 13), [-(1 << 31) + 1, -1, -(1 << 24), -(1 << 26)]])
    error = np.abs(exp_on_negative_values(a) - np.exp(a / 2.0 ** 26) * 2.0 ** 31)
    assert error.max() < 2.0 ** 10


def test_one_over_one_plus_x():
    assert one_over_one_plus_x_for_x_in_0_1(0) == INT32_MAX
    near_one = np.array([INT32_MAX, INT32_MAX - 1, INT32_MAX - (1 << 10)])
    expected = 2.0 ** 31 / (1 + near_one / 2.0 ** 31)
    assert np.abs(one_over_one_plus_x_for_x_in_0_1(near_one) - expected).max() < 16
    x = np.arange(0, INT32_MAX, 1 << 13)
    error = one_over_one_plus_x_for_x_in_0_1(x) - np.minimum(2.0 ** 31 / (1 + x / 2.0 ** 31), INT32_MAX)
    assert np.abs(error).max() < 16


def test_count_leading_zeros32():
    values = [0, 1, 2, 3, (1 << 19) - 1, 1 << 19, INT32_MAX, 1 << 31, (1 << 32) - 1, 1 << 32, 1 << 40, (1 << 62) - 1]
    assert count_leading_zeros32(np.array(values)).tolist() == [32 - value.bit_length() for value in values]


@pytest.mark.parametrize("real", [1.0, 1.5, 2.0 ** 20, 0.05 * 2 ** 26, 3355443.25, 2.0 ** 31 - 1, 123456789.123])
def test_quantize_multiplier_greater_than_one(real):
    multiplier, shift = quantize_multiplier_greater_than_one(real)
    assert 1 << 30 <= multiplier < 1 << 31 and shift >= 0
    assert abs(Fraction(multiplier) * Fraction(2) ** (shift - 31) - Fraction(real)) <= Fraction(2) ** (shift - 32)


# (d) wide sums: Σ ≥ 512 in Q12.19, past TFLite's int32

@pytest.mark.parametrize("input_scale", [0.05, 0.005])
@pytest.mark.parametrize("n", [512, 1024, 4096, 65536])
def test_wide_sums_within_one_lsb_of_float(n, input_scale):
    config = SoftmaxConfig(n=n, lanes=1, input_scale=input_scale)
    model = SoftmaxModel(config)
    rng = np.random.default_rng(n)
    equal = np.repeat(np.array([[-128], [0], [127]]), n, axis=1)
    top = rng.integers(-124, 128, (4, 1))
    narrow = top - rng.integers(0, 5, (4, n))
    x = np.concatenate([equal, narrow, rng.integers(-128, 128, (2, n))]).astype(np.int8)
    sums = model.row_sums(x)
    assert (sums[:3] >= WIDE_SUM).all() and (n < 1024 or (sums[3:7] >= WIDE_SUM).all())
    y = model(x)
    assert y.shape == x.shape and y.dtype == np.int8
    assert np.abs(y.astype(np.int64) - float_softmax(x, config)).max() <= 1


# (e) properties

PROPERTY_CONFIGS = [case.config for case in CASES] + [SoftmaxConfig(n=33, lanes=1, input_scale=0.3, beta=0.7)]


@pytest.mark.parametrize("config", PROPERTY_CONFIGS, ids=config_id)
def test_output_range_and_order(config):
    rng = np.random.default_rng(config.n)
    x = np.concatenate([random_rows(rng, 64, config.n), np.clip(rng.normal(0, 20, (64, config.n)), -128, 127)
                        .astype(np.int8)])
    model = SoftmaxModel(config)
    y = model(x)
    assert y.dtype == model.output_dtype and y.shape == x.shape
    assert y.min() >= model.output_zero_point and y.max() <= -model.output_zero_point - 1
    rows = np.arange(len(x))
    assert (y[rows, x.argmax(axis=1)] == y.max(axis=1)).all()
    order = np.argsort(x, axis=1, kind="stable")
    assert (np.diff(np.take_along_axis(y, order, axis=1).astype(np.int64), axis=1) >= 0).all()


@pytest.mark.parametrize("config", PROPERTY_CONFIGS, ids=config_id)
def test_permutation_equivariance(config):
    rng = np.random.default_rng(config.n + 1)
    x = random_rows(rng, 32, config.n)
    model = SoftmaxModel(config)
    permutation = rng.permutation(config.n)
    np.testing.assert_array_equal(model(x[:, permutation]), model(x)[:, permutation])


@pytest.mark.parametrize("config", PROPERTY_CONFIGS, ids=config_id)
def test_zero_point_and_offset_cancel(config):
    rng = np.random.default_rng(config.n + 2)
    x = rng.integers(-100, 100, (32, config.n), dtype=np.int8)
    y = SoftmaxModel(config)(x)
    for zero_point in (-128, 37, 127):
        shifted = SoftmaxConfig(**{**config.as_dict(), "input_zero_point": zero_point})
        np.testing.assert_array_equal(SoftmaxModel(shifted)(x), y)
    for offset in (-28, 27):
        np.testing.assert_array_equal(SoftmaxModel(config)((x + offset).astype(np.int8)), y)


# (f) malformed rows

@pytest.mark.parametrize("rows", [
    np.zeros((2, 64), dtype=np.float32),
    np.zeros((2, 64), dtype=np.int16),
    np.zeros((2, 64), dtype=np.uint8),
    np.zeros(64, dtype=np.int8),
    np.zeros((2, 2, 64), dtype=np.int8),
    np.zeros((2, 63), dtype=np.int8),
    np.zeros((2, 65), dtype=np.int8),
], ids=["float32", "int16", "uint8", "1-D", "3-D", "63 columns", "65 columns"])
def test_malformed_rows_raise_value_error(rows):
    with pytest.raises(ValueError):
        SoftmaxModel(SoftmaxConfig(n=64, lanes=4))(rows)


# (g) TinyMind's exp table: the C library's exp and llround, in buildQSoftmaxExpLUT's order

ISSUE_SCALE = 0.00030503457
ISSUE_ROW = [127, 102, 87, 90, 7]


def tinymind_lut_definition(input_scale: float) -> list[int]:
    """TinyMind's ``buildQSoftmaxExpLUT`` (``cpp/include/qcalibration.hpp``) line by line.

    ``exp_v = std::exp(double(idx − 255) · double(float input_scale))``, ``q = exp_v · double(1 << 30)``, clamped to
    ``[0, 2147483647]``, then ``llround(q)``: ``math.exp`` is the C library's ``exp``; ``llround`` is taken exactly,
    on the double as a Fraction.
    """
    scale = float(np.float32(input_scale))
    entries = []
    for index in range(256):
        q = math.exp(float(index - 255) * scale) * float(1 << 30)
        entries.append(half_away_from_zero(Fraction(min(max(q, 0.0), 2147483647.0))))
    return entries


def issue_model() -> SoftmaxModel:
    return SoftmaxModel(SoftmaxConfig(n=5, lanes=1, input_scale=ISSUE_SCALE, mode="tinymind"))


def test_tinymind_issue_row_matches_tinymind():
    """The issue's row at input scale 0.00030503457.

    The expected entry ``lut[230] = 1065584757`` and output ``[−76, −76, −77, −77, −78]`` are TinyMind's own (the
    reference kernel's) values, quoted from the issue. libm's correctly rounded ``exp(−25·s)`` times ``2^30`` is
    exactly ``1065584756.5`` (the exact value is ``1065584756.49999995``), which ``llround`` takes to ``…757``;
    numpy's ``np.exp`` returns the double one ulp below, which gave ``…756`` and ``[−76, −77, −77, −77, −78]``.
    """
    model = issue_model()
    assert model.lut[230] == 1065584757
    assert model(np.array([ISSUE_ROW], dtype=np.int8)).tolist() == [[-76, -76, -77, -77, -78]]


def test_tinymind_issue_row_through_cli(tmp_path, capsys):
    """The same row through ``int8attn golden softmax --mode tinymind``: TinyMind's output, as in the issue."""
    x, y = tmp_path / "x.npy", tmp_path / "y.npy"
    np.save(x, np.array(ISSUE_ROW, dtype=np.int8))
    assert main(["golden", "softmax", "--mode", "tinymind", "--n", "5", "--input-scale", str(ISSUE_SCALE),
                 "--in", str(x), "--out", str(y)]) == 0
    assert np.load(y).tolist() == [-76, -76, -77, -77, -78]
    assert "wrote" in capsys.readouterr().out


TINYMIND_SCALES = [ISSUE_SCALE, 2.0 ** -25, 1e-5, 0.001, 0.0029636596, 0.002219761, 0.05, 0.1, 0.25, 1.0, 4.0] + [
    float(scale) for scale in 10.0 ** np.random.default_rng(7).uniform(-5, 0.5, 400)]


def test_tinymind_lut_is_libm_exp_with_exact_llround():
    for scale in TINYMIND_SCALES:
        model = SoftmaxModel(SoftmaxConfig(n=1, lanes=1, input_scale=scale, mode="tinymind"))
        assert model.lut.tolist() == tinymind_lut_definition(scale), scale
        np.testing.assert_array_equal(model.exp_table, model.lut[::-1])


LLROUND_EDGES = [0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, math.nextafter(0.5, 0), -math.nextafter(0.5, 0),
                 math.nextafter(0.5, 1), math.nextafter(1.5, 0), 1065584756.5, math.nextafter(1065584756.5, 0),
                 2.0 ** 31 - 0.5, 2147483647.0, 2.0 ** 52 - 0.5, 2.0 ** 52 + 1, -(2.0 ** 52 + 1), 2.0 ** 53 - 1,
                 2.0 ** 60]


def test_llround_is_exact_half_away_from_zero():
    """``math.nextafter(0.5, 0) + 0.5`` and ``2^52 + 1 + 0.5`` round up in double: ``floor(x + 0.5)`` is not llround."""
    rng = np.random.default_rng(3)
    values = LLROUND_EDGES + [float(value) for value in rng.uniform(-(2.0 ** 32), 2.0 ** 32, 2000)]
    assert [llround(value) for value in values] == [half_away_from_zero(Fraction(value)) for value in values]


@pytest.mark.skipif(not TINYMIND_STACK.exists(), reason=f"TinyMind encoder vectors not found at {TINYMIND_STACK}")
@pytest.mark.parametrize("block", [0, 1])
def test_model_matches_tinymind_encoder_softmax(block: int):
    """TinyMind's own exp table and softmax step of each attention block of its int8 encoder-stack example."""
    with np.load(TINYMIND_STACK) as archive:
        prefix = f"block{block}."
        scale = float(archive[prefix + "scale.score"])
        lut = archive[prefix + "attn.softmax_exp_lut"]
        scores, probs = archive["t.scores"][:, block], archive["t.probs"][:, block]
        zero_point, qmin, qmax = (int(archive[prefix + "attn." + key]) for key in ("attn_zero_point", "attn_qmin",
                                                                                     "attn_qmax"))
    seq_len = scores.shape[-1]
    model = SoftmaxModel(SoftmaxConfig(n=seq_len, lanes=1, input_scale=scale, mode="tinymind"))
    assert (zero_point, qmin, qmax) == (model.output_zero_point, -128, 127)
    np.testing.assert_array_equal(model.lut, lut)
    np.testing.assert_array_equal(model(scores.reshape(-1, seq_len)), probs.reshape(-1, seq_len))


def tflite_quantize_multiplier_definition(real: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier`` for ``real > 1``: ``frexp``, ``TfLiteRound`` (``std::round``) taken exactly."""
    mantissa, shift = math.frexp(real)
    q_fixed = half_away_from_zero(Fraction(mantissa) * (1 << 31))
    if q_fixed == 1 << 31:
        return q_fixed // 2, shift + 1
    return q_fixed, shift


def test_quantize_multiplier_greater_than_one_rounds_as_tflite():
    """Ties of ``mantissa · 2^31``, their neighbours and the carry to ``2^31``: ``floor(x + 0.5)`` equals std::round.

    ``x = |mantissa| · 2^31`` is exact and lies in ``[2^30, 2^31)``; ``x + 0.5`` is exact below ``2^31``, and above it
    both roundings give ``2^31``.
    """
    ulp = 2.0 ** -53
    mantissas = [0.5, 0.5 + ulp, 1 - ulp, 1 - 2.0 ** -32, 1 - 2.0 ** -32 - ulp, 1 - 2.0 ** -32 + ulp,
                 0.75 + 2.0 ** -32, 0.75 + 2.0 ** -32 - ulp, 0.75 + 2.0 ** -32 + ulp, 0.5 + 2.0 ** -32]
    rng = np.random.default_rng(5)
    reals = [math.ldexp(m, e) for m in mantissas for e in (1, 7, 26, 31)] + [
        float(value) for value in rng.uniform(1, 2.0 ** 31 - 1, 2000)]
    assert [quantize_multiplier_greater_than_one(real) for real in reals] == [
        tflite_quantize_multiplier_definition(real) for real in reals]
