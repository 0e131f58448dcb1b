"""Bit-exact model of the dense unit: rows of int8 inputs through an int8 weight matrix to int8 outputs.

For an input row ``x`` (``in_features`` int8 values) and output channel ``c``::

    acc[c] = wrap32(bias[c] + Σ_i (w[c, i] − weight_zero_point) · (x[i] − input_zero_point))
    y[c]   = clamp(wrap32(MultiplyByQuantizedMultiplier(acc[c], M[c], shift[c]) + output_zero_point), act_min, act_max)

The requantisation is :class:`~int8attn.golden.requant.RequantModel`'s (TFLite's double rounding); ``wrap32`` is the
int32 arithmetic of the compiled C++ (the sum of 4096 products of 255 · 255 fits; a bias near the int32 limits may
wrap, as it does in the kernels).

Conventions:

* ``tflite``: TFLite's int8 ``FULLY_CONNECTED`` reference kernel (``reference_integer_ops::FullyConnected``, per-tensor
  and per-channel): ``acc = Σ (w + weights_offset)(x + input_offset) + bias`` with ``weights_offset =
  −weight_zero_point`` and ``input_offset = −input_zero_point``; the multiplier per-tensor
  ``double(float32(input_scale · weight_scale)) / double(output_scale)``, per-channel (more than one weight scale)
  ``double(input_scale) · double(weight_scale[c]) / double(output_scale)``; the fused activation ranged by
  ``CalculateActivationRangeQuantized``.
* ``tinymind``: TinyMind's ``QDense`` (``cpp/qdense.hpp``): ``acc = bias + Σ w · (x − input_zero_point)`` with
  symmetric weights (weight zero point 0) and one ``Requantizer`` for all outputs, whose multiplier
  ``buildRequantizer`` forms as ``double(input_scale) · double(weight_scale) / double(output_scale)``; its fused ReLU
  is ``qmin = output_zero_point``, which is activation ``relu``.

Weights come from an ``.npz`` file (:data:`WEIGHT_KEYS`) or, without one, are drawn from ``weights_seed``
(:func:`random_tensors`); options of the same names override the file's quantisation parameters.
"""

import hashlib
import math
import os
from dataclasses import asdict, dataclass, replace
from typing import ClassVar

import numpy as np

from int8attn.golden.files import READ_ERRORS
from int8attn.golden.fixedpoint import wrap32
from int8attn.golden.params import (
    TARGETS,
    ConfigError,
    Implementation,
    check_params,
    implementation_last,
    is_positive_float32,
    param,
)
from int8attn.golden.requant import ACTIVATIONS, CONVENTIONS, RequantConfig, RequantModel
from int8attn.golden.stimuli import check_rows

MAX_FEATURES = 4096
MAX_FOLD = 64
INT8_RANGE = (-128, 127)
REQUIRED_KEYS = ("weight", "weight_scale", "input_scale", "input_zero_point", "output_scale", "output_zero_point")
OPTIONAL_KEYS = ("bias", "weight_zero_point", "activation")
WEIGHT_KEYS = REQUIRED_KEYS + OPTIONAL_KEYS
DEFAULT_FEATURES = 16
DEFAULT_SCALES = {"input_scale": 0.05, "weight_scale": 0.01}
RANDOM_OUTPUT_SPREAD = 128
"""Without a weights file the output scale defaults to ``input_scale · weight_scale · 128 · √in_features``: random
weights and inputs then give outputs of about 43 LSB standard deviation."""
RANDOM_BIAS_BOUND = 1 << 14
FILE_GROUP = "quantisation (overrides the weights file's; without --weights: random weights)"


