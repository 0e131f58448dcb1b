"""Float reference of TinyMind's encoder stack (``examples/transformer_encoder_stack_softmax_int8/``): the model the
example calibrates and measures its int8 stack against, computed in float32 operation for operation as the example's
``floatBlock`` computes it (:func:`float_stack_forward`), or in float64 with the same operations.

Forward pass on token ids ``(..., S)``, per sequence (``E`` features, ``F`` hidden ones, ``B`` blocks):

* ``t.emb = emb_table[tokens]``; ``t.x0 = t.emb + pos_table``;
* per block on its input ``x``: ``ln1 = LN(x; γ1, β1)``; ``q, k, v = ln1 · W_j + b_j`` (``W_j[e, p]``, summed over
  ``e`` in order from the bias); ``scores = (Σ_p q[t, p] · k[u, p]) · (1 / √E)``; ``probs = softmax(scores)`` per row
  (``exp(s − row max)``, the sum in order, then a division); ``attn[t] = Σ_u probs[t, u] · v[u]`` (in order from 0);
  ``skip1 = attn + x``; ``ln2 = LN(skip1; γ2, β2)``; ``ff1_pre_relu = W1 · ln2 + b1`` (``[F, E]``, from the bias,
  in order); ``ff1 = ReLU(ff1_pre_relu)``; ``ff2 = W2 · ff1 + b2`` (``[E, F]``); ``block_out = skip1 + ff2``;
* ``output`` is the last block's ``block_out``.

``LN(x; γ, β)`` is the example's ``floatLayerNorm``: ``m = (Σ x) / E``, ``v = (Σ (x − m)²) / E`` (sums in order from
0), ``inv = 1 / √(v + ε)``, ``γ · (x − m) · inv + β`` evaluated left to right. In float32 every operation rounds to
float32 as the C++ does (no fused multiply-add), and ``exp`` is glibc's ``expf`` (:func:`glibc_expf`), which is not
always the float32 rounding of the exact exponential: the float64 exponential rounded to float32 differs from it on
about 0.06 % of arguments and changes 33 elements of the shared vectors' ``float.output`` by one ulp, while
:func:`glibc_expf` reproduces all of it bit for bit. With ``dtype=numpy.float64`` the same operations run in float64
(numpy's ``exp``): a reference free of float32 rounding.

:func:`float_stack_forward` returns the intermediates under the names of :func:`~int8attn.golden.stack.stack_forward`
(``t.emb``, ``t.x0`` ``(..., S, E)``; ``t.ln1``, ``t.q``, ``t.k``, ``t.v``, ``t.attn``, ``t.skip1``, ``t.ln2``,
``t.ff2``, ``t.block_out`` ``(..., B, S, E)``; ``t.scores``, ``t.probs`` ``(..., B, S, S)``; ``t.ff1_pre_relu``,
``t.ff1`` ``(..., B, S, F)``; ``output`` ``(..., S, E)``), as floats.

Float-weights file (:meth:`FloatStackWeights.from_arrays`, :meth:`FloatStackWeights.arrays`): one ``.npz`` whose
keys are the shared ``tinymind_encoder_stack.npz``'s float keys, so that file is itself a weights file. Arrays take
any float dtype (read as float32) and must be finite; ``V`` vocabulary, ``S`` sequence length, ``E`` embedding width
(also the attention's projection width), ``F`` hidden width, ``B ≥ 1`` blocks numbered ``0..B − 1``.

| key | shape | |
| --- | --- | --- |
| `float.emb_table` | `(V, E)` | token embeddings |
| `float.pos_table` | `(S, E)` | optional: TinyMind's ``sinusoidalPositionalTable(S, E)`` when absent |
| `block{b}.float.w_attn` | `(3, E, E)` | ``W_q``, ``W_k``, ``W_v``; ``[j, e, p]`` takes input feature ``e`` to ``p`` |
| `block{b}.float.b_attn` | `(3, E)` | optional (zeros): ``b_q``, ``b_k``, ``b_v`` |
| `block{b}.float.gamma1`, `beta1`, `gamma2`, `beta2` | `(E,)` | LN1 and LN2 |
| `block{b}.float.w_ff1`, `b_ff1` | `(F, E)`, `(F,)` | FFN layer 1 ``[out, in]``; the bias is optional (zeros) |
| `block{b}.float.w_ff2`, `b_ff2` | `(E, F)`, `(E,)` | FFN layer 2 ``[out, in]``; the bias is optional (zeros) |
| `config.seq_len` | int scalar | ``S``; required when `float.pos_table` is absent, else it must agree |
| `config.ln_eps` | float scalar | LayerNorm ε > 0 (default 10⁻³, the example's ``LN_EPS``) |
| `config.vocab`, `config.embed_dim`, `config.ffn_dim`, `config.num_blocks` | int scalars | optional; must agree |

The names are the shared file's (``block{b}.float.w_attn``, ``w_ff1``, ``w_ff2``, ``gamma1`` ...); the biases, which
that file leaves out (the example's are 0), take the names of the example's ``BlockWeights`` fields (``b_attn``,
``b_ff1``, ``b_ff2``). Any other key under ``float.`` (but ``float.output``, the shared file's reference output) or
``block{b}.float.`` is an error (a misspelt weight); every other key is ignored (the shared file's integer parameters
and tensors, for instance). A missing key, a wrong dtype or shape, a NaN or an infinity raises
:class:`~int8attn.golden.params.ConfigError`, one line naming the source and the key.
"""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext

