"""Bit-exact models of int8 self-attention: TinyMind's softmax attention (``QAttentionSoftmax1D``) and its causal
variant (``QCausalAttentionSoftmax1D``), ``cpp/qattention_softmax.hpp`` and ``cpp/qcausalattention_softmax.hpp``, and
the graph of TFLite int8 ops that computes multi-head attention; :func:`attention` runs either from one parameter
file (:func:`load_attention_params`).

TinyMind, one head (:func:`tinymind_attention`): ``x`` is ``S × E`` int8, the projections are ``P`` wide. Per
sequence, as the C++ loops compute it:

* projections ``j ∈ {q, k, v}``: ``acc[s, p] = b_j[p] + Σ_e W_j[e, p] · (x[s, e] − input_zp)``, then
  ``requant_j(acc)``. TinyMind stores the concatenation ``[W_q | W_k | W_v]`` flat, element ``w[e·P + p]`` of each;
  here ``weights[j, e, p]``;
* scores: ``score_requant(Σ_p (q[i, p] − zp_q) · (k[j, p] − zp_k))``, 1/√P folded into the requantizer;
* softmax of each score row with TinyMind's exp LUT of the score scale
  (:class:`~int8attn.golden.tinymind.TinyMindSoftmaxModel`), probabilities at scale 1/256, zero point −128;
* output: ``out_requant(Σ_s (a[t, s] + 128) · (v[s, p] − zp_v))``.

Every accumulator is TinyMind's ``int32_t`` ``AccumType``: the sums are exact here and wrapped to int32 as the
compiled C++ does (its overflow is signed overflow). Each requantizer is ``Requantizer::apply``: TFLite's
``MultiplyByQuantizedMultiplier`` with TinyMind's shift sign (``> 0`` right), the zero point, a clamp to
``qmin..qmax`` (:class:`~int8attn.golden.requant.RequantModel`, convention ``tinymind``).

Causal. ``QCausalAttentionSoftmax1D::forward`` resets a ``QSoftmaxKVCache`` and calls ``step`` per token: project the
token, append its K and V rows, score the query against the ``t + 1`` cached keys only, softmax over those ``t + 1``
scores (row maximum and sum over the prefix), and ``Y[t] = Σ_{j ≤ t} a_j · (V[j] − zp_v)``. The C++ never forms a
score for a later key and keeps one score row of scratch, overwritten each step. Here the full-sequence causal
pass returns the same ``q``, ``k``, ``v`` and ``scores`` as the non-causal pass (a masked entry holds the score
TinyMind never computes), while a masked score takes no part in the row maximum or sum, its probability is −128
(zero probability) and it adds nothing to the output: row ``t`` equals the non-causal attention over ``0..t``.

Multi-head attention (:func:`attention`): ``H`` heads of size ``d`` over ``E`` input features, the heads'
outputs concatenated to ``[S, H·d]`` (head ``h`` in columns ``h·d..h·d + d − 1``), then an optional output
projection to ``E_out`` features.

* Convention ``tinymind``: ``H`` independent heads, each exactly ``QAttentionSoftmax1D`` with ``P = d`` and its own
  weights, biases, zero points and five requantizers, stacked along the projection axis as TinyMind's
  ``QMultiHeadLinearAttention1D`` (``cpp/qmha.hpp``) stacks its linear heads (TinyMind has no multi-head softmax
  layer; that header says a softmax one is assembled the same way). The output projection is a ``QDense``
  (``acc = bias + Σ w·(x − input_zp)``, one requantizer: :class:`TinyMindDense`).
* Convention ``tflite``: the graph a TFLite int8 model runs, each op bit-exact with its reference kernel:
  ``FULLY_CONNECTED`` ×3 (per-tensor or per-channel, :class:`FullyConnected`, the arithmetic of
  :class:`~int8attn.golden.dense.DenseModel`) gives ``[S, H·d]``; reshape ``[S, H, d]`` and transpose to
  ``[H, S, d]``; ``BATCH_MATMUL(Q_h, K_h, adj_y)`` onto the score grid (no bias, full int8 clamp, multiplier from
  the float32 product of the scales: :func:`quantized_matmul`); ``SOFTMAX`` with ``input_scale = score_scale`` and
  ``β = softmax_beta``, where 1/√d enters (TFLite folds β into the softmax's input multiplier);
  ``BATCH_MATMUL(P_h, V_h)`` onto the attn grid; transpose back and concatenate; optional ``FULLY_CONNECTED``.

Softmax modes. The row softmax is any mode of :class:`~int8attn.golden.softmax.SoftmaxModel`, built with
``n = S``, ``lanes = 1``, the score scale and zero point, and β (``softmax_beta`` in ``tflite``; 1 in
``tinymind``, whose 1/√P is in the score requantizer). Its default is the convention's own (``tflite``,
``tinymind``). P·V takes the mode's codes with the mode's output scale and zero point
(``SoftmaxModel.output_scale`` / ``output_zero_point``): 1/256 and −128 for ``tflite``, ``tinymind`` and ``lut``
with 8 output bits; ``hccs``, ``base2`` and ``poly`` write codes at zero point 0 (uint8, or hccs's int16 Q15) and
their own scale. In
``tflite`` the P·V multiplier is formed from that scale like any BATCH_MATMUL multiplier. In ``tinymind`` the stored
``output_requantizer`` is calibrated for 1/256: for another scale ``s`` its real multiplier
``multiplier · 2^(−31 − shift)`` is scaled by ``256 · s`` and quantised again
(:func:`~int8attn.golden.requant.quantize_multiplier_tinymind`), which leaves it unchanged at 1/256. P·V's int32
sum must not overflow: ``S · (2^B − 1) · 255 < 2^31`` for ``B`` output bits, else :class:`ConfigError`.

Causal (both conventions, any mode). Row ``t``'s softmax runs over keys ``0..t``: it is the mode's
``SoftmaxModel`` with ``n = t + 1`` on the prefix of the row (for ``tinymind`` exactly ``QCausalAttentionSoftmax1D``);
masked entries take no part in the row maximum or sum and hold the mode's zero-probability code (its output zero
point, −128 for int8 probabilities), so they add nothing to P·V. A mode whose rules reject a prefix length (``hccs``
needs ``N·(B − S·Dmax) ≥ 256``; ``base2`` with ``base2_chunk < n`` needs a last chunk of 0 or ≥ 2 columns) raises
:class:`ConfigError` naming the row.

Parameter file: one ``.npz`` (:func:`load_attention_params`; :meth:`AttentionParams.arrays` writes it). Integer
scalars take any integer dtype, float scalars any float dtype; scales and β are finite and > 0 as float32; zero
points are int8 values. ``H`` heads of size ``d``, ``E`` input features, ``E_out`` output features.

| key | dtype, shape | meaning |
| --- | --- | --- |
| `convention` | str | `tflite` or `tinymind` |
| `heads` | int | `H`, 1..4096 |
| **convention tflite** | | |
| `input_scale`, `input_zero_point` | float, int | grid of `x` |
| `{q,k,v}_weight` | int8 `[H·d, E]` | FULLY_CONNECTED weights `[out, in]`; rows `h·d..h·d+d−1` are head `h` |
| `{q,k,v}_bias` (optional) | int32 `[H·d]` | bias; 0 when absent |
| `{q,k,v}_weight_scale` | float, `()` or `[H·d]` | symmetric weight scale, per-tensor or per-channel |
| `{q,k,v}_scale`, `{q,k,v}_zero_point` | float, int | grids of Q, K, V |
| `score_scale`, `score_zero_point` | float, int | grid of the scores `Q·Kᵀ` (without 1/√d) |
| `softmax_beta` | float | SOFTMAX β (1/√d) |
| `attn_scale`, `attn_zero_point` | float, int | grid of P·V, the heads concatenated `[S, H·d]` |
| `o_weight` (optional) | int8 `[E_out, H·d]` | output FULLY_CONNECTED weights |
| `o_bias` (optional, with `o_weight`) | int32 `[E_out]` | its bias; 0 when absent |
| `o_weight_scale` (with `o_weight`) | float, `()` or `[E_out]` | its weight scale, per-tensor or per-channel |
| `output_scale`, `output_zero_point` (with `o_weight`) | float, int | grid of the output |
| **convention tinymind**, per head `h` in `0..H−1` | | |
| `head{h}.weights` | int8 `(3, E, d)` | `W_q, W_k, W_v`: `[j, e, p]` multiplies feature `e` into `p` |
| `head{h}.biases` (optional) | int32 `(3, d)` | `b_q, b_k, b_v`; 0 when absent |
| `head{h}.input_zero_point`, `head{h}.{q,k,v}_zero_point` | int | zero points of `x`, Q, K, V |
| `head{h}.{q,k,v,score,output}_requantizer.{multiplier,shift,zero_point,qmin,qmax}` | int | the five requantizers |
| `head{h}.score_scale` | float | the score grid, whose exp LUT the softmax builds |
| `o.weights` (optional) | int8 `[E_out, H·d]` | output QDense weights `[out, in]` |
| `o.biases` (optional, with `o.weights`) | int32 `[E_out]` | its bias; 0 when absent |
| `o.input_zero_point` (with `o.weights`) | int | equals every head's output zero point |
| `o.requantizer.{multiplier,shift,zero_point,qmin,qmax}` (with `o.weights`) | int | its requantizer |

The TinyMind keys are the shared encoder-stack npz's ``block{b}.attn.*`` names (``attn_zero_point`` is −128 and the
exp LUT is rebuilt from ``score_scale``); ``o.*`` are its ``ff*`` QDense names; requantizer shifts are TinyMind's
(``> 0`` right). A missing or unknown key, a wrong dtype or shape, a scale ≤ 0 or not finite, or sizes that
disagree raise :class:`ConfigError`, one line naming the file and the key.
"""

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import ClassVar

