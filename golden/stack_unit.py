"""The encoder-stack unit's configuration and model: :class:`StackConfig` (the parameter file, or seeded float weights
quantised as TinyMind's example does; lanes and the folds of the attention and feed-forward engines) and
:class:`StackModel`, TinyMind's encoder stack (:func:`~int8attn.golden.stack.stack_forward`) on frames of token ids,
plus the per-layer configurations the hardware is built from (:meth:`StackConfig.plan`).

A frame is one sequence of ``S`` token ids; its output is the last block's ``E`` int8 features per token,
token-major.

Parameter file (``--params P.npz``): the shared ``tinymind_encoder_stack.npz``'s layout
(:func:`~int8attn.golden.stack.load_stack_params`; ``int8attn quantize stack`` writes one). Without a file the float
weights of the bundled example's generator (:func:`~int8attn.golden.stack_example.example_float_weights`, seeded by
``params_seed``: the default seed is the bundled example itself) are calibrated on its calibration sequences with
TinyMind's procedure (:func:`~int8attn.golden.quantize.quantize_stack`, method ``tinymind``), as ``int8attn quantize
stack`` does by default: sizes V = 16, S = 8, E = 8, F = 16, two blocks, non-zero biases, γ ≠ 1 and β ≠ 0.

The feed-forward layer's ReLU (``max(x, relu_zero_point)`` after FFN1's requantizer) is folded into that
requantizer's clamp: ``max(clamp(y, qmin, qmax), r) = clamp(y, max(qmin, r), max(qmax, r))`` for every ``y``.
"""

import os
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from typing import ClassVar

import numpy as np

from int8attn.golden.add import TinyMindAdd
from int8attn.golden.attention import TinyMindDense, TinyMindMultiHeadParams
from int8attn.golden.attention_unit import MAX_FOLD, RTL_SOFTMAX_MODES, AttentionConfig, DenseStage
from int8attn.golden.embedding_unit import EmbeddingConfig, EmbeddingLayers, TokenFrames
from int8attn.golden.layernorm_unit import LayerNormConfig
from int8attn.golden.params import TARGETS, ConfigError, Implementation, check_params, implementation_last, param
from int8attn.golden.stack import StackParams, load_stack_params, stack_forward
from int8attn.golden.stack_example import BLOCKS, EMBED, FFN, SEED, SEQ_LEN, VOCAB

MAX_LANES = 64
MAX_VOCAB = 65536
MAX_SEQ_LEN = 1024
MAX_FEATURES = 1024
MAX_FFN = 4096
MAX_BLOCKS = 64
SEEDED_SHAPE = {"vocab": VOCAB, "seq_len": SEQ_LEN, "embed_dim": EMBED, "ffn_dim": FFN, "num_blocks": BLOCKS}
"""Sizes of the seeded parameters when not given: the bundled example's."""
SHAPE_GROUP = "shape (the parameter file's, or seeded weights of this shape)"
RANDOM_METHOD = "tinymind"
FOLD_GROUP = "parallelism (changes the Verilog, never an output value)"


