"""The softmax configuration shared by the golden model, the generator and the testbench."""

from dataclasses import asdict, dataclass, fields
from typing import ClassVar

import numpy as np

from int8attn.golden.base2 import FRAC_BITS_RANGE, GRID_SHIFT_RANGE, ITA_CHUNK
from int8attn.golden.hccs import B_RANGE, DMAX_RANGE, INV_SHIFT_RANGE, RECIPROCALS, S_RANGE
from int8attn.golden.params import TARGETS, ConfigError, Implementation, check_params, implementation_last, param

MAX_N = 65536
MAX_LANES = 64
MIN_BETA_SCALE = 2.0 ** -26
MODES = ("tflite", "tinymind", "lut", "hccs", "base2", "poly")
RECIPROCAL_METHODS = ("newton", "lut")
MAX_NEWTON_STEPS = 3
ROM_WIDTH_RANGE = (2, 31)
ACCUMULATOR_WIDTH_RANGE = (20, 64)
RECIPROCAL_BITS_RANGE = (1, 12)
OUTPUT_BITS_RANGE = (4, 16)
DIFF_RANGE = 256
KNOBS_GROUP = "knobs of --mode lut (their defaults give tflite)"
HCCS_GROUP = "knobs of --mode hccs (aie4ml's clipped-linear softmax)"
BASE2_GROUP = "knobs of --mode base2 (ITA's shift-based softmax)"
POLY_GROUP = "knobs of --mode poly (polynomial attention)"
HCCS_SUMS = ("wide", "int16")
POLY_DEGREES = (1, 3)


