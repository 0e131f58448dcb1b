"""Bit-exact model of TinyMind's int8 transformer encoder stack with softmax attention
(``examples/transformer_encoder_stack_softmax_int8/``): :func:`stack_forward` of :class:`StackParams`, read from the
shared ``tinymind_encoder_stack.npz`` layout by :func:`load_stack_params`.

Forward pass, as the example's ``main`` and ``runBlockQ`` call TinyMind's layers, for token ids ``(..., S)``:

* ``t.emb = QEmbedding(tokens)`` (:class:`~int8attn.golden.embedding.TinyMindEmbedding`);
  ``t.x0 = QPositionalEncoding1D(t.emb)``, i.e. ``QAdd(t.emb, pos.table)``
  (:class:`~int8attn.golden.embedding.TinyMindPositionalEncoding`);
* per block ``b`` on its input ``x`` (``t.x0``, then the previous block's output):
  ``ln1 = LN1(x)`` (:class:`~int8attn.golden.layernorm.TinyMindLayerNorm`);
  ``q, k, v, scores, probs, attn = QAttentionSoftmax1D(ln1)``
  (:func:`~int8attn.golden.attention.tinymind_attention`); ``skip1 = QAdd1(attn, x)``
  (:class:`~int8attn.golden.add.TinyMindAdd`, ``attn`` is input a); ``ln2 = LN2(skip1)``;
  ``ff1_pre_relu = QDense1(ln2)`` per token (:class:`~int8attn.golden.attention.TinyMindDense`, its requantizer's
  ``qmin`` the fused ReLU); ``ff1 = qrelu(ff1_pre_relu, relu_zero_point)`` (``qreluBuffer``: ``max(x, zp)``);
  ``ff2 = QDense2(ff1)``; ``block_out = QAdd2(skip1, ff2)`` (``skip1`` is input a);
* ``output`` is the last block's ``block_out``.

:func:`stack_forward` returns every intermediate under the shared file's names: ``t.emb`` and ``t.x0``
``(..., S, E)``; ``t.ln1``, ``t.q``, ``t.k``, ``t.v``, ``t.attn``, ``t.skip1``, ``t.ln2``, ``t.ff2``, ``t.block_out``
``(..., B, S, E)``; ``t.scores``, ``t.probs`` ``(..., B, S, S)``; ``t.ff1_pre_relu``, ``t.ff1`` ``(..., B, S, F)``;
``output`` ``(..., S, E)``; all int8.

Parameter file (:meth:`StackParams.from_arrays`, :meth:`StackParams.arrays`): the keys of the shared npz that the
integer forward pass reads, with its dtypes; ``V`` = ``config.vocab``, ``S`` = ``config.seq_len``, ``E`` =
``config.embed_dim`` (also the attention's projection width ``P``), ``F`` = ``config.ffn_dim``, ``B`` =
``config.num_blocks``. Integer scalars take any integer dtype (written as int32), ``block{b}.scale.score`` any float
dtype (written as float32).

| key | dtype, shape |
| --- | --- |
| `config.vocab`, `config.seq_len`, `config.embed_dim`, `config.ffn_dim`, `config.num_blocks` | int |
| `emb.table`; `pos.table` | int8 `(V, E)`; int8 `(S, E)` |
| `pos.add.*`, `block{b}.add1.*`, `block{b}.add2.*` | ints: `TinyMindAdd` keys |
| `block{b}.ln1.*`, `block{b}.ln2.*` | `gamma` int16 `(E,)`, `beta` int32 `(E,)`, ints: `TinyMindLayerNorm` keys |
| `block{b}.attn.weights`, `.biases` | int8 `(3, E, E)`, int32 `(3, E)` |
| `block{b}.attn.{input,q,k,v,attn}_zero_point`, `attn_qmin`, `attn_qmax` | int; the softmax output is −128, −128, 127 |
| `block{b}.attn.{q,k,v,score,output}_requantizer.{multiplier,shift,zero_point,qmin,qmax}` | int |
| `block{b}.attn.softmax_exp_lut`; `block{b}.scale.score` | int32 `(256,)`, the exp LUT of the score scale; float |
| `block{b}.ff1.weights`, `.biases` | int8 `(F, E)`, int32 `(F,)` |
| `block{b}.ff2.weights`, `.biases` | int8 `(E, F)`, int32 `(E,)` |
| `block{b}.ff{1,2}.input_zero_point`, `.requantizer.*`; `block{b}.ff1.relu_zero_point` | int |

Keys the forward pass does not read are ignored: ``tokens``, ``output``, ``meta``, ``t.*``, ``float.*``, ``error.*``,
``scale.*``, ``block{b}.float.*``, ``block{b}.scale.*`` but ``score``, ``config.ln_eps`` and
``config.num_calibration_sequences``. Any other key, a missing key, a wrong dtype or shape, or a value out of its
range raises :class:`~int8attn.golden.params.ConfigError`, one line naming the source and the key.
"""

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from int8attn.golden.add import TinyMindAdd
from int8attn.golden.attention import (
    INT8_MAX,
    INT8_MIN,
    PROBABILITY_ZERO_POINT,
    PROJECTIONS,
    REQUANTIZER_FIELDS,
    REQUANTIZER_KEYS,
    ParamReader,
    TinyMindAttentionParams,
    TinyMindDense,
    TinyMindMultiHeadParams,
    attention,
    load_arrays,
    read_requantizer,
    tinymind_attention,
)
from int8attn.golden.config import DIFF_RANGE, MODE_KNOBS, SoftmaxConfig
from int8attn.golden.embedding import TinyMindEmbedding, TinyMindPositionalEncoding, check_tokens
from int8attn.golden.fixedpoint import INT32_MAX
from int8attn.golden.layernorm import TinyMindLayerNorm
from int8attn.golden.matmul import MAX_DIM
from int8attn.golden.params import ConfigError

