"""Bit-exact model of HCCS, the Head-Calibrated Clipped-Linear Softmax of aie4ml (Danopoulos et al., 2026).

The reference is the AIE kernel ``softmax_i8::softmax_row`` in GitHub dimdano/aie4ml,
``src/aie4ml/templates/nnet_utils/softmax/softmax.cpp``, with the rounding and saturation modes of
``templates/firmware/variants/softmax/parameters.h.jinja`` (``aie::rounding_mode::floor``,
``aie::saturation_mode::saturate``) and the parameter rules of ``validate_hccs_params``
(``op_impls/families/softmax/common.py``). Per row of ``N`` int8 logits, with per-head ``B`` (int16), ``S`` (int8)
and ``Dmax`` (uint8):

1. ``m = max(x)`` (int8);
2. ``d = min(uint8(m) − uint8(x), Dmax)``, a uint8 difference that equals ``m − x`` in ``0..255``, clamped;
3. ``s = B − S·d`` in an int32 accumulator (``acc = B; acc = mac(acc, int8(d), int8(−S))``), stored as int16;
   clipped elements keep the floor score ``B − S·Dmax``;
4. ``Σ = Σ s`` in int32 (``reduce_add`` of the int32 lane sums);
5. one reciprocal per row, truncated to int16 when broadcast, and one multiply per element (int16 × int16 → int32)
   shifted right by ``OUT_SHIFT`` with floor rounding and saturation to the output type:

   ========  ==========  ===================================  ====================================
   output    reciprocal  ``inv``                              code
   ========  ==========  ===================================  ====================================
   uint8     div         ``floor((255 << inv_shift) / Σ)``    ``sat_u8(floor(s·inv / 2^inv_shift))``
   uint8     clb         ``255 << (inv_shift − k)``           ``sat_u8(floor(s·inv / 2^inv_shift))``
   int16     div         ``floor(32767 / Σ)``                 ``sat_i16(s·inv)``
   int16     clb         ``32767 >> k``                       ``sat_i16(s·inv)``
   ========  ==========  ===================================  ====================================

   with ``k = 31 − clb(Σ) = floor(log2 Σ)`` (``clb`` counts the leading zeros of a positive int32), so the CLB
   reciprocal is ``1 / 2^k ≥ 1 / Σ``: its codes are up to twice the divide codes and saturate.

Output codes. aie4ml types the uint8 output as unsigned Q8 and the int16 output as Q15 (``validate_config`` of its
Softmax variants): probability = code · 2^−8, zero point 0, for 8-bit output; code · 2^−15, zero point 0, for
16-bit output. The numerators 255 and 32767 are the largest codes, so a row whose mass sits in one element reads
255 (0.996) or 32767; with ``div`` a row's codes sum to at most 255 (32767).

Validity rules (:func:`validity_errors`). The reference rejects ``B − S·Dmax < 0`` and ``N·(B − S·Dmax) < 256``:
the latter keeps ``Σ ≥ 256`` so that ``inv`` fits int16 at ``inv_shift = 15``. It also rejects ``N·B > 32767``
"so the score sum fits int16", but its kernel sums in int32: with ``N·B > 32767`` the kernel computes the same
formulas (divide and Q15 codes are exactly this model's) except the 8-bit CLB reciprocal, whose shift count
``inv_shift − k`` turns negative once ``Σ ≥ 2^(inv_shift+1)`` (undefined in C++). Two rules of this model cover
what the reference leaves undefined at other ``inv_shift`` values: the 8-bit reciprocal must fit int16 for every
reachable ``Σ`` (only binding for ``inv_shift > 15``; the linear kernel would wrap it, the tiled kernel saturate
it), and, in aie4ml-compatible use, the 8-bit CLB shift must not be negative.

Sum width. :func:`hccs_softmax` with ``sum_bits=None`` accepts exactly the aie4ml-compatible configurations (the
reference's ``N·B ≤ 32767``, a sum that fits int16) and reproduces the kernel's codes. With ``sum_bits=w`` the sum
is a ``w``-bit two's complement register that must hold ``N·B`` (``N·B ≤ 2^(w−1) − 1``), the reference's
``N·B ≤ 32767`` is lifted, ``255 << inv_shift`` is exact, and a negative 8-bit CLB shift becomes a right shift:
``inv = 255 >> (k − inv_shift)``, i.e. ``floor(255 · 2^(inv_shift − k))``. Codes of aie4ml-compatible
configurations are the same with either setting.

Not modelled: aie4ml also requires ``N`` to be a multiple of its vector width (32 int8 lanes); this model takes any
``N ≥ 1``.
"""

