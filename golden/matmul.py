"""Bit-exact model of TFLite's int8 ``BATCH_MATMUL`` reference kernel: the engine of attention's scores and P·V.

For ``lhs`` ``[.., M, K]`` and ``rhs`` ``[.., K, N]`` (``[.., N, K]`` with ``adj_y``), leading dimensions equal::

    out[.., m, n] = clamp(MultiplyByQuantizedMultiplier(Σ_k (lhs[.., m, k] − lhs_zp)·(rhs[.., k, n] − rhs_zp), M, shift)
                          + output_zp, −128, 127)

with no bias and no activation (``reference_ops::BatchMatMul`` with int8 operands). The sum is TFLite's int32
accumulator (exact here, wrapped as int32); the multiplier is ``double(float32(lhs_scale · rhs_scale)) /
double(output_scale)`` through ``QuantizeMultiplier`` (:func:`~int8attn.golden.requant.quantize_multiplier`).
"""

from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np

from int8attn.golden.fixedpoint import wrap32
from int8attn.golden.params import TARGETS, ConfigError, Implementation, check_params, implementation_last, param
from int8attn.golden.requant import SHIFT_RANGE, multiply_by_quantized_multiplier, output_limits, quantize_multiplier

MAX_DIM = 4096
MAX_FOLD = 64
INT8_MIN, INT8_MAX = output_limits(8)


def matmul_multiplier(lhs_scale: float, rhs_scale: float, output_scale: float) -> tuple[int, int]:
    """TFLite's ``(multiplier, shift)`` of a BATCH_MATMUL (``shift > 0`` left); :class:`ConfigError` when the shift
    leaves −31..30."""
    with np.errstate(over="ignore", under="ignore"):
        product = float(np.float32(lhs_scale) * np.float32(rhs_scale))
    real = product / float(np.float32(output_scale))
    multiplier, shift = quantize_multiplier(real)
    if shift > SHIFT_RANGE[1]:
        raise ConfigError(f"lhs_scale·rhs_scale/output_scale={real!r} is out of range (shift {shift}); allowed: real "
                          "multipliers below 2^30")
    return multiplier, shift


def batch_matmul(lhs: np.ndarray, rhs: np.ndarray, *, lhs_zero_point: int, rhs_zero_point: int, multiplier: int,
                 shift: int, output_zero_point: int, adj_y: bool = False) -> np.ndarray:
    """TFLite's int8 BATCH_MATMUL on int8 ``lhs`` ``[.., M, K]`` and ``rhs`` ``[.., K, N]`` (``[.., N, K]`` with
    ``adj_y``); returns int8 ``[.., M, N]``."""
    right = np.swapaxes(rhs, -1, -2) if adj_y else rhs
    acc = wrap32((lhs.astype(np.int64) - lhs_zero_point) @ (right.astype(np.int64) - rhs_zero_point))
    scaled = multiply_by_quantized_multiplier(acc, multiplier, shift)
    return np.clip(wrap32(scaled + output_zero_point), INT8_MIN, INT8_MAX).astype(np.int8)


