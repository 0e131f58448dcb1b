"""The attention unit's configuration and model: :class:`AttentionConfig` (sequence length, parameter file or random
parameters, softmax mode, parallelism) and :class:`AttentionModel` (:func:`~int8attn.golden.attention.attention` on
frames of one sequence each), plus the integer plan the hardware is built from (:meth:`AttentionConfig.plan`).

A frame is one sequence of ``seq_len`` tokens of ``E`` int8 features, token-major; its output is the sequence's
``E_out`` features per token (``H·d`` without an output projection).
"""

import os
from dataclasses import InitVar, asdict, dataclass, replace
from functools import cached_property
from typing import ClassVar

import numpy as np

from int8attn.golden.attention import (
    PROBABILITY_SCALE,
    PROJECTIONS,
    AttentionParams,
    SoftmaxOf,
    TFLiteAttentionParams,
    TinyMindDense,
    TinyMindMultiHeadParams,
    TinyMindRequantizer,
    check_input,
    load_attention_params,
)
from int8attn.golden.base2 import nearest_grid_shift
from int8attn.golden.config import SoftmaxConfig
from int8attn.golden.matmul import matmul_multiplier
from int8attn.golden.params import TARGETS, ConfigError, Implementation, check_params, implementation_last, param
from int8attn.golden.quantize import quantize_attention
from int8attn.golden.requant import CONVENTIONS, RequantConfig
from int8attn.golden.softmax import SoftmaxModel
from int8attn.golden.stimuli import check_rows

MAX_SEQ_LEN = 1024
MAX_FEATURES = 4096
MAX_FOLD = 64
EXACT_SOFTMAX_MODES = ("tflite", "tinymind", "lut")
"""Softmax modes whose probabilities are int8 on the 1/256 grid at zero point −128, the P·V engine's operand."""
RTL_SOFTMAX_MODES = (*EXACT_SOFTMAX_MODES, "hccs", "base2", "poly")
"""The modes the RTL takes: the exact ones, and the surrogates, whose 8-bit unsigned codes (zero point 0) enter P·V
with their top bit flipped, ``code − 128`` at zero point −128, P·V's requantizer rescaled onto their grid."""
RANDOM_CALIBRATION_SEQUENCES = 8
RANDOM_SHAPE = {"embed_dim": 8, "heads": 1, "head_dim": 8}
"""Without a parameter file: TinyMind's example shape."""
SHAPE_FIELDS = ("embed_dim", "heads", "head_dim", "out_dim", "convention")
FILE_GROUP = "shape (the parameter file's, or random parameters of this shape)"
FOLD_GROUP = "parallelism (changes the Verilog, never an output value)"


@dataclass(frozen=True)
class DenseStage:
    """A projection in hardware terms: ``requant(W·(x − input_zero_point) + bias)``.

    Members
    -------
    weights : numpy.ndarray
        int8 ``[out, in]`` (symmetric: no weight zero point).
    biases : numpy.ndarray
        int32 ``[out]``.
    input_zero_point : int
    requant : RequantConfig
        ``out`` channels, the stage's lanes and the unit's target.
    """

    weights: np.ndarray
    biases: np.ndarray
    input_zero_point: int
    requant: RequantConfig


@dataclass(frozen=True)
class HeadStage:
    """One head's score, softmax and P·V stages.

    Members
    -------
    q_zero_point, k_zero_point, v_zero_point : int
    score : RequantConfig
        ``Σ (q − zp_q)(k − zp_k)`` onto the score grid: ``S`` channels.
    softmax : SoftmaxConfig
        Rows of ``S`` scores.
    probability_zero_point : int
        The softmax's output zero point, the P·V engine's LHS zero point.
    output : RequantConfig
        ``Σ (p − zp_p)(v − zp_v)`` onto the attention grid: ``d`` channels.
    """

    q_zero_point: int
    k_zero_point: int
    v_zero_point: int
    score: RequantConfig
    softmax: SoftmaxConfig
    probability_zero_point: int
    output: RequantConfig


@dataclass(frozen=True)
class AttentionPlan:
    """The integer stages of an attention unit: the Q, K and V projections (all heads, ``H·d`` outputs each), each
    head's score, softmax and P·V, and the optional output projection."""

    projections: dict[str, DenseStage]
    heads: tuple[HeadStage, ...]
    output: DenseStage | None


