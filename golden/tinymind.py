"""Bit-exact model of TinyMind's int8 softmax step (``QSoftmax1D`` / ``QAttentionSoftmax1D``).

* exp LUT of 256 int32 entries, built as TinyMind's host-side ``buildQSoftmaxExpLUT`` (``qcalibration.hpp``) builds
  it: ``lut[i] = llround(clamp(exp(double(i − 255) · double(s)) · 2^30, 0, 2^31 − 1))``, ``s`` the input scale taken
  as float32, every step in double precision. ``exp`` is the C library's (``math.exp``), not numpy's vectorised
  ``np.exp``, which can return a double one ulp away; ``llround`` rounds the exact double half away from zero;
* ``index = clamp(x − max, −255, 0) + 255``, so an element ``d = max − x`` below the maximum reads ``lut[255 − d]``;
* ``sum = Σ lut[index]`` exactly;
* ``q = clamp(((lut[index] << 8) + (sum >> 1)) / sum − 128, −128, 127)``, truncating division; every output is −128
  when ``sum ≤ 0``, which cannot happen here since the maximum itself adds ``2^30``.
"""

import math
from functools import cached_property

import numpy as np

from int8attn.golden.config import DIFF_RANGE, SoftmaxConfig
from int8attn.golden.softmax import SoftmaxModel

LUT_FRACTION_BITS = 30
NUMERATOR_SHIFT = 8
LUT_MAX = 2147483647.0


def llround(value: float) -> int:
    """C ``llround``: the integer nearest to the double ``value``, halfway cases away from zero.

    ``math.modf`` splits the double exactly, so no addition of 0.5 can round the way ``floor(value + 0.5)`` does.
    """
    fraction, whole = math.modf(value)
    return int(whole) + (fraction >= 0.5) - (fraction <= -0.5)


def exp_lut(input_scale: float) -> np.ndarray:
    """TinyMind's ``buildQSoftmaxExpLUT`` for the float32-valued ``input_scale``, operation for operation.

    Parameters
    ----------
    input_scale : float
        The input scale, already rounded to float32.

    Returns
    -------
    numpy.ndarray
        256 ``int64`` entries; entry ``i`` is TinyMind's ``lut[i]`` for the diff ``i − 255``.
    """
    one = float(1 << LUT_FRACTION_BITS)
    entries = []
    for index in range(DIFF_RANGE):
        scaled = math.exp(float(index - (DIFF_RANGE - 1)) * input_scale) * one
        entries.append(llround(min(max(scaled, 0.0), LUT_MAX)))
    return np.array(entries, dtype=np.int64)


class TinyMindSoftmaxModel(SoftmaxModel, modes=("tinymind",)):
    """Mode ``tinymind``. ``exp_table`` and ``accumulator_table`` are both ``lut[255 − d]``."""

    def __init__(self, config: SoftmaxConfig):
        super().__init__(config)
        self.input_scale = float(np.float32(config.input_scale))

    @cached_property
    def lut(self) -> np.ndarray:
        """TinyMind's table, indexed as TinyMind indexes it."""
        return exp_lut(self.input_scale)

    @cached_property
    def exp_table(self) -> np.ndarray:
        return self.lut[::-1].copy()

    @property
    def accumulator_table(self) -> np.ndarray:
        return self.exp_table

    @property
    def rom_depth(self) -> int:
        nonzero = np.flatnonzero(self.exp_table)
        return int(nonzero[-1]) + 1

    @property
    def sum_bits(self) -> int:
        return int(self.config.n * int(self.exp_table[0])).bit_length()

    def divide(self, exps: np.ndarray, sums: np.ndarray) -> np.ndarray:
        """``clamp(((e << 8) + (sum >> 1)) / sum − 128)`` elementwise (broadcasting), truncating division."""
        exps = np.asarray(exps, dtype=np.int64)
        sums = np.asarray(sums, dtype=np.int64)
        numerators = (exps << NUMERATOR_SHIFT) + (sums >> 1)
        return self.clamp(np.where(sums > 0, numerators // np.maximum(sums, 1), 0))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        diffs = self.diffs(x)
        return self.divide(self.exp_table[diffs], self.sums_of(diffs)[:, None])
