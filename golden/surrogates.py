"""Softmax surrogates as modes of :class:`~int8attn.golden.SoftmaxConfig`: ``hccs``, ``base2`` and ``poly``.

Each mode is a :class:`~int8attn.golden.softmax.SoftmaxModel` whose codes are those of its reference: ``hccs`` of
aie4ml's kernel (:mod:`int8attn.golden.hccs`), ``base2`` of ITA's ``streamingPartialSoftmax``
(:mod:`int8attn.golden.base2`). ``poly`` is the polynomial attention of Lin et al. (2020), whose integer datapath is
ours and is defined here:

* ``b_q = round(b / s)`` (1..255 input LSBs) and ``δ_q = round(|δ| / s^n)``, with ``s`` the float32 input scale;
* per element ``d = max(x) − x`` and the score ``p = max(b_q − d, 0)^n + δ_q``, exactly;
* ``Σ = Σ p`` exactly, ``inv = floor((255 << F) / Σ)`` once per row and ``code = min(floor(p · inv / 2^F), 255)``
  (uint8, scale 2^−8, zero point 0), with ``F`` the largest shift in 0..30 that keeps ``inv ≤ 32767`` at the
  smallest possible row sum ``p(0) + (N − 1) · δ_q``. This is the normalisation of HCCS's 8-bit ``div`` variant.

The scores of ``hccs`` and ``poly`` depend on ``d`` only, so both models expose :attr:`SurrogateModel.score_table`
(``d`` in 0..255 → score); ``base2``'s terms are ``256 >> shift(d)`` and its outputs ``inv >> shift(d)``, or with
fraction bits ``m(d) >> i(d)`` and ``(inv·m(d)) >> (8 + i(d))``: tables of ``d`` too.
"""

from functools import cached_property

import numpy as np

from int8attn.golden.base2 import (
    MAX_SHIFT,
    MULTIPLIER_RANGE,
    NUMERATOR,
    ONE,
    base2_extended_softmax,
    base2_softmax,
    distance_multiplier,
    exponent_parts,
)
from int8attn.golden.config import DIFF_RANGE, SoftmaxConfig
from int8attn.golden.hccs import (
    B_RANGE,
    DMAX_RANGE,
    INV_MAX,
    Q15_NUMERATOR,
    U8_NUMERATOR,
    HccsParams,
    hccs_softmax,
    reciprocal,
    validity_errors,
)
from int8attn.golden.params import ConfigError
from int8attn.golden.softmax import SoftmaxModel

HCCS_OUTPUT_BITS = (8, 16)
POLY_MAX_OFFSET = DIFF_RANGE - 1
POLY_INV_SHIFT_RANGE = (0, 30)


class SurrogateModel(SoftmaxModel):
    """Common ground of the surrogate modes: unsigned codes with zero point 0 and the scale of :attr:`output_scale`.

    Members
    -------
    output_scale : float
        Probability of one output code.
    smallest_sum : int
        The smallest row sum the mode can reach; its normaliser divides by no less.
    """

    output_scale: float
    smallest_sum: int

    @property
    def output_zero_point(self) -> int:
        return 0

    def constants(self) -> dict[str, int | str]:
        """The mode's integer constants, as the sidecar states them."""
        raise NotImplementedError

    @property
    def output_dtype(self) -> type:
        return np.uint8

    @property
    def output_signed(self) -> bool:
        return False

    @property
    def output_description(self) -> str:
        kind = "int16" if self.output_signed else "uint8"
        return f"{kind} probability codes, scale {self.output_scale:.10g}, zero point 0"