CONFIG_KEYS = ("config.vocab", "config.seq_len", "config.embed_dim", "config.ffn_dim", "config.num_blocks")
MAX_BLOCKS = 1024
IGNORED_KEY = re.compile(r"(tokens|output|meta|config\.ln_eps|config\.num_calibration_sequences)"
                         r"|(t|float|error|scale)\..*|block\d+\.(float\..*|scale\.(?!score$).*)")
"""Keys of the shared npz that the integer forward pass does not read."""
ATTENTION_INT8_KEYS = (*(f"{name}_zero_point" for name in ("input", *PROJECTIONS, "attn")), "attn_qmin", "attn_qmax")
DENSE_KEYS = ("weights", "biases", "input_zero_point", *(f"requantizer.{item}" for item in REQUANTIZER_FIELDS))
RELU_ZERO_POINT = "relu_zero_point"
BLOCK_TENSORS = ("ln1", "q", "k", "v", "scores", "probs", "attn", "skip1", "ln2", "ff1_pre_relu", "ff1", "ff2",
                 "block_out")
KEYS_TEXT = ("config.{vocab,seq_len,embed_dim,ffn_dim,num_blocks}, emb.table, pos.table, pos.add.*, and per block "
             "block{b}.{ln1,ln2}.*, block{b}.attn.*, block{b}.scale.score, block{b}.{add1,add2}.*, "
             "block{b}.{ff1,ff2}.*, block{b}.ff1.relu_zero_point (int8attn.golden.stack)")


def is_ignored(key: str) -> bool:
    """``key`` is one of the shared npz's keys that the forward pass does not read (module docstring)."""
    return IGNORED_KEY.fullmatch(key) is not None


def _layer_error(name: str, value: object, allowed: str) -> ConfigError:
    return ConfigError(f"{name}={value!r} is out of range; allowed: {allowed}")


