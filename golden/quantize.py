"""Post-training quantisation of float self-attention into the attention parameter file, the way TinyMind's host
calibration does it (``cpp/include/qcalibration.hpp`` and ``examples/transformer_encoder_stack_softmax_int8/``):
:func:`quantize_attention`, and :func:`quantize_attention_files` for the two input files.

The whole encoder stack of that example (:mod:`int8attn.golden.stack`) is quantised by :func:`quantize_stack` from
its float model (:mod:`int8attn.golden.float_stack`) and calibration token sequences, by TinyMind's procedure
(``method="tinymind"``, which reproduces the example's parameter file) or a robust one (``method="robust"``);
:func:`stack_parity` measures the int8 stack against the float model, as the example measures its error.

Float weights: one ``.npz`` (:func:`check_float_attention`), ``H`` heads of size ``d`` over ``E`` input features.

| key | dtype, shape | meaning |
| --- | --- | --- |
| `wq`, `wk`, `wv` | float `[E, H·d]` | projections `q = x·wq + bq`; columns `h·d..h·d+d−1` are head `h` |
| `bq`, `bk`, `bv` (optional) | float `[H·d]` | their biases; 0 when absent |
| `wo` (optional) | float `[H·d, E_out]` | output projection `out = attn·wo + bo` |
| `bo` (optional, with `wo`) | float `[E_out]` | its bias; 0 when absent |

TinyMind's ``w_attn`` ``(3, E, P)`` is ``wq, wk, wv`` with ``H = 1``. Calibration sequences: float ``[T, S, E]``
(``[S, E]`` is one sequence), an ``.npy`` or an ``.npz`` holding one array. Every value is finite.

Float forward pass (:func:`float_attention`), TinyMind's ``floatSoftmaxAttention`` per head, operation for
operation in float32 (every product and sum rounded to float32, sums in index order, no fused multiply-add):
``q = b + Σ_e w[e]·x[e]``, ``raw = Σ_p q[p]·k[p]``, ``score = raw · (1 / sqrtf(d))``, ``e = expf(score − max)``,
``p = e / Σ e``, ``attn = Σ_u p[u]·v[u]``, and the output projection ``out = bo + Σ_i wo[i]·attn[i]``. ``expf`` is
the float32 rounding of the double ``exp`` (glibc's ``expf`` rounds its double result, to 0.502 ulp).

Calibration rules (TinyMind's):

* asymmetric int8 grids of ``x``, of the attention output (all heads' columns together) and of the output:
  ``computeAffineParamsAsymmetric`` of the observed range widened to include 0, ``scale = float32((max − min) / 255)``,
  ``zero_point = clamp(lround(−128 − min / scale))`` in double (scale 1, zero point −128 for an empty range);
* symmetric grids (zero point 0) of Q, K, V and the scores: ``scale = float32(max(absmax, 10⁻⁶) / 127)``
  (the example's ``symScale``);
* symmetric per-tensor weights: ``scale = float32(absmax / 127)``, ``w = clamp(lround(w / scale), −127, 127)``
  (``quantizeSymToI8``); an all-zero weight tensor is refused;
* biases on the accumulator grid, ``lround(b / (input_scale · weight_scale))`` in double, as TFLite quantises them
  (the example's biases are 0, and it stores 0).

Convention ``tinymind``: each head on its own (columns ``h·d..h·d+d−1``: weight scales, Q/K/V/score grids), its
requantizers from ``buildRequantizer`` (``double(in)·double(w)/double(out)``, ``quantizeMultiplier``), the score
requantizer ``(double(q_scale)·double(k_scale))/double(score_scale)·(1/√d)`` with the score grid observed after the
1/√d scaling, the output requantizer from the probability scale 1/256 and ``v_scale`` onto the attention grid; the
output projection is a ``QDense`` from the attention grid. With ``H = 1`` and the example's calibration inputs this
reproduces the example's integer parameters.

Convention ``tflite``: every tensor per-tensor over all heads; the score grid is observed on ``Q·Kᵀ`` before 1/√d,
which goes into ``softmax_beta = float32(1/√d)``; multipliers are formed from the scales when the model runs.
"""

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from int8attn.golden.attention import (
    HEAD_COUNT_PARAM,
    INT8_MAX,
    INT8_MIN,
    PROBABILITY_SCALE,
    PROJECTIONS,
    FullyConnected,
    Grid,
    TFLiteAttentionParams,
    TinyMindAttentionParams,
    TinyMindDense,
    TinyMindMultiHeadParams,
    TinyMindRequantizer,
    load_arrays,
)
from int8attn.golden.fixedpoint import INT32_MAX, INT32_MIN
from int8attn.golden.params import ConfigError
from int8attn.golden.requant import CONVENTIONS, RequantConfig, quantize_multiplier_tinymind

if TYPE_CHECKING:
    from int8attn.golden.float_stack import FloatStackWeights
    from int8attn.golden.stack import TinyMindEncoderBlock

WEIGHT_KEYS = tuple(f"w{name}" for name in PROJECTIONS)
BIAS_KEYS = tuple(f"b{name}" for name in PROJECTIONS)
OUTPUT_KEYS = ("wo", "bo")
FLOAT_KEYS = WEIGHT_KEYS + BIAS_KEYS + OUTPUT_KEYS
WEIGHT_QMAX = INT8_MAX
SYMMETRIC_FLOOR = np.float32(1e-6)


def _round_half_away(values: np.ndarray) -> np.ndarray:
    """``lround`` of every double, exactly (``|v| − floor(|v|)`` is exact)."""
    magnitude = np.abs(values)
    whole = np.floor(magnitude)
    return np.copysign(whole + (magnitude - whole >= 0.5), values)


def asymmetric_grid(values: np.ndarray) -> Grid:
    """``computeAffineParamsAsymmetric(min, max, −128, 127)`` of the float32 ``values``."""
    low = min(np.float32(values.min()), np.float32(0))
    high = max(np.float32(values.max()), np.float32(0))
    if high == low:
        return Grid(scale=1.0, zero_point=INT8_MIN)
    scale = np.float32(high - low) / np.float32(INT8_MAX - INT8_MIN)
    if not 0 < scale < np.inf:
        raise ConfigError(f"a calibrated float range [{low}, {high}] has no float32 int8 scale (its width / 255 is "
                          f"{scale}); allowed: ranges whose width / 255 is a finite float32 > 0")
    zero_point = int(_round_half_away(np.float64(INT8_MIN) - np.float64(low) / np.float64(scale)))
    return Grid(scale=float(scale), zero_point=min(max(zero_point, INT8_MIN), INT8_MAX))


