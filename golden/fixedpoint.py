"""gemmlowp fixed-point primitives on numpy ``int64`` arrays.

Every function reproduces the integer result of the gemmlowp / TFLite routine of the same name for ``int32``
operands; the arithmetic is carried in ``int64`` so that no intermediate wraps.
"""

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def srdhm(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """``SaturatingRoundingDoublingHighMul``: ``a·b / 2^31`` rounded to nearest, saturated.

    gemmlowp nudges by ±2^30 and truncates toward zero, so an exact half rounds up: +0.5 → 1 but −0.5 → 0.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    nudged = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = np.where(nudged >= 0, nudged >> 31, -((-nudged) >> 31))
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, high)


def rounding_divide_by_pot(x: np.ndarray | int, exponent: np.ndarray | int) -> np.ndarray:
    """``RoundingDivideByPOT``: ``x / 2^exponent`` rounded half away from zero (exponent may exceed 31)."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def saturating_shift_left(x: np.ndarray | int, exponent: int) -> np.ndarray:
    """``SaturatingRoundingMultiplyByPOT<exponent>`` for ``exponent > 0`` on int32 values."""
    x = np.asarray(x, dtype=np.int64)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


def wrap32(x: np.ndarray | int) -> np.ndarray:
    """Two's-complement wrap to int32, as gemmlowp's raw ``+``/``-`` on ``FixedPoint<int32_t>`` does."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + (1 << 31)) & 0xFFFF_FFFF) - (1 << 31)


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray) -> np.ndarray:
    """Q0.31 → Q0.31 exp on [−1/4, 0): Taylor expansion around −1/8."""
    constant_term = 1895147668
    constant_1_over_3 = 715827883
    x = wrap32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(wrap32(srdhm(wrap32(x4_over_4 + x3), constant_1_over_3) + x2), 1)
    return wrap32(constant_term + srdhm(constant_term, wrap32(x + poly)))


_BARREL_SHIFTER = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
                   (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a: np.ndarray | int) -> np.ndarray:
    """gemmlowp ``exp_on_negative_values`` for a Q5.26 argument ``a ≤ 0`` (``FixedPoint<int32_t, 5>``).

    Returns the Q0.31 raw value of ``exp(a)``. With five integer bits gemmlowp's clamp below −32 never applies.
    """
    a = np.asarray(a, dtype=np.int64)
    integer_bits = 5
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_one_quarter = wrap32((a & (one_quarter - 1)) - one_quarter)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_shift_left(a_mod_quarter_minus_one_quarter, integer_bits))
    remainder = wrap32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _BARREL_SHIFTER:
        bit = remainder & (1 << (fractional_bits + exponent))
        result = np.where(bit != 0, srdhm(result, multiplier), result)
    return np.where(a == 0, INT32_MAX, result)


def one_over_one_plus_x_for_x_in_0_1(a: np.ndarray, steps: int = 3) -> np.ndarray:
    """Q0.31 → Q0.31 ``1/(1+a)``: gemmlowp's 48/17 − 32/17·d seed and ``steps`` Newton–Raphson steps (gemmlowp: 3)."""
    a = np.asarray(a, dtype=np.int64)
    half_denominator = (a + INT32_MAX + 1) >> 1
    x = wrap32(1515870810 + srdhm(half_denominator, -1010580540))
    for _ in range(steps):
        half_denominator_times_x = srdhm(half_denominator, x)
        one_minus_half_denominator_times_x = wrap32((1 << 29) - half_denominator_times_x)
        x = wrap32(x + saturating_shift_left(srdhm(x, one_minus_half_denominator_times_x), 2))
    return saturating_shift_left(x, 1)


def count_leading_zeros32(x: np.ndarray) -> np.ndarray:
    """Leading zeros of non-negative values seen as 32-bit words; negative for values of 33 bits or more."""
    x = np.asarray(x, dtype=np.int64)
    bit_length = np.zeros(x.shape, dtype=np.int64)
    remaining = x.copy()
    for step in (32, 16, 8, 4, 2, 1):
        big = remaining >= (np.int64(1) << step)
        bit_length += np.where(big, step, 0)
        remaining = np.where(big, remaining >> step, remaining)
    bit_length += remaining > 0
    return 32 - bit_length


def quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplierGreaterThanOne``: ``real ≈ multiplier · 2^(shift − 31)``, ``shift ≥ 0``."""
    mantissa, shift = np.frexp(real)
    q_fixed = int(np.sign(mantissa) * np.floor(abs(mantissa) * (1 << 31) + 0.5))
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    return q_fixed, int(shift)