@dataclass(frozen=True)
class MatmulConfig(Implementation):
    """Parameters of one matmul unit: ``[M, K] · [K, N]`` products of int8 operands, one per frame.

    Parameters
    ----------
    m, k, n : int
        Rows of the LHS, the shared dimension, columns of the RHS; 1..4096.
    adj_y : bool
        The RHS is ``[N, K]`` (the ``Q·Kᵀ`` form), used transposed; else ``[K, N]``.
    pe : int
        Output columns computed in parallel, 1..64, dividing ``n``.
    simd : int
        Products of the shared dimension per cycle, 1..64, dividing ``k``.
    lhs_scale, rhs_scale, output_scale : float
        Scales (float32).
    lhs_zero_point, rhs_zero_point, output_zero_point : int
        Zero points, −128..127.
    target, interface : str
        See :class:`~int8attn.golden.params.Implementation`.
    """

    IMPLEMENTED_TARGETS: ClassVar[tuple[str, ...]] = TARGETS

    m: int = param(4, kind="int", low=1, high=MAX_DIM, help="LHS rows (M)")
    k: int = param(16, kind="int", low=1, high=MAX_DIM, help="shared dimension (K)")
    n: int = param(4, kind="int", low=1, high=MAX_DIM, help="RHS columns (N)")
    adj_y: bool = param(False, kind="flag", help="the RHS is stored [N, K] and used transposed (TFLite's adj_y)")
    pe: int = param(1, kind="int", low=1, high=MAX_FOLD, structural=True, help="output columns in parallel, dividing n")
    simd: int = param(1, kind="int", low=1, high=MAX_FOLD, structural=True,
                      help="products of the shared dimension per cycle, dividing k")
    lhs_scale: float = param(0.05, kind="float", help="LHS scale, float32")
    lhs_zero_point: int = param(0, kind="int", low=INT8_MIN, high=INT8_MAX, help="LHS zero point")
    rhs_scale: float = param(0.05, kind="float", help="RHS scale, float32")
    rhs_zero_point: int = param(0, kind="int", low=INT8_MIN, high=INT8_MAX, help="RHS zero point")
    output_scale: float = param(0.5, kind="float", help="output scale, float32")
    output_zero_point: int = param(0, kind="int", low=INT8_MIN, high=INT8_MAX, help="output zero point")

    def __post_init__(self):
        super().__post_init__()
        check_params(self)
        for name, fold, whole in (("pe", self.pe, "n"), ("simd", self.simd, "k")):
            size = getattr(self, whole)
            if size % fold:
                divisors = ", ".join(str(d) for d in range(1, min(size, MAX_FOLD) + 1) if size % d == 0)
                raise ConfigError(f"{name}={fold} does not divide {whole}={size}; allowed: {divisors}")
        fast, limit = ("pe", self.pe) if self.adj_y else ("simd", self.simd)
        if limit > self.m:
            raise ConfigError(f"{fast}={limit} is out of range with adj_y={self.adj_y}; allowed: at most m={self.m} "
                              "(the RHS stream would outpace the engine)")
        self.multiplier()

    @property
    def frame_elements(self) -> int:
        """Elements of a frame's LHS, ``m · k``."""
        return self.m * self.k

    @property
    def folds(self) -> int:
        """Output beats per LHS row, ``n / pe``."""
        return self.n // self.pe

    @property
    def beats(self) -> int:
        """Input beats per LHS row, ``k / simd``."""
        return self.k // self.simd

    OPERAND_SHAPE: ClassVar[tuple[str, ...]] = ("m", "k", "n")
    """The fields :meth:`from_operands` takes from the operands' shapes."""

    @classmethod
    def from_operands(cls, lhs: np.ndarray, rhs: np.ndarray, **parameters) -> "MatmulConfig":
        """The configuration of ``lhs`` ``[.., M, K]`` and ``rhs`` (``[.., K, N]``, ``[.., N, K]`` with ``adj_y``),
        int8 with equal leading dimensions; :class:`ConfigError` naming the operand otherwise."""
        for name, array in (("lhs", lhs), ("rhs", rhs)):
            if array.dtype != np.int8 or array.ndim < 2:
                raise ConfigError(f"{name} has dtype {array.dtype} and shape {list(array.shape)}; allowed: int8 with "
                                  "at least 2 dimensions")
        m, k = lhs.shape[-2:]
        rhs_k, n = rhs.shape[-1:-3:-1] if parameters.get("adj_y") else rhs.shape[-2:]
        expected = f"[.., {'N, ' if parameters.get('adj_y') else ''}{k}{'' if parameters.get('adj_y') else ', N'}]"
        if rhs_k != k or rhs.shape[:-2] != lhs.shape[:-2]:
            raise ConfigError(f"rhs has shape {list(rhs.shape)}; allowed: {expected} with lhs's leading dimensions "
                              f"{list(lhs.shape[:-2])} (lhs has shape {list(lhs.shape)})")
        return cls(m=m, k=k, n=n, **parameters)

    def multiplier(self) -> tuple[int, int]:
        """TFLite's ``(multiplier, shift)``."""
        return matmul_multiplier(self.lhs_scale, self.rhs_scale, self.output_scale)

    @property
    def rhs_shape(self) -> tuple[int, int]:
        return (self.n, self.k) if self.adj_y else (self.k, self.n)

    def as_dict(self) -> dict:
        """Every parameter; ``MatmulConfig(**config.as_dict())`` rebuilds the config."""
        return implementation_last(asdict(self))


class MatmulModel:
    """Bit-exact BATCH_MATMUL of one :class:`MatmulConfig` on frames: a frame is one instance's LHS ``[M, K]`` and
    RHS (``rhs_shape``), flattened; called with a mapping ``{"lhs": rows, "rhs": rows}`` of such frames, or with
    arrays of instances ``[.., M, K]`` and ``[.., *rhs_shape]`` through :meth:`instances`.

    Members
    -------
    config : MatmulConfig
    multiplier, shift : int
    input_dtype, output_dtype : type
        ``numpy.int8``.
    output_description : str
    """

    input_dtype = np.int8
    output_dtype = np.int8

    def __init__(self, config: MatmulConfig):
        self.config = config
        self.multiplier, self.shift = config.multiplier()

    @property
    def output_description(self) -> str:
        return (f"int8 [{self.config.m}, {self.config.n}] a frame, zero point {self.config.output_zero_point}, scale "
                f"{self.config.output_scale}")

    def instances(self, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """``[.., M, N]`` products of ``lhs`` ``[.., M, K]`` and ``rhs`` ``[.., *rhs_shape]``; ``ValueError`` on
        other shapes or dtypes."""
        config = self.config
        for name, array, shape in (("lhs", lhs, (config.m, config.k)), ("rhs", rhs, config.rhs_shape)):
            if array.dtype != np.int8 or array.shape[-2:] != shape:
                raise ValueError(f"{name} must be int8 [.., {shape[0]}, {shape[1]}], got {array.dtype} "
                                 f"{list(array.shape)}")
        if lhs.shape[:-2] != rhs.shape[:-2]:
            raise ValueError(f"lhs and rhs must have the same leading dimensions, got {list(lhs.shape[:-2])} and "
                             f"{list(rhs.shape[:-2])}")
        return batch_matmul(lhs, rhs, lhs_zero_point=config.lhs_zero_point, rhs_zero_point=config.rhs_zero_point,
                            multiplier=self.multiplier, shift=self.shift, output_zero_point=config.output_zero_point,
                            adj_y=config.adj_y)

    def __call__(self, frames: dict[str, np.ndarray]) -> np.ndarray:
        config = self.config
        lhs = np.asarray(frames["lhs"]).reshape(-1, config.m, config.k)
        rhs = np.asarray(frames["rhs"]).reshape(-1, *config.rhs_shape)
        return self.instances(lhs, rhs).reshape(len(lhs), -1)