import numpy as np

from int8attn.golden.config import ALL_KNOBS, SoftmaxConfig
from int8attn.golden.files import load_arrays
from int8attn.golden.fixedpoint import INT32_MAX, wrap32
from int8attn.golden.matmul import MAX_DIM, batch_matmul, matmul_multiplier
from int8attn.golden.params import ConfigError, Param, is_positive_float32
from int8attn.golden.requant import (
    CONVENTIONS,
    MULTIPLIER_RANGE,
    TINYMIND_SHIFT_RANGE,
    RequantConfig,
    RequantModel,
    output_limits,
    quantize_multiplier_tinymind,
)
from int8attn.golden.softmax import SoftmaxModel
from int8attn.golden.tinymind import TinyMindSoftmaxModel, exp_lut

Requantize = Callable[[np.ndarray], np.ndarray]
"""An int32 accumulator array (any shape, channels on the last axis) → int8 array of the same shape."""
SoftmaxOf = Callable[[int], SoftmaxModel]
"""Row length ``n`` → the softmax model of ``n``-long rows."""

PROJECTIONS = ("q", "k", "v")
INT8_MIN, INT8_MAX = output_limits(8)
PROBABILITY_ZERO_POINT = INT8_MIN
PROBABILITY_SCALE = 1.0 / 256
V_SPAN = INT8_MAX - INT8_MIN
HEADS = 1
INT8_PARAM = Param(kind="int", help="an int8 value", low=INT8_MIN, high=INT8_MAX)
MULTIPLIER_PARAM = Param(kind="int", help="Q0.31 multiplier", low=MULTIPLIER_RANGE[0], high=MULTIPLIER_RANGE[1])
SHIFT_PARAM = Param(kind="int", help="TinyMind shift, > 0 right", low=TINYMIND_SHIFT_RANGE[0],
                    high=TINYMIND_SHIFT_RANGE[1])
SCALE_PARAM = Param(kind="float", help="score scale")
HEADS_PARAM = Param(kind="int", help="attention heads", low=HEADS, high=HEADS)
MAX_HEADS = MAX_DIM
HEAD_COUNT_PARAM = Param(kind="int", help="attention heads H", low=1, high=MAX_HEADS)
REQUANTIZER_FIELDS = ("multiplier", "shift", "zero_point", "qmin", "qmax")
OUTPUT_PREFIX = "o."


def requantize_channels(model: RequantModel, acc: np.ndarray) -> np.ndarray:
    """``model`` on int32-valued accumulators of any shape whose last axis holds its channels."""
    acc = np.asarray(acc)
    return model(acc.reshape(-1, model.config.channels).astype(np.int32)).reshape(acc.shape)


@dataclass(frozen=True)
class TinyMindRequantizer:
    """TinyMind's ``Requantizer<int32_t, int8_t>``: ``clamp(MBQM(acc, multiplier, −shift) + zero_point)``.

    Parameters
    ----------
    multiplier : int
        Q0.31 multiplier, 0..2^31 − 1.
    shift : int
        TinyMind's shift, ``> 0`` right, −30..31.
    zero_point, qmin, qmax : int
        Output zero point and clamp, int8 values with ``qmin ≤ qmax``.

    Members
    -------
    model : RequantModel
        The same arithmetic as a one-channel :class:`~int8attn.golden.requant.RequantModel`.
    """

    multiplier: int
    shift: int
    zero_point: int
    qmin: int
    qmax: int
    model: RequantModel = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        MULTIPLIER_PARAM.check("multiplier", self.multiplier)
        SHIFT_PARAM.check("shift", self.shift)
        for name in ("zero_point", "qmin", "qmax"):
            INT8_PARAM.check(name, getattr(self, name))
        if self.qmin > self.qmax:
            raise ConfigError(f"qmin={self.qmin} is out of range; allowed: at most qmax={self.qmax}")
        config = RequantConfig(channels=1, lanes=1, multipliers=(int(self.multiplier),), shifts=(int(self.shift),),
                               convention="tinymind", output_zero_point=int(self.zero_point),
                               act_min=int(self.qmin), act_max=int(self.qmax))
        object.__setattr__(self, "model", RequantModel(config))

    @classmethod
    def from_mapping(cls, values: Mapping[str, np.ndarray], prefix: str) -> "TinyMindRequantizer":
        """The requantizer stored as ``{prefix}.multiplier``, ``{prefix}.shift``, ... in ``values``."""
        return cls(**{item.name: int(values[f"{prefix}.{item.name}"]) for item in fields(cls) if item.init})

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The requantizer as :meth:`from_mapping` reads it: int32 scalars ``{prefix}.multiplier``, ..."""
        return {f"{prefix}.{name}": np.int32(getattr(self, name)) for name in REQUANTIZER_FIELDS}

    def rescaled(self, factor: float) -> "TinyMindRequantizer":
        """The requantizer whose real multiplier ``multiplier · 2^(−31 − shift)`` is ``factor`` times this one's,
        quantised again; itself at ``factor`` 1."""
        if factor == 1.0:
            return self
        real = float(self.multiplier) * 2.0 ** (-31 - self.shift) * factor
        multiplier, shift = quantize_multiplier_tinymind(real)
        return replace(self, multiplier=multiplier, shift=shift)

    def __call__(self, acc: np.ndarray) -> np.ndarray:
        """Requantize int32-valued accumulators of any shape to int8."""
        return requantize_channels(self.model, acc)


def _check_matrix(weight_name: str, weight: np.ndarray, bias_name: str, bias: np.ndarray | None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(weight, bias)`` as an int8 ``[out, in]`` matrix and an int32 ``[out]`` bias (zeros for ``None``)."""
    weight = np.asarray(weight)
    if weight.dtype != np.int8 or weight.ndim != 2 or 0 in weight.shape:
        raise ConfigError(f"{weight_name} {weight.dtype}{weight.shape} is out of range; allowed: int8 [out, in]")
    bias = np.zeros(weight.shape[0], dtype=np.int32) if bias is None else np.asarray(bias)
    if bias.dtype != np.int32 or bias.shape != weight.shape[:1]:
        raise ConfigError(f"{bias_name} {bias.dtype}{bias.shape} is out of range; allowed: int32 "
                          f"[{weight.shape[0]}]")
    return weight, bias


