"""The requantizer's golden model against gemmlowp's and TFLite's definitions and TFLite's and TinyMind's outputs."""

import json
import math
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from int8attn.golden.fixedpoint import INT32_MAX, INT32_MIN
from int8attn.golden.params import ConfigError
from int8attn.golden.requant import (
    RequantConfig,
    RequantModel,
    activation_range,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    quantize_multiplier_tinymind,
)

SHARED_VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors"
TFLITE_FC = SHARED_VECTORS / "tflite_fully_connected_int8"
TINYMIND_STACK = SHARED_VECTORS / "tinymind_encoder_stack.npz"


# Definitions, written from gemmlowp's and TFLite's source in Python integers and fractions

def wrap32_definition(value: int) -> int:
    return (value + (1 << 31)) % (1 << 32) - (1 << 31)


def c_divide(numerator: int, denominator: int) -> int:
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator > 0) else -quotient


def half_away_from_zero(value: Fraction) -> int:
    magnitude = int(abs(value) + Fraction(1, 2))
    return magnitude if value >= 0 else -magnitude


def srdhm_definition(a: int, b: int) -> int:
    """gemmlowp ``SaturatingRoundingDoublingHighMul(int32_t, int32_t)``."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = 1 << 30 if ab >= 0 else 1 - (1 << 30)
    return c_divide(ab + nudge, 1 << 31)


def rdbpot_definition(x: int, exponent: int) -> int:
    """gemmlowp ``RoundingDivideByPOT``: the exact quotient rounded half away from zero."""
    return half_away_from_zero(Fraction(x, 1 << exponent))


def mbqm_definition(acc: int, multiplier: int, shift: int) -> int:
    """TFLite ``MultiplyByQuantizedMultiplier`` (double rounding) with int32 ``acc * (1 << left_shift)``."""
    left_shift, right_shift = max(shift, 0), max(-shift, 0)
    return rdbpot_definition(srdhm_definition(wrap32_definition(acc * (1 << left_shift)), multiplier), right_shift)


def frexp_definition(real: float) -> tuple[Fraction, int]:
    """``real = mantissa · 2^exponent`` with ``mantissa`` in [1/2, 1), exactly."""
    value = Fraction(real)
    exponent = value.numerator.bit_length() - value.denominator.bit_length()
    while value >= Fraction(2) ** exponent:
        exponent += 1
    while value < Fraction(2) ** (exponent - 1):
        exponent -= 1
    return value / Fraction(2) ** exponent, exponent


def rounded_mantissa(real: float) -> tuple[int, int]:
    mantissa, exponent = frexp_definition(real)
    q_fixed = half_away_from_zero(mantissa * (1 << 31))
    if q_fixed == 1 << 31:
        return q_fixed // 2, exponent + 1
    return q_fixed, exponent


def quantize_multiplier_definition(real: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier``."""
    if real == 0:
        return 0, 0
    q_fixed, exponent = rounded_mantissa(real)
    return (0, 0) if exponent < -31 else (q_fixed, exponent)


def quantize_multiplier_tinymind_definition(real: float) -> tuple[int, int]:
    """TinyMind ``quantizeMultiplier`` (``cpp/qaffine.hpp``): right shift, nothing flushed."""
    if real == 0:
        return 0, 0
    q_fixed, exponent = rounded_mantissa(real)
    return q_fixed, -exponent


def relu6_max_definition(output_bits: int, zero_point: int, scale: float) -> int:
    """``min(qmax, zp + std::round(6.0f / scale))`` with the float32 quotient."""
    quotient = Fraction(float(np.float32(6) / np.float32(scale)))
    return min((1 << (output_bits - 1)) - 1, zero_point + half_away_from_zero(quotient))


def int32_values(rng: np.random.Generator, count: int) -> list[int]:
    return rng.integers(INT32_MIN, INT32_MAX, count, endpoint=True).tolist()


# MultiplyByQuantizedMultiplier

