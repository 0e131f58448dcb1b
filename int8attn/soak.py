"""``int8attn soak``: endurance runs of the RTL over the regression matrix of every unit.

Each configuration of :data:`~int8attn.golden.regression.SOAK_MATRIX` (the softmax's regression shapes, the
requantizer's, dense's and matmul's regression configurations, a small attention unit) streams ``rows`` random rows
(10⁵ by default) through the generic ``soak`` test (:mod:`int8attn.verif.tb_generic`) under random valid/ready on
Verilator: every output bit compared with the golden model, the valid/ready contract of every stream checked on every
cycle. The report, ``soak.json`` and ``soak.md`` in ``build/reports/soak/``, gives per configuration the rows, beats and
cycles simulated, the mismatches and protocol violations, the seconds (the simulator build apart), the rows and cycles
per second, and what 10⁵ rows take at that rate; the command exits 1 unless every configuration passed with 0
mismatches and 0 violations.

Simulator builds are kept in ``build/sim-soak/`` (optimised, ``-Os``: a long run is worth the slower build), apart from
the tests' ``-O0`` builds in ``build/sim/``.
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


def soak_one(label: str, config: Any, rows: int, seed: int, simulator: str, builds: Path) -> dict[str, Any]:
    """Run the ``soak`` test of one configuration; its record (module docstring), ``passed`` only with every row
    out, no mismatch and no violation. The simulator build is made (and timed, ``build_seconds``) by a one-row run
    first, so that ``seconds`` and the rates are the simulation's."""
    from int8attn.units import unit_of
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
    done = report.get("rows", 0)
    record = {"configuration": label, "unit": unit_of(config).name, "parameters": config.as_dict(),
              "simulator": simulator, "seed": seed, "rows_requested": rows, "rows": done,
              "beats": report.get("beats", 0), "cycles": report.get("cycles", 0),
              "mismatches": report.get("mismatches"), "violations": report.get("violations"),
              "build_seconds": round(build_seconds, 1), "seconds": round(seconds, 1),
              "rows_per_s": round(done / seconds, 1) if seconds else None,
              "cycles_per_s": round(report.get("cycles", 0) / seconds) if seconds else None,
              "errors": result.errors[:MAX_ERRORS], "log": str(result.log)}
    record["seconds_for_default_rows"] = round(SOAK_ROWS / record["rows_per_s"]) if record["rows_per_s"] else None
    record["passed"] = (result.passed and done == rows and record["mismatches"] == 0
                        and record["violations"] == 0)
    return record


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


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
    simulators = sorted({record["simulator"] for record in records})
    builds = sum(record.get("build_seconds", 0) for record in records)
    lines += ["", f"{len(records)} configurations on {', '.join(simulators)}, {sum(r['rows'] for r in records)} rows "
              f"in {total:.0f} s of simulation (and {builds:.0f} s of simulator builds); at the measured rates, "
              f"{SOAK_ROWS} rows of every configuration take {_duration(full)} (one job)."]
    return "\n".join(lines) + "\n"


def run_soak(rows: int = SOAK_ROWS, patterns: list[str] | None = None, *, simulator: str = "verilator",
             seed: int = 1, jobs: int = 1, out_dir: Path = REPORTS, builds: Path = BUILDS) -> dict[str, Any]:
    """Soak every selected configuration (``jobs`` at a time) and write ``soak.json`` and ``soak.md`` into
    ``out_dir``; returns ``records``, ``json`` and ``markdown`` (the paths).

    Raises
    ------
    UsageError
        A pattern matches no configuration, or ``out_dir`` cannot be written.
    int8attn.verif.runner.SimulatorMissing
        The simulator is missing.
    """
    from int8attn.verif.runner import find_simulator

    configs = selected(patterns)
    out_dir = output_folder(Path(out_dir))
    find_simulator(simulator)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(soak_one, label, config, rows, seed, simulator, builds)
                   for label, config in configs.items()]
        records = [future.result() for future in futures]
    document = {"rows_per_configuration": rows, "seed": seed, "simulator": simulator, "configurations": records}
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