@dataclass(frozen=True)
class Grid:
    """Scale (float32) and zero point of a quantised tensor."""

    scale: float
    zero_point: int


@dataclass(frozen=True, eq=False)
class FullyConnected:
    """TFLite's int8 ``FULLY_CONNECTED`` without activation: :class:`~int8attn.golden.dense.DenseModel`'s ``tflite``
    arithmetic, ``clamp(MBQM(wrap32(bias + Σ w·(x − input_zp)), M[c], shift[c]) + output_zp, −128, 127)``.

    Parameters
    ----------
    weight : numpy.ndarray
        int8 ``[out, in]``, symmetric (weight zero point 0).
    bias : numpy.ndarray or None
        int32 ``[out]``; ``None``: zeros.
    weight_scale : tuple of float
        One scale (per-tensor, multiplier from the float32 product) or one per output channel.
    input, output : Grid
        Input and output grids.

    Members
    -------
    requantizer : RequantModel
        The ``out``-channel requantizer, convention ``tflite``.
    """

    weight: np.ndarray
    bias: np.ndarray | None
    weight_scale: tuple[float, ...]
    input: Grid
    output: Grid
    requantizer: RequantModel = field(init=False, repr=False)

    def __post_init__(self):
        weight, bias = _check_matrix("weight", self.weight, "bias", self.bias)
        object.__setattr__(self, "weight", weight)
        object.__setattr__(self, "bias", bias)
        config = RequantConfig(channels=weight.shape[0], lanes=1, input_scale=self.input.scale,
                               weight_scales=tuple(self.weight_scale), output_scale=self.output.scale,
                               output_zero_point=self.output.zero_point, convention="tflite")
        object.__setattr__(self, "requantizer", RequantModel(config))

    @property
    def in_features(self) -> int:
        return self.weight.shape[1]

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]

    def arrays(self, weight_key: str, bias_key: str, scale_key: str) -> dict[str, np.ndarray]:
        """Weight, bias and weight scale under the given keys (a per-tensor scale as a scalar)."""
        scales = np.array(self.weight_scale, dtype=np.float32)
        return {weight_key: self.weight, bias_key: self.bias, scale_key: scales[0] if len(scales) == 1 else scales}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """int8 ``(..., in)`` → int8 ``(..., out)``."""
        return project(x, self.weight.T, self.bias, self.input.zero_point,
                       lambda acc: requantize_channels(self.requantizer, acc))


