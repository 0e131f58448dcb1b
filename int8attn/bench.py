"""Benchmarks behind ``int8attn bench`` and ``make bench``.

Measures the golden model's throughput and, for each softmax configuration of :data:`MATRIX`, the elements per cycle
and the latency of the generated RTL in a Verilator simulation (the runner's ``cycle`` test: back-to-back rows, no
idle input cycle, output always ready). Writes ``build/reports/bench.json`` and ``build/reports/bench.md``; with
``update_readme`` the table also replaces the ``bench`` block of ``README.md`` (:func:`with_table`).
"""

import importlib.metadata
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from int8attn.golden import SoftmaxConfig, SoftmaxModel

MATRIX = ((1, 1), (8, 1), (10, 1), (10, 2), (64, 4), (256, 8), (1024, 4))
LATENCY_SLACK = 24
REPORTS = Path("build/reports")
README = Path("README.md")
MODEL_N = 64
SIMULATOR = "verilator"


class ReadmeError(ValueError):
    """The README has no benchmark block to replace."""


THROUGHPUT_FLOOR = 0.99


def model_throughput(rows: int, n: int = MODEL_N, repeats: int = 3) -> float:
    """Elements per second of :class:`SoftmaxModel` on ``rows`` random rows of length ``n``, best of ``repeats``."""
    model = SoftmaxModel(SoftmaxConfig(n=n, lanes=1))
    x = np.random.default_rng(0).integers(-128, 128, (rows, n), dtype=np.int8)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(x)
        seconds.append(time.perf_counter() - start)
    return rows * n / min(seconds)


def measure_softmax(n: int, lanes: int, rows: int) -> dict:
    """Elements per cycle and latency of one configuration, measured by the runner's ``cycle`` test.

    The emitted files land in ``build/reports/rtl/softmax_n{n}_p{lanes}``; the sidecar's latency is compared with
    the measured one.
    """
    from int8attn.hdl.emit import emit
    from int8attn.verif.runner import run

    config = SoftmaxConfig(n=n, lanes=lanes)
    emitted = emit(config, REPORTS / "rtl" / f"softmax_n{n}_p{lanes}")
    sidecar_latency = json.loads(emitted.sidecar.read_text())["latency_cycles"]
    result = run(config, SIMULATOR, rows=rows, test="cycle", idle=0, backpressure=0)
    latencies = result.latency_cycles
    record = {
        "n": n,
        "lanes": lanes,
        "elements_per_cycle": result.elements_per_cycle,
        "latency_cycles": max(latencies) if latencies else None,
        "latencies_measured": latencies,
        "sidecar_latency_cycles": sidecar_latency,
        "latency_bound": n // lanes + LATENCY_SLACK,
        "rows": result.rows,
        "cycles": result.cycles,
        "passed": result.passed,
        "errors": result.errors,
    }
    record["problems"] = _problems(record)
    return record


def _problems(record: dict) -> list[str]:
    if not record["passed"]:
        return ["simulation failed (errors in bench.json)"]
    problems = []
    if set(record["latencies_measured"]) != {record["sidecar_latency_cycles"]}:
        problems.append(f"measured latencies {record['latencies_measured']} differ from the sidecar's "
                        f"{record['sidecar_latency_cycles']}")
    elif record["latency_cycles"] > record["latency_bound"]:
        problems.append(f"latency {record['latency_cycles']} exceeds the bound {record['latency_bound']}")
    if record["elements_per_cycle"] is None:
        problems.append("no elements/cycle measured")
    elif record["elements_per_cycle"] < THROUGHPUT_FLOOR * record["lanes"]:
        problems.append(f"{record['elements_per_cycle']:.3f} elements/cycle is below {THROUGHPUT_FLOOR}·P")
    return problems


def markdown(report: dict) -> str:
    """The benchmark table and the model throughput as Markdown."""
    lines = [
        f"Measured by `{report['command']}` with {report['simulator']}: the runner's `cycle` test, back-to-back rows "
        "(no idle input cycle, output always ready). Elements/cycle: the sustained rate, beats × P over the cycles "
        "from the first to the last beat, the lower of input and output (the testbench also checks that the output "
        "has no gap). Latency: cycles from the last input beat of a row accepted to its first output beat valid, the "
        "largest over all rows.",
        "",
        "| N | P | rows | elements/cycle | latency (cycles) | sidecar latency | bound N/P + 24 | check |",
        "|---:|---:|---:|---:|---:|---:|---:|:---|",
    ]
    for record in report["softmax"]:
        epc = "–" if record["elements_per_cycle"] is None else f"{record['elements_per_cycle']:.3f}"
        latency = "–" if record["latency_cycles"] is None else record["latency_cycles"]
        check = "; ".join(record["problems"]) or "ok"
        cells = [record["n"], record["lanes"], record["rows"], epc, latency, record["sidecar_latency_cycles"],
                 record["latency_bound"], check]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    lines += [
        "",
        f"Golden model (`SoftmaxModel`, numpy {report['numpy']}, Python {report['python']}): "
        f"{report['model_elements_per_s'] / 1e6:.1f} M elements/s (N = {MODEL_N}, {report['model_rows']} rows, "
        "best of 3).",
    ]
    return "\n".join(lines) + "\n"


def with_table(readme: Path, table: str, block: str = "bench") -> str:
    """The text of ``readme`` with ``table`` between the ``<!-- {block}:start -->`` and ``:end`` markers."""
    text = readme.read_text() if readme.is_file() else ""
    opening, closing = f"<!-- {block}:start -->", f"<!-- {block}:end -->"
    start, end = text.find(opening), text.find(closing)
    if start < 0 or end < start:
        raise ReadmeError(f"{readme.resolve()} has no {opening} ... {closing} block; "
                          "allowed: run from the repository root")
    return f"{text[:start + len(opening)]}\n{table}{text[end:]}"


def run(quick: bool = False, update_readme: bool = False) -> int:
    """Run the benchmarks, write the reports (and the README block); 0 when every check held, else 1."""
    if update_readme:
        with_table(README, "")
    model_rows = 10_000 if quick else 100_000
    sim_rows = 100 if quick else 1000
    records = []
    for n, lanes in MATRIX:
        print(f"softmax n={n} lanes={lanes}: cycle test on {SIMULATOR} ...", flush=True)
        records.append(measure_softmax(n, lanes, sim_rows))
    report = {
        "command": "int8attn bench" + (" --quick" if quick else ""),
        "simulator": f"Verilator {importlib.metadata.version('verilator')}",
        "numpy": np.__version__,
        "python": platform.python_version(),
        "model_elements_per_s": model_throughput(model_rows),
        "model_rows": model_rows,
        "softmax": records,
    }
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(report)
    (REPORTS / "bench.md").write_text(table)
    print(table)
    print(f"wrote {REPORTS / 'bench.json'} and {REPORTS / 'bench.md'}")
    if update_readme:
        README.write_text(with_table(README, table))
        print(f"updated the benchmark block of {README}")
    problems = [f"n={r['n']} lanes={r['lanes']}: {problem}" for r in records for problem in r["problems"]]
    for problem in problems:
        print(problem, file=sys.stderr)
    for record in records:
        for error in record["errors"]:
            print(f"n={record['n']} lanes={record['lanes']}: {error}", file=sys.stderr)
    return 1 if problems else 0
