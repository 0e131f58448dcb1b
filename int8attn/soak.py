"""``int8attn soak``: endurance runs of the RTL over the regression matrix of every unit.

Each configuration of :data:`~int8attn.golden.regression.SOAK_MATRIX` (the softmax's regression shapes, the
requantizer's, dense's and matmul's regression configurations, a small attention unit) streams ``rows`` random rows
(10⁵ by default) under random valid/ready: every output bit compared with the golden model, the valid/ready contract
of every stream checked on every cycle, the stall probabilities changing every batch of rows. Two engines run it
(:data:`ENGINES`): ``verilator-cpp``, the default, a Verilator C++ testbench fed by numpy
(:mod:`int8attn.verif.soak_engine`), at the speed of the Verilated model; and ``cocotb``, the generic ``soak`` test
(:mod:`int8attn.verif.tb_generic`) on Verilator or Icarus, bound by Python to a few thousand cycles a second. The
report, ``soak.json`` and ``soak.md`` in ``build/reports/soak/``, gives per configuration the engine, the rows, beats
and cycles simulated, the mismatches and protocol violations, the seconds (the simulator build apart), the rows and
cycles per second, and what 10⁵ rows take at that rate; the command exits 1 unless every configuration passed with 0
mismatches and 0 violations.

Simulator builds are kept in ``build/sim-soak/`` (optimised: a long run is worth the slower build), apart from the
tests' ``-O0`` builds in ``build/sim/``: ``verilator-cpp/`` holds the engines, ``verilator/`` and ``icarus/`` the
cocotb builds.
"""

import fnmatch
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from int8attn.golden.files import write_atomic
from int8attn.golden.regression import SOAK_MATRIX
from int8attn.usage import UsageError, output_folder

SOAK_ROWS = 100_000
TEST = "soak"
ENGINES = ("verilator-cpp", "cocotb")
"""Soak engines, the default first: the Verilator C++ testbench (Verilator only) and the cocotb ``soak`` test."""
CPP_ENGINE = ENGINES[0]
REPORTS = Path("build/reports/soak")
BUILDS = Path("build/sim-soak")
MAX_ERRORS = 5


def selected(patterns: list[str] | None) -> dict[str, Any]:
    """The configurations of :data:`SOAK_MATRIX` whose label matches one of the shell ``patterns`` (all without);
    :class:`UsageError` when a pattern matches none."""
    if not patterns:
        return dict(SOAK_MATRIX)
    unmatched = [pattern for pattern in patterns if not fnmatch.filter(SOAK_MATRIX, pattern)]
    if unmatched:
        raise UsageError(f"--configs {','.join(unmatched)} matches no configuration; allowed: patterns of "
                         f"{', '.join(SOAK_MATRIX)}")
    return {label: config for label, config in SOAK_MATRIX.items()
            if any(fnmatch.fnmatchcase(label, pattern) for pattern in patterns)}


def soak_one(label: str, config: Any, rows: int, seed: int, simulator: str, builds: Path,
             engine: str = CPP_ENGINE) -> dict[str, Any]:
    """Soak one configuration on ``engine``; its record (module docstring), ``passed`` only with every row out, no
    mismatch and no violation. The simulator build is timed apart (``build_seconds``), so that ``seconds`` and the
    rates are the simulation's."""
    from int8attn.units import unit_of

    run = _engine_run if engine == CPP_ENGINE else _cocotb_run
    record, build_seconds, seconds = run(config, rows, seed, simulator, builds)
    done = record["rows"]
    record = {"configuration": label, "unit": unit_of(config).name, "parameters": config.as_dict(),
              "engine": engine, "simulator": simulator, "seed": seed, "rows_requested": rows} | record | {
        "build_seconds": round(build_seconds, 1), "seconds": round(seconds, 2),
        "rows_per_s": round(done / seconds, 1) if seconds else None,
        "cycles_per_s": round(record["cycles"] / seconds) if seconds else None}
    record["seconds_for_default_rows"] = round(SOAK_ROWS / record["rows_per_s"]) if record["rows_per_s"] else None
    record["passed"] = (record["passed"] and done == rows and record["mismatches"] == 0
                        and record["violations"] == 0)
    return record


def _cocotb_run(config: Any, rows: int, seed: int, simulator: str,
                builds: Path) -> tuple[dict[str, Any], float, float]:
    """The ``soak`` test of one configuration: its counts, errors, log and pass, and the seconds of the build (a
    one-row run first) and of the run."""
    from int8attn.verif.runner import default_build_dir, run

    options = {"test": TEST, "seed": seed, "optimize": simulator == "verilator",
               "build_dir": default_build_dir(config, simulator, builds.resolve())}
    started = time.monotonic()
    run(config, simulator, rows=1, **options)
    build_seconds = time.monotonic() - started
    started = time.monotonic()
    result = run(config, simulator, rows=rows, **options)
    seconds = time.monotonic() - started
    report = result.reports.get(TEST, {})
    return ({"rows": report.get("rows", 0), "beats": report.get("beats", 0), "cycles": report.get("cycles", 0),
             "mismatches": report.get("mismatches"), "violations": report.get("violations"),
             "errors": result.errors[:MAX_ERRORS], "log": str(result.log), "passed": result.passed},
            build_seconds, seconds)