def random_params(seq_len: int, embed_dim: int, heads: int, head_dim: int, out_dim: int | None, convention: str,
                  seed: int) -> AttentionParams:
    """Parameters quantised (:func:`~int8attn.golden.quantize.quantize_attention`) from float projections drawn
    normal with standard deviation ``1/√(fan-in)`` (an output projection to ``out_dim`` features unless ``None``),
    calibrated on 8 sequences of standard-normal features."""
    rng = np.random.default_rng(seed)
    weights = {f"w{name}": rng.normal(0, 1 / np.sqrt(embed_dim), (embed_dim, heads * head_dim)).astype(np.float32)
               for name in PROJECTIONS}
    if out_dim is not None:
        weights["wo"] = rng.normal(0, 1 / np.sqrt(heads * head_dim), (heads * head_dim, out_dim)).astype(np.float32)
    calibration = rng.normal(0, 1, (RANDOM_CALIBRATION_SEQUENCES, seq_len, embed_dim)).astype(np.float32)
    return AttentionParams.from_arrays(quantize_attention(weights, calibration, convention=convention, heads=heads))


def _tinymind_requant(requantizer: TinyMindRequantizer, channels: int, lanes: int, target: str) -> RequantConfig:
    return RequantConfig(channels=channels, lanes=lanes, multipliers=(requantizer.multiplier,),
                         shifts=(requantizer.shift,), output_zero_point=requantizer.zero_point,
                         act_min=requantizer.qmin, act_max=requantizer.qmax, convention="tinymind", target=target)


def _tflite_requant(multiplier_shift: tuple[int, int], channels: int, lanes: int, zero_point: int,
                    target: str) -> RequantConfig:
    multiplier, shift = multiplier_shift
    return RequantConfig(channels=channels, lanes=lanes, multipliers=(multiplier,), shifts=(shift,),
                         output_zero_point=zero_point, target=target)


def _same(name: str, values: list[int]) -> int:
    if len(set(values)) != 1:
        raise ConfigError(f"{name} differs between heads ({values}); allowed: one value for every head (the RTL "
                          "computes all heads' projections in one engine)")
    return values[0]


