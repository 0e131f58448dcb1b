"""Bit-exact model of TinyMind's quantised elementwise ADD, ``QAdd`` (``cpp/qadd.hpp``), which follows TFLite's int8
``ADD``.

Per element, in the C++'s ``int32_t`` arithmetic (:class:`TinyMindAdd`)::

    shifted_a = (a − zp_a) · 2^left_shift                  shifted_b likewise
    scaled_a  = multiplyByQuantizedMultiplier(shifted_a, M_a, shift_a)
    scaled_b  = multiplyByQuantizedMultiplier(shifted_b, M_b, shift_b)
    out       = output_requantizer.apply(wrap32(scaled_a + scaled_b))

``multiplyByQuantizedMultiplier`` is TinyMind's standalone primitive (``cpp/qaffine.hpp``,
:func:`tinymind_multiply_by_quantized_multiplier`): its shift is TinyMind's (``> 0`` right); a left shift is done in
64 bits, capped at 31 and *saturated* to int32 before ``SaturatingRoundingDoublingHighMul``, unlike
``Requantizer::apply``, whose int32 multiply wraps. For a right shift both are TFLite's
``MultiplyByQuantizedMultiplier`` with double rounding. ``output_requantizer`` is ``Requantizer<int32_t, int8_t>``
(:class:`~int8attn.golden.attention.TinyMindRequantizer`): the zero point, a clamp to ``qmin..qmax``.
``left_shift`` is at most 23, so ``(a − zp_a) · 2^left_shift`` of int8 values fits int32; the sum of the two scaled
terms is an int32 addition, wrapped as the compiled C++ does (signed overflow in the source).

Host side (``buildQAddParams``, ``cpp/include/qcalibration.hpp``; :meth:`TinyMindAdd.from_scales`): with float32
scales, ``max_in = max(s_a, s_b)`` in float32, ``twice = 2·double(max_in)``, the real multipliers ``s_a / twice``,
``s_b / twice`` and ``twice / (2^left_shift · s_out)`` in double, each through ``quantizeMultiplier``
(:func:`~int8attn.golden.requant.quantize_multiplier_tinymind`). TFLite's ``ADD`` forms the same multipliers
(``QuantizeMultiplierSmallerThanOneExp``, shift ``≤ 0`` left, i.e. TinyMind's shift negated) and computes the same
arithmetic, so :meth:`TinyMindAdd.from_scales` with TFLite's activation range reproduces TFLite's int8 ``ADD``.

Parameter keys (:meth:`TinyMindAdd.from_mapping`, :meth:`TinyMindAdd.arrays`), the names of the shared
``tinymind_encoder_stack.npz``: ``{prefix}.input_a_zero_point``, ``{prefix}.input_b_zero_point``,
``{prefix}.left_shift``, ``{prefix}.input_a_multiplier``, ``{prefix}.input_a_shift``, ``{prefix}.input_b_multiplier``,
``{prefix}.input_b_shift``, ``{prefix}.output_requantizer.{multiplier,shift,zero_point,qmin,qmax}``.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import numpy as np

from int8attn.golden.attention import (
    INT8_MAX,
    INT8_MIN,
    INT8_PARAM,
    MULTIPLIER_PARAM,
    REQUANTIZER_FIELDS,
    Grid,
    TinyMindRequantizer,
)
from int8attn.golden.fixedpoint import INT32_MAX, INT32_MIN, wrap32
from int8attn.golden.params import ConfigError, Param
from int8attn.golden.requant import multiply_by_quantized_multiplier, quantize_multiplier_tinymind

DEFAULT_LEFT_SHIFT = 20
MAX_LEFT_SHIFT = 23
"""``255 · 2^23 < 2^31``: the largest ``left_shift`` for which ``(a − zp) · 2^left_shift`` of int8 values fits int32."""
LEFT_SHIFT_CAP = 31
"""``multiplyByQuantizedMultiplier`` caps its left shift at 31 (``|x| · 2^31`` fits int64)."""
STANDALONE_SHIFT_PARAM = Param(kind="int", help="TinyMind shift, > 0 right, < 0 a saturating left shift",
                               low=-LEFT_SHIFT_CAP, high=31)
LEFT_SHIFT_PARAM = Param(kind="int", help="left shift of the centred inputs", low=0, high=MAX_LEFT_SHIFT)
OUTPUT_REQUANTIZER = "output_requantizer"
Built = TypeVar("Built")


def with_prefix(prefix: str, factory: Callable[..., Built], *args, **kwargs) -> Built:
    """``factory(*args, **kwargs)``; a :class:`ConfigError` it raises is raised again with ``prefix`` before its
    message (the parameter's key below a layer)."""
    try:
        return factory(*args, **kwargs)
    except ConfigError as error:
        raise ConfigError(f"{prefix}{error}") from None


def tinymind_multiply_by_quantized_multiplier(x: np.ndarray | int, multiplier: np.ndarray | int,
                                              shift: np.ndarray | int) -> np.ndarray:
    """TinyMind's standalone ``multiplyByQuantizedMultiplier`` (``cpp/qaffine.hpp``) on int32 values, broadcasting.

    ``shift`` is TinyMind's (``> 0`` right). A left shift (``shift < 0``) is capped at 31 and its product saturated
    to int32 before ``SaturatingRoundingDoublingHighMul``; a right shift is ``RoundingDivideByPOT`` of its result.
    Returns int64 values in the int32 range.
    """
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left_shift = np.minimum(np.maximum(-shift, 0), LEFT_SHIFT_CAP)
    saturated = np.clip(x << left_shift, INT32_MIN, INT32_MAX)
    return multiply_by_quantized_multiplier(saturated, multiplier, -np.maximum(shift, 0))


def check_int8(name: str, values: np.ndarray) -> np.ndarray:
    """``values`` as an int8 array; :class:`ValueError` naming ``name`` otherwise."""
    values = np.asarray(values)
    if values.dtype != np.int8:
        raise ValueError(f"{name} must be int8, got {values.dtype}{values.shape}")
    return values


@dataclass(frozen=True)
class TinyMindAdd:
    """TinyMind's ``QAdd<int8_t, int8_t, int8_t, N>``: the module docstring's arithmetic on int8 ``a`` and ``b``.

    Parameters
    ----------
    input_a_zero_point, input_b_zero_point : int
        Zero points of ``a`` and ``b``, int8 values.
    left_shift : int
        Left shift of the centred inputs, 0..23 (TFLite and TinyMind use 20).
    input_a_multiplier, input_b_multiplier : int
        Q0.31 multipliers, 0..2^31 − 1.
    input_a_shift, input_b_shift : int
        TinyMind shifts (``> 0`` right), −31..31; a left shift saturates.
    output_requantizer : TinyMindRequantizer
        Sum → int8 output: multiplier, shift, output zero point, ``qmin``/``qmax``.

    Members
    -------
    SCALAR_FIELDS : tuple of str
        Class attribute: the integer fields, each one key ``{prefix}.{field}`` of the parameter file.
    """

    SCALAR_FIELDS: ClassVar[tuple[str, ...]] = ("input_a_zero_point", "input_b_zero_point", "left_shift",
                                                "input_a_multiplier", "input_a_shift", "input_b_multiplier",
                                                "input_b_shift")

    input_a_zero_point: int
    input_b_zero_point: int
    left_shift: int
    input_a_multiplier: int
    input_a_shift: int
    input_b_multiplier: int
    input_b_shift: int
    output_requantizer: TinyMindRequantizer

    def __post_init__(self):
        for name in ("input_a_zero_point", "input_b_zero_point"):
            INT8_PARAM.check(name, getattr(self, name))
        LEFT_SHIFT_PARAM.check("left_shift", self.left_shift)
        for name in ("input_a_multiplier", "input_b_multiplier"):
            MULTIPLIER_PARAM.check(name, getattr(self, name))
        for name in ("input_a_shift", "input_b_shift"):
            STANDALONE_SHIFT_PARAM.check(name, getattr(self, name))
        if not isinstance(self.output_requantizer, TinyMindRequantizer):
            raise ConfigError(f"{OUTPUT_REQUANTIZER}={self.output_requantizer!r} is out of range; allowed: a "
                              "TinyMindRequantizer")

    @classmethod
    def keys(cls, prefix: str) -> tuple[str, ...]:
        """Every key of the layer under ``prefix``, as :meth:`arrays` writes them (all integer scalars)."""
        return (*(f"{prefix}.{name}" for name in cls.SCALAR_FIELDS),
                *(f"{prefix}.{OUTPUT_REQUANTIZER}.{name}" for name in REQUANTIZER_FIELDS))

    @classmethod
    def from_mapping(cls, values: Mapping[str, np.ndarray], prefix: str) -> "TinyMindAdd":
        """The layer stored as ``{prefix}.input_a_zero_point``, ... in ``values`` (module docstring)."""
        requantizer = with_prefix(f"{OUTPUT_REQUANTIZER}.", TinyMindRequantizer.from_mapping, values,
                                  f"{prefix}.{OUTPUT_REQUANTIZER}")
        return cls(**{name: int(values[f"{prefix}.{name}"]) for name in cls.SCALAR_FIELDS},
                   output_requantizer=requantizer)

    @classmethod
    def from_scales(cls, a: Grid, b: Grid, output: Grid, *, qmin: int = INT8_MIN, qmax: int = INT8_MAX,
                    left_shift: int = DEFAULT_LEFT_SHIFT) -> "TinyMindAdd":
        """TinyMind's ``buildQAddParams(a.scale, b.scale, output.scale, left_shift)`` with the grids' zero points and
        the output clamp ``qmin..qmax`` (module docstring). Scales are taken as float32."""
        LEFT_SHIFT_PARAM.check("left_shift", left_shift)
        for name, grid in (("a", a), ("b", b), ("output", output)):
            Param(kind="float", help="scale").check(f"{name}.scale", grid.scale)
        a_scale, b_scale, output_scale = (np.float32(grid.scale) for grid in (a, b, output))
        twice_max = 2.0 * float(max(a_scale, b_scale))
        a_multiplier, a_shift = quantize_multiplier_tinymind(float(a_scale) / twice_max)
        b_multiplier, b_shift = quantize_multiplier_tinymind(float(b_scale) / twice_max)
        out_multiplier, out_shift = quantize_multiplier_tinymind(
            twice_max / (float(1 << left_shift) * float(output_scale)))
        requantizer = with_prefix(f"{OUTPUT_REQUANTIZER}.", TinyMindRequantizer, multiplier=out_multiplier,
                                  shift=out_shift, zero_point=output.zero_point, qmin=qmin, qmax=qmax)
        return cls(input_a_zero_point=a.zero_point, input_b_zero_point=b.zero_point, left_shift=left_shift,
                   input_a_multiplier=a_multiplier, input_a_shift=a_shift, input_b_multiplier=b_multiplier,
                   input_b_shift=b_shift, output_requantizer=requantizer)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The layer as :meth:`from_mapping` reads it: int32 scalars ``{prefix}.input_a_zero_point``, ..."""
        return ({f"{prefix}.{name}": np.int32(getattr(self, name)) for name in self.SCALAR_FIELDS}
                | self.output_requantizer.arrays(f"{prefix}.{OUTPUT_REQUANTIZER}"))

    def scaled(self, values: np.ndarray, zero_point: int, multiplier: int, shift: int) -> np.ndarray:
        """One input's ``scaled`` term: ``multiplyByQuantizedMultiplier((values − zero_point) · 2^left_shift)``."""
        shifted = (values.astype(np.int64) - zero_point) << self.left_shift
        return tinymind_multiply_by_quantized_multiplier(shifted, multiplier, shift)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a + b`` of int8 arrays (shapes broadcast as numpy's; TinyMind adds equal shapes) → int8."""
        a, b = check_int8("a", a), check_int8("b", b)
        total = wrap32(self.scaled(a, self.input_a_zero_point, self.input_a_multiplier, self.input_a_shift)
                       + self.scaled(b, self.input_b_zero_point, self.input_b_multiplier, self.input_b_shift))
        return self.output_requantizer(total)