from dataclasses import dataclass
from numbers import Integral

import numpy as np

from int8attn.golden.params import ConfigError

B_RANGE = (0, 32767)
S_RANGE = (0, 127)
DMAX_RANGE = (0, 127)
INV_SHIFT_RANGE = (1, 30)
OUTPUT_BITS = (8, 16)
RECIPROCALS = ("div", "clb")
MIN_SUM = 256
AIE4ML_MAX_SUM = 32767
INV_MAX = 32767
U8_NUMERATOR = 255
Q15_NUMERATOR = 32767


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or not low <= value <= high:
        raise ConfigError(f"HCCS parameter {name} must be an integer in {low}..{high}, got {value!r}")


@dataclass(frozen=True)
class HccsParams:
    """The per-head constants and normalisation variant of one HCCS softmax.

    Members
    -------
    b : int
        Score of the row maximum, ``B``, 0..32767.
    s : int
        Slope, ``S``, 0..127: the score drops by ``S`` per input LSB below the maximum.
    dmax : int
        Clip distance, ``Dmax``, 0..127: elements further below the maximum score ``B − S·Dmax``.
    reciprocal : str
        ``"div"`` (exact floor division) or ``"clb"`` (power-of-two reciprocal ``2^−floor(log2 Σ)``).
    inv_shift : int
        Fraction bits of the 8-bit reciprocal, 1..30 (aie4ml's default 15); unused by 16-bit output.
    output_bits : int
        8 (uint8 codes, scale 2^−8) or 16 (int16 Q15 codes, scale 2^−15); zero point 0 for both.
    """

    b: int
    s: int
    dmax: int
    reciprocal: str = "div"
    inv_shift: int = 15
    output_bits: int = 8

    def __post_init__(self) -> None:
        _check_int("b", self.b, *B_RANGE)
        _check_int("s", self.s, *S_RANGE)
        _check_int("dmax", self.dmax, *DMAX_RANGE)
        _check_int("inv_shift", self.inv_shift, *INV_SHIFT_RANGE)
        if self.reciprocal not in RECIPROCALS:
            raise ConfigError(f"HCCS parameter reciprocal must be one of {', '.join(RECIPROCALS)}, "
                              f"got {self.reciprocal!r}")
        if (isinstance(self.output_bits, bool) or not isinstance(self.output_bits, Integral)
                or self.output_bits not in OUTPUT_BITS):
            raise ConfigError(f"HCCS parameter output_bits must be 8 or 16, got {self.output_bits!r}")

    @property
    def floor_score(self) -> int:
        """Score of a clipped element, ``B − S·Dmax``."""
        return self.b - self.s * self.dmax

    @property
    def output_dtype(self) -> type[np.integer]:
        """``numpy.uint8`` for 8-bit output, ``numpy.int16`` for Q15."""
        return np.uint8 if self.output_bits == 8 else np.int16

    @property
    def output_scale(self) -> float:
        """Probability of one code: 2^−8 (uint8) or 2^−15 (Q15); the zero point is 0."""
        return 2.0 ** -8 if self.output_bits == 8 else 2.0 ** -15


def _floor_log2(total: np.ndarray) -> np.ndarray:
    """``floor(log2 total)`` of positive integers below 2^53 (``31 − clb`` of the reference)."""
    return np.frexp(total.astype(np.float64))[1].astype(np.int64) - 1


def reciprocal(params: HccsParams, total: np.ndarray) -> np.ndarray:
    """The per-row ``inv`` of positive sums ``total`` (int64), before its int16 broadcast."""
    if params.reciprocal == "div":
        numerator = U8_NUMERATOR << params.inv_shift if params.output_bits == 8 else Q15_NUMERATOR
        return numerator // total
    k = _floor_log2(total)
    if params.output_bits == 16:
        return Q15_NUMERATOR >> k
    shift = params.inv_shift - k
    return np.where(shift >= 0, U8_NUMERATOR << np.maximum(shift, 0), U8_NUMERATOR >> np.maximum(-shift, 0))