def symmetric_scale(values: np.ndarray) -> float:
    """The example's ``symScale``: ``max(absmax, 10⁻⁶) / 127`` in float32."""
    return float(max(np.float32(np.abs(values).max()), SYMMETRIC_FLOOR) / np.float32(WEIGHT_QMAX))


def quantize_weight(name: str, weight: np.ndarray) -> tuple[np.ndarray, float]:
    """``(int8 weight, scale)``: symmetric per-tensor, ``quantizeSymToI8`` with ``scale = absmax / 127``."""
    absmax = np.float32(np.abs(weight).max())
    scale = absmax / np.float32(WEIGHT_QMAX)
    if not 0 < scale < np.inf:
        problem = "is all zero" if absmax == 0 else f"has absmax {absmax}, whose float32 scale absmax / 127 is {scale}"
        raise ConfigError(f"{name} {problem}; allowed: a weight tensor with a non-zero entry and a finite float32 "
                          "scale > 0")
    levels = _round_half_away(weight.astype(np.float64) / np.float64(scale))
    return np.clip(levels, -WEIGHT_QMAX, WEIGHT_QMAX).astype(np.int8), float(scale)


def quantize_bias(name: str, bias: np.ndarray, input_scale: float, weight_scale: float) -> np.ndarray:
    """int32 ``lround(b / (input_scale · weight_scale))``; :class:`ConfigError` beyond int32."""
    levels = _round_half_away(bias.astype(np.float64) / (np.float64(input_scale) * np.float64(weight_scale)))
    if not INT32_MIN <= levels.min() <= levels.max() <= INT32_MAX:
        raise ConfigError(f"{name} is out of range on the accumulator grid (largest {np.abs(levels).max():g}); "
                          "allowed: |b| / (input_scale·weight_scale) < 2^31")
    return levels.astype(np.int32)


def tinymind_requantizer(input_scale: float, weight_scale: float, output: Grid, *, qmin: int = INT8_MIN
                         ) -> TinyMindRequantizer:
    """``buildRequantizer<int8_t>(input_scale, weight_scale, output.scale, output.zero_point, qmin, 127)``; ``qmin``
    is −128 but for a fused ReLU, whose ``qmin`` is the output zero point."""
    config = RequantConfig(channels=1, lanes=1, input_scale=input_scale, weight_scales=(weight_scale,),
                           output_scale=output.scale, output_zero_point=output.zero_point, convention="tinymind")
    (multiplier,), (shift,) = config.channel_multipliers()
    return TinyMindRequantizer(multiplier=multiplier, shift=-shift, zero_point=output.zero_point, qmin=qmin,
                               qmax=INT8_MAX)


def check_float_attention(float_params: Mapping[str, np.ndarray], heads: int) -> dict[str, np.ndarray]:
    """The float weights as float32 arrays, every key present (biases 0 when absent; ``wo`` and ``bo`` only with an
    output projection); :class:`ConfigError` naming the first key at fault."""
    HEAD_COUNT_PARAM.check("heads", heads)
    allowed = "float weights wq, wk, wv [E, H·d], optional bq, bk, bv [H·d], wo [H·d, E_out], bo [E_out]"
    for key in float_params:
        if key not in FLOAT_KEYS:
            raise ConfigError(f"{key} is an unknown key; allowed: {allowed}")
    for key in WEIGHT_KEYS + (("wo",) if "bo" in float_params else ()):
        if key not in float_params:
            raise ConfigError(f"{key} is missing; allowed: {allowed}")
    arrays = {key: np.asarray(value) for key, value in float_params.items()}

    def checked(key: str, shape: tuple[int | None, ...]) -> np.ndarray:
        value = arrays[key] if key in arrays else np.zeros(shape, dtype=np.float32)
        if (value.dtype.kind != "f" or value.ndim != len(shape) or 0 in value.shape
                or any(size not in (None, actual) for size, actual in zip(shape, value.shape, strict=True))
                or not np.isfinite(value).all()):
            wanted = ", ".join("n" if size is None else str(size) for size in shape)
            raise ConfigError(f"{key} {value.dtype}{value.shape} is out of range; allowed: finite floats [{wanted}], "
                              f"no empty axis ({allowed})")
        return value.astype(np.float32)

    rows, width = checked("wq", (None, None)).shape
    shapes = {**dict.fromkeys(WEIGHT_KEYS, (rows, width)), **dict.fromkeys(BIAS_KEYS, (width,))}
    result = {key: checked(key, shape) for key, shape in shapes.items()}
    if "wo" in arrays:
        result["wo"] = checked("wo", (width, None))
        result["bo"] = checked("bo", result["wo"].shape[1:])
    if width % heads:
        raise ConfigError(f"heads={heads} does not divide H·d={width} (the columns of wq); allowed: a divisor of "
                          f"{width}")
    return result


def check_calibration(calibration: np.ndarray, embed_dim: int) -> np.ndarray:
    """The calibration sequences as float32 ``[T, S, E]``; :class:`ConfigError` otherwise."""
    values = np.asarray(calibration)
    if values.ndim == 2:
        values = values[None]
    if (values.dtype.kind != "f" or values.ndim != 3 or values.shape[-1] != embed_dim or 0 in values.shape
            or not np.isfinite(values).all()):
        raise ConfigError(f"calibration {values.dtype}{values.shape} is out of range; allowed: finite floats "
                          f"[T, S, {embed_dim}] or [S, {embed_dim}]")
    return values.astype(np.float32)