def test_srdhm_saturates_int32_min_squared():
    result = multiply_by_quantized_multiplier(INT32_MIN, INT32_MIN, 0)
    assert result == INT32_MAX == mbqm_definition(INT32_MIN, INT32_MIN, 0)


def tie_operands(exponent: int) -> list[tuple[int, int]]:
    """``(acc, multiplier)`` pairs whose SRDHM is ``±odd · 2^(exponent − 1)``, both signs, and their neighbours."""
    half = 1 << (exponent - 1)
    ties = [sign * odd * half for odd in (1, 3, 5, 2047, (1 << 20) + 1) for sign in (1, -1)
            if odd * half <= 1 << 30]
    pairs = [(2 * tie, 1 << 30) for tie in ties if INT32_MIN <= 2 * tie <= INT32_MAX]
    pairs += [(1 << 30, INT32_MAX)] if 1 << 30 in ties else []
    return pairs + [(acc + step, multiplier) for acc, multiplier in pairs for step in (-2, 2)
                    if INT32_MIN <= acc + step <= INT32_MAX]


@pytest.mark.parametrize("exponent", range(1, 32))
def test_right_shift_ties_round_half_away_from_zero(exponent):
    pairs = tie_operands(exponent)
    highs = [srdhm_definition(acc, multiplier) for acc, multiplier in pairs]
    ties = [high for high in highs if high % (1 << exponent) == 1 << (exponent - 1)]
    assert any(tie > 0 for tie in ties) and any(tie < 0 for tie in ties)
    acc, multiplier = np.array(pairs).T
    result = multiply_by_quantized_multiplier(acc, multiplier, -exponent).tolist()
    assert result == [half_away_from_zero(Fraction(high, 1 << exponent)) for high in highs]
    assert result == [mbqm_definition(a, m, -exponent) for a, m in pairs]


def test_shift_zero_passes_srdhm_through():
    rng = np.random.default_rng(0)
    pairs = [(1, 1 << 30), (-1, 1 << 30), (3, 1 << 30), (-3, 1 << 30)] + list(zip(
        int32_values(rng, 200), rng.integers(0, INT32_MAX, 200, endpoint=True).tolist(), strict=True))
    acc, multiplier = np.array(pairs).T
    assert multiply_by_quantized_multiplier(acc, multiplier, 0).tolist() == [srdhm_definition(*p) for p in pairs]


@pytest.mark.parametrize("shift", range(1, 32))
def test_left_shift_wraps_to_int32(shift):
    rng = np.random.default_rng(shift)
    edge = 1 << (31 - shift)
    accs = [INT32_MIN, INT32_MAX, 1, -1, 0, edge, edge - 1, -edge, -edge - 1, 3 * edge + 5] + int32_values(rng, 100)
    accs = [acc for acc in accs if INT32_MIN <= acc <= INT32_MAX]
    assert any(wrap32_definition(acc << shift) != acc << shift for acc in accs)
    multipliers = [INT32_MAX, 1 << 30, 0, 1] + rng.integers(0, INT32_MAX, 20, endpoint=True).tolist()
    acc, multiplier = (axis.ravel() for axis in np.meshgrid(accs, multipliers))
    expected = [mbqm_definition(a, m, shift) for a, m in zip(acc.tolist(), multiplier.tolist(), strict=True)]
    assert multiply_by_quantized_multiplier(acc, multiplier, shift).tolist() == expected


def test_random_operands_at_every_shift():
    rng = np.random.default_rng(7)
    acc = np.array(int32_values(rng, 150) + [INT32_MIN, INT32_MAX, 0, 1, -1])
    multiplier = rng.integers(0, INT32_MAX, acc.size, endpoint=True)
    for shift in range(-31, 32):
        expected = [mbqm_definition(a, m, shift) for a, m in zip(acc.tolist(), multiplier.tolist(), strict=True)]
        assert multiply_by_quantized_multiplier(acc, multiplier, shift).tolist() == expected


