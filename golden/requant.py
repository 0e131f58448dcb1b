"""Bit-exact model of the requantizer: int32 accumulators → int8/int16, as TFLite's int8 kernels and TinyMind do.

A row (frame) of ``channels`` int32 accumulators arrives ``lanes`` per beat; element ``k`` of a row belongs to
channel ``k`` and leaves as

    ``out = clamp(wrap32(MultiplyByQuantizedMultiplier(acc, M[k], shift[k]) + output_zero_point), act_min, act_max)``

Arithmetic (TFLite's default double rounding, ``tensorflow/lite/kernels/internal/common.h``; not
``TFLITE_SINGLE_ROUNDING``)::

    left_shift = shift > 0 ? shift : 0;  right_shift = shift > 0 ? 0 : -shift;
    RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc * (1 << left_shift), M), right_shift)

``acc · 2^left_shift`` and the zero-point addition are int32 operations that wrap in two's complement, as the
compiled C++ does (both are signed overflow in the source). ``shift`` is TFLite's signed exponent, ``> 0`` left, in
−31..30: ``QuantizeMultiplier`` flushes exponents below −31 to ``M = 0``, and −31..30 is the contract of TFLite's
``MultiplyByQuantizedMultiplier`` (``TFLITE_DCHECK(shift >= -31 && shift <= 30)`` of the single-rounding build, which
also clamps larger exponents to 30); a double-rounding exponent of 31 or more would need ``1 << 31``.

Multipliers from real scales (``tensorflow/lite/kernels/kernel_util.cc``), scales taken as float32:

* per-tensor, convention ``tflite`` (``GetQuantizedConvolutionMultipler``):
  ``double(float32(input_scale · weight_scale)) / double(output_scale)`` — the product is rounded to float32;
* per-channel (``PopulateConvolutionQuantizationParams``), and every multiplier of convention ``tinymind``
  (``buildRequantizer`` in TinyMind's ``cpp/include/qcalibration.hpp``):
  ``double(input_scale) · double(weight_scale[c]) / double(output_scale)``.

``QuantizeMultiplier`` (``quantization_util.cc``): ``0 → (0, 0)``; else ``frexp``, ``q = round(mantissa · 2^31)``
half away from zero (``TfLiteRound`` = ``std::round``), ``q = 2^31 → (2^30, exponent + 1)``, and an exponent below
−31 becomes ``(0, 0)``. TinyMind's ``quantizeMultiplier`` (``cpp/qaffine.hpp``) is the same with ``llround`` (also
half away from zero) but returns ``shift = −exponent`` (``> 0`` right) and flushes nothing: a multiplier below 2^−32
gives a right shift past 31, where its ``roundingDivideByPOT`` shifts a ``uint32_t`` by 32 or more (undefined), so
convention ``tinymind`` rejects it. TinyMind's ``Requantizer::apply`` computes exactly the arithmetic above (int32
``shifted * (1 << left_shift)``, the same SRDHM and RDBPOT, an int32 zero-point addition, a clamp to ``qmin..qmax``);
its standalone ``multiplyByQuantizedMultiplier``, which saturates the left shift instead, is not what its layers call.

Activation range (``CalculateActivationRangeQuantized`` in ``kernel_util.cc``): ``none`` → ``qmin..qmax``; ``relu``
→ ``act_min = max(qmin, zp)``; ``relu6`` additionally ``act_max = min(qmax, zp + std::round(6.0f / output_scale))``
with the quotient and its rounding in float32. Convention ``tinymind`` uses the same rule (TinyMind's requantizer
takes ``qmin``/``qmax`` from its caller); ``act_min``/``act_max`` may also be given directly with activation ``none``.
"""

import math
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np

from int8attn.golden.fixedpoint import rounding_divide_by_pot, srdhm, wrap32
from int8attn.golden.params import (
    TARGETS,
    ConfigError,
    Implementation,
    check_params,
    implementation_last,
    param,
    params,
)
from int8attn.golden.stimuli import check_rows

MAX_CHANNELS = 4096
MAX_LANES = 64
MULTIPLIER_RANGE = (0, (1 << 31) - 1)
SHIFT_RANGE = (-31, 30)
TINYMIND_SHIFT_RANGE = (-SHIFT_RANGE[1], -SHIFT_RANGE[0])
OUTPUT_BITS = (8, 16)
ACTIVATIONS = ("none", "relu", "relu6")
CONVENTIONS = ("tflite", "tinymind")
RELU6_LIMIT = 6.0
DEFAULT_SCALES = {"input_scale": 0.05, "weight_scales": (0.01,), "output_scale": 0.1}
SEQUENCE_FIELDS = ("multipliers", "shifts", "weight_scales")