@dataclass(frozen=True, eq=False)
class TinyMindDense:
    """TinyMind's ``QDense`` (``cpp/qdense.hpp``): ``requantizer(wrap32(bias + Σ w · (x − input_zero_point)))``.

    Parameters
    ----------
    weights : numpy.ndarray
        int8 ``[out, in]``.
    biases : numpy.ndarray or None
        int32 ``[out]``; ``None``: zeros.
    input_zero_point : int
    requantizer : TinyMindRequantizer
    """

    weights: np.ndarray
    biases: np.ndarray | None
    input_zero_point: int
    requantizer: TinyMindRequantizer

    def __post_init__(self):
        weights, biases = _check_matrix("weights", self.weights, "biases", self.biases)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "biases", biases)
        INT8_PARAM.check("input_zero_point", self.input_zero_point)

    @property
    def in_features(self) -> int:
        return self.weights.shape[1]

    @property
    def out_features(self) -> int:
        return self.weights.shape[0]

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The layer under ``{prefix}weights``, ``{prefix}biases``, ``{prefix}input_zero_point`` and
        ``{prefix}requantizer.*``."""
        return {f"{prefix}weights": self.weights, f"{prefix}biases": self.biases,
                f"{prefix}input_zero_point": np.int32(self.input_zero_point),
                **self.requantizer.arrays(f"{prefix}requantizer")}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """int8 ``(..., in)`` → int8 ``(..., out)``."""
        return project(x, self.weights.T, self.biases, self.input_zero_point, self.requantizer)


@dataclass(frozen=True, eq=False)
class TinyMindAttentionParams:
    """Parameters of one ``QAttentionSoftmax1D`` / ``QCausalAttentionSoftmax1D`` layer.

    Parameters
    ----------
    weights : numpy.ndarray
        int8 ``(3, E, P)``: ``weights[j, e, p]`` multiplies input feature ``e`` into projection ``p`` of ``W_q``,
        ``W_k``, ``W_v`` (TinyMind's flat ``w[j·E·P + e·P + p]``).
    biases : numpy.ndarray
        int32 ``(3, P)``: ``b_q``, ``b_k``, ``b_v``.
    input_zero_point, q_zero_point, k_zero_point, v_zero_point : int
        int8 zero points of ``x`` and of the projections as the score and output sums subtract them.
    q_requantizer, k_requantizer, v_requantizer, score_requantizer, output_requantizer : TinyMindRequantizer
        Projections, scores (1/√P folded in) and ``A·V``.
    score_scale : float
        Scale of the score grid (float32); TinyMind's exp LUT is ``buildQSoftmaxExpLUT`` of it.
    heads : int
        1: TinyMind's layers are single-head.

    Members
    -------
    embed_dim, projection_dim : int
        ``E`` and ``P``.
    softmax_exp_lut : numpy.ndarray
        TinyMind's 256-entry exp table, indexed by ``score − row max + 255``.
    """

    weights: np.ndarray
    biases: np.ndarray
    input_zero_point: int
    q_zero_point: int
    k_zero_point: int
    v_zero_point: int
    q_requantizer: TinyMindRequantizer
    k_requantizer: TinyMindRequantizer
    v_requantizer: TinyMindRequantizer
    score_requantizer: TinyMindRequantizer
    output_requantizer: TinyMindRequantizer
    score_scale: float
    heads: int = HEADS

    def __post_init__(self):
        weights, biases = np.asarray(self.weights), np.asarray(self.biases)
        if weights.dtype != np.int8 or weights.ndim != 3 or weights.shape[0] != len(PROJECTIONS) or 0 in weights.shape:
            raise ConfigError(f"weights {weights.dtype}{weights.shape} is out of range; allowed: int8 (3, E, P)")
        if biases.dtype != np.int32 or biases.shape != (len(PROJECTIONS), weights.shape[2]):
            raise ConfigError(f"biases {biases.dtype}{biases.shape} is out of range; allowed: int32 "
                              f"(3, {weights.shape[2]})")
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "biases", biases)
        for name in ("input_zero_point", "q_zero_point", "k_zero_point", "v_zero_point"):
            INT8_PARAM.check(name, getattr(self, name))
        for name in self.requantizer_names():
            if not isinstance(getattr(self, name), TinyMindRequantizer):
                raise ConfigError(f"{name}={getattr(self, name)!r} is out of range; allowed: a TinyMindRequantizer")
        SCALE_PARAM.check("score_scale", self.score_scale)
        object.__setattr__(self, "score_scale", float(np.float32(self.score_scale)))
        HEADS_PARAM.check("heads", self.heads)

    @staticmethod
    def requantizer_names() -> tuple[str, ...]:
        """The five requantizer fields, in the order the forward pass applies them."""
        return tuple(f"{name}_requantizer" for name in (*PROJECTIONS, "score", "output"))

    @classmethod
    def from_encoder_stack(cls, npz: Mapping[str, np.ndarray], block: int) -> "TinyMindAttentionParams":
        """Block ``block``'s attention from the shared ``tinymind_encoder_stack.npz`` (a key → array mapping).

        Raises :class:`ConfigError` if the block does not exist, if the softmax output is not at zero point −128
        with the full int8 range, or if the stored exp LUT is not TinyMind's table of the stored score scale.
        """
        blocks = int(npz["config.num_blocks"])
        Param(kind="int", help="block", low=0, high=blocks - 1).check("block", block)
        prefix = f"block{block}.attn."
        softmax_output = tuple(int(npz[prefix + key]) for key in ("attn_zero_point", "attn_qmin", "attn_qmax"))
        if softmax_output != (PROBABILITY_ZERO_POINT, INT8_MIN, INT8_MAX):
            raise ConfigError(f"{prefix}attn_zero_point/qmin/qmax={softmax_output} is out of range; allowed: "
                              f"({PROBABILITY_ZERO_POINT}, {INT8_MIN}, {INT8_MAX})")
        params = cls(weights=npz[prefix + "weights"], biases=npz[prefix + "biases"],
                     **{f"{name}_zero_point": int(npz[f"{prefix}{name}_zero_point"])
                        for name in ("input", *PROJECTIONS)},
                     **{name: TinyMindRequantizer.from_mapping(npz, prefix + name) for name in cls.requantizer_names()},
                     score_scale=float(npz[f"block{block}.scale.score"]))
        if not np.array_equal(params.softmax_exp_lut, npz[prefix + "softmax_exp_lut"]):
            raise ConfigError(f"{prefix}softmax_exp_lut is out of range; allowed: buildQSoftmaxExpLUT of "
                              f"block{block}.scale.score = {params.score_scale!r}")
        return params

    @property
    def embed_dim(self) -> int:
        return self.weights.shape[1]

    @property
    def projection_dim(self) -> int:
        return self.weights.shape[2]

    @property
    def softmax_exp_lut(self) -> np.ndarray:
        return exp_lut(self.score_scale)

    def softmax_model(self, seq_len: int) -> TinyMindSoftmaxModel:
        """TinyMind's softmax of ``seq_len``-long score rows on this layer's score grid."""
        return TinyMindSoftmaxModel(SoftmaxConfig(n=seq_len, lanes=1, input_scale=self.score_scale, mode="tinymind"))

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The layer under the parameter file's names ``{prefix}weights``, ``{prefix}biases``, ... (module
        docstring)."""
        zero_points = {f"{prefix}{name}_zero_point": np.int32(getattr(self, f"{name}_zero_point"))
                       for name in ("input", *PROJECTIONS)}
        requantizers = {key: value for name in self.requantizer_names()
                        for key, value in getattr(self, name).arrays(prefix + name).items()}
        return {f"{prefix}weights": self.weights, f"{prefix}biases": self.biases, **zero_points, **requantizers,
                f"{prefix}score_scale": np.float32(self.score_scale)}


def project(x: np.ndarray, weights: np.ndarray, biases: np.ndarray, input_zero_point: int,
            requantize: Requantize) -> np.ndarray:
    """One projection: ``requantize(wrap32(biases + (x − input_zero_point) · weights))``.

    ``x`` is ``(..., S, E)`` integers, ``weights`` ``(E, P)``, ``biases`` ``(P,)``; returns ``(..., S, P)``.
    """
    centred = np.asarray(x, dtype=np.int64) - input_zero_point
    return requantize(wrap32(np.asarray(biases, dtype=np.int64) + centred @ np.asarray(weights, dtype=np.int64)))


def attention_scores(q: np.ndarray, k: np.ndarray, q_zero_point: int, k_zero_point: int,
                     requantize: Requantize) -> np.ndarray:
    """``requantize(wrap32((q − zp_q) · (k − zp_k)ᵀ))``: ``(..., S, P)`` twice → ``(..., S, S)``, query rows."""
    q_centred = np.asarray(q, dtype=np.int64) - q_zero_point
    k_centred = np.asarray(k, dtype=np.int64) - k_zero_point
    return requantize(wrap32(q_centred @ np.swapaxes(k_centred, -1, -2)))


def attention_output(probs: np.ndarray, v: np.ndarray, probs_zero_point: int, v_zero_point: int,
                     requantize: Requantize) -> np.ndarray:
    """``requantize(wrap32((probs − zp_a) · (v − zp_v)))``: ``(..., S, S)`` and ``(..., S, P)`` → ``(..., S, P)``."""
    a_centred = np.asarray(probs, dtype=np.int64) - probs_zero_point
    v_centred = np.asarray(v, dtype=np.int64) - v_zero_point
    return requantize(wrap32(a_centred @ v_centred))


def causal_mask(seq_len: int) -> np.ndarray:
    """``(S, S)`` booleans, ``True`` where query ``i`` may attend key ``j`` (``j ≤ i``)."""
    return np.tri(seq_len, dtype=bool)


def masked_softmax(model: TinyMindSoftmaxModel, scores: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """TinyMind's softmax of int8 score rows (last axis), over the entries ``mask`` keeps.

    A masked entry takes no part in the row maximum or sum and its probability is −128; a row that keeps nothing
    is −128 throughout, as TinyMind's ``sum ≤ 0`` branch gives. ``mask`` broadcasts against ``scores``; ``None``
    keeps every entry.
    """
    scores = np.asarray(scores, dtype=np.int64)
    keep = np.ones(scores.shape, dtype=bool) if mask is None else np.broadcast_to(mask, scores.shape)
    row_max = np.where(keep, scores, INT8_MIN).max(axis=-1, keepdims=True)
    exps = np.where(keep, model.exp_table[np.where(keep, row_max - scores, 0)], 0)
    return model.divide(exps, exps.sum(axis=-1, keepdims=True))


def check_input(x: np.ndarray, embed_dim: int) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != np.int8 or x.ndim < 2 or x.shape[-1] != embed_dim or x.shape[-2] == 0:
        raise ValueError(f"x must be int8 (..., S, {embed_dim}) with S ≥ 1, got {x.dtype}{x.shape}")
    return x


def _tinymind_scores(params: TinyMindAttentionParams, x: np.ndarray) -> dict[str, np.ndarray]:
    """``q``, ``k``, ``v`` and ``scores`` of one TinyMind head."""
    result = {name: project(x, params.weights[index], params.biases[index], params.input_zero_point,
                            getattr(params, f"{name}_requantizer"))
              for index, name in enumerate(PROJECTIONS)}
    result["scores"] = attention_scores(result["q"], result["k"], params.q_zero_point, params.k_zero_point,
                                        params.score_requantizer)
    return result


def tinymind_attention(params: TinyMindAttentionParams, x: np.ndarray, *, causal: bool = False
                       ) -> dict[str, np.ndarray]:
    """TinyMind's int8 softmax self-attention of ``x`` (int8 ``(..., S, E)``), every intermediate.

    Returns ``q``, ``k``, ``v`` and ``attn`` as int8 ``(..., S, P)``, ``scores`` and ``probs`` as int8
    ``(..., S, S)`` (query rows, key columns). ``causal`` is ``QCausalAttentionSoftmax1D``: see the module docstring.
    """
    x = check_input(x, params.embed_dim)
    result = _tinymind_scores(params, x)
    seq_len = x.shape[-2]
    result["probs"] = masked_softmax(params.softmax_model(seq_len), result["scores"],
                                     causal_mask(seq_len) if causal else None)
    result["attn"] = attention_output(result["probs"], result["v"], PROBABILITY_ZERO_POINT, params.v_zero_point,
                                      params.output_requantizer)
    return result


# Multi-head attention, both conventions.

def quantized_matmul(lhs: np.ndarray, rhs: np.ndarray, lhs_grid: Grid, rhs_grid: Grid, output_grid: Grid, *,
                     adj_y: bool = False) -> np.ndarray:
    """TFLite's int8 ``BATCH_MATMUL`` of ``lhs`` ``[.., M, K]`` and ``rhs`` ``[.., K, N]`` (``[.., N, K]`` with
    ``adj_y``) onto ``output_grid``: :func:`~int8attn.golden.matmul.batch_matmul` with the multiplier
    :func:`~int8attn.golden.matmul.matmul_multiplier` forms from the three scales."""
    multiplier, shift = matmul_multiplier(lhs_grid.scale, rhs_grid.scale, output_grid.scale)
    return batch_matmul(lhs, rhs, lhs_zero_point=lhs_grid.zero_point, rhs_zero_point=rhs_grid.zero_point,
                        multiplier=multiplier, shift=shift, output_zero_point=output_grid.zero_point, adj_y=adj_y)


def row_softmax(scores: np.ndarray, softmax_of: SoftmaxOf, causal: bool) -> tuple[np.ndarray, SoftmaxModel]:
    """The softmax of every score row (last axis) and the model of full rows.

    ``causal``: row ``t`` (index on the second-last axis) is ``softmax_of(t + 1)`` on its first ``t + 1`` entries,
    and the others hold the model's zero point (probability 0).
    """
    seq_len = scores.shape[-1]
    model = softmax_of(seq_len)
    rows = scores.reshape(-1, seq_len)
    if not causal:
        return model(rows).reshape(scores.shape), model
    probs = np.full(rows.shape, model.output_zero_point, dtype=model.output_dtype)
    query = np.arange(len(rows)) % scores.shape[-2]
    for t in range(seq_len):
        try:
            prefix = softmax_of(t + 1)
        except ConfigError as error:
            raise ConfigError(f"causal row {t} (n={t + 1}): {error}") from None
        probs[query == t, :t + 1] = prefix(rows[query == t, :t + 1])
    return probs.reshape(scores.shape), model


def probability_grid(model: SoftmaxModel, seq_len: int) -> Grid:
    """The grid of ``model``'s codes, the LHS of P·V; :class:`ConfigError` when P·V's int32 sum over ``seq_len``
    keys can overflow."""
    largest = seq_len * ((1 << model.output_bits) - 1) * V_SPAN
    if largest > INT32_MAX:
        raise ConfigError(f"softmax mode {model.config.mode} with output_bits={model.output_bits} at S={seq_len} is "
                          f"out of range (P·V sums reach {largest}); allowed: S·(2^output_bits − 1)·255 < 2^31")
    return Grid(scale=model.output_scale, zero_point=model.output_zero_point)


class AttentionParams:
    """Weights and quantisation of one multi-head attention layer in one convention (module docstring):
    :class:`TFLiteAttentionParams` or :class:`TinyMindMultiHeadParams`. :func:`load_attention_params` reads them from
    the parameter file, :meth:`arrays` gives its content.

    Members
    -------
    convention : str
        ``tflite`` or ``tinymind``.
    heads, embed_dim, head_dim, out_dim : int
        ``H``, ``E``, ``d`` and the output features (``E_out``, or ``H·d`` without an output projection).
    has_output_projection : bool
    """

    convention: ClassVar[str]
    heads: int
    embed_dim: int
    head_dim: int
    output_projection: "FullyConnected | TinyMindDense | None"

    @property
    def out_dim(self) -> int:
        projection = self.output_projection
        return self.heads * self.head_dim if projection is None else projection.out_features

    @property
    def has_output_projection(self) -> bool:
        return self.output_projection is not None

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], source: str = "attention parameters") -> "AttentionParams":
        """The parameters held by ``arrays`` (the parameter file's content); :class:`ConfigError` naming ``source``
        and the first key at fault."""
        reader = ParamReader(arrays, source)
        if "convention" not in reader.arrays:
            raise reader.error("convention", "is missing", ", ".join(CONVENTIONS))
        convention = reader.text("convention", CONVENTIONS)
        return _read_tflite(reader) if convention == "tflite" else _read_tinymind(reader)

    def arrays(self) -> dict[str, np.ndarray]:
        """The parameter file's content (module docstring)."""
        raise NotImplementedError

    def softmax_input(self, head: int) -> tuple[float, int, float]:
        """``(input_scale, input_zero_point, beta)`` of head ``head``'s softmax."""
        raise NotImplementedError

    def forward(self, x: np.ndarray, softmax_of: Callable[[int], SoftmaxOf], causal: bool) -> dict[str, np.ndarray]:
        """:func:`attention` of a checked ``x`` with head ``h``'s softmax models ``softmax_of(h)``."""
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class TFLiteAttentionParams(AttentionParams):
    """Convention ``tflite``: the TFLite int8 graph of the module docstring.

    Parameters
    ----------
    heads : int
        ``H``, dividing the projections' ``H·d`` outputs.
    q, k, v : FullyConnected
        The projections ``[H·d, E]``, on one input grid.
    score : Grid
        Grid of the scores ``Q·Kᵀ``.
    softmax_beta : float
        SOFTMAX β (float32).
    attn : Grid
        Grid of P·V.
    output_projection : FullyConnected or None
        ``[E_out, H·d]`` on the ``attn`` grid.
    """

    convention: ClassVar[str] = "tflite"
    heads: int
    q: FullyConnected
    k: FullyConnected
    v: FullyConnected
    score: Grid
    softmax_beta: float
    attn: Grid
    output_projection: FullyConnected | None = None

    def __post_init__(self):
        HEAD_COUNT_PARAM.check("heads", self.heads)
        shape = self.q.weight.shape
        for name in PROJECTIONS:
            layer = getattr(self, name)
            if layer.weight.shape != shape or layer.input != self.q.input:
                raise ConfigError(f"{name}_weight {layer.weight.shape} on {layer.input} is out of range; allowed: "
                                  f"the shape {shape} and input grid {self.q.input} of q_weight")
        if shape[0] % self.heads:
            raise ConfigError(f"heads={self.heads} does not divide the {shape[0]} rows of q_weight; allowed: a "
                              "divisor of H·d")
        Param(kind="float", help="softmax beta").check("softmax_beta", self.softmax_beta)
        object.__setattr__(self, "softmax_beta", float(np.float32(self.softmax_beta)))
        for key, grids in (("score_scale", (self.q.output, self.k.output, self.score)),
                           ("attn_scale", (Grid(PROBABILITY_SCALE, PROBABILITY_ZERO_POINT), self.v.output,
                                           self.attn))):
            try:
                matmul_multiplier(*(grid.scale for grid in grids))
            except ConfigError as error:
                raise ConfigError(f"{key}: {error}") from None
        projection = self.output_projection
        if projection is not None and (projection.in_features != shape[0] or projection.input != self.attn):
            raise ConfigError(f"o_weight {projection.weight.shape} on {projection.input} is out of range; allowed: "
                              f"[E_out, {shape[0]}] on the attn grid {self.attn}")

    @property
    def embed_dim(self) -> int:
        return self.q.in_features

    @property
    def head_dim(self) -> int:
        return self.q.out_features // self.heads

    def arrays(self) -> dict[str, np.ndarray]:
        grids = {"input": self.q.input, **{name: getattr(self, name).output for name in PROJECTIONS},
                 "score": self.score, "attn": self.attn}
        if self.output_projection is not None:
            grids["output"] = self.output_projection.output
        content = {"convention": np.array(self.convention), "heads": np.int32(self.heads),
                   "softmax_beta": np.float32(self.softmax_beta)}
        for name, grid in grids.items():
            content |= {f"{name}_scale": np.float32(grid.scale), f"{name}_zero_point": np.int32(grid.zero_point)}
        for name in PROJECTIONS:
            content |= getattr(self, name).arrays(f"{name}_weight", f"{name}_bias", f"{name}_weight_scale")
        if self.output_projection is not None:
            content |= self.output_projection.arrays("o_weight", "o_bias", "o_weight_scale")
        return content

    def softmax_input(self, head: int) -> tuple[float, int, float]:
        return self.score.scale, self.score.zero_point, self.softmax_beta

    def split_heads(self, values: np.ndarray) -> np.ndarray:
        """``[.., S, H·d]`` → ``[.., H, S, d]``."""
        return np.moveaxis(values.reshape(*values.shape[:-1], self.heads, self.head_dim), -2, -3)

    @staticmethod
    def merge_heads(values: np.ndarray) -> np.ndarray:
        """``[.., H, S, d]`` → ``[.., S, H·d]``."""
        moved = np.moveaxis(values, -3, -2)
        return moved.reshape(*moved.shape[:-2], -1)

    def forward(self, x: np.ndarray, softmax_of: Callable[[int], SoftmaxOf], causal: bool) -> dict[str, np.ndarray]:
        result = {name: getattr(self, name)(x) for name in PROJECTIONS}
        q, k, v = (self.split_heads(result[name]) for name in PROJECTIONS)
        result["scores"] = quantized_matmul(q, k, self.q.output, self.k.output, self.score, adj_y=True)
        result["probs"], model = row_softmax(result["scores"], softmax_of(0), causal)
        heads = quantized_matmul(result["probs"], v, probability_grid(model, x.shape[-2]), self.v.output, self.attn)
        result["attn"] = self.merge_heads(heads)
        result["out"] = result["attn"] if self.output_projection is None else self.output_projection(result["attn"])
        return result


