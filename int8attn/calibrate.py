"""Per-head calibration of the softmax surrogates ``hccs`` and ``poly``: ``int8attn calibrate softmax``.

Input. Representative int8 logits of each attention head in an ``.npz`` archive: one ``(rows, N)`` array per head
(the heads are the keys in sorted order), or a single ``(heads, rows, N)`` array. :func:`load_logits` reads and
checks it.

Objective. Per head, the mean over rows of the KL divergence of the surrogate's probabilities from float softmax:

    KL(p ‖ q) = Σ p·ln(p / (q + ε)) − 1 + Σ (q + ε),   ε = 10^−6,

``p`` the float64 softmax along the row of the dequantised logits ``input_scale · x`` (β = 1, the scale taken as
float32 as the models take it; :func:`int8attn.accuracy.float_softmax`), ``q`` the golden model's codes times its
output scale. ``ε`` keeps a code of 0 finite. The terms ``− 1 + Σ (q + ε)`` make it the divergence of an
unnormalised ``q`` (the generalised KL, ≥ 0 and 0 only at ``q + ε = p``): it is the plain KL where the codes of a row
sum to 1, and it charges the mass that the floor division loses or the CLB reciprocal adds, so a search cannot win by
inflating ``q``. The codes come from the golden models, never from a copy of their arithmetic:
:class:`~int8attn.golden.surrogates.HccsModel` (:func:`~int8attn.golden.hccs.hccs_softmax`) and
:class:`~int8attn.golden.surrogates.PolyModel`.

Search (mode ``hccs``: integers ``B``, ``S``, ``Dmax``). Only parameters with
:func:`~int8attn.golden.hccs.validity_errors` ``== []`` under the fixed settings are evaluated (``hccs_sum=int16``
bounds ``B`` by ``32767 // N``). The score ``B − S·min(d, Dmax)`` has a shape, the slope ``S/B`` down to the floor
ratio ``1 − S·Dmax/B`` at ``Dmax``, and a magnitude ``B`` that sets the rounding of the scores, of the reciprocal and
of the codes. The search runs on at most ``search_rows`` rows drawn without replacement (seeded):

1. a coarse grid: ``Dmax`` in :data:`HCCS_DMAX_GRID`, the floor ratio in :data:`FLOOR_RATIOS` (0: the smallest
   floor the rules allow, ``ceil(256 / N)``) and ``B`` on :data:`MAGNITUDES` geometric steps from 8 to the largest
   legal ``B`` (32767, or ``32767 // N``); ``S = round((1 − ratio)·B / Dmax)``, lowered to keep the floor legal;
   plus the uniform ``S = 0``;
2. from each of the :data:`STARTS` best grid points, a compass search on the integer triple: try ``±step`` on each
   coordinate, move to the best improving neighbour, halve the steps when none improves, stop at steps of 1
   (initial steps a quarter of ``B``, ``S`` and ``Dmax``, at least 1); the best end point wins. It is a local
   minimum: no legal neighbour at ``±1`` on one coordinate is better.

Mode ``poly`` (real ``b`` and ``|δ|``) searches the grid they are rounded onto, ``b_q = round(b / s)`` in 1..255 and
``δ_q = round(|δ| / s^n)`` (:func:`~int8attn.golden.surrogates.poly_grid`), the same way: the grid ``b_q`` in
:data:`MAGNITUDES` geometric steps over 1..255 times ``δ_q = round(ratio · b_q^n)``, ratio in
:data:`POLY_FLOOR_RATIOS`, then the compass search on ``(b_q, δ_q)`` (initial steps ``b_q / 4`` and ``δ_q / 2``).
It writes ``b = b_q·s`` and ``|δ| = δ_q·s^n`` (``s^n / 4`` for ``δ_q = 0``: the configuration takes ``|δ| > 0``),
which round back onto the same grid.

The metrics before (the default parameters of :class:`~int8attn.golden.SoftmaxConfig`) and after are on every row:
``mean_kl`` (the objective), ``max_abs_error`` (``|q − p|`` over every element, in probability) and
``argmax_agreement`` (share of rows whose float argmax also has the row's largest code).

Output: the JSON document of :func:`calibrate`, read back per head by :func:`load_head_params`.
``python -m int8attn.calibrate`` measures the time of 4 heads × 10 000 rows × N = 64 in both modes.
"""