def output_limits(output_bits: int) -> tuple[int, int]:
    """``qmin, qmax`` of a signed ``output_bits`` integer."""
    return -(1 << (output_bits - 1)), (1 << (output_bits - 1)) - 1


def round_half_away_from_zero(value: float) -> int:
    """``std::round`` of a double, exactly (``value − floor(value)`` is exact in floating point)."""
    magnitude = abs(value)
    whole = math.floor(magnitude)
    rounded = whole + (magnitude - whole >= 0.5)
    return rounded if value >= 0 else -rounded


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier``: ``real ≈ multiplier · 2^(shift − 31)``, ``shift > 0`` meaning a left shift.

    Returns ``(0, 0)`` for 0 and for reals whose exponent is below −31 (below 2^−32 unless they round up to it). The
    shift is not clamped: reals from just below 2^30 up give 31 or more, which :class:`RequantConfig` rejects.
    """
    q_fixed, exponent = _q31_and_exponent(real)
    if exponent < -31:
        return 0, 0
    return q_fixed, exponent


def quantize_multiplier_tinymind(real: float) -> tuple[int, int]:
    """TinyMind ``quantizeMultiplier``: ``real ≈ multiplier · 2^(−31 − shift)``, ``shift > 0`` meaning a right shift.

    Only ``0`` gives ``(0, 0)``; tiny reals keep their (large) right shift.
    """
    q, exponent = _q31_and_exponent(real)
    return q, -exponent


def _q31_and_exponent(real: float) -> tuple[int, int]:
    """``(q, e)`` with ``real ≈ q · 2^(e − 31)``, ``q`` in 2^30..2^31 − 1: ``frexp``, the mantissa's 31 bits rounded
    half away from zero, and the carry to 2^31 folded into the exponent; ``(0, 0)`` for 0."""
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"real multiplier {real!r} must be finite and ≥ 0")
    if real == 0:
        return 0, 0
    mantissa, exponent = math.frexp(real)
    q = round_half_away_from_zero(math.ldexp(mantissa, 31))
    if q == 1 << 31:
        return q >> 1, exponent + 1
    return q, exponent


def multiply_by_quantized_multiplier(acc: np.ndarray | int, multiplier: np.ndarray | int,
                                     shift: np.ndarray | int) -> np.ndarray:
    """TFLite ``MultiplyByQuantizedMultiplier`` (double rounding) on int32 values, broadcasting its operands.

    ``shift`` is TFLite's (``> 0`` left, −31..31); ``acc · 2^left_shift`` wraps to int32 as TFLite's int32 multiply
    does in practice.
    """
    acc = np.asarray(acc, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left_shift = np.maximum(shift, 0)
    right_shift = np.maximum(-shift, 0)
    shifted = wrap32(acc * (np.int64(1) << left_shift))
    return rounding_divide_by_pot(srdhm(shifted, multiplier), right_shift)


def activation_range(activation: str, output_bits: int, output_zero_point: int,
                     output_scale: float | None) -> tuple[int, int]:
    """TFLite ``CalculateActivationRangeQuantized``: ``(act_min, act_max)``.

    ``relu6`` needs ``output_scale`` (taken as float32); ``6.0f / output_scale`` and its rounding are float32 as in
    TFLite's ``Quantize`` helper. Raises :class:`ConfigError` where TFLite's helper fails (quotient beyond int32).
    """
    qmin, qmax = output_limits(output_bits)
    if activation == "none":
        return qmin, qmax
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r} is not one of {ACTIVATIONS}")
    act_min = max(qmin, output_zero_point)
    if activation == "relu":
        return act_min, qmax
    if output_scale is None:
        raise ConfigError("output_scale=None is out of range; allowed: a finite number > 0 (activation relu6 needs "
                          "it)")
    with np.errstate(over="ignore"):
        quotient = float(np.float32(RELU6_LIMIT) / np.float32(output_scale))
    if not quotient < 2.0 ** 31:
        raise ConfigError(f"output_scale={output_scale!r} is out of range; allowed: a scale for which "
                          f"6/output_scale fits int32 (activation relu6)")
    return act_min, min(qmax, output_zero_point + round_half_away_from_zero(quotient))


@dataclass(frozen=True)
class RequantConfig(Implementation):
    """Parameters of one requantizer unit.

    Parameters
    ----------
    channels : int
        Elements per row, 1..4096; element ``k`` uses channel ``k``'s multiplier and shift.
    lanes : int
        Elements per beat, 1..64, dividing ``channels``.
    multipliers : tuple of int or None
        Integer multipliers ``M``, 0..2^31 − 1: one (per-tensor) or ``channels`` (per-channel). Given with
        ``shifts`` and instead of ``input_scale``/``weight_scales``.
    shifts : tuple of int or None
        One shift per multiplier, in the convention's sign: ``tflite`` ``> 0`` left, −31..30; ``tinymind`` ``> 0``
        right, −30..31.
    input_scale : float or None
        Scale of the accumulator's input operand (float32). Default 0.05 unless ``multipliers`` are given.
    weight_scales : tuple of float or None
        Weight scales (float32): one (per-tensor) or ``channels`` (per-channel). Default ``(0.01,)`` unless
        ``multipliers`` are given.
    output_scale : float or None
        Output scale (float32): forms the multipliers with the scales above, and the ``relu6`` limit. Default 0.1
        unless ``multipliers`` are given.
    output_zero_point : int
        Output zero point, within the output range.
    output_bits : int
        8 or 16: int8 or int16 outputs.
    activation : str
        Fused activation ``none``, ``relu`` or ``relu6``, ranged as TFLite does.
    act_min, act_max : int or None
        Explicit output clamp (activation ``none`` only); ``None`` takes the output type's limit.
    convention : str
        ``tflite`` or ``tinymind``: how multipliers are formed from scales and the sign of ``shifts``.
    target, interface : str
        See :class:`~int8attn.golden.params.Implementation`.
    """

    IMPLEMENTED_TARGETS: ClassVar[tuple[str, ...]] = TARGETS

    channels: int = param(16, kind="int", low=1, high=MAX_CHANNELS, help="elements per row; element k is channel k")
    lanes: int = param(4, kind="int", low=1, high=MAX_LANES, structural=True,
                       help="elements per beat, dividing channels")
    multipliers: tuple[int, ...] | None = param(None, kind="ints", low=MULTIPLIER_RANGE[0], high=MULTIPLIER_RANGE[1],
                                                optional=True, max_items=MAX_CHANNELS,
                                                help="integer multipliers, one or one per channel (instead of scales)")
    shifts: tuple[int, ...] | None = param(None, kind="ints", low=SHIFT_RANGE[0], high=TINYMIND_SHIFT_RANGE[1],
                                           optional=True, max_items=MAX_CHANNELS,
                                           help="shift per multiplier: tflite >0 left -31..30; tinymind >0 right "
                                                "-30..31")
    input_scale: float | None = param(None, kind="float", optional=True,
                                      help="input operand scale, float32 (default 0.05 unless multipliers are given)")
    weight_scales: tuple[float, ...] | None = param(None, kind="floats", optional=True, max_items=MAX_CHANNELS,
                                                    help="weight scales, one or one per channel (default 0.01 unless "
                                                         "multipliers are given)")
    output_scale: float | None = param(None, kind="float", optional=True,
                                       help="output scale, float32 (default 0.1 unless multipliers are given)")
    output_zero_point: int = param(0, kind="int", low=output_limits(OUTPUT_BITS[-1])[0],
                                   high=output_limits(OUTPUT_BITS[-1])[1], help="output zero point")
    output_bits: int = param(8, kind="int", low=OUTPUT_BITS[0], high=OUTPUT_BITS[-1], help="output width: 8 or 16")
    activation: str = param("none", kind="choice", choices=ACTIVATIONS, help="fused activation, ranged as TFLite")
    act_min: int | None = param(None, kind="int", low=output_limits(OUTPUT_BITS[-1])[0],
                                high=output_limits(OUTPUT_BITS[-1])[1], optional=True,
                                help="explicit lower clamp, activation none only (default: the output minimum)")
    act_max: int | None = param(None, kind="int", low=output_limits(OUTPUT_BITS[-1])[0],
                                high=output_limits(OUTPUT_BITS[-1])[1], optional=True,
                                help="explicit upper clamp, activation none only (default: the output maximum)")
    convention: str = param("tflite", kind="choice", choices=CONVENTIONS,
                            help="tflite or tinymind: multiplier formation and shift sign")

    def __post_init__(self):
        super().__post_init__()
        for name in SEQUENCE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, np.ndarray):
                object.__setattr__(self, name, tuple(value.tolist()))
            elif isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        check_params(self, ("channels", "lanes"))
        if self.channels % self.lanes:
            divisors = [d for d in range(1, min(self.channels, MAX_LANES) + 1) if self.channels % d == 0]
            raise ConfigError(f"lanes={self.lanes} does not divide channels={self.channels}; allowed: {divisors}")
        bits = self.output_bits
        if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or bits not in OUTPUT_BITS:
            raise ConfigError(f"output_bits={bits!r} is out of range; allowed: 8, 16")
        check_params(self, ("activation", "convention"))
        qmin, qmax = output_limits(self.output_bits)
        for name in ("output_zero_point", "act_min", "act_max"):
            check_params(self, (name,))
            value = getattr(self, name)
            if value is not None and not qmin <= value <= qmax:
                raise ConfigError(f"{name}={value!r} is out of range; allowed: integers {qmin}..{qmax} "
                                  f"(output_bits {self.output_bits})")
        self._check_multiplier_source()
        self.channel_multipliers()
        self._check_output_range()

    def _check_multiplier_source(self) -> None:
        check_params(self, ("multipliers", "shifts", "input_scale", "weight_scales", "output_scale"))
        if self.multipliers is None and self.shifts is None:
            for name, default in DEFAULT_SCALES.items():
                if getattr(self, name) is None:
                    object.__setattr__(self, name, default)
            self._check_count("weight_scales")
            return
        for name in ("input_scale", "weight_scales"):
            if getattr(self, name) is not None:
                raise ConfigError(f"{name}={getattr(self, name)!r} is given together with multipliers/shifts; "
                                  "allowed: None (give either multipliers and shifts, or scales)")
        for name, other in (("multipliers", "shifts"), ("shifts", "multipliers")):
            if getattr(self, name) is None:
                raise ConfigError(f"{name}=None is out of range; allowed: {params(RequantConfig)[name].allowed}, "
                                  f"as many as {other}")
        self._check_count("multipliers")
        if len(self.shifts) != len(self.multipliers):
            raise ConfigError(f"shifts={self.shifts!r} is out of range; allowed: {len(self.multipliers)} shift(s), "
                              "one per multiplier")
        low, high = SHIFT_RANGE if self.convention == "tflite" else TINYMIND_SHIFT_RANGE
        if not all(low <= shift <= high for shift in self.shifts):
            direction = "left" if self.convention == "tflite" else "right"
            raise ConfigError(f"shifts={self.shifts!r} is out of range; allowed: integers {low}..{high} "
                              f"(convention {self.convention}: > 0 shifts {direction})")

    def _check_count(self, name: str) -> None:
        count = len(getattr(self, name))
        if count not in (1, self.channels):
            raise ConfigError(f"{name} has {count} items and is out of range; allowed: 1 (per-tensor) or "
                              f"channels={self.channels} (per-channel)")

    def _check_output_range(self) -> None:
        explicit = {name: getattr(self, name) for name in ("act_min", "act_max") if getattr(self, name) is not None}
        for name, value in explicit.items():
            if self.activation != "none":
                raise ConfigError(f"{name}={value!r} applies to activation none only; allowed: None (activation "
                                  f"{self.activation} derives the range from output_zero_point and output_scale)")
        act_min, act_max = self.output_range()
        if act_min > act_max:
            raise ConfigError(f"act_min={act_min} is out of range; allowed: at most act_max={act_max}")

    @property
    def per_channel(self) -> bool:
        """One multiplier per channel (``channels > 1`` values given) rather than one for all."""
        source = self.multipliers if self.multipliers is not None else self.weight_scales
        return len(source) > 1

    @property
    def frame_elements(self) -> int:
        """Elements per row (frame), ``channels``."""
        return self.channels

    @property
    def beats(self) -> int:
        """Beats per row, ``channels / lanes``."""
        return self.channels // self.lanes

    def real_multipliers(self) -> tuple[float, ...]:
        """The real multiplier(s) as the convention forms them from the scales (one, or one per channel).

        Empty when integer multipliers are given.
        """
        if self.multipliers is not None:
            return ()
        input_scale = np.float32(self.input_scale)
        output_scale = float(np.float32(self.output_scale))
        if self.convention == "tflite" and not self.per_channel:
            with np.errstate(over="ignore", under="ignore"):
                product = float(input_scale * np.float32(self.weight_scales[0]))
            return (product / output_scale,)
        return tuple(float(input_scale) * float(np.float32(scale)) / output_scale for scale in self.weight_scales)

    def channel_multipliers(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``(multipliers, shifts)``, shifts in TFLite's sign (``> 0`` left); one pair or one per channel."""
        if self.multipliers is not None:
            sign = 1 if self.convention == "tflite" else -1
            return tuple(int(m) for m in self.multipliers), tuple(sign * int(s) for s in self.shifts)
        pairs = []
        for real in self.real_multipliers():
            if not math.isfinite(real):
                raise ConfigError(f"input_scale·weight_scales/output_scale={real!r} is out of range (the float32 "
                                  "product overflows); allowed: a finite real multiplier below 2^30")
            if self.convention == "tflite":
                multiplier, shift = quantize_multiplier(real)
            else:
                multiplier, right_shift = quantize_multiplier_tinymind(real)
                shift = -right_shift
                if shift < SHIFT_RANGE[0]:
                    raise ConfigError(f"input_scale·weight_scales/output_scale={real!r} is out of range for "
                                      f"convention tinymind (right shift {right_shift}; TinyMind's "
                                      "roundingDivideByPOT is defined up to 31); allowed: real multipliers ≥ 2^-32")
            if shift > SHIFT_RANGE[1]:
                raise ConfigError(f"input_scale·weight_scales/output_scale={real!r} is out of range (shift {shift}); "
                                  "allowed: real multipliers below 2^30")
            pairs.append((multiplier, shift))
        multipliers, shifts = zip(*pairs, strict=True)
        return multipliers, shifts

    def output_range(self) -> tuple[int, int]:
        """``(act_min, act_max)``: the activation's range, or the explicit clamp with activation ``none``."""
        act_min, act_max = activation_range(self.activation, self.output_bits, self.output_zero_point,
                                            self.output_scale)
        return (act_min if self.act_min is None else self.act_min,
                act_max if self.act_max is None else self.act_max)

    def as_dict(self) -> dict:
        """Every parameter, JSON-serialisable; ``RequantConfig(**config.as_dict())`` rebuilds the config."""
        return implementation_last({name: list(value) if isinstance(value, tuple) else value
                                    for name, value in asdict(self).items()})


