"""An independent transcription of TinyMind's integer C++ (``cpp/qaffine.hpp``) on Python integers, for the tests
that check the models against TinyMind's formulas, and the loader of TinyMind's encoder-stack vectors."""

from pathlib import Path

import numpy as np
import pytest

TINYMIND_STACK = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "tinymind_encoder_stack.npz"
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def int32(value: int) -> int:
    return (value - INT32_MIN) % (1 << 32) + INT32_MIN


def c_divide(numerator: int, denominator: int) -> int:
    """C++ integer ``/``: truncation toward zero."""
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator < 0) == (denominator < 0) else -quotient


def saturating_rounding_doubling_high_mul(a: int, b: int) -> int:
    if a == INT32_MIN and b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return int32(c_divide(ab + nudge, 1 << 31))


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    if exponent <= 0:
        return x
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def requantizer_apply(requantizer: dict[str, int], acc: int) -> int:
    """``Requantizer<int32_t, int8_t>::apply``."""
    shift = requantizer["shift"]
    shifted = int32(acc)
    if shift < 0:
        shifted = int32(shifted * (1 << -shift))
    mul = saturating_rounding_doubling_high_mul(shifted, requantizer["multiplier"])
    with_zp = int32(rounding_divide_by_pot(mul, max(shift, 0)) + requantizer["zero_point"])
    return min(max(with_zp, requantizer["qmin"]), requantizer["qmax"])


def load_encoder_stack() -> dict[str, np.ndarray]:
    """Every array of the shared ``tinymind_encoder_stack.npz``; skips the test when the repo's ``../shared`` lacks
    it."""
    if not TINYMIND_STACK.exists():
        pytest.skip(f"TinyMind encoder vectors not found at {TINYMIND_STACK} (the repo's ../shared)")
    with np.load(TINYMIND_STACK) as archive:
        return {key: archive[key] for key in archive.files}
