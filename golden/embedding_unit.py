"""The embedding unit's configuration and model: :class:`EmbeddingConfig` (the tables from a parameter file or a seed,
the optional positional encoding, lanes) and :class:`EmbeddingModel`, TinyMind's ``QEmbedding`` table gather
(:class:`~int8attn.golden.embedding.TinyMindEmbedding`), optionally followed by its ``QPositionalEncoding1D``
(:class:`~int8attn.golden.embedding.TinyMindPositionalEncoding`, a ``QAdd`` of the embeddings and a table).

A frame is one sequence of ``seq_len`` token ids; its output is their ``embed_dim`` int8 features each, token-major.

Parameter file (``--params P.npz``), the key layout of TinyMind's encoder-stack file (:mod:`int8attn.golden.stack`),
so that file itself serves: ``emb.table`` int8 ``(vocab, E)``; with ``positional`` also ``pos.table`` int8 ``(S, E)``
and the ``QAdd`` ``pos.add.*`` (:meth:`~int8attn.golden.add.TinyMindAdd.keys`). Keys outside ``emb.*`` and ``pos.*``
are ignored (the stack's other layers); a missing or unknown ``emb.*``/``pos.*`` key, a wrong dtype or shape, or a
value out of range is a :class:`~int8attn.golden.params.ConfigError`, one line naming the file and the key.

Without a file the tables come from ``params_seed`` (:func:`random_layers`): uniform int8 embeddings on the grid
:data:`RANDOM_EMBEDDING_GRID`, and with ``positional`` TinyMind's sinusoidal table
(:func:`~int8attn.golden.embedding.quantized_positional_table`) added onto the grid of the sums' range with
``buildQAddParams`` (:meth:`~int8attn.golden.add.TinyMindAdd.from_scales`).
"""

import os
from dataclasses import InitVar, asdict, dataclass
from typing import ClassVar

import numpy as np

from int8attn.golden.add import TinyMindAdd
from int8attn.golden.attention import Grid, ParamReader, load_arrays
from int8attn.golden.embedding import (
    TinyMindEmbedding,
    TinyMindPositionalEncoding,
    check_tokens,
    quantized_positional_table,
)
from int8attn.golden.params import TARGETS, ConfigError, Implementation, check_params, implementation_last, param
from int8attn.golden.quantize import asymmetric_grid
from int8attn.golden.stack import read_add

MAX_SEQ_LEN = 4096
MAX_VOCAB = 65536
MAX_EMBED_DIM = 4096
MAX_LANES = 64
RANDOM_SHAPE = {"vocab": 16, "embed_dim": 8, "seq_len": 8}
"""Without a parameter file (and ``seq_len`` without a positional table): TinyMind's example sizes."""
RANDOM_EMBEDDING_GRID = Grid(scale=1 / 64, zero_point=0)
EMBEDDING_KEYS = ("emb.table",)
POSITIONAL_KEYS = ("pos.table", *TinyMindAdd.keys("pos.add"))
KEYS_TEXT = "emb.table int8 (vocab, E); with positional pos.table int8 (S, E) and pos.add.* (TinyMind's QAdd keys)"
FILE_GROUP = "shape (the parameter file's, or random tables of this shape)"


@dataclass(frozen=True, eq=False)
class EmbeddingLayers:
    """The tables of an embedding unit.

    Members
    -------
    embedding : TinyMindEmbedding
        ``(vocab, E)``.
    positional : TinyMindPositionalEncoding or None
        ``(S, E)`` and its ``QAdd``; ``None`` without the positional encoding.
    """

    embedding: TinyMindEmbedding
    positional: TinyMindPositionalEncoding | None


def read_layers(arrays: dict[str, np.ndarray], positional: bool, source: str) -> EmbeddingLayers:
    """The tables of ``arrays`` (module docstring), ``pos.*`` only with ``positional``; :class:`ConfigError` naming
    ``source`` and the key."""
    reader = ParamReader({key: value for key, value in arrays.items() if key.startswith(("emb.", "pos."))}, source)
    reader.check_keys(EMBEDDING_KEYS + (POSITIONAL_KEYS if positional else ()), POSITIONAL_KEYS, KEYS_TEXT)
    table = reader.array("emb.table", np.int8, (None, None), "(vocab, E)")
    embedding = TinyMindEmbedding(table)
    if not positional:
        return EmbeddingLayers(embedding, None)
    codes = reader.array("pos.table", np.int8, (None, embedding.embed_dim), f"(S, E) = (S, {embedding.embed_dim})")
    return EmbeddingLayers(embedding, TinyMindPositionalEncoding(codes, read_add(reader, "pos.add")))