@dataclass(frozen=True)
class DenseTensors:
    """The weights and quantisation of a dense layer, as the weights file holds them.

    Members
    -------
    weight : numpy.ndarray
        int8 ``[out, in]``.
    bias : numpy.ndarray
        int32 ``[out]`` (zeros when the file has none).
    weight_scale : tuple of float
        One scale (per-tensor) or one per output channel.
    weight_zero_point, input_zero_point, output_zero_point : int
    input_scale, output_scale : float
    activation : str
        ``none``, ``relu`` or ``relu6``.
    digest : str
        SHA-256 of the weights file, or ``"random:<seed>"``.
    """

    weight: np.ndarray
    bias: np.ndarray
    weight_scale: tuple[float, ...]
    weight_zero_point: int
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    activation: str
    digest: str


def _file_error(path: str, problem: str) -> ConfigError:
    return ConfigError(f"weights={path!r} {problem}; allowed: an .npz with int8 weight [out, in], optional int32 "
                       "bias [out], weight_scale (scalar or [out]), optional weight_zero_point, input_scale, "
                       "input_zero_point, output_scale, output_zero_point, optional activation (none/relu/relu6)")


def _scalar(path: str, arrays: dict, key: str, kind: str) -> float | int | str:
    value = arrays[key]
    if value.shape != ():
        raise _file_error(path, f"has {key} of shape {value.shape}, not a scalar")
    if kind == "float":
        if value.dtype.kind != "f" or not is_positive_float32(value):
            raise _file_error(path, f"has {key}={value.tolist()!r}, not a finite float > 0")
        return float(np.float32(value))
    if kind == "int":
        if value.dtype.kind not in "iu" or not INT8_RANGE[0] <= int(value) <= INT8_RANGE[1]:
            raise _file_error(path, f"has {key}={value.tolist()!r}, not an integer in {INT8_RANGE[0]}..{INT8_RANGE[1]}")
        return int(value)
    if value.dtype.kind != "U" or str(value) not in ACTIVATIONS:
        raise _file_error(path, f"has {key}={value.tolist()!r}, not one of {', '.join(ACTIVATIONS)}")
    return str(value)


def load_tensors(path: str) -> DenseTensors:
    """The checked contents of the weights file ``path``; :class:`ConfigError` naming the first problem."""
    try:
        with open(path, "rb") as file:
            content = file.read()
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                loaded = {key: loaded[key] for key in loaded.files}
    except FileNotFoundError:
        raise _file_error(path, "does not exist") from None
    except READ_ERRORS as error:
        raise _file_error(path, f"cannot be read ({type(error).__name__})") from None
    if not isinstance(loaded, dict):
        raise _file_error(path, "is not an .npz archive")
    arrays: dict[str, np.ndarray] = loaded
    unknown = sorted(set(arrays) - set(WEIGHT_KEYS))
    missing = [key for key in REQUIRED_KEYS if key not in arrays]
    if unknown:
        raise _file_error(path, f"has unknown key(s) {', '.join(unknown)}")
    if missing:
        raise _file_error(path, f"lacks key(s) {', '.join(missing)}")
    weight = arrays["weight"]
    if weight.dtype != np.int8 or weight.ndim != 2 or 0 in weight.shape:
        raise _file_error(path, f"has weight of dtype {weight.dtype} and shape {weight.shape}, not int8 [out, in]")
    out_features = weight.shape[0]
    bias = arrays.get("bias", np.zeros(out_features, dtype=np.int32))
    if bias.dtype != np.int32 or bias.shape != (out_features,):
        raise _file_error(path, f"has bias of dtype {bias.dtype} and shape {bias.shape}, not int32 [{out_features}]")
    scales = arrays["weight_scale"]
    if scales.shape not in ((), (out_features,)) or scales.dtype.kind != "f" or not all(
            is_positive_float32(value) for value in scales.reshape(-1)):
        raise _file_error(path, f"has weight_scale of dtype {scales.dtype} and shape {scales.shape}, not finite "
                                f"floats > 0 of shape () or ({out_features},)")
    zero_point = _scalar(path, arrays, "weight_zero_point", "int") if "weight_zero_point" in arrays else 0
    return DenseTensors(
        weight=weight, bias=bias, weight_scale=tuple(float(np.float32(value)) for value in scales.reshape(-1)),
        weight_zero_point=zero_point,
        input_scale=_scalar(path, arrays, "input_scale", "float"),
        input_zero_point=_scalar(path, arrays, "input_zero_point", "int"),
        output_scale=_scalar(path, arrays, "output_scale", "float"),
        output_zero_point=_scalar(path, arrays, "output_zero_point", "int"),
        activation=_scalar(path, arrays, "activation", "activation") if "activation" in arrays else "none",
        digest=hashlib.sha256(content).hexdigest())


