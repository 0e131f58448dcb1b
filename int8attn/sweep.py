"""Parameter sweeps: accuracy, optional RTL check and synthesis for every point of a grid.

A sweep file (TOML) names a unit (default ``softmax``), a base configuration, a grid and what to run::

    name = "sample"
    unit = "softmax"             # any registered unit (int8attn/units.py)
    [base]                       # any field of the unit's configuration
    n = 16
    lanes = 2
    [grid]                       # every combination of these values
    rom_width = [10, 31]
    reciprocal = ["newton", "lut"]
    [[extra]]                    # single points added to the grid
    rom_width = 40
    [run]
    families = ["ecp5"]          # any of ice40, ecp5, xc7; [] for none
    simulate = false             # cocotb check of the RTL against the model (Verilator)
    rows = 500                   # rows per accuracy row set (units with an accuracy report)
    timeout = 3600               # seconds a point may take (optional; none by default)

Points run in parallel on a :class:`concurrent.futures.Executor`: a process pool (``--jobs``) or, with
``--executor dask://HOST:PORT``, a Dask ``distributed`` client's executor. Each finished point is cached under its
configuration hash, so an interrupted sweep resumes where it stopped.

A point that fails is recorded with its error (``error``) and the sweep goes on: a bad parameter, a tool or simulator
that exits with an error or is killed, a failed RTL check, a point that outlasts ``[run] timeout`` (its tool or
simulator is killed: :func:`guarded`), and a point whose worker process dies (killed, crashed), which breaks a process
pool for every point then running: those are run again, each in a process of its own, and only the one that dies
again is recorded as failed. A cache entry is written atomically with a checksum of its record; one that cannot be
read, does not match its checksum or belongs to another point is reported on stderr and recomputed.
"""

import contextlib
import hashlib
import json
import math
import os
import signal
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import fields
from itertools import product
from pathlib import Path
from typing import Any

from int8attn.golden import ConfigError
from int8attn.golden.files import write_atomic
from int8attn.units import UNITS, Unit

SETTINGS = ("families", "simulate", "rows", "seed", "timeout")
SECTIONS = ("name", "unit", "base", "grid", "extra", "run")
DEFAULT_UNIT = "softmax"
CHECKSUM = "checksum"
WORKER_DIED = "the worker process died (killed or crashed) while running this point, twice"


class PointStopped(BaseException):
    """A point's process was terminated (``SIGTERM``: a process pool that another point's dead worker broke ends its
    other workers so). Not an :class:`Exception`, so that no ``except Exception`` on the way swallows it;
    :func:`subprocess.run`, which the tools and simulators run through, kills its child on it rather than leave it
    running."""


class PointTimeout(PointStopped):
    """A point outlasted its ``[run] timeout``."""


class SweepError(ValueError):
    """A sweep file that cannot be run; the message names the key."""


def _plain(value: Any) -> bool:
    """A parameter value a sweep takes: a string, a number, a boolean or a list of them (no TOML table or date)."""
    if isinstance(value, list):
        return all(_plain(item) for item in value)
    return isinstance(value, str | int | float | bool)


def _table(document: dict, key: str, kind: type, default: Any, what: str) -> Any:
    value = document.get(key, default)
    if not isinstance(value, kind):
        raise SweepError(f"{what} must be {'a table' if kind is dict else 'an array of tables'}, not {value!r}")
    return value


def _parameters(table: dict, where: str) -> dict:
    for key, value in table.items():
        if not _plain(value):
            raise SweepError(f"{where} {key} = {value!r}; allowed: a string, a number, a boolean or a list of them")
    return table