@dataclass(frozen=True, eq=False)
class TinyMindMultiHeadParams(AttentionParams):
    """Convention ``tinymind``: independent ``QAttentionSoftmax1D`` heads, outputs stacked, optional ``QDense``.

    Parameters
    ----------
    head_params : tuple of TinyMindAttentionParams
        The heads, all ``E`` inputs and ``d = P`` wide.
    output_projection : TinyMindDense or None
        ``[E_out, H·d]``, its input zero point every head's output zero point.
    """

    convention: ClassVar[str] = "tinymind"
    head_params: tuple[TinyMindAttentionParams, ...]
    output_projection: TinyMindDense | None = None

    def __post_init__(self):
        object.__setattr__(self, "head_params", tuple(self.head_params))
        HEAD_COUNT_PARAM.check("heads", len(self.head_params))
        first = self.head_params[0]
        for index, head in enumerate(self.head_params):
            if head.weights.shape != first.weights.shape:
                raise ConfigError(f"head{index}.weights {head.weights.shape} is out of range; allowed: "
                                  f"{first.weights.shape}, head0's")
        projection = self.output_projection
        if projection is None:
            return
        if projection.in_features != self.heads * self.head_dim:
            raise ConfigError(f"o.weights {projection.weights.shape} is out of range; allowed: [E_out, "
                              f"{self.heads * self.head_dim}]")
        for index, head in enumerate(self.head_params):
            if head.output_requantizer.zero_point != projection.input_zero_point:
                raise ConfigError(f"o.input_zero_point={projection.input_zero_point} is out of range; allowed: "
                                  f"{head.output_requantizer.zero_point}, the output zero point of head{index}")

    @property
    def heads(self) -> int:
        return len(self.head_params)

    @property
    def embed_dim(self) -> int:
        return self.head_params[0].embed_dim

    @property
    def head_dim(self) -> int:
        return self.head_params[0].projection_dim

    def arrays(self) -> dict[str, np.ndarray]:
        content = {"convention": np.array(self.convention), "heads": np.int32(self.heads)}
        for index, head in enumerate(self.head_params):
            content |= head.arrays(f"head{index}.")
        if self.output_projection is not None:
            content |= self.output_projection.arrays(OUTPUT_PREFIX)
        return content

    def softmax_input(self, head: int) -> tuple[float, int, float]:
        params = self.head_params[head]
        return params.score_scale, params.score_requantizer.zero_point, 1.0

    def forward(self, x: np.ndarray, softmax_of: Callable[[int], SoftmaxOf], causal: bool) -> dict[str, np.ndarray]:
        heads = []
        for index, params in enumerate(self.head_params):
            result = _tinymind_scores(params, x)
            result["probs"], model = row_softmax(result["scores"], softmax_of(index), causal)
            grid = probability_grid(model, x.shape[-2])
            requantizer = params.output_requantizer.rescaled(grid.scale / PROBABILITY_SCALE)
            result["attn"] = attention_output(result["probs"], result["v"], grid.zero_point, params.v_zero_point,
                                              requantizer)
            heads.append(result)
        merged = {name: np.concatenate([head[name] for head in heads], axis=-1) for name in (*PROJECTIONS, "attn")}
        merged |= {name: np.stack([head[name] for head in heads], axis=-3) for name in ("scores", "probs")}
        merged["out"] = merged["attn"] if self.output_projection is None else self.output_projection(merged["attn"])
        return merged