import argparse
import json
import math
import time
from collections.abc import Callable
from dataclasses import fields
from functools import lru_cache
from pathlib import Path

import numpy as np

from int8attn.accuracy import float_softmax
from int8attn.golden import SoftmaxConfig, SoftmaxModel
from int8attn.golden.config import MODE_KNOBS
from int8attn.golden.files import READ_ERRORS, write_atomic
from int8attn.golden.hccs import (
    AIE4ML_MAX_SUM,
    B_RANGE,
    DMAX_RANGE,
    INV_MAX,
    MIN_SUM,
    S_RANGE,
    HccsParams,
    validity_errors,
)
from int8attn.golden.params import ConfigError, params
from int8attn.golden.surrogates import HCCS_OUTPUT_BITS, POLY_MAX_OFFSET, poly_grid
from int8attn.usage import UsageError, output_folder

SUMMARY = "fit per-head surrogate parameters (hccs, poly) to representative int8 logits"
MODES = ("hccs", "poly")
EPSILON = 1e-6
SEARCH_ROWS = 4096
HCCS_DMAX_GRID = (1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 127)
FLOOR_RATIOS = (0.0, 0.01, 0.05, 0.2)
POLY_FLOOR_RATIOS = (0.0, 1e-4, 1e-3, 1e-2, 0.05, 0.2)
MAGNITUDES = 12
POLY_MAX_FLOOR = INV_MAX << 16
STARTS = 12
CALIBRATED = {"hccs": ("hccs_b", "hccs_s", "hccs_dmax"), "poly": ("poly_b", "poly_delta")}
"""The SoftmaxConfig fields that the calibration chooses; the other knobs of the mode are fixed settings."""
SETTINGS = {mode: tuple(name for name in MODE_KNOBS[mode] if name not in CALIBRATED[mode]) for mode in MODES}
DEFAULTS = {item.name: item.default for item in fields(SoftmaxConfig)}
SAMPLE_SCALE = 0.05
SAMPLE_SPREADS = (0.4, 0.7, 1.0, 1.4)
SAMPLE_PATH = Path(__file__).resolve().parent.parent / "verif" / "tests" / "data" / "sample_logits.npz"
LOGITS_ALLOWED = "an .npz of int8 arrays, one (rows, N) per head or one (heads, rows, N)"