def _dense(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``bias + Σ_i weight[i] · x[.., i]`` in float32, summed in index order."""
    acc = np.broadcast_to(bias, (*x.shape[:-1], bias.shape[0])).copy()
    for index in range(weight.shape[0]):
        acc = acc + x[..., index, None] * weight[index]
    return acc


def _split_heads(values: np.ndarray, heads: int) -> np.ndarray:
    return np.moveaxis(values.reshape(*values.shape[:-1], heads, -1), -2, -3)


def float_attention(float_params: Mapping[str, np.ndarray], x: np.ndarray, heads: int) -> dict[str, np.ndarray]:
    """The float32 forward pass of the module docstring on ``x`` ``[.., S, E]``.

    Returns ``q``, ``k``, ``v``, ``attn`` ``[.., S, H·d]``, ``raw`` (``Q·Kᵀ``), ``scores`` (``raw / √d``) and
    ``probs`` ``[.., H, S, S]``, and ``out`` (``attn`` without ``wo``).
    """
    weights = check_float_attention(float_params, heads)
    x = np.asarray(x, dtype=np.float32)
    if x.ndim < 2 or x.shape[-1] != weights["wq"].shape[0]:
        raise ValueError(f"x must be [.., S, {weights['wq'].shape[0]}], got {x.shape}")
    trace = {name: _dense(x, weights[f"w{name}"], weights[f"b{name}"]) for name in PROJECTIONS}
    q, k, v = (_split_heads(trace[name], heads) for name in PROJECTIONS)
    seq_len, head_dim = q.shape[-2:]
    raw = np.zeros((*q.shape[:-1], seq_len), dtype=np.float32)
    for index in range(head_dim):
        raw = raw + q[..., :, None, index] * k[..., None, :, index]
    scores = raw * (np.float32(1) / np.sqrt(np.float32(head_dim)))
    exps = np.exp((scores - scores.max(axis=-1, keepdims=True)).astype(np.float64)).astype(np.float32)
    total = np.zeros(exps.shape[:-1], dtype=np.float32)
    for key in range(seq_len):
        total = total + exps[..., key]
    probs = exps / total[..., None]
    heads_out = np.zeros(v.shape, dtype=np.float32)
    for key in range(seq_len):
        heads_out = heads_out + probs[..., :, key, None] * v[..., None, key, :]
    attn = np.moveaxis(heads_out, -3, -2).reshape(trace["q"].shape)
    out = _dense(attn, weights["wo"], weights["bo"]) if "wo" in weights else attn
    return {**trace, "raw": raw, "scores": scores, "probs": probs, "attn": attn, "out": out}


def tinymind_attention_layer(weights: Mapping[str, np.ndarray], biases: Mapping[str, np.ndarray],
                             names: Mapping[str, tuple[str, str]], input_grid: Grid, scales: Mapping[str, float],
                             attn_grid: Grid) -> tuple[TinyMindAttentionParams, dict[str, float]]:
    """One ``QAttentionSoftmax1D`` as the example builds it (module docstring, convention ``tinymind``).

    Parameters
    ----------
    weights, biases : mapping of str to numpy.ndarray
        Float32 ``[E, P]`` weights and ``[P]`` biases by projection name ``q``, ``k``, ``v``.
    names : mapping of str to (str, str)
        The names of each weight and bias, for errors.
    input_grid : Grid
        The layer's int8 input.
    scales : mapping of str to float
        Symmetric scales of ``q``, ``k``, ``v`` and ``score`` (the score grid after 1/√P).
    attn_grid : Grid
        The attention output's grid.

    Returns
    -------
    tuple
        The layer and the three weight scales by projection name.
    """
    quantized = {name: quantize_weight(names[name][0], weights[name]) for name in PROJECTIONS}
    grids = {name: Grid(scales[name], 0) for name in PROJECTIONS}
    projection_dim = weights["q"].shape[1]
    score_real = scales["q"] * scales["k"] / scales["score"] * (1.0 / math.sqrt(projection_dim))
    multiplier, shift = quantize_multiplier_tinymind(score_real)
    layer = TinyMindAttentionParams(
        weights=np.stack([quantized[name][0] for name in PROJECTIONS]),
        biases=np.stack([quantize_bias(names[name][1], biases[name], input_grid.scale, quantized[name][1])
                         for name in PROJECTIONS]),
        input_zero_point=input_grid.zero_point, q_zero_point=0, k_zero_point=0, v_zero_point=0,
        **{f"{name}_requantizer": tinymind_requantizer(input_grid.scale, quantized[name][1], grids[name])
           for name in PROJECTIONS},
        score_requantizer=TinyMindRequantizer(multiplier=multiplier, shift=shift, zero_point=0, qmin=INT8_MIN,
                                              qmax=INT8_MAX),
        output_requantizer=tinymind_requantizer(PROBABILITY_SCALE, scales["v"], attn_grid),
        score_scale=scales["score"])
    return layer, {name: quantized[name][1] for name in PROJECTIONS}


def _tinymind_params(weights: dict[str, np.ndarray], trace: dict[str, np.ndarray], heads: int, input_grid: Grid,
                     attn_grid: Grid) -> TinyMindMultiHeadParams:
    head_dim = weights["wq"].shape[1] // heads
    head_params = []
    for head in range(heads):
        columns = slice(head * head_dim, (head + 1) * head_dim)
        scales = {name: symmetric_scale(trace[name][..., columns]) for name in PROJECTIONS}
        scales["score"] = symmetric_scale(trace["scores"][..., head, :, :])
        layer, _ = tinymind_attention_layer(
            {name: weights[f"w{name}"][:, columns] for name in PROJECTIONS},
            {name: weights[f"b{name}"][columns] for name in PROJECTIONS},
            {name: (f"w{name} (head {head})", f"b{name} (head {head})") for name in PROJECTIONS}, input_grid, scales,
            attn_grid)
        head_params.append(layer)
    output = None
    if "wo" in weights:
        weight, scale = quantize_weight("wo", weights["wo"].T)
        output = TinyMindDense(weights=weight, biases=quantize_bias("bo", weights["bo"], attn_grid.scale, scale),
                               input_zero_point=attn_grid.zero_point,
                               requantizer=tinymind_requantizer(attn_grid.scale, scale, asymmetric_grid(trace["out"])))
    return TinyMindMultiHeadParams(head_params=tuple(head_params), output_projection=output)


def _fully_connected(name: str, weight: np.ndarray, bias: np.ndarray, input_grid: Grid, output_grid: Grid
                     ) -> FullyConnected:
    """A per-tensor FULLY_CONNECTED of the float ``weight`` ``[in, out]``."""
    quantized, scale = quantize_weight(f"w{name}", np.ascontiguousarray(weight.T))
    return FullyConnected(weight=quantized, bias=quantize_bias(f"b{name}", bias, input_grid.scale, scale),
                          weight_scale=(scale,), input=input_grid, output=output_grid)


def _tflite_params(weights: dict[str, np.ndarray], trace: dict[str, np.ndarray], heads: int, input_grid: Grid,
                   attn_grid: Grid) -> TFLiteAttentionParams:
    layers = {name: _fully_connected(name, weights[f"w{name}"], weights[f"b{name}"], input_grid,
                                     Grid(symmetric_scale(trace[name]), 0)) for name in PROJECTIONS}
    output = None
    if "wo" in weights:
        output = _fully_connected("o", weights["wo"], weights["bo"], attn_grid, asymmetric_grid(trace["out"]))
    head_dim = weights["wq"].shape[1] // heads
    return TFLiteAttentionParams(heads=heads, **layers, score=Grid(symmetric_scale(trace["raw"]), 0),
                                 softmax_beta=float(np.float32(1.0 / math.sqrt(head_dim))), attn=attn_grid,
                                 output_projection=output)


def quantize_attention(float_params: Mapping[str, np.ndarray], calibration: np.ndarray, *, convention: str,
                       heads: int) -> dict[str, np.ndarray]:
    """The attention parameter file's content (:mod:`int8attn.golden.attention`) for the float weights, calibrated
    on ``calibration`` (float ``[T, S, E]``) by the rules of the module docstring.

    Raises :class:`ConfigError` (one line naming the parameter or key) on an unknown convention, ``heads`` that do not
    divide ``H·d``, float weights or calibration sequences that break the module docstring's format, or scales whose
    multipliers leave TFLite's or TinyMind's range.
    """
    if convention not in CONVENTIONS:
        raise ConfigError(f"convention={convention!r} is unknown; allowed: {', '.join(CONVENTIONS)}")
    weights = check_float_attention(float_params, heads)
    sequences = check_calibration(calibration, weights["wq"].shape[0])
    trace = float_attention(weights, sequences, heads)
    input_grid, attn_grid = asymmetric_grid(sequences), asymmetric_grid(trace["attn"])
    build = _tinymind_params if convention == "tinymind" else _tflite_params
    return build(weights, trace, heads, input_grid, attn_grid).arrays()


def quantize_attention_files(weights_path: str | os.PathLike, calibration_path: str | os.PathLike, *,
                             convention: str, heads: int) -> dict[str, np.ndarray]:
    """:func:`quantize_attention` of a float-weights ``.npz`` and a calibration ``.npy`` (or one-array ``.npz``);
    the result is the content of the parameter file (``numpy.savez`` writes it)."""
    float_params = load_arrays(weights_path, "a float-weights .npz (wq, wk, wv, ...; int8attn.golden.quantize)")
    if not isinstance(float_params, dict):
        raise ConfigError(f"{weights_path}: is not an .npz archive; allowed: a float-weights .npz (wq, wk, wv, ...)")
    calibration = load_arrays(calibration_path, "float calibration sequences [T, S, E] in an .npy or one-array .npz")
    if isinstance(calibration, dict):
        if len(calibration) != 1:
            raise ConfigError(f"{calibration_path}: holds {len(calibration)} arrays; allowed: one array [T, S, E]")
        (calibration,) = calibration.values()
    return quantize_attention(float_params, calibration, convention=convention, heads=heads)


# The encoder stack (TinyMind's example): float weights and calibration token sequences to the stack's parameter file.
# The stack modules import this one (the positional table's grid), so they are imported where they are used.

STACK_METHODS = ("tinymind", "robust")
RANGE_ESTIMATORS = ("minmax", "percentile", "mse")
BLOCK_GRIDS = {"ln1": "ln1", "attn": "attn", "skip1": "skip1", "ln2": "ln2", "ff1": "ff1", "ff2": "ff2",
               "out": "block_out"}
"""Asymmetric activation grids of a block, ``block{b}.scale.<name>``, and the float tensor each is observed on."""
SYMMETRIC_GRIDS = {"q": "q", "k": "k", "v": "v", "score": "scores"}
"""Symmetric grids of a block, ``block{b}.scale.<name>``, and the float tensor each is observed on."""
BOUNDED_GRIDS = ("ln1", "ln2")
"""Grids of outputs bounded whatever the input (LayerNorm: ``|y| ≤ |γ|·√(E − 1) + |β|``), which get no headroom."""
LOW_DIVERSITY_TOKENS = (2, 4)
"""Distinct token ids of a low-diversity calibration sequence: 2 to 4."""
MSE_CANDIDATES = 64
MSE_SHRINK_LIMIT = 0.5


@dataclass(frozen=True)
class StackCalibration:
    """How :func:`quantize_stack` observes the float model and turns the observed values into grids.

    The defaults are TinyMind's own procedure (:data:`TINYMIND_CALIBRATION`); :data:`ROBUST_CALIBRATION` is the
    ``robust`` method.

    Parameters
    ----------
    extra_sequences : int
        Uniformly random token sequences (seeded by ``seed``) run besides the given calibration sequences.
    seed : int
        Seed of those sequences.
    estimator : str
        Range of the observed values of every activation grid (:data:`RANGE_ESTIMATORS`): ``minmax`` their minimum
        and maximum (absolute maximum for the symmetric grids); ``percentile`` the ``100 − percentile`` and
        ``percentile`` percentiles (the ``percentile`` percentile of the absolute values); ``mse`` the range
        ``α · minmax`` (0.5 ≤ α ≤ 1, 64 steps) whose int8 grid rounds and clips the observed values with the least
        squared error.
    percentile : float
        For ``percentile``: 50 < percentile ≤ 100.
    headroom : float
        The range found is widened by this fraction of its width on each side that is not 0 (a symmetric range:
        its absolute maximum by this fraction), 0 ≤ headroom ≤ 4; not the LayerNorm outputs'
        (:data:`BOUNDED_GRIDS`).
    whole_tables : bool
        The embedding grid spans the whole float embedding table rather than the rows the calibration sequences
        gather, and the embedding and positional grids are their tables' minimum and maximum exactly (no estimator,
        no headroom: the tables are known in full).
    varied : bool
        Every other extra sequence is a low-diversity one (:func:`stack_calibration_sequences`).
    """

    extra_sequences: int = 0
    seed: int = 0
    estimator: str = "minmax"
    percentile: float = 99.99
    headroom: float = 0.0
    whole_tables: bool = False
    varied: bool = False

    def __post_init__(self):
        if isinstance(self.extra_sequences, bool) or not isinstance(self.extra_sequences, (int, np.integer)) or not (
                0 <= self.extra_sequences <= 1 << 20):
            raise ConfigError(f"extra_sequences={self.extra_sequences!r} is out of range; allowed: integers 0..2^20")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ConfigError(f"seed={self.seed!r} is out of range; allowed: integers ≥ 0")
        if self.estimator not in RANGE_ESTIMATORS:
            raise ConfigError(f"estimator={self.estimator!r} is unknown; allowed: {', '.join(RANGE_ESTIMATORS)}")
        if not (isinstance(self.percentile, (int, float)) and 50 < self.percentile <= 100):
            raise ConfigError(f"percentile={self.percentile!r} is out of range; allowed: 50 < percentile ≤ 100")
        if not (isinstance(self.headroom, (int, float)) and 0 <= self.headroom <= 4):
            raise ConfigError(f"headroom={self.headroom!r} is out of range; allowed: 0 ≤ headroom ≤ 4")


TINYMIND_CALIBRATION = StackCalibration()
"""TinyMind's procedure: the given sequences only, minimum and maximum, no headroom, the gathered embeddings."""
ROBUST_CALIBRATION = StackCalibration(extra_sequences=1024, seed=1, estimator="minmax", headroom=0.05,
                                      whole_tables=True, varied=True)