@dataclass(frozen=True, eq=False)
class TinyMindEncoderBlock:
    """One encoder block of the example (``runBlockQ``), ``E`` features and an ``F``-wide feed-forward layer.

    Parameters
    ----------
    ln1, ln2 : TinyMindLayerNorm
        ``E`` features each.
    attention : TinyMindAttentionParams
        ``QAttentionSoftmax1D`` with ``P = E``.
    add1 : TinyMindAdd
        ``QAdd(attn, x)``.
    ff1 : TinyMindDense
        ``[F, E]``.
    ff1_relu_zero_point : int
        Zero point of the ReLU after ``ff1``, an int8 value.
    ff2 : TinyMindDense
        ``[E, F]``.
    add2 : TinyMindAdd
        ``QAdd(skip1, ff2)``.

    Members
    -------
    embed_dim, ffn_dim : int
        ``E`` and ``F``.
    """

    ln1: TinyMindLayerNorm
    attention: TinyMindAttentionParams
    add1: TinyMindAdd
    ln2: TinyMindLayerNorm
    ff1: TinyMindDense
    ff1_relu_zero_point: int
    ff2: TinyMindDense
    add2: TinyMindAdd

    def __post_init__(self):
        embed = self.ln1.features
        if self.ln2.features != embed:
            raise _layer_error("ln2", f"{self.ln2.features} features", f"{embed}, ln1's")
        if (self.attention.embed_dim, self.attention.projection_dim) != (embed, embed):
            raise _layer_error("attn.weights", self.attention.weights.shape, f"(3, {embed}, {embed})")
        if self.ff1.in_features != embed:
            raise _layer_error("ff1.weights", self.ff1.weights.shape, f"(F, {embed})")
        if self.ff2.weights.shape != (embed, self.ff1.out_features):
            raise _layer_error("ff2.weights", self.ff2.weights.shape, f"({embed}, {self.ff1.out_features})")
        if not INT8_MIN <= self.ff1_relu_zero_point <= INT8_MAX:
            raise _layer_error("ff1.relu_zero_point", self.ff1_relu_zero_point, f"integers {INT8_MIN}..{INT8_MAX}")

    @property
    def embed_dim(self) -> int:
        return self.ln1.features

    @property
    def ffn_dim(self) -> int:
        return self.ff1.out_features

    def arrays(self, block: int) -> dict[str, np.ndarray]:
        """The block under the shared file's names ``block{block}.*`` (module docstring)."""
        prefix = f"block{block}"
        attention = self.attention.arrays(f"{prefix}.attn.")
        score_scale = attention.pop(f"{prefix}.attn.score_scale")
        attention |= {f"{prefix}.attn.attn_zero_point": np.int32(PROBABILITY_ZERO_POINT),
                      f"{prefix}.attn.attn_qmin": np.int32(INT8_MIN), f"{prefix}.attn.attn_qmax": np.int32(INT8_MAX),
                      f"{prefix}.attn.softmax_exp_lut": self.attention.softmax_exp_lut.astype(np.int32),
                      f"{prefix}.scale.score": score_scale}
        return (self.ln1.arrays(f"{prefix}.ln1") | attention | self.add1.arrays(f"{prefix}.add1")
                | self.ln2.arrays(f"{prefix}.ln2") | self.ff1.arrays(f"{prefix}.ff1.")
                | {f"{prefix}.ff1.{RELU_ZERO_POINT}": np.int32(self.ff1_relu_zero_point)}
                | self.ff2.arrays(f"{prefix}.ff2.") | self.add2.arrays(f"{prefix}.add2"))

    def forward(self, x: np.ndarray, softmax: SoftmaxConfig | None = None) -> dict[str, np.ndarray]:
        """The block on int8 ``x`` ``(..., S, E)``: every intermediate of :data:`BLOCK_TENSORS` (without ``t.``).

        ``softmax`` replaces TinyMind's softmax by the mode and knobs of a
        :class:`~int8attn.golden.config.SoftmaxConfig` (its row length and input grid are the layer's): the
        attention of :func:`~int8attn.golden.attention.attention`, whose P·V requantizer is rescaled onto the mode's
        probability grid; ``probs`` are then that mode's codes.
        """
        result = {"ln1": self.ln1(x)}
        if softmax is None:
            result |= tinymind_attention(self.attention, result["ln1"])
        else:
            knobs = {name: getattr(softmax, name) for name in MODE_KNOBS.get(softmax.mode, ())}
            heads = attention(TinyMindMultiHeadParams((self.attention,)), result["ln1"], softmax_mode=softmax.mode,
                              **knobs)
            result |= {name: heads[name] for name in (*PROJECTIONS, "attn")}
            result |= {name: heads[name][..., 0, :, :] for name in ("scores", "probs")}
        result["skip1"] = self.add1(result["attn"], x)
        result["ln2"] = self.ln2(result["skip1"])
        result["ff1_pre_relu"] = self.ff1(result["ln2"])
        result["ff1"] = np.maximum(result["ff1_pre_relu"], self.ff1_relu_zero_point).astype(np.int8)
        result["ff2"] = self.ff2(result["ff1"])
        result["block_out"] = self.add2(result["skip1"], result["ff2"])
        return result


