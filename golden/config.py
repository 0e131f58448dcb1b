"""The configuration shared by the golden model, the generator and the testbench."""

import math
from dataclasses import asdict, dataclass

import numpy as np

MAX_N = 65536
MAX_LANES = 64
MIN_BETA_SCALE = 2.0 ** -26


class ConfigError(ValueError):
    """A parameter out of its legal range; the message names the parameter and the range."""


@dataclass(frozen=True)
class SoftmaxConfig:
    """Parameters of one softmax unit.

    Parameters
    ----------
    n : int
        Row length, 1..65536.
    lanes : int
        Elements per beat, 1..64, dividing ``n``.
    input_scale : float
        Scale of the int8 input (finite, > 0); taken as float32, as TFLite stores it.
    beta : float
        Softmax β (finite, > 0); taken as float32. ``beta · input_scale`` must exceed 2^−26.
    input_zero_point : int
        Zero point of the input, −128..127. It cancels in ``x − max(x)`` and changes no output.
    """

    n: int = 64
    lanes: int = 4
    input_scale: float = 0.05
    beta: float = 1.0
    input_zero_point: int = 0

    def __post_init__(self):
        _check_int("n", self.n, 1, MAX_N)
        _check_int("lanes", self.lanes, 1, MAX_LANES)
        if self.n % self.lanes:
            divisors = [d for d in range(1, min(self.n, MAX_LANES) + 1) if self.n % d == 0]
            raise ConfigError(f"lanes={self.lanes} does not divide n={self.n}; allowed: {divisors}")
        _check_positive("input_scale", self.input_scale)
        _check_positive("beta", self.beta)
        _check_int("input_zero_point", self.input_zero_point, -128, 127)
        product = float(np.float32(self.beta)) * float(np.float32(self.input_scale))
        if product <= MIN_BETA_SCALE:
            raise ConfigError(f"beta·input_scale={product:g} is too small; it must exceed 2^-26 ≈ {MIN_BETA_SCALE:.3g}")

    @property
    def beats(self) -> int:
        """Beats per row, ``n / lanes``."""
        return self.n // self.lanes

    def as_dict(self) -> dict:
        return asdict(self)


def _check_int(name: str, value, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ConfigError(f"{name}={value!r} is out of range; allowed: integers {low}..{high}")


def _check_positive(name: str, value) -> None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number <= 0 or not math.isfinite(float(np.float32(number))) \
            or float(np.float32(number)) == 0:
        raise ConfigError(f"{name}={value!r} is out of range; allowed: a finite number > 0 (as float32)")
