"""The block memories of :mod:`int8attn.hdl.memory`, the exp ROM built on them, and the ECP5 ``DP16KD`` model they
simulate with (``verif/vendor/ecp5_dp16kd.v``).

* The model has the ports and parameters of Yosys's blackbox, in order. Four configurations side by side (REGMODE
  NOREG and OUTREG, the three WRITEMODEs, synchronous and asynchronous reset, other chip-select decodes) get random
  reads, byte-enabled writes, clock enables, chip selects and resets on both ports, and random INITVALs; a cycle
  model in Python predicts DOA and DOB on every cycle (Icarus and Verilator).
* Yosys's own packing: ``synth_ecp5`` maps plain Verilog memories with random contents (a 30-bit ROM, a ROM with two
  read ports, a RAM with byte-enabled writes) to DP16KD blocks; their INITVALs are those :func:`initvals` computes,
  and the netlist, simulated with the model and Yosys's ECP5 fabric cells (Verilator), reads every address back.
  (Plain Verilog because Yosys 0.70's ABC9 stops, without a message, on the generic :class:`Rom` alone: a port
  ``data`` beside Amaranth's alias wire ``data[0]``, all of it flip-flop outputs.)
* :class:`Rom`, :class:`Ram` and :class:`ExpRom` of every target, as Amaranth's Verilog with
  :func:`~int8attn.verif.vendor.simulation_models`, get random addresses, random enable stalls and (Ram) random
  writes, on Icarus and Verilator, against a Python model of their latency-2 reads; the generic ones also run in
  Amaranth's simulator.
"""

import gc
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from amaranth import Value
from amaranth.back import verilog
from amaranth.lib import wiring
from verilog_sim import build_and_run, clocked_testbench, simulator_or_skip, yosys

from int8attn.golden import SoftmaxConfig, SoftmaxModel
from int8attn.golden.params import TARGETS
from int8attn.hdl.exp_rom import DIFF_BITS, ExpRom
from int8attn.hdl.memory import LATENCY, Ram, Rom, initvals
from int8attn.verif.sim import simulate
from int8attn.verif.vendor import ECP5_DP16KD, simulation_library, simulation_models, yosys_share

SIMULATORS = ("icarus", "verilator")
MASK18 = (1 << 18) - 1
BLACKBOX = yosys_share() / "ecp5" / "cells_sim.v"
CYCLES = 1500
"""Cycles of each Rom/Ram/ExpRom case in the Verilog simulations."""
AMARANTH_CYCLES = 400
MODEL_CYCLES = 12000
STALL = 0.3


# A testbench for any set of modules: per-cycle inputs from hex files, per-cycle outputs to hex files.

@dataclass
class _Dut:
    """A module in a testbench: the width of each input and output port (besides ``clk``, and ``rst`` held low when
    ``reset``), each input's value on every cycle, and each output's expected value before every clock edge
    (``None``: not checked)."""

    module: str
    inputs: dict[str, int]
    outputs: dict[str, int]
    stimulus: dict[str, list[int]]
    expected: dict[str, list[int | None]]
    reset: bool = False

    def instance(self) -> str:
        ports = [".clk(clk)", *([".rst(1'b0)"] if self.reset else [])]
        ports += [f".{port}({self.module}_{port})" for port in [*self.inputs, *self.outputs]]
        return f"    {self.module} {self.module}_dut ({', '.join(ports)});\n"


