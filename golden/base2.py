"""Bit-exact model of ITA's shift-based (base-2) softmax, ``streamingPartialSoftmax`` of GitHub pulp-platform/ITA.

The reference is ``PyITA/softmax.py``, function ``streamingPartialSoftmax(x, mask, integerize=True)``, the golden
model of ITA's ``src/ita_softmax.sv``. Per row of ``N`` int8 logits, the row is read in chunks of ``PE = 16``
columns starting at column 0 (the last chunk holds ``N mod 16`` columns). With ``shift(d)`` the base-2 exponent
of a distance ``d ≥ 0`` below the maximum:

* stage 1, per chunk: ``cmax = max(chunk)``; if ``cmax > gmax`` (``gmax`` starts at −128), the running sum is
  shifted, ``Σ = (Σ >> shift(cmax − gmax)) + …``, and ``gmax = cmax``; then ``Σ += Σ_chunk 256 >> shift(gmax − x)``;
* stage 2: ``inv = floor(65280 / Σ)`` (``65280 = (2^8 − 1)·2^8``) and ``out = inv >> shift(gmax − x)``, as uint8.

All shifts floor. Because the running sum is floored each time the maximum grows, the result depends on the
chunking; ``chunk = N`` (or more) gives the exact two-pass sum ``Σ = Σ 256 >> shift(max − x)``.

What the reference does beyond the issue's summary:

* The exponent. ``shift(d) = floor(d·eps_max + 0.5 + eps_float32)`` (round half up) with ``eps_max`` the logit LSB
  in units of ``ln 2``. ITA's ``softmax.py`` exists in two versions: with ``range_scale = 32``,
  ``eps_max = range_scale·B/2^B = 1`` and ``shift(d) = d`` (the issue's summary, ``grid_shift = 0``); without it,
  ``eps_max = B/2^B = 1/32`` and ``shift(d) = (d + 16) >> 5``, which is what ``ita_softmax.sv`` computes
  (``(diff >> 5) + diff[4]``, a 4-bit shift of at most 8): ``grid_shift = 5``. ``grid_shift = g`` means an LSB of
  ``ln 2 / 2^g`` and ``shift(d) = (d + 2^(g−1)) >> g``; the running-sum shift is rounded the same way, from
  ``cmax − gmax``, so with ``g > 0`` it need not equal the difference of the element shifts.
* Large shifts. With ``grid_shift = 0`` shifts reach 255. An element 8 below the maximum still adds 1 to ``Σ``, one
  9 or more below adds 0, and every output 8 or more below the maximum is 0 (``inv ≤ 255``). numpy defines right
  shifts by the word width or more as 0 (in C they would be undefined); here every shift is ``floor(v / 2^shift)``.
* Widths and saturation. ``Σ`` is int32 in the reference, at most ``256·N``. The row maximum adds 256 in its chunk
  and is never shifted afterwards, so ``Σ ≥ 256``, ``inv ≤ 255`` and no output saturates or divides by zero.
* Signs. The logits are signed int8; ``gmax − x`` is taken in int32, so distances are 0..255 with no wrap.
* Masking. The reference's ``mask`` argument (masked elements add 0 to ``Σ`` and get distance 0 in stage 2, so they
  read ``inv``) is not modelled: every element takes part.

Our extensions (not ITA's; whole rows only, the exact two-pass sum), :func:`base2_extended_softmax`:

* Fraction bits ``F`` (Softermax's idea): the distance keeps ``F`` fraction bits of its base-2 exponent,
  ``e = (d + half) >> (g − F)`` (``F ≤ g``), with integer part ``i = e >> F`` and fraction ``f = e mod 2^F``, and the
  term is ``m(f) >> i`` with ``m(f) ≈ 256·2^(−f/2^F)`` piecewise linear on :data:`SEGMENT_ENDS` (four segments, their
  ends rounded): segment ``k = f >> (F − 2)``, ``m = E[k] − ((E[k] − E[k+1])·r >> (F − 2))`` with ``r`` the remaining
  bits (``F < 2``: ``m = E[f << (2 − F)]``). Outputs are ``(inv·m(f)) >> (8 + i)``. ``F = 0`` is ITA's arithmetic.
* Requantized distances: logits of any scale ``s`` are put on the ``ln 2 / 2^g`` grid by requantizing each distance,
  ``d_g = (d·M + 2^15) >> 16`` with ``M = floor(s·2^(g+16)/ln 2 + 1/2)`` (``s`` as float32). Softmax depends on
  distances only, so this is a requantizer in front of the unit without its clamp: nothing saturates.
"""