class HccsModel(SurrogateModel, modes=("hccs",)):
    """Mode ``hccs``: aie4ml's Head-Calibrated Clipped-Linear Softmax, :func:`~int8attn.golden.hccs.hccs_softmax`.

    Members
    -------
    params : HccsParams
    sum_bits : int
        Width of the unsigned row-sum register: as wide as ``N·B`` needs.
    """

    def __init__(self, config: SoftmaxConfig):
        super().__init__(config)
        self.params = hccs_params(config)
        self.output_bits = config.output_bits
        self.sum_bits = max(config.n * self.params.b, 1).bit_length()
        self.smallest_sum = config.n * self.params.floor_score

    @property
    def output_dtype(self) -> type:
        return self.params.output_dtype

    @property
    def output_scale(self) -> float:
        return self.params.output_scale

    @property
    def output_signed(self) -> bool:
        return self.params.output_bits == 16

    @property
    def rom_depth(self) -> int:
        """Distances below ``Dmax + 1`` have their own score; the directed rows probe that edge."""
        return self.params.dmax + 1

    @cached_property
    def score_table(self) -> np.ndarray:
        distance = np.minimum(np.arange(DIFF_RANGE), self.params.dmax)
        return (self.params.b - self.params.s * distance).astype(np.int64)

    @property
    def inv_shift(self) -> int:
        """Right shift of ``score · inv``: ``inv_shift`` for 8-bit output, 0 for Q15."""
        return self.params.inv_shift if self.params.output_bits == 8 else 0

    @property
    def numerator(self) -> int:
        """Numerator of the ``div`` reciprocal: ``255 << inv_shift`` (8-bit output) or 32767 (Q15)."""
        return U8_NUMERATOR << self.params.inv_shift if self.params.output_bits == 8 else Q15_NUMERATOR

    def constants(self) -> dict[str, int | str]:
        params = self.params
        return {"b": params.b, "s": params.s, "dmax": params.dmax, "floor_score": params.floor_score,
                "reciprocal": params.reciprocal, "numerator": self.numerator, "inv_shift": self.inv_shift,
                "sum_rule": self.config.hccs_sum}

    def clb_table(self, sum_bits: int) -> list[int]:
        """The ``clb`` reciprocal of every ``k = floor(log2 Σ)`` below ``sum_bits``."""
        return [int(value) for value in reciprocal(self.params, 1 << np.arange(sum_bits, dtype=np.int64))]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        sum_bits = None if self.config.hccs_sum == "int16" else self.sum_bits + 1
        return hccs_softmax(self.check_rows(x), self.params, sum_bits=sum_bits)


