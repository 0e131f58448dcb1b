"""The base-2 golden model against a transcription of ITA's ``streamingPartialSoftmax`` and its formulas.

Transcribed from GitHub pulp-platform/ITA, ``PyITA/softmax.py``, ``streamingPartialSoftmax(x, mask,
integerize=True)`` with an all-false mask. ``eps_max`` is ``range_scale * B / 2**B = 1`` in the version with
``range_scale = 32`` (model ``grid_shift = 0``) and ``B / 2**B = 1/32`` in the version that ``ita_softmax.sv``
implements (``grid_shift = 5``); other powers of two check the model's ``grid_shift`` in general.
"""

import math
from fractions import Fraction

import numpy as np
import pytest

from int8attn.golden.base2 import (
    base2_extended_softmax,
    base2_softmax,
    distance_multiplier,
    exponent_shift,
    fraction_mantissa,
)
from int8attn.golden.params import ConfigError
from int8attn.golden.stimuli import INT8_KINDS, int8_rows

FLOAT32_EPS = float(np.finfo(np.float32).eps)
LENGTHS = (1, 5, 16, 17, 40, 64, 100, 130)


# Transcription of streamingPartialSoftmax for one row, in Python integers

def rounded_shift(diff: int, eps_max: float) -> int:
    """``np.floor(diff * eps_max + 0.5 + np.finfo(np.float32).eps)``, the reference's round half up."""
    return math.floor(diff * eps_max + 0.5 + FLOAT32_EPS)


