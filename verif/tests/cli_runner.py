"""Run the ``int8attn`` command for the tests: in this process (fast), or once in a while as a real process; and
Verilator's lint of what it emits.

:func:`run` calls :func:`int8attn.cli.main` the way ``python -m int8attn.cli`` does, with its own working folder,
environment, stdout and stderr, and answers like :func:`subprocess.run`; it saves a Python start-up and the package
imports per call. :func:`run_process` is the real process, for the few tests of the entry point itself.
"""

import contextlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from int8attn.cli import main
from int8attn.verif.runner import VERILATOR_WAIVERS, SimulatorMissing, find_simulator

TIMEOUT_S = 600


def options_of(parameters: dict[str, Any]) -> list[str]:
    """The command-line options that set ``parameters`` (a configuration's ``as_dict()``, say): a flag by its name
    when true, a tuple comma-separated, ``None`` left at its default."""
    options = []
    for key, value in parameters.items():
        option = f"--{key.replace('_', '-')}"
        if isinstance(value, bool):
            options += [option] if value else []
        elif value is not None:
            options.append(f"{option}={','.join(map(str, value)) if isinstance(value, tuple) else value}")
    return options


def run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``int8attn *args`` in this process, in folder ``cwd`` with environment ``env`` (default: this process's).

    The working folder and the whole environment are restored afterwards, also what the command changed in them (the
    simulator runner puts Verilator's folder on ``PATH``, for instance). An exception that ``main`` lets through is
    raised here, where a process would print its traceback and exit with code 1.
    """
    argv = [str(arg) for arg in args]
    stdout, stderr = io.StringIO(), io.StringIO()
    folder, environment = Path.cwd(), dict(os.environ)
    try:
        if cwd is not None:
            os.chdir(cwd)
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                code = main(argv)
            except SystemExit as exit_:
                code = exit_.code
    finally:
        os.chdir(folder)
        os.environ.clear()
        os.environ.update(environment)
    returncode = 0 if code is None else code
    return subprocess.CompletedProcess(["int8attn", *argv], returncode, stdout.getvalue(), stderr.getvalue())


def run_process(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m int8attn.cli *args`` as a separate process, in folder ``cwd``."""
    return subprocess.run([sys.executable, "-m", "int8attn.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=TIMEOUT_S)


def verilator_lint(verilog: Path) -> subprocess.CompletedProcess:
    """``verilator --lint-only`` with the runner's waivers; skips the test when Verilator is missing."""
    try:
        find_simulator("verilator")
    except SimulatorMissing as error:
        pytest.skip(str(error))
    return subprocess.run([shutil.which("verilator", path=os.environ["PATH"]), "--lint-only", *VERILATOR_WAIVERS,
                           str(verilog)], capture_output=True, text=True, timeout=TIMEOUT_S)