def test_shift_broadcasts_per_channel():
    rng = np.random.default_rng(3)
    shifts = np.arange(-31, 31)
    multipliers = rng.integers(0, INT32_MAX, shifts.size, endpoint=True)
    acc = rng.integers(INT32_MIN, INT32_MAX, (5, shifts.size), endpoint=True)
    result = multiply_by_quantized_multiplier(acc, multipliers, shifts)
    expected = [[mbqm_definition(int(a), int(m), int(s)) for a, m, s in zip(row, multipliers, shifts, strict=True)]
                for row in acc]
    assert result.tolist() == expected


# QuantizeMultiplier

def quantizer_reals() -> list[float]:
    powers = [math.ldexp(1.0, k) for k in range(-45, 36)]
    below_one = 1 - 2.0 ** -40
    round_up = [math.ldexp(mantissa, k) for k in (-40, -33, -32, -31, -10, 0, 29, 30)
                for mantissa in (below_one, (2 ** 31 - 0.5) / 2 ** 31, (2 ** 31 - 0.5 - 2 ** -20) / 2 ** 31,
                                 (2 ** 30 + 0.5) / 2 ** 31)]
    tiny = [2.0 ** -33, 1e-10, 0.75 * 2.0 ** -32, 5e-324, 1e-300, 2.3e-10, 3.5e-10]
    large = [1.5 * 2.0 ** 29, 0.999 * 2.0 ** 30, 1e12, 1e300, 60.0, 123456.789]
    randoms = np.exp2(np.random.default_rng(11).uniform(-40, 35, 2000)).tolist()
    return [0.0] + powers + round_up + tiny + large + randoms


def test_quantize_multiplier_matches_definition():
    reals = quantizer_reals()
    results = [quantize_multiplier(real) for real in reals]
    assert results == [quantize_multiplier_definition(real) for real in reals]
    renormalised = [math.ldexp(1 - 2.0 ** -40, k) for k in (-32, 0, 30)]
    assert [quantize_multiplier(real) for real in renormalised] == [(1 << 30, -31), (1 << 30, 1), (1 << 30, 31)]
    assert all(quantize_multiplier(real) == (0, 0) for real in reals if 0 < real < 2.0 ** -32.5)
    assert quantize_multiplier(2.0 ** -32) == (1 << 30, -31)
    assert max(shift for _, shift in results) > 31


def test_quantize_multiplier_tinymind_matches_definition():
    reals = quantizer_reals()
    results = [quantize_multiplier_tinymind(real) for real in reals]
    assert results == [quantize_multiplier_tinymind_definition(real) for real in reals]
    assert all(multiplier >= 1 << 30 and shift > 31 for real, (multiplier, shift) in zip(reals, results, strict=True)
               if 0 < real < 2.0 ** -33)
    for real, (multiplier, shift) in zip(reals, results, strict=True):
        tflite_multiplier, tflite_shift = quantize_multiplier(real)
        if tflite_multiplier:
            assert (multiplier, -shift) == (tflite_multiplier, tflite_shift)


@pytest.mark.parametrize("real", [-1.0, math.inf, math.nan])
@pytest.mark.parametrize("quantizer", [quantize_multiplier, quantize_multiplier_tinymind])
def test_quantizers_reject_negative_and_non_finite(quantizer, real):
    with pytest.raises(ValueError):
        quantizer(real)


# Multipliers from scales: float32 product per tensor (TFLite), double product per channel and for TinyMind

def float32_product_rule(input_scale: float, weight_scale: float, output_scale: float) -> float:
    return float(np.float32(input_scale) * np.float32(weight_scale)) / float(np.float32(output_scale))


def double_product_rule(input_scale: float, weight_scale: float, output_scale: float) -> float:
    return (float(np.float32(input_scale)) * float(np.float32(weight_scale))) / float(np.float32(output_scale))