import numpy as np

from int8attn.golden.attention import load_arrays
from int8attn.golden.embedding import check_tokens, sinusoidal_table
from int8attn.golden.matmul import MAX_DIM
from int8attn.golden.params import ConfigError

DEFAULT_LN_EPS = 1e-3
"""The example's ``LN_EPS``."""
MAX_BLOCKS = 1024
PROJECTION_COUNT = 3
BLOCK_KEY = re.compile(r"block(\d+)\.float\.(.+)")
BLOCK_FIELDS = ("w_attn", "b_attn", "gamma1", "beta1", "gamma2", "beta2", "w_ff1", "b_ff1", "w_ff2", "b_ff2")
OPTIONAL_BLOCK_FIELDS = ("b_attn", "b_ff1", "b_ff2")
TABLE_FIELDS = ("emb_table", "pos_table")
IGNORED_FLOAT_KEYS = ("float.output",)
"""A reference output the shared file stores beside the weights; not read."""
CONFIG_SIZES = {"config.vocab": "vocab", "config.seq_len": "seq_len", "config.embed_dim": "embed_dim",
                "config.ffn_dim": "ffn_dim", "config.num_blocks": "num_blocks"}
KEYS_TEXT = ("float.emb_table (V, E), optional float.pos_table (S, E) or config.seq_len, per block "
             "block{b}.float.{w_attn (3, E, E), b_attn (3, E), gamma1, beta1, gamma2, beta2 (E,), w_ff1 (F, E), "
             "b_ff1 (F,), w_ff2 (E, F), b_ff2 (E,)}, optional config.ln_eps (int8attn.golden.float_stack)")
BLOCK_TENSORS = ("ln1", "q", "k", "v", "scores", "probs", "attn", "skip1", "ln2", "ff1_pre_relu", "ff1", "ff2",
                 "block_out")


@dataclass(frozen=True, eq=False)
class FloatBlock:
    """One encoder block's float weights (module docstring), float32 arrays.

    Parameters
    ----------
    w_attn, b_attn : numpy.ndarray
        ``(3, E, E)`` and ``(3, E)``.
    gamma1, beta1, gamma2, beta2 : numpy.ndarray
        ``(E,)`` each.
    w_ff1, b_ff1 : numpy.ndarray
        ``(F, E)`` and ``(F,)``.
    w_ff2, b_ff2 : numpy.ndarray
        ``(E, F)`` and ``(E,)``.
    """

    w_attn: np.ndarray
    b_attn: np.ndarray
    gamma1: np.ndarray
    beta1: np.ndarray
    gamma2: np.ndarray
    beta2: np.ndarray
    w_ff1: np.ndarray
    b_ff1: np.ndarray
    w_ff2: np.ndarray
    b_ff2: np.ndarray

    @property
    def embed_dim(self) -> int:
        return self.w_attn.shape[1]

    @property
    def ffn_dim(self) -> int:
        return self.w_ff1.shape[0]

    def arrays(self, block: int) -> dict[str, np.ndarray]:
        """The block under the weights file's keys ``block{block}.float.*``."""
        return {f"block{block}.float.{name}": getattr(self, name) for name in BLOCK_FIELDS}