class Base2Model(SurrogateModel, modes=("base2",)):
    """Mode ``base2``: ITA's shift-based softmax, :func:`~int8attn.golden.base2.base2_softmax`, or with fraction bits
    or requantized distances our whole-row extension, :func:`~int8attn.golden.base2.base2_extended_softmax`.

    Members
    -------
    sum_bits : int
        Width of the row sum, at most ``256·N``.
    multiplier : int or None
        ``M`` of the requantized distances; ``None`` without ``base2_requantize``.
    """

    output_scale = 1 / 255
    smallest_sum = ONE
    """The row maximum's own term."""
    weight_shift = 2 * MAX_SHIFT - 1
    """Right shift of ``inv·weight`` (:attr:`weight_table`), 17."""

    def __init__(self, config: SoftmaxConfig):
        super().__init__(config)
        self.sum_bits = (ONE * config.n).bit_length()
        self.multiplier = (distance_multiplier(config.input_scale, config.base2_grid_shift)
                           if config.base2_requantize else None)

    @property
    def extended(self) -> bool:
        """Fraction bits or requantized distances: terms and outputs from tables of ``d``."""
        return self.config.base2_frac_bits > 0 or self.config.base2_requantize

    @cached_property
    def _parts(self) -> tuple[np.ndarray, np.ndarray]:
        return exponent_parts(np.arange(DIFF_RANGE), self.config.base2_grid_shift, self.config.base2_frac_bits,
                              self.multiplier)

    @property
    def rom_depth(self) -> int:
        """The first distance whose term and output are 0: ``i(d) = 9``."""
        return int(np.searchsorted(self.shift_table, MAX_SHIFT))

    @property
    def chunked(self) -> bool:
        """The running sum is rescaled between chunks (``base2_chunk < n``)."""
        return self.config.base2_chunk < self.config.n

    @property
    def shortest_chunk(self) -> int:
        """Columns of the row's shortest chunk: the last one's ``n mod chunk`` when that is not 0."""
        return min(self.config.base2_chunk, self.config.n % self.config.base2_chunk or self.config.base2_chunk)

    @property
    def shift_table(self) -> np.ndarray:
        """``shift(d)`` (``i(d)`` with fraction bits), capped at 9 (where every term and output is 0), for ``d`` in
        0..255; non-decreasing."""
        return self._parts[0]

    @property
    def score_table(self) -> np.ndarray:
        """The term ``m(d) >> i(d)`` of each distance."""
        whole, mantissa = self._parts
        return mantissa >> whole

    @property
    def weight_table(self) -> np.ndarray:
        """``m(d)·2^(9 − i(d))``, 0 where ``i(d) = 9``: the output is ``⌊inv·weight / 2^17⌋ = (inv·m) >> (8 + i)``."""
        whole, mantissa = self._parts
        return np.where(whole < MAX_SHIFT, mantissa << (MAX_SHIFT - whole), 0)

    @property
    def numerator(self) -> int:
        return NUMERATOR

    def constants(self) -> dict[str, int | str]:
        constants = {"chunk": self.config.base2_chunk, "grid_shift": self.config.base2_grid_shift,
                     "frac_bits": self.config.base2_frac_bits, "numerator": self.numerator}
        return constants | ({"distance_multiplier": self.multiplier} if self.multiplier is not None else {})

    def __call__(self, x: np.ndarray) -> np.ndarray:
        config = self.config
        if self.extended:
            return base2_extended_softmax(self.check_rows(x), config.base2_grid_shift, config.base2_frac_bits,
                                          self.multiplier)
        return base2_softmax(self.check_rows(x), config.base2_chunk, config.base2_grid_shift)


