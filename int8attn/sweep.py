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

Points run in parallel on a :class:`concurrent.futures.Executor`: a process pool (``--jobs``) or, with
``--executor dask://HOST:PORT``, a Dask ``distributed`` client's executor. Each finished point is cached under its
configuration hash, so an interrupted sweep resumes where it stopped; a failing point is recorded with its error.
"""

import hashlib
import json
import sys
import time
import tomllib
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import fields
from itertools import product
from pathlib import Path

from int8attn.golden import ConfigError
from int8attn.units import UNITS, Unit

SETTINGS = ("families", "simulate", "rows", "seed")
DEFAULT_UNIT = "softmax"


class SweepError(ValueError):
    """A sweep file that cannot be run; the message names the key."""


def load_sweep(path: Path) -> dict:
    """Parse and check a sweep file; returns ``name``, ``points`` (label → parameters) and ``run`` settings."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SweepError(f"sweep file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise SweepError(f"{path} is not valid TOML: {error}") from None
    unit_name = document.get("unit", DEFAULT_UNIT)
    if unit_name not in UNITS:
        raise SweepError(f"unit {unit_name!r} is unknown; allowed: {', '.join(UNITS)}")
    config_fields = {item.name for item in fields(UNITS[unit_name].config_type)}
    for section in ("base", "grid"):
        unknown = set(document.get(section, {})) - config_fields
        if unknown:
            raise SweepError(f"[{section}] has unknown keys {sorted(unknown)}; allowed: {sorted(config_fields)}")
    grid = document.get("grid", {})
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"[grid] {key} must be a non-empty list")
    run = {"families": ["ecp5"], "simulate": False, "rows": 500, "seed": 0} | document.get("run", {})
    unknown = set(run) - set(SETTINGS)
    if unknown:
        raise SweepError(f"[run] has unknown keys {sorted(unknown)}; allowed: {list(SETTINGS)}")
    from int8attn.synth import FAMILIES
    bad = [family for family in run["families"] if family not in FAMILIES]
    if bad:
        raise SweepError(f"[run] families {bad} unknown; allowed: {list(FAMILIES)}")
    base = document.get("base", {})
    points = {}
    keys = list(grid)
    for values in product(*(grid[key] for key in keys)):
        parameters = base | dict(zip(keys, values, strict=True))
        points[_label(parameters, keys)] = parameters
    for extra in document.get("extra", []):
        parameters = base | extra
        points[_label(parameters, list(extra))] = parameters
    return {"name": document.get("name", path.stem), "unit": unit_name, "points": points, "run": run}


def _label(parameters: dict, keys: list[str]) -> str:
    return ",".join(f"{key}={parameters[key]}" for key in keys) or "base"


def point_hash(unit: str, parameters: dict, run: dict) -> str:
    text = json.dumps({"unit": unit, "parameters": parameters, "run": run}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_point(unit: Unit, label: str, parameters: dict, run: dict, work: Path) -> dict:
    """Everything the sweep measures for one point; errors become an ``error`` field, never an exception."""
    record: dict = {"point": label, "parameters": parameters}
    try:
        config = unit.make_config(parameters)
        record["parameters"] = config.as_dict()
        if unit.accuracy is not None:
            record |= unit.accuracy_module.point_metrics(config, run["rows"], run["seed"])
        if run["simulate"]:
            from int8attn.verif.runner import run as run_rtl
            result = run_rtl(config, "verilator", rows=run["rows"] // 10 or 1, build_dir=work / "sim")
            record["rtl_check"] = {"passed": result.passed, "errors": result.errors[:5]}
        from int8attn.synth import DoesNotFit, synthesize
        for family in run["families"]:
            try:
                report = synthesize(config, family, work / "synth")
            except DoesNotFit as error:
                record[family] = {"fits": False, "does_not_fit": str(error)}
                continue
            report["resources"].pop("cells", None)
            record[family] = report
    except Exception as error:  # noqa: BLE001 - a failing point is data and the sweep goes on
        if not isinstance(error, ConfigError | RuntimeError | ValueError | OSError):
            record["traceback_type"] = type(error).__qualname__
        record["error"] = f"{type(error).__name__}: {error}"
    return record


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
        cached = cache / f"{key}.json"
        if cached.exists():
            records[label] = json.loads(cached.read_text())
        else:
            pending[label] = (parameters, key)
    progress = Progress(len(sweep["points"]), len(records))
    if pending:
        with make_executor(jobs, executor) as pool:
            unit = UNITS[sweep["unit"]]
            futures: dict[Future, str] = {
                pool.submit(run_point, unit, label, parameters, sweep["run"], out_dir / "points" / key): label
                for label, (parameters, key) in pending.items()}
            for future in as_completed(futures):
                label = futures[future]
                record = future.result()
                (cache / f"{pending[label][1]}.json").write_text(json.dumps(record, indent=2) + "\n")
                records[label] = record
                progress.update(label, "error" in record)
    ordered = [records[label] for label in sweep["points"]]
    from int8attn.sweep_report import write_outputs
    return write_outputs(sweep, ordered, out_dir)