def load_logits(path: Path, n: int | None = None) -> dict[str, np.ndarray]:
    """The heads of a logits archive, in order: ``{name: int8 array (rows, N)}``.

    Parameters
    ----------
    path : Path
        ``.npz`` with one ``(rows, N)`` array per head (keys in sorted order), or one ``(heads, rows, N)`` array,
        whose heads are named ``key[i]``.
    n : int or None
        The row length the heads must have; ``None`` takes the file's.

    Raises
    ------
    ConfigError
        One line naming the problem: missing or unreadable file, not an ``.npz``, no arrays, a dtype other than int8,
        a shape other than those above, no heads, no rows, N = 0, heads of different N or an N other than ``n``.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"logits file {path} does not exist; allowed: {LOGITS_ALLOWED}")
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                arrays = {key: loaded[key] for key in sorted(loaded.files)}
        else:
            arrays = None
    except READ_ERRORS as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else "not a readable .npz archive"
        raise ConfigError(f"cannot read logits file {path} ({reason}); allowed: {LOGITS_ALLOWED}") from None
    if arrays is None:
        raise ConfigError(f"logits file {path} is an .npy array, not an .npz archive; allowed: {LOGITS_ALLOWED}")
    if not arrays:
        raise ConfigError(f"logits file {path} holds no arrays; allowed: {LOGITS_ALLOWED}")
    heads = {}
    for key, array in arrays.items():
        if array.dtype != np.int8:
            raise ConfigError(f"logits file {path}: array {key!r} has dtype {array.dtype}; allowed: int8")
        if array.ndim == 3 and len(arrays) == 1:
            if not len(array):
                raise ConfigError(f"logits file {path}: array {key!r} has shape {array.shape}, no head; allowed: at "
                                  f"least one head")
            heads.update({f"{key}[{index}]": head for index, head in enumerate(array)})
        elif array.ndim == 2:
            heads[key] = array
        else:
            raise ConfigError(f"logits file {path}: array {key!r} has shape {array.shape}; allowed: (rows, N) per "
                              f"head, or one (heads, rows, N) array")
    first = next(iter(heads))
    for name, head in heads.items():
        if head.size == 0:
            raise ConfigError(f"logits file {path}: head {name!r} is empty, shape {head.shape}; allowed: at least "
                              f"one row of at least one element")
        if head.shape[1] != heads[first].shape[1]:
            raise ConfigError(f"logits file {path}: head {name!r} has N={head.shape[1]} but {first!r} has "
                              f"N={heads[first].shape[1]}; allowed: the same N for every head")
    if n is not None and heads[first].shape[1] != n:
        raise ConfigError(f"logits file {path} has rows of N={heads[first].shape[1]}, not n={n}; allowed: "
                          f"rows of N={n}")
    return heads


class _Rows:
    """int8 rows of one head with their float softmax ``p``; scores a model's codes against it.

    Members
    -------
    x : numpy.ndarray
    p : numpy.ndarray
        float64 softmax of ``input_scale · x`` along each row.
    negentropy : float
        ``Σ p·ln p`` over every element.
    """

    def __init__(self, x: np.ndarray, reference: SoftmaxConfig):
        self.x = x
        self.p = float_softmax(x, reference)
        self.negentropy = float(np.sum(self.p * np.log(self.p, out=np.zeros_like(self.p), where=self.p > 0)))

    def mean_kl(self, codes: np.ndarray, scale: float) -> float:
        """The objective of the module docstring for the codes of ``x`` with probability ``scale`` per code."""
        # einsum rather than dot: OpenBLAS's threaded dot stalls for seconds on a busy machine
        cross = float(np.einsum("ij,ij->", self.p, _log_q(scale, int(np.iinfo(codes.dtype).max))[codes]))
        mass = float(codes.sum(dtype=np.int64)) * scale + EPSILON * codes.size
        return (self.negentropy - cross + mass) / len(self.x) - 1

    def metrics(self, config: SoftmaxConfig) -> dict[str, float]:
        """``mean_kl``, ``max_abs_error`` and ``argmax_agreement`` of ``config``'s model on every row."""
        model = SoftmaxModel(config)
        codes = model(self.x)
        float_argmax = self.p.argmax(axis=1)
        return {"mean_kl": self.mean_kl(codes, model.output_scale),
                "max_abs_error": float(np.abs(codes * model.output_scale - self.p).max()),
                "argmax_agreement": float(np.mean(codes[np.arange(len(codes)), float_argmax] == codes.max(axis=1)))}


@lru_cache
def _log_q(scale: float, top: int) -> np.ndarray:
    """``ln(code·scale + ε)`` for the codes 0..``top``."""
    return np.log(np.arange(top + 1) * scale + EPSILON)


Point = tuple[int, ...]