def test_per_tensor_float32_product_and_per_channel_double_product():
    rng = np.random.default_rng(5)
    scales = rng.uniform(1e-3, 1e-1, (2000, 3)).astype(np.float32).tolist()
    differing = [scale for scale in scales
                 if quantize_multiplier_definition(float32_product_rule(*scale))
                 != quantize_multiplier_definition(double_product_rule(*scale))]
    assert len(differing) >= 10
    for input_scale, weight_scale, output_scale in differing[:10]:
        single = quantize_multiplier_definition(float32_product_rule(input_scale, weight_scale, output_scale))
        double = quantize_multiplier_definition(double_product_rule(input_scale, weight_scale, output_scale))
        common = {"channels": 4, "lanes": 2, "input_scale": input_scale, "output_scale": output_scale}
        per_tensor = RequantModel(RequantConfig(weight_scales=(weight_scale,), **common))
        per_channel = RequantModel(RequantConfig(weight_scales=(weight_scale,) * 4, **common))
        tinymind = RequantModel(RequantConfig(weight_scales=(weight_scale,), convention="tinymind", **common))
        assert not per_tensor.config.per_channel and per_channel.config.per_channel
        for model, (multiplier, shift) in ((per_tensor, single), (per_channel, double), (tinymind, double)):
            assert model.multipliers.tolist() == [multiplier] * 4 and model.shifts.tolist() == [shift] * 4


def test_per_channel_multipliers_follow_their_channel():
    weight_scales = tuple(np.geomspace(1e-4, 1.0, 16).astype(np.float32).tolist())
    model = RequantModel(RequantConfig(input_scale=0.02, weight_scales=weight_scales, output_scale=0.07))
    expected = [quantize_multiplier_definition(double_product_rule(0.02, scale, 0.07)) for scale in weight_scales]
    assert list(zip(model.multipliers.tolist(), model.shifts.tolist(), strict=True)) == expected


def test_tinymind_integer_shifts_are_right_shifts():
    config = RequantConfig(channels=2, lanes=1, multipliers=(1 << 30, 1 << 30), shifts=(5, -3), convention="tinymind")
    model = RequantModel(config)
    assert model.shifts.tolist() == [-5, 3] and config.real_multipliers() == ()
    acc = np.array([[1 << 12, 1 << 12]], dtype=np.int32)
    assert model(acc).tolist() == [[mbqm_definition(1 << 12, 1 << 30, -5), 127]]


# Activation ranges

RANGE_SCALES = [0.1, 0.05, 12.0, 4.0, 2.4, 0.0234, 1e-4, 3.0, 6.0, 24.0]


@pytest.mark.parametrize("output_bits", [8, 16])
@pytest.mark.parametrize("activation", ["none", "relu", "relu6"])
def test_activation_range(activation, output_bits):
    qmin, qmax = -(1 << (output_bits - 1)), (1 << (output_bits - 1)) - 1
    for zero_point in (qmin, -100, -1, 0, 5, 100, qmax):
        for scale in RANGE_SCALES:
            act_min, act_max = activation_range(activation, output_bits, zero_point, scale)
            config = RequantConfig(output_bits=output_bits, output_zero_point=zero_point, output_scale=scale,
                                   activation=activation)
            model = RequantModel(config)
            assert (model.act_min, model.act_max) == (act_min, act_max)
            assert act_min == (qmin if activation == "none" else max(qmin, zero_point))
            assert act_max == (relu6_max_definition(output_bits, zero_point, scale) if activation == "relu6" else qmax)
            y = model(np.array([[INT32_MIN, INT32_MAX, 0, -1] * 4], dtype=np.int32))
            assert y.dtype == model.output_dtype and y.min() >= act_min and y.max() <= act_max


def test_relu6_rounds_the_float32_quotient_half_away_from_zero():
    assert activation_range("relu6", 8, 0, 12.0) == (0, 1)
    assert activation_range("relu6", 8, 0, 4.0) == (0, 2)
    assert float(np.float32(6) / np.float32(2.4)) == 2.5 and 6 / float(np.float32(2.4)) < 2.5
    assert activation_range("relu6", 8, -128, 2.4) == (-128, -125)