def validity_errors(params: HccsParams, n: int, aie4ml_compatible: bool) -> list[str]:
    """The rules that ``params`` break for rows of ``n`` elements, one line each; empty when valid.

    Parameters
    ----------
    params : HccsParams
    n : int
        Row length ``N`` (≥ 1).
    aie4ml_compatible : bool
        Apply the reference's sum rule ``N·B ≤ 32767`` and forbid a negative 8-bit CLB shift, as aie4ml needs;
        without it the sum is wider and the model's extensions (module docstring) apply.

    Returns
    -------
    list of str
        Rules in the reference's order: ``B − S·Dmax ≥ 0``, ``N·(B − S·Dmax) ≥ 256``, ``N·B ≤ 32767``
        (aie4ml-compatible only), then the int16 reciprocal rule and the CLB shift rule (compatible only).
    """
    if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
        raise ConfigError(f"row length n must be a positive integer, got {n!r}")
    floor_score = params.floor_score
    errors = []
    if floor_score < 0:
        errors.append(f"HCCS requires B - S*Dmax >= 0 (clipped scores stay non-negative); "
                      f"B={params.b}, S={params.s}, Dmax={params.dmax} give {floor_score}")
    elif n * floor_score < MIN_SUM:
        errors.append(f"HCCS requires N*(B - S*Dmax) >= {MIN_SUM} (reciprocal range); N={n} gives {n * floor_score}")
    if aie4ml_compatible and n * params.b > AIE4ML_MAX_SUM:
        errors.append(f"HCCS (aie4ml-compatible) requires N*B <= {AIE4ML_MAX_SUM} (the reference's int16 score "
                      f"sum); N={n}, B={params.b} give {n * params.b}")
    if errors:
        return errors
    largest_inv = int(reciprocal(params, np.array([n * floor_score], dtype=np.int64))[0])
    if largest_inv > INV_MAX:
        errors.append(f"HCCS requires the reciprocal to fit int16: inv_shift={params.inv_shift} gives inv = "
                      f"{largest_inv} > {INV_MAX} at the smallest sum N*(B - S*Dmax) = {n * floor_score}")
    if aie4ml_compatible and params.reciprocal == "clb" and params.output_bits == 8:
        k = (n * params.b).bit_length() - 1
        if k > params.inv_shift:
            errors.append(f"HCCS (aie4ml-compatible) with CLB and 8-bit output requires floor(log2(N*B)) <= "
                          f"inv_shift, else the reference shifts 255 by a negative count; N*B={n * params.b} "
                          f"gives {k} > {params.inv_shift}")
    return errors


def hccs_softmax(x: np.ndarray, params: HccsParams, sum_bits: int | None = None) -> np.ndarray:
    """HCCS codes of int8 rows, exactly as aie4ml's kernel writes them.

    Parameters
    ----------
    x : numpy.ndarray
        int8 logits, shape ``(..., N)``; the softmax runs along the last axis.
    params : HccsParams
    sum_bits : int or None
        ``None``: aie4ml-compatible configurations only (the reference's ``N·B ≤ 32767``). An integer: width of
        a two's complement sum register that must hold ``N·B``; the reference's sum rule is lifted and the
        model's extensions apply (module docstring).

    Returns
    -------
    numpy.ndarray
        Codes of ``x``'s shape: uint8 (scale 2^−8) or int16 Q15 (scale 2^−15), zero point 0.

    Raises
    ------
    ConfigError
        ``x`` is not int8 with at least one element per row, ``sum_bits`` is too narrow for ``N·B``, or
        ``params`` break a rule of :func:`validity_errors` (the message lists them).
    """
    x = np.asarray(x)
    if x.dtype != np.int8 or x.ndim < 1 or x.shape[-1] < 1:
        raise ConfigError(f"HCCS input must be int8 rows of at least one element, got {x.dtype} {x.shape}")
    n = x.shape[-1]
    if sum_bits is not None:
        if isinstance(sum_bits, bool) or not isinstance(sum_bits, Integral) or sum_bits < 2:
            raise ConfigError(f"sum_bits must be an integer >= 2 or None, got {sum_bits!r}")
        if n * params.b > (1 << (sum_bits - 1)) - 1:
            raise ConfigError(f"sum_bits={sum_bits} cannot hold the largest score sum N*B = {n * params.b}")
    errors = validity_errors(params, n, aie4ml_compatible=sum_bits is None)
    if errors:
        raise ConfigError("; ".join(errors))
    wide = x.astype(np.int64)
    distance = np.minimum(wide.max(axis=-1, keepdims=True) - wide, params.dmax)
    score = params.b - params.s * distance
    inv = reciprocal(params, score.sum(axis=-1, keepdims=True))
    product = score * inv
    if params.output_bits == 8:
        return np.clip(product >> params.inv_shift, 0, 255).astype(np.uint8)
    return np.clip(product, -(1 << 15), (1 << 15) - 1).astype(np.int16)