"""The ``robust`` method (module docstring of :func:`quantize_stack`)."""
STACK_CALIBRATIONS = {"tinymind": TINYMIND_CALIBRATION, "robust": ROBUST_CALIBRATION}


def check_calibration_tokens(tokens: np.ndarray, vocab: int, seq_len: int) -> np.ndarray:
    """Calibration token ids as int64 ``[T, S]`` (``[S]`` is one sequence); :class:`ConfigError` naming
    ``calibration tokens`` and the range otherwise."""
    from int8attn.golden.embedding import check_tokens

    values = np.asarray(tokens)
    if values.ndim not in (1, 2) or values.size == 0:
        raise ConfigError(f"calibration tokens {values.dtype}{values.shape} is out of range; allowed: integers "
                          f"[T, {seq_len}] or [{seq_len}], T ≥ 1")
    try:
        return check_tokens(values, vocab, seq_len).reshape(-1, seq_len)
    except ConfigError as error:
        raise ConfigError(f"calibration {error}") from None


def _estimated_range(values: np.ndarray, options: StackCalibration, symmetric: bool) -> tuple[float, float]:
    """``(low, high)`` of the float32 ``values`` by ``options.estimator``, widened by ``options.headroom``
    (``(−a, a)`` for a symmetric grid)."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if symmetric:
        values = np.abs(values)
    if options.estimator == "percentile":
        low, high = (0.0 if symmetric else float(np.percentile(values, 100 - options.percentile)),
                     float(np.percentile(values, options.percentile)))
    else:
        low, high = (0.0 if symmetric else float(values.min())), float(values.max())
    low, high = min(low, 0.0), max(high, 0.0)
    if options.estimator == "mse" and high > low:
        low, high = _mse_range(values, low, high, symmetric)
    width = high - low
    return (low - options.headroom * width if low < 0 else low), (high + options.headroom * width if high > 0 else high)


def _mse_range(values: np.ndarray, low: float, high: float, symmetric: bool) -> tuple[float, float]:
    """The range ``α · (low, high)`` whose int8 grid represents ``values`` with the least squared error."""
    best, best_error = (low, high), math.inf
    levels = (2 * WEIGHT_QMAX) if symmetric else (INT8_MAX - INT8_MIN)
    for alpha in np.linspace(1.0, MSE_SHRINK_LIMIT, MSE_CANDIDATES):
        lo, hi = low * alpha, high * alpha
        if symmetric:
            lo = -hi
        step = (hi - lo) / levels
        represented = np.clip(np.round((values - lo) / step), 0, levels) * step + lo
        error = float(np.mean((represented - values) ** 2))
        if error < best_error:
            best, best_error = ((0.0, hi) if symmetric else (lo, hi)), error
    return best


def _grid(values: np.ndarray, options: StackCalibration) -> Grid:
    """An asymmetric int8 grid of ``values``: TinyMind's ``computeAffineParamsAsymmetric`` of their range."""
    if options == TINYMIND_CALIBRATION:
        return asymmetric_grid(np.asarray(values, dtype=np.float32))
    return asymmetric_grid(np.array(_estimated_range(values, options, symmetric=False), dtype=np.float32))


