"""The layernorm unit's configuration and model: :class:`LayerNormConfig` (row length, lanes, and TinyMind's integer
parameters from an encoder-stack file or from real γ, β, ε and scales) and :class:`LayerNormModel`
(:class:`~int8attn.golden.layernorm.TinyMindLayerNorm` on rows), plus the integer plan the hardware is built from
(:class:`LayerNormPlan`), whose :meth:`~LayerNormPlan.forward` computes the model's outputs the hardware's way.

The hardware's way differs from the model's text in three places, each exact by the argument given (and compared with
the model by the tests, :meth:`LayerNormPlan.forward` against :class:`~int8attn.golden.layernorm.TinyMindLayerNorm`):

* the variance sum in one pass: ``Σ (x − m)² = Σ x² − 2·m·Σ x + N·m²`` is an identity of integers for *any* integer
  ``m``, the rounded mean included, so ``V = Q + m·(N·m − 2·S)`` with ``S = Σ x``, ``Q = Σ x²``;
* the divisions by the constant ``N``: ``⌊a / N⌋ = ⌊a·M / 2^k⌋`` for every ``0 ≤ a < 2^b`` with ``k = b + ⌈log2 N⌉``
  and ``M = ⌈2^k / N⌉`` (:func:`floor_division_constants`);
* the inverse square root of ``d = 0`` (TinyMind's ``2^31 − 1``): the root 0 is replaced by ``2^13``, whose quotient
  ``2^44 / 2^13 = 2^31`` saturates to ``2^31 − 1``; every other root is at least ``2^14`` (``d ≥ 1``), so its
  quotient is at most ``2^30`` and the saturation never touches it.

Bounds the widths come from, for int8 inputs: ``Σ (x − μ)² ≤ N·255²/4`` (Popoviciu) and ``|μ − m| ≤ 1/2``, so
``V ≤ N·16256.5`` and ``var_q ≤ 16257``: TinyMind's clamp of ``var_q`` to ``2^31 − 1`` and of ``var_q + ε`` to
``2^32 − 1`` never acts.
"""

import os
from collections.abc import Iterator
from dataclasses import InitVar, asdict, dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from int8attn.golden.add import check_int8, with_prefix
from int8attn.golden.attention import INT8_MAX, INT8_MIN, load_arrays
from int8attn.golden.fixedpoint import INT32_MAX, INT32_MIN, rounding_divide_by_pot, srdhm, wrap32
from int8attn.golden.layernorm import (
    INV_SQRT_NUMERATOR_BITS,
    NORMALIZED_SHIFT,
    Q30_MAX,
    SCALAR_FIELDS,
    SQRT_PRESCALE_BITS,
    TinyMindLayerNorm,
    floor_isqrt,
    output_params,
    quantize_beta,
    quantize_epsilon,
    quantize_gamma,
)
from int8attn.golden.params import TARGETS, ConfigError, Implementation, check_params, implementation_last, param
from int8attn.golden.stimuli import check_rows

MAX_FEATURES = 1024
MAX_LANES = 64
MAX_BLOCK = 1023
LAYERS = ("ln1", "ln2")
DEFAULT_FEATURES = 64
DEFAULT_REALS = {"gamma": (1.0,), "beta": (0.0,), "epsilon": 1e-3, "input_scale": 0.05, "output_scale": 0.03125}
DEFAULT_OUTPUT = {"output_zero_point": 0, "qmin": INT8_MIN, "qmax": INT8_MAX}
FILE_FIELDS = ("block", "which")
REAL_FIELDS = (*DEFAULT_REALS, *DEFAULT_OUTPUT)
SEQUENCE_FIELDS = ("gamma", "beta")
SOURCE_GROUP = "parameters (a file's, or from real values)"
ZERO_ROOT_SUBSTITUTE = 1 << 13
"""The divisor that stands in for the root 0: ``2^44 / 2^13 = 2^31``, saturated to TinyMind's ``2^31 − 1``."""
INT8_SQUARE_MAX = 1 << 14
"""``(−128)²``."""
INT8_OFFSET = 128
VARIANCE_SUM_HALVES = 255 * 255 // 2 + 1
"""``2·(255²/4 + 1/4)``: twice the bound ``16256.5`` of ``Σ (x − m)² / N`` for int8 ``x``."""


