"""pytest options and fixtures of the RTL simulations."""

import os
from pathlib import Path

import pytest

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