def _symmetric(values: np.ndarray, options: StackCalibration) -> float:
    """A symmetric scale of ``values``: the example's ``symScale`` of their absolute maximum."""
    if options == TINYMIND_CALIBRATION:
        return symmetric_scale(np.asarray(values, dtype=np.float32))
    return symmetric_scale(np.array([_estimated_range(values, options, symmetric=True)[1]], dtype=np.float32))


def stack_calibration_sequences(tokens: np.ndarray, vocab: int, options: StackCalibration) -> np.ndarray:
    """The token sequences the float model is observed on: ``tokens`` ``[T, S]``, then ``options.extra_sequences``
    drawn with ``numpy.random.default_rng(options.seed)``: uniformly random ones, or with ``options.varied`` every
    other one a low-diversity sequence, which takes its tokens from a random set of 2 to 4 distinct ids and holds at
    least two of them (never a constant sequence)."""
    rng = np.random.default_rng(options.seed)
    seq_len = tokens.shape[1]
    extra = rng.integers(0, vocab, (options.extra_sequences, seq_len))
    if options.varied and vocab >= LOW_DIVERSITY_TOKENS[0] and seq_len >= LOW_DIVERSITY_TOKENS[0]:
        for row in range(1, options.extra_sequences, 2):
            count = int(rng.integers(LOW_DIVERSITY_TOKENS[0], min(LOW_DIVERSITY_TOKENS[1], vocab, seq_len) + 1))
            chosen = rng.choice(vocab, size=count, replace=False)
            sequence = chosen[rng.integers(0, count, seq_len)]
            while len(np.unique(sequence)) < 2:
                sequence = chosen[rng.integers(0, count, seq_len)]
            extra[row] = sequence
    return np.concatenate([tokens, extra]).astype(np.int64)