@dataclass(frozen=True)
class AttentionConfig(Implementation):
    """Parameters of one attention unit.

    Parameters
    ----------
    seq_len : int
        Tokens per sequence ``S``, 1..1024.
    params : str or None
        The parameter file (:mod:`int8attn.golden.attention`), made absolute; ``None`` quantises random float
        weights (:func:`random_params`) of the shape below.
    params_seed : int
        Seed of the random parameters.
    embed_dim, heads, head_dim : int or None
        ``E``, ``H`` and ``d``; ``None`` takes the parameter file's (TinyMind's 8, 1, 8 without one).
    out_dim : int or None
        Features of the output projection, ``E_out``; ``None`` takes the parameter file's (none without one: the
        output is the heads' ``H·d``).
    convention : str or None
        ``tflite`` or ``tinymind``; ``None`` takes the parameter file's (``tflite`` without one).
    softmax_mode : str or None
        The row softmax's mode; ``None``: the convention's own. The RTL takes every mode but ``lut``'s knobs
        (:data:`RTL_SOFTMAX_MODES`, :meth:`softmax_config`); a surrogate, not causal.
    causal : bool
        Row ``t`` attends keys ``0..t`` only (TinyMind's ``QCausalAttentionSoftmax1D``).
    proj_simd : int
        Input features per cycle of the Q/K/V projections (the input stream's lanes), dividing ``E``.
    proj_pe : int
        Projection outputs per cycle, dividing ``d``; also the lanes of the score engines' LHS and RHS and the P·V
        engines' outputs.
    score_pe : int
        Score columns per cycle, dividing ``S`` and at most ``S``: the softmax's lanes and the P·V engines' LHS
        lanes.
    out_pe : int
        Output projection outputs per cycle, dividing ``E_out`` (the output stream's lanes with an output
        projection).
    target, interface : str
        See :class:`~int8attn.golden.params.Implementation`.
    """

    IMPLEMENTED_TARGETS: ClassVar[tuple[str, ...]] = TARGETS

    seq_len: int = param(8, kind="int", low=1, high=MAX_SEQ_LEN, help="tokens per sequence S")
    params: str | None = param(None, kind="path", optional=True,
                               help="attention parameter .npz (see README) (default: random parameters from "
                                    "--params-seed)")
    params_seed: int = param(1, kind="int", low=0, high=(1 << 32) - 1,
                             help="seed of the random parameters without --params")
    embed_dim: int | None = param(None, kind="int", low=1, high=MAX_FEATURES, optional=True, group=FILE_GROUP,
                                  help="input features E (default: the file's, else 8)")
    heads: int | None = param(None, kind="int", low=1, high=64, optional=True, group=FILE_GROUP,
                              help="heads H (default: the file's, else 1)")
    head_dim: int | None = param(None, kind="int", low=1, high=MAX_FEATURES, optional=True, group=FILE_GROUP,
                                 help="head size d (default: the file's, else 8)")
    out_dim: int | None = param(None, kind="int", low=1, high=MAX_FEATURES, optional=True, group=FILE_GROUP,
                                help="output projection features E_out (default: the file's, else no projection)")
    convention: str | None = param(None, kind="choice", choices=CONVENTIONS, optional=True, group=FILE_GROUP,
                                   help="tflite (the TFLite int8 graph) or tinymind (QAttentionSoftmax1D heads) "
                                        "(default: the file's, else tflite)")
    softmax_mode: str | None = param(None, kind="choice", choices=RTL_SOFTMAX_MODES, optional=True,
                                     help="row softmax mode (default: the convention's); hccs and poly take their "
                                          "defaults, base2 whole rows requantized onto the ln2/2^g grid nearest the "
                                          "score scale with g fraction bits")
    causal: bool = param(False, kind="flag", help="row t attends keys 0..t only (TinyMind's causal softmax)")
    proj_simd: int = param(1, kind="int", low=1, high=MAX_FOLD, structural=True, group=FOLD_GROUP,
                           help="input features per cycle of the Q/K/V projections, dividing E")
    proj_pe: int = param(1, kind="int", low=1, high=MAX_FOLD, structural=True, group=FOLD_GROUP,
                         help="projection outputs per cycle, dividing d")
    score_pe: int = param(1, kind="int", low=1, high=MAX_FOLD, structural=True, group=FOLD_GROUP,
                          help="score columns per cycle (the softmax's lanes), dividing S")
    out_pe: int = param(1, kind="int", low=1, high=MAX_FOLD, structural=True, group=FOLD_GROUP,
                        help="output projection outputs per cycle, dividing E_out")
    given_params: InitVar[AttentionParams | None] = None
    """Parameters held in memory instead of a file's or random ones (:meth:`from_params`); not a field."""

    def __post_init__(self, given_params: AttentionParams | None = None):
        super().__post_init__()
        check_params(self)
        loaded, source = given_params, "the given parameters'"
        if self.params is not None:
            if given_params is not None:
                raise ConfigError(f"params={self.params!r} is given together with in-memory parameters; allowed: "
                                  "None")
            object.__setattr__(self, "params", os.path.abspath(self.params))
            loaded, source = load_attention_params(self.params), "the parameter file's"
        if loaded is not None:
            for name in SHAPE_FIELDS:
                given, found = getattr(self, name), getattr(loaded, name)
                if given is not None and given != found:
                    raise ConfigError(f"{name}={given!r} is out of range; allowed: {found!r}, {source}")
        shape = {name: getattr(self, name) or default for name, default in RANDOM_SHAPE.items()}
        if loaded is None:
            loaded = random_params(self.seq_len, out_dim=self.out_dim, convention=self.convention or "tflite",
                                   seed=self.params_seed, **shape)
        for name in SHAPE_FIELDS:
            object.__setattr__(self, name, getattr(loaded, name))
        if not loaded.has_output_projection:
            object.__setattr__(self, "out_dim", None)
        object.__setattr__(self, "_loaded", loaded)
        self._check_folds()
        if self.causal and self.mode not in EXACT_SOFTMAX_MODES:
            raise ConfigError(f"softmax_mode={self.mode} with causal is out of range; allowed: "
                              f"{', '.join(EXACT_SOFTMAX_MODES)} (the causal mask is the exact modes')")
        for head in range(self.heads):
            self.softmax_config(*loaded.softmax_input(head))

    @classmethod
    def from_params(cls, params: AttentionParams, **fields) -> "AttentionConfig":
        """The configuration of parameters held in memory (an encoder-stack block's, say) rather than a file's or
        random ones: the shape fields and the convention are ``params``'s, the other fields from ``fields``.
        ``params`` stays ``None``, so :meth:`as_dict` and :func:`dataclasses.replace` do not carry the parameters
        (``replace`` of such a configuration draws random ones)."""
        return cls(given_params=params, **fields)

    def _check_folds(self) -> None:
        for name, fold, whole, label in (("proj_simd", self.proj_simd, self.embed_dim, "embed_dim"),
                                         ("proj_pe", self.proj_pe, self.head_dim, "head_dim"),
                                         ("score_pe", self.score_pe, self.seq_len, "seq_len"),
                                         ("out_pe", self.out_pe, self.output_features, "out_dim")):
            if whole % fold:
                divisors = ", ".join(str(d) for d in range(1, min(whole, MAX_FOLD) + 1) if whole % d == 0)
                raise ConfigError(f"{name}={fold} does not divide {label}={whole}; allowed: {divisors}")

    @property
    def attention_params(self) -> AttentionParams:
        """The weights and quantisation: the file's, or the random ones."""
        return self._loaded

    @property
    def output_features(self) -> int:
        """Output features per token: ``out_dim`` with an output projection, else the heads' ``H·d``."""
        return self.attention_params.out_dim

    @property
    def frame_shape(self) -> tuple[int, int]:
        """A sequence's shape, ``(S, E)``: ``int8attn golden attention`` takes arrays ``(..., S, E)``."""
        return self.seq_len, self.embed_dim

    @property
    def output_shape(self) -> tuple[int, int]:
        """A sequence's output shape, ``(S, output_features)``."""
        return self.seq_len, self.output_features

    @property
    def frame_elements(self) -> int:
        """Elements of an input frame (sequence), ``S · E``."""
        return self.seq_len * self.embed_dim

    @property
    def mode(self) -> str:
        """The softmax mode in force."""
        return self.softmax_mode or self.convention

    def plan(self) -> AttentionPlan:
        """The stages the RTL builds, in integers; :class:`ConfigError` for what the RTL does not take (per-head zero
        points or clamps that differ in a TinyMind projection)."""
        params = self.attention_params
        if isinstance(params, TFLiteAttentionParams):
            return self._tflite_plan(params)
        return self._tinymind_plan(params)

    def softmax_config(self, scale: float, zero_point: int, beta: float, n: int | None = None) -> SoftmaxConfig:
        """The row softmax of a head whose scores have this grid and β, on rows of ``n`` (default ``S``): mode
        :attr:`mode` on its default knobs, but ``base2`` on whole rows, its distances requantized onto the
        ``ln 2 / 2^g`` grid nearest ``β·s`` (:func:`~int8attn.golden.base2.nearest_grid_shift`), with ``g`` fraction
        bits. :class:`ConfigError` when the mode does not fit the grid (the RTL also takes only 8-bit codes)."""
        n = self.seq_len if n is None else n
        knobs = {}
        if self.mode == "base2":
            shift = nearest_grid_shift(float(np.float32(beta)) * float(np.float32(scale)))
            knobs = {"base2_grid_shift": shift, "base2_chunk": n, "base2_requantize": True, "base2_frac_bits": shift}
        try:
            config = SoftmaxConfig(n=n, lanes=self.score_pe if n == self.seq_len else 1, input_scale=scale,
                                   input_zero_point=zero_point, beta=beta, mode=self.mode, target=self.target, **knobs)
        except ConfigError as error:
            raise ConfigError(f"softmax_mode={self.mode} at the score scale {scale:.6g}: {error}") from None
        if SoftmaxModel(config).output_bits != 8:
            raise ConfigError(f"softmax_mode={self.mode} gives {SoftmaxModel(config).output_bits}-bit codes; allowed: "
                              "8-bit codes, the P·V engine's operand")
        return config

    def _probability_scale(self, softmax: SoftmaxConfig) -> float:
        return SoftmaxModel(softmax).output_scale

    def _tflite_plan(self, params: TFLiteAttentionParams) -> AttentionPlan:
        projections = {name: DenseStage(weights=layer.weight, biases=layer.bias,
                                        input_zero_point=layer.input.zero_point,
                                        requant=replace(layer.requantizer.config, lanes=self.proj_pe,
                                                        target=self.target))
                       for name, layer in zip(PROJECTIONS, (params.q, params.k, params.v), strict=True)}
        softmax = self.softmax_config(params.score.scale, params.score.zero_point, params.softmax_beta)
        probability_zero_point = -(1 << 7)
        head = HeadStage(
            q_zero_point=params.q.output.zero_point, k_zero_point=params.k.output.zero_point,
            v_zero_point=params.v.output.zero_point,
            score=_tflite_requant(matmul_multiplier(params.q.output.scale, params.k.output.scale, params.score.scale),
                                  self.seq_len, self.score_pe, params.score.zero_point, self.target),
            softmax=softmax, probability_zero_point=probability_zero_point,
            output=_tflite_requant(matmul_multiplier(self._probability_scale(softmax), params.v.output.scale,
                                                     params.attn.scale),
                                   self.head_dim, self.proj_pe, params.attn.zero_point, self.target))
        output = None
        if params.output_projection is not None:
            layer = params.output_projection
            output = DenseStage(weights=layer.weight, biases=layer.bias, input_zero_point=layer.input.zero_point,
                                requant=replace(layer.requantizer.config, lanes=self.out_pe, target=self.target))
        return AttentionPlan(projections=projections, heads=(head,) * self.heads, output=output)

    def _tinymind_plan(self, params: TinyMindMultiHeadParams) -> AttentionPlan:
        heads = params.head_params
        input_zero_point = _same("input_zero_point", [head.input_zero_point for head in heads])
        projections = {}
        for index, name in enumerate(PROJECTIONS):
            requantizers = [getattr(head, f"{name}_requantizer") for head in heads]
            for item in ("zero_point", "qmin", "qmax"):
                _same(f"{name}_requantizer.{item}", [getattr(r, item) for r in requantizers])
            first = requantizers[0]
            heads_scales = [(r.multiplier, r.shift) for r in requantizers]
            # One scale for all heads (one head always) is per-tensor: a constant multiplier and shift in the
            # hardware, where a per-channel table leaves a multiplexed operand and a variable shifter.
            scales = (heads_scales[:1] if len(set(heads_scales)) == 1
                      else [scale for scale in heads_scales for _ in range(self.head_dim)])
            requant = RequantConfig(
                channels=self.heads * self.head_dim, lanes=self.proj_pe,
                multipliers=tuple(multiplier for multiplier, _ in scales),
                shifts=tuple(shift for _, shift in scales),
                output_zero_point=first.zero_point, act_min=first.qmin, act_max=first.qmax, convention="tinymind",
                target=self.target)
            projections[name] = DenseStage(weights=np.concatenate([head.weights[index].T for head in heads]),
                                           biases=np.concatenate([head.biases[index] for head in heads]),
                                           input_zero_point=input_zero_point, requant=requant)
        softmaxes = [self.softmax_config(*params.softmax_input(index)) for index in range(len(heads))]
        stages = tuple(HeadStage(
            q_zero_point=head.q_zero_point, k_zero_point=head.k_zero_point, v_zero_point=head.v_zero_point,
            score=_tinymind_requant(head.score_requantizer, self.seq_len, self.score_pe, self.target),
            softmax=softmax, probability_zero_point=-(1 << 7),
            output=_tinymind_requant(head.output_requantizer.rescaled(self._probability_scale(softmax)
                                                                      / PROBABILITY_SCALE),
                                     self.head_dim, self.proj_pe, self.target))
            for head, softmax in zip(heads, softmaxes, strict=True))
        output = None
        if isinstance(params.output_projection, TinyMindDense):
            layer = params.output_projection
            output = DenseStage(weights=layer.weights, biases=layer.biases, input_zero_point=layer.input_zero_point,
                                requant=_tinymind_requant(layer.requantizer, layer.out_features, self.out_pe,
                                                          self.target))
        return AttentionPlan(projections=projections, heads=stages, output=output)

    def as_dict(self) -> dict:
        """Every parameter, JSON-serialisable; ``AttentionConfig(**config.as_dict())`` rebuilds the config."""
        return implementation_last(asdict(self))