class _Search:
    """The objective on a head's search rows, cached per point, with the configuration each point stands for.

    Members
    -------
    configure : Callable
        A point to its :class:`SoftmaxConfig`, or ``None`` where the point breaks a rule.
    values : dict
        Objective of each point evaluated (``inf`` for an illegal point).
    """

    def __init__(self, rows: _Rows, configure: Callable[[Point], SoftmaxConfig | None]):
        self.rows = rows
        self.configure = configure
        self.values: dict[Point, float] = {}

    def __call__(self, point: Point) -> float:
        if point not in self.values:
            config = self.configure(point)
            if config is None:
                self.values[point] = math.inf
            else:
                model = SoftmaxModel(config)
                self.values[point] = self.rows.mean_kl(model(self.rows.x), model.output_scale)
        return self.values[point]

    def best(self, grid: list[Point], initial_steps: Callable[[Point], Point]) -> Point | None:
        """The best point of the compass searches from the :data:`STARTS` best legal points of ``grid``; ``None``
        when none is legal."""
        ranked = sorted(dict.fromkeys(grid), key=self)
        starts = [point for point in ranked[:STARTS] if self(point) < math.inf]
        return min((self.compass(start, initial_steps(start)) for start in starts), key=self, default=None)

    def compass(self, point: Point, steps: Point) -> Point:
        """Compass search on integers from ``point`` (see the module docstring)."""
        while True:
            neighbours = [point[:axis] + (point[axis] + sign * steps[axis],) + point[axis + 1:]
                          for axis in range(len(point)) for sign in (1, -1)]
            candidate = min(neighbours, key=self)
            if self(candidate) < self(point):
                point = candidate
            elif max(steps) == 1:
                return point
            else:
                steps = tuple(max(1, step // 2) for step in steps)


def _hccs_point_config(fixed: dict) -> Callable[[Point], SoftmaxConfig | None]:
    def configure(point: Point) -> SoftmaxConfig | None:
        b, s, dmax = point
        if not (B_RANGE[0] <= b <= B_RANGE[1] and S_RANGE[0] <= s <= S_RANGE[1]
                and DMAX_RANGE[0] <= dmax <= DMAX_RANGE[1]):
            return None
        hccs = HccsParams(b=b, s=s, dmax=dmax, reciprocal=fixed["hccs_reciprocal"],
                          inv_shift=fixed["hccs_inv_shift"], output_bits=fixed["output_bits"])
        if validity_errors(hccs, fixed["n"], aie4ml_compatible=fixed["hccs_sum"] == "int16"):
            return None
        return SoftmaxConfig(**fixed, hccs_b=b, hccs_s=s, hccs_dmax=dmax)
    return configure


def _hccs_grid(fixed: dict) -> list[Point]:
    n = fixed["n"]
    least_floor = -(-MIN_SUM // n)
    largest_b = AIE4ML_MAX_SUM // n if fixed["hccs_sum"] == "int16" else B_RANGE[1]
    magnitudes = np.unique(np.round(np.geomspace(min(8, largest_b), largest_b, MAGNITUDES)).astype(int))
    grid = [(int(magnitudes[-1]), 0, 0)]
    for b in magnitudes:
        for dmax in HCCS_DMAX_GRID:
            for ratio in FLOOR_RATIOS:
                s = min(S_RANGE[1], round((1 - ratio) * b / dmax), (int(b) - least_floor) // dmax)
                if s >= 1:
                    grid.append((int(b), s, dmax))
    return grid


def _poly_point_config(fixed: dict) -> Callable[[Point], SoftmaxConfig | None]:
    scale = float(np.float32(fixed["input_scale"]))

    def configure(point: Point) -> SoftmaxConfig | None:
        offset, floor = point
        if not 1 <= offset <= POLY_MAX_OFFSET or not 0 <= floor <= POLY_MAX_FLOOR:
            return None
        # δ_q = 0 is a |δ| > 0 below half a grid step
        return SoftmaxConfig(**fixed, poly_b=offset * scale, poly_delta=(floor or 0.25) * scale ** fixed["poly_n"])
    return configure


def _poly_grid(fixed: dict) -> list[Point]:
    offsets = np.unique(np.round(np.geomspace(1, POLY_MAX_OFFSET, MAGNITUDES)).astype(int))
    return [(int(offset), round(ratio * int(offset) ** fixed["poly_n"]))
            for offset in offsets for ratio in POLY_FLOOR_RATIOS]


def _check_settings(mode: str, settings: dict) -> dict:
    """``settings`` completed with the defaults of :class:`SoftmaxConfig`; :class:`ConfigError` naming a bad one."""
    if mode not in MODES:
        raise ConfigError(f"mode={mode!r} cannot be calibrated; allowed: {', '.join(MODES)}")
    specs = params(SoftmaxConfig)
    for name, value in settings.items():
        if name not in SETTINGS[mode]:
            raise ConfigError(f"{name} is not a setting of mode {mode}; allowed: {', '.join(SETTINGS[mode])}")
        specs[name].check(name, value)
    complete = {name: settings.get(name, DEFAULTS[name]) for name in SETTINGS[mode]}
    if mode == "hccs" and complete["output_bits"] not in HCCS_OUTPUT_BITS:
        raise ConfigError(f"output_bits={complete['output_bits']} is not supported by mode hccs; allowed: 8, 16")
    return complete


def _check_search(search_rows: int, seed: int) -> None:
    for name, value, low in (("search_rows", search_rows, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name}={value!r} is out of range; allowed: integers >= {low}")


def _head_parameters(mode: str, config: SoftmaxConfig) -> dict:
    if mode == "hccs":
        return {"b": config.hccs_b, "s": config.hccs_s, "dmax": config.hccs_dmax}
    offset, floor = poly_grid(config)
    return {"b": config.poly_b, "delta": config.poly_delta, "b_lsb": offset, "delta_grid": floor}


def calibrate(heads: dict[str, np.ndarray], mode: str, input_scale: float, settings: dict | None = None, *,
              search_rows: int = SEARCH_ROWS, seed: int = 0) -> dict:
    """Calibrate every head; the parameters document (the JSON that :func:`write_params` writes).

    Parameters
    ----------
    heads : dict of str to numpy.ndarray
        int8 rows ``(rows, N)`` per head, of one ``N``, as :func:`load_logits` returns them.
    mode : str
        ``hccs`` or ``poly``.
    input_scale : float
        Scale of the logits (finite, > 0; taken as float32).
    settings : dict or None
        The fixed knobs of the mode as :class:`SoftmaxConfig` fields: ``hccs_sum``, ``hccs_reciprocal``,
        ``hccs_inv_shift``, ``output_bits`` (mode ``hccs``) or ``poly_n`` (mode ``poly``); missing ones take their
        defaults.
    search_rows : int
        Rows per head the search runs on (drawn with ``seed``); the metrics use every row.
    seed : int

    Returns
    -------
    dict
        ``mode``, ``input_scale``, ``n``, ``objective``, ``epsilon``, ``search_rows``, ``seed``, the settings, the
        ``default`` parameters (with ``error`` when they break a rule here) and ``heads``: per head its index
        ``head``, ``name``, ``rows``, the parameters (``b``, ``s``, ``dmax``; or ``b``, ``delta`` and their grid
        values ``b_lsb``, ``delta_grid``) and the metrics ``before`` (``None`` where the default is illegal),
        ``after`` and ``evaluations`` (legal points the search evaluated).
    """
    settings = _check_settings(mode, settings or {})
    _check_search(search_rows, seed)
    if not heads:
        raise ConfigError("no heads to calibrate; allowed: at least one head of int8 rows")
    first = next(iter(heads.values()))
    n = first.shape[1]
    reference = SoftmaxConfig(n=n, lanes=1, input_scale=input_scale)
    fixed = {"mode": mode, "n": n, "lanes": 1, "input_scale": input_scale, **settings}
    make_configure, grid, initial_steps = {
        "hccs": (_hccs_point_config, _hccs_grid,
                 lambda point: tuple(max(1, value // 4) for value in point)),
        "poly": (_poly_point_config, _poly_grid,
                 lambda point: (max(1, point[0] // 4), max(1, point[1] // 2))),
    }[mode]
    configure = make_configure(fixed)
    default = {name: DEFAULTS[name] for name in CALIBRATED[mode]}
    try:
        default_config = SoftmaxConfig(**fixed)
        default_record = _head_parameters(mode, default_config)
    except ConfigError as error:
        default_config = None
        default_record = {name.split("_", 1)[1]: value for name, value in default.items()} | {"error": str(error)}
    rng = np.random.default_rng(seed)
    records = []
    for index, (name, x) in enumerate(heads.items()):
        every_row = _Rows(x, reference)
        sample = x if len(x) <= search_rows else x[np.sort(rng.choice(len(x), search_rows, replace=False))]
        search = _Search(_Rows(sample, reference), configure)
        best = search.best(grid(fixed), initial_steps)
        if best is None:
            shown = ", ".join(f"{key}={value}" for key, value in settings.items())
            raise ConfigError(f"no legal {mode} parameters on the search grid for N={n}, {shown}")
        chosen = configure(best)
        records.append({"head": index, "name": name, "rows": len(x), **_head_parameters(mode, chosen),
                        "before": None if default_config is None else every_row.metrics(default_config),
                        "after": every_row.metrics(chosen),
                        "evaluations": sum(math.isfinite(value) for value in search.values.values())})
    return {"mode": mode, "input_scale": input_scale, "n": n,
            "objective": "mean over rows of KL(p || q) = sum p*ln(p/(q+eps)) - 1 + sum (q+eps): p float64 softmax "
                         "of input_scale*x (beta 1), q = codes * output scale of the golden model",
            "epsilon": EPSILON, "search_rows": search_rows, "seed": seed, **settings, "default": default_record,
            "heads": records}


def write_params(document: dict, path: Path) -> Path:
    """Write ``document`` as JSON to ``path``: a temporary file beside it, then renamed; :class:`UsageError` if
    the folder cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"output {path} is a folder; allowed: a file path")
    output_folder(path.parent)
    try:
        return write_atomic(path, json.dumps(document, indent=2) + "\n")
    except OSError as error:
        raise UsageError(f"cannot write {path} ({error.strerror}); allowed: a writable file path") from None


def load_head_params(path: Path, head: int, mode: str) -> dict[str, int | float]:
    """The calibrated :class:`SoftmaxConfig` fields of one head of a parameters file.

    Returns ``{"hccs_b", "hccs_s", "hccs_dmax"}`` (mode ``hccs``) or ``{"poly_b", "poly_delta", "poly_n"}`` (mode
    ``poly``: ``|δ|`` is on the grid of ``input_scale^poly_n``, so the degree comes with it). The fixed settings
    (sum rule, reciprocal, output bits) stay the caller's: the configuration built from them checks the rules.

    Raises
    ------
    ConfigError
        One line naming the problem: missing, unreadable or not JSON, another mode, no such head, a parameter
        missing or out of range.
    """
    if mode not in MODES:
        raise ConfigError(f"mode={mode!r} has no calibrated parameters; allowed: {', '.join(MODES)}")
    path = Path(path)
    where = f"parameters file {path}"
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{where} does not exist; allowed: a file written by int8attn calibrate softmax") from None
    except OSError as error:
        raise ConfigError(f"cannot read {where} ({error.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{where} is not JSON ({' '.join(str(error).splitlines())})") from None
    if not isinstance(document, dict) or not isinstance(document.get("heads"), list):
        raise ConfigError(f"{where} has no list 'heads'; allowed: a file written by int8attn calibrate softmax")
    if document.get("mode") != mode:
        raise ConfigError(f"{where} holds parameters of mode {document.get('mode')!r}; allowed: mode {mode}")
    indices = [record.get("head") for record in document["heads"] if isinstance(record, dict)]
    if isinstance(head, bool) or not isinstance(head, int) or head not in indices:
        shown = ", ".join(map(str, indices)) or "none"
        raise ConfigError(f"{where} has no head {head!r}; allowed: {shown}")
    record = document["heads"][indices.index(head)]
    where += f", head {head}"
    keys = ("b", "s", "dmax") if mode == "hccs" else ("b", "delta")
    missing = [key for key in keys if key not in record]
    if missing:
        raise ConfigError(f"{where} lacks {', '.join(missing)}")
    if mode == "hccs":
        try:
            HccsParams(b=record["b"], s=record["s"], dmax=record["dmax"])
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None
        return {"hccs_b": record["b"], "hccs_s": record["s"], "hccs_dmax": record["dmax"]}
    values = {"poly_b": record["b"], "poly_delta": record["delta"], "poly_n": document.get("poly_n")}
    specs = params(SoftmaxConfig)
    for name, value in values.items():
        try:
            specs[name].check(name, value)
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None
    return values


def markdown_table(document: dict) -> str:
    """Before/after metrics per head."""
    lines = ["| head | rows | parameters | mean KL before | after | max \\|q−p\\| before | after | argmax before "
             "| after |", "|---|---|---|---|---|---|---|---|---|"]
    for record in document["heads"]:
        if document["mode"] == "hccs":
            chosen = f"B={record['b']} S={record['s']} Dmax={record['dmax']}"
        else:
            chosen = f"b={record['b']:.4g} \\|δ\\|={record['delta']:.4g} ({record['b_lsb']}, {record['delta_grid']})"
        cells = []
        for metric, text in (("mean_kl", "{:.4f}"), ("max_abs_error", "{:.4f}"), ("argmax_agreement", "{:.1%}")):
            cells += ["–" if record["before"] is None else text.format(record["before"][metric]),
                      text.format(record["after"][metric])]
        lines.append(f"| {record['head']} {record['name']} | {record['rows']} | {chosen} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``int8attn calibrate softmax``."""
    parser.add_argument("--mode", choices=MODES, required=True, help="surrogate to calibrate")
    parser.add_argument("--logits", type=Path, required=True,
                        help="representative int8 logits: .npz, one (rows, N) array per head (heads in sorted key "
                             "order) or one (heads, rows, N) array")
    parser.add_argument("--input-scale", dest="input_scale", type=float, required=True,
                        help="scale of the logits; a finite number > 0 (as float32)")
    parser.add_argument("--n", type=int, help="row length the logits must have (default: the file's)")
    hccs = parser.add_argument_group("fixed settings of --mode hccs (default: SoftmaxConfig's)")
    hccs.add_argument("--hccs-sum", dest="hccs_sum", help="wide or int16 (aie4ml's rule N*B <= 32767)")
    hccs.add_argument("--hccs-reciprocal", dest="hccs_reciprocal", help="div or clb")
    hccs.add_argument("--hccs-inv-shift", dest="hccs_inv_shift", type=int,
                      help="fraction bits of the 8-bit reciprocal, 1..30")
    hccs.add_argument("--output-bits", dest="output_bits", type=int, help="8 or 16")
    poly = parser.add_argument_group("fixed settings of --mode poly (default: SoftmaxConfig's)")
    poly.add_argument("--poly-n", dest="poly_n", type=int, help="degree n, 1..3")
    parser.add_argument("--search-rows", dest="search_rows", type=int, default=SEARCH_ROWS,
                        help="rows per head the search runs on; the metrics use every row (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the search rows (default: %(default)s)")
    parser.add_argument("-o", "--output", type=Path,
                        help="parameters JSON (default: build/calibrate/softmax_<mode>.json)")


def command(args: argparse.Namespace) -> int:
    """``int8attn calibrate softmax``: calibrate, write the parameters JSON, print the before/after table."""
    settings = {name: getattr(args, name) for name in SETTINGS["hccs"] + SETTINGS["poly"]
                if getattr(args, name) is not None}
    for name in settings:
        if name not in SETTINGS[args.mode]:
            raise ConfigError(f"--{name.replace('_', '-')} applies to --mode "
                              f"{'hccs' if name in SETTINGS['hccs'] else 'poly'} only")
    heads = load_logits(args.logits, args.n)
    document = calibrate(heads, args.mode, args.input_scale, settings, search_rows=args.search_rows,
                         seed=args.seed)
    document["logits"] = str(args.logits)
    path = write_params(document, args.output or Path("build") / "calibrate" / f"softmax_{args.mode}.json")
    print(markdown_table(document), end="")
    print(f"wrote {path}")
    return 0


def sample_logits(seed: int = 0, heads: int = 4, rows: int = 512, n: int = 64) -> dict[str, np.ndarray]:
    """Attention-like int8 logits at input scale :data:`SAMPLE_SCALE`, one ``(rows, n)`` array per head.

    Head ``h`` draws float logits with standard deviation ``SAMPLE_SPREADS[h % 4]`` (times a log-normal factor per
    row), adds a few peaks (each element with probability ``2 / n``, ``+1.5..3.5`` standard deviations) and a
    random offset per row, and quantises them with rounding and saturation. The keys are ``head0``, ``head1``, …
    (zero-padded, so that sorted order is head order).
    """
    rng = np.random.default_rng(seed)
    width = len(str(heads - 1))
    logits = {}
    for head in range(heads):
        spread = SAMPLE_SPREADS[head % len(SAMPLE_SPREADS)] * rng.lognormal(0, 0.25, (rows, 1))
        values = rng.normal(0, 1, (rows, n)) * spread
        values += (rng.random((rows, n)) < 2 / n) * rng.uniform(1.5, 3.5, (rows, n)) * spread
        values += rng.normal(0, 0.5, (rows, 1))
        logits[f"head{head:0{width}d}"] = np.clip(np.rint(values / SAMPLE_SCALE), -128, 127).astype(np.int8)
    return logits


def write_sample_logits(path: Path = SAMPLE_PATH) -> Path:
    """Write :func:`sample_logits` (default arguments), compressed, to ``path``."""
    return write_atomic(path, lambda file: np.savez_compressed(file, **sample_logits()))


def benchmark(heads: int = 4, rows: int = 10_000, n: int = 64) -> dict[str, float]:
    """Seconds to calibrate ``heads`` × ``rows`` × ``n`` sample logits in each mode, default settings."""
    logits = sample_logits(heads=heads, rows=rows, n=n)
    seconds = {}
    for mode in MODES:
        start = time.perf_counter()
        calibrate(logits, mode, SAMPLE_SCALE)
        seconds[mode] = time.perf_counter() - start
    return seconds


if __name__ == "__main__":
    for mode, elapsed in benchmark().items():
        print(f"calibrate {mode}: 4 heads x 10000 rows x N=64 in {elapsed:.1f} s")


PARAMETER_FILES = {"hccs_params": "hccs", "poly_params": "poly"}
"""The options that read a head's calibrated parameters, by destination, and the mode of the file they read."""


def add_parameter_file_options(parser: argparse.ArgumentParser) -> None:
    """``--hccs-params FILE`` / ``--poly-params FILE`` with ``--head K``: a head's parameters from
    ``int8attn calibrate softmax``, in place of ``--hccs-b/-s/-dmax`` or ``--poly-b/-delta/-n``."""
    group = parser.add_argument_group("calibrated parameters (from int8attn calibrate softmax)")
    for destination, mode in PARAMETER_FILES.items():
        group.add_argument(f"--{destination.replace('_', '-')}", dest=destination, type=Path, metavar="FILE",
                           help=f"take the --mode {mode} parameters of head --head from FILE")
    group.add_argument("--head", type=int, default=0, help="head of the parameters file (default: %(default)s)")


def parameters_from_files(args: argparse.Namespace) -> dict[str, int | float]:
    """The configuration fields that ``--hccs-params`` / ``--poly-params`` set; empty without them."""
    given = [(destination, mode) for destination, mode in PARAMETER_FILES.items()
             if getattr(args, destination, None) is not None]
    if len(given) > 1:
        raise ConfigError("give --hccs-params or --poly-params, not both")
    if not given:
        return {}
    destination, mode = given[0]
    if args.mode != mode:
        raise ConfigError(f"--{destination.replace('_', '-')} applies to --mode {mode}; allowed with "
                          f"--mode {args.mode}: none")
    return load_head_params(getattr(args, destination), args.head, mode)