def stack_grids(weights: "FloatStackWeights", sequences: np.ndarray, options: StackCalibration
                ) -> dict[str, Grid | float]:
    """Every grid of the stack from the float model on ``sequences`` ``[T, S]``: ``emb``, ``pos``, ``x0`` and
    ``block{b}.<name>`` of :data:`BLOCK_GRIDS` (:class:`Grid`), ``block{b}.<name>`` of :data:`SYMMETRIC_GRIDS`
    (scales). ``weights`` is a :class:`~int8attn.golden.float_stack.FloatStackWeights`."""
    from int8attn.golden.float_stack import float_stack_forward

    trace = float_stack_forward(weights, sequences)
    exact = replace(options, estimator="minmax", headroom=0.0)
    bounded = replace(options, headroom=0.0)
    grids: dict[str, Grid | float] = {
        "emb": _grid(weights.emb_table, exact) if options.whole_tables else _grid(trace["t.emb"], options),
        "pos": _grid(weights.pos_table, exact if options.whole_tables else options),
        "x0": _grid(trace["t.x0"], options)}
    for block in range(weights.num_blocks):
        for name, tensor in BLOCK_GRIDS.items():
            grids[f"block{block}.{name}"] = _grid(trace[f"t.{tensor}"][..., block, :, :],
                                                  bounded if name in BOUNDED_GRIDS else options)
        for name, tensor in SYMMETRIC_GRIDS.items():
            grids[f"block{block}.{name}"] = _symmetric(trace[f"t.{tensor}"][..., block, :, :], options)
    return grids


def _stack_block(weights: "FloatStackWeights", block: int, grids: Mapping[str, Grid | float], input_grid: Grid,
                 ln_eps: float) -> tuple["TinyMindEncoderBlock", dict[str, float]]:
    """Block ``block``'s integer layers (``TinyMindEncoderBlock``) and its weight scales, as the example builds
    them."""
    from int8attn.golden.add import TinyMindAdd
    from int8attn.golden.layernorm import (
        TinyMindLayerNorm,
        output_params,
        quantize_beta,
        quantize_epsilon,
        quantize_gamma,
    )
    from int8attn.golden.stack import TinyMindEncoderBlock

    floats = weights.blocks[block]
    prefix = f"block{block}"
    grid = {name: grids[f"{prefix}.{name}"] for name in (*BLOCK_GRIDS, *SYMMETRIC_GRIDS)}

    def layer_norm(gamma: np.ndarray, beta: np.ndarray, input_scale: float, output: Grid) -> TinyMindLayerNorm:
        multiplier, shift = output_params(output.scale)
        return TinyMindLayerNorm(gamma=quantize_gamma(gamma), beta=quantize_beta(beta, output.scale),
                                 epsilon_q=quantize_epsilon(ln_eps, input_scale), output_multiplier=multiplier,
                                 output_shift=shift, output_zero_point=output.zero_point, qmin=INT8_MIN,
                                 qmax=INT8_MAX)

    attention, attention_scales = tinymind_attention_layer(
        dict(zip(PROJECTIONS, floats.w_attn, strict=True)), dict(zip(PROJECTIONS, floats.b_attn, strict=True)),
        {name: (f"{prefix}.float.w_attn[{index}]", f"{prefix}.float.b_attn[{index}]")
         for index, name in enumerate(PROJECTIONS)},
        grid["ln1"], {name: grid[name] for name in SYMMETRIC_GRIDS}, grid["attn"])
    w1, w1_scale = quantize_weight(f"{prefix}.float.w_ff1", floats.w_ff1)
    w2, w2_scale = quantize_weight(f"{prefix}.float.w_ff2", floats.w_ff2)
    ff1 = TinyMindDense(weights=w1, biases=quantize_bias(f"{prefix}.float.b_ff1", floats.b_ff1, grid["ln2"].scale,
                                                         w1_scale),
                        input_zero_point=grid["ln2"].zero_point,
                        requantizer=tinymind_requantizer(grid["ln2"].scale, w1_scale, grid["ff1"],
                                                         qmin=grid["ff1"].zero_point))
    ff2 = TinyMindDense(weights=w2, biases=quantize_bias(f"{prefix}.float.b_ff2", floats.b_ff2, grid["ff1"].scale,
                                                         w2_scale),
                        input_zero_point=grid["ff1"].zero_point,
                        requantizer=tinymind_requantizer(grid["ff1"].scale, w2_scale, grid["ff2"]))
    layers = TinyMindEncoderBlock(
        ln1=layer_norm(floats.gamma1, floats.beta1, input_grid.scale, grid["ln1"]), attention=attention,
        add1=TinyMindAdd.from_scales(grid["attn"], input_grid, grid["skip1"]),
        ln2=layer_norm(floats.gamma2, floats.beta2, grid["skip1"].scale, grid["ln2"]), ff1=ff1,
        ff1_relu_zero_point=grid["ff1"].zero_point, ff2=ff2,
        add2=TinyMindAdd.from_scales(grid["skip1"], grid["ff2"], grid["out"]))
    scales = {f"w_{name}": attention_scales[name] for name in PROJECTIONS} | {"w_ff1": w1_scale, "w_ff2": w2_scale}
    return layers, scales


def _grid_arrays(prefix: str, grid: Grid) -> dict[str, np.ndarray]:
    return {f"{prefix}.scale": np.float32(grid.scale), f"{prefix}.zero_point": np.int32(grid.zero_point)}


