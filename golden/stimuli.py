"""Shared stimuli: the rows that tests, testbenches, the accuracy report, the bench and the golden vectors draw.

int8 rows (softmax inputs) come in named kinds:

``uniform``
    Every int8 value equally likely.
``normal``
    normal(0, 20), rounded and clipped.
``peaked``
    Like attention scores: a noisy floor, normal(−40, 12), and one to three large logits in 60..127 per row.
``narrow``
    Every element within :data:`NARROW_SPAN` below a random row maximum: the widest row sums.

int32 rows (accumulators, the requantizer's input) come in kinds ``uniform`` (every int32), ``dense`` (sums of int8
products: normal with a standard deviation of 2^15) and ``small`` (−2^10..2^10, where rounding ties are common).
Directed rows hold the extremes of each type. :func:`check_rows` is the models' check of the rows they are given.
"""

from collections.abc import Iterator

import numpy as np

INT8_KINDS = ("uniform", "normal", "peaked", "narrow")
MIXED_KINDS = ("uniform", "normal", "peaked")
INT32_KINDS = ("uniform", "dense", "small")
NARROW_SPAN = 4
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
DENSE_SIGMA = 1 << 15
SMALL_RANGE = 1 << 10


def check_rows(x: np.ndarray, dtype: type, width: int) -> np.ndarray:
    """``x`` as an array of ``dtype`` rows of ``width`` elements, shape ``(rows, width)``; ``ValueError`` otherwise."""
    x = np.asarray(x)
    if x.dtype != dtype:
        raise ValueError(f"rows must be {np.dtype(dtype).name}, got {x.dtype}")
    if x.ndim != 2 or x.shape[1] != width:
        raise ValueError(f"rows must have shape (rows, {width}), got {x.shape}")
    return x


def _generator(rng: np.random.Generator | int) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def int8_rows(kind: str, n: int, rows: int, rng: np.random.Generator | int = 0) -> np.ndarray:
    """``rows × n`` int8 rows of one of :data:`INT8_KINDS`; ``rng`` is a generator or a seed."""
    rng = _generator(rng)
    if kind == "uniform":
        values = rng.integers(-128, 128, (rows, n))
    elif kind == "normal":
        values = np.rint(rng.normal(0, 20, (rows, n)))
    elif kind == "peaked":
        values = np.rint(rng.normal(-40, 12, (rows, n)))
        peaks = rng.integers(1, 4, rows)
        for row, count in enumerate(peaks):
            columns = rng.choice(n, size=min(count, n), replace=False)
            values[row, columns] = rng.integers(60, 128, len(columns))
    elif kind == "narrow":
        top = rng.integers(-128 + NARROW_SPAN, 128, (rows, 1))
        values = top - rng.integers(0, NARROW_SPAN + 1, (rows, n))
    else:
        raise ValueError(f"row kind {kind!r} is unknown; allowed: {', '.join(INT8_KINDS)}")
    return np.clip(values, -128, 127).astype(np.int8)


def mixed_int8_rows(count: int, n: int, rng: np.random.Generator) -> Iterator[tuple[str, np.ndarray]]:
    """``count`` labelled rows, cycling through :data:`MIXED_KINDS`."""
    for index in range(count):
        kind = MIXED_KINDS[index % len(MIXED_KINDS)]
        yield kind, int8_rows(kind, n, 1, rng)[0]


def directed_int8_rows(n: int, rng: np.random.Generator, rom_depth: int = 256) -> Iterator[tuple[str, np.ndarray]]:
    """Corner cases: equal, one-hot, extremes, alternating, the end of an exp ROM of ``rom_depth`` entries, distinct
    values, a ramp."""
    yield "all 0", np.zeros(n, dtype=np.int8)
    yield "all equal", np.full(n, rng.integers(-128, 128), dtype=np.int8)
    for position in sorted({0, n // 2, n - 1}):
        row = np.zeros(n, dtype=np.int8)
        row[position] = 127
        yield f"one hot at {position}", row
    yield "all -128", np.full(n, -128, dtype=np.int8)
    yield "all 127", np.full(n, 127, dtype=np.int8)
    alternating = np.where(np.arange(n) % 2 == 0, -128, 127).astype(np.int8)
    yield "alternating -128/127", alternating
    yield "alternating 127/-128", (-1 - alternating).astype(np.int8)
    single = np.full(n, -128, dtype=np.int8)
    single[rng.integers(n)] = 127
    yield "one 127, rest -128 (diff -255)", single
    smallest = 1 - rom_depth
    edge = np.full(n, 127 + smallest)
    if smallest > -255:
        edge[1::2] = 126 + smallest
    edge[rng.integers(n)] = 127
    yield f"diffs at {smallest}, the last exp ROM entry, and one below", edge.astype(np.int8)
    distinct = np.concatenate([rng.permutation(256)[:min(256, n - start)] for start in range(0, n, 256)]) - 128
    yield "distinct values", distinct.astype(np.int8)
    yield "ramp", np.linspace(-128, 127, n).round().astype(np.int8)


def int32_rows(kind: str, n: int, rows: int, rng: np.random.Generator | int = 0) -> np.ndarray:
    """``rows × n`` int32 rows of one of :data:`INT32_KINDS`; ``rng`` is a generator or a seed."""
    rng = _generator(rng)
    if kind == "uniform":
        values = rng.integers(INT32_MIN, INT32_MAX, (rows, n), endpoint=True)
    elif kind == "dense":
        values = np.clip(np.rint(rng.normal(0, DENSE_SIGMA, (rows, n))), INT32_MIN, INT32_MAX)
    elif kind == "small":
        values = rng.integers(-SMALL_RANGE, SMALL_RANGE, (rows, n), endpoint=True)
    else:
        raise ValueError(f"row kind {kind!r} is unknown; allowed: {', '.join(INT32_KINDS)}")
    return values.astype(np.int32)


def mixed_int32_rows(count: int, n: int, rng: np.random.Generator) -> Iterator[tuple[str, np.ndarray]]:
    """``count`` labelled int32 rows, cycling through :data:`INT32_KINDS`."""
    for index in range(count):
        kind = INT32_KINDS[index % len(INT32_KINDS)]
        yield kind, int32_rows(kind, n, 1, rng)[0]


def directed_int32_rows(n: int, rng: np.random.Generator) -> Iterator[tuple[str, np.ndarray]]:
    """Extremes of int32 and values around every power of two, both signs."""
    yield "all 0", np.zeros(n, dtype=np.int32)
    yield "all INT32_MIN", np.full(n, INT32_MIN, dtype=np.int32)
    yield "all INT32_MAX", np.full(n, INT32_MAX, dtype=np.int32)
    yield "alternating INT32_MIN/INT32_MAX", np.where(np.arange(n) % 2 == 0, INT32_MIN, INT32_MAX).astype(np.int32)
    edges = np.array([sign * (1 << k) + delta for k in range(31) for sign in (1, -1) for delta in (-1, 0, 1)]
                     + [INT32_MIN, INT32_MIN + 1, INT32_MAX - 1, INT32_MAX], dtype=np.int64)
    edges = edges[(edges >= INT32_MIN) & (edges <= INT32_MAX)]
    for start in range(0, len(edges), n):
        chunk = edges[start:start + n]
        row = np.concatenate([chunk, rng.choice(edges, n - len(chunk))]) if len(chunk) < n else chunk
        yield f"powers of two ±1, part {start // n}", rng.permutation(row).astype(np.int32)
