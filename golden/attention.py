"""Bit-exact model of TinyMind's int8 softmax self-attention (``QAttentionSoftmax1D``) and its causal variant
(``QCausalAttentionSoftmax1D``), ``cpp/qattention_softmax.hpp`` and ``cpp/qcausalattention_softmax.hpp``.

One head; ``x`` is ``S × E`` int8, the projections are ``P`` wide. Per sequence, as the C++ loops compute it:

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
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields

import numpy as np

from int8attn.golden.config import SoftmaxConfig
from int8attn.golden.fixedpoint import wrap32
from int8attn.golden.params import ConfigError, Param
from int8attn.golden.requant import (
    MULTIPLIER_RANGE,
    TINYMIND_SHIFT_RANGE,
    RequantConfig,
    RequantModel,
    output_limits,
)
from int8attn.golden.tinymind import TinyMindSoftmaxModel, exp_lut

Requantize = Callable[[np.ndarray], np.ndarray]
"""An int32 accumulator array (any shape, channels on the last axis) → int8 array of the same shape."""

PROJECTIONS = ("q", "k", "v")
INT8_MIN, INT8_MAX = output_limits(8)
PROBABILITY_ZERO_POINT = INT8_MIN
HEADS = 1
INT8_PARAM = Param(kind="int", help="an int8 value", low=INT8_MIN, high=INT8_MAX)
MULTIPLIER_PARAM = Param(kind="int", help="Q0.31 multiplier", low=MULTIPLIER_RANGE[0], high=MULTIPLIER_RANGE[1])
SHIFT_PARAM = Param(kind="int", help="TinyMind shift, > 0 right", low=TINYMIND_SHIFT_RANGE[0],
                    high=TINYMIND_SHIFT_RANGE[1])
SCALE_PARAM = Param(kind="float", help="score scale")
HEADS_PARAM = Param(kind="int", help="attention heads", low=HEADS, high=HEADS)


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

    def __call__(self, acc: np.ndarray) -> np.ndarray:
        """Requantize int32-valued accumulators of any shape to int8."""
        acc = np.asarray(acc)
        return self.model(acc.reshape(-1, 1).astype(np.int32)).reshape(acc.shape)


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


def tinymind_attention(params: TinyMindAttentionParams, x: np.ndarray, *, causal: bool = False
                       ) -> dict[str, np.ndarray]:
    """TinyMind's int8 softmax self-attention of ``x`` (int8 ``(..., S, E)``), every intermediate.

    Returns ``q``, ``k``, ``v`` and ``attn`` as int8 ``(..., S, P)``, ``scores`` and ``probs`` as int8
    ``(..., S, S)`` (query rows, key columns). ``causal`` is ``QCausalAttentionSoftmax1D``: see the module docstring.
    """
    x = np.asarray(x)
    if x.dtype != np.int8 or x.ndim < 2 or x.shape[-1] != params.embed_dim or x.shape[-2] == 0:
        raise ValueError(f"x must be int8 (..., S, {params.embed_dim}) with S ≥ 1, got {x.dtype}{x.shape}")
    result = {name: project(x, params.weights[index], params.biases[index], params.input_zero_point,
                            getattr(params, f"{name}_requantizer"))
              for index, name in enumerate(PROJECTIONS)}
    result["scores"] = attention_scores(result["q"], result["k"], params.q_zero_point, params.k_zero_point,
                                        params.score_requantizer)
    seq_len = x.shape[-2]
    result["probs"] = masked_softmax(params.softmax_model(seq_len), result["scores"],
                                     causal_mask(seq_len) if causal else None)
    result["attn"] = attention_output(result["probs"], result["v"], PROBABILITY_ZERO_POINT, params.v_zero_point,
                                      params.output_requantizer)
    return result