def _digits(bits: int) -> int:
    return -(-bits // 4)


def _testbench(duts: Sequence[_Dut], cycles: int) -> str:
    declarations, loads, drives, writes = [], [], [], []
    for dut in duts:
        name = dut.module
        for port, width in dut.inputs.items():
            declarations.append(f"    reg [{width - 1}:0] {name}_{port}_words [0:{cycles - 1}];\n"
                                f"    reg [{width - 1}:0] {name}_{port};\n")
            loads.append(f'        $readmemh("{name}_{port}.hex", {name}_{port}_words);\n')
            drives.append(f"            {name}_{port} = {name}_{port}_words[cycle];\n")
        for port, width in dut.outputs.items():
            declarations.append(f"    wire [{width - 1}:0] {name}_{port};\n")
        declarations.append(f"    integer {name}_out;\n{dut.instance()}")
        loads.append(f'        {name}_out = $fopen("{name}_out.hex", "w");\n')
        fields = " ".join(["%h"] * len(dut.outputs))
        writes.append(f'            $fwrite({name}_out, "{fields}\\n", '
                      f'{", ".join(f"{name}_{port}" for port in dut.outputs)});\n')
    return clocked_testbench(cycles, declarations, loads, drives, writes)


def _run(simulator: str, duts: Sequence[_Dut], sources: Sequence[Path], folder: Path, *,
         defines: dict[str, str] | None = None) -> None:
    """Simulate ``duts`` from ``sources`` and compare every checked output with its expected value."""
    cycles = {len(values) for dut in duts for values in dut.stimulus.values()}
    assert len(cycles) == 1, "every stimulus must be as long"
    (cycle_count,) = cycles
    for dut in duts:
        for port, width in dut.inputs.items():
            (folder / f"{dut.module}_{port}.hex").write_text(
                "".join(f"{value:0{_digits(width)}x}\n" for value in dut.stimulus[port]))
    (folder / "tb.v").write_text(_testbench(duts, cycle_count))
    build_and_run(simulator, [folder / "tb.v", *sources], "tb", folder, defines)
    for dut in duts:
        lines = (folder / f"{dut.module}_out.hex").read_text().split()
        ports = list(dut.outputs)
        assert len(lines) == cycle_count * len(ports)
        for k, port in enumerate(ports):
            for cycle, text in enumerate(lines[k::len(ports)]):
                expected = dut.expected[port][cycle]
                if expected is None:
                    continue
                got = int(text, 16) if re.fullmatch(r"[0-9a-f]+", text) else text
                if got != expected:
                    pytest.fail(f"{dut.module}.{port}, cycle {cycle}: {got if isinstance(got, str) else hex(got)}, "
                                f"expected {expected:#x}")


# The DP16KD model against a cycle model of the documented behaviour.

def _header_ports(path: Path) -> list[tuple[str, str]]:
    """``(direction, name)`` of each port in the ANSI header of ``DP16KD`` in ``path``, in order."""
    header = re.search(r"\bmodule\s+DP16KD\s*\((.*?)\);", re.sub(r"//[^\n]*", "", path.read_text()), re.S).group(1)
    ports = []
    for direction, names in re.findall(r"\b(input|output)\b([^;]*?)(?=\binput\b|\boutput\b|$)", header, re.S):
        ports += [(direction, name.strip()) for name in names.split(",") if name.strip()]
    return ports


def _parameters(path: Path) -> dict[str, str]:
    body = re.search(r"\bmodule\s+DP16KD\b(.*?)\bendmodule", path.read_text(), re.S).group(1)
    return dict(re.findall(r"\bparameter\s+(\w+)\s*=\s*([^;]+);", body))


def test_model_ports_and_parameters_are_the_blackbox_ones():
    ports = _header_ports(ECP5_DP16KD)
    assert ports == _header_ports(BLACKBOX)
    assert len(ports) == 2 * (18 + 14 + 5 + 3 + 18)
    parameters = _parameters(ECP5_DP16KD)
    assert parameters == _parameters(BLACKBOX)
    assert {f"INITVAL_{k:02X}" for k in range(64)} <= parameters.keys()


@dataclass(frozen=True)
class _Configuration:
    """Parameters of one DP16KD instance of the model test (port A first in each pair)."""

    name: str
    regmode: tuple[str, str]
    writemode: tuple[str, str]
    resetmode: str = "SYNC"
    csdecode: tuple[int, int] = (0, 0)


MODEL_CONFIGURATIONS = (
    _Configuration("noreg", ("NOREG", "NOREG"), ("NORMAL", "NORMAL")),
    _Configuration("outreg", ("OUTREG", "OUTREG"), ("NORMAL", "NORMAL"), csdecode=(0b110, 0b011)),
    _Configuration("through", ("OUTREG", "NOREG"), ("WRITETHROUGH", "READBEFOREWRITE"), resetmode="ASYNC"),
    _Configuration("before", ("NOREG", "OUTREG"), ("READBEFOREWRITE", "WRITETHROUGH"), csdecode=(0b001, 0)),
)
MODEL_PORTS = {"ce": 2, "oce": 2, "we": 2, "rst": 2, "cs": 6, "ad": 28, "di": 36}


def _model_wrapper(configuration: _Configuration, init: dict[str, int]) -> str:
    """A module with vector ports around one DP16KD: port A on the low half of each vector, port B on the high."""
    parameters = {"DATA_WIDTH_A": "18", "DATA_WIDTH_B": "18", "RESETMODE": f'"{configuration.resetmode}"'}
    for k, side in enumerate("AB"):
        parameters |= {f"REGMODE_{side}": f'"{configuration.regmode[k]}"',
                       f"WRITEMODE_{side}": f'"{configuration.writemode[k]}"',
                       f"CSDECODE_{side}": f'"0b{configuration.csdecode[k]:03b}"'}
    parameters |= {name: f"320'h{value:080x}" for name, value in init.items()}
    pins = []
    for k, side in enumerate("AB"):
        pins += [f".CLK{side}(clk)", f".CE{side}(ce[{k}])", f".OCE{side}(oce[{k}])", f".WE{side}(we[{k}])",
                 f".RST{side}(rst[{k}])"]
        pins += [f".CS{side}{j}(cs[{3 * k + j}])" for j in range(3)]
        pins += [f".AD{side}{j}(ad[{14 * k + j}])" for j in range(14)]
        pins += [f".DI{side}{j}(di[{18 * k + j}])" for j in range(18)]
        pins += [f".DO{side}{j}(dout[{18 * k + j}])" for j in range(18)]
    ports = ", ".join([*(f"input [{width - 1}:0] {name}" for name, width in MODEL_PORTS.items()), "output [35:0] dout"])
    return (f"module dp16kd_{configuration.name}(input clk, {ports});\n"
            f"    DP16KD #({', '.join(f'.{key}({value})' for key, value in parameters.items())})\n"
            f"        ram ({', '.join(pins)});\nendmodule\n")


def _model_stimulus(rng: np.random.Generator, cycles: int) -> dict[str, list[int]]:
    """Random controls of both ports; addresses mostly from a small pool of words, so that reads meet writes. A port
    never touches the word the other port writes at the same edge (the hardware leaves that undefined)."""
    pool = rng.integers(0, 1024, 48)

    def port() -> dict[str, np.ndarray]:
        word = np.where(rng.random(cycles) < 0.85, rng.choice(pool, cycles), rng.integers(0, 1024, cycles))
        cs = np.where(rng.random(cycles) < 0.5, 0, rng.choice([0b110, 0b011, 0b001, 0b100, 0b111], cycles))
        return {"ce": rng.random(cycles) < 0.8, "oce": rng.random(cycles) < 0.8, "we": rng.random(cycles) < 0.35,
                "rst": rng.random(cycles) < 0.03, "cs": cs, "word": word, "low": rng.integers(0, 16, cycles),
                "di": rng.integers(0, 1 << 18, cycles)}

    a, b = port(), port()
    clash = (a["word"] == b["word"]) & (a["we"] | b["we"])
    b["word"] = np.where(clash, (b["word"] + 1) % 1024, b["word"])
    stimulus = {}
    for name, width in (("ce", 1), ("oce", 1), ("we", 1), ("rst", 1), ("cs", 3), ("di", 18)):
        stimulus[name] = [int(x) | int(y) << width for x, y in zip(a[name], b[name], strict=True)]
    stimulus["ad"] = [int(wa) << 4 | int(la) | (int(wb) << 4 | int(lb)) << 14
                      for wa, la, wb, lb in zip(a["word"], a["low"], b["word"], b["low"], strict=True)]
    return stimulus


def _half(value: int, side: int, width: int) -> int:
    """Port A's (``side`` 0) or port B's field of a vector holding both, ``width`` bits each."""
    return value >> (side * width) & ((1 << width) - 1)


def _model_outputs(configuration: _Configuration, init: dict[str, int],
                   stimulus: dict[str, list[int]]) -> list[int]:
    """``{DOB, DOA}`` before each clock edge, from the behaviour the model's header describes."""
    big = sum(value << (320 * int(name[-2:], 16)) for name, value in init.items())
    words = [big >> (20 * k) & MASK18 for k in range(1024)]
    latch, register = [0, 0], [0, 0]
    outputs = []
    for cycle in range(len(stimulus["ce"])):
        ports = [{name: _half(values[cycle], side, MODEL_PORTS[name] // 2) for name, values in stimulus.items()}
                 for side in (0, 1)]
        for side, port in enumerate(ports):
            if configuration.resetmode == "ASYNC" and port["rst"]:
                latch[side] = register[side] = 0
        outputs.append(sum((register[side] if configuration.regmode[side] == "OUTREG" else latch[side]) << (18 * side)
                           for side in (0, 1)))
        next_latch, next_register, writes = list(latch), list(register), []
        for side, port in enumerate(ports):
            if port["rst"]:
                next_latch[side] = next_register[side] = 0
                continue
            word = port["ad"] >> 4
            if port["ce"] and port["cs"] == configuration.csdecode[side]:
                if not port["we"]:
                    next_latch[side] = words[word]
                else:
                    written = words[word]
                    for byte, mask in ((1, 0x1FF), (2, 0x3FE00)):
                        if port["ad"] & byte:
                            written = written & ~mask | port["di"] & mask
                    writes.append((word, written))
                    mode = configuration.writemode[side]
                    if mode != "NORMAL":
                        next_latch[side] = written if mode == "WRITETHROUGH" else words[word]
            if port["oce"]:
                next_register[side] = latch[side]
        for word, written in writes:
            words[word] = written
        latch, register = next_latch, next_register
    return outputs


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_model_reads_writes_and_registers(simulator: str, tmp_path: Path):
    """Random traffic on both ports of four configurations against the cycle model."""
    simulator_or_skip(simulator)
    rng = np.random.default_rng(16)
    stimulus = _model_stimulus(rng, MODEL_CYCLES)
    duts, wrappers = [], []
    for configuration in MODEL_CONFIGURATIONS:
        init = {f"INITVAL_{k:02X}": int.from_bytes(rng.bytes(40), "little") for k in range(64)}
        wrappers.append(_model_wrapper(configuration, init))
        duts.append(_Dut(f"dp16kd_{configuration.name}", MODEL_PORTS, {"dout": 36}, stimulus,
                         {"dout": _model_outputs(configuration, init, stimulus)}))
    (tmp_path / "wrappers.v").write_text("".join(wrappers))
    _run(simulator, duts, [tmp_path / "wrappers.v", ECP5_DP16KD], tmp_path)


# Yosys's packing of memories into DP16KD, simulated with the model.

NETLIST_DEPTH = 1024


def _netlist_source(rom1: Sequence[int], rom2: Sequence[int]) -> str:
    """Two ROMs (30 bits, one read port; 18 bits, two read ports) and a RAM of 18-bit words with a write enable per
    9-bit byte, each read registered once: what ``synth_ecp5`` puts in DP16KD blocks."""
    init = "".join(f"        rom1[{k}] = 30'h{a:x};\n        rom2[{k}] = 18'h{b:x};\n"
                   for k, (a, b) in enumerate(zip(rom1, rom2, strict=True)))
    return f"""module mems(input clk, input [9:0] rom1_addr, output reg [29:0] rom1_data,
            input [19:0] rom2_addr, output reg [35:0] rom2_data,
            input [1:0] ram_we, input [9:0] ram_waddr, input [17:0] ram_wdata, input [9:0] ram_raddr,
            output reg [17:0] ram_rdata);
    reg [29:0] rom1 [0:{NETLIST_DEPTH - 1}];
    reg [17:0] rom2 [0:{NETLIST_DEPTH - 1}];
    reg [17:0] ram [0:{NETLIST_DEPTH - 1}];
    initial begin
{init}    end
    always @(posedge clk) begin
        rom1_data <= rom1[rom1_addr];
        rom2_data <= {{rom2[rom2_addr[19:10]], rom2[rom2_addr[9:0]]}};
        if (ram_we[0]) ram[ram_waddr][8:0] <= ram_wdata[8:0];
        if (ram_we[1]) ram[ram_waddr][17:9] <= ram_wdata[17:9];
        ram_rdata <= ram[ram_raddr];
    end
endmodule
"""


def _netlist_case(rng: np.random.Generator, rom1: list[int], rom2: list[int]) -> _Dut:
    """Every address of each ROM port in order (port 1 of ``rom2`` backwards), then random ones; random byte writes
    and reads of the RAM, never of the word written at the same edge. Expected: the word one edge earlier."""
    cycles = 3 * NETLIST_DEPTH
    sweep = np.arange(cycles) % NETLIST_DEPTH
    rom1_addr = np.concatenate([sweep[:NETLIST_DEPTH], rng.integers(0, NETLIST_DEPTH, cycles - NETLIST_DEPTH)])
    rom2_addr = [(int(a) | (NETLIST_DEPTH - 1 - int(b)) << 10) for a, b in zip(rom1_addr, sweep, strict=True)]
    pool = rng.integers(0, NETLIST_DEPTH, 64)
    waddr, raddr = rng.choice(pool, cycles), rng.choice(pool, cycles)
    we = np.where(waddr == raddr, 0, rng.integers(0, 4, cycles))
    wdata = rng.integers(0, 1 << 18, cycles)
    words, ram_rdata = [0] * NETLIST_DEPTH, [None]
    for cycle in range(cycles - 1):
        ram_rdata.append(words[raddr[cycle]])
        for byte, mask in ((1, 0x1FF), (2, 0x3FE00)):
            if we[cycle] & byte:
                words[waddr[cycle]] = words[waddr[cycle]] & ~mask | int(wdata[cycle]) & mask
    rom2_data = [None] + [rom2[a & 1023] | rom2[a >> 10] << 18 for a in rom2_addr[:-1]]
    return _Dut("mems", {"rom1_addr": 10, "rom2_addr": 20, "ram_we": 2, "ram_waddr": 10, "ram_wdata": 18,
                         "ram_raddr": 10},
                {"rom1_data": 30, "rom2_data": 36, "ram_rdata": 18},
                {"rom1_addr": [int(a) for a in rom1_addr], "rom2_addr": rom2_addr, "ram_we": [int(x) for x in we],
                 "ram_waddr": [int(x) for x in waddr], "ram_wdata": [int(x) for x in wdata],
                 "ram_raddr": [int(x) for x in raddr]},
                {"rom1_data": [None] + [rom1[a] for a in rom1_addr[:-1]], "rom2_data": rom2_data,
                 "ram_rdata": ram_rdata})


def _netlist_initvals(netlist: str) -> list[dict[str, int]]:
    """The INITVAL parameters of each DP16KD in a ``write_verilog -noattr`` netlist."""
    blocks = re.findall(r"DP16KD\s*#\((.*?)\)\s*\S+\s*\(", netlist, re.S)
    return [{name: int(value, 16) for name, value in re.findall(r"\.(INITVAL_\w\w)\(320'h([0-9a-f]+)\)", block)}
            for block in blocks]


def test_yosys_dp16kd_netlist_with_the_model(tmp_path: Path):
    """``synth_ecp5`` of two ROMs and a RAM: Yosys's INITVALs are those :func:`initvals` computes, and the netlist
    reads back every ROM address and every RAM write with the model (Verilator)."""
    simulator_or_skip("verilator")
    rng = np.random.default_rng(1024)
    rom1 = [int(x) for x in rng.integers(0, 1 << 30, NETLIST_DEPTH)]
    rom2 = [int(x) for x in rng.integers(0, 1 << 18, NETLIST_DEPTH)]
    (tmp_path / "mems.v").write_text(_netlist_source(rom1, rom2))
    yosys("read_verilog mems.v; synth_ecp5 -top mems; write_verilog -noattr mems_netlist.v", tmp_path)
    netlist = (tmp_path / "mems_netlist.v").read_text()
    blocks = _netlist_initvals(netlist)
    assert len(blocks) == 4, "rom1: two blocks side by side; rom2: one block, both ports; ram: one block"
    expected = [initvals([word & MASK18 for word in rom1]), initvals([word >> 18 for word in rom1]), initvals(rom2)]
    for init in expected:
        assert init in blocks
    library = simulation_library("ecp5", netlist=True)
    _run("verilator", [_netlist_case(rng, rom1, rom2)], [tmp_path / "mems_netlist.v", *library.models], tmp_path,
         defines=library.defines)


# Rom, Ram and ExpRom on every target, against Python models of their reads.

def _flatten(values: Sequence[Sequence[int | None]], bits: int) -> list[int | None]:
    """Per cycle, the elements of an ArrayLayout value packed into one integer, element 0 lowest; ``None`` where an
    element is."""
    return [None if None in row else sum(value << (k * bits) for k, value in enumerate(row)) for row in values]


def _stalls(rng: np.random.Generator, cycles: int) -> list[int]:
    return [int(x) for x in rng.random(cycles) >= STALL]


def _rom_reads(table: Sequence[int], en: Sequence[int],
               addresses: Sequence[Sequence[int]]) -> list[list[int | None]]:
    """Each port's ``data`` before each clock edge: the word at its address two enabled edges earlier (undefined,
    ``None``, before)."""
    ports = len(addresses[0])
    first, second, reads = [None] * ports, [None] * ports, []
    for enable, row in zip(en, addresses, strict=True):
        reads.append(list(second))
        if enable:
            second = first
            first = [table[address] if address < len(table) else 0 for address in row]
    return reads


def _rom_case(name: str, dut: Rom, rng: np.random.Generator, cycles: int) -> _Dut:
    en = _stalls(rng, cycles)
    addresses = rng.integers(0, 1 << dut.address_bits, (cycles, dut.ports)).tolist()
    return _Dut(name, {"en": 1, "addr": dut.ports * dut.address_bits}, {"data": dut.ports * dut.width},
                {"en": en, "addr": _flatten(addresses, dut.address_bits)},
                {"data": _flatten(_rom_reads(dut.table, en, addresses), dut.width)})


def _ram_stimulus(dut: Ram, rng: np.random.Generator, cycles: int) -> dict[str, list[int]]:
    """Random writes (each lane enabled half of the cycles) and reads (enabled 70 % of the cycles) of a small pool of
    addresses; a write to the address read at the same edge is dropped."""
    pool = rng.integers(0, dut.depth, min(dut.depth, 32))
    w_addr, r_addr = rng.choice(pool, cycles), rng.choice(pool, cycles)
    r_en = np.array(_stalls(rng, cycles))
    lane_enables = (rng.random((cycles, dut.lanes)) < 0.5) @ (1 << np.arange(dut.lanes))
    w_en = np.where((w_addr == r_addr) & (r_en == 1), 0, lane_enables)
    w_data = [int.from_bytes(rng.bytes(8), "little") & ((1 << dut.width) - 1) for _ in range(cycles)]
    return {"w_en": [int(x) for x in w_en], "w_addr": [int(x) for x in w_addr], "w_data": w_data,
            "r_en": [int(x) for x in r_en], "r_addr": [int(x) for x in r_addr]}


def _ram_reads(dut: Ram, stimulus: dict[str, list[int]]) -> list[int | None]:
    """``r_data`` before each clock edge: the word at ``r_addr`` two enabled read edges earlier (undefined, ``None``,
    before); unwritten words read 0; a write changes the lanes its ``w_en`` bits name."""
    lane_bits = dut.width // dut.lanes
    words, first, second, reads = [0] * dut.depth, None, None, []
    for cycle, enable in enumerate(stimulus["r_en"]):
        reads.append(second)
        if enable:
            second, first = first, words[stimulus["r_addr"][cycle]]
        mask = sum(((1 << lane_bits) - 1) << (lane * lane_bits) for lane in range(dut.lanes)
                   if stimulus["w_en"][cycle] >> lane & 1)
        address = stimulus["w_addr"][cycle]
        words[address] = words[address] & ~mask | stimulus["w_data"][cycle] & mask
    return reads


def _ram_case(name: str, dut: Ram, rng: np.random.Generator, cycles: int) -> _Dut:
    stimulus = _ram_stimulus(dut, rng, cycles)
    bits = dut.address_bits
    return _Dut(name, {"w_en": dut.lanes, "w_addr": bits, "w_data": dut.width, "r_en": 1, "r_addr": bits},
                {"r_data": dut.width}, stimulus, {"r_data": _ram_reads(dut, stimulus)})


@dataclass
class _ExpCase:
    """Random diffs and enables of both ports of an :class:`ExpRom` and what each port reads."""

    dut: ExpRom
    en: dict[str, list[int]] = field(default_factory=dict)
    addresses: dict[str, list[list[int]]] = field(default_factory=dict)
    reads: dict[str, list[list[int | None]]] = field(default_factory=dict)

    @classmethod
    def random(cls, dut: ExpRom, rng: np.random.Generator, cycles: int) -> "_ExpCase":
        case = cls(dut)
        tables = {"sum": dut.sum_table, "out": [value >> dut.out_zero_bits for value in dut.out_table]}
        for port, table in tables.items():
            case.en[port] = _stalls(rng, cycles)
            case.addresses[port] = rng.integers(0, 1 << DIFF_BITS, (cycles, dut.lanes)).tolist()
            case.reads[port] = _rom_reads(table, case.en[port], case.addresses[port])
        return case

    def dut_case(self, name: str) -> _Dut:
        widths = {"sum": self.dut.sum_width, "out": self.dut.out_width - self.dut.out_zero_bits}
        inputs = {f"{port}__{member}": width for port in widths
                  for member, width in (("en", 1), ("addr", self.dut.lanes * DIFF_BITS))}
        stimulus = {}
        for port in widths:
            stimulus[f"{port}__en"] = self.en[port]
            stimulus[f"{port}__addr"] = _flatten(self.addresses[port], DIFF_BITS)
        return _Dut(name, inputs, {f"{port}__data": self.dut.lanes * width for port, width in widths.items()},
                    stimulus, {f"{port}__data": _flatten(self.reads[port], widths[port]) for port in widths})


ROMS = [(1, 1, 1), (5, 7, 3), (256, 31, 2), (1000, 40, 1), (1024, 18, 2)]
"""``(table length, width, ports)`` of the Rom cases."""
RAMS = [(1, 1, 1), (18, 96, 1), (64, 96, 1), (37, 1024, 1), (20, 1500, 1), (36, 96, 4), (27, 1500, 3), (32, 40, 4)]
"""``(width, depth, lanes)`` of the Ram cases; 1500 words take two chunks of blocks on ecp5, 9-bit lanes its byte
enables."""
EXP_CONFIGS = [SoftmaxConfig(n=3, lanes=3), SoftmaxConfig(n=4, lanes=4, mode="lut", rom_depth=64, rom_width=12)]


def _exp_rom(config: SoftmaxConfig, target: str) -> ExpRom:
    model = SoftmaxModel(config)
    depth = model.rom_depth
    return ExpRom(config.lanes, model.accumulator_table[:depth], model.exp_table[:depth], target)


def _rtl_cases(target: str, rng: np.random.Generator) -> list[tuple[str, wiring.Component, _Dut]]:
    cases = []
    for k, (length, width, ports) in enumerate(ROMS):
        dut = Rom(rng.integers(0, 1 << width, length).tolist(), width, ports=ports, target=target)
        cases.append((f"rom{k}_{target}", dut, _rom_case(f"rom{k}_{target}", dut, rng, CYCLES)))
    for k, (width, depth, lanes) in enumerate(RAMS):
        dut = Ram(width, depth, target=target, lanes=lanes)
        cases.append((f"ram{k}_{target}", dut, _ram_case(f"ram{k}_{target}", dut, rng, CYCLES)))
    for k, config in enumerate(EXP_CONFIGS):
        dut = _exp_rom(config, target)
        cases.append((f"exp{k}_{target}", dut, _ExpCase.random(dut, rng, CYCLES).dut_case(f"exp{k}_{target}")))
    return cases


def _write_rtl(cases: Sequence[tuple[str, wiring.Component, _Dut]], folder: Path) -> Path:
    source = folder / "duts.v"
    texts = []
    for name, dut, case in cases:
        text = verilog.convert(dut, name=name, emit_src=False)
        case.reset = bool(re.search(rf"\bmodule {name}\([^)]*\brst\b", text))
        texts.append(text)
    source.write_text("".join(texts))
    return source


def test_ice40_rom_is_block_ram(tmp_path: Path):
    """On ``ice40`` a small table is an ``SB_RAM40_4K`` read straight into the output register, not a LUT tree."""
    rng = np.random.default_rng(5)
    rom = Rom([int(word) for word in rng.integers(0, 1 << 31, 64)], 31, target="ice40")
    (tmp_path / "rom.v").write_text(verilog.convert(rom, name="rom", emit_src=False))
    yosys("read_verilog rom.v; synth_ice40 -top rom; tee -q -o stat.txt stat", tmp_path)
    counts = {name: int(count) for count, name in re.findall(r"^\s+(\d+)\s+(SB_\w+)$",
                                                             (tmp_path / "stat.txt").read_text(), re.MULTILINE)}
    assert counts.get("SB_RAM40_4K") == 2
    assert "SB_LUT4" not in counts


@pytest.mark.parametrize("target", TARGETS)
def test_memories_on_icarus(target: str, tmp_path: Path):
    """Each Rom, Ram and ExpRom of ``target`` with the target's simulation models, in Icarus."""
    simulator_or_skip("icarus")
    cases = _rtl_cases(target, np.random.default_rng(TARGETS.index(target)))
    source = _write_rtl(cases, tmp_path)
    library = simulation_library(target)
    _run("icarus", [case for _, _, case in cases], [source, *library.models], tmp_path, defines=library.defines)


def test_memories_on_verilator(tmp_path: Path):
    """The Roms, Rams and ExpRoms of every target in one Verilator build."""
    simulator_or_skip("verilator")
    cases = [case for k, target in enumerate(TARGETS) for case in _rtl_cases(target, np.random.default_rng(k))]
    source = _write_rtl(cases, tmp_path)
    libraries = [simulation_library(target) for target in TARGETS]
    models = list(dict.fromkeys(path for library in libraries for path in library.models))
    defines = {name: value for library in libraries for name, value in library.defines.items()}
    _run("verilator", [case for _, _, case in cases], [source, *models], tmp_path, defines=defines)


def _check_amaranth(dut: wiring.Component, case: _Dut) -> None:
    """Run ``case`` on ``dut`` in Amaranth's simulator: inputs set, outputs compared before every clock edge."""
    def port(path: str):
        value = dut
        for part in path.split("__"):
            value = getattr(value, part)
        return value

    async def bench(ctx):
        for cycle in range(len(next(iter(case.stimulus.values())))):
            for name, values in case.stimulus.items():
                ctx.set(Value.cast(port(name)), values[cycle])
            for name, values in case.expected.items():
                got, expected = ctx.get(Value.cast(port(name))), values[cycle]
                assert expected is None or got == expected, (f"{case.module}.{name}, cycle {cycle}: {got:#x}, "
                                                             f"expected {expected:#x}")
            await ctx.tick()

    simulate(dut, bench)


@pytest.mark.parametrize("index", range(len(ROMS) + len(RAMS) + len(EXP_CONFIGS)))
def test_generic_memories_in_amaranth(index: int):
    """The generic Rom, Ram and ExpRom cases in Amaranth's simulator (shorter runs)."""
    rng = np.random.default_rng(100 + index)
    if index < len(ROMS):
        length, width, ports = ROMS[index]
        dut = Rom(rng.integers(0, 1 << width, length).tolist(), width, ports=ports)
        case = _rom_case("rom", dut, rng, AMARANTH_CYCLES)
    elif index < len(ROMS) + len(RAMS):
        width, depth, lanes = RAMS[index - len(ROMS)]
        dut = Ram(width, depth, lanes=lanes)
        case = _ram_case("ram", dut, rng, AMARANTH_CYCLES)
    else:
        dut = _exp_rom(EXP_CONFIGS[index - len(ROMS) - len(RAMS)], "generic")
        case = _ExpCase.random(dut, rng, AMARANTH_CYCLES).dut_case("exp")
    _check_amaranth(dut, case)


# Structure and arguments.

def test_initvals_layout():
    """Word ``16·xx + i`` at bits ``[20·i +: 18]`` of ``INITVAL_xx``, as in Yosys's ``brams_map_16kd.v``."""
    words = list(range(1, 1025))
    values = initvals(words)
    assert list(values) == [f"INITVAL_{k:02X}" for k in range(64)]
    for index in range(1024):
        assert values[f"INITVAL_{index // 16:02X}"] >> (20 * (index % 16)) & ((1 << 20) - 1) == words[index]
    assert initvals([5])["INITVAL_00"] == 5 and initvals([5])["INITVAL_3F"] == 0


@pytest.mark.parametrize("target", TARGETS)
def test_latency_and_blocks(target: str):
    """Latency 2 everywhere; DP16KD blocks on ecp5 (a Rom: one per 18-bit slice and pair of ports, up to 1024 words;
    a Ram: one per 18-bit slice and 1024 words, with one write lane or 9-bit lanes), none elsewhere; ExpRom pairs
    lanes."""
    ecp5 = target == "ecp5"
    for ports, width, blocks in ((1, 18, 1), (2, 19, 2), (3, 31, 4), (4, 36, 4)):
        rom = Rom([0] * 10, width, ports=ports, target=target)
        text = verilog.convert(rom, name="top")
        assert (rom.latency, rom.blocks) == (LATENCY, blocks if ecp5 else 0)
        assert len(re.findall(r"^\s*DP16KD #", text, re.M)) == rom.blocks
    for depth, blocks in ((1024, 1), (1025, 0)):
        rom = Rom([1] * depth, 18, target=target)
        assert rom.blocks == (blocks if ecp5 else 0)
        assert len(re.findall(r"^\s*DP16KD #", verilog.convert(rom, name="top"), re.M)) == rom.blocks
    for width, depth, lanes, blocks in ((64, 96, 1, 4), (18, 1024, 1, 1), (18, 1025, 1, 2), (20, 1500, 1, 4),
                                        (36, 96, 4, 2), (27, 2048, 3, 4), (32, 96, 4, 0)):
        ram = Ram(width, depth, target=target, lanes=lanes)
        assert (ram.latency, ram.blocks) == (LATENCY, blocks if ecp5 else 0)
        assert len(re.findall(r"^\s*DP16KD #", verilog.convert(ram, name="top"), re.M)) == ram.blocks
    exp_rom = _exp_rom(SoftmaxConfig(n=5, lanes=5), target)
    assert exp_rom.latency == LATENCY
    text = verilog.convert(exp_rom, name="top")
    assert len(re.findall(r"^\s*DP16KD #", text, re.M)) == (2 * 3 * 2 if ecp5 else 0)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize(("build", "message"), [
    (lambda: Rom([], 4), "table must hold at least one word"),
    (lambda: Rom([16], 4), "table words must lie in 0..2\\*\\*4 − 1"),
    (lambda: Rom([-1], 4), "table words must lie in"),
    (lambda: Rom([0], 0), "width must be ≥ 1, not 0"),
    (lambda: Rom([0], 4, ports=0), "ports must be ≥ 1, not 0"),
    (lambda: Rom([0], 4, target="xc6"), "target must be one of generic, ice40, ecp5, xc7"),
    (lambda: Ram(0, 4), "width must be ≥ 1, not 0"),
    (lambda: Ram(4, 0), "depth must be ≥ 1, not 0"),
    (lambda: Ram(4, 4, target="ecp3"), "target must be one of"),
    (lambda: ExpRom(2, [1], [1], target="ecp3"), "target must be one of"),
])
def test_bad_arguments(build, message: str):
    with pytest.raises(ValueError, match=message):
        build()
    gc.collect()


def test_simulation_models_hold_the_dp16kd_model():
    assert ECP5_DP16KD in simulation_models("ecp5")
    library = simulation_library("ecp5", netlist=True)
    assert ECP5_DP16KD in library.models
    assert not any("module DP16KD" in path.read_text() for path in library.models if path != ECP5_DP16KD)