def attention(params: AttentionParams, x: np.ndarray, *, causal: bool = False, softmax_mode: str | None = None,
              **softmax_knobs) -> dict[str, np.ndarray]:
    """Multi-head int8 self-attention of ``x`` (int8 ``(..., S, E)``), every intermediate (module docstring).

    Parameters
    ----------
    params : AttentionParams
    x : numpy.ndarray
        int8 ``(..., S, E)``; leading dimensions are independent sequences.
    causal : bool
        Row ``t`` attends keys ``0..t`` only.
    softmax_mode : str or None
        A mode of :class:`~int8attn.golden.config.SoftmaxConfig`; ``None``: the convention's own.
    **softmax_knobs
        The mode's knobs (:data:`~int8attn.golden.config.MODE_KNOBS`).

    Returns
    -------
    dict
        ``q``, ``k``, ``v`` and ``attn`` ``(..., S, H·d)``, ``scores`` and ``probs`` ``(..., H, S, S)`` (query rows,
        key columns; ``probs`` in the mode's output dtype), ``out`` ``(..., S, E_out)`` (``attn`` without an output
        projection).
    """
    x = check_input(x, params.embed_dim)
    mode = params.convention if softmax_mode is None else softmax_mode
    for name in softmax_knobs:
        if name not in ALL_KNOBS:
            raise ConfigError(f"{name} is not a softmax knob; allowed: {', '.join(ALL_KNOBS)}")

    def softmax_of(head: int) -> SoftmaxOf:
        scale, zero_point, beta = params.softmax_input(head)

        def model(n: int) -> SoftmaxModel:
            return SoftmaxModel(SoftmaxConfig(n=n, lanes=1, input_scale=scale, input_zero_point=zero_point, beta=beta,
                                              mode=mode, **softmax_knobs))
        return model

    return params.forward(x, softmax_of, bool(causal))