def _engine_run(config: Any, rows: int, seed: int, simulator: str,
                builds: Path) -> tuple[dict[str, Any], float, float]:
    """The Verilator C++ engine on one configuration (:mod:`int8attn.verif.soak_engine`), as :func:`_cocotb_run`;
    the stalls are the cocotb test's, at the runner's default idle and backpressure."""
    from int8attn.hdl import emit
    from int8attn.verif import soak_engine
    from int8attn.verif.runner import TBSettings, default_build_dir

    folder = default_build_dir(config, CPP_ENGINE, builds.resolve())
    started = time.monotonic()
    build_seconds = seconds = 0.0
    emitted = emit.emit(config, folder / "rtl")
    sidecar = json.loads(emitted.sidecar.read_text())
    try:
        binary = soak_engine.build(emitted.verilog, sidecar, folder)
        build_seconds = time.monotonic() - started
        started = time.monotonic()
        report = soak_engine.run(binary, sidecar, rows, seed=seed, folder=folder,
                                 stalls=soak_engine.stall_pairs(TBSettings.idle, TBSettings.backpressure))
    except soak_engine.EngineError as error:
        return ({"rows": 0, "beats": 0, "cycles": 0, "mismatches": None, "violations": None, "errors": [str(error)],
                 "log": str(folder), "passed": False}, build_seconds, seconds)
    seconds = time.monotonic() - started
    return ({key: report[key] for key in ("rows", "beats", "cycles", "mismatches", "violations", "batches", "log")}
            | {"errors": report["errors"][:MAX_ERRORS], "passed": report["passed"] and report["exit_status"] == 0},
            build_seconds, seconds)


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def markdown(records: list[dict[str, Any]]) -> str:
    """The report's table and its totals."""
    lines = ["| configuration | rows | beats | cycles | mismatches | violations | seconds | rows/s | cycles/s | "
             "10⁵ rows take | check |", "|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---|"]
    for record in records:
        full = record["seconds_for_default_rows"]
        lines.append(f"| {record['configuration']} | {record['rows']} | {record['beats']} | {record['cycles']} | "
                     f"{record['mismatches']} | {record['violations']} | {record['seconds']} | "
                     f"{record['rows_per_s']} | {record['cycles_per_s']} | "
                     f"{'–' if full is None else _duration(full)} | {'ok' if record['passed'] else 'FAIL'} |")
    total = sum(record["seconds"] for record in records)
    full = sum(record["seconds_for_default_rows"] or 0 for record in records)
    simulators = sorted({f"{record['simulator']} ({record['engine']} engine)" for record in records})
    builds = sum(record.get("build_seconds", 0) for record in records)
    lines += ["", f"{len(records)} configurations on {', '.join(simulators)}, {sum(r['rows'] for r in records)} rows "
              f"in {total:.0f} s of simulation (and {builds:.0f} s of simulator builds); at the measured rates, "
              f"{SOAK_ROWS} rows of every configuration take {_duration(full)} (one job)."]
    return "\n".join(lines) + "\n"


def run_soak(rows: int = SOAK_ROWS, patterns: list[str] | None = None, *, simulator: str = "verilator",
             engine: str = CPP_ENGINE, seed: int = 1, jobs: int = 1, out_dir: Path = REPORTS,
             builds: Path = BUILDS) -> dict[str, Any]:
    """Soak every selected configuration on ``engine`` (``jobs`` at a time) and write ``soak.json`` and ``soak.md``
    into ``out_dir``; returns ``records``, ``json`` and ``markdown`` (the paths).

    Raises
    ------
    UsageError
        A pattern matches no configuration, the engine does not run on ``simulator``, or ``out_dir`` cannot be
        written.
    int8attn.verif.runner.SimulatorMissing
        The simulator is missing.
    """
    from int8attn.verif.runner import find_simulator

    configs = selected(patterns)
    if engine == CPP_ENGINE and simulator != "verilator":
        raise UsageError(f"the {CPP_ENGINE} engine runs on verilator only; with {simulator}, pass --engine cocotb")
    out_dir = output_folder(Path(out_dir))
    find_simulator(simulator)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(soak_one, label, config, rows, seed, simulator, builds, engine)
                   for label, config in configs.items()]
        records = [future.result() for future in futures]
    document = {"rows_per_configuration": rows, "seed": seed, "simulator": simulator, "engine": engine,
                "configurations": records}
    paths = {"json": out_dir / "soak.json", "markdown": out_dir / "soak.md"}
    write_atomic(paths["json"], json.dumps(document, indent=2) + "\n")
    write_atomic(paths["markdown"], f"# Soak: {rows} rows per configuration\n\n" + markdown(records))
    return {"records": records, **paths}


def failures(records: list[dict[str, Any]]) -> list[str]:
    """One line per problem of the configurations that did not pass: their first errors, or the rows missing."""
    return [f"{record['configuration']}: {problem}" for record in records if not record["passed"]
            for problem in record["errors"] or [f"{record['rows']} of {record['rows_requested']} rows checked, "
                                                f"{record['mismatches']} mismatches, {record['violations']} "
                                                f"violations"]]
