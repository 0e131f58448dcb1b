"""Bit-exact models of TinyMind's token embedding and positional encoding, the first two layers of its encoder stack.

* ``QEmbedding`` (``cpp/qembedding.hpp``, :class:`TinyMindEmbedding`): a plain row gather from an int8
  ``[vocab, E]`` table, as the example builds it (``requantizer == nullptr``). The C++ does not check token ids; here
  they must lie in ``0..vocab − 1`` (:func:`check_tokens`).
* ``QPositionalEncoding1D`` (``cpp/qpositional.hpp``, :class:`TinyMindPositionalEncoding`): ``QAdd(x, table)`` of the
  embeddings (input a) and an int8 ``[S, E]`` table (input b), :class:`~int8attn.golden.add.TinyMindAdd`.

The example's table (:func:`quantized_positional_table`): TinyMind's host-side ``sinusoidalPositionalTable`` in
float32, ``table[pos, i] = sin(angle)`` for even ``i`` and ``cos(angle)`` for odd ``i``, with
``exponent = float(2·(i/2)) / float(dim)``, ``angle = float(pos) / powf(10000, exponent)``
(:func:`sinusoidal_table`), then ``computeAffineParamsAsymmetric`` of its range
(:func:`~int8attn.golden.quantize.asymmetric_grid`) and ``quantizeBuffer``:
``clamp(lround(double(v) / double(scale)) + zero_point, −128, 127)`` (:func:`quantize_buffer`). ``powf``, ``sinf``
and ``cosf`` are taken as the float32 rounding of the double function (``math.pow``, ``math.sin``, ``math.cos``),
which glibc's single-precision functions return; numpy's float32 ``sin`` can differ by one ulp.

Parameter keys, the names of the shared ``tinymind_encoder_stack.npz``: ``{prefix}.table`` (``emb``: int8
``(vocab, E)``; ``pos``: int8 ``(S, E)``) and the positional adder's ``{prefix}.add.*``.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from int8attn.golden.add import TinyMindAdd, check_int8, with_prefix
from int8attn.golden.attention import INT8_MAX, INT8_MIN, Grid
from int8attn.golden.params import ConfigError
from int8attn.golden.quantize import asymmetric_grid
from int8attn.golden.tinymind import llround

POSITIONAL_BASE = 10000.0


def check_tokens(tokens: np.ndarray, vocab: int, seq_len: int | None = None) -> np.ndarray:
    """``tokens`` as an int64 array of ids ``0..vocab − 1`` (``seq_len`` on the last axis when given);
    :class:`ConfigError` naming ``tokens`` and the allowed range otherwise."""
    tokens = np.asarray(tokens)
    length = "L" if seq_len is None else str(seq_len)
    if tokens.dtype.kind not in "iu" or tokens.ndim < 1 or tokens.shape[-1] == 0 or (
            seq_len is not None and tokens.shape[-1] != seq_len):
        raise ConfigError(f"tokens {tokens.dtype}{tokens.shape} is out of range; allowed: integers (..., {length})")
    if tokens.size and (tokens.min() < 0 or tokens.max() >= vocab):
        raise ConfigError(f"tokens {tokens.min()}..{tokens.max()} is out of range; allowed: token ids 0..{vocab - 1}")
    return tokens.astype(np.int64)


def _check_table(name: str, table: np.ndarray) -> np.ndarray:
    table = np.asarray(table)
    if table.dtype != np.int8 or table.ndim != 2 or 0 in table.shape:
        raise ConfigError(f"{name} {table.dtype}{table.shape} is out of range; allowed: int8 (rows, E), both ≥ 1")
    return table


@dataclass(frozen=True, eq=False)
class TinyMindEmbedding:
    """TinyMind's ``QEmbedding<int8_t, int8_t, vocab, E>`` without a requantizer: ``table[token]``.

    Parameters
    ----------
    table : numpy.ndarray
        int8 ``(vocab, E)``.

    Members
    -------
    vocab, embed_dim : int
    """

    table: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "table", _check_table("table", self.table))

    @property
    def vocab(self) -> int:
        return self.table.shape[0]

    @property
    def embed_dim(self) -> int:
        return self.table.shape[1]

    @classmethod
    def from_mapping(cls, values: Mapping[str, np.ndarray], prefix: str) -> "TinyMindEmbedding":
        """The layer stored as ``{prefix}.table`` in ``values``."""
        return cls(table=values[f"{prefix}.table"])

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The layer as :meth:`from_mapping` reads it."""
        return {f"{prefix}.table": self.table}

    def __call__(self, tokens: np.ndarray) -> np.ndarray:
        """Token ids ``(..., L)`` → int8 ``(..., L, E)``; :class:`ConfigError` naming ``tokens`` for an id outside
        ``0..vocab − 1``."""
        return self.table[check_tokens(tokens, self.vocab)]