# The parameter file.

TFLITE_REQUIRED = ("convention", "heads", "input_scale", "input_zero_point",
                   *(f"{name}_{item}" for name in PROJECTIONS for item in ("weight", "weight_scale", "scale",
                                                                            "zero_point")),
                   "score_scale", "score_zero_point", "softmax_beta", "attn_scale", "attn_zero_point")
TFLITE_OPTIONAL = tuple(f"{name}_bias" for name in PROJECTIONS)
TFLITE_OUTPUT_REQUIRED = ("o_weight", "o_weight_scale", "output_scale", "output_zero_point")
TFLITE_OUTPUT_OPTIONAL = ("o_bias",)
REQUANTIZER_KEYS = tuple(f"{name}.{item}" for name in TinyMindAttentionParams.requantizer_names()
                         for item in REQUANTIZER_FIELDS)
TINYMIND_HEAD_REQUIRED = ("weights", *(f"{name}_zero_point" for name in ("input", *PROJECTIONS)), *REQUANTIZER_KEYS,
                          "score_scale")
TINYMIND_HEAD_OPTIONAL = ("biases",)
TINYMIND_OUTPUT_REQUIRED = tuple(OUTPUT_PREFIX + key for key in (
    "weights", "input_zero_point", *(f"requantizer.{item}" for item in REQUANTIZER_FIELDS)))
TINYMIND_OUTPUT_OPTIONAL = (OUTPUT_PREFIX + "biases",)
INT64_RANGE = (-(1 << 63), (1 << 63) - 1)
TFLITE_KEYS_TEXT = ("convention, heads, input_scale, input_zero_point, {q,k,v}_{weight,bias,weight_scale,scale,"
                    "zero_point}, score_scale, score_zero_point, softmax_beta, attn_scale, attn_zero_point, optional "
                    "o_weight with o_bias, o_weight_scale, output_scale, output_zero_point")
TINYMIND_KEYS_TEXT = ("convention, heads, head0..head{last}.{{weights, biases, input_zero_point, {{q,k,v}}_zero_point, "
                      "{{q,k,v,score,output}}_requantizer.{{multiplier,shift,zero_point,qmin,qmax}}, score_scale}}, "
                      "optional o.weights with o.biases, o.input_zero_point, o.requantizer.*")


class ParamReader:
    """Checked access to a parameter file's arrays; every error is one line naming ``source`` and the key."""

    def __init__(self, arrays: Mapping[str, np.ndarray], source: str):
        self.arrays = {key: np.asarray(value) for key, value in arrays.items()}
        self.source = source

    def error(self, key: str, problem: str, allowed: str) -> ConfigError:
        return ConfigError(f"{self.source}: {key} {problem}; allowed: {allowed}")

    def check_keys(self, required: Sequence[str], optional: Sequence[str], allowed: str) -> None:
        known = set(required) | set(optional)
        for key in sorted(self.arrays):
            if key not in known:
                raise self.error(key, "is an unknown key", allowed)
        for key in required:
            if key not in self.arrays:
                raise self.error(key, "is missing", allowed)

    def _scalar(self, key: str, kinds: str, allowed: str) -> np.ndarray:
        value = self.arrays[key]
        if value.shape != () or value.dtype.kind not in kinds:
            raise self.error(key, f"is {value.dtype}{value.shape}", allowed)
        return value

    def integer(self, key: str, low: int = INT64_RANGE[0], high: int = INT64_RANGE[1]) -> int:
        allowed = f"an integer scalar in {low}..{high}" if high < INT64_RANGE[1] else "an integer scalar"
        value = int(self._scalar(key, "iu", allowed))
        if not low <= value <= high:
            raise self.error(key, f"= {value} is out of range", allowed)
        return value

    def zero_point(self, key: str) -> int:
        return self.integer(key, INT8_MIN, INT8_MAX)

    def scale(self, key: str) -> float:
        allowed = "a finite float scalar > 0 (as float32)"
        value = self._scalar(key, "f", allowed)
        if not is_positive_float32(value):
            raise self.error(key, f"= {value.tolist()!r} is out of range", allowed)
        return float(np.float32(value))

    def text(self, key: str, choices: Sequence[str]) -> str:
        value = str(self._scalar(key, "U", f"a string: {', '.join(choices)}"))
        if value not in choices:
            raise self.error(key, f"= {value!r} is unknown", ", ".join(choices))
        return value

    def array(self, key: str, dtype: type, shape: tuple[int | None, ...], text: str) -> np.ndarray:
        """The array ``key`` of ``dtype`` and ``shape`` (``None``: any size ≥ 1 on that axis)."""
        value = self.arrays[key]
        if value.dtype != dtype or value.ndim != len(shape) or any(
                size == 0 or wanted not in (None, size) for size, wanted in zip(value.shape, shape, strict=True)):
            raise self.error(key, f"is {value.dtype}{value.shape}", f"{np.dtype(dtype).name} {text}")
        return value

    def optional_array(self, key: str, dtype: type, shape: tuple[int, ...], text: str) -> np.ndarray | None:
        return self.array(key, dtype, shape, text) if key in self.arrays else None

    def scales(self, key: str, channels: int) -> tuple[float, ...]:
        value = self.arrays[key]
        allowed = f"finite floats > 0 (as float32), a scalar or [{channels}]"
        if value.dtype.kind != "f" or value.shape not in ((), (channels,)) or not all(
                is_positive_float32(item) for item in value.reshape(-1)):
            raise self.error(key, f"is {value.dtype}{value.shape} {value.reshape(-1)[:4].tolist()}", allowed)
        return tuple(float(np.float32(item)) for item in value.reshape(-1))

    def build(self, prefix: str, factory: Callable, *args, **kwargs):
        """``factory(*args, **kwargs)``, its :class:`ConfigError` prefixed with ``source`` and ``prefix``."""
        try:
            return factory(*args, **kwargs)
        except ConfigError as error:
            raise ConfigError(f"{self.source}: {prefix}{error}") from None


