"""Bit-exact model of TensorFlow Lite's int8 softmax (reference kernel, gemmlowp fixed point).

Mode ``tflite`` reproduces ``reference_ops::Softmax<int8_t, int8_t>`` of TFLite / TFLite Micro / CMSIS-NN: output
scale 1/256, output zero point −128. The arithmetic follows gemmlowp's ``fixedpoint.h``:

* ``input_multiplier, input_left_shift = QuantizeMultiplierGreaterThanOne(min(β·s·2^26, 2^31 − 1))`` and
  ``diff_min = −floor(31·2^26 / 2^input_left_shift)``, from float32 ``β`` and ``s`` widened to double.
* Per row, for ``d = x − max ≥ diff_min``: ``e = exp_on_negative_values(SRDHM(d·2^shift, multiplier))`` (Q0.31) and
  ``sum += RDBPOT(e, 12)`` (Q12.19).
* ``hp1 = CLZ32(sum)``, ``scale = one_over_one_plus_x_for_x_in_0_1((sum << hp1) − 2^31)``,
  ``out = clamp(RDBPOT(SRDHM(scale, e), (12 − hp1) + 23) − 128)``; elements with ``d < diff_min`` give −128.

The input zero point cancels in ``x − max``; it is accepted and has no effect.

Wide sums. TFLite keeps the Q12.19 sum in an int32 and its reference kernel breaks once the sum reaches 512 (the
output shift reaches 32). Here the sum is an integer with as many bits as the row needs and the same formulas hold
with more integer bits: ``hp1 = 32 − bit_length(sum)`` may be zero or negative, ``sum << hp1`` is then a right
shift (floor), i.e. the normalised sum keeps its 32 leading bits, and the output shift ``35 − hp1`` grows past 31.
Rows that TFLite handles are unchanged; on the others every output is within 1 LSB of float softmax.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .config import SoftmaxConfig
from .fixedpoint import (
    count_leading_zeros32,
    exp_on_negative_values,
    one_over_one_plus_x_for_x_in_0_1,
    quantize_multiplier_greater_than_one,
    rounding_divide_by_pot,
    srdhm,
)

SCALED_DIFF_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12
OUTPUT_BITS = 8
OUTPUT_ZERO_POINT = -128
DIFF_RANGE = 256


@dataclass(frozen=True)
class Reciprocal:
    """Per-row normalisation: ``scale`` (Q0.31 of ``2^(hp1−12)/sum``) and the output right shift."""

    scale: np.ndarray
    shift: np.ndarray


class SoftmaxModel:
    """Bit-exact integer softmax for one :class:`SoftmaxConfig`.

    Members
    -------
    input_multiplier, input_left_shift, diff_min : int
        TFLite's quantised ``β·s`` and the smallest diff that still contributes.
    exp_table : numpy.ndarray
        ``exp_table[k]`` is the Q0.31 ``e`` for ``d = −k``, 0 where ``−k < diff_min``; ``k`` in ``0..255``.
    accumulator_table : numpy.ndarray
        ``RDBPOT(exp_table, 12)``: the Q12.19 term each element adds to the row sum.
    rom_depth : int
        Entries of ``exp_table`` that can be non-zero (``min(256, 1 − diff_min)``).
    sum_bits : int
        Width of the widest row sum, ``n · 2^19``.
    """

    def __init__(self, config: SoftmaxConfig):
        self.config = config
        beta = float(np.float32(config.beta))
        input_scale = float(np.float32(config.input_scale))
        real = min(beta * input_scale * (1 << (31 - SCALED_DIFF_INTEGER_BITS)), (1 << 31) - 1.0)
        self.input_multiplier, self.input_left_shift = quantize_multiplier_greater_than_one(real)
        radius = ((1 << SCALED_DIFF_INTEGER_BITS) - 1) * (1 << (31 - SCALED_DIFF_INTEGER_BITS))
        self.diff_min = -int(np.floor(radius / (1 << self.input_left_shift)))

    @cached_property
    def exp_table(self) -> np.ndarray:
        diffs = -np.arange(DIFF_RANGE, dtype=np.int64)
        scaled = srdhm(diffs * (1 << self.input_left_shift), self.input_multiplier)
        return np.where(diffs >= self.diff_min, exp_on_negative_values(scaled), 0)

    @cached_property
    def accumulator_table(self) -> np.ndarray:
        return rounding_divide_by_pot(self.exp_table, ACCUMULATION_INTEGER_BITS)

    @property
    def rom_depth(self) -> int:
        return min(DIFF_RANGE, 1 - self.diff_min)

    @property
    def sum_bits(self) -> int:
        return int(self.config.n * int(self.accumulator_table[0])).bit_length()

    def check_rows(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype != np.int8:
            raise ValueError(f"rows must be int8, got {x.dtype}")
        if x.ndim != 2 or x.shape[1] != self.config.n:
            raise ValueError(f"rows must have shape (rows, {self.config.n}), got {x.shape}")
        return x

    def diffs(self, x: np.ndarray) -> np.ndarray:
        """``max(row) − x``: the exp-ROM index of each element, 0..255."""
        x = self.check_rows(x).astype(np.int64)
        return x.max(axis=1, keepdims=True) - x

    def row_sums(self, x: np.ndarray) -> np.ndarray:
        """Exact Q12.19 (or wider) sum of each row."""
        return self.accumulator_table[self.diffs(x)].sum(axis=1)

    @staticmethod
    def reciprocal(sums: np.ndarray) -> Reciprocal:
        """gemmlowp ``GetReciprocal`` of positive sums, widened past 32 bits as the module docstring states."""
        sums = np.asarray(sums, dtype=np.int64)
        headroom_plus_one = count_leading_zeros32(sums)
        normalised = np.where(headroom_plus_one >= 0, sums << np.maximum(headroom_plus_one, 0),
                              sums >> np.maximum(-headroom_plus_one, 0))
        scale = one_over_one_plus_x_for_x_in_0_1(normalised - (1 << 31))
        shift = (ACCUMULATION_INTEGER_BITS - headroom_plus_one) + 31 - OUTPUT_BITS
        return Reciprocal(scale=scale, shift=shift)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Softmax of int8 rows (``rows × n``) as int8 probabilities (scale 1/256, zero point −128)."""
        diffs = self.diffs(x)
        reciprocal = self.reciprocal(self.accumulator_table[diffs].sum(axis=1))
        e = self.exp_table[diffs]
        unsaturated = rounding_divide_by_pot(srdhm(reciprocal.scale[:, None], e), reciprocal.shift[:, None])
        return np.clip(unsaturated + OUTPUT_ZERO_POINT, -128, 127).astype(np.int8)


def softmax(x: np.ndarray, config: SoftmaxConfig) -> np.ndarray:
    """Functional form of :class:`SoftmaxModel`."""
    return SoftmaxModel(config)(x)