def test_relu_needs_no_output_scale_and_relu6_does():
    config = RequantConfig(multipliers=(1 << 30,), shifts=(0,), output_zero_point=-3, activation="relu")
    assert RequantModel(config).act_min == -3 and config.output_scale is None
    with pytest.raises(ConfigError, match="output_scale"):
        RequantConfig(multipliers=(1 << 30,), shifts=(0,), activation="relu6")
    config = RequantConfig(multipliers=(1 << 30,), shifts=(0,), output_scale=0.05, activation="relu6")
    assert RequantModel(config).act_max == relu6_max_definition(8, 0, 0.05)
    with pytest.raises(ValueError, match="gelu"):
        activation_range("gelu", 8, 0, 0.05)


# The model against the definitions

@pytest.mark.parametrize("output_bits", [8, 16])
def test_model_matches_definition(output_bits):
    rng = np.random.default_rng(output_bits)
    channels = 24
    multipliers = tuple([INT32_MAX, 0, 1 << 30] + rng.integers(0, INT32_MAX, channels - 3, endpoint=True).tolist())
    shifts = tuple([0, 5, -31] + rng.integers(-31, 30, channels - 3, endpoint=True).tolist())
    zero_point = (1 << (output_bits - 1)) - 28
    config = RequantConfig(channels=channels, lanes=8, multipliers=multipliers, shifts=shifts,
                           output_zero_point=zero_point, output_bits=output_bits, act_min=-(1 << (output_bits - 1)) + 3)
    acc = np.concatenate([np.full((1, channels), INT32_MAX), np.full((1, channels), INT32_MIN),
                          rng.integers(INT32_MIN, INT32_MAX, (30, channels), endpoint=True),
                          rng.integers(-5000, 5000, (30, channels))]).astype(np.int32)
    y = RequantModel(config)(acc)
    assert y.dtype == (np.int8 if output_bits == 8 else np.int16) and y.shape == acc.shape
    low, high = config.act_min, (1 << (output_bits - 1)) - 1
    expected = [[min(high, max(low, wrap32_definition(mbqm_definition(int(a), m, s) + zero_point)))
                 for a, m, s in zip(row, multipliers, shifts, strict=True)] for row in acc]
    assert y.tolist() == expected
    assert wrap32_definition(mbqm_definition(INT32_MAX, INT32_MAX, 0) + zero_point) < 0


def test_check_rows():
    model = RequantModel(RequantConfig())
    with pytest.raises(ValueError, match="int32"):
        model(np.zeros((2, 16), dtype=np.int64))
    with pytest.raises(ValueError, match="shape"):
        model(np.zeros((2, 8), dtype=np.int32))
    with pytest.raises(ValueError, match="shape"):
        model(np.zeros(16, dtype=np.int32))
    assert model(np.zeros((0, 16), dtype=np.int32)).shape == (0, 16)


# TFLite's FULLY_CONNECTED reference kernel

def _tflite_cases() -> list:
    if not TFLITE_FC.with_suffix(".json").exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"TFLite vectors not found at {SHARED_VECTORS}"))]
    return json.loads(TFLITE_FC.with_suffix(".json").read_text())["cases"]


def fully_connected_accumulators(case: dict) -> tuple[np.ndarray, np.ndarray]:
    index = case["case"]
    with np.load(TFLITE_FC.with_suffix(".npz")) as archive:
        x = archive[f"case{index}_x"].astype(np.int64)
        w = archive[f"case{index}_w"].astype(np.int64)
        bias = archive[f"case{index}_bias"].astype(np.int64) if case["bias"] else np.zeros(len(w), dtype=np.int64)
        y = archive[f"case{index}_y"]
    acc = (x - case["input_zero_point"]) @ (w - case["weight_zero_point"]).T + bias
    assert acc.shape == (case["rows"], case["out_features"])
    assert INT32_MIN <= acc.min() and acc.max() <= INT32_MAX
    return acc.astype(np.int32), y