def quantize_stack(float_weights: "FloatStackWeights | Mapping[str, np.ndarray]", calibration_tokens: np.ndarray, *,
                   method: str = "tinymind", calibration: StackCalibration | None = None) -> dict[str, np.ndarray]:
    """The encoder stack's parameter file (the shared ``tinymind_encoder_stack.npz``'s layout, which
    :meth:`~int8attn.golden.stack.StackParams.from_arrays` reads) for float weights, calibrated on token sequences.

    Method ``tinymind`` is the example's own procedure, step for step: the float32 model
    (:func:`~int8attn.golden.float_stack.float_stack_forward`) runs the calibration sequences and every activation
    grid is ``computeAffineParamsAsymmetric`` of the observed range widened to include 0 (the embedding grid over
    the gathered rows, the positional grid over the table, the FFN's hidden grid after the ReLU); Q, K, V and the
    scores (after 1/√E) get symmetric grids ``max(absmax, 10⁻⁶) / 127``; weights are symmetric per tensor,
    ``absmax / 127`` and clamped to ±127; biases ``lround(b / (s_in · s_w))``; the tables ``quantizeBuffer``;
    LayerNorm ``quantizeLayerNormGamma``/``Beta``/``Epsilon`` (ε over the input scale squared) and
    ``buildQLayerNormOutputParams``; the attention's requantizers as :func:`tinymind_attention_layer` builds them;
    each QAdd ``buildQAddParams`` of its scales (``attn + x``, ``skip1 + ff2``, ``emb + pos``); FFN1's requantizer
    clamps at its zero point (the fused ReLU) and the ReLU after it uses that zero point.

    Method ``robust`` (:data:`ROBUST_CALIBRATION`) builds the same layers from other grids. 1024 seeded sequences
    are observed besides the given ones, uniformly random and low-diversity ones in turn (2 to 4 distinct token ids:
    repeated tokens concentrate the attention and widen the activations, as constant sequences do); the embedding
    and positional grids span the whole tables; every other range is the observed minimum and maximum widened by 5 %
    of its width on each non-zero side (an absolute maximum by 5 %), but the LayerNorm outputs', which are bounded
    whatever the input. Sequences never seen in calibration then seldom leave a grid, at the cost of 5 % of the
    resolution. ``calibration`` replaces the method's settings (:class:`StackCalibration`: also percentile and MSE
    range estimators, which resist outliers but clip the rare sequences that a maximum error is made of).

    Parameters
    ----------
    float_weights : FloatStackWeights or mapping of str to numpy.ndarray
        The float model (:mod:`int8attn.golden.float_stack`: a mapping is read with ``from_arrays``).
    calibration_tokens : numpy.ndarray
        Integer token ids ``[T, S]`` (``[S]``: one sequence), ``0..V − 1``.
    method : str
        ``tinymind`` or ``robust``.
    calibration : StackCalibration, optional
        Settings that replace the method's.

    Returns
    -------
    dict of str to numpy.ndarray
        :meth:`~int8attn.golden.stack.StackParams.arrays`, and the keys the stack does not read but the shared file
        has: every grid ``scale.{emb,pos,x0}.{scale,zero_point}``, ``block{b}.scale.{in,ln1,attn,skip1,ln2,ff1,ff2,
        out}.{scale,zero_point}``, ``block{b}.scale.{q,k,v}`` and the weight scales ``block{b}.scale.w_{q,k,v,ff1,
        ff2}`` (float32; ``block{b}.scale.score`` is the stack's own), ``config.ln_eps``,
        ``config.num_calibration_sequences`` (the sequences observed) and ``meta`` (JSON: the method, its
        settings).

    Raises
    ------
    ConfigError
        One line naming the parameter or key: an unknown method, weights that break the float-weights format, token
        ids out of range, an all-zero weight tensor, a bias or ε out of int32 on its grid.
    """
    from int8attn.golden.float_stack import FloatStackWeights

    if method not in STACK_METHODS:
        raise ConfigError(f"method={method!r} is unknown; allowed: {', '.join(STACK_METHODS)}")
    options = STACK_CALIBRATIONS[method] if calibration is None else calibration
    weights = float_weights if isinstance(float_weights, FloatStackWeights) else FloatStackWeights.from_arrays(
        float_weights)
    tokens = check_calibration_tokens(calibration_tokens, weights.vocab, weights.seq_len)
    sequences = stack_calibration_sequences(tokens, weights.vocab, options)
    grids = stack_grids(weights, sequences, options)
    meta = {"what": "int8attn.golden.quantize.quantize_stack", "method": method if calibration is None else "custom",
            "calibration": asdict(options), "calibration_sequences": int(len(tokens)),
            "observed_sequences": int(len(sequences))}
    return stack_arrays(weights, grids) | {"config.num_calibration_sequences": np.int32(len(sequences)),
                                           "meta": np.array(json.dumps(meta))}


def stack_arrays(weights: "FloatStackWeights", grids: Mapping[str, Grid | float]) -> dict[str, np.ndarray]:
    """The parameter file's content for the float ``weights``
    (:class:`~int8attn.golden.float_stack.FloatStackWeights`) on the grids of :func:`stack_grids`, built as the
    example builds its layers (:func:`quantize_stack`): :meth:`~int8attn.golden.stack.StackParams.arrays`, every
    scale and zero point, ``config.ln_eps``."""
    from int8attn.golden.add import TinyMindAdd
    from int8attn.golden.embedding import TinyMindEmbedding, TinyMindPositionalEncoding, quantize_buffer
    from int8attn.golden.stack import StackParams

    positional = TinyMindPositionalEncoding(quantize_buffer(weights.pos_table, grids["pos"]),
                                            TinyMindAdd.from_scales(grids["emb"], grids["pos"], grids["x0"]))
    content = {"config.ln_eps": np.float32(weights.ln_eps)}
    for name in ("emb", "pos", "x0"):
        content |= _grid_arrays(f"scale.{name}", grids[name])
    blocks, input_grid = [], grids["x0"]
    for block in range(weights.num_blocks):
        layers, weight_scales = _stack_block(weights, block, grids, input_grid, weights.ln_eps)
        blocks.append(layers)
        prefix = f"block{block}.scale"
        content |= _grid_arrays(f"{prefix}.in", input_grid)
        for name in BLOCK_GRIDS:
            content |= _grid_arrays(f"{prefix}.{name}", grids[f"block{block}.{name}"])
        content |= {f"{prefix}.{name}": np.float32(grids[f"block{block}.{name}"]) for name in ("q", "k", "v")}
        content |= {f"{prefix}.{name}": np.float32(scale) for name, scale in weight_scales.items()}
        input_grid = grids[f"block{block}.out"]
    params = StackParams(embedding=TinyMindEmbedding(quantize_buffer(weights.emb_table, grids["emb"])),
                         positional=positional, blocks=tuple(blocks))
    return params.arrays() | content


