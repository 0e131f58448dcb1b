"""The add unit's configuration and model: :class:`AddConfig` (the grids of ``a``, ``b`` and the output, or explicit
integer parameters; elements per frame and lanes) and :class:`AddModel`, TinyMind's ``QAdd`` = TFLite's int8 ``ADD``
(:class:`~int8attn.golden.add.TinyMindAdd`) on frames of two equal-length int8 operands.

Parameters, either way giving one :class:`~int8attn.golden.add.TinyMindAdd`:

* from the grids (the default): ``TinyMindAdd.from_scales`` (TinyMind's ``buildQAddParams``, which forms the
  multipliers exactly as TFLite's ``ADD`` does) with ``left_shift`` and the output clamp of ``activation``, ranged as
  TFLite's ``CalculateActivationRangeQuantized``, or ``act_min``/``act_max``;
* explicitly: ``input_a_multiplier``, ``input_a_shift``, ``input_b_multiplier``, ``input_b_shift``,
  ``output_multiplier``, ``output_shift`` (TinyMind's shifts, ``> 0`` right), the names of a ``QAdd``'s keys in
  TinyMind's encoder-stack file, with the zero points, ``left_shift`` and the clamp.

A frame is ``elements`` values of ``a`` (stream ``a``) and of ``b`` (stream ``b``); its output is their sums,
element by element.
"""

from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np

from int8attn.golden.add import DEFAULT_LEFT_SHIFT, MAX_LEFT_SHIFT, TinyMindAdd, check_int8, with_prefix
from int8attn.golden.attention import INT8_MAX, INT8_MIN, Grid, TinyMindRequantizer
from int8attn.golden.params import TARGETS, ConfigError, Implementation, check_params, implementation_last, param
from int8attn.golden.requant import (
    ACTIVATIONS,
    MULTIPLIER_RANGE,
    TINYMIND_SHIFT_RANGE,
    activation_range,
)

MAX_ELEMENTS = 65536
MAX_LANES = 64
INPUT_SHIFT_RANGE = (-31, 31)
"""TinyMind's shifts of the input terms (``> 0`` right; a left shift saturates, capped at 31)."""
DEFAULT_SCALES = {"a_scale": 0.05, "b_scale": 0.05, "output_scale": 0.1}
INTEGER_FIELDS = ("input_a_multiplier", "input_a_shift", "input_b_multiplier", "input_b_shift", "output_multiplier",
                  "output_shift")
INTEGER_GROUP = "integer parameters (instead of the scales; all six together)"