def random_tensors(in_features: int, out_features: int, seed: int) -> DenseTensors:
    """Uniform int8 weights and int32 biases in ±2^14 drawn from ``seed``; per-tensor scales
    (:data:`DEFAULT_SCALES`, output scale :data:`RANDOM_OUTPUT_SPREAD`), zero points 0, no activation."""
    rng = np.random.default_rng(seed)
    weight = rng.integers(-128, 128, (out_features, in_features)).astype(np.int8)
    bias = rng.integers(-RANDOM_BIAS_BOUND, RANDOM_BIAS_BOUND + 1, out_features).astype(np.int32)
    input_scale, weight_scale = DEFAULT_SCALES["input_scale"], DEFAULT_SCALES["weight_scale"]
    output_scale = input_scale * weight_scale * RANDOM_OUTPUT_SPREAD * math.sqrt(in_features)
    return DenseTensors(weight=weight, bias=bias, weight_scale=(weight_scale,), weight_zero_point=0,
                        input_scale=input_scale, input_zero_point=0, output_scale=float(np.float32(output_scale)),
                        output_zero_point=0, activation="none", digest=f"random:{seed}")


OVERRIDES = ("input_scale", "input_zero_point", "weight_scale", "weight_zero_point", "output_scale",
             "output_zero_point", "activation")


def _divisors(value: int) -> str:
    return ", ".join(str(d) for d in range(1, min(value, MAX_FOLD) + 1) if value % d == 0)


