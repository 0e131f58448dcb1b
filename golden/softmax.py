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

Mode ``lut`` runs the same datapath with the knobs of :class:`SoftmaxConfig`: ROM depth (``d`` at or beyond it reads
0), ROM width (``e`` rounded half up to ``rom_width`` bits, saturated), a saturating accumulator, the reciprocal by
``k`` Newton–Raphson steps or by a table on the sum's leading bits, and ``B``-bit outputs
(``shift = (12 − hp1) + 31 − B``, zero point ``−2^(B−1)``). With the default knobs it is ``tflite``.
Mode ``tinymind`` is :class:`~int8attn.golden.tinymind.TinyMindSoftmaxModel`.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from int8attn.golden.config import DIFF_RANGE, SoftmaxConfig
from int8attn.golden.fixedpoint import (
    count_leading_zeros32,
    exp_on_negative_values,
    one_over_one_plus_x_for_x_in_0_1,
    quantize_multiplier_greater_than_one,
    rounding_divide_by_pot,
    srdhm,
)
from int8attn.golden.stimuli import check_rows

SCALED_DIFF_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12
EXP_BITS = 31
OUTPUT_ZERO_POINT = -128


@dataclass(frozen=True)
class Reciprocal:
    """Per-row normalisation: ``scale`` (Q0.31 of ``2^(hp1−12)/sum``) and the output right shift."""

    scale: np.ndarray
    shift: np.ndarray