@dataclass(frozen=True, eq=False)
class TinyMindPositionalEncoding:
    """TinyMind's ``QPositionalEncoding1D<int8_t, int8_t, int8_t, S, E>``: ``adder(x, table)``.

    Parameters
    ----------
    table : numpy.ndarray
        int8 ``(S, E)``, the positional codes on their own grid (QAdd input b).
    adder : TinyMindAdd
        The embedding (input a) plus the table onto the output grid.

    Members
    -------
    seq_len, embed_dim : int
    """

    table: np.ndarray
    adder: TinyMindAdd

    def __post_init__(self):
        object.__setattr__(self, "table", _check_table("table", self.table))
        if not isinstance(self.adder, TinyMindAdd):
            raise ConfigError(f"adder={self.adder!r} is out of range; allowed: a TinyMindAdd")

    @property
    def seq_len(self) -> int:
        return self.table.shape[0]

    @property
    def embed_dim(self) -> int:
        return self.table.shape[1]

    @classmethod
    def from_mapping(cls, values: Mapping[str, np.ndarray], prefix: str) -> "TinyMindPositionalEncoding":
        """The layer stored as ``{prefix}.table`` and ``{prefix}.add.*`` in ``values``."""
        return cls(table=values[f"{prefix}.table"],
                   adder=with_prefix("add.", TinyMindAdd.from_mapping, values, f"{prefix}.add"))

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The layer as :meth:`from_mapping` reads it."""
        return {f"{prefix}.table": self.table, **self.adder.arrays(f"{prefix}.add")}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """int8 ``(..., S, E)`` embeddings → int8 ``(..., S, E)``."""
        x = check_int8("x", x)
        if x.ndim < 2 or x.shape[-2:] != self.table.shape:
            raise ValueError(f"x must be int8 (..., {self.seq_len}, {self.embed_dim}), got {x.dtype}{x.shape}")
        return self.adder(x, self.table)


# Host side: the example's sinusoidal table.

def sinusoidal_table(seq_len: int, dim: int) -> np.ndarray:
    """TinyMind's ``sinusoidalPositionalTable(seq_len, dim)``: float32 ``(seq_len, dim)`` (module docstring)."""
    table = np.empty((seq_len, dim), dtype=np.float32)
    for i in range(dim):
        exponent = np.float32(2 * (i // 2)) / np.float32(dim)
        denominator = np.float32(math.pow(POSITIONAL_BASE, float(exponent)))
        function = math.sin if i % 2 == 0 else math.cos
        for pos in range(seq_len):
            table[pos, i] = np.float32(function(float(np.float32(pos) / denominator)))
    return table


def quantize_buffer(values: np.ndarray, grid: Grid, qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> np.ndarray:
    """``quantizeBuffer<int8_t>``: ``clamp(lround(double(v) / double(scale)) + zero_point, qmin, qmax)`` of float32
    values, the scale taken as float32."""
    scale = float(np.float32(grid.scale))
    flat = np.asarray(values, dtype=np.float32)
    levels = [llround(float(value) / scale) + grid.zero_point for value in flat.ravel()]
    return np.clip(levels, qmin, qmax).astype(np.int8).reshape(flat.shape)


def quantized_positional_table(seq_len: int, dim: int) -> tuple[np.ndarray, Grid]:
    """The example's int8 positional table and its grid: :func:`sinusoidal_table`, its
    ``computeAffineParamsAsymmetric`` grid over ``−128..127`` and :func:`quantize_buffer`."""
    table = sinusoidal_table(seq_len, dim)
    grid = asymmetric_grid(table)
    return quantize_buffer(table, grid), grid