@dataclass(frozen=True, eq=False)
class StackParity:
    """The int8 stack against the float model on the same token sequences (:func:`stack_parity`).

    Members
    -------
    reference : numpy.ndarray
        The float32 model's output ``(..., S, E)``.
    quantized : numpy.ndarray
        The int8 stack's output ``(..., S, E)``.
    output_grid : Grid
        The int8 output's grid, ``block{B−1}.scale.out``.
    dequantized : numpy.ndarray
        ``(quantized − zero_point) · scale`` in float32, as TinyMind's ``dequantizeBuffer``.
    abs_error : numpy.ndarray
        ``|dequantized − reference|`` per element in float32, as the example's ``maxAbsDiff``: its maximum is the
        example's "worst max-abs err" bit for bit.
    max_abs_error, mean_abs_error : float
        Their largest and mean value.
    output_range : float
        ``max − min`` of ``reference``.
    relative_error : float
        ``max_abs_error / output_range``.
    """

    reference: np.ndarray
    quantized: np.ndarray
    output_grid: Grid

    @property
    def dequantized(self) -> np.ndarray:
        zero_point, scale = np.float32(self.output_grid.zero_point), np.float32(self.output_grid.scale)
        return (self.quantized.astype(np.float32) - zero_point) * scale

    @property
    def abs_error(self) -> np.ndarray:
        return np.abs(self.dequantized - self.reference.astype(np.float32))

    @property
    def max_abs_error(self) -> float:
        return float(self.abs_error.max())

    @property
    def mean_abs_error(self) -> float:
        return float(self.abs_error.mean())

    @property
    def output_range(self) -> float:
        return float(np.float32(self.reference.max()) - np.float32(self.reference.min()))

    @property
    def relative_error(self) -> float:
        return self.max_abs_error / self.output_range if self.output_range > 0 else math.inf


def stack_output_grid(arrays: Mapping[str, np.ndarray], source: str = "encoder-stack parameters") -> Grid:
    """The int8 output's grid, ``block{B−1}.scale.out.{scale,zero_point}`` of a parameter file that
    :func:`quantize_stack` wrote; :class:`ConfigError` naming the key when it is missing or out of range."""
    from int8attn.golden.attention import ParamReader

    reader = ParamReader(arrays, source)
    if "config.num_blocks" not in reader.arrays:
        raise reader.error("config.num_blocks", "is missing", "an encoder-stack parameter file")
    prefix = f"block{reader.integer('config.num_blocks', 1) - 1}.scale.out"
    for key in (f"{prefix}.scale", f"{prefix}.zero_point"):
        if key not in reader.arrays:
            raise reader.error(key, "is missing", "the output grid, which quantize_stack writes beside the parameters")
    return Grid(reader.scale(f"{prefix}.scale"), reader.zero_point(f"{prefix}.zero_point"))


def stack_parity(arrays: Mapping[str, np.ndarray], float_weights: "FloatStackWeights | Mapping[str, np.ndarray]",
                 tokens: np.ndarray, source: str = "encoder-stack parameters") -> StackParity:
    """The int8 stack of the parameter file's ``arrays`` against the float32 model ``float_weights``
    (:class:`~int8attn.golden.float_stack.FloatStackWeights` or its arrays) on token ids ``(..., S)``;
    :class:`ConfigError` when the two models' sizes differ or the file lacks its output grid."""
    from int8attn.golden.float_stack import FloatStackWeights, float_stack_forward
    from int8attn.golden.stack import StackParams, stack_forward

    weights = float_weights if isinstance(float_weights, FloatStackWeights) else FloatStackWeights.from_arrays(
        float_weights)
    params = StackParams.from_arrays(arrays, source)
    int8_sizes = (params.vocab, params.seq_len, params.embed_dim, params.ffn_dim, params.num_blocks)
    float_sizes = (weights.vocab, weights.seq_len, weights.embed_dim, weights.ffn_dim, weights.num_blocks)
    if int8_sizes != float_sizes:
        raise ConfigError(f"{source}: (V, S, E, F, B) = {int8_sizes} is out of range; allowed: the float weights' "
                          f"{float_sizes}")
    grid = stack_output_grid(arrays, source)
    return StackParity(reference=float_stack_forward(weights, tokens)["output"],
                       quantized=stack_forward(params, tokens)["output"], output_grid=grid)


def load_calibration_tokens(path: str | os.PathLike) -> np.ndarray:
    """The calibration token ids of ``path``: an ``.npy`` integer array ``[T, S]``, or an ``.npz`` holding one array
    or ``tokens`` (the shared ``tinymind_encoder_stack.npz``: its first ``config.num_calibration_sequences`` rows when
    it has that key); :class:`ConfigError` naming the file otherwise. Ids are checked against the weights later."""
    allowed = "calibration token ids [T, S] in an .npy, or an .npz holding `tokens` or one array"
    loaded = load_arrays(path, allowed)
    if not isinstance(loaded, dict):
        return loaded
    if "tokens" in loaded:
        tokens = loaded["tokens"]
        if "config.num_calibration_sequences" in loaded:
            count = loaded["config.num_calibration_sequences"]
            if count.shape != () or count.dtype.kind not in "iu" or not 1 <= int(count) <= max(len(tokens), 1):
                raise ConfigError(f"{path}: config.num_calibration_sequences = {count.tolist()!r} is out of range; "
                                  f"allowed: an integer 1..{len(tokens)}, the rows of tokens")
            tokens = tokens[:int(count)]
        return tokens
    if len(loaded) != 1:
        raise ConfigError(f"{path}: holds {len(loaded)} arrays and no `tokens`; allowed: {allowed}")
    (tokens,) = loaded.values()
    return tokens


def quantize_stack_files(weights_path: str | os.PathLike, calibration_path: str | os.PathLike, *,
                         method: str = "tinymind") -> dict[str, np.ndarray]:
    """:func:`quantize_stack` of a float-weights ``.npz`` (:func:`~int8attn.golden.float_stack.load_float_weights`)
    and a calibration tokens file (:func:`load_calibration_tokens`); errors name the file."""
    from int8attn.golden.float_stack import load_float_weights

    if method not in STACK_METHODS:
        raise ConfigError(f"method={method!r} is unknown; allowed: {', '.join(STACK_METHODS)}")
    weights = load_float_weights(weights_path)
    tokens = load_calibration_tokens(calibration_path)
    try:
        tokens = check_calibration_tokens(tokens, weights.vocab, weights.seq_len)
    except ConfigError as error:
        raise ConfigError(f"{calibration_path}: {error}") from None
    try:
        return quantize_stack(weights, tokens, method=method)
    except ConfigError as error:
        raise ConfigError(f"{weights_path}: {error}") from None