class RequantModel:
    """Bit-exact requantizer of one :class:`RequantConfig`.

    Members
    -------
    config : RequantConfig
    multipliers : numpy.ndarray
        ``int64[channels]``: ``M`` of each channel, 0..2^31 − 1 (a per-tensor value repeated).
    shifts : numpy.ndarray
        ``int64[channels]``: TFLite-style shift of each channel, ``> 0`` left, −31..30, in both conventions.
    output_zero_point : int
    act_min, act_max : int
        The output clamp.
    output_bits : int
        8 or 16.
    output_dtype : type
        ``numpy.int8`` or ``numpy.int16``.
    input_dtype : type
        ``numpy.int32``.
    output_description : str
        The output's quantisation, in words.
    """

    input_dtype = np.int32

    def __init__(self, config: RequantConfig):
        self.config = config
        multipliers, shifts = config.channel_multipliers()
        self.multipliers = np.broadcast_to(np.array(multipliers, dtype=np.int64), (config.channels,)).copy()
        self.shifts = np.broadcast_to(np.array(shifts, dtype=np.int64), (config.channels,)).copy()
        self.output_zero_point = config.output_zero_point
        self.act_min, self.act_max = config.output_range()
        self.output_bits = config.output_bits
        self.output_dtype = np.int8 if config.output_bits == 8 else np.int16

    @property
    def output_description(self) -> str:
        return (f"int{self.output_bits}, zero point {self.output_zero_point}, "
                f"clamped to {self.act_min}..{self.act_max}")

    def check_rows(self, acc: np.ndarray) -> np.ndarray:
        """``acc`` as an int32 array of shape ``(rows, channels)``; ``ValueError`` otherwise."""
        return check_rows(acc, self.input_dtype, self.config.channels)

    def __call__(self, acc: np.ndarray) -> np.ndarray:
        """Requantize rows of int32 accumulators to ``output_dtype``."""
        scaled = multiply_by_quantized_multiplier(self.check_rows(acc), self.multipliers, self.shifts)
        return np.clip(wrap32(scaled + self.output_zero_point), self.act_min, self.act_max).astype(self.output_dtype)