import math
from numbers import Integral

import numpy as np

from int8attn.golden.params import ConfigError

ITA_CHUNK = 16
ONE = 256
NUMERATOR = 255 * 256
GRID_SHIFT_RANGE = (0, 8)
MAX_SHIFT = 9
FRAC_BITS_RANGE = (0, 8)
SEGMENT_BITS = 2
SEGMENT_ENDS = tuple(math.floor(ONE * 2.0 ** (-k / (1 << SEGMENT_BITS)) + 0.5) for k in range((1 << SEGMENT_BITS) + 1))
"""``256·2^(−k/4)`` rounded, ``k`` = 0..4: the ends of the fraction's linear segments."""
DISTANCE_SHIFT = 16
MULTIPLIER_RANGE = (1, 1 << 24)


def nearest_grid_shift(input_scale: float) -> int:
    """The grid shift ``g`` in :data:`GRID_SHIFT_RANGE` whose input LSB ``ln 2 / 2^g`` is nearest to ``input_scale``
    (taken as float32) in log scale."""
    low, high = GRID_SHIFT_RANGE
    return int(min(max(round(math.log2(math.log(2) / float(np.float32(input_scale)))), low), high))


def exponent_shift(distance: np.ndarray, grid_shift: int) -> np.ndarray:
    """ITA's base-2 exponent of distances ``distance ≥ 0``: ``distance / 2^grid_shift`` rounded half up."""
    half = (1 << grid_shift) >> 1
    return (distance + half) >> grid_shift


def base2_softmax(x: np.ndarray, chunk: int = ITA_CHUNK, grid_shift: int = 0) -> np.ndarray:
    """uint8 codes of ITA's ``streamingPartialSoftmax`` along the last axis of int8 rows.

    Parameters
    ----------
    x : numpy.ndarray
        int8 logits, shape ``(..., N)``, ``N ≥ 1``.
    chunk : int
        Columns per streaming step, ≥ 1: 16 is ITA's; ``N`` or more gives the exact two-pass sum.
    grid_shift : int
        Logit LSB ``ln 2 / 2^grid_shift``, 0..8: 0 is the ``range_scale = 32`` reference (``shift = max − x``),
        5 is ITA's RTL and its ``eps_max = 1/32`` reference.

    Returns
    -------
    numpy.ndarray
        uint8 codes of ``x``'s shape: scale 1/255 (ITA's scripts read ``code / 255``), zero point 0.

    Raises
    ------
    ConfigError
        ``chunk`` or ``grid_shift`` out of range, or ``x`` not int8 rows of at least one element.
    """
    if isinstance(chunk, bool) or not isinstance(chunk, Integral) or chunk < 1:
        raise ConfigError(f"base2 chunk must be an integer >= 1, got {chunk!r}")
    low, high = GRID_SHIFT_RANGE
    if isinstance(grid_shift, bool) or not isinstance(grid_shift, Integral) or not low <= grid_shift <= high:
        raise ConfigError(f"base2 grid_shift must be an integer in {low}..{high}, got {grid_shift!r}")
    x = np.asarray(x)
    if x.dtype != np.int8 or x.ndim < 1 or x.shape[-1] < 1:
        raise ConfigError(f"base2 input must be int8 rows of at least one element, got {x.dtype} {x.shape}")
    n = x.shape[-1]
    rows = x.reshape(-1, n).astype(np.int64)
    running_max = np.full((rows.shape[0], 1), -128, dtype=np.int64)
    total = np.zeros((rows.shape[0], 1), dtype=np.int64)
    for start in range(0, n, chunk):
        part = rows[:, start:start + chunk]
        chunk_max = part.max(axis=1, keepdims=True)
        grows = chunk_max > running_max
        sum_shift = np.where(grows, exponent_shift(chunk_max - running_max, grid_shift), 0)
        running_max = np.where(grows, chunk_max, running_max)
        shift = np.minimum(exponent_shift(running_max - part, grid_shift), MAX_SHIFT)
        total = (total >> np.minimum(sum_shift, 62)) + (ONE >> shift).sum(axis=1, keepdims=True)
    inv = NUMERATOR // total
    shift = np.minimum(exponent_shift(running_max - rows, grid_shift), MAX_SHIFT)
    return (inv >> shift).astype(np.uint8).reshape(x.shape)