class AttentionModel:
    """Bit-exact attention of one :class:`AttentionConfig` on frames (one sequence each, token-major).

    Members
    -------
    config : AttentionConfig
    input_dtype, output_dtype : type
        ``numpy.int8``.
    output_description : str
    """

    input_dtype = np.int8
    output_dtype = np.int8

    def __init__(self, config: AttentionConfig):
        self.config = config

    @cached_property
    def output_description(self) -> str:
        config = self.config
        return f"int8 [{config.seq_len}, {config.output_features}] a sequence ({config.convention} attention)"

    def check_rows(self, x: np.ndarray) -> np.ndarray:
        return check_rows(x, self.input_dtype, self.config.frame_elements)

    def intermediates(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every intermediate of :func:`~int8attn.golden.attention.attention` for sequences ``(..., S, E)``, each
        head's softmax that of :meth:`AttentionConfig.softmax_config`."""
        config = self.config
        params = config.attention_params

        def softmax_of(head: int) -> SoftmaxOf:
            grid = params.softmax_input(head)
            return lambda n: SoftmaxModel(config.softmax_config(*grid, n=n))

        return params.forward(check_input(x, params.embed_dim), softmax_of, config.causal)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        config = self.config
        sequences = self.check_rows(x).reshape(-1, config.seq_len, config.embed_dim)
        return self.intermediates(sequences)["out"].reshape(len(sequences), -1)