@dataclass(frozen=True, eq=False)
class FloatStackWeights:
    """The float model's weights (module docstring); build it with :meth:`from_arrays`, which checks them.

    Parameters
    ----------
    emb_table : numpy.ndarray
        float32 ``(V, E)``.
    pos_table : numpy.ndarray
        float32 ``(S, E)``.
    blocks : tuple of FloatBlock
        ``B ≥ 1`` blocks.
    ln_eps : float
        LayerNorm ε, a float32 value > 0.

    Members
    -------
    vocab, seq_len, embed_dim, ffn_dim, num_blocks : int
        ``V``, ``S``, ``E``, ``F`` and ``B``.
    """

    emb_table: np.ndarray
    pos_table: np.ndarray
    blocks: tuple[FloatBlock, ...]
    ln_eps: float = DEFAULT_LN_EPS

    @property
    def vocab(self) -> int:
        return self.emb_table.shape[0]

    @property
    def seq_len(self) -> int:
        return self.pos_table.shape[0]

    @property
    def embed_dim(self) -> int:
        return self.emb_table.shape[1]

    @property
    def ffn_dim(self) -> int:
        return self.blocks[0].ffn_dim

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    @classmethod
    def from_arrays(cls, mapping: Mapping[str, np.ndarray], source: str = "float weights") -> "FloatStackWeights":
        """The weights held by ``mapping`` (module docstring's keys); :class:`ConfigError` naming ``source`` and the
        first key at fault."""
        reader = _FloatReader(mapping, source)
        blocks = reader.block_count()
        emb_table = reader.matrix("float.emb_table", (None, None), "(V, E)")
        vocab, embed = emb_table.shape
        if "float.pos_table" in reader.arrays:
            pos_table = reader.matrix("float.pos_table", (None, embed), f"(S, E) = (S, {embed})")
        else:
            if "config.seq_len" not in reader.arrays:
                raise reader.error("float.pos_table", "is missing and so is config.seq_len",
                                   "float.pos_table (S, E), or config.seq_len for TinyMind's sinusoidal table")
            pos_table = sinusoidal_table(reader.integer("config.seq_len", 1, MAX_DIM), embed)
        ffn = reader.matrix("block0.float.w_ff1", (None, embed), f"(F, E) = (F, {embed})").shape[0]
        block_weights = tuple(reader.block(block, embed, ffn) for block in range(blocks))
        sizes = {"vocab": vocab, "seq_len": pos_table.shape[0], "embed_dim": embed, "ffn_dim": ffn,
                 "num_blocks": blocks}
        for key, name in CONFIG_SIZES.items():
            if key in reader.arrays and reader.integer(key, 1, MAX_DIM if name != "num_blocks" else MAX_BLOCKS) != (
                    sizes[name]):
                raise reader.error(key, f"= {int(reader.arrays[key])} disagrees with the weights",
                                   f"{sizes[name]}, the weights' {name}")
        ln_eps = reader.positive_float("config.ln_eps") if "config.ln_eps" in reader.arrays else DEFAULT_LN_EPS
        return cls(emb_table=emb_table, pos_table=pos_table, blocks=block_weights, ln_eps=ln_eps)

    def arrays(self) -> dict[str, np.ndarray]:
        """The weights file's content: every key of the module docstring, biases and the positional table
        included."""
        content = {"float.emb_table": self.emb_table, "float.pos_table": self.pos_table,
                   "config.seq_len": np.int32(self.seq_len), "config.ln_eps": np.float32(self.ln_eps)}
        for index, block in enumerate(self.blocks):
            content |= block.arrays(index)
        return content


