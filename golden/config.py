"""The configuration shared by the golden model, the generator and the testbench."""

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

MAX_N = 65536
MAX_LANES = 64
MIN_BETA_SCALE = 2.0 ** -26
MODES = ("tflite", "tinymind", "lut")
RECIPROCAL_METHODS = ("newton", "lut")
MAX_NEWTON_STEPS = 3
ROM_WIDTH_RANGE = (2, 31)
ACCUMULATOR_WIDTH_RANGE = (20, 64)
RECIPROCAL_BITS_RANGE = (1, 12)
OUTPUT_BITS_RANGE = (4, 16)
DIFF_RANGE = 256


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
    mode : str
        ``tflite`` (bit-exact with TFLite's reference kernel), ``tinymind`` (bit-exact with TinyMind's int8 softmax;
        β must be 1) or ``lut`` (the ``tflite`` datapath with the knobs below). The knobs apply to ``lut`` only;
        their defaults make ``lut`` identical to ``tflite``.
    rom_depth : int or None
        Exp ROM entries kept, 1..256: diffs of ``rom_depth`` or more below the row maximum count as 0. ``None``
        keeps every entry that can be non-zero.
    rom_width : int
        Bits kept of each Q0.31 exponential, 2..31: ``e`` is rounded half up to ``rom_width`` bits and saturated at
        ``2^rom_width − 1``.
    accumulator_width : int or None
        Width of the Q·.19 row sum, 20..64; a sum that does not fit saturates at ``2^width − 1``. ``None`` takes the
        width at which no row can saturate.
    reciprocal : str
        ``newton``: gemmlowp's 48/17 − 32/17·d seed and ``reciprocal_steps`` Newton–Raphson steps; ``lut``: a table
        of ``2^reciprocal_bits`` reciprocals indexed by the bits after the sum's leading one (as hls4ml does).
    reciprocal_steps : int
        Newton–Raphson steps, 0..3 (3 is TFLite's).
    reciprocal_bits : int
        Index bits of the reciprocal table, 1..12.
    output_bits : int
        Output width B, 4..16: probabilities on the 1/2^B grid with zero point −2^(B−1).
    """

    n: int = 64
    lanes: int = 4
    input_scale: float = 0.05
    beta: float = 1.0
    input_zero_point: int = 0
    mode: str = "tflite"
    rom_depth: int | None = None
    rom_width: int = 31
    accumulator_width: int | None = None
    reciprocal: str = "newton"
    reciprocal_steps: int = MAX_NEWTON_STEPS
    reciprocal_bits: int = 8
    output_bits: int = 8

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
        if self.mode not in MODES:
            raise ConfigError(f"mode={self.mode!r} is unknown; allowed: {', '.join(MODES)}")
        if self.mode == "tinymind" and float(np.float32(self.beta)) != 1.0:
            raise ConfigError(f"beta={self.beta!r} is not supported by mode tinymind (TinyMind's softmax has no β); "
                              "allowed: 1.0")
        if self.mode == "lut":
            self._check_knobs()
        else:
            for knob in fields(self):
                if knob.name in KNOBS and getattr(self, knob.name) != knob.default:
                    raise ConfigError(f"{knob.name}={getattr(self, knob.name)!r} applies to mode lut only; "
                                      f"mode {self.mode} fixes it at {knob.default!r}")

    def _check_knobs(self) -> None:
        if self.rom_depth is not None:
            _check_int("rom_depth", self.rom_depth, 1, DIFF_RANGE)
        _check_int("rom_width", self.rom_width, *ROM_WIDTH_RANGE)
        if self.accumulator_width is not None:
            _check_int("accumulator_width", self.accumulator_width, *ACCUMULATOR_WIDTH_RANGE)
        if self.reciprocal not in RECIPROCAL_METHODS:
            raise ConfigError(f"reciprocal={self.reciprocal!r} is unknown; allowed: {', '.join(RECIPROCAL_METHODS)}")
        _check_int("reciprocal_steps", self.reciprocal_steps, 0, MAX_NEWTON_STEPS)
        _check_int("reciprocal_bits", self.reciprocal_bits, *RECIPROCAL_BITS_RANGE)
        _check_int("output_bits", self.output_bits, *OUTPUT_BITS_RANGE)

    @property
    def beats(self) -> int:
        """Beats per row, ``n / lanes``."""
        return self.n // self.lanes

    def as_dict(self) -> dict:
        """All parameters; for modes other than ``lut`` the knobs, which they fix, are left out."""
        return {key: value for key, value in asdict(self).items() if self.mode == "lut" or key not in KNOBS}


KNOBS = ("rom_depth", "rom_width", "accumulator_width", "reciprocal", "reciprocal_steps", "reciprocal_bits",
         "output_bits")


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