def fraction_mantissa(fraction: np.ndarray, frac_bits: int) -> np.ndarray:
    """``m(f) ≈ 256·2^(−f/2^F)`` of ``F``-bit fractions ``f``, piecewise linear on :data:`SEGMENT_ENDS`."""
    ends = np.array(SEGMENT_ENDS, dtype=np.int64)
    fraction = np.asarray(fraction, dtype=np.int64)
    if frac_bits <= SEGMENT_BITS:
        return ends[fraction << (SEGMENT_BITS - frac_bits)]
    rest = frac_bits - SEGMENT_BITS
    segment, offset = fraction >> rest, fraction & ((1 << rest) - 1)
    return ends[segment] - (((ends[segment] - ends[segment + 1]) * offset) >> rest)


def distance_multiplier(input_scale: float, grid_shift: int) -> int:
    """``M = floor(s·2^(g+16)/ln 2 + 1/2)``, which requantizes distances of scale ``s`` onto ``ln 2 / 2^g``."""
    return math.floor(float(np.float32(input_scale)) * 2.0 ** (grid_shift + DISTANCE_SHIFT) / math.log(2) + 0.5)


def exponent_parts(distance: np.ndarray, grid_shift: int, frac_bits: int = 0, multiplier: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(min(i, 9), m(f))`` of distances ``d ≥ 0`` (module docstring): the term is ``m >> i``, the output
    ``(inv·m) >> (8 + i)``."""
    distance = np.asarray(distance, dtype=np.int64)
    if multiplier is not None:
        distance = (distance * multiplier + (1 << (DISTANCE_SHIFT - 1))) >> DISTANCE_SHIFT
    exponent = exponent_shift(distance, grid_shift - frac_bits)
    whole = np.minimum(exponent >> frac_bits, MAX_SHIFT)
    return whole, fraction_mantissa(exponent & ((1 << frac_bits) - 1), frac_bits)


def base2_extended_softmax(x: np.ndarray, grid_shift: int, frac_bits: int = 0, multiplier: int | None = None
                           ) -> np.ndarray:
    """uint8 codes of whole-row base-2 softmax with ``frac_bits`` fraction bits and, given ``multiplier``, requantized
    distances (module docstring); ``frac_bits = 0`` without ``multiplier`` is ``base2_softmax(x, chunk=N)``.

    Raises
    ------
    ConfigError
        ``frac_bits`` above ``grid_shift`` or outside 0..8, ``multiplier`` outside 1..2^20.
    """
    if not FRAC_BITS_RANGE[0] <= frac_bits <= min(grid_shift, FRAC_BITS_RANGE[1]):
        raise ConfigError(f"base2 frac_bits must be an integer in 0..grid_shift={grid_shift}, got {frac_bits!r}")
    if multiplier is not None and not MULTIPLIER_RANGE[0] <= multiplier <= MULTIPLIER_RANGE[1]:
        raise ConfigError(f"base2 distance multiplier must be in {MULTIPLIER_RANGE[0]}..{MULTIPLIER_RANGE[1]}, "
                          f"got {multiplier!r}")
    x = np.asarray(x)
    if x.dtype != np.int8 or x.ndim < 1 or x.shape[-1] < 1:
        raise ConfigError(f"base2 input must be int8 rows of at least one element, got {x.dtype} {x.shape}")
    rows = x.reshape(-1, x.shape[-1]).astype(np.int64)
    whole, mantissa = exponent_parts(rows.max(axis=1, keepdims=True) - rows, grid_shift, frac_bits, multiplier)
    inv = NUMERATOR // (mantissa >> whole).sum(axis=1, keepdims=True)
    return ((inv * mantissa) >> (8 + whole)).astype(np.uint8).reshape(x.shape)