@dataclass(frozen=True)
class AddConfig(Implementation):
    """Parameters of one add unit.

    Parameters
    ----------
    elements : int
        Elements per frame of ``a``, ``b`` and the output, 1..65536.
    lanes : int
        Elements per beat, 1..64, dividing ``elements``.
    a_scale, b_scale, output_scale : float or None
        Scales (float32) of ``a``, ``b`` and the output. Without integer parameters ``None`` takes 0.05, 0.05 and
        0.1; with them ``a_scale`` and ``b_scale`` must be ``None``, and ``output_scale`` serves ``relu6`` only.
    a_zero_point, b_zero_point, output_zero_point : int
        Zero points, −128..127.
    activation : str
        Fused activation ``none``, ``relu`` or ``relu6``, ranged as TFLite's ``CalculateActivationRangeQuantized``.
    act_min, act_max : int or None
        Explicit output clamp (activation ``none`` only); ``None`` takes −128 or 127.
    left_shift : int
        Left shift of the centred inputs, 0..23 (TFLite and TinyMind: 20).
    input_a_multiplier, input_b_multiplier, output_multiplier : int or None
        Explicit Q0.31 multipliers, 0..2^31 − 1.
    input_a_shift, input_b_shift : int or None
        Explicit shifts of the input terms, TinyMind's sign (``> 0`` right), −31..31; a left shift saturates.
    output_shift : int or None
        Explicit shift of the output requantizer, TinyMind's sign, −30..31; a left shift wraps.
    target, interface : str
        See :class:`~int8attn.golden.params.Implementation`.
    """

    IMPLEMENTED_TARGETS: ClassVar[tuple[str, ...]] = TARGETS

    elements: int = param(16, kind="int", low=1, high=MAX_ELEMENTS, help="elements per frame of a, b and the output")
    lanes: int = param(4, kind="int", low=1, high=MAX_LANES, structural=True,
                       help="elements per beat, dividing elements")
    a_scale: float | None = param(None, kind="float", optional=True,
                                  help="scale of input a, float32 (default: 0.05 without integer parameters)")
    a_zero_point: int = param(0, kind="int", low=INT8_MIN, high=INT8_MAX, help="zero point of input a")
    b_scale: float | None = param(None, kind="float", optional=True,
                                  help="scale of input b, float32 (default: 0.05 without integer parameters)")
    b_zero_point: int = param(0, kind="int", low=INT8_MIN, high=INT8_MAX, help="zero point of input b")
    output_scale: float | None = param(None, kind="float", optional=True,
                                       help="output scale, float32 (default: 0.1 without integer parameters)")
    output_zero_point: int = param(0, kind="int", low=INT8_MIN, high=INT8_MAX, help="output zero point")
    activation: str = param("none", kind="choice", choices=ACTIVATIONS, help="fused activation, ranged as TFLite")
    act_min: int | None = param(None, kind="int", low=INT8_MIN, high=INT8_MAX, optional=True,
                                help="explicit lower clamp, activation none only (default: -128)")
    act_max: int | None = param(None, kind="int", low=INT8_MIN, high=INT8_MAX, optional=True,
                                help="explicit upper clamp, activation none only (default: 127)")
    left_shift: int = param(DEFAULT_LEFT_SHIFT, kind="int", low=0, high=MAX_LEFT_SHIFT,
                            help="left shift of the centred inputs (TFLite, TinyMind: 20)")
    input_a_multiplier: int | None = param(None, kind="int", low=MULTIPLIER_RANGE[0], high=MULTIPLIER_RANGE[1],
                                           optional=True, group=INTEGER_GROUP,
                                           help="Q0.31 multiplier of input a (default: from the scales)")
    input_a_shift: int | None = param(None, kind="int", low=INPUT_SHIFT_RANGE[0], high=INPUT_SHIFT_RANGE[1],
                                      optional=True, group=INTEGER_GROUP,
                                      help="shift of input a, > 0 right, < 0 a saturating left shift (default: from "
                                           "the scales)")
    input_b_multiplier: int | None = param(None, kind="int", low=MULTIPLIER_RANGE[0], high=MULTIPLIER_RANGE[1],
                                           optional=True, group=INTEGER_GROUP,
                                           help="Q0.31 multiplier of input b (default: from the scales)")
    input_b_shift: int | None = param(None, kind="int", low=INPUT_SHIFT_RANGE[0], high=INPUT_SHIFT_RANGE[1],
                                      optional=True, group=INTEGER_GROUP,
                                      help="shift of input b, > 0 right, < 0 a saturating left shift (default: from "
                                           "the scales)")
    output_multiplier: int | None = param(None, kind="int", low=MULTIPLIER_RANGE[0], high=MULTIPLIER_RANGE[1],
                                          optional=True, group=INTEGER_GROUP,
                                          help="Q0.31 multiplier of the sum (default: from the scales)")
    output_shift: int | None = param(None, kind="int", low=TINYMIND_SHIFT_RANGE[0], high=TINYMIND_SHIFT_RANGE[1],
                                     optional=True, group=INTEGER_GROUP,
                                     help="shift of the sum, > 0 right, < 0 a wrapping left shift (default: from the "
                                          "scales)")

    def __post_init__(self):
        super().__post_init__()
        check_params(self)
        if self.elements % self.lanes:
            divisors = ", ".join(str(d) for d in range(1, min(self.elements, MAX_LANES) + 1) if self.elements % d == 0)
            raise ConfigError(f"lanes={self.lanes} does not divide elements={self.elements}; allowed: {divisors}")
        given = [name for name in INTEGER_FIELDS if getattr(self, name) is not None]
        if given:
            missing = [name for name in INTEGER_FIELDS if getattr(self, name) is None]
            if missing:
                raise ConfigError(f"{missing[0]}=None is out of range; allowed: an integer, given together with "
                                  f"{', '.join(given)} (all of {', '.join(INTEGER_FIELDS)}, or none)")
            for name in ("a_scale", "b_scale"):
                if getattr(self, name) is not None:
                    raise ConfigError(f"{name}={getattr(self, name)!r} is given together with integer parameters; "
                                      "allowed: None (give either the scales or the integer parameters)")
        else:
            for name, default in DEFAULT_SCALES.items():
                if getattr(self, name) is None:
                    object.__setattr__(self, name, default)
        for name in ("act_min", "act_max"):
            if getattr(self, name) is not None and self.activation != "none":
                raise ConfigError(f"{name}={getattr(self, name)!r} applies to activation none only; allowed: None "
                                  f"(activation {self.activation} derives the clamp from the output grid)")
        act_min, act_max = self.output_range()
        if act_min > act_max:
            raise ConfigError(f"act_min={act_min} is out of range; allowed: at most act_max={act_max}")
        self.layer()

    @property
    def integer_parameters(self) -> bool:
        """The multipliers and shifts are given, not formed from the scales."""
        return self.input_a_multiplier is not None

    @property
    def frame_elements(self) -> int:
        """Elements of a frame of ``a`` (and of ``b``), ``elements``."""
        return self.elements

    @property
    def beats(self) -> int:
        """Beats per frame on every stream, ``elements / lanes``."""
        return self.elements // self.lanes

    def output_range(self) -> tuple[int, int]:
        """``(act_min, act_max)``: the activation's range, or the explicit clamp with activation ``none``."""
        act_min, act_max = activation_range(self.activation, 8, self.output_zero_point, self.output_scale)
        return (act_min if self.act_min is None else self.act_min,
                act_max if self.act_max is None else self.act_max)

    def layer(self) -> TinyMindAdd:
        """The integer ``QAdd`` the configuration describes: from the scales (``buildQAddParams``) or the explicit
        integer parameters."""
        qmin, qmax = self.output_range()
        if not self.integer_parameters:
            grids = [Grid(getattr(self, f"{name}_scale"), getattr(self, f"{name}_zero_point"))
                     for name in ("a", "b", "output")]
            return with_prefix("a_scale, b_scale, output_scale give ", TinyMindAdd.from_scales, *grids, qmin=qmin,
                               qmax=qmax, left_shift=self.left_shift)
        requantizer = TinyMindRequantizer(multiplier=self.output_multiplier, shift=self.output_shift,
                                          zero_point=self.output_zero_point, qmin=qmin, qmax=qmax)
        return TinyMindAdd(input_a_zero_point=self.a_zero_point, input_b_zero_point=self.b_zero_point,
                           left_shift=self.left_shift, input_a_multiplier=self.input_a_multiplier,
                           input_a_shift=self.input_a_shift, input_b_multiplier=self.input_b_multiplier,
                           input_b_shift=self.input_b_shift, output_requantizer=requantizer)

    @classmethod
    def from_layer(cls, layer: TinyMindAdd, **parameters) -> "AddConfig":
        """The configuration of the integer ``layer`` (a ``QAdd`` read from TinyMind's parameters): its multipliers,
        shifts, zero points, left shift and clamp, with the other fields from ``parameters``."""
        requantizer = layer.output_requantizer
        return cls(a_zero_point=layer.input_a_zero_point, b_zero_point=layer.input_b_zero_point,
                   output_zero_point=requantizer.zero_point, left_shift=layer.left_shift,
                   input_a_multiplier=layer.input_a_multiplier, input_a_shift=layer.input_a_shift,
                   input_b_multiplier=layer.input_b_multiplier, input_b_shift=layer.input_b_shift,
                   output_multiplier=requantizer.multiplier, output_shift=requantizer.shift,
                   act_min=requantizer.qmin, act_max=requantizer.qmax, **parameters)

    OPERAND_SHAPE: ClassVar[tuple[str, ...]] = ("elements",)
    """The fields :meth:`from_operands` takes from the operands' shapes."""

    @classmethod
    def from_operands(cls, a: np.ndarray, b: np.ndarray, **parameters) -> "AddConfig":
        """The configuration of int8 operands ``a`` and ``b`` of one shape ``(..., elements)``; :class:`ConfigError`
        naming the operand otherwise."""
        for name, array in (("a", a), ("b", b)):
            if array.dtype != np.int8 or array.ndim < 1 or array.shape[-1] == 0:
                raise ConfigError(f"{name} has dtype {array.dtype} and shape {list(array.shape)}; allowed: int8 "
                                  "with at least 1 dimension")
        if b.shape != a.shape:
            raise ConfigError(f"b has shape {list(b.shape)}; allowed: a's shape {list(a.shape)}")
        return cls(elements=a.shape[-1], **parameters)

    def as_dict(self) -> dict:
        """Every parameter, JSON-serialisable; ``AddConfig(**config.as_dict())`` rebuilds the config."""
        return implementation_last(asdict(self))