class PolyModel(SurrogateModel, modes=("poly",)):
    """Mode ``poly``: ``[ReLU(x − max + b)]^n + |δ|`` normalised by the row sum, as the module docstring defines it.

    Members
    -------
    offset : int
        ``b_q``, the offset on the input grid.
    floor : int
        ``δ_q``, the floor on the grid of ``s^n``.
    inv_shift : int
        ``F``, fraction bits of the reciprocal.
    sum_bits : int
        Width of the row sum.
    """

    output_bits = 8
    output_scale = 2.0 ** -8

    def __init__(self, config: SoftmaxConfig):
        super().__init__(config)
        self.offset, self.floor = poly_grid(config)
        self.smallest_sum = int(self.score_table[0]) + (config.n - 1) * self.floor
        self.inv_shift = max((shift for shift in range(POLY_INV_SHIFT_RANGE[0], POLY_INV_SHIFT_RANGE[1] + 1)
                              if (U8_NUMERATOR << shift) // self.smallest_sum <= INV_MAX), default=0)
        self.sum_bits = int(config.n * self.score_table[0]).bit_length()

    @property
    def numerator(self) -> int:
        """``255 << F``."""
        return U8_NUMERATOR << self.inv_shift

    def constants(self) -> dict[str, int | str]:
        return {"n": self.config.poly_n, "b_q": self.offset, "delta_q": self.floor, "numerator": self.numerator,
                "inv_shift": self.inv_shift}

    @property
    def rom_depth(self) -> int:
        """Entries of the score table that differ from 0: distances below ``b_q`` when ``δ_q = 0``, else all."""
        return self.offset if self.floor == 0 else DIFF_RANGE

    @cached_property
    def score_table(self) -> np.ndarray:
        reach = np.maximum(self.offset - np.arange(DIFF_RANGE, dtype=np.int64), 0)
        return reach ** self.config.poly_n + self.floor

    @property
    def linear_score(self) -> tuple[int, int, int] | None:
        """Degree 1 as HCCS's clipped line, ``(B, S, Dmax) = (b_q + δ_q, 1, b_q)``, where those fit HCCS's ranges;
        ``None`` otherwise."""
        b, dmax = self.offset + self.floor, self.offset
        if self.config.poly_n == 1 and b <= B_RANGE[1] and dmax <= DMAX_RANGE[1]:
            return b, 1, dmax
        return None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        score = self.score_table[self.diffs(x)]
        inv = self.numerator // score.sum(axis=1, keepdims=True)
        return np.minimum((score * inv) >> self.inv_shift, 255).astype(np.uint8)


def hccs_params(config: SoftmaxConfig) -> HccsParams:
    """The :class:`HccsParams` of a mode ``hccs`` configuration."""
    return HccsParams(b=config.hccs_b, s=config.hccs_s, dmax=config.hccs_dmax, reciprocal=config.hccs_reciprocal,
                      inv_shift=config.hccs_inv_shift, output_bits=config.output_bits)


def poly_grid(config: SoftmaxConfig) -> tuple[int, int]:
    """``(b_q, δ_q)`` of a mode ``poly`` configuration: ``b`` and ``|δ|`` rounded onto the input grid."""
    scale = float(np.float32(config.input_scale))
    offset = round(float(np.float32(config.poly_b)) / scale)
    floor = round(float(np.float32(config.poly_delta)) / scale ** config.poly_n)
    return offset, floor


def check_surrogate(config: SoftmaxConfig) -> None:
    """The mode's own rules, beyond the ranges of its knobs; :class:`ConfigError` naming the rule."""
    if config.mode == "hccs":
        if config.output_bits not in HCCS_OUTPUT_BITS:
            raise ConfigError(f"output_bits={config.output_bits} is not supported by mode hccs; allowed: 8, 16")
        errors = validity_errors(hccs_params(config), config.n, aie4ml_compatible=config.hccs_sum == "int16")
        if errors:
            raise ConfigError("; ".join(errors))
    elif config.mode == "base2":
        chunk, lanes, n = config.base2_chunk, config.lanes, config.n
        if chunk < n and (chunk % lanes or chunk < 2 * lanes or 0 < n % chunk < 2 * lanes):
            raise ConfigError(f"base2_chunk={chunk} must be a multiple of lanes={lanes} of at least {2 * lanes} that "
                              f"leaves a last chunk of 0 or at least {2 * lanes} of n={n} columns (a beat lies in one "
                              f"chunk, a chunk lasts two beats or more), or at least n={n} (one chunk)")
        frac_bits, grid_shift = config.base2_frac_bits, config.base2_grid_shift
        if frac_bits > grid_shift:
            raise ConfigError(f"base2_frac_bits={frac_bits} is out of range; allowed: 0..base2_grid_shift="
                              f"{grid_shift}")
        if (frac_bits or config.base2_requantize) and chunk < n:
            raise ConfigError(f"base2_frac_bits and base2_requantize take whole rows (ITA's streaming rescale shifts "
                              f"by whole powers of two); allowed: base2_chunk >= n={n}, got {chunk}")
        if config.base2_requantize:
            multiplier = distance_multiplier(config.input_scale, grid_shift)
            low, high = MULTIPLIER_RANGE
            if not low <= multiplier <= high:
                raise ConfigError(f"input_scale={config.input_scale!r} with base2_requantize gives the distance "
                                  f"multiplier {multiplier} on the ln2/2^{grid_shift} grid; allowed: {low}..{high}")
    elif config.mode == "poly":
        offset, floor = poly_grid(config)
        if not 1 <= offset <= POLY_MAX_OFFSET:
            raise ConfigError(f"poly_b={config.poly_b!r} is {offset} input LSBs at input_scale={config.input_scale!r};"
                              f" allowed: 1..{POLY_MAX_OFFSET} LSBs")
        if floor > INV_MAX << 16:
            raise ConfigError(f"poly_delta={config.poly_delta!r} is {floor} on the grid of input_scale^n; "
                              f"allowed: at most {INV_MAX << 16}")