def random_layers(vocab: int, embed_dim: int, seq_len: int | None, seed: int) -> EmbeddingLayers:
    """Uniform int8 embeddings on :data:`RANDOM_EMBEDDING_GRID` drawn from ``seed``; with a ``seq_len``, TinyMind's
    sinusoidal positional table and the ``QAdd`` onto the asymmetric grid of every sum's range."""
    rng = np.random.default_rng(seed)
    embedding = TinyMindEmbedding(rng.integers(-128, 128, (vocab, embed_dim), dtype=np.int8))
    if seq_len is None:
        return EmbeddingLayers(embedding, None)
    codes, grid = quantized_positional_table(seq_len, embed_dim)
    reals = [(table.astype(np.float64) - g.zero_point) * np.float64(np.float32(g.scale))
             for table, g in ((embedding.table, RANDOM_EMBEDDING_GRID), (codes, grid))]
    extremes = [reals[0].min(axis=0) + reals[1].min(axis=0), reals[0].max(axis=0) + reals[1].max(axis=0)]
    output = asymmetric_grid(np.array([extremes[0].min(), extremes[1].max()], dtype=np.float32))
    return EmbeddingLayers(embedding, TinyMindPositionalEncoding(codes, TinyMindAdd.from_scales(
        RANDOM_EMBEDDING_GRID, grid, output)))


class TokenFrames:
    """Shapes of a configuration whose frames are ``seq_len`` token ids of ``vocab`` and whose outputs are
    ``embed_dim`` features a token over ``embed_dim / lanes`` beats (the embedding and the encoder stack)."""

    vocab: int
    seq_len: int
    embed_dim: int
    lanes: int

    def token_rows(self, tokens: np.ndarray) -> np.ndarray:
        """``tokens`` as int64 ids ``(rows, seq_len)``; :class:`ConfigError` naming ``tokens`` otherwise."""
        tokens = check_tokens(tokens, self.vocab, self.seq_len)
        if tokens.ndim != 2:
            raise ConfigError(f"tokens {tokens.shape} is out of range; allowed: (rows, {self.seq_len})")
        return tokens

    @property
    def beats(self) -> int:
        """Output beats per token, ``embed_dim / lanes``."""
        return self.embed_dim // self.lanes

    @property
    def frame_shape(self) -> tuple[int]:
        """A frame's shape, ``(S,)``: ``int8attn golden`` takes token arrays ``(..., S)``."""
        return (self.seq_len,)

    @property
    def output_shape(self) -> tuple[int, int]:
        """A frame's output shape, ``(S, E)``."""
        return self.seq_len, self.embed_dim


