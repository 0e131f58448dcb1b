"""The HCCS golden model against a line-by-line transcription of aie4ml's kernel and the reference's formulas.

Transcribed from GitHub dimdano/aie4ml: ``softmax_i8::softmax_row`` in
``src/aie4ml/templates/nnet_utils/softmax/softmax.cpp`` (commit df87a20, line numbers below), ``OUT_SHIFT`` in
``softmax.h``, floor rounding and saturation from ``templates/firmware/variants/softmax/parameters.h.jinja``.
"""

import dataclasses

import numpy as np
import pytest

from int8attn.golden.hccs import HccsParams, hccs_softmax, validity_errors
from int8attn.golden.params import ConfigError
from int8attn.golden.stimuli import INT8_KINDS, int8_rows

VARIANTS = [(reciprocal, bits) for reciprocal in ("div", "clb") for bits in (8, 16)]
LENGTHS = (1, 2, 7, 32, 64, 100, 256)


# Transcription of the reference kernel in Python integers

def wrap(value: int, bits: int) -> int:
    """``value`` converted to a ``bits``-bit two's complement integer (C++20 integral conversion)."""
    half = 1 << (bits - 1)
    return (value + half) % (1 << bits) - half


def saturate(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def clb(value: int) -> int:
    """AIE ``unsigned clb(int a)``: leading 0s of a positive ``a``, leading 1s of a negative one."""
    bits = format(value & 0xFFFFFFFF, "032b")
    return len(bits) - len(bits.lstrip(bits[0]))


def c_divide(numerator: int, denominator: int) -> int:
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator > 0) else -quotient


def softmax_row_reference(row: list[int], b: int, s: int, dmax: int, use_clb: bool, inv_shift: int,
                          out_int16: bool) -> list[int]:
    """``softmax_i8<ConfigT>::softmax_row`` for one row; ``b``, ``s``, ``dmax`` as the kernel's int16/int8/uint8."""
    out_shift = 0 if out_int16 else inv_shift                 # softmax.h: OUT_SHIFT
    max_val = max(row)                                         # :30-34 aie::reduce_max(vmax), int8
    max_u = max_val & 0xFF                                     # :41 uint8 max_u = (uint8)max_val
    acc_sum = 0                                                # :39 aie::zeros<acc32, VEC>()
    scratch = []
    for x in row:
        xu = x & 0xFF                                          # :46 x.cast_to<uint8>()
        d = (max_u - xu) & 0xFF                                # :47 aie::sub(max_u_vec, xu), uint8 lanes
        d = min(d, dmax & 0xFF)                                # :48 aie::min(d, (uint8)DMAX)
        d8 = wrap(d, 8)                                        # :50 d.cast_to<int8>()
        acc = wrap(b, 16) + d8 * wrap(-s, 8)                   # :52-53 acc = B; acc = aie::mac(acc, d8, -S)
        acc_sum = wrap(acc_sum + acc, 32)                      # :55 acc_sum = aie::add(acc_sum, acc)
        scratch.append(saturate(acc, -(1 << 15), (1 << 15) - 1))  # :56 acc.to_vector<int16>(0), saturate
    total = acc_sum                                            # :60 int32_t sum = aie::reduce_add(...)
    if use_clb:
        k = 31 - clb(total)                                    # :64-65 int k = 31 - clb(sum)
        if out_int16:
            inv_q0 = 32767 >> k                                # :67
        elif inv_shift >= k:
            inv_q0 = wrap(255 << (inv_shift - k), 32)          # :69 255 << (INV_SHIFT - k)
        else:
            inv_q0 = 255 >> (k - inv_shift)                    # :69 negative count: the model's documented extension
    elif out_int16:
        inv_q0 = c_divide(32767, total)                        # :73 32767 / sum
    else:
        inv_q0 = c_divide(wrap(255 << inv_shift, 32), total)   # :75 (255 << INV_SHIFT) / sum
    inv16 = wrap(inv_q0, 16)                                   # :79 aie::broadcast<int16, VEC>(inv_q0)
    low, high = (-(1 << 15), (1 << 15) - 1) if out_int16 else (0, 255)
    # :85-86 prod = aie::mul(v, inv_vec) (acc32); prod.to_vector<out_t>(OUT_SHIFT), floor rounding, saturation
    return [saturate(wrap(score * inv16, 32) >> out_shift, low, high) for score in scratch]


def reference(rows: np.ndarray, params: HccsParams) -> np.ndarray:
    out = [softmax_row_reference([int(v) for v in row], params.b, params.s, params.dmax, params.reciprocal == "clb",
                                 params.inv_shift, params.output_bits == 16) for row in rows]
    return np.array(out, dtype=np.int64).reshape(rows.shape)