def _check_run(run: dict) -> None:
    """The ``[run]`` settings' types: families a list of family names, simulate a boolean, rows ≥ 1, seed ≥ 0 and
    timeout (when set) a finite number of seconds > 0."""
    from int8attn.synth import FAMILIES

    families = run["families"]
    if not isinstance(families, list) or not all(isinstance(family, str) for family in families):
        raise SweepError(f"[run] families = {families!r}; allowed: a list of {', '.join(FAMILIES)}")
    bad = [family for family in families if family not in FAMILIES]
    if bad:
        raise SweepError(f"[run] families {bad} unknown; allowed: {list(FAMILIES)}")
    if not isinstance(run["simulate"], bool):
        raise SweepError(f"[run] simulate = {run['simulate']!r}; allowed: true, false")
    for key, low in (("rows", 1), ("seed", 0)):
        if isinstance(run[key], bool) or not isinstance(run[key], int) or run[key] < low:
            raise SweepError(f"[run] {key} = {run[key]!r}; allowed: an integer >= {low}")
    timeout = run.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                                or not 0 < timeout < math.inf):
        raise SweepError(f"[run] timeout = {timeout!r}; allowed: seconds, a finite number > 0")


def load_sweep(path: Path) -> dict:
    """Parse and check a sweep file; returns ``name``, ``points`` (label → parameters) and ``run`` settings.

    Raises
    ------
    SweepError
        One line naming the file or the key: a file that cannot be read or is not UTF-8 TOML, an unknown section,
        unit or key, a section or value of the wrong type.
    """
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SweepError(f"sweep file {path} does not exist") from None
    except OSError as error:
        raise SweepError(f"cannot read sweep file {path} ({error.strerror})") from None
    except UnicodeDecodeError:
        raise SweepError(f"{path} is not valid TOML: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise SweepError(f"{path} is not valid TOML: {error}") from None
    unknown = set(document) - set(SECTIONS)
    if unknown:
        raise SweepError(f"{path} has unknown keys {sorted(unknown)}; allowed: {list(SECTIONS)}")
    unit_name = document.get("unit", DEFAULT_UNIT)
    if not isinstance(unit_name, str) or unit_name not in UNITS:
        raise SweepError(f"unit {unit_name!r} is unknown; allowed: {', '.join(UNITS)}")
    name = document.get("name", path.stem)
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise SweepError(f"name = {name!r}; allowed: a non-empty string that is a plain file name")
    config_fields = {item.name for item in fields(UNITS[unit_name].config_type)}
    for section in ("base", "grid"):
        unknown = set(_table(document, section, dict, {}, f"[{section}]")) - config_fields
        if unknown:
            raise SweepError(f"[{section}] has unknown keys {sorted(unknown)}; allowed: {sorted(config_fields)}")
    grid = _parameters(document.get("grid", {}), "[grid]")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"[grid] {key} must be a non-empty list")
    extras = _table(document, "extra", list, [], "[[extra]]")
    if not all(isinstance(extra, dict) for extra in extras):
        raise SweepError(f"[[extra]] must be an array of tables, not {extras!r}")
    run = {"families": ["ecp5"], "simulate": False, "rows": 500, "seed": 0} | _table(document, "run", dict, {},
                                                                                       "[run]")
    unknown = set(run) - set(SETTINGS)
    if unknown:
        raise SweepError(f"[run] has unknown keys {sorted(unknown)}; allowed: {list(SETTINGS)}")
    _check_run(run)
    base = _parameters(document.get("base", {}), "[base]")
    points = {}
    keys = list(grid)
    for values in product(*(grid[key] for key in keys)):
        parameters = base | dict(zip(keys, values, strict=True))
        points[_label(parameters, keys)] = parameters
    for extra in extras:
        parameters = base | _parameters(extra, "[[extra]]")
        points[_label(parameters, list(extra))] = parameters
    return {"name": name, "unit": unit_name, "points": points, "run": run}


def _label(parameters: dict, keys: list[str]) -> str:
    return ",".join(f"{key}={parameters[key]}" for key in keys) or "base"