class SoftmaxModel:
    """Bit-exact integer softmax of one :class:`SoftmaxConfig`; ``SoftmaxModel(config)`` picks the mode's model.

    A subclass serves the modes it names in its class statement (``class M(SoftmaxModel, modes=("lut",))``).

    Members
    -------
    config : SoftmaxConfig
    exp_table : numpy.ndarray
        Numerator table: ``exp_table[d]`` is the exponential of an element ``d`` below the row maximum, ``d`` in
        ``0..255``.
    accumulator_table : numpy.ndarray
        The term each such element adds to the row sum.
    rom_depth : int
        Entries of the tables that can be non-zero.
    sum_bits : int
        Width of the row sum.
    output_bits : int
        Width of an output probability.
    """

    _by_mode: dict[str, type["SoftmaxModel"]] = {}

    def __init_subclass__(cls, modes: tuple[str, ...] = (), **kwargs):
        super().__init_subclass__(**kwargs)
        SoftmaxModel._by_mode.update(dict.fromkeys(modes, cls))

    def __new__(cls, config: SoftmaxConfig):
        if cls is SoftmaxModel:
            cls = SoftmaxModel._by_mode[config.mode]
        return super().__new__(cls)

    def __init__(self, config: SoftmaxConfig):
        self.config = config

    exp_table: np.ndarray
    accumulator_table: np.ndarray
    rom_depth: int
    sum_bits: int
    output_bits: int = 8

    @property
    def output_zero_point(self) -> int:
        return -(1 << (self.output_bits - 1))

    @property
    def output_dtype(self) -> type:
        return np.int8 if self.output_bits <= 8 else np.int16

    @property
    def output_scale(self) -> float:
        """Probability of one output step."""
        return 2.0 ** -self.output_bits

    input_dtype = np.int8
    output_signed = True

    @property
    def output_description(self) -> str:
        return f"probabilities, scale 2^-{self.output_bits}, zero point {self.output_zero_point}"

    @property
    def exact_sum_bits(self) -> int:
        """Width that holds every row sum without saturation."""
        return self.sum_bits

    def check_rows(self, x: np.ndarray) -> np.ndarray:
        return check_rows(x, self.input_dtype, self.config.n)

    def diffs(self, x: np.ndarray) -> np.ndarray:
        """``max(row) − x``: the ROM index of each element, 0..255."""
        x = self.check_rows(x).astype(np.int64)
        return x.max(axis=1, keepdims=True) - x

    def row_sums(self, x: np.ndarray) -> np.ndarray:
        """The row sums exactly as the datapath forms them."""
        return self.sums_of(self.diffs(x))

    def sums_of(self, diffs: np.ndarray) -> np.ndarray:
        return self.accumulator_table[diffs].sum(axis=1)

    def clamp(self, values: np.ndarray) -> np.ndarray:
        low = self.output_zero_point
        return np.clip(values + low, low, -low - 1).astype(self.output_dtype)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class GemmlowpSoftmaxModel(SoftmaxModel, modes=("tflite", "lut")):
    """Modes ``tflite`` and ``lut``: gemmlowp fixed point, see the module docstring.

    Members
    -------
    input_multiplier, input_left_shift, diff_min : int
        TFLite's quantised ``β·s`` and the smallest diff that still contributes.
    """

    def __init__(self, config: SoftmaxConfig):
        super().__init__(config)
        beta = float(np.float32(config.beta))
        input_scale = float(np.float32(config.input_scale))
        real = min(beta * input_scale * (1 << (31 - SCALED_DIFF_INTEGER_BITS)), (1 << 31) - 1.0)
        self.input_multiplier, self.input_left_shift = quantize_multiplier_greater_than_one(real)
        radius = ((1 << SCALED_DIFF_INTEGER_BITS) - 1) * (1 << (31 - SCALED_DIFF_INTEGER_BITS))
        self.diff_min = -int(np.floor(radius / (1 << self.input_left_shift)))
        self.output_bits = config.output_bits

    @cached_property
    def exp_table(self) -> np.ndarray:
        diffs = -np.arange(DIFF_RANGE, dtype=np.int64)
        scaled = srdhm(diffs * (1 << self.input_left_shift), self.input_multiplier)
        exact = np.where(-diffs < self.rom_depth, exp_on_negative_values(scaled), 0)
        dropped = EXP_BITS - self.config.rom_width
        if dropped == 0:
            return exact
        kept = np.minimum((exact + (1 << (dropped - 1))) >> dropped, (1 << self.config.rom_width) - 1)
        return kept << dropped

    @cached_property
    def accumulator_table(self) -> np.ndarray:
        return rounding_divide_by_pot(self.exp_table, ACCUMULATION_INTEGER_BITS)

    @property
    def rom_depth(self) -> int:
        depth = min(DIFF_RANGE, 1 - self.diff_min)
        return depth if self.config.rom_depth is None else min(depth, self.config.rom_depth)

    @property
    def exact_sum_bits(self) -> int:
        return int(self.config.n * int(self.accumulator_table[0])).bit_length()

    @property
    def sum_bits(self) -> int:
        width = self.config.accumulator_width
        return self.exact_sum_bits if width is None else min(width, self.exact_sum_bits)

    def sums_of(self, diffs: np.ndarray) -> np.ndarray:
        """Row sums, saturated at the accumulator width."""
        return np.minimum(super().sums_of(diffs), (1 << self.sum_bits) - 1)

    @cached_property
    def reciprocal_table(self) -> np.ndarray:
        """Method ``lut``: Q0.31 ``1/(1 + x)`` at the middle of each of the ``2^bits`` intervals of ``x``."""
        bits = self.config.reciprocal_bits
        middles = (np.arange(1 << bits) + 0.5) / (1 << bits)
        return np.minimum(np.floor(2.0 ** 31 / (1 + middles) + 0.5), (1 << 31) - 1).astype(np.int64)

    def reciprocal(self, sums: np.ndarray) -> Reciprocal:
        """gemmlowp ``GetReciprocal`` of positive sums, widened past 32 bits as the module docstring states."""
        sums = np.asarray(sums, dtype=np.int64)
        headroom_plus_one = count_leading_zeros32(sums)
        normalised = np.where(headroom_plus_one >= 0, sums << np.maximum(headroom_plus_one, 0),
                              sums >> np.maximum(-headroom_plus_one, 0))
        x = normalised - (1 << 31)
        if self.config.reciprocal == "lut":
            scale = self.reciprocal_table[x >> (31 - self.config.reciprocal_bits)]
        else:
            scale = one_over_one_plus_x_for_x_in_0_1(x, self.config.reciprocal_steps)
        shift = (ACCUMULATION_INTEGER_BITS - headroom_plus_one) + 31 - self.output_bits
        return Reciprocal(scale=scale, shift=shift)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Softmax of int8 rows (``rows × n``) as probabilities on the 1/2^B grid, zero point −2^(B−1)."""
        diffs = self.diffs(x)
        reciprocal = self.reciprocal(self.sums_of(diffs))
        e = self.exp_table[diffs]
        return self.clamp(rounding_divide_by_pot(srdhm(reciprocal.scale[:, None], e), reciprocal.shift[:, None]))


def softmax(x: np.ndarray, config: SoftmaxConfig) -> np.ndarray:
    """Functional form of :class:`SoftmaxModel`."""
    return SoftmaxModel(config)(x)