@dataclass(frozen=True)
class DenseConfig(Implementation):
    """Parameters of one dense unit.

    Parameters
    ----------
    in_features, out_features : int or None
        Input and output features, 1..4096; ``None`` takes the weights file's (16 without a file).
    pe : int
        Output channels computed in parallel, 1..64, dividing ``out_features``.
    simd : int
        Input features taken per cycle, 1..64, dividing ``in_features``; a row takes
        ``(out_features / pe) · (in_features / simd)`` cycles.
    weights : str or None
        The weights file (:data:`WEIGHT_KEYS`), made absolute; ``None`` draws random weights from ``weights_seed``.
    weights_seed : int
        Seed of the random weights (without ``weights``).
    input_scale, input_zero_point, weight_scale, weight_zero_point, output_scale, output_zero_point, activation
        Override the file's values when not ``None`` (``weight_scale`` one value or one per output channel;
        ``weight_zero_point`` per-tensor only).
    convention : str
        ``tflite`` or ``tinymind`` (module docstring).
    target, interface : str
        See :class:`~int8attn.golden.params.Implementation`.
    """

    IMPLEMENTED_TARGETS: ClassVar[tuple[str, ...]] = TARGETS

    in_features: int | None = param(None, kind="int", low=1, high=MAX_FEATURES, optional=True,
                                    help="input features (default: the weights file's, else 16)")
    out_features: int | None = param(None, kind="int", low=1, high=MAX_FEATURES, optional=True,
                                     help="output features (default: the weights file's, else 16)")
    pe: int = param(1, kind="int", low=1, high=MAX_FOLD, structural=True,
                    help="output channels in parallel, dividing out-features")
    simd: int = param(1, kind="int", low=1, high=MAX_FOLD, structural=True,
                      help="input features per cycle, dividing in-features")
    weights: str | None = param(None, kind="path", optional=True,
                                help="weights .npz (weight, bias, scales, zero points, activation; see README) "
                                     "(default: random weights from --weights-seed)")
    weights_seed: int = param(1, kind="int", low=0, high=(1 << 32) - 1,
                              help="seed of the random weights without --weights")
    input_scale: float | None = param(None, kind="float", optional=True, group=FILE_GROUP,
                                      help="input scale, float32 (default: the file's, else 0.05)")
    input_zero_point: int | None = param(None, kind="int", low=INT8_RANGE[0], high=INT8_RANGE[1], optional=True,
                                         group=FILE_GROUP, help="input zero point (default: the file's, else 0)")
    weight_scale: tuple[float, ...] | None = param(None, kind="floats", optional=True, max_items=MAX_FEATURES,
                                                   group=FILE_GROUP,
                                                   help="weight scale, one or one per output channel (default: the "
                                                        "file's, else 0.01)")
    weight_zero_point: int | None = param(None, kind="int", low=INT8_RANGE[0], high=INT8_RANGE[1], optional=True,
                                          group=FILE_GROUP,
                                          help="weight zero point, per-tensor only (default: the file's, else 0)")
    output_scale: float | None = param(None, kind="float", optional=True, group=FILE_GROUP,
                                       help="output scale, float32 (default: the file's, else input_scale * "
                                            "weight_scale * 128 * sqrt(in_features))")
    output_zero_point: int | None = param(None, kind="int", low=INT8_RANGE[0], high=INT8_RANGE[1], optional=True,
                                          group=FILE_GROUP, help="output zero point (default: the file's, else 0)")
    activation: str | None = param(None, kind="choice", choices=ACTIVATIONS, optional=True, group=FILE_GROUP,
                                   help="fused activation none, relu or relu6 (default: the file's, else none)")
    convention: str = param("tflite", kind="choice", choices=CONVENTIONS,
                            help="tflite (FULLY_CONNECTED reference kernel) or tinymind (QDense)")

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.weight_scale, (list, np.ndarray)):
            object.__setattr__(self, "weight_scale", tuple(np.asarray(self.weight_scale).tolist()))
        check_params(self)
        if self.weights is not None:
            object.__setattr__(self, "weights", os.path.abspath(self.weights))
            tensors = load_tensors(self.weights)
            for name, value in zip(("out_features", "in_features"), tensors.weight.shape, strict=True):
                given = getattr(self, name)
                if given is not None and given != value:
                    raise ConfigError(f"{name}={given} is out of range; allowed: {value}, the weights file's")
        else:
            tensors = random_tensors(self.in_features or DEFAULT_FEATURES, self.out_features or DEFAULT_FEATURES,
                                     self.weights_seed)
        overrides = {name: getattr(self, name) for name in OVERRIDES if getattr(self, name) is not None}
        if "weight_scale" in overrides or "input_scale" in overrides:
            if self.weights is None and "output_scale" not in overrides:
                scale = overrides.get("input_scale", tensors.input_scale) * overrides.get("weight_scale",
                                                                                          tensors.weight_scale)[0]
                overrides["output_scale"] = scale * RANDOM_OUTPUT_SPREAD * math.sqrt(tensors.weight.shape[1])
        tensors = replace(tensors, **overrides)
        object.__setattr__(self, "out_features", tensors.weight.shape[0])
        object.__setattr__(self, "in_features", tensors.weight.shape[1])
        object.__setattr__(self, "_tensors", tensors)
        for name, fold, whole in (("pe", self.pe, self.out_features), ("simd", self.simd, self.in_features)):
            if whole % fold:
                other = "out_features" if name == "pe" else "in_features"
                raise ConfigError(f"{name}={fold} does not divide {other}={whole}; allowed: {_divisors(whole)}")
        self._check_quantisation(tensors)
        self.requant_config()

    def _check_quantisation(self, tensors: DenseTensors) -> None:
        if len(tensors.weight_scale) not in (1, self.out_features):
            raise ConfigError(f"weight_scale has {len(tensors.weight_scale)} values and is out of range; allowed: 1 "
                              f"(per-tensor) or out_features={self.out_features} (per-channel)")
        if tensors.weight_zero_point and len(tensors.weight_scale) > 1:
            raise ConfigError(f"weight_zero_point={tensors.weight_zero_point} is out of range; allowed: 0 with "
                              "per-channel weight scales")
        if self.convention == "tinymind":
            if len(tensors.weight_scale) > 1:
                raise ConfigError(f"weight_scale has {len(tensors.weight_scale)} values and is out of range; "
                                  "allowed: one with convention tinymind (QDense has a single Requantizer)")
            if tensors.weight_zero_point:
                raise ConfigError(f"weight_zero_point={tensors.weight_zero_point} is out of range; allowed: 0 with "
                                  "convention tinymind (QDense's weights are symmetric)")

    @property
    def tensors(self) -> DenseTensors:
        """The weights and quantisation in force: the file's (or the random ones) with the overrides applied."""
        return self._tensors

    @property
    def per_channel(self) -> bool:
        return len(self.tensors.weight_scale) > 1

    @property
    def frame_elements(self) -> int:
        """Elements per input row, ``in_features``."""
        return self.in_features

    @property
    def beats(self) -> int:
        """Input beats per row, ``in_features / simd``."""
        return self.in_features // self.simd

    @property
    def folds(self) -> int:
        """Output beats per row, ``out_features / pe``."""
        return self.out_features // self.pe

    @property
    def cycles_per_row(self) -> int:
        """Cycles the unit spends on a row at full rate, ``folds · beats``."""
        return self.folds * self.beats

    def requant_config(self) -> RequantConfig:
        """The requantizer of the outputs: ``out_features`` channels, ``pe`` lanes."""
        tensors = self.tensors
        return RequantConfig(channels=self.out_features, lanes=self.pe, input_scale=tensors.input_scale,
                             weight_scales=tensors.weight_scale, output_scale=tensors.output_scale,
                             output_zero_point=tensors.output_zero_point, activation=tensors.activation,
                             convention=self.convention, target=self.target)

    def as_dict(self) -> dict:
        """Every parameter, JSON-serialisable; ``DenseConfig(**config.as_dict())`` rebuilds the config."""
        return implementation_last({name: list(value) if isinstance(value, tuple) else value
                                    for name, value in asdict(self).items()})