@dataclass(frozen=True, eq=False)
class StackParams:
    """Every integer parameter of the encoder stack (module docstring).

    Parameters
    ----------
    embedding : TinyMindEmbedding
        ``(V, E)``.
    positional : TinyMindPositionalEncoding
        ``(S, E)`` table and its QAdd.
    blocks : tuple of TinyMindEncoderBlock
        ``B ≥ 1`` blocks of ``E`` features and ``F`` hidden ones, in order.

    Members
    -------
    vocab, seq_len, embed_dim, ffn_dim, num_blocks : int
        ``V``, ``S``, ``E``, ``F`` and ``B``.
    """

    embedding: TinyMindEmbedding
    positional: TinyMindPositionalEncoding
    blocks: tuple[TinyMindEncoderBlock, ...]

    def __post_init__(self):
        object.__setattr__(self, "blocks", tuple(self.blocks))
        if not self.blocks:
            raise _layer_error("blocks", self.blocks, "at least one TinyMindEncoderBlock")
        embed = self.embedding.embed_dim
        if self.positional.embed_dim != embed:
            raise _layer_error("pos.table", self.positional.table.shape, f"(S, {embed}), E of emb.table")
        for index, block in enumerate(self.blocks):
            if (block.embed_dim, block.ffn_dim) != (embed, self.ffn_dim):
                raise _layer_error(f"block{index}", f"E={block.embed_dim}, F={block.ffn_dim}",
                                   f"E={embed} of emb.table, F={self.ffn_dim} of block0")

    @property
    def vocab(self) -> int:
        return self.embedding.vocab

    @property
    def seq_len(self) -> int:
        return self.positional.seq_len

    @property
    def embed_dim(self) -> int:
        return self.embedding.embed_dim

    @property
    def ffn_dim(self) -> int:
        return self.blocks[0].ffn_dim

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    @classmethod
    def from_arrays(cls, mapping: Mapping[str, np.ndarray], source: str = "encoder-stack parameters"
                    ) -> "StackParams":
        """The parameters held by ``mapping`` (the shared npz's layout, module docstring); :class:`ConfigError`
        naming ``source`` and the first key at fault."""
        reader = ParamReader({key: value for key, value in mapping.items() if not is_ignored(key)}, source)
        for key in CONFIG_KEYS:
            if key not in reader.arrays:
                raise reader.error(key, "is missing", KEYS_TEXT)
        vocab = reader.integer("config.vocab", 1, INT32_MAX)
        seq_len, embed, ffn = (reader.integer(key, 1, MAX_DIM) for key in CONFIG_KEYS[1:4])
        num_blocks = reader.integer("config.num_blocks", 1, MAX_BLOCKS)
        reader.check_keys(stack_keys(num_blocks), (), KEYS_TEXT)
        embedding = TinyMindEmbedding(reader.array("emb.table", np.int8, (vocab, embed),
                                                   f"(vocab, embed_dim) = ({vocab}, {embed})"))
        table = reader.array("pos.table", np.int8, (seq_len, embed), f"(seq_len, embed_dim) = ({seq_len}, {embed})")
        positional = TinyMindPositionalEncoding(table, read_add(reader, "pos.add"))
        blocks = tuple(_read_block(reader, block, embed, ffn) for block in range(num_blocks))
        return reader.build("", cls, embedding, positional, blocks)

    def arrays(self) -> dict[str, np.ndarray]:
        """The parameter file's content: exactly the keys :meth:`from_arrays` reads, in the shared npz's layout."""
        sizes = (self.vocab, self.seq_len, self.embed_dim, self.ffn_dim, self.num_blocks)
        content = {key: np.int32(size) for key, size in zip(CONFIG_KEYS, sizes, strict=True)}
        content |= self.embedding.arrays("emb") | self.positional.arrays("pos")
        for index, block in enumerate(self.blocks):
            content |= block.arrays(index)
        return content


def stack_keys(num_blocks: int) -> tuple[str, ...]:
    """Every key :meth:`StackParams.from_arrays` reads for ``num_blocks`` blocks."""
    keys = [*CONFIG_KEYS, "emb.table", "pos.table", *TinyMindAdd.keys("pos.add")]
    for block in range(num_blocks):
        prefix = f"block{block}"
        for name in ("ln1", "ln2"):
            keys += [f"{prefix}.{name}.gamma", f"{prefix}.{name}.beta", *TinyMindLayerNorm.keys(f"{prefix}.{name}")]
        keys += [f"{prefix}.attn.{key}" for key in ("weights", "biases", *ATTENTION_INT8_KEYS,
                                                                  *REQUANTIZER_KEYS, "softmax_exp_lut")]
        keys += [f"{prefix}.scale.score", f"{prefix}.ff1.{RELU_ZERO_POINT}"]
        keys += [f"{prefix}.{name}.{key}" for name in ("ff1", "ff2") for key in DENSE_KEYS]
        keys += [key for name in ("add1", "add2") for key in TinyMindAdd.keys(f"{prefix}.{name}")]
    return tuple(keys)


def read_add(reader: ParamReader, prefix: str) -> TinyMindAdd:
    for key in TinyMindAdd.keys(prefix):
        reader.integer(key)
    return reader.build(f"{prefix}.", TinyMindAdd.from_mapping, reader.arrays, prefix)


