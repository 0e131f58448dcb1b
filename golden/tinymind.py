"""Bit-exact model of TinyMind's int8 softmax step (``QSoftmax1D`` / ``QAttentionSoftmax1D``).

* exp LUT of 256 int32 entries, ``lut[i] = llround(clamp(exp((i − 255)·s)·2^30, 0, 2^31 − 1))`` in double precision
  (``llround`` rounds half away from zero), ``s`` the input scale taken as float32;
* ``index = clamp(x − max, −255, 0) + 255``, so an element ``d = max − x`` below the maximum reads ``lut[255 − d]``;
* ``sum = Σ lut[index]`` exactly;
* ``q = clamp(((lut[index] << 8) + (sum >> 1)) / sum − 128, −128, 127)``, truncating division; every output is −128
  when ``sum ≤ 0``, which cannot happen here since the maximum itself adds ``2^30``.
"""

from functools import cached_property

import numpy as np

from .config import DIFF_RANGE, SoftmaxConfig
from .softmax import SoftmaxModel

LUT_FRACTION_BITS = 30
NUMERATOR_SHIFT = 8


class TinyMindSoftmaxModel(SoftmaxModel):
    """Mode ``tinymind``. ``exp_table`` and ``accumulator_table`` are both ``lut[255 − d]``."""

    def __init__(self, config: SoftmaxConfig):
        super().__init__(config)
        self.input_scale = float(np.float32(config.input_scale))

    @cached_property
    def lut(self) -> np.ndarray:
        """TinyMind's table, indexed as TinyMind indexes it."""
        values = np.exp((np.arange(DIFF_RANGE, dtype=np.float64) - (DIFF_RANGE - 1)) * self.input_scale)
        scaled = np.clip(values * (1 << LUT_FRACTION_BITS), 0, (1 << 31) - 1)
        return np.floor(scaled + 0.5).astype(np.int64)

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