@dataclass(frozen=True)
class EmbeddingConfig(TokenFrames, Implementation):
    """Parameters of one embedding unit.

    Parameters
    ----------
    seq_len : int or None
        Tokens per frame (sequence) ``S``, 1..4096; ``None``: the parameter file's ``pos.table`` rows when it has
        one, else 8. With ``positional`` it must be the positional table's rows.
    params : str or None
        The parameter file (module docstring), made absolute; ``None`` draws random tables from ``params_seed``.
    params_seed : int
        Seed of the random tables.
    vocab, embed_dim : int or None
        ``V`` and ``E``; ``None`` takes the file's (16 and 8 without one).
    positional : bool
        Add the positional encoding (TinyMind's ``QPositionalEncoding1D``) to the embeddings.
    lanes : int
        Output elements per beat ``P``, 1..64, dividing ``embed_dim``: a token's row takes ``E / P`` beats.
    target, interface : str
        See :class:`~int8attn.golden.params.Implementation`.
    """

    IMPLEMENTED_TARGETS: ClassVar[tuple[str, ...]] = TARGETS

    seq_len: int | None = param(None, kind="int", low=1, high=MAX_SEQ_LEN, optional=True,
                                help="tokens per frame S (default: the file's pos.table rows, else 8)")
    params: str | None = param(None, kind="path", optional=True,
                               help="parameter .npz: emb.table, and pos.table, pos.add.* with --positional (TinyMind's "
                                    "encoder-stack layout) (default: random tables from --params-seed)")
    params_seed: int = param(1, kind="int", low=0, high=(1 << 32) - 1,
                             help="seed of the random tables without --params")
    vocab: int | None = param(None, kind="int", low=1, high=MAX_VOCAB, optional=True, group=FILE_GROUP,
                              help="vocabulary V (default: the file's, else 16)")
    embed_dim: int | None = param(None, kind="int", low=1, high=MAX_EMBED_DIM, optional=True, group=FILE_GROUP,
                                  help="features per token E (default: the file's, else 8)")
    positional: bool = param(False, kind="flag",
                             help="add the positional encoding (TinyMind's QPositionalEncoding1D: a QAdd of a table)")
    lanes: int = param(4, kind="int", low=1, high=MAX_LANES, structural=True,
                       help="output elements per beat, dividing embed_dim")
    given_layers: InitVar[EmbeddingLayers | None] = None
    """Tables held in memory instead of a file's or random ones (:meth:`from_layers`); not a field."""

    def __post_init__(self, given_layers: EmbeddingLayers | None = None):
        super().__post_init__()
        check_params(self)
        if given_layers is not None:
            if self.params is not None:
                raise ConfigError(f"params={self.params!r} is given together with in-memory tables; allowed: None")
            layers = given_layers
            found = {"vocab": layers.embedding.vocab, "embed_dim": layers.embedding.embed_dim}
            if layers.positional is not None:
                found["seq_len"] = layers.positional.seq_len
            for name, value in found.items():
                if getattr(self, name) not in (None, value):
                    raise ConfigError(f"{name}={getattr(self, name)!r} is out of range; allowed: {value}, the given "
                                      "tables'")
                object.__setattr__(self, name, value)
            object.__setattr__(self, "positional", layers.positional is not None)
        if self.params is not None:
            object.__setattr__(self, "params", os.path.abspath(self.params))
            allowed = "an .npz with emb.table (int8attn.golden.embedding_unit)"
            arrays = load_arrays(self.params, allowed)
            if not isinstance(arrays, dict):
                raise ConfigError(f"{self.params}: is not an .npz archive; allowed: {allowed}")
            layers = read_layers(arrays, self.positional, self.params)
            found = {"vocab": layers.embedding.vocab, "embed_dim": layers.embedding.embed_dim}
            if layers.positional is not None:
                found["seq_len"] = layers.positional.seq_len
            elif "pos.table" in arrays and self.seq_len is None:
                object.__setattr__(self, "seq_len", int(np.shape(arrays["pos.table"])[0]))
            for name, value in found.items():
                if getattr(self, name) not in (None, value):
                    raise ConfigError(f"{name}={getattr(self, name)!r} is out of range; allowed: {value}, the "
                                      f"parameter file's ({self.params})")
                object.__setattr__(self, name, value)
        for name, default in RANDOM_SHAPE.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)
        if self.params is None and given_layers is None:
            layers = random_layers(self.vocab, self.embed_dim, self.seq_len if self.positional else None,
                                   self.params_seed)
        object.__setattr__(self, "_layers", layers)
        if self.embed_dim % self.lanes:
            divisors = ", ".join(str(d) for d in range(1, min(self.embed_dim, MAX_LANES) + 1)
                                 if self.embed_dim % d == 0)
            raise ConfigError(f"lanes={self.lanes} does not divide embed_dim={self.embed_dim}; allowed: {divisors}")

    @classmethod
    def from_layers(cls, layers: EmbeddingLayers, **fields) -> "EmbeddingConfig":
        """The configuration of tables held in memory (an encoder stack's, say) rather than a file's or random ones:
        ``vocab``, ``embed_dim``, ``positional`` and (with the positional table) ``seq_len`` are the tables', the
        other fields from ``fields``. ``params`` stays ``None``, so :meth:`as_dict` and :func:`dataclasses.replace`
        do not carry the tables."""
        return cls(given_layers=layers, **fields)

    @property
    def layers(self) -> EmbeddingLayers:
        """The tables: the file's, or the random ones."""
        return self._layers

    def as_dict(self) -> dict:
        """Every parameter, JSON-serialisable; ``EmbeddingConfig(**config.as_dict())`` rebuilds the config."""
        return implementation_last(asdict(self))


class EmbeddingModel:
    """Bit-exact embedding of one :class:`EmbeddingConfig` on frames of token ids (``rows × seq_len``, any integer
    dtype); :class:`ConfigError` naming ``tokens`` for an id outside ``0..vocab − 1``.

    Members
    -------
    config : EmbeddingConfig
    input_dtype : type
        ``numpy.int32``, what ``int8attn golden embedding`` reads (the stack file's ``tokens``).
    output_dtype : type
        ``numpy.int8``.
    output_description : str
    """

    input_dtype = np.int32
    output_dtype = np.int8

    def __init__(self, config: EmbeddingConfig):
        self.config = config

    @property
    def output_description(self) -> str:
        config = self.config
        positional = config.layers.positional
        if positional is None:
            return f"int8 [{config.seq_len}, {config.embed_dim}] a sequence (table rows)"
        requantizer = positional.adder.output_requantizer
        return (f"int8 [{config.seq_len}, {config.embed_dim}] a sequence, rows plus positional codes, zero point "
                f"{requantizer.zero_point}, clamped to {requantizer.qmin}..{requantizer.qmax}")

    def check_rows(self, tokens: np.ndarray) -> np.ndarray:
        """``tokens`` as int64 ids ``(rows, seq_len)`` (:meth:`TokenFrames.token_rows`)."""
        return self.config.token_rows(tokens)

    def __call__(self, tokens: np.ndarray) -> np.ndarray:
        layers = self.config.layers
        rows = layers.embedding(self.check_rows(tokens))
        if layers.positional is not None:
            rows = layers.positional(rows)
        return rows.reshape(len(rows), -1)