class _FloatReader:
    """Checked access to a float-weights mapping; every error is one line naming ``source`` and the key."""

    def __init__(self, mapping: Mapping[str, np.ndarray], source: str):
        self.arrays = {key: np.asarray(value) for key, value in mapping.items()}
        self.source = source

    def error(self, key: str, problem: str, allowed: str) -> ConfigError:
        return ConfigError(f"{self.source}: {key} {problem}; allowed: {allowed}")

    def block_count(self) -> int:
        """``B``: the blocks ``0..B − 1`` that the keys name, after checking every ``float.*`` key's name."""
        numbers = set()
        for key in sorted(self.arrays):
            match = BLOCK_KEY.fullmatch(key)
            if match is not None:
                if match.group(2) not in BLOCK_FIELDS or int(match.group(1)) >= MAX_BLOCKS:
                    raise self.error(key, "is an unknown key", KEYS_TEXT)
                numbers.add(int(match.group(1)))
            elif (key.startswith("float.") and key.removeprefix("float.") not in TABLE_FIELDS
                  and key not in IGNORED_FLOAT_KEYS):
                raise self.error(key, "is an unknown key", KEYS_TEXT)
        if "float.emb_table" not in self.arrays:
            raise self.error("float.emb_table", "is missing", KEYS_TEXT)
        if not numbers:
            raise self.error("block0.float.w_attn", "is missing", KEYS_TEXT)
        for number in range(max(numbers) + 1):
            for name in BLOCK_FIELDS:
                key = f"block{number}.float.{name}"
                if name not in OPTIONAL_BLOCK_FIELDS and key not in self.arrays:
                    raise self.error(key, "is missing", KEYS_TEXT)
        return max(numbers) + 1

    def matrix(self, key: str, shape: tuple[int | None, ...], text: str) -> np.ndarray:
        """The finite float array ``key`` of ``shape`` (``None``: any size ≥ 1) as float32."""
        value = self.arrays[key]
        if value.dtype.kind != "f" or value.ndim != len(shape) or any(
                size == 0 or wanted not in (None, size) for size, wanted in zip(value.shape, shape, strict=True)):
            raise self.error(key, f"is {value.dtype}{value.shape}", f"finite floats {text}")
        if not np.isfinite(value).all():
            raise self.error(key, "holds NaN or infinity", f"finite floats {text}")
        return value.astype(np.float32)

    def optional(self, key: str, shape: tuple[int, ...], text: str) -> np.ndarray:
        if key not in self.arrays:
            return np.zeros(shape, dtype=np.float32)
        return self.matrix(key, shape, text)

    def integer(self, key: str, low: int, high: int) -> int:
        value = self.arrays[key]
        allowed = f"an integer scalar in {low}..{high}"
        if value.shape != () or value.dtype.kind not in "iu":
            raise self.error(key, f"is {value.dtype}{value.shape}", allowed)
        if not low <= int(value) <= high:
            raise self.error(key, f"= {int(value)} is out of range", allowed)
        return int(value)

    def positive_float(self, key: str) -> float:
        value = self.arrays[key]
        allowed = "a finite float scalar > 0"
        if value.shape != () or value.dtype.kind != "f":
            raise self.error(key, f"is {value.dtype}{value.shape}", allowed)
        if not (np.isfinite(value) and np.float32(value) > 0):
            raise self.error(key, f"= {value.tolist()!r} is out of range", allowed)
        return float(np.float32(value))

    def block(self, block: int, embed: int, ffn: int) -> FloatBlock:
        prefix = f"block{block}.float."
        vector = (embed,), f"(E,) = ({embed},)"
        return FloatBlock(
            w_attn=self.matrix(prefix + "w_attn", (PROJECTION_COUNT, embed, embed), f"(3, E, E) = (3, {embed}, "
                                                                                     f"{embed})"),
            b_attn=self.optional(prefix + "b_attn", (PROJECTION_COUNT, embed), f"(3, E) = (3, {embed})"),
            **{name: self.matrix(prefix + name, *vector) for name in ("gamma1", "beta1", "gamma2", "beta2")},
            w_ff1=self.matrix(prefix + "w_ff1", (ffn, embed), f"(F, E) = ({ffn}, {embed}), F of block0"),
            b_ff1=self.optional(prefix + "b_ff1", (ffn,), f"(F,) = ({ffn},)"),
            w_ff2=self.matrix(prefix + "w_ff2", (embed, ffn), f"(E, F) = ({embed}, {ffn})"),
            b_ff2=self.optional(prefix + "b_ff2", *vector))