def floor_division_constants(divisor: int, dividend_bits: int) -> tuple[int, int]:
    """``(M, k)`` with ``⌊a / divisor⌋ = (a·M) >> k`` for every ``0 ≤ a < 2^dividend_bits``.

    ``k = dividend_bits + ⌈log2 divisor⌉`` and ``M = ⌈2^k / divisor⌉``: with ``M·divisor = 2^k + e``, ``0 ≤ e <
    divisor``, ``a·M / 2^k = a / divisor + a·e / (divisor·2^k)``, and ``a·e < 2^dividend_bits · divisor ≤ 2^k`` keeps
    the error below ``1 / divisor``, less than the distance from ``a / divisor`` to the next integer. A power of two
    gives ``M = 1``: the division is a shift.
    """
    if divisor < 1 or dividend_bits < 0:
        raise ValueError(f"divisor must be ≥ 1 and dividend_bits ≥ 0, not {divisor}, {dividend_bits}")
    if divisor & (divisor - 1) == 0:
        return 1, divisor.bit_length() - 1
    shift = dividend_bits + (divisor - 1).bit_length()
    return -(-(1 << shift) // divisor), shift


def nonrestoring_isqrt(values: np.ndarray | int, root_bits: int) -> np.ndarray:
    """``⌊√x⌋`` of integers ``0 ≤ x < 4^root_bits``, digit by digit as the hardware computes it
    (:class:`~int8attn.hdl.isqrt.IntegerSqrt`): for each pair of bits from the top, the remainder takes the pair
    (``r = 4r + pair``), then loses ``4·root + 1`` when it is not negative or gains ``4·root + 3`` when it is; the
    root's next bit is 1 when the result is not negative."""
    values = np.asarray(values, dtype=np.int64)
    remainder = np.zeros_like(values)
    root = np.zeros_like(values)
    for pair in reversed(range(root_bits)):
        extended = (remainder << 2) | ((values >> (2 * pair)) & 3)
        remainder = np.where(remainder >= 0, extended - ((root << 2) | 1), extended + ((root << 2) | 3))
        root = (root << 1) | (remainder >= 0)
    return root


@dataclass(frozen=True)
class FloorDivision:
    """``⌊a / divisor⌋`` of ``0 ≤ a ≤ dividend_max`` as ``(a·multiplier) >> shift`` (:func:`floor_division_constants`).

    Members
    -------
    divisor, dividend_max : int
    multiplier, shift : int
        ``multiplier`` is 1 for a power of two.
    """

    divisor: int
    dividend_max: int

    @property
    def dividend_bits(self) -> int:
        return max(1, self.dividend_max.bit_length())

    @property
    def multiplier(self) -> int:
        return floor_division_constants(self.divisor, self.dividend_bits)[0]

    @property
    def shift(self) -> int:
        return floor_division_constants(self.divisor, self.dividend_bits)[1]

    @property
    def power_of_two(self) -> bool:
        return self.multiplier == 1

    def __call__(self, dividends: np.ndarray) -> np.ndarray:
        """``(a·M) >> k`` of each dividend, in int64 (``a·M < 2^63`` for every dividend in range)."""
        if self.dividend_bits + self.multiplier.bit_length() > 63:
            raise ValueError(f"{self} takes products beyond int64")
        return (np.asarray(dividends, dtype=np.int64) * self.multiplier) >> self.shift


@dataclass(frozen=True)
class LayerNormPlan:
    """The integer stages of a layernorm unit, with the ranges that size them (module docstring).

    Parameters
    ----------
    layer : TinyMindLayerNorm
        The layer: ``N`` features and its integer parameters.

    Members
    -------
    features, half : int
        ``N`` and ``N / 2`` (truncated), the mean's and the variance's rounding bias.
    sum_bits : int
        Width of the signed row sum ``S``.
    square_sum_max : int
        Largest ``Q = Σ x²``.
    mean_division, variance_division : FloorDivision
        ``⌊(|S| + N/2) / N⌋`` and ``⌊(V + N/2) / N⌋``.
    variance_sum_max, variance_max : int
        Largest ``V`` and ``var_q``.
    denominator_min, denominator_max : int
        Range of ``d = max(var_q + ε, 0)``.
    root_bits, root_min : int
        Width of ``⌊√(d·2^28)⌋`` and its smallest value.
    zero_root : bool
        ``d = 0`` can happen (``ε ≤ 0``): the root 0 becomes :data:`ZERO_ROOT_SUBSTITUTE` and the quotient saturates.
    divisor_min : int
        Smallest divisor of ``2^44``.
    inverse_max : int
        Largest ``inv_q30``.
    left_shift, right_shift : int
        The output multiplier's saturating left shift (capped at 31) and its rounding right shift.
    biases : numpy.ndarray
        int64 ``(N,)``: ``wrap32(β + zp_out)``, added with a wrapping int32 addition.
    """

    layer: TinyMindLayerNorm

    @property
    def features(self) -> int:
        return self.layer.features

    @property
    def half(self) -> int:
        return self.features // 2

    @property
    def sum_bits(self) -> int:
        return (INT8_OFFSET * self.features).bit_length() + 1

    @property
    def square_sum_max(self) -> int:
        return INT8_SQUARE_MAX * self.features

    @property
    def mean_division(self) -> FloorDivision:
        return FloorDivision(self.features, INT8_OFFSET * self.features + self.half)

    @property
    def variance_sum_max(self) -> int:
        return VARIANCE_SUM_HALVES * self.features // 2

    @property
    def variance_division(self) -> FloorDivision:
        return FloorDivision(self.features, self.variance_sum_max + self.half)

    @property
    def variance_max(self) -> int:
        return self.variance_division.dividend_max // self.features

    @property
    def denominator_min(self) -> int:
        return max(self.layer.epsilon_q, 0)

    @property
    def denominator_max(self) -> int:
        return max(self.variance_max + self.layer.epsilon_q, 0)

    @property
    def denominator_bits(self) -> int:
        return max(1, self.denominator_max.bit_length())

    @property
    def root_bits(self) -> int:
        return (self.denominator_bits + SQRT_PRESCALE_BITS + 1) // 2

    @property
    def root_min(self) -> int:
        return int(floor_isqrt(self.denominator_min << SQRT_PRESCALE_BITS))

    @property
    def zero_root(self) -> bool:
        return self.denominator_min == 0

    @property
    def divisor_min(self) -> int:
        return ZERO_ROOT_SUBSTITUTE if self.zero_root else self.root_min

    @property
    def inverse_max(self) -> int:
        return Q30_MAX if self.zero_root else (1 << INV_SQRT_NUMERATOR_BITS) // self.root_min

    @property
    def left_shift(self) -> int:
        return min(max(-self.layer.output_shift, 0), 31)

    @property
    def right_shift(self) -> int:
        return max(self.layer.output_shift, 0)

    @cached_property
    def biases(self) -> np.ndarray:
        return wrap32(self.layer.beta.astype(np.int64) + self.layer.output_zero_point)

    def saturating_shift(self, products: np.ndarray) -> np.ndarray:
        """``sat32(p · 2^left_shift)`` of the products ``p = n14·γ`` in one step: TinyMind saturates ``p`` to int32,
        then its left shift, and a value saturated once stays saturated by the shift."""
        products = np.asarray(products, dtype=np.int64)
        shift = self.left_shift
        return np.where(products > INT32_MAX >> shift, INT32_MAX,
                        np.where(products < INT32_MIN >> shift, INT32_MIN, products << shift))

    def statistics(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Each row's intermediate values as the hardware computes them (``(rows, 1)`` int64 each): ``sum``,
        ``squares``, ``mean``, ``variance_sum``, ``variance``, ``denominator``, ``root``, ``inverse``."""
        values = np.asarray(x, dtype=np.int64)
        n = self.features
        total = values.sum(axis=-1, keepdims=True)
        squares = (values * values).sum(axis=-1, keepdims=True)
        quotient = self.mean_division(np.abs(total) + self.half)
        mean = np.where(total < 0, -quotient, quotient)
        variance_sum = squares + mean * (n * mean - 2 * total)
        variance = self.variance_division(variance_sum + self.half)
        denominator = np.maximum(variance + self.layer.epsilon_q, 0)
        root = nonrestoring_isqrt(denominator << SQRT_PRESCALE_BITS, self.root_bits)
        divisor = np.where(root == 0, ZERO_ROOT_SUBSTITUTE, root)
        inverse = np.minimum((np.int64(1) << INV_SQRT_NUMERATOR_BITS) // divisor, Q30_MAX)
        return {"sum": total, "squares": squares, "mean": mean, "variance_sum": variance_sum, "variance": variance,
                "denominator": denominator, "root": root, "inverse": inverse}

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The layer on int8 rows ``(rows, N)``, the hardware's way; equal to ``layer(x)``."""
        x = check_int8("x", x)
        stats = self.statistics(x)
        deviation = x.astype(np.int64) - stats["mean"]
        normalized = (deviation * stats["inverse"]) >> NORMALIZED_SHIFT
        shifted = self.saturating_shift(normalized * self.layer.gamma.astype(np.int64))
        scaled = rounding_divide_by_pot(srdhm(shifted, self.layer.output_multiplier), self.right_shift)
        with_bias = wrap32(scaled + self.biases)
        return np.clip(with_bias, self.layer.qmin, self.layer.qmax).astype(np.int8)


def directed_layernorm_rows(n: int, rng: np.random.Generator) -> Iterator[tuple[str, np.ndarray]]:
    """Labelled rows of ``n`` int8 values at the edges of the statistics: constant rows (variance 0, so ``d = ε``),
    the largest variance (half −128, half 127: ``V = N·16256.5``), rows whose variance sum is below ``N/2``
    (``var_q = 0`` with non-zero deviations), sums at ``k·N ± N/2`` (ties of the mean, which round away from zero)
    on both sides of 0 and at the extremes, and a single outlier."""
    for value in (-128, -1, 0, 1, 127):
        yield f"constant {value}", np.full(n, value, dtype=np.int8)
    half = np.where(np.arange(n) < n // 2, -128, 127).astype(np.int8)
    yield "half -128, half 127 (largest variance)", half
    yield "half 127, half -128", half[::-1].copy()
    for value in (-128, 5, 127):
        row = np.full(n, value, dtype=np.int8)
        row[rng.integers(n)] = value + 1 if value < INT8_MAX else value - 1
        yield f"constant {value} but one element off by 1", row
    for base in (-128, -3, 0, 3, 126):
        for step in (1, -1):
            row = np.full(n, base, dtype=np.int8)
            row[:n // 2] = np.clip(base + step, INT8_MIN, INT8_MAX)
            yield f"sum {base}·N {'+' if step > 0 else '-'} N/2 (a tie of the mean for even N)", row
    outlier = np.full(n, INT8_MIN, dtype=np.int8)
    outlier[rng.integers(n)] = INT8_MAX
    yield "one 127 among -128", outlier


def load_layernorm(path: str, block: int, which: str) -> TinyMindLayerNorm:
    """The layer ``block{block}.{which}`` of the encoder-stack file ``path`` (its keys ``.gamma``, ``.beta``,
    ``.epsilon_q``, ...; other keys are not read); :class:`ConfigError`, one line naming the file and the key."""
    allowed = "an .npz with the encoder-stack file's layernorm keys (int8attn.golden.layernorm)"
    arrays = load_arrays(path, allowed)
    if not isinstance(arrays, dict):
        raise ConfigError(f"{path}: is not an .npz archive; allowed: {allowed}")
    prefix = f"block{block}.{which}"
    for key in (f"{prefix}.gamma", f"{prefix}.beta", *TinyMindLayerNorm.keys(prefix)):
        if key not in arrays:
            raise ConfigError(f"{path}: {key} is missing; allowed: {allowed}")
    for key in TinyMindLayerNorm.keys(prefix):
        value = arrays[key]
        if value.ndim != 0 or not np.issubdtype(value.dtype, np.integer):
            raise ConfigError(f"{path}: {key} = {value.dtype}{value.shape} is out of range; allowed: an integer "
                              "scalar")
    return with_prefix(f"{path}: {prefix}.", TinyMindLayerNorm.from_mapping, arrays, prefix)


@dataclass(frozen=True)
class LayerNormConfig(Implementation):
    """Parameters of one layernorm unit: TinyMind's ``QLayerNorm1D`` over rows of ``features`` int8 values.

    The integer parameters come from an encoder-stack file (``params``, ``block``, ``which``), or from real values
    through TinyMind's host helpers (``gamma``, ``beta``, ``epsilon``, ``input_scale``, ``output_scale``,
    ``output_zero_point``, ``qmin``, ``qmax``; :func:`~int8attn.golden.layernorm.quantize_gamma` and the others), never
    both.

    Parameters
    ----------
    features : int or None
        Elements per row ``N``, 1..1024; ``None`` takes the file's (64 without one).
    lanes : int
        Elements per beat, 1..64, dividing ``features``.
    params : str or None
        Encoder-stack ``.npz`` (the shared ``tinymind_encoder_stack.npz``'s layout), made absolute.
    block : int or None
        Block of the file, 0..1023 (default 0); with ``params`` only.
    which : str or None
        ``ln1`` or ``ln2`` (default ``ln1``); with ``params`` only.
    gamma, beta : tuple of float or None
        Real γ and β (float32), one value for every feature or one per feature; default 1 and 0.
    epsilon : float or None
        Real ε (float32), default 0.001.
    input_scale, output_scale : float or None
        Scales of the int8 input and output (float32), default 0.05 and 1/32.
    output_zero_point, qmin, qmax : int or None
        Output zero point and clamp, int8 values; default 0, −128, 127.
    target, interface : str
        See :class:`~int8attn.golden.params.Implementation`.
    """

    IMPLEMENTED_TARGETS: ClassVar[tuple[str, ...]] = TARGETS

    features: int | None = param(None, kind="int", low=1, high=MAX_FEATURES, optional=True,
                                 help=f"elements per row N (default: the file's, else {DEFAULT_FEATURES})")
    lanes: int = param(4, kind="int", low=1, high=MAX_LANES, structural=True, help="elements per beat, dividing N")
    params: str | None = param(None, kind="path", optional=True, group=SOURCE_GROUP,
                               help="encoder-stack .npz of the integer parameters, keys block{B}.{ln1,ln2}.* "
                                    "(default: from the real values below)")
    block: int | None = param(None, kind="int", low=0, high=MAX_BLOCK, optional=True, group=SOURCE_GROUP,
                              help="block B of --params (default: 0)")
    which: str | None = param(None, kind="choice", choices=LAYERS, optional=True, group=SOURCE_GROUP,
                              help="layer of block B in --params: ln1 or ln2 (default: ln1)")
    gamma: tuple[float, ...] | None = param(None, kind="floats", any_sign=True, optional=True,
                                            max_items=MAX_FEATURES, group=SOURCE_GROUP,
                                            help="real gamma, one or one per feature; a leading minus needs "
                                                 "--gamma=V,... (default: 1)")
    beta: tuple[float, ...] | None = param(None, kind="floats", any_sign=True, optional=True,
                                           max_items=MAX_FEATURES, group=SOURCE_GROUP,
                                           help="real beta, one or one per feature; a leading minus needs "
                                                "--beta=V,... (default: 0)")
    epsilon: float | None = param(None, kind="float", optional=True, group=SOURCE_GROUP,
                                  help="real epsilon (default: 0.001)")
    input_scale: float | None = param(None, kind="float", optional=True, group=SOURCE_GROUP,
                                      help="scale of the int8 input (default: 0.05)")
    output_scale: float | None = param(None, kind="float", optional=True, group=SOURCE_GROUP,
                                       help="scale of the int8 output (default: 0.03125)")
    output_zero_point: int | None = param(None, kind="int", low=INT8_MIN, high=INT8_MAX, optional=True,
                                          group=SOURCE_GROUP, help="output zero point (default: 0)")
    qmin: int | None = param(None, kind="int", low=INT8_MIN, high=INT8_MAX, optional=True, group=SOURCE_GROUP,
                             help="lower output clamp (default: -128)")
    qmax: int | None = param(None, kind="int", low=INT8_MIN, high=INT8_MAX, optional=True, group=SOURCE_GROUP,
                             help="upper output clamp (default: 127)")

    given_layer: InitVar[TinyMindLayerNorm | None] = None
    """A layer held in memory instead of a file's or the real values' (:meth:`from_layer`); not a field."""

    def __post_init__(self, given_layer: TinyMindLayerNorm | None = None):
        super().__post_init__()
        for name in SEQUENCE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, (list, np.ndarray)):
                object.__setattr__(self, name, tuple(np.asarray(value).tolist()))
        check_params(self)
        if given_layer is not None:
            layer = self._given(given_layer)
        elif self.params is not None:
            layer = self._from_file()
        else:
            layer = self._from_reals()
        if self.features is not None and self.features != layer.features:
            source = "parameter file's" if self.params is not None else "layer's"
            raise ConfigError(f"features={self.features!r} is out of range; allowed: {layer.features}, the {source}")
        object.__setattr__(self, "features", layer.features)
        object.__setattr__(self, "_layer", layer)
        if self.features % self.lanes:
            divisors = [d for d in range(1, min(self.features, MAX_LANES) + 1) if self.features % d == 0]
            raise ConfigError(f"lanes={self.lanes} does not divide features={self.features}; allowed: {divisors}")

    @classmethod
    def from_layer(cls, layer: TinyMindLayerNorm, **fields) -> "LayerNormConfig":
        """The configuration of an integer layer held in memory (an encoder stack's, say) rather than a file's or the
        real values': ``features`` is the layer's, the other fields (``lanes``, ``target``) from ``fields``.
        ``params`` and the real values stay ``None``, so :meth:`as_dict` and :func:`dataclasses.replace` do not
        carry the layer."""
        return cls(given_layer=layer, **fields)

    def _given(self, layer: TinyMindLayerNorm) -> TinyMindLayerNorm:
        given = [name for name in (*REAL_FIELDS, *FILE_FIELDS, "params") if getattr(self, name) is not None]
        if given:
            raise ConfigError(f"{given[0]}={getattr(self, given[0])!r} is given together with an in-memory layer; "
                              "allowed: None")
        return layer

    def _from_file(self) -> TinyMindLayerNorm:
        given = [name for name in REAL_FIELDS if getattr(self, name) is not None]
        if given:
            raise ConfigError(f"{given[0]}={getattr(self, given[0])!r} is given together with params; allowed: None "
                              "(the file holds the integer parameters)")
        object.__setattr__(self, "params", os.path.abspath(self.params))
        for name, default in zip(FILE_FIELDS, (0, LAYERS[0]), strict=True):
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)
        return load_layernorm(self.params, self.block, self.which)

    def _from_reals(self) -> TinyMindLayerNorm:
        for name in FILE_FIELDS:
            if getattr(self, name) is not None:
                raise ConfigError(f"{name}={getattr(self, name)!r} applies to params only; allowed: None (no "
                                  "parameter file given)")
        for name, default in (DEFAULT_REALS | DEFAULT_OUTPUT).items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)
        features = DEFAULT_FEATURES if self.features is None else self.features
        for name in SEQUENCE_FIELDS:
            count = len(getattr(self, name))
            if count not in (1, features):
                raise ConfigError(f"{name} has {count} items and is out of range; allowed: 1 (every feature) or "
                                  f"features={features}")
        gamma = quantize_gamma(np.broadcast_to(np.array(self.gamma, np.float32), (features,)))
        beta = quantize_beta(np.broadcast_to(np.array(self.beta, np.float32), (features,)), self.output_scale)
        epsilon_q = quantize_epsilon(self.epsilon, self.input_scale)
        multiplier, shift = output_params(self.output_scale)
        if not -31 <= shift <= 31:
            raise ConfigError(f"output_scale={self.output_scale!r} is out of range (output shift {shift}); allowed: "
                              "scales for which 1 / (2^28 · output_scale) has a TinyMind shift in -31..31")
        return TinyMindLayerNorm(gamma=gamma, beta=beta, epsilon_q=epsilon_q, output_multiplier=multiplier,
                                 output_shift=shift, output_zero_point=self.output_zero_point, qmin=self.qmin,
                                 qmax=self.qmax)

    @property
    def layer(self) -> TinyMindLayerNorm:
        """The integer layer: the file's, or the one the real values quantise to."""
        return self._layer

    @property
    def plan(self) -> LayerNormPlan:
        return LayerNormPlan(self.layer)

    @property
    def frame_elements(self) -> int:
        return self.features

    @property
    def beats(self) -> int:
        """Beats per row, ``features / lanes``."""
        return self.features // self.lanes

    def integer_parameters(self) -> dict[str, Any]:
        """The layer's integer parameters by name: ``gamma`` and ``beta`` as lists, then the scalars."""
        layer = self.layer
        return {"gamma": layer.gamma.tolist(), "beta": layer.beta.tolist(),
                **{name: int(getattr(layer, name)) for name in SCALAR_FIELDS}}

    def as_dict(self) -> dict:
        """Every parameter, JSON-serialisable; ``LayerNormConfig(**config.as_dict())`` rebuilds the config."""
        return implementation_last({name: list(value) if isinstance(value, tuple) else value
                                    for name, value in asdict(self).items()})


class LayerNormModel:
    """Bit-exact layernorm of one :class:`LayerNormConfig` on rows of ``features`` int8 values.

    Members
    -------
    config : LayerNormConfig
    layer : TinyMindLayerNorm
    input_dtype, output_dtype : type
        ``numpy.int8``.
    output_description : str
    """

    input_dtype = np.int8
    output_dtype = np.int8

    def __init__(self, config: LayerNormConfig):
        self.config = config
        self.layer = config.layer

    @property
    def output_description(self) -> str:
        layer = self.layer
        return (f"int8, zero point {layer.output_zero_point}, clamped to {layer.qmin}..{layer.qmax} "
                "(TinyMind QLayerNorm1D)")

    def check_rows(self, x: np.ndarray) -> np.ndarray:
        return check_rows(x, self.input_dtype, self.config.features)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.layer(self.check_rows(x))