class AddModel:
    """Bit-exact ``QAdd`` of one :class:`AddConfig` on frames: called with a mapping ``{"a": rows, "b": rows}`` of
    int8 ``rows × elements`` arrays, or with arrays of any one shape through :meth:`instances`.

    Members
    -------
    config : AddConfig
    layer : TinyMindAdd
        The integer parameters.
    input_dtype, output_dtype : type
        ``numpy.int8``.
    output_description : str
    """

    input_dtype = np.int8
    output_dtype = np.int8

    def __init__(self, config: AddConfig):
        self.config = config
        self.layer = config.layer()

    @property
    def output_description(self) -> str:
        requantizer = self.layer.output_requantizer
        scale = "" if self.config.output_scale is None else f", scale {self.config.output_scale}"
        return (f"int8, zero point {requantizer.zero_point}{scale}, clamped to {requantizer.qmin}..{requantizer.qmax}")

    def check_rows(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` as int8 ``rows × elements``; :class:`ValueError` otherwise."""
        rows = check_int8("rows", rows)
        if rows.ndim != 2 or rows.shape[1] != self.config.elements:
            raise ValueError(f"rows must have shape (rows, {self.config.elements}), got {rows.shape}")
        return rows

    def instances(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a + b`` of int8 arrays of one shape → int8 of that shape."""
        if np.shape(a) != np.shape(b):
            raise ValueError(f"a and b must have the same shape, got {np.shape(a)} and {np.shape(b)}")
        return self.layer(a, b)

    def __call__(self, frames: dict[str, np.ndarray]) -> np.ndarray:
        a, b = (self.check_rows(np.asarray(frames[name])) for name in ("a", "b"))
        return self.instances(a, b)
