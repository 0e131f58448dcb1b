"""Bit-exact model of TinyMind's integer LayerNorm, ``QLayerNorm1D<int8_t, int8_t, Rows, Features>``
(``cpp/qlayernorm.hpp``).

Each row of ``N`` features (last axis) is normalised on its own, in the C++'s integer arithmetic
(:class:`TinyMindLayerNorm`):

* ``sum = Σ x`` (int64); ``mean_q = (sum ± N/2) / N``, the bias ``+N/2`` for ``sum ≥ 0`` and ``−N/2`` otherwise, ``N/2``
  and ``/`` truncating: the mean rounded half away from zero;
* ``var_q = min((Σ (x − mean_q)² + N/2) / N, 2^31 − 1)`` (int64 sum, truncating division);
* ``denom = clamp(var_q + epsilon_q, 0, 2^32 − 1)`` (``uint32_t``), ``inv_q30 = qInvSqrtQ30(denom)``:
  ``2^31 − 1`` for ``denom = 0``, else ``min(2^44 / qIntegerSqrt64(denom << 28), 2^31 − 1)``, where
  ``qIntegerSqrt64`` is Newton's iteration from ``y = x``, which returns ``floor(√x)`` (:func:`floor_isqrt`);
* per feature ``i``: ``dev = x − mean_q``, ``n14 = (dev · inv_q30) >> 16`` (int64, arithmetic shift),
  ``w28 = sat32(n14 · gamma[i])`` (int64 product saturated to int32),
  ``y = clamp(wrap32(multiplyByQuantizedMultiplier(w28, M, shift) + beta[i] + zp_out), qmin, qmax)``, with TinyMind's
  standalone, saturating ``multiplyByQuantizedMultiplier``
  (:func:`~int8attn.golden.add.tinymind_multiply_by_quantized_multiplier`, shift ``> 0`` right); the two additions are
  int32 ones, wrapped as the compiled C++ does (signed overflow in the source).

With int8 inputs ``|dev| ≤ 255`` and ``inv_q30 ≤ 2^30`` for ``denom ≥ 1``, so ``n14`` fits int32 and only ``w28``
(large ``gamma``, tiny variance) and the final additions (huge ``beta``) can leave it.

Host side (the ``#if TINYMIND_ENABLE_FLOAT`` half of the header), scales taken as float32 and every step in double:
``gamma = clamp(lround(γ · 2^14), −32768, 32767)`` (:func:`quantize_gamma`), ``beta = lround(β / s_out)``
(:func:`quantize_beta`), ``epsilon_q = max(1, lround(ε / s_in²))`` (:func:`quantize_epsilon`), and
``(M, shift) = quantizeMultiplier(1 / (2^28 · s_out))`` (:func:`output_params`). The header's storage comment says the
ratio is ``1 / (2^14 · scale_out)``; its code (``buildQLayerNormOutputParams``) and the Q?.28 product use ``2^28``,
which is what this module follows.

Parameter keys (:meth:`TinyMindLayerNorm.from_mapping`, :meth:`TinyMindLayerNorm.arrays`), the names of the shared
``tinymind_encoder_stack.npz``: ``{prefix}.gamma`` int16 ``(N,)``, ``{prefix}.beta`` int32 ``(N,)``,
``{prefix}.epsilon_q``, ``{prefix}.output_multiplier``, ``{prefix}.output_shift``, ``{prefix}.output_zero_point``,
``{prefix}.qmin``, ``{prefix}.qmax``.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from int8attn.golden.add import STANDALONE_SHIFT_PARAM, check_int8, tinymind_multiply_by_quantized_multiplier
from int8attn.golden.attention import INT8_PARAM, MULTIPLIER_PARAM
from int8attn.golden.fixedpoint import INT32_MAX, INT32_MIN, wrap32
from int8attn.golden.params import ConfigError, Param
from int8attn.golden.requant import quantize_multiplier_tinymind
from int8attn.golden.tinymind import llround

GAMMA_FRACTION_BITS = 14
NORMALIZED_SHIFT = 16
SQRT_PRESCALE_BITS = 28
INV_SQRT_NUMERATOR_BITS = 44
Q30_MAX = 0x7FFFFFFF
UINT32_MAX = 0xFFFFFFFF
OUTPUT_RATIO_BITS = 28
"""``buildQLayerNormOutputParams``: ratio ``1 / (2^28 · s_out)`` (the header's comment says 2^14)."""
MAX_ISQRT_INPUT = 1 << 62
INT16_RANGE = (-(1 << 15), (1 << 15) - 1)
EPSILON_PARAM = Param(kind="int", help="epsilon in the var_q domain (int32)", low=INT32_MIN, high=INT32_MAX)
SCALAR_FIELDS = ("epsilon_q", "output_multiplier", "output_shift", "output_zero_point", "qmin", "qmax")


def floor_isqrt(values: np.ndarray | int) -> np.ndarray:
    """``floor(√x)`` of every integer ``0 ≤ x < 2^62``, exactly (``math.isqrt``, vectorised): the float64 root,
    corrected by integer comparisons until ``r² ≤ x < (r + 1)²``."""
    values = np.asarray(values, dtype=np.int64)
    if values.size and (values.min() < 0 or values.max() >= MAX_ISQRT_INPUT):
        raise ValueError(f"floor_isqrt takes integers 0..2^62 − 1, got {values.min()}..{values.max()}")
    root = np.floor(np.sqrt(values.astype(np.float64))).astype(np.int64)
    while True:
        too_big = root * root > values
        too_small = (root + 1) * (root + 1) <= values
        if not (too_big.any() or too_small.any()):
            return root
        root = root - too_big + too_small


def inv_sqrt_q30(denominators: np.ndarray | int) -> np.ndarray:
    """TinyMind's ``qInvSqrtQ30`` of ``uint32_t`` values: ``1/√x`` in Q1.30, ``2^31 − 1`` for 0 (int64 array)."""
    denominators = np.asarray(denominators, dtype=np.int64)
    roots = floor_isqrt(denominators << SQRT_PRESCALE_BITS)
    quotients = (np.int64(1) << INV_SQRT_NUMERATOR_BITS) // np.maximum(roots, 1)
    return np.where(roots == 0, Q30_MAX, np.minimum(quotients, Q30_MAX))


def truncating_divide(numerators: np.ndarray, denominator: int) -> np.ndarray:
    """C's integer ``/`` by a positive ``denominator``: the quotient rounded toward zero."""
    numerators = np.asarray(numerators, dtype=np.int64)
    return np.sign(numerators) * (np.abs(numerators) // denominator)


@dataclass(frozen=True, eq=False)
class TinyMindLayerNorm:
    """TinyMind's ``QLayerNorm1D`` over rows of ``N`` int8 features (module docstring).

    Parameters
    ----------
    gamma : numpy.ndarray
        int16 ``(N,)``, Q1.14 (16384 is γ = 1).
    beta : numpy.ndarray
        int32 ``(N,)``, on the output grid.
    epsilon_q : int
        ε in the ``var_q`` domain, an int32 value (the host gives at least 1).
    output_multiplier : int
        Q0.31 multiplier, 0..2^31 − 1, of the ratio ``1 / (2^28 · s_out)``.
    output_shift : int
        TinyMind shift (``> 0`` right), −31..31; a left shift saturates.
    output_zero_point, qmin, qmax : int
        Output zero point and clamp, int8 values with ``qmin ≤ qmax``.

    Members
    -------
    features : int
        ``N``.
    """

    gamma: np.ndarray
    beta: np.ndarray
    epsilon_q: int
    output_multiplier: int
    output_shift: int
    output_zero_point: int
    qmin: int
    qmax: int

    def __post_init__(self):
        gamma, beta = np.asarray(self.gamma), np.asarray(self.beta)
        if gamma.dtype != np.int16 or gamma.ndim != 1 or gamma.size == 0:
            raise ConfigError(f"gamma {gamma.dtype}{gamma.shape} is out of range; allowed: int16 (N,), N ≥ 1")
        if beta.dtype != np.int32 or beta.shape != gamma.shape:
            raise ConfigError(f"beta {beta.dtype}{beta.shape} is out of range; allowed: int32 {gamma.shape}")
        object.__setattr__(self, "gamma", gamma)
        object.__setattr__(self, "beta", beta)
        EPSILON_PARAM.check("epsilon_q", self.epsilon_q)
        MULTIPLIER_PARAM.check("output_multiplier", self.output_multiplier)
        STANDALONE_SHIFT_PARAM.check("output_shift", self.output_shift)
        for name in ("output_zero_point", "qmin", "qmax"):
            INT8_PARAM.check(name, getattr(self, name))
        if self.qmin > self.qmax:
            raise ConfigError(f"qmin={self.qmin} is out of range; allowed: at most qmax={self.qmax}")

    @property
    def features(self) -> int:
        return self.gamma.shape[0]

    @staticmethod
    def keys(prefix: str) -> tuple[str, ...]:
        """The integer scalar keys under ``prefix`` (``{prefix}.gamma`` and ``{prefix}.beta`` are the arrays)."""
        return tuple(f"{prefix}.{name}" for name in SCALAR_FIELDS)

    @classmethod
    def from_mapping(cls, values: Mapping[str, np.ndarray], prefix: str) -> "TinyMindLayerNorm":
        """The layer stored as ``{prefix}.gamma``, ``{prefix}.beta``, ``{prefix}.epsilon_q``, ... in ``values``."""
        return cls(gamma=values[f"{prefix}.gamma"], beta=values[f"{prefix}.beta"],
                   **{name: int(values[f"{prefix}.{name}"]) for name in SCALAR_FIELDS})

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The layer as :meth:`from_mapping` reads it: ``gamma``, ``beta`` and int32 scalars."""
        return {f"{prefix}.gamma": self.gamma, f"{prefix}.beta": self.beta,
                **{f"{prefix}.{name}": np.int32(getattr(self, name)) for name in SCALAR_FIELDS}}

    def statistics(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(mean_q, inv_q30)`` of every row of int8 ``x`` (``(..., N)``), each ``(..., 1)`` int64."""
        values = np.asarray(x, dtype=np.int64)
        count = values.shape[-1]
        half = count // 2
        total = values.sum(axis=-1, keepdims=True)
        mean = truncating_divide(total + np.where(total >= 0, half, -half), count)
        deviations = values - mean
        variance = np.minimum((np.sum(deviations * deviations, axis=-1, keepdims=True) + half) // count, INT32_MAX)
        denominator = np.clip(variance + self.epsilon_q, 0, UINT32_MAX)
        return mean, inv_sqrt_q30(denominator)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """LayerNorm of every row of int8 ``x`` (``(..., N)``, features on the last axis) → int8 ``(..., N)``."""
        x = check_int8("x", x)
        if x.ndim < 1 or x.shape[-1] != self.features:
            raise ValueError(f"x must be int8 (..., {self.features}), got {x.dtype}{x.shape}")
        mean, inverse = self.statistics(x)
        normalized = ((x.astype(np.int64) - mean) * inverse) >> NORMALIZED_SHIFT
        weighted = np.clip(normalized * self.gamma.astype(np.int64), INT32_MIN, INT32_MAX)
        rescaled = tinymind_multiply_by_quantized_multiplier(weighted, self.output_multiplier, self.output_shift)
        with_bias = wrap32(rescaled + self.beta.astype(np.int64) + self.output_zero_point)
        return np.clip(with_bias, self.qmin, self.qmax).astype(np.int8)


# Host side: TinyMind's float → integer parameters.

def quantize_gamma(gamma: np.ndarray) -> np.ndarray:
    """``quantizeLayerNormGamma``: int16 ``clamp(lround(double(γ) · 2^14), −32768, 32767)`` of float32 γ."""
    levels = [llround(float(value) * (1 << GAMMA_FRACTION_BITS)) for value in np.asarray(gamma, np.float32).ravel()]
    return np.clip(levels, *INT16_RANGE).astype(np.int16).reshape(np.shape(gamma))


def quantize_beta(beta: np.ndarray, output_scale: float) -> np.ndarray:
    """``quantizeLayerNormBeta``: int32 ``lround(double(β) / double(s_out))`` of float32 β and scale;
    :class:`ConfigError` beyond int32 (the C++'s ``long`` → ``int32_t`` cast would not keep it)."""
    scale = float(np.float32(output_scale))
    levels = [llround(float(value) / scale) for value in np.asarray(beta, np.float32).ravel()]
    if levels and not INT32_MIN <= min(levels) <= max(levels) <= INT32_MAX:
        raise ConfigError(f"beta is out of range on the output grid (largest {max(map(abs, levels))}); allowed: "
                          "|β| / output_scale < 2^31")
    return np.array(levels, dtype=np.int32).reshape(np.shape(beta))


def quantize_epsilon(epsilon: float, input_scale: float) -> int:
    """``quantizeLayerNormEpsilon``: ``max(1, lround(double(ε) / (double(s_in) · double(s_in))))``, float32 inputs;
    1 when ``s_in² ≤ 0``; :class:`ConfigError` beyond int32."""
    squared = float(np.float32(input_scale)) * float(np.float32(input_scale))
    if squared <= 0.0:
        return 1
    level = llround(float(np.float32(epsilon)) / squared)
    if level > INT32_MAX:
        raise ConfigError(f"epsilon={epsilon!r} is out of range at input_scale={input_scale!r} (ε / s_in² = {level}); "
                          "allowed: ε / s_in² < 2^31")
    return max(1, level)


def output_params(output_scale: float) -> tuple[int, int]:
    """``buildQLayerNormOutputParams``: ``(multiplier, shift)`` of ``1 / (2^28 · double(s_out))`` through
    ``quantizeMultiplier`` (TinyMind shift, ``> 0`` right)."""
    ratio = 1.0 / (math.ldexp(1.0, OUTPUT_RATIO_BITS) * float(np.float32(output_scale)))
    return quantize_multiplier_tinymind(ratio)