def _read_layernorm(reader: ParamReader, prefix: str, embed: int) -> TinyMindLayerNorm:
    reader.array(f"{prefix}.gamma", np.int16, (embed,), f"(embed_dim,) = ({embed},)")
    reader.array(f"{prefix}.beta", np.int32, (embed,), f"(embed_dim,) = ({embed},)")
    for key in TinyMindLayerNorm.keys(prefix):
        reader.integer(key)
    return reader.build(f"{prefix}.", TinyMindLayerNorm.from_mapping, reader.arrays, prefix)


def _read_attention(reader: ParamReader, block: int, embed: int) -> TinyMindAttentionParams:
    prefix = f"block{block}.attn."
    reader.array(prefix + "weights", np.int8, (len(PROJECTIONS), embed, embed), f"(3, E, E) = (3, {embed}, {embed})")
    reader.array(prefix + "biases", np.int32, (len(PROJECTIONS), embed), f"(3, E) = (3, {embed})")
    for key in ATTENTION_INT8_KEYS:
        reader.zero_point(prefix + key)
    for name in TinyMindAttentionParams.requantizer_names():
        read_requantizer(reader, prefix + name)
    reader.array(prefix + "softmax_exp_lut", np.int32, (DIFF_RANGE,), f"({DIFF_RANGE},)")
    reader.scale(f"block{block}.scale.score")
    return reader.build("", TinyMindAttentionParams.from_encoder_stack, reader.arrays, block)


def _read_dense(reader: ParamReader, prefix: str, out_features: int, in_features: int) -> TinyMindDense:
    shape = f"({out_features}, {in_features})"
    weights = reader.array(prefix + "weights", np.int8, (out_features, in_features), shape)
    biases = reader.array(prefix + "biases", np.int32, (out_features,), f"({out_features},)")
    return reader.build(prefix, TinyMindDense, weights, biases, reader.zero_point(prefix + "input_zero_point"),
                        read_requantizer(reader, prefix + "requantizer"))


def _read_block(reader: ParamReader, block: int, embed: int, ffn: int) -> TinyMindEncoderBlock:
    prefix = f"block{block}"
    return reader.build(
        f"{prefix}.", TinyMindEncoderBlock, ln1=_read_layernorm(reader, f"{prefix}.ln1", embed),
        attention=_read_attention(reader, block, embed), add1=read_add(reader, f"{prefix}.add1"),
        ln2=_read_layernorm(reader, f"{prefix}.ln2", embed), ff1=_read_dense(reader, f"{prefix}.ff1.", ffn, embed),
        ff1_relu_zero_point=reader.zero_point(f"{prefix}.ff1.{RELU_ZERO_POINT}"),
        ff2=_read_dense(reader, f"{prefix}.ff2.", embed, ffn), add2=read_add(reader, f"{prefix}.add2"))


def load_stack_params(path: str | os.PathLike) -> StackParams:
    """The encoder-stack parameters of the ``.npz`` file ``path`` (module docstring; the shared
    ``tinymind_encoder_stack.npz`` is one); :class:`ConfigError`, one line naming the file and the key, on anything
    it does not allow."""
    allowed = "an encoder-stack .npz (int8attn.golden.stack)"
    arrays = load_arrays(path, allowed)
    if not isinstance(arrays, dict):
        raise ConfigError(f"{path}: is not an .npz archive; allowed: {allowed}")
    return StackParams.from_arrays(arrays, source=str(path))


def stack_forward(params: StackParams, tokens: np.ndarray,
                  softmaxes: Sequence[SoftmaxConfig | None] | None = None) -> dict[str, np.ndarray]:
    """The encoder stack on token ids ``(..., S)`` (any integer dtype, ids ``0..V − 1``; :class:`ConfigError` naming
    ``tokens`` otherwise): every intermediate under the shared file's ``t.*`` names, the block axis before the last
    two (``(..., B, S, E)``), and ``output`` (module docstring). ``softmaxes``, one per block, replace TinyMind's
    softmax as in :meth:`TinyMindEncoderBlock.forward`."""
    tokens = check_tokens(tokens, params.vocab, params.seq_len)
    result = {"t.emb": params.embedding(tokens)}
    result["t.x0"] = x = params.positional(result["t.emb"])
    if softmaxes is None:
        softmaxes = (None,) * params.num_blocks
    if len(softmaxes) != params.num_blocks:
        raise ValueError(f"softmaxes has {len(softmaxes)} entries; allowed: one per block ({params.num_blocks})")
    steps = []
    for block, softmax in zip(params.blocks, softmaxes, strict=True):
        steps.append(block.forward(x, softmax))
        x = steps[-1]["block_out"]
    for name in BLOCK_TENSORS:
        result[f"t.{name}"] = np.stack([step[name] for step in steps], axis=-3)
    result["output"] = x
    return result