def fully_connected_config(case: dict, convention: str = "tflite") -> RequantConfig:
    weight_scales = case["weight_scale"] if case["per_channel"] else [case["weight_scale"]]
    return RequantConfig(channels=case["out_features"], lanes=1, input_scale=float(np.float32(case["input_scale"])),
                         weight_scales=tuple(float(np.float32(scale)) for scale in weight_scales),
                         output_scale=float(np.float32(case["output_scale"])),
                         output_zero_point=case["output_zero_point"], activation=case["activation"],
                         convention=convention)


@pytest.mark.parametrize("case", _tflite_cases(), ids=lambda case: f"case{case['case']}" if case else "absent")
def test_model_matches_tflite_fully_connected(case):
    acc, y = fully_connected_accumulators(case)
    config = fully_connected_config(case)
    assert config.per_channel == case["per_channel"]
    np.testing.assert_array_equal(RequantModel(config)(acc), y)


@pytest.mark.parametrize("case", _tflite_cases(), ids=lambda case: f"case{case['case']}" if case else "absent")
def test_double_product_differs_where_tflite_micro_does(case):
    """TFLite Micro's per-tensor multiplier is TinyMind's double product: both differ from TFLite equally often."""
    acc, y = fully_connected_accumulators(case)
    try:
        config = fully_connected_config(case, convention="tinymind")
    except ConfigError as error:
        assert "tinymind" in str(error) and np.min(case["weight_scale"]) * case["input_scale"] < 2.0 ** -32
        return
    differing = int((RequantModel(config)(acc) != y).sum())
    assert differing == (case["other_kernels_differing_elements"]["micro"] if not case["per_channel"] else 0)


def test_tflite_cases_cover_the_edges():
    cases = [case for case in _tflite_cases() if case]
    if not cases:
        pytest.skip(f"TFLite vectors not found at {SHARED_VECTORS}")
    shifts = np.concatenate([RequantModel(fully_connected_config(case)).shifts for case in cases])
    multipliers = np.concatenate([RequantModel(fully_connected_config(case)).multipliers for case in cases])
    assert shifts.min() == -31 and shifts.max() > 0 and (multipliers == 0).any()
    assert {case["activation"] for case in cases} == {"none", "relu", "relu6"}


# TinyMind's int8 encoder stack

REQUANTIZERS = ["ff1", "ff2", "q", "k", "v", "attn_output"]


def tinymind_requantizer(archive, block: int, name: str) -> tuple[str, np.ndarray, np.ndarray, tuple[float, ...]]:
    """Key prefix, accumulators, TinyMind's outputs and (input, weight, output) scales of one requantizer."""
    tensor = {key: archive[f"t.{key}"][:, block].astype(np.int64) for key in ("ln1", "ln2", "ff1", "probs", "v")}
    prefix = f"block{block}."
    scale = {key: float(archive[f"{prefix}scale.{key}"]) for key in ("q", "k", "v", "w_q", "w_k", "w_v", "w_ff1",
                                                                       "w_ff2")}
    scale |= {key: float(archive[f"{prefix}scale.{key}.scale"]) for key in ("ln1", "ln2", "ff1", "ff2", "attn")}
    if name in ("ff1", "ff2"):
        source = {"ff1": "ln2", "ff2": "ff1"}[name]
        weights = archive[f"{prefix}{name}.weights"].astype(np.int64)
        acc = (tensor[source] - archive[f"{prefix}{name}.input_zero_point"]) @ weights.T
        acc += archive[f"{prefix}{name}.biases"]
        output = archive[f"t.{name}_pre_relu" if name == "ff1" else "t.ff2"][:, block]
        return f"{prefix}{name}.requantizer.", acc, output, (scale[source], scale[f"w_{name}"], scale[name])
    if name == "attn_output":
        acc = (tensor["probs"] + 128) @ tensor["v"]
        return (f"{prefix}attn.output_requantizer.", acc, archive["t.attn"][:, block],
                (float(np.float32(1 / 256)), scale["v"], scale["attn"]))
    projection = "qkv".index(name)
    weights = archive[f"{prefix}attn.weights"][projection].astype(np.int64)
    acc = (tensor["ln1"] - archive[f"{prefix}attn.input_zero_point"]) @ weights
    acc += archive[f"{prefix}attn.biases"][projection]
    return (f"{prefix}attn.{name}_requantizer.", acc, archive[f"t.{name}"][:, block],
            (scale["ln1"], scale[f"w_{name}"], scale[name]))


