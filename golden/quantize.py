"""Post-training quantisation of float self-attention into the attention parameter file, the way TinyMind's host
calibration does it (``cpp/include/qcalibration.hpp`` and ``examples/transformer_encoder_stack_softmax_int8/``):
:func:`quantize_attention`, and :func:`quantize_attention_files` for the two input files.

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

import math
import os
from collections.abc import Mapping

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
    zero_point = int(_round_half_away(np.float64(INT8_MIN) - np.float64(low) / np.float64(scale)))
    return Grid(scale=float(scale), zero_point=min(max(zero_point, INT8_MIN), INT8_MAX))


def symmetric_scale(values: np.ndarray) -> float:
    """The example's ``symScale``: ``max(absmax, 10⁻⁶) / 127`` in float32."""
    return float(max(np.float32(np.abs(values).max()), SYMMETRIC_FLOOR) / np.float32(WEIGHT_QMAX))


def quantize_weight(name: str, weight: np.ndarray) -> tuple[np.ndarray, float]:
    """``(int8 weight, scale)``: symmetric per-tensor, ``quantizeSymToI8`` with ``scale = absmax / 127``."""
    scale = np.float32(np.abs(weight).max()) / np.float32(WEIGHT_QMAX)
    if scale == 0:
        raise ConfigError(f"{name} is all zero; allowed: a weight tensor with a non-zero entry")
    levels = _round_half_away(weight.astype(np.float64) / np.float64(scale))
    return np.clip(levels, -WEIGHT_QMAX, WEIGHT_QMAX).astype(np.int8), float(scale)


def quantize_bias(name: str, bias: np.ndarray, input_scale: float, weight_scale: float) -> np.ndarray:
    """int32 ``lround(b / (input_scale · weight_scale))``; :class:`ConfigError` beyond int32."""
    levels = _round_half_away(bias.astype(np.float64) / (np.float64(input_scale) * np.float64(weight_scale)))
    if not INT32_MIN <= levels.min() <= levels.max() <= INT32_MAX:
        raise ConfigError(f"{name} is out of range on the accumulator grid (largest {np.abs(levels).max():g}); "
                          "allowed: |b| / (input_scale·weight_scale) < 2^31")
    return levels.astype(np.int32)


def tinymind_requantizer(input_scale: float, weight_scale: float, output: Grid) -> TinyMindRequantizer:
    """``buildRequantizer<int8_t>(input_scale, weight_scale, output.scale, output.zero_point, −128, 127)``."""
    config = RequantConfig(channels=1, lanes=1, input_scale=input_scale, weight_scales=(weight_scale,),
                           output_scale=output.scale, output_zero_point=output.zero_point, convention="tinymind")
    (multiplier,), (shift,) = config.channel_multipliers()
    return TinyMindRequantizer(multiplier=multiplier, shift=-shift, zero_point=output.zero_point, qmin=INT8_MIN,
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


def _tinymind_params(weights: dict[str, np.ndarray], trace: dict[str, np.ndarray], heads: int, input_grid: Grid,
                     attn_grid: Grid) -> TinyMindMultiHeadParams:
    head_dim = weights["wq"].shape[1] // heads
    head_params = []
    for head in range(heads):
        columns = slice(head * head_dim, (head + 1) * head_dim)
        quantized = {name: quantize_weight(f"w{name} (head {head})", weights[f"w{name}"][:, columns])
                     for name in PROJECTIONS}
        grids = {name: Grid(symmetric_scale(trace[name][..., columns]), 0) for name in PROJECTIONS}
        score = Grid(symmetric_scale(trace["scores"][..., head, :, :]), 0)
        score_real = grids["q"].scale * grids["k"].scale / score.scale * (1.0 / math.sqrt(head_dim))
        multiplier, shift = quantize_multiplier_tinymind(score_real)
        head_params.append(TinyMindAttentionParams(
            weights=np.stack([quantized[name][0] for name in PROJECTIONS]),
            biases=np.stack([quantize_bias(f"b{name} (head {head})", weights[f"b{name}"][columns], input_grid.scale,
                                           quantized[name][1]) for name in PROJECTIONS]),
            input_zero_point=input_grid.zero_point, q_zero_point=0, k_zero_point=0, v_zero_point=0,
            **{f"{name}_requantizer": tinymind_requantizer(input_grid.scale, quantized[name][1], grids[name])
               for name in PROJECTIONS},
            score_requantizer=TinyMindRequantizer(multiplier=multiplier, shift=shift, zero_point=0, qmin=INT8_MIN,
                                                  qmax=INT8_MAX),
            output_requantizer=tinymind_requantizer(PROBABILITY_SCALE, grids["v"].scale, attn_grid),
            score_scale=score.scale))
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
