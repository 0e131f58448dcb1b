"""pytest options and fixtures of the RTL simulations and the formal checks."""

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from int8attn.formal import FormalToolMissing, find_tools
from int8attn.golden.files import write_atomic
from int8attn.hdl import emit
from int8attn.units import unit_of
from int8attn.verif.runner import (
    SIMULATORS,
    SimResult,
    SimulatorMissing,
    config_hash,
    default_build_dir,
    find_simulator,
    locked,
    run,
)

DEFAULT_ROWS = 64


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("int8attn")
    group.addoption("--rows", type=int, default=None,
                    help=f"random rows per RTL check test (default: $INT8ATTN_ROWS or {DEFAULT_ROWS})")
    group.addoption("--sim-build", type=Path, default=None,
                    help="folder of the simulator builds, kept between runs (default: <rootdir>/build/sim)")


@pytest.fixture(scope="session")
def rows(pytestconfig: pytest.Config) -> int:
    """Random rows of each ``check`` simulation: ``--rows``, else ``$INT8ATTN_ROWS``, else 64."""
    option = pytestconfig.getoption("rows")
    return option if option is not None else int(os.environ.get("INT8ATTN_ROWS", DEFAULT_ROWS))


@pytest.fixture(scope="session")
def sim_build_root(pytestconfig: pytest.Config) -> Path:
    """Root of the per-simulator, per-configuration build folders; a build is reused while its Verilog is unchanged."""
    option = pytestconfig.getoption("sim_build")
    return (option if option is not None else pytestconfig.rootpath / "build" / "sim").resolve()


@pytest.fixture(scope="session")
def designs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Any], emit.EmitResult]:
    """``designs(config)``: the design of ``config``, emitted once in this test session (by whichever xdist worker
    asks first) into a folder of the session's own, so that no design outlives the code that emitted it."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "designs"

    def design(config: Any) -> emit.EmitResult:
        folder = root / f"{unit_of(config).name}-{config_hash(config)}"
        manifest = folder / "emitted.json"
        with locked(folder):
            if not manifest.is_file():
                emitted = emit.emit(config, folder)
                write_atomic(manifest, json.dumps([str(path.relative_to(folder)) for path in emitted.paths]))
            verilog, sidecar, *artefacts = (folder / name for name in json.loads(manifest.read_text()))
        return emit.EmitResult(verilog=verilog, sidecar=sidecar, artefacts=tuple(artefacts))

    return design


@pytest.fixture(scope="session")
def simulate(sim_build_root: Path, designs: Callable[[Any], emit.EmitResult]) -> Callable[..., SimResult]:
    """``simulate(config, simulator, **options)``: :func:`~int8attn.verif.runner.run` of the session's design of
    ``config`` (:func:`designs`) in the configuration's folder under ``sim_build_root``, skipping the test with the
    install command when the simulator is missing."""
    def simulate_in_root(config: Any, simulator: str, **options: Any) -> SimResult:
        try:
            find_simulator(simulator)
            return run(config, simulator, build_dir=default_build_dir(config, simulator, sim_build_root),
                       design=designs(config), **options)
        except SimulatorMissing as error:
            pytest.skip(str(error))

    return simulate_in_root


@pytest.fixture(scope="session")
def quick_simulator() -> str:
    """The first installed simulator, Icarus (the faster build) first, for the checks of the testbench itself."""
    reasons = []
    for name in reversed(SIMULATORS):
        try:
            find_simulator(name)
        except SimulatorMissing as error:
            reasons.append(str(error))
        else:
            return name
    pytest.skip("; ".join(reasons))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: the 10^5-row endurance runs of make soak (minutes; also marked slow)")


@pytest.fixture(scope="session")
def tools() -> dict[str, str]:
    """The formal tools (:func:`int8attn.formal.find_tools`); skips, with the install command, without them."""
    try:
        return find_tools()
    except FormalToolMissing as error:
        pytest.skip(str(error))