@pytest.mark.skipif(not TINYMIND_STACK.exists(), reason=f"TinyMind vectors not found at {TINYMIND_STACK}")
@pytest.mark.parametrize("name", REQUANTIZERS)
@pytest.mark.parametrize("block", [0, 1])
def test_model_matches_tinymind_encoder_stack(block, name):
    with np.load(TINYMIND_STACK) as archive:
        prefix, acc, y, (input_scale, weight_scale, output_scale) = tinymind_requantizer(archive, block, name)
        stored = {key: int(archive[prefix + key]) for key in ("multiplier", "shift", "zero_point", "qmin", "qmax")}
    channels = acc.shape[-1]
    acc = acc.reshape(-1, channels)
    assert INT32_MIN <= acc.min() and acc.max() <= INT32_MAX
    real = double_product_rule(input_scale, weight_scale, output_scale)
    assert quantize_multiplier_tinymind(real) == (stored["multiplier"], stored["shift"])
    activation = "relu" if stored["qmin"] == stored["zero_point"] else "none"
    from_scales = RequantConfig(channels=channels, lanes=1, input_scale=input_scale, weight_scales=(weight_scale,),
                                output_scale=output_scale, output_zero_point=stored["zero_point"],
                                activation=activation, convention="tinymind")
    from_integers = RequantConfig(channels=channels, lanes=1, multipliers=(stored["multiplier"],),
                                  shifts=(stored["shift"],), output_zero_point=stored["zero_point"],
                                  act_min=stored["qmin"], act_max=stored["qmax"], convention="tinymind")
    for config in (from_scales, from_integers):
        np.testing.assert_array_equal(RequantModel(config)(acc.astype(np.int32)), y.reshape(-1, channels))


# Configuration

def test_defaults_are_valid():
    config = RequantConfig()
    assert (config.input_scale, config.weight_scales, config.output_scale) == (0.05, (0.01,), 0.1)
    assert config.multipliers is None and config.shifts is None and not config.per_channel
    assert (config.frame_elements, config.beats) == (16, 4)
    model = RequantModel(config)
    assert model.multipliers.shape == model.shifts.shape == (16,) and model.multipliers.dtype == np.int64
    assert (model.act_min, model.act_max, model.output_dtype, model.input_dtype) == (-128, 127, np.int8, np.int32)


ROUND_TRIP_CONFIGS = [
    RequantConfig(),
    RequantConfig(channels=8, lanes=8, weight_scales=tuple(np.linspace(0.001, 0.05, 8).tolist()), output_bits=16,
                  output_zero_point=-300, activation="relu6", output_scale=0.0037),
    RequantConfig(channels=4, lanes=2, multipliers=(1 << 30, 1, 0, INT32_MAX), shifts=(31, -30, 0, 4),
                  convention="tinymind", act_min=-20, act_max=90),
    RequantConfig(channels=3, lanes=3, multipliers=[1 << 30], shifts=[-31], activation="relu"),
]


@pytest.mark.parametrize("config", ROUND_TRIP_CONFIGS)
def test_as_dict_round_trips_through_json(config):
    data = json.loads(json.dumps(config.as_dict()))
    assert RequantConfig(**data) == config
    assert RequantConfig(**config.as_dict()) == config
    assert all(not isinstance(value, list) for value in vars(config).values())


def test_sequences_may_be_lists_or_arrays():
    assert RequantConfig(weight_scales=[0.01]) == RequantConfig(weight_scales=np.array([0.01]))
    assert RequantConfig(weight_scales=[0.01]).weight_scales == (0.01,)