def load_float_weights(path: str | os.PathLike) -> FloatStackWeights:
    """The float weights of the ``.npz`` file ``path`` (module docstring; the shared ``tinymind_encoder_stack.npz``
    is one); :class:`ConfigError`, one line naming the file and the key, on anything it does not allow."""
    allowed = "a float-weights .npz (int8attn.golden.float_stack)"
    arrays = load_arrays(path, allowed)
    if not isinstance(arrays, dict):
        raise ConfigError(f"{path}: is not an .npz archive; allowed: {allowed}")
    return FloatStackWeights.from_arrays(arrays, source=str(path))


# The forward pass. Every sum runs over its index in order, as the C++ loops accumulate.

EXPF_TABLE_SIZE = 32
EXPF_EXPONENT_SHIFT = 52 - 5
EXPF_INV_LN2_N = float.fromhex("0x1.71547652b82fep+0") * EXPF_TABLE_SIZE
EXPF_ROUNDING_SHIFT = float.fromhex("0x1.8p+52")
EXPF_POLY = (float.fromhex("0x1.c6af84b912394p-5") / EXPF_TABLE_SIZE ** 3,
             float.fromhex("0x1.ebfce50fac4f3p-3") / EXPF_TABLE_SIZE ** 2,
             float.fromhex("0x1.62e42ff0c52d6p-1") / EXPF_TABLE_SIZE)
EXPF_UNDERFLOW = float.fromhex("-0x1.9fe368p6")
EXPF_OVERFLOW = float.fromhex("0x1.62e42ep6")


def _exp2_table() -> np.ndarray:
    """``expf``'s table: the bits of ``2^(i/32)`` rounded to double, less ``i · 2^47`` (the exponent it will add)."""
    with localcontext() as context:
        context.prec = 60
        powers = [float(Decimal(2) ** (Decimal(index) / EXPF_TABLE_SIZE)) for index in range(EXPF_TABLE_SIZE)]
    return np.array(powers, dtype=np.float64).view(np.uint64) - (
        np.arange(EXPF_TABLE_SIZE, dtype=np.uint64) << np.uint64(EXPF_EXPONENT_SHIFT))


EXPF_TABLE = _exp2_table()


def glibc_expf(values: np.ndarray) -> np.ndarray:
    """``expf`` of float32 values as glibc (≥ 2.27, the ARM optimized-routines algorithm) computes it, which is not
    always the float32 rounding of ``exp``: in double, ``z = x · 32/ln 2``, ``k = round(z)`` (by adding and
    subtracting ``1.5 · 2^52``), ``r = z − k``; ``2^(k/32)`` from the table entry ``k mod 32`` with ``k >> 5`` added
    to its exponent; ``(c0·r + c1)·r² + (c2·r + 1)`` times it, rounded to float32. Below −103.97 the result is 0,
    above 88.72 infinity."""
    x = np.asarray(values, dtype=np.float32).astype(np.float64)
    z = EXPF_INV_LN2_N * x
    shifted = z + EXPF_ROUNDING_SHIFT
    k = shifted.view(np.uint64)
    r = z - (shifted - EXPF_ROUNDING_SHIFT)
    scale = (EXPF_TABLE[k % np.uint64(EXPF_TABLE_SIZE)] + (k << np.uint64(EXPF_EXPONENT_SHIFT))).view(np.float64)
    y = ((EXPF_POLY[0] * r + EXPF_POLY[1]) * (r * r) + (EXPF_POLY[2] * r + 1.0)) * scale
    y = np.where(x < EXPF_UNDERFLOW, 0.0, np.where(x > EXPF_OVERFLOW, np.inf, y))
    return np.where(np.isnan(x), x, y).astype(np.float32)


def _exp(values: np.ndarray) -> np.ndarray:
    """``std::exp`` in the dtype of ``values``: :func:`glibc_expf` for float32, numpy's for float64."""
    return glibc_expf(values) if values.dtype == np.float32 else np.exp(values)


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    """``floatLayerNorm`` of every row of ``x`` (features on the last axis), in ``x``'s dtype."""
    dtype = x.dtype.type
    width = x.shape[-1]
    mean = np.zeros(x.shape[:-1], dtype=dtype)
    for index in range(width):
        mean = mean + x[..., index]
    mean = mean / dtype(width)
    variance = np.zeros(x.shape[:-1], dtype=dtype)
    for index in range(width):
        deviation = x[..., index] - mean
        variance = variance + deviation * deviation
    variance = variance / dtype(width)
    inverse = dtype(1) / np.sqrt(variance + dtype(eps))
    return gamma * (x - mean[..., None]) * inverse[..., None] + beta