def point_hash(unit: str, parameters: dict, run: dict) -> str:
    text = json.dumps({"unit": unit, "parameters": parameters, "run": run}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextlib.contextmanager
def guarded(seconds: float | None) -> Iterator[None]:
    """Run the body so that ``SIGTERM`` raises :class:`PointStopped` in it and, after ``seconds`` (when given),
    ``SIGALRM`` raises :class:`PointTimeout`: the tool or simulator it waits for is killed with it. Only in the main
    thread (not in a Dask worker's thread, where signals cannot be caught)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise PointStopped("the point's process was terminated")

    def expire(signum: int, frame: object) -> None:
        raise PointTimeout(f"timed out after {seconds:g} s")

    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, stop)}
    if seconds is not None:
        previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        if seconds is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
        for number, handler in previous.items():
            signal.signal(number, handler)


def _measure(unit: Unit, record: dict, parameters: dict, run: dict, work: Path) -> None:
    config = unit.make_config(parameters)
    record["parameters"] = config.as_dict()
    if unit.accuracy is not None:
        record |= unit.accuracy_module.point_metrics(config, run["rows"], run["seed"])
    if run["simulate"]:
        from int8attn.verif.runner import run as run_rtl
        result = run_rtl(config, "verilator", rows=run["rows"] // 10 or 1, build_dir=work / "sim")
        record["rtl_check"] = {"passed": result.passed, "errors": result.errors[:5]}
        if not result.passed:
            first = (result.errors or ["no error recorded"])[0].splitlines()[0]
            record["error"] = f"RTL check failed: {first}"
    from int8attn.synth import DoesNotFit, synthesize
    for family in run["families"]:
        try:
            report = synthesize(config, family, work / "synth")
        except DoesNotFit as error:
            record[family] = {"fits": False, "does_not_fit": str(error)}
            continue
        report["resources"].pop("cells", None)
        record[family] = report


def run_point(unit: Unit, label: str, parameters: dict, run: dict, work: Path) -> dict:
    """Everything the sweep measures for one point; errors become an ``error`` field, never an exception: within
    ``run["timeout"]`` seconds, when set (:func:`guarded`). Terminated (``SIGTERM``), it kills the tool it runs and
    ends its process."""
    record: dict = {"point": label, "parameters": parameters}
    try:
        with guarded(run.get("timeout")):
            _measure(unit, record, parameters, run, work)
    except PointTimeout as error:
        record["error"] = f"{type(error).__name__}: {error}"
    except PointStopped:
        os._exit(128 + signal.SIGTERM)
    except Exception as error:  # noqa: BLE001 - a failing point is data and the sweep goes on
        if not isinstance(error, ConfigError | RuntimeError | ValueError | OSError):
            record["traceback_type"] = type(error).__qualname__
        record["error"] = f"{type(error).__name__}: {error}"
    return record


def failed_record(label: str, parameters: dict, message: str) -> dict:
    """The record of a point that produced none (its worker died, or its result could not be returned)."""
    return {"point": label, "parameters": parameters, "error": message}


def _digest(record: dict) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def write_cached(path: Path, record: dict) -> None:
    """Write ``record`` with its :data:`CHECKSUM` to the cache entry ``path``, atomically."""
    write_atomic(path, json.dumps(record | {CHECKSUM: _digest(record)}, indent=2) + "\n")


def read_cached(path: Path, label: str) -> dict | None:
    """The record cached at ``path`` for point ``label``; ``None`` when there is none. An entry that cannot be read,
    is not a record of ``label`` or does not match its checksum (entries written before checksums have none) is
    reported on stderr, removed and taken as absent."""
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        problem = None
        if not isinstance(record, dict) or record.get("point") != label or not isinstance(record.get("parameters"),
                                                                                          dict):
            problem = f"it is not a record of point {label!r}"
        elif CHECKSUM in record and record.pop(CHECKSUM) != _digest(record):
            problem = "its checksum does not match"
    except (OSError, ValueError, RecursionError) as error:
        problem = f"it cannot be read ({type(error).__name__})"
    if problem is None:
        return record
    print(f"int8attn: sweep: cache entry {path} is corrupt ({problem}); recomputing point {label}", file=sys.stderr)
    path.unlink(missing_ok=True)
    return None


def make_executor(jobs: int, address: str | None) -> Executor:
    """A process pool of ``jobs`` workers, or the executor of a Dask scheduler at ``dask://HOST:PORT``."""
    if address is None:
        return ProcessPoolExecutor(max_workers=jobs)
    if not address.startswith("dask://"):
        raise SweepError(f"executor {address!r} is not supported; allowed: dask://HOST:PORT")
    try:
        from distributed import Client
    except ImportError:
        raise SweepError("--executor dask://… needs Dask: pip install 'int8attn[dask]'") from None
    return Client("tcp://" + address.removeprefix("dask://")).get_executor()


def _outcome(future: Future, label: str, parameters: dict) -> dict:
    """The record ``future`` holds; a failed record when it raised (other than :class:`BrokenProcessPool`)."""
    try:
        return future.result()
    except BrokenProcessPool:
        raise
    except Exception as error:  # noqa: BLE001 - a point that could not report is recorded as failed
        return failed_record(label, parameters, f"{type(error).__name__}: {error}")


def run_points(unit: Unit, pending: dict[str, tuple[dict, str]], run: dict, work: Path, jobs: int,
               executor: str | None) -> Iterator[tuple[str, dict]]:
    """Run the points ``pending`` (label → parameters and cache key) on :func:`make_executor`'s executor; yield each
    ``(label, record)`` as it finishes.

    A worker process that dies breaks a process pool for every point still in it. Those points are run again, at most
    ``jobs`` at a time, each in a pool of its own: a point whose worker dies there too is recorded as failed
    (:data:`WORKER_DIED`), the others give their records.
    """
    broken = []
    with make_executor(jobs, executor) as pool:
        futures: dict[Future, str] = {
            pool.submit(run_point, unit, label, parameters, run, work / key): label
            for label, (parameters, key) in pending.items()}
        for future in as_completed(futures):
            label = futures[future]
            try:
                record = _outcome(future, label, pending[label][0])
            except BrokenProcessPool:
                broken.append(label)
                continue
            yield label, record
    running: dict[Future, tuple[str, ProcessPoolExecutor]] = {}
    while broken or running:
        while broken and len(running) < jobs:
            label = broken.pop(0)
            parameters, key = pending[label]
            alone = ProcessPoolExecutor(max_workers=1)
            running[alone.submit(run_point, unit, label, parameters, run, work / key)] = (label, alone)
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in done:
            label, alone = running.pop(future)
            alone.shutdown()
            try:
                record = _outcome(future, label, pending[label][0])
            except BrokenProcessPool:
                record = failed_record(label, pending[label][0], WORKER_DIED)
            yield label, record


class Progress:
    """One status line on stderr: done/total, the point that just finished, elapsed time and ETA."""

    def __init__(self, total: int, already: int):
        self.total, self.done, self.fresh = total, already, 0
        self.started = time.monotonic()

    def update(self, label: str, failed: bool) -> None:
        self.done += 1
        self.fresh += 1
        elapsed = time.monotonic() - self.started
        remaining = elapsed / self.fresh * (self.total - self.done)
        width = 24
        filled = int(width * self.done / self.total)
        status = "FAILED" if failed else "ok"
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                         f"{label[:60]} {status} | {elapsed:.0f}s, ETA {remaining:.0f}s\x1b[K")
        if self.done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def run_sweep(path: Path, out_dir: Path | None = None, jobs: int = 2, executor: str | None = None) -> dict:
    """Run (or resume) a sweep file; writes results.csv/json, summary.md and plots; returns the outputs' paths."""
    sweep = load_sweep(path)
    out_dir = Path(out_dir or Path("build") / "sweeps" / sweep["name"])
    cache = out_dir / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    records: dict[str, dict] = {}
    pending = {}
    for label, parameters in sweep["points"].items():
        key = point_hash(sweep["unit"], parameters, sweep["run"])
        record = read_cached(cache / f"{key}.json", label)
        if record is not None:
            records[label] = record
        else:
            pending[label] = (parameters, key)
    progress = Progress(len(sweep["points"]), len(records))
    if pending:
        for label, record in run_points(UNITS[sweep["unit"]], pending, sweep["run"], out_dir / "points", jobs,
                                        executor):
            write_cached(cache / f"{pending[label][1]}.json", record)
            records[label] = record
            progress.update(label, "error" in record)
    ordered = [records[label] for label in sweep["points"]]
    from int8attn.sweep_report import write_outputs
    return write_outputs(sweep, ordered, out_dir)