def streaming_partial_softmax_row(row: list[int], eps_max: float, pe: int = 16) -> list[int]:
    seq_length = len(row)
    exp_partial_sum = 0                                               # np.zeros(..., dtype=np.int32)
    global_max = -128                                                 # np.full(..., -128, dtype=np.int8)
    for i in range((seq_length + pe - 1) // pe):                      # STAGE 1
        width = seq_length % pe if i * pe + pe > seq_length else pe
        x_slice = row[0 + i * pe:width + i * pe]
        current_max = max(x_slice)                                    # np.max(np.where(mask_slice, -128, x_slice))
        shift_sum = 0
        max_shift = rounded_shift(current_max - global_max, eps_max)
        if current_max > global_max:                                  # shift_sum[current_max > global_max] = ...
            shift_sum = max_shift
            global_max = current_max                                  # global_max[current_max > global_max] = ...
        shift = [rounded_shift(global_max - x, eps_max) for x in x_slice]
        exp_sum = sum(2**8 >> s for s in shift)                       # np.floor(np.sum(2**8 >> shift, axis=-1))
        exp_partial_sum = (exp_partial_sum >> shift_sum) + exp_sum    # np.floor(exp_partial_sum >> shift_sum) + ...
    exp_partial_sum_inverse = (2**8 - 1) * 2**8 // exp_partial_sum    # STAGE 2
    shift = [rounded_shift(global_max - x, eps_max) for x in row]
    return [exp_partial_sum_inverse >> s for s in shift]              # (... >> shift).astype(np.uint8)


def reference(rows: np.ndarray, grid_shift: int, chunk: int) -> np.ndarray:
    eps_max = 2.0 ** -grid_shift
    return np.array([streaming_partial_softmax_row([int(v) for v in row], eps_max, chunk) for row in rows])


# The two-pass formulas, for directed rows

def shift_of(distance: int, grid_shift: int) -> int:
    return math.floor(Fraction(distance, 1 << grid_shift) + Fraction(1, 2))


def two_pass_codes(row: list[int], grid_shift: int = 0) -> list[int]:
    top = max(row)
    shifts = [shift_of(top - x, grid_shift) for x in row]
    inv = 65280 // sum(256 >> s for s in shifts)
    return [inv >> s for s in shifts]


def model(row: list[int], chunk: int = 16, grid_shift: int = 0) -> list[int]:
    out = base2_softmax(np.array(row, dtype=np.int8), chunk, grid_shift)
    assert out.dtype == np.uint8
    return out.tolist()


@pytest.mark.parametrize("grid_shift", [0, 5, 3, 8])
def test_random_rows_match_transcription(grid_shift: int) -> None:
    rng = np.random.default_rng(grid_shift)
    for n in LENGTHS:
        rows = np.concatenate([int8_rows(kind, n, 40, rng) for kind in INT8_KINDS])
        for chunk in sorted({16, 1, 7, n, n + 3}):
            np.testing.assert_array_equal(base2_softmax(rows, chunk, grid_shift), reference(rows, grid_shift, chunk),
                                          err_msg=f"N={n} chunk={chunk}")


def test_ita_chunk_is_the_default() -> None:
    rows = int8_rows("normal", 40, 50, 9)
    np.testing.assert_array_equal(base2_softmax(rows), reference(rows, 0, 16))


@pytest.mark.parametrize("grid_shift", [0, 5])
def test_whole_row_chunk_is_the_two_pass_sum(grid_shift: int) -> None:
    rng = np.random.default_rng(11)
    for n in (3, 16, 45):
        for row in int8_rows("peaked", n, 40, rng).tolist():
            assert model(row, n, grid_shift) == two_pass_codes(row, grid_shift)


def test_maximum_in_first_chunk_makes_streaming_exact() -> None:
    rng = np.random.default_rng(12)
    rows = int8_rows("uniform", 70, 300, rng)
    rows[:, 3] = 127
    for grid_shift in (0, 5):
        np.testing.assert_array_equal(base2_softmax(rows, 16, grid_shift), base2_softmax(rows, 70, grid_shift))


def test_leading_axes() -> None:
    x = int8_rows("uniform", 33, 6, 13).reshape(2, 3, 33)
    got = base2_softmax(x)
    assert got.shape == x.shape and got.dtype == np.uint8
    np.testing.assert_array_equal(got, base2_softmax(x.reshape(6, 33)).reshape(x.shape))


# Directed rows

@pytest.mark.parametrize("grid_shift", [0, 5])
@pytest.mark.parametrize("n", [1, 16, 20, 255, 256, 300])
def test_all_equal_row(n: int, grid_shift: int) -> None:
    row = [-17] * n
    for chunk in (16, n):
        assert model(row, chunk, grid_shift) == [65280 // (256 * n)] * n
    assert 65280 // (256 * n) == 255 // n


@pytest.mark.parametrize("position", [0, 15, 16, 39])
def test_one_dominant_element(position: int) -> None:
    row = [-128] * 40
    row[position] = 127
    expected = [0] * 40
    expected[position] = 255
    assert model(row) == expected
    assert model(row, 40) == expected
    assert model(row, 40, grid_shift=5) == two_pass_codes(row, 5)
    assert two_pass_codes(row, 5)[position] == 65280 // (256 + 39 * (256 >> 8))


def test_streaming_truncation_depends_on_chunking() -> None:
    top = 20
    row = [top] + [top - 8] * 15 + [top + 1] + [top + 1 - 9] * 15
    first_chunk = 256 + 15 * (256 >> 8)
    stream_sum = (first_chunk >> 1) + 256 + 15 * (256 >> 9)
    exact_sum = (256 >> 1) + 15 * (256 >> 9) + 256 + 15 * (256 >> 9)
    assert stream_sum != exact_sum
    distances = [top + 1 - x for x in row]
    assert model(row, 16) == [(65280 // stream_sum) >> d for d in distances]
    assert model(row, 32) == [(65280 // exact_sum) >> d for d in distances]


def test_shifts_of_eight_and_more() -> None:
    row = [127, 119, 118, 0, -128]
    total = 256 + (256 >> 8) + (256 >> 9) + (256 >> 127) + (256 >> 255)
    assert total == 257
    assert model(row, 5) == [65280 // total, 0, 0, 0, 0]
    assert model(row, 1) == model(row, 5)


def test_rtl_grid_rounds_half_up() -> None:
    distances = np.array([0, 15, 16, 47, 48, 80, 255])
    assert exponent_shift(distances, 5).tolist() == [shift_of(int(d), 5) for d in distances] == [0, 0, 1, 1, 2, 3, 8]
    row = [127 - int(d) for d in distances]
    assert model(row, 7, grid_shift=5) == two_pass_codes(row, 5)


# Our extension: fraction bits and requantized distances, from the definitions in Python integers

SEGMENT_ENDS = [round(256 * 2 ** (-k / 4)) for k in range(5)]


def mantissa_of(fraction: int, frac_bits: int) -> int:
    """256·2^(−f/2^F), linear between the rounded quarter points."""
    position = Fraction(fraction, 2**frac_bits) * 4
    segment = math.floor(position)
    drop = SEGMENT_ENDS[segment] - SEGMENT_ENDS[segment + 1] if segment < 4 else 0
    return SEGMENT_ENDS[segment] - math.floor(drop * (position - segment))


def extended_row(row: list[int], grid_shift: int, frac_bits: int, input_scale: float | None) -> list[int]:
    top = max(row)
    parts = []
    for x in row:
        distance = top - x
        if input_scale is not None:
            real = Fraction(float(np.float32(input_scale))) * 2**grid_shift / Fraction(math.log(2))
            multiplier = math.floor(real * 2**16 + Fraction(1, 2))
            distance = math.floor(Fraction(distance * multiplier, 2**16) + Fraction(1, 2))
        exponent = math.floor(Fraction(distance, 2 ** (grid_shift - frac_bits)) + Fraction(1, 2))
        whole, fraction = min(exponent // 2**frac_bits, 9), exponent % 2**frac_bits
        parts.append((whole, mantissa_of(fraction, frac_bits)))
    inv = 65280 // sum(mantissa >> whole for whole, mantissa in parts)
    return [inv * mantissa >> (8 + whole) for whole, mantissa in parts]


def test_fraction_mantissa_is_piecewise_linear_power_of_two() -> None:
    for frac_bits in range(9):
        fractions = np.arange(2**frac_bits)
        mantissa = fraction_mantissa(fractions, frac_bits)
        assert mantissa.tolist() == [mantissa_of(int(f), frac_bits) for f in fractions]
        assert mantissa[0] == 256 and np.all(np.diff(mantissa) <= 0)
        exact = 256 * 2.0 ** (-fractions / 2**frac_bits)
        assert np.max(np.abs(mantissa - exact)) < 2.5


@pytest.mark.parametrize(("grid_shift", "frac_bits", "input_scale"),
                         [(3, 3, None), (5, 2, None), (8, 8, None), (4, 1, None), (0, 0, 0.3), (3, 3, 0.05),
                          (6, 4, 0.01), (2, 0, 1.0)])
def test_extension_matches_its_definition(grid_shift: int, frac_bits: int, input_scale: float | None) -> None:
    rng = np.random.default_rng(grid_shift * 10 + frac_bits)
    multiplier = None if input_scale is None else distance_multiplier(input_scale, grid_shift)
    for n in (1, 7, 64):
        rows = np.concatenate([int8_rows(kind, n, 30, rng) for kind in INT8_KINDS])
        got = base2_extended_softmax(rows, grid_shift, frac_bits, multiplier)
        assert got.dtype == np.uint8
        assert got.tolist() == [extended_row(row, grid_shift, frac_bits, input_scale) for row in rows.tolist()]


@pytest.mark.parametrize("grid_shift", [0, 3, 5, 8])
def test_extension_without_fraction_bits_is_ita_on_whole_rows(grid_shift: int) -> None:
    rows = np.concatenate([int8_rows(kind, 45, 50, 14) for kind in INT8_KINDS])
    np.testing.assert_array_equal(base2_extended_softmax(rows, grid_shift), base2_softmax(rows, 45, grid_shift))


def test_fraction_bits_cut_the_worst_error() -> None:
    """On ITA's RTL grid (ln 2 / 32), rounding the exponent to whole powers of two costs up to 0.055 of probability;
    with all five fraction bits the worst error is 0.015."""
    rows = np.concatenate([int8_rows(kind, 64, 200, 15) for kind in INT8_KINDS])
    logits = rows.astype(np.int64) * (math.log(2) / 32)
    exact = np.exp(logits - logits.max(axis=1, keepdims=True))
    exact /= exact.sum(axis=1, keepdims=True)
    worst = [np.abs(base2_extended_softmax(rows, 5, frac_bits) / 255 - exact).max() for frac_bits in (0, 5)]
    assert worst[1] < 0.3 * worst[0]


# Argument checks

@pytest.mark.parametrize("chunk", [0, -1, 1.5, True])
def test_chunk_checked(chunk: object) -> None:
    with pytest.raises(ValueError, match="chunk"):
        base2_softmax(np.zeros(4, dtype=np.int8), chunk)


@pytest.mark.parametrize("grid_shift", [-1, 9, 2.0])
def test_grid_shift_checked(grid_shift: object) -> None:
    with pytest.raises(ValueError, match="grid_shift"):
        base2_softmax(np.zeros(4, dtype=np.int8), grid_shift=grid_shift)


@pytest.mark.parametrize("x", [np.zeros(4, dtype=np.int16), np.zeros((3, 0), dtype=np.int8), np.int8(5)])
def test_input_checked(x: np.ndarray) -> None:
    with pytest.raises(ConfigError, match="int8"):
        base2_softmax(x)


@pytest.mark.parametrize(("grid_shift", "frac_bits", "multiplier", "rule"),
                         [(2, 3, None, "frac_bits must be an integer in 0..grid_shift=2"),
                          (8, -1, None, "frac_bits"), (3, 0, 0, "multiplier must be in 1..16777216"),
                          (3, 0, 1 << 25, "multiplier")])
def test_extension_arguments_checked(grid_shift: int, frac_bits: int, multiplier: int | None, rule: str) -> None:
    with pytest.raises(ConfigError, match=rule):
        base2_extended_softmax(np.zeros(4, dtype=np.int8), grid_shift, frac_bits, multiplier)