def dense(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``floatDense``: ``a = b[o]; a += w[o, i] · x[i]`` in order of ``i``; ``weight`` ``[out, in]``."""
    acc = np.broadcast_to(bias, (*x.shape[:-1], bias.shape[0])).astype(x.dtype)
    for index in range(weight.shape[1]):
        acc = acc + weight[:, index] * x[..., index, None]
    return acc


def softmax_attention(x: np.ndarray, w_attn: np.ndarray, b_attn: np.ndarray) -> dict[str, np.ndarray]:
    """``floatSoftmaxAttention`` on ``x`` ``(..., S, E)``: ``q``, ``k``, ``v``, ``scores``, ``probs`` and ``attn``."""
    dtype = x.dtype.type
    result = {name: dense(x, w_attn[index].T, b_attn[index]) for index, name in enumerate(("q", "k", "v"))}
    q, k, v = result["q"], result["k"], result["v"]
    seq_len, width = q.shape[-2:]
    raw = np.zeros((*q.shape[:-1], seq_len), dtype=dtype)
    for index in range(width):
        raw = raw + q[..., :, None, index] * k[..., None, :, index]
    scores = raw * (dtype(1) / np.sqrt(dtype(width)))
    exps = _exp(scores - scores.max(axis=-1, keepdims=True))
    total = np.zeros(exps.shape[:-1], dtype=dtype)
    for key in range(seq_len):
        total = total + exps[..., key]
    probs = exps / total[..., None]
    attn = np.zeros(v.shape, dtype=dtype)
    for key in range(seq_len):
        attn = attn + probs[..., :, key, None] * v[..., None, key, :]
    return result | {"scores": scores, "probs": probs, "attn": attn}


def float_block(block: FloatBlock, x: np.ndarray, eps: float) -> dict[str, np.ndarray]:
    """``floatBlock`` on ``x`` ``(..., S, E)``: every intermediate of :data:`BLOCK_TENSORS` (without ``t.``)."""
    dtype = x.dtype.type
    result = {"ln1": layer_norm(x, block.gamma1.astype(dtype), block.beta1.astype(dtype), eps)}
    result |= softmax_attention(result["ln1"], block.w_attn.astype(dtype), block.b_attn.astype(dtype))
    result["skip1"] = result["attn"] + x
    result["ln2"] = layer_norm(result["skip1"], block.gamma2.astype(dtype), block.beta2.astype(dtype), eps)
    result["ff1_pre_relu"] = dense(result["ln2"], block.w_ff1.astype(dtype), block.b_ff1.astype(dtype))
    pre = result["ff1_pre_relu"]
    result["ff1"] = np.where(pre < 0, dtype(0), pre)
    result["ff2"] = dense(result["ff1"], block.w_ff2.astype(dtype), block.b_ff2.astype(dtype))
    result["block_out"] = result["skip1"] + result["ff2"]
    return result


def float_stack_forward(weights: FloatStackWeights, tokens: np.ndarray, *, dtype: type = np.float32
                        ) -> dict[str, np.ndarray]:
    """The float model on token ids ``(..., S)`` (ids ``0..V − 1``; :class:`ConfigError` naming ``tokens``
    otherwise), in ``dtype`` (``numpy.float32``: the example's arithmetic; ``numpy.float64``): every intermediate
    under :func:`~int8attn.golden.stack.stack_forward`'s names and ``output`` (module docstring)."""
    if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ConfigError(f"dtype={np.dtype(dtype).name} is out of range; allowed: float32, float64")
    dtype = np.dtype(dtype).type
    tokens = check_tokens(tokens, weights.vocab, weights.seq_len)
    eps = float(np.float32(weights.ln_eps))
    result = {"t.emb": weights.emb_table.astype(dtype)[tokens]}
    result["t.x0"] = x = result["t.emb"] + weights.pos_table.astype(dtype)
    steps = []
    for block in weights.blocks:
        steps.append(float_block(block, x, eps))
        x = steps[-1]["block_out"]
    for name in BLOCK_TENSORS:
        result[f"t.{name}"] = np.stack([step[name] for step in steps], axis=-3)
    result["output"] = x
    return result