class DenseModel:
    """Bit-exact dense layer of one :class:`DenseConfig`.

    Members
    -------
    config : DenseConfig
    weights : numpy.ndarray
        ``int64[out, in]``: ``w − weight_zero_point``.
    bias : numpy.ndarray
        ``int64[out]``.
    input_zero_point : int
    requantizer : RequantModel
    input_dtype, output_dtype : type
        ``numpy.int8``.
    output_description : str
    """

    input_dtype = np.int8
    output_dtype = np.int8

    def __init__(self, config: DenseConfig):
        self.config = config
        tensors = config.tensors
        self.weights = tensors.weight.astype(np.int64) - tensors.weight_zero_point
        self.bias = tensors.bias.astype(np.int64)
        self.input_zero_point = tensors.input_zero_point
        self.requantizer = RequantModel(config.requant_config())

    @property
    def output_description(self) -> str:
        return f"{self.config.out_features} outputs a row, " + self.requantizer.output_description

    def check_rows(self, x: np.ndarray) -> np.ndarray:
        return check_rows(x, self.input_dtype, self.config.in_features)

    def accumulators(self, x: np.ndarray) -> np.ndarray:
        """The int32 accumulators ``acc`` of every row, ``int64[rows, out]``."""
        centred = self.check_rows(x).astype(np.int64) - self.input_zero_point
        return wrap32(centred @ self.weights.T + self.bias)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.requantizer(self.accumulators(x).astype(np.int32))