BAD_CONFIGS = [
    ({"channels": 0}, "channels"),
    ({"channels": 4097}, "channels"),
    ({"channels": 16.0}, "channels"),
    ({"lanes": 0}, "lanes"),
    ({"lanes": 65, "channels": 130}, "lanes"),
    ({"lanes": 3}, "lanes"),
    ({"output_bits": 12}, "output_bits"),
    ({"output_bits": 32}, "output_bits"),
    ({"output_bits": 8.0}, "output_bits"),
    ({"output_zero_point": 128}, "output_zero_point"),
    ({"output_zero_point": -129}, "output_zero_point"),
    ({"output_zero_point": 40000, "output_bits": 16}, "output_zero_point"),
    ({"activation": "gelu"}, "activation"),
    ({"convention": "cmsis"}, "convention"),
    ({"multipliers": (1 << 31,), "shifts": (0,)}, "multipliers"),
    ({"multipliers": (-1,), "shifts": (0,)}, "multipliers"),
    ({"multipliers": (True,), "shifts": (0,)}, "multipliers"),
    ({"multipliers": (), "shifts": ()}, "multipliers"),
    ({"multipliers": (1 << 30,), "shifts": (31,)}, "shifts"),
    ({"multipliers": (1 << 30,), "shifts": (-32,)}, "shifts"),
    ({"multipliers": (1 << 30,), "shifts": (-31,), "convention": "tinymind"}, "shifts"),
    ({"multipliers": (1 << 30,)}, "shifts"),
    ({"shifts": (0,)}, "multipliers"),
    ({"multipliers": (1, 2), "shifts": (0, 0)}, "multipliers"),
    ({"multipliers": (1,) * 16, "shifts": (0,)}, "shifts"),
    ({"multipliers": (1,), "shifts": (0,), "input_scale": 0.05}, "input_scale"),
    ({"multipliers": (1,), "shifts": (0,), "weight_scales": (0.01,)}, "weight_scales"),
    ({"weight_scales": (0.01, 0.02)}, "weight_scales"),
    ({"weight_scales": ()}, "weight_scales"),
    ({"weight_scales": (0.01,) * 15 + (0.0,)}, "weight_scales"),
    ({"input_scale": 0.0}, "input_scale"),
    ({"input_scale": -0.05}, "input_scale"),
    ({"input_scale": math.inf}, "input_scale"),
    ({"input_scale": math.nan}, "input_scale"),
    ({"input_scale": 1e-50}, "input_scale"),
    ({"output_scale": 0.0}, "output_scale"),
    ({"output_scale": math.inf}, "output_scale"),
    ({"input_scale": 1e3, "weight_scales": (1e6,), "output_scale": 1e-3}, "weight_scales"),
    ({"input_scale": 1e30, "weight_scales": (1e30,)}, "weight_scales"),
    ({"input_scale": 1e-6, "weight_scales": (1e-6,), "output_scale": 1.0, "convention": "tinymind"}, "tinymind"),
    ({"activation": "relu6", "output_scale": 1e-12}, "output_scale"),
    ({"activation": "relu", "act_min": 0}, "act_min"),
    ({"activation": "relu6", "act_max": 0}, "act_max"),
    ({"act_min": 10, "act_max": 5}, "act_min"),
    ({"act_max": 200}, "act_max"),
    ({"act_min": -129}, "act_min"),
]


@pytest.mark.parametrize(("options", "name"), BAD_CONFIGS, ids=[f"{name}-{i}" for i, (_, name) in
                                                               enumerate(BAD_CONFIGS)])
def test_bad_parameters_raise_config_error_naming_them(options, name):
    with pytest.raises(ConfigError, match=re.escape(name)) as error:
        RequantConfig(**options)
    assert "\n" not in str(error.value) and "allowed" in str(error.value)


def test_tiny_multipliers_flush_in_tflite_only():
    options = {"input_scale": 1e-6, "weight_scales": (1e-6,), "output_scale": 1.0}
    model = RequantModel(RequantConfig(**options))
    assert model.multipliers.tolist() == [0] * 16 and model.shifts.tolist() == [0] * 16
    acc = np.array([[INT32_MAX, INT32_MIN] * 8], dtype=np.int32)
    assert model(acc).tolist() == [[0] * 16]