def seeded_example(seed: int, vocab: int, seq_len: int, embed_dim: int, ffn_dim: int, num_blocks: int
                   ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The bundled example's generator at ``seed`` and these sizes: its float weights
    (:func:`~int8attn.golden.stack_example.example_float_weights`) and calibration sequences
    (:func:`~int8attn.golden.stack_example.calibration_tokens`); the default seed and sizes are the bundled example
    itself."""
    from int8attn.golden.stack_example import calibration_tokens, example_float_weights

    weights = example_float_weights(seed, vocab=vocab, seq_len=seq_len, embed=embed_dim, ffn=ffn_dim,
                                    blocks=num_blocks)
    return weights, calibration_tokens(np.random.default_rng([seed, 1]), vocab, seq_len)


def seeded_params(seed: int, vocab: int, seq_len: int, embed_dim: int, ffn_dim: int, num_blocks: int) -> StackParams:
    """The integer parameters of :func:`seeded_example`, quantised with TinyMind's calibration."""
    from int8attn.golden.quantize import quantize_stack

    arrays = quantize_stack(*seeded_example(seed, vocab, seq_len, embed_dim, ffn_dim, num_blocks), method=RANDOM_METHOD)
    return StackParams.from_arrays(arrays, source=f"seeded parameters {seed}")


@dataclass(frozen=True)
class BlockPlan:
    """One encoder block in the configurations of the units it is built from.

    Members
    -------
    ln1, ln2 : LayerNormConfig
        ``E`` features, ``lanes`` lanes.
    attention : AttentionConfig
        TinyMind's single-head ``QAttentionSoftmax1D`` (``d = E``), the attention folds.
    add1, add2 : TinyMindAdd
        ``QAdd(attn, x)`` and ``QAdd(skip1, ff2)``.
    ff1, ff2 : DenseStage
        ``E → F`` with the ReLU in its clamp, and ``F → E``; their requantizers have the feed-forward ``pe`` as
        lanes.
    """

    ln1: LayerNormConfig
    attention: AttentionConfig
    add1: TinyMindAdd
    ln2: LayerNormConfig
    ff1: DenseStage
    ff2: DenseStage
    add2: TinyMindAdd


def _dense_stage(layer: TinyMindDense, lanes: int, target: str, relu_zero_point: int | None = None) -> DenseStage:
    requantizer = layer.requantizer
    act_min, act_max = requantizer.qmin, requantizer.qmax
    if relu_zero_point is not None:
        act_min, act_max = max(act_min, relu_zero_point), max(act_max, relu_zero_point)
    requant = replace(requantizer.model.config, channels=layer.out_features, lanes=lanes, act_min=act_min,
                      act_max=act_max, target=target)
    return DenseStage(weights=layer.weights, biases=layer.biases, input_zero_point=layer.input_zero_point,
                      requant=requant)


@dataclass(frozen=True)
class StackConfig(TokenFrames, Implementation):
    """Parameters of one encoder-stack unit.

    Parameters
    ----------
    params : str or None
        The encoder-stack parameter file (module docstring), made absolute; ``None`` quantises the seeded float
        weights.
    params_seed : int
        Seed of the float weights without a file (module docstring); the default is the bundled example's.
    vocab, seq_len, embed_dim, ffn_dim, num_blocks : int or None
        ``V``, ``S``, ``E``, ``F`` and ``B``; ``None`` takes the file's (the bundled example's 16, 8, 8, 16, 2
        without one).
    softmax_mode : str or None
        The attention's row softmax in every block, as the attention unit's (``AttentionConfig.softmax_config``);
        ``None``: TinyMind's, as the parameter file computes.
    lanes : int
        Elements per beat ``P`` of the embedding, the layernorms, the adds and the output, dividing ``E`` (each lane
        costs every layernorm and add its multipliers: at the default folds the feed-forward engines set the pace and
        one lane loses nothing).
    proj_simd, proj_pe, score_pe : int
        The attention's folds (:class:`~int8attn.golden.attention_unit.AttentionConfig`): Q/K/V inputs per cycle
        (dividing ``E``), projection outputs per cycle (dividing ``E``, the head size), score columns per cycle
        (dividing ``S``).
    ff1_simd, ff1_pe : int
        FFN1's inputs per cycle (dividing ``E``) and outputs per cycle (dividing ``F``).
    ff2_simd, ff2_pe : int
        FFN2's inputs per cycle (dividing ``F``) and outputs per cycle (dividing ``E``).
    target, interface : str
        See :class:`~int8attn.golden.params.Implementation`.
    """

    IMPLEMENTED_TARGETS: ClassVar[tuple[str, ...]] = TARGETS

    params: str | None = param(None, kind="path", optional=True,
                               help="encoder-stack parameter .npz (the shared tinymind_encoder_stack.npz's layout; "
                                    "`int8attn quantize stack` writes one) (default: the float weights of "
                                    "--params-seed quantised with TinyMind's calibration)")
    params_seed: int = param(SEED, kind="int", low=0, high=(1 << 32) - 1,
                             help=f"seed of the float weights without --params ({SEED}: the bundled example)")
    vocab: int | None = param(None, kind="int", low=1, high=MAX_VOCAB, optional=True, group=SHAPE_GROUP,
                              help=f"vocabulary V (default: the file's, else {SEEDED_SHAPE['vocab']})")
    seq_len: int | None = param(None, kind="int", low=1, high=MAX_SEQ_LEN, optional=True, group=SHAPE_GROUP,
                                help=f"tokens per sequence S (default: the file's, else {SEEDED_SHAPE['seq_len']})")
    embed_dim: int | None = param(None, kind="int", low=1, high=MAX_FEATURES, optional=True, group=SHAPE_GROUP,
                                  help=f"features E (default: the file's, else {SEEDED_SHAPE['embed_dim']})")
    ffn_dim: int | None = param(None, kind="int", low=1, high=MAX_FFN, optional=True, group=SHAPE_GROUP,
                                help=f"hidden features F of the feed-forward layers (default: the file's, else "
                                     f"{SEEDED_SHAPE['ffn_dim']})")
    num_blocks: int | None = param(None, kind="int", low=1, high=MAX_BLOCKS, optional=True, group=SHAPE_GROUP,
                                   help=f"encoder blocks B (default: the file's, else {SEEDED_SHAPE['num_blocks']})")
    softmax_mode: str | None = param(None, kind="choice", choices=RTL_SOFTMAX_MODES, optional=True,
                                     help="the attention's row softmax (default: TinyMind's); as the attention "
                                          "unit's --softmax-mode")
    lanes: int = param(1, kind="int", low=1, high=MAX_LANES, structural=True,
                       help="elements per beat P of the embedding, layernorms, adds and output, dividing E")
    proj_simd: int = param(1, kind="int", low=1, high=MAX_FOLD, structural=True, group=FOLD_GROUP,
                           help="attention: input features per cycle of the Q/K/V projections, dividing E")
    proj_pe: int = param(1, kind="int", low=1, high=MAX_FOLD, structural=True, group=FOLD_GROUP,
                         help="attention: projection outputs per cycle, dividing E")
    score_pe: int = param(1, kind="int", low=1, high=MAX_FOLD, structural=True, group=FOLD_GROUP,
                          help="attention: score columns per cycle (the softmax's lanes), dividing S")
    ff1_simd: int = param(1, kind="int", low=1, high=MAX_FOLD, structural=True, group=FOLD_GROUP,
                          help="FFN1 (E to F): inputs per cycle, dividing E")
    ff1_pe: int = param(1, kind="int", low=1, high=MAX_FOLD, structural=True, group=FOLD_GROUP,
                        help="FFN1 (E to F): outputs per cycle, dividing F")
    ff2_simd: int = param(1, kind="int", low=1, high=MAX_FOLD, structural=True, group=FOLD_GROUP,
                          help="FFN2 (F to E): inputs per cycle, dividing F")
    ff2_pe: int = param(1, kind="int", low=1, high=MAX_FOLD, structural=True, group=FOLD_GROUP,
                        help="FFN2 (F to E): outputs per cycle, dividing E")

    def __post_init__(self):
        super().__post_init__()
        check_params(self)
        if self.params is not None:
            object.__setattr__(self, "params", os.path.abspath(self.params))
            loaded = load_stack_params(self.params)
            for name in SEEDED_SHAPE:
                given, found = getattr(self, name), getattr(loaded, name)
                if given is not None and given != found:
                    raise ConfigError(f"{name}={given!r} is out of range; allowed: {found!r}, the parameter file's "
                                      f"({self.params})")
        else:
            loaded = seeded_params(self.params_seed, **{name: default if getattr(self, name) is None
                                                        else getattr(self, name)
                                                        for name, default in SEEDED_SHAPE.items()})
        object.__setattr__(self, "_params", loaded)
        for name in SEEDED_SHAPE:
            object.__setattr__(self, name, getattr(loaded, name))
        embed, ffn, seq_len = self.embed_dim, self.ffn_dim, self.seq_len
        for name, whole, label in (("lanes", embed, "embed_dim"), ("proj_simd", embed, "embed_dim"),
                                   ("proj_pe", embed, "embed_dim"), ("score_pe", seq_len, "seq_len"),
                                   ("ff1_simd", embed, "embed_dim"), ("ff1_pe", ffn, "ffn_dim"),
                                   ("ff2_simd", ffn, "ffn_dim"), ("ff2_pe", embed, "embed_dim")):
            if whole % getattr(self, name):
                limit = MAX_LANES if name == "lanes" else MAX_FOLD
                divisors = ", ".join(str(d) for d in range(1, min(whole, limit) + 1) if whole % d == 0)
                raise ConfigError(f"{name}={getattr(self, name)} does not divide {label}={whole}; allowed: {divisors}")

    @property
    def stack_params(self) -> StackParams:
        """The integer parameters: the file's, or the seeded ones."""
        return self._params

    def embedding_config(self) -> EmbeddingConfig:
        """The embedding unit of the stack's tables, with the positional encoding, ``lanes`` lanes."""
        params = self.stack_params
        return EmbeddingConfig.from_layers(EmbeddingLayers(params.embedding, params.positional), lanes=self.lanes,
                                           target=self.target)

    @cached_property
    def plan(self) -> tuple[BlockPlan, ...]:
        """Each block's layers in the configurations of the units the hardware is built from."""
        plans = []
        for block in self.stack_params.blocks:
            attention = AttentionConfig.from_params(
                TinyMindMultiHeadParams((block.attention,)), seq_len=self.seq_len, proj_simd=self.proj_simd,
                proj_pe=self.proj_pe, score_pe=self.score_pe, softmax_mode=self.softmax_mode, target=self.target)
            plans.append(BlockPlan(
                ln1=LayerNormConfig.from_layer(block.ln1, lanes=self.lanes, target=self.target), attention=attention,
                add1=block.add1,
                ln2=LayerNormConfig.from_layer(block.ln2, lanes=self.lanes, target=self.target),
                ff1=_dense_stage(block.ff1, self.ff1_pe, self.target, block.ff1_relu_zero_point),
                ff2=_dense_stage(block.ff2, self.ff2_pe, self.target), add2=block.add2))
        return tuple(plans)

    def as_dict(self) -> dict:
        """Every parameter, JSON-serialisable; ``StackConfig(**config.as_dict())`` rebuilds the config."""
        return implementation_last(asdict(self))


class StackModel:
    """Bit-exact encoder stack of one :class:`StackConfig` on frames of token ids (``rows × seq_len``, any integer
    dtype); :class:`ConfigError` naming ``tokens`` for an id outside ``0..vocab − 1``.

    Members
    -------
    config : StackConfig
    input_dtype : type
        ``numpy.int32``, what ``int8attn sim stack --in`` reads (the stack file's ``tokens``).
    output_dtype : type
        ``numpy.int8``.
    output_description : str
    """

    input_dtype = np.int32
    output_dtype = np.int8

    def __init__(self, config: StackConfig):
        self.config = config

    @property
    def output_description(self) -> str:
        config = self.config
        requantizer = config.stack_params.blocks[-1].add2.output_requantizer
        return (f"int8 [{config.seq_len}, {config.embed_dim}] a sequence, the last block's output, zero point "
                f"{requantizer.zero_point}, clamped to {requantizer.qmin}..{requantizer.qmax}")

    def check_rows(self, tokens: np.ndarray) -> np.ndarray:
        """``tokens`` as int64 ids ``(rows, seq_len)`` (``TokenFrames.token_rows``)."""
        return self.config.token_rows(tokens)

    def intermediates(self, tokens: np.ndarray) -> dict[str, np.ndarray]:
        """Every intermediate of :func:`~int8attn.golden.stack.stack_forward` for token rows ``(rows, S)``."""
        config = self.config
        softmaxes = None
        if config.softmax_mode is not None:
            softmaxes = [block.attention.plan().heads[0].softmax for block in config.plan]
        return stack_forward(config.stack_params, self.check_rows(tokens), softmaxes)

    def __call__(self, tokens: np.ndarray) -> np.ndarray:
        output = self.intermediates(tokens)["output"]
        return output.reshape(len(output), -1)