# The formulas, for directed rows

def scores_of(row: list[int], params: HccsParams) -> list[int]:
    top = max(row)
    return [params.b - params.s * min(top - x, params.dmax) for x in row]


def unsaturated_codes(scores: list[int], params: HccsParams) -> list[int]:
    total = sum(scores)
    k = total.bit_length() - 1
    if params.output_bits == 8:
        if params.reciprocal == "div":
            inv = (255 << params.inv_shift) // total
        else:
            inv = 255 << (params.inv_shift - k) if params.inv_shift >= k else 255 >> (k - params.inv_shift)
        return [(score * inv) >> params.inv_shift for score in scores]
    inv = 32767 // total if params.reciprocal == "div" else 32767 >> k
    return [score * inv for score in scores]


def formula_codes(row: list[int], params: HccsParams) -> list[int]:
    high = 255 if params.output_bits == 8 else 32767
    return [min(code, high) for code in unsaturated_codes(scores_of(row, params), params)]


def check_directed(row: list[int], params: HccsParams, sum_bits: int | None = None) -> None:
    got = hccs_softmax(np.array(row, dtype=np.int8), params, sum_bits)
    assert got.dtype == params.output_dtype
    assert got.tolist() == formula_codes(row, params)


# Random parameters near the validity limits

def random_params(rng: np.random.Generator, n: int, reciprocal: str, bits: int, compatible: bool) -> HccsParams:
    min_floor = -(-256 // n)
    b_max = 32767 // n if compatible else 32767
    while True:
        s = int(rng.integers(0, 128))
        dmax = int(rng.integers(0, 128))
        if s * dmax > b_max - min_floor:
            dmax = (b_max - min_floor) // s if s else dmax
            dmax = min(dmax, 127)
        room = b_max - s * dmax
        style = rng.integers(0, 3)
        if style == 0:
            floor_score = min_floor + int(rng.integers(0, 3))
        elif style == 1:
            floor_score = room
        else:
            floor_score = int(rng.integers(min_floor, room + 1))
        floor_score = min(max(floor_score, min_floor), room)
        inv_shift = int(rng.integers(1, 24)) if rng.integers(0, 2) else 15
        params = HccsParams(floor_score + s * dmax, s, dmax, reciprocal, inv_shift, bits)
        if not validity_errors(params, n, compatible):
            return params


def random_rows(rng: np.random.Generator, n: int, params: HccsParams, count: int) -> np.ndarray:
    kinds = [int8_rows(kind, n, count, rng) for kind in INT8_KINDS]
    top = rng.integers(-128 + params.dmax + 2, 128, (count, 1))
    near = np.clip(top - rng.integers(0, params.dmax + 3, (count, n)), -128, 127).astype(np.int8)
    return np.concatenate(kinds + [near])


@pytest.mark.parametrize("compatible", [True, False], ids=["aie4ml", "wide-sum"])
@pytest.mark.parametrize("reciprocal, bits", VARIANTS)
def test_random_rows_match_transcription(reciprocal: str, bits: int, compatible: bool) -> None:
    rng = np.random.default_rng(sum(map(ord, f"{reciprocal}{bits}{compatible}")))
    for n in LENGTHS:
        for _ in range(4):
            params = random_params(rng, n, reciprocal, bits, compatible)
            rows = random_rows(rng, n, params, 16)
            sum_bits = None if compatible else int(rng.choice([32, (n * params.b).bit_length() + 1]))
            got = hccs_softmax(rows, params, sum_bits)
            assert got.dtype == params.output_dtype
            np.testing.assert_array_equal(got, reference(rows, params), err_msg=f"{params} N={n}")
            if reciprocal == "div":
                assert np.all(got.astype(np.int64).sum(axis=-1) <= (255 if bits == 8 else 32767))


@pytest.mark.parametrize("reciprocal, bits", VARIANTS)
def test_compatible_codes_do_not_depend_on_sum_bits(reciprocal: str, bits: int) -> None:
    rng = np.random.default_rng(5)
    for n in (3, 64):
        params = random_params(rng, n, reciprocal, bits, compatible=True)
        rows = random_rows(rng, n, params, 10)
        np.testing.assert_array_equal(hccs_softmax(rows, params), hccs_softmax(rows, params, sum_bits=32))
        np.testing.assert_array_equal(hccs_softmax(rows, params), hccs_softmax(rows, params, sum_bits=16))


def test_leading_axes() -> None:
    rng = np.random.default_rng(6)
    params = HccsParams(300, 5, 40, "clb", 15, 16)
    x = rng.integers(-128, 128, (2, 3, 50)).astype(np.int8)
    got = hccs_softmax(x, params)
    assert got.shape == x.shape and got.dtype == np.int16
    np.testing.assert_array_equal(got, hccs_softmax(x.reshape(6, 50), params).reshape(x.shape))


# Directed rows

@pytest.mark.parametrize("reciprocal, bits", VARIANTS)
@pytest.mark.parametrize("n, b", [(1, 300), (4, 100), (10, 3000), (64, 511), (256, 127)])
def test_all_equal_row(reciprocal: str, bits: int, n: int, b: int) -> None:
    params = HccsParams(b, 7, 3, reciprocal, 15, bits)
    row = [-5] * n
    check_directed(row, params)
    assert len(set(formula_codes(row, params))) == 1


@pytest.mark.parametrize("reciprocal, bits", VARIANTS)
@pytest.mark.parametrize("position", [0, 17, 31])
def test_one_dominant_element(reciprocal: str, bits: int, position: int) -> None:
    params = HccsParams(1000, 20, 40, reciprocal, 15, bits)
    row = [-128] * 32
    row[position] = 127
    check_directed(row, params)
    codes = formula_codes(row, params)
    assert codes[position] > max(codes[:position] + codes[position + 1:])


@pytest.mark.parametrize("reciprocal, bits", VARIANTS)
def test_every_element_clipped_at_dmax(reciprocal: str, bits: int) -> None:
    params = HccsParams(700, 9, 12, reciprocal, 15, bits)
    row = [100] + [100 - 12 - j for j in range(0, 200, 7)]
    check_directed(row, params)
    got = hccs_softmax(np.array(row, dtype=np.int8), params)
    assert len(set(got[1:].tolist())) == 1


@pytest.mark.parametrize("reciprocal, bits", VARIANTS)
def test_distances_around_dmax(reciprocal: str, bits: int) -> None:
    params = HccsParams(2000, 31, 50, reciprocal, 15, bits)
    row = [60] + [60 - d for d in (0, 1, 49, 50, 51, 188)]
    check_directed(row, params)
    assert scores_of(row, params)[3:] == [2000 - 31 * 49] + [2000 - 31 * 50] * 3


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("n, b", [(4, 256), (2, 8192), (1, 1024), (16, 1024)])
def test_clb_equals_divide_at_a_power_of_two_sum(bits: int, n: int, b: int) -> None:
    row = [3] * n
    assert (n * b) & (n * b - 1) == 0
    clb_params = HccsParams(b, 0, 0, "clb", 15, bits)
    div_params = dataclasses.replace(clb_params, reciprocal="div")
    check_directed(row, clb_params)
    np.testing.assert_array_equal(hccs_softmax(np.array(row, dtype=np.int8), clb_params),
                                  hccs_softmax(np.array(row, dtype=np.int8), div_params))


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("n, b", [(3, 341), (1, 1025), (5, 6553)])
def test_clb_around_a_power_of_two_sum(bits: int, n: int, b: int) -> None:
    row = [-40] * n
    clb_params = HccsParams(b, 1, 1, "clb", 15, bits)
    div_params = dataclasses.replace(clb_params, reciprocal="div")
    check_directed(row, clb_params)
    x = np.array(row, dtype=np.int8)
    assert np.all(hccs_softmax(x, clb_params) >= hccs_softmax(x, div_params))


@pytest.mark.parametrize("bits, slope, dmax, floor_score", [(8, 127, 78, 128), (16, 127, 94, 128)])
def test_clb_output_saturates(bits: int, slope: int, dmax: int, floor_score: int) -> None:
    params = HccsParams(floor_score + slope * dmax, slope, dmax, "clb", 15, bits)
    row = [127, -128]
    high = 255 if bits == 8 else 32767
    assert unsaturated_codes(scores_of(row, params), params)[0] > high
    check_directed(row, params)
    assert hccs_softmax(np.array(row, dtype=np.int8), params)[0] == high


def test_clb_negative_shift_extension() -> None:
    params = HccsParams(100, 0, 0, "clb", 8, 8)
    row = [0] * 64
    assert (64 * 100).bit_length() - 1 > params.inv_shift
    assert any("negative count" in error for error in validity_errors(params, 64, aie4ml_compatible=True))
    check_directed(row, params, sum_bits=32)
    with pytest.raises(ConfigError, match="negative count"):
        hccs_softmax(np.array(row, dtype=np.int8), params)


def test_wide_numerator_extension() -> None:
    params = HccsParams(16384, 0, 0, "div", 24, 8)
    row = [1] * 8
    check_directed(row, params, sum_bits=32)
    assert not validity_errors(params, 8, aie4ml_compatible=False)


# Parameter checks and validity rules

@pytest.mark.parametrize("field, value, text", [
    ("b", -1, "0..32767"), ("b", 32768, "0..32767"), ("b", 1.5, "0..32767"),
    ("s", -1, "0..127"), ("s", 128, "0..127"),
    ("dmax", -1, "0..127"), ("dmax", 128, "0..127"),
    ("inv_shift", 0, "1..30"), ("inv_shift", 31, "1..30"),
    ("reciprocal", "newton", "div, clb"),
    ("output_bits", 12, "8 or 16"), ("output_bits", True, "8 or 16"), ("output_bits", 8.0, "8 or 16"),
])
def test_parameter_ranges(field: str, value: object, text: str) -> None:
    arguments = {"b": 1000, "s": 1, "dmax": 10} | {field: value}
    with pytest.raises(ValueError, match=rf"{field} .*{text}"):
        HccsParams(**arguments)


def test_parameter_limits_accepted() -> None:
    HccsParams(0, 0, 0, "div", 1, 8)
    HccsParams(32767, 127, 127, "clb", 30, 16)
    with pytest.raises(dataclasses.FrozenInstanceError):
        HccsParams(1000, 1, 1).b = 5


def test_floor_score_rule() -> None:
    errors = validity_errors(HccsParams(100, 2, 60), 8, aie4ml_compatible=False)
    assert len(errors) == 1 and "B - S*Dmax >= 0" in errors[0] and "-20" in errors[0]


def test_reciprocal_range_rule() -> None:
    assert validity_errors(HccsParams(64 + 3 * 10, 3, 10), 4, aie4ml_compatible=True) == []
    errors = validity_errors(HccsParams(63 + 3 * 10, 3, 10), 4, aie4ml_compatible=True)
    assert len(errors) == 1 and "N*(B - S*Dmax) >= 256" in errors[0] and "252" in errors[0]


def test_int16_sum_rule_only_when_compatible() -> None:
    assert validity_errors(HccsParams(8191, 0, 0), 4, aie4ml_compatible=True) == []
    errors = validity_errors(HccsParams(8192, 0, 0), 4, aie4ml_compatible=True)
    assert len(errors) == 1 and "N*B <= 32767" in errors[0] and "32768" in errors[0]
    assert validity_errors(HccsParams(8192, 0, 0), 4, aie4ml_compatible=False) == []


@pytest.mark.parametrize("compatible", [True, False])
def test_int16_reciprocal_rule(compatible: bool) -> None:
    assert any("fit int16" in error for error in validity_errors(HccsParams(64, 0, 0, "div", 16), 4, compatible))
    assert validity_errors(HccsParams(511, 0, 0, "div", 16), 1, compatible) == []
    assert validity_errors(HccsParams(64, 0, 0, "div", 16, 16), 4, compatible) == []


def test_clb_shift_rule() -> None:
    assert validity_errors(HccsParams(2047, 0, 0, "clb", 10), 1, aie4ml_compatible=True) == []
    assert validity_errors(HccsParams(2048, 0, 0, "clb", 10), 1, aie4ml_compatible=True) != []
    assert validity_errors(HccsParams(2048, 0, 0, "clb", 10, 16), 1, aie4ml_compatible=True) == []


def test_model_rejects_invalid_configurations() -> None:
    row = np.zeros((1, 4), dtype=np.int8)
    with pytest.raises(ConfigError, match=r"N\*\(B - S\*Dmax\) >= 256"):
        hccs_softmax(row, HccsParams(63, 0, 0))
    with pytest.raises(ConfigError, match=r"N\*B <= 32767"):
        hccs_softmax(row, HccsParams(8192, 0, 0))
    assert hccs_softmax(row, HccsParams(8191, 0, 0), sum_bits=16).shape == (1, 4)
    with pytest.raises(ConfigError, match="sum_bits=16"):
        hccs_softmax(row, HccsParams(8192, 0, 0), sum_bits=16)
    with pytest.raises(ConfigError, match="sum_bits"):
        hccs_softmax(row, HccsParams(8191, 0, 0), sum_bits=1)
    with pytest.raises(ConfigError, match="int8"):
        hccs_softmax(row.astype(np.int16), HccsParams(8191, 0, 0))
    with pytest.raises(ConfigError, match="int8"):
        hccs_softmax(np.zeros((2, 0), dtype=np.int8), HccsParams(8191, 0, 0))
    with pytest.raises(ConfigError, match="row length"):
        validity_errors(HccsParams(8191, 0, 0), 0, aie4ml_compatible=True)


def test_output_scale() -> None:
    assert HccsParams(1000, 1, 1).output_scale == 2.0 ** -8
    assert HccsParams(1000, 1, 1, output_bits=16).output_scale == 2.0 ** -15