@dataclass(frozen=True)
class SoftmaxConfig(Implementation):
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
        β must be 1) or ``lut`` (the ``tflite`` datapath with the knobs below), or a surrogate
        (:mod:`int8attn.golden.surrogates`): ``hccs``, ``base2`` or ``poly``. Each mode takes its own knobs
        (:data:`MODE_KNOBS`); the ``lut`` knobs' defaults make ``lut`` identical to ``tflite``.
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
        Output width B, 4..16: probabilities on the 1/2^B grid with zero point −2^(B−1); in mode ``hccs`` 8 (uint8
        codes) or 16 (int16 Q15 codes).
    hccs_b, hccs_s, hccs_dmax, hccs_reciprocal, hccs_inv_shift, hccs_sum
        Mode ``hccs`` (:mod:`int8attn.golden.hccs`): the score ``B − S·min(d, Dmax)``, the ``div`` or ``clb``
        reciprocal, its fraction bits, and the sum rule (``wide``: as wide as ``N·B`` needs; ``int16``: aie4ml's
        ``N·B ≤ 32767``).
    base2_chunk, base2_grid_shift, base2_frac_bits, base2_requantize
        Mode ``base2`` (:mod:`int8attn.golden.base2`): columns per streaming step, the input LSB ``ln 2 / 2^g``, and
        our extensions on whole rows: fraction bits of the exponent, distances requantized from ``input_scale``.
    poly_n, poly_b, poly_delta
        Mode ``poly`` (:class:`~int8attn.golden.surrogates.PolyModel`): degree, offset and floor.
    target, interface : str
        See :class:`~int8attn.golden.params.Implementation`.
    """

    IMPLEMENTED_TARGETS: ClassVar[tuple[str, ...]] = TARGETS

    n: int = param(64, kind="int", low=1, high=MAX_N, help="row length N")
    lanes: int = param(4, kind="int", low=1, high=MAX_LANES, structural=True,
                       help="elements per beat P, dividing N")
    input_scale: float = param(0.05, kind="float", help="scale of the int8 input, taken as float32")
    beta: float = param(1.0, kind="float", help="softmax beta, taken as float32")
    input_zero_point: int = param(0, kind="int", low=-128, high=127, help="zero point of the input; it cancels")
    mode: str = param("tflite", kind="choice", choices=MODES,
                      help="tflite: bit-exact TFLite; tinymind: bit-exact TinyMind (beta 1); lut: tflite with the "
                           "knobs below")
    rom_depth: int | None = param(None, kind="int", low=1, high=DIFF_RANGE, optional=True, group=KNOBS_GROUP,
                                  help="exp ROM entries kept (default: all that can be non-zero)")
    rom_width: int = param(31, kind="int", low=ROM_WIDTH_RANGE[0], high=ROM_WIDTH_RANGE[1], group=KNOBS_GROUP,
                           help="bits kept of each Q0.31 exponential")
    accumulator_width: int | None = param(None, kind="int", low=ACCUMULATOR_WIDTH_RANGE[0],
                                          high=ACCUMULATOR_WIDTH_RANGE[1], optional=True, group=KNOBS_GROUP,
                                          help="saturating row-sum width (default: never saturates)")
    reciprocal: str = param("newton", kind="choice", choices=RECIPROCAL_METHODS, group=KNOBS_GROUP,
                            help="Newton-Raphson steps or a table on the sum's leading bits")
    reciprocal_steps: int = param(MAX_NEWTON_STEPS, kind="int", low=0, high=MAX_NEWTON_STEPS, group=KNOBS_GROUP,
                                  help="Newton-Raphson steps")
    reciprocal_bits: int = param(8, kind="int", low=RECIPROCAL_BITS_RANGE[0], high=RECIPROCAL_BITS_RANGE[1],
                                 group=KNOBS_GROUP, help="index bits of the reciprocal table")
    output_bits: int = param(8, kind="int", low=OUTPUT_BITS_RANGE[0], high=OUTPUT_BITS_RANGE[1], group=KNOBS_GROUP,
                             help="output width B: scale 2^-B, zero point -2^(B-1) (mode lut); 8 or 16 (mode hccs)")
    hccs_b: int = param(1024, kind="int", low=B_RANGE[0], high=B_RANGE[1], group=HCCS_GROUP,
                        help="score B of the row maximum")
    hccs_s: int = param(48, kind="int", low=S_RANGE[0], high=S_RANGE[1], group=HCCS_GROUP,
                        help="slope S: the score drops by S per input LSB below the maximum")
    hccs_dmax: int = param(16, kind="int", low=DMAX_RANGE[0], high=DMAX_RANGE[1], group=HCCS_GROUP,
                           help="clip distance Dmax: elements further below the maximum score B - S*Dmax")
    hccs_reciprocal: str = param("div", kind="choice", choices=RECIPROCALS, group=HCCS_GROUP,
                                 help="div: floor division by the row sum; clb: the power of two 2^-floor(log2 sum)")
    hccs_inv_shift: int = param(15, kind="int", low=INV_SHIFT_RANGE[0], high=INV_SHIFT_RANGE[1], group=HCCS_GROUP,
                                help="fraction bits of the 8-bit reciprocal")
    hccs_sum: str = param("wide", kind="choice", choices=HCCS_SUMS, group=HCCS_GROUP,
                          help="wide: the sum register holds N*B; int16: aie4ml's rule N*B <= 32767")
    base2_chunk: int = param(ITA_CHUNK, kind="int", low=1, high=MAX_N, group=BASE2_GROUP,
                             help="columns per streaming step (ITA: 16); N or more gives the exact two-pass sum")
    base2_grid_shift: int = param(0, kind="int", low=GRID_SHIFT_RANGE[0], high=GRID_SHIFT_RANGE[1],
                                  group=BASE2_GROUP,
                                  help="input LSB ln2/2^g: 0 shifts by max - x, 5 is ITA's RTL")
    base2_frac_bits: int = param(0, kind="int", low=FRAC_BITS_RANGE[0], high=FRAC_BITS_RANGE[1],
                                 group=BASE2_GROUP,
                                 help="fraction bits F <= g of the exponent, 2^-f piecewise linear; 0: ITA")
    base2_requantize: bool = param(False, kind="flag", group=BASE2_GROUP,
                                   help="requantize distances from input_scale onto the ln2/2^g grid (whole rows)")
    poly_n: int = param(2, kind="int", low=POLY_DEGREES[0], high=POLY_DEGREES[1], group=POLY_GROUP,
                        help="degree n of [ReLU(x - max + b)]^n + |delta|")
    poly_b: float = param(2.0, kind="float", group=POLY_GROUP,
                          help="offset b (real); rounded onto the input grid, 1..255 LSBs")
    poly_delta: float = param(1e-3, kind="float", group=POLY_GROUP,
                              help="floor |delta| (real, in input units to the power n); rounded onto that grid")

    def __post_init__(self):
        super().__post_init__()
        check_params(self, ("n", "lanes"))
        if self.n % self.lanes:
            divisors = [d for d in range(1, min(self.n, MAX_LANES) + 1) if self.n % d == 0]
            raise ConfigError(f"lanes={self.lanes} does not divide n={self.n}; allowed: {divisors}")
        check_params(self, ("input_scale", "beta", "input_zero_point"))
        product = float(np.float32(self.beta)) * float(np.float32(self.input_scale))
        if product <= MIN_BETA_SCALE:
            raise ConfigError(f"beta·input_scale={product:g} is too small; it must exceed 2^-26 ≈ {MIN_BETA_SCALE:.3g}")
        check_params(self, ("mode",))
        if self.mode == "tinymind" and float(np.float32(self.beta)) != 1.0:
            raise ConfigError(f"beta={self.beta!r} is not supported by mode tinymind (TinyMind's softmax has no β); "
                              "allowed: 1.0")
        knobs = MODE_KNOBS.get(self.mode, ())
        check_params(self, knobs)
        for knob in fields(self):
            if knob.name in ALL_KNOBS and knob.name not in knobs and getattr(self, knob.name) != knob.default:
                owners = " or ".join(mode for mode, names in MODE_KNOBS.items() if knob.name in names)
                raise ConfigError(f"{knob.name}={getattr(self, knob.name)!r} applies to mode {owners} only; "
                                  f"mode {self.mode} fixes it at {knob.default!r}")
        if self.mode in SURROGATE_MODES:
            from int8attn.golden.surrogates import check_surrogate

            check_surrogate(self)

    @property
    def beats(self) -> int:
        """Beats per row, ``n / lanes``."""
        return self.n // self.lanes

    def as_dict(self) -> dict:
        """All parameters but the knobs of other modes, which this mode fixes."""
        knobs = MODE_KNOBS.get(self.mode, ())
        return implementation_last({key: value for key, value in asdict(self).items()
                                    if key not in ALL_KNOBS or key in knobs})


MODE_KNOBS: dict[str, tuple[str, ...]] = {
    "lut": ("rom_depth", "rom_width", "accumulator_width", "reciprocal", "reciprocal_steps", "reciprocal_bits",
            "output_bits"),
    "hccs": ("hccs_b", "hccs_s", "hccs_dmax", "hccs_reciprocal", "hccs_inv_shift", "hccs_sum", "output_bits"),
    "base2": ("base2_chunk", "base2_grid_shift", "base2_frac_bits", "base2_requantize"),
    "poly": ("poly_n", "poly_b", "poly_delta"),
}
"""The knobs each mode takes; every other knob stays at its default."""
ALL_KNOBS = tuple(dict.fromkeys(name for names in MODE_KNOBS.values() for name in names))
KNOBS = MODE_KNOBS["lut"]
SURROGATE_MODES = ("hccs", "base2", "poly")
"""Modes that approximate softmax with cheaper integer arithmetic (:mod:`int8attn.golden.surrogates`)."""