def _read_tflite(reader: ParamReader) -> TFLiteAttentionParams:
    has_output = any(key in reader.arrays for key in TFLITE_OUTPUT_REQUIRED + TFLITE_OUTPUT_OPTIONAL)
    required = TFLITE_REQUIRED + (TFLITE_OUTPUT_REQUIRED if has_output else ())
    every = TFLITE_REQUIRED + TFLITE_OPTIONAL + TFLITE_OUTPUT_REQUIRED + TFLITE_OUTPUT_OPTIONAL
    reader.check_keys(required, every, TFLITE_KEYS_TEXT)
    heads = reader.integer("heads", 1, MAX_HEADS)
    rows, embed = reader.array("q_weight", np.int8, (None, None), "[H·d, E]").shape
    if rows % heads:
        raise reader.error("heads", f"= {heads} does not divide the {rows} rows of q_weight", "a divisor of H·d")
    input_grid = Grid(reader.scale("input_scale"), reader.zero_point("input_zero_point"))
    layers = {}
    for name in PROJECTIONS:
        weight = reader.array(f"{name}_weight", np.int8, (rows, embed), f"[H·d, E] = [{rows}, {embed}]")
        bias = reader.optional_array(f"{name}_bias", np.int32, (rows,), f"[H·d] = [{rows}]")
        grid = Grid(reader.scale(f"{name}_scale"), reader.zero_point(f"{name}_zero_point"))
        layers[name] = reader.build(f"{name}_weight_scale: ", FullyConnected, weight, bias,
                                    reader.scales(f"{name}_weight_scale", rows), input_grid, grid)
    attn = Grid(reader.scale("attn_scale"), reader.zero_point("attn_zero_point"))
    output = None
    if has_output:
        weight = reader.array("o_weight", np.int8, (None, rows), f"[E_out, H·d] = [E_out, {rows}]")
        bias = reader.optional_array("o_bias", np.int32, weight.shape[:1], f"[E_out] = [{weight.shape[0]}]")
        grid = Grid(reader.scale("output_scale"), reader.zero_point("output_zero_point"))
        output = reader.build("o_weight_scale: ", FullyConnected, weight, bias,
                              reader.scales("o_weight_scale", weight.shape[0]), attn, grid)
    score = Grid(reader.scale("score_scale"), reader.zero_point("score_zero_point"))
    return reader.build("", TFLiteAttentionParams, heads, q=layers["q"], k=layers["k"], v=layers["v"], score=score,
                        softmax_beta=reader.scale("softmax_beta"), attn=attn, output_projection=output)


def _read_tinymind(reader: ParamReader) -> TinyMindMultiHeadParams:
    heads = reader.integer("heads", 1, MAX_HEADS)
    has_output = any(key.startswith(OUTPUT_PREFIX) for key in reader.arrays)
    per_head = [f"head{index}.{key}" for index in range(heads) for key in TINYMIND_HEAD_REQUIRED]
    optional = [f"head{index}.{key}" for index in range(heads) for key in TINYMIND_HEAD_OPTIONAL]
    required = ["convention", "heads", *per_head, *(TINYMIND_OUTPUT_REQUIRED if has_output else ())]
    reader.check_keys(required, optional + list(TINYMIND_OUTPUT_REQUIRED + TINYMIND_OUTPUT_OPTIONAL),
                      TINYMIND_KEYS_TEXT.format(last=heads - 1))
    _, embed, dim = reader.array("head0.weights", np.int8, (len(PROJECTIONS), None, None), "(3, E, d)").shape
    head_params = []
    for index in range(heads):
        prefix = f"head{index}."
        weights = reader.array(prefix + "weights", np.int8, (len(PROJECTIONS), embed, dim),
                               f"(3, E, d) = (3, {embed}, {dim})")
        biases = reader.optional_array(prefix + "biases", np.int32, (len(PROJECTIONS), dim), f"(3, d) = (3, {dim})")
        zero_points = {f"{name}_zero_point": reader.zero_point(f"{prefix}{name}_zero_point")
                       for name in ("input", *PROJECTIONS)}
        requantizers = {name: read_requantizer(reader, prefix + name)
                        for name in TinyMindAttentionParams.requantizer_names()}
        head_params.append(reader.build(
            prefix, TinyMindAttentionParams, weights=weights,
            biases=np.zeros((len(PROJECTIONS), dim), dtype=np.int32) if biases is None else biases,
            **zero_points, **requantizers, score_scale=reader.scale(prefix + "score_scale")))
    output = None
    if has_output:
        weights = reader.array("o.weights", np.int8, (None, heads * dim), f"[E_out, H·d] = [E_out, {heads * dim}]")
        biases = reader.optional_array("o.biases", np.int32, weights.shape[:1], f"[E_out] = [{weights.shape[0]}]")
        output = reader.build(OUTPUT_PREFIX, TinyMindDense, weights, biases, reader.zero_point("o.input_zero_point"),
                              read_requantizer(reader, "o.requantizer"))
    return reader.build("", TinyMindMultiHeadParams, tuple(head_params), output)


def read_requantizer(reader: ParamReader, prefix: str) -> TinyMindRequantizer:
    values = {item: reader.integer(f"{prefix}.{item}") for item in REQUANTIZER_FIELDS}
    return reader.build(prefix + ".", TinyMindRequantizer, **values)


def load_attention_params(path: str | os.PathLike) -> AttentionParams:
    """The attention parameter file ``path`` (module docstring); :class:`ConfigError`, one line naming the file and
    the key, on anything it does not allow."""
    allowed = "an attention parameter .npz (int8attn.golden.attention)"
    arrays = load_arrays(path, allowed)
    if not isinstance(arrays, dict):
        raise ConfigError(f"{path}: is not an .npz archive; allowed: {allowed}")
    return AttentionParams.from_arrays(arrays, source=str(path))
