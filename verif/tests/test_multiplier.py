"""The pipelined :class:`~int8attn.hdl.multiplier.Multiplier` on every target, and the ECP5 ``MULT18X18D`` model it
simulates with (``verif/vendor/ecp5_mult18x18d.v``), against Python's exact products.

* The model has the ports of Yosys's blackbox, in order. Six register configurations (latency 0 to 3, asynchronous
  reset, and registers on CLK1/CE2/RST3 with the unselected clocks, enables and resets driven wrongly) run side by
  side: every pair of 9-bit patterns sign-extended to the 18-bit ports under all four SIGNEDA/SIGNEDB settings, each
  taken by an enabled clock edge after random stall cycles (Verilator; 6-bit patterns on Icarus), then random
  full-width operands with random clock enables and resets. A cycle-exact numpy model of the registers predicts ``P``
  and ``SIGNEDP`` on every cycle.
* Each target's Multiplier, as Amaranth's Verilog with :func:`~int8attn.verif.vendor.simulation_models`, gets every
  pair of edge operands (shape bounds, ±1, 0, powers of two around the DSP ports' widths) and random ones, with random
  ``en`` stalls, on Icarus and on Verilator; so do Multipliers with an addend (edge and random addends, taken
  ``latency − addend_latency`` enabled cycles after their operands) and with the products registered in the fabric.
* Yosys's ``synth_ecp5`` netlists of a 32×32 signed Multiplier (its ``MULT18X18D`` registers in use) and of a plain
  ``*`` (which Yosys maps to unregistered ``MULT18X18D``) run with the model and Yosys's ECP5 cell library
  (Verilator: Icarus 11 cannot read that library); ``synth_xilinx`` packs every xc7 register into the ``DSP48E1``
  blocks and sums the chained products in their post-adders (a chain needs no fabric adder), and those netlists run
  with Yosys's Xilinx cell library on Icarus.
"""

import gc
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from amaranth import Shape, signed, unsigned
from amaranth.back import verilog
from verilog_sim import build_and_run, clocked_testbench, simulator_or_skip, yosys

from int8attn.hdl.fixedpoint import shape_bounds
from int8attn.hdl.multiplier import TARGETS, Multiplier
from int8attn.verif.vendor import (
    ECP5_DP16KD,
    ECP5_MULT18X18D,
    simulation_defines,
    simulation_library,
    simulation_models,
    yosys_share,
)

SIMULATORS = ("icarus", "verilator")
SHAPES = [(signed(18), signed(18)), (unsigned(31), unsigned(31)), (signed(32), unsigned(31)), (signed(33), signed(36)),
          (unsigned(36), unsigned(36)), (unsigned(7), signed(3))]
RANDOM_OPERANDS = 400
STALL = 0.3
RESET_CYCLES = 2
WIDE = (signed(32), signed(32))
"""The multiplier synthesised for the ECP5 and xc7 netlist checks."""
CHAINED = (signed(32), unsigned(30))
"""A product of four DSP48E1 blocks in one chain on xc7 (with ``fabric_register``, as the reciprocal's ``−d·x``)."""

MASK18 = (1 << 18) - 1
MASK36 = (1 << 36) - 1
PATTERN_BITS = {"verilator": 9, "icarus": 6}
"""Width of the sign-extended operand patterns the model runs through exhaustively, per simulator."""
MODEL_RANDOM_CYCLES = 16384
MODEL_STALL = 0.2
MODEL_RESET = 0.02
BLACKBOX = yosys_share() / "ecp5" / "cells_bb.v"
HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
HEX_VALUES = np.full(256, 255, dtype=np.uint8)
HEX_VALUES[HEX_DIGITS] = np.arange(16)


# Simulation plumbing: hex files in and out, Icarus and Verilator runs.

def _write_words(path: Path, values: np.ndarray, bits: int) -> None:
    """``values`` (bit patterns of at most 60 bits) as one hex word a line, for ``$readmemh``."""
    digits = -(-bits // 4)
    values = np.asarray(values, dtype=np.int64) & ((1 << bits) - 1)
    nibbles = (values[:, None] >> (4 * np.arange(digits - 1, -1, -1))) & 15
    newline = np.full((len(values), 1), ord("\n"), dtype=np.uint8)
    path.write_bytes(np.concatenate([HEX_DIGITS[nibbles], newline], axis=1).tobytes())


def _read_fields(path: Path, digits: Sequence[int]) -> list[np.ndarray]:
    """The hex fields of each line of ``path``, ``digits[k]`` wide and one space apart; fields of more than 15
    digits as Python ints."""
    width = sum(digits) + len(digits)
    text = np.frombuffer(path.read_bytes(), dtype=np.uint8).reshape(-1, width)
    nibbles = HEX_VALUES[text]
    starts = np.cumsum([0, *[count + 1 for count in digits]])[:-1]
    fields = []
    for start, count in zip(starts, digits, strict=True):
        field = nibbles[:, start:start + count].astype(np.int64)
        unknown = np.flatnonzero((field == 255).any(axis=1))
        assert not len(unknown), f"{path.name} line {unknown[0] + 1}: unknown bits {bytes(text[unknown[0]])!r}"
        value = np.zeros(len(field), dtype=object if count > 15 else np.int64)
        for chunk in range(0, count, 15):
            part = field[:, chunk:chunk + 15]
            value = value * (1 << (4 * part.shape[1])) + part @ (16 ** np.arange(part.shape[1] - 1, -1, -1))
        fields.append(value)
    return fields


# The MULT18X18D model.

def _module_ports(path: Path, module: str) -> list[tuple[str, str]]:
    """``(direction, name)`` of each port of ``module`` in ``path``, in the order of its header."""
    text = re.sub(r"//[^\n]*", "", path.read_text())
    body = re.search(rf"\bmodule\s+{module}\s*\((.*?)\);(.*?)\bendmodule", text, re.S)
    directions = {}
    for direction, names in re.findall(r"\b(input|output)\s+([^;]+);", body.group(2)):
        directions.update((name.strip(), direction) for name in names.split(","))
    return [(directions[name], name) for name in (port.strip() for port in body.group(1).split(","))]


def test_model_ports_are_the_blackbox_ports():
    ports = _module_ports(ECP5_MULT18X18D, "MULT18X18D")
    assert ports == _module_ports(BLACKBOX, "MULT18X18D")
    assert len(ports) == 233


def _parameters(path: Path, module: str) -> dict[str, str]:
    body = re.search(rf"\bmodule\s+{module}\b(.*?)\bendmodule", path.read_text(), re.S).group(1)
    return dict(re.findall(r"\bparameter\s+(\w+)\s*=\s*([^;]+);", body))


def test_model_parameters_are_the_blackbox_parameters():
    assert _parameters(ECP5_MULT18X18D, "MULT18X18D") == _parameters(BLACKBOX, "MULT18X18D")


@dataclass(frozen=True)
class _Registers:
    """A register configuration of the model: which registers exist, their clock, enable and reset selections."""

    name: str
    input: bool = False
    pipeline: bool = False
    output: bool = False
    asynchronous: bool = False
    clock: int = 0
    enable: int = 0
    reset: int = 0

    def instance(self, index: int) -> str:
        def register(present: bool) -> str:
            return f'"CLK{self.clock}"' if present else '"NONE"'

        parameters = {"RESETMODE": '"ASYNC"' if self.asynchronous else '"SYNC"'}
        for name, present in (("INPUTA", self.input), ("INPUTB", self.input), ("PIPELINE", self.pipeline),
                              ("OUTPUT", self.output)):
            parameters |= {f"REG_{name}_CLK": register(present), f"REG_{name}_CE": f'"CE{self.enable}"',
                           f"REG_{name}_RST": f'"RST{self.reset}"'}
        ports = {f"A{k}": f"a[{k}]" for k in range(18)} | {f"B{k}": f"b[{k}]" for k in range(18)}
        ports |= {f"P{k}": f"p_{index}[{k}]" for k in range(36)}
        for k in range(4):
            ports |= {f"CLK{k}": "clk" if k == self.clock else "~clk", f"CE{k}": "ce" if k == self.enable else "~ce",
                      f"RST{k}": "rst" if k == self.reset else "~rst"}
        ports |= {"SIGNEDA": "signeda", "SIGNEDB": "signedb", "SOURCEA": "1'b0", "SOURCEB": "1'b0",
                  "SIGNEDP": f"signedp_{index}"}
        return (f"    MULT18X18D #({', '.join(f'.{key}({value})' for key, value in parameters.items())})\n"
                f"        dut_{index} ({', '.join(f'.{key}({value})' for key, value in ports.items())});\n")

    def outputs(self, stimulus: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``P`` and ``SIGNEDP`` sampled before each cycle's rising edge."""
        ce, rst = stimulus["ce"], stimulus["rst"]

        def stage(present: bool, *values: np.ndarray) -> list[np.ndarray]:
            return [_registered(value, ce, rst, self.asynchronous) for value in values] if present else list(values)

        a, signeda = stage(self.input, stimulus["a"], stimulus["signeda"])
        b, signedb = stage(self.input, stimulus["b"], stimulus["signedb"])
        product = (_operand(a, signeda) * _operand(b, signedb)) & MASK36
        pipelined, signedp = stage(self.pipeline, product, signeda | signedb)
        (p,) = stage(self.output, pipelined)
        return p, signedp


REGISTER_CONFIGURATIONS = (
    _Registers("none"),
    _Registers("input", input=True),
    _Registers("input+pipeline", input=True, pipeline=True),
    _Registers("all", input=True, pipeline=True, output=True),
    _Registers("all, asynchronous reset", input=True, pipeline=True, output=True, asynchronous=True),
    _Registers("all on CLK1/CE2/RST3", input=True, pipeline=True, output=True, clock=1, enable=2, reset=3),
)


def _registered(d: np.ndarray, ce: np.ndarray, rst: np.ndarray, asynchronous: bool) -> np.ndarray:
    """A register of ``d`` sampled before each rising edge: ``d`` at the last earlier edge with ``ce`` or ``rst``
    high (0 if ``rst`` was), 0 before any; an asynchronous reset clears it in its own cycle already."""
    cycles = np.arange(len(d))
    last = np.concatenate([[-1], np.maximum.accumulate(np.where(ce | rst, cycles, -1))[:-1]])
    value = np.zeros_like(d)
    taken = last >= 0
    value[taken] = np.where(rst[last[taken]], 0, d[last[taken]])
    if asynchronous:
        value[rst] = 0
    return value


def _operand(pattern: np.ndarray, signed_flag: np.ndarray) -> np.ndarray:
    return np.where(signed_flag & (pattern >> 17 == 1), pattern - (1 << 18), pattern)


def _model_stimulus(rng: np.random.Generator, pattern_bits: int) -> dict[str, np.ndarray]:
    """Every pair of ``pattern_bits``-bit patterns, sign-extended to 18 bits, under the four signedness settings, each
    at an enabled edge with a random stall before it; then random full-width cycles with resets."""
    patterns = np.arange(-(1 << (pattern_bits - 1)), 1 << (pattern_bits - 1)) & MASK18
    a, b = (grid.ravel() for grid in np.meshgrid(patterns, patterns, indexing="ij"))
    flags = np.arange(4).repeat(len(a))
    vectors = {"a": np.tile(a, 4), "b": np.tile(b, 4), "signeda": flags >> 1 == 1, "signedb": flags & 1 == 1}
    stalls = rng.random(len(flags)) < MODEL_STALL
    cycles = len(flags) + stalls.sum()
    exhaustive = _random_cycles(rng, cycles, ce=0.0, rst=0.0)
    taken = np.arange(len(flags)) + np.cumsum(stalls)
    for name, values in vectors.items():
        exhaustive[name][taken] = values
    exhaustive["ce"][taken] = True
    tail = _random_cycles(rng, MODEL_RANDOM_CYCLES, ce=1 - MODEL_STALL, rst=MODEL_RESET)
    return {name: np.concatenate([exhaustive[name], tail[name]]) for name in exhaustive}


def _random_cycles(rng: np.random.Generator, cycles: int, ce: float, rst: float) -> dict[str, np.ndarray]:
    return {"a": rng.integers(0, 1 << 18, cycles), "b": rng.integers(0, 1 << 18, cycles),
            "signeda": rng.random(cycles) < 0.5, "signedb": rng.random(cycles) < 0.5,
            "ce": rng.random(cycles) < ce, "rst": rng.random(cycles) < rst}


def _model_testbench(cycles: int) -> str:
    count = len(REGISTER_CONFIGURATIONS)
    outputs = ", ".join(f"p_{k}" for k in range(count))
    signedp = ", ".join(f"signedp_{k}" for k in reversed(range(count)))
    instances = "".join(registers.instance(k) for k, registers in enumerate(REGISTER_CONFIGURATIONS))
    return f"""`timescale 1ns/1ps
module tb;
    reg clk = 0;
    reg [3:0] controls [0:{cycles - 1}];
    reg [17:0] a_words [0:{cycles - 1}];
    reg [17:0] b_words [0:{cycles - 1}];
    reg rst, ce, signeda, signedb;
    reg [17:0] a, b;
    wire [35:0] {outputs};
    wire {signedp};
{instances}
    integer cycle, out;
    initial begin
        $readmemh("controls.hex", controls);
        $readmemh("a.hex", a_words);
        $readmemh("b.hex", b_words);
        out = $fopen("p.hex", "w");
        for (cycle = 0; cycle < {cycles}; cycle = cycle + 1) begin
            {{rst, ce, signeda, signedb}} = controls[cycle];
            a = a_words[cycle];
            b = b_words[cycle];
            #1 $fwrite(out, "{' '.join(['%h'] * (count + 1))}\\n", {outputs}, {{2'b0, {signedp}}});
            clk = 1;
            #1 clk = 0;
        end
        $fclose(out);
        $finish;
    end
endmodule
"""


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_model_products_and_registers(simulator: str, tmp_path: Path):
    """Exhaustive pattern pairs, then random ones with resets, through all six register configurations."""
    simulator_or_skip(simulator)
    stimulus = _model_stimulus(np.random.default_rng(18), PATTERN_BITS[simulator])
    controls = (stimulus["rst"] << 3) | (stimulus["ce"] << 2) | (stimulus["signeda"] << 1) | stimulus["signedb"]
    _write_words(tmp_path / "controls.hex", controls, 4)
    _write_words(tmp_path / "a.hex", stimulus["a"], 18)
    _write_words(tmp_path / "b.hex", stimulus["b"], 18)
    (tmp_path / "tb.v").write_text(_model_testbench(len(controls)))
    build_and_run(simulator, [tmp_path / "tb.v", ECP5_MULT18X18D], "tb", tmp_path)
    *products, signedp = _read_fields(tmp_path / "p.hex", [9] * len(REGISTER_CONFIGURATIONS) + [2])
    for k, registers in enumerate(REGISTER_CONFIGURATIONS):
        expected_p, expected_signedp = registers.outputs(stimulus)
        for name, got, expected in (("P", products[k], expected_p), ("SIGNEDP", signedp >> k & 1, expected_signedp)):
            wrong = np.flatnonzero(got != expected)
            if len(wrong):
                t = wrong[0]
                pytest.fail(f"{registers.name}: {name} differs on {len(wrong)} of {len(got)} cycles; first, cycle {t}: "
                            f"{got[t]:#x}, expected {int(expected[t]):#x} (inputs "
                            f"{ {key: int(values[t]) for key, values in stimulus.items()} })")


# The Multiplier.

def _edge_values(shape: Shape) -> list[int]:
    """The shape's bounds and their neighbours, −1, 0, 1, and 2^k − 1, 2^k, −2^k, −2^k − 1 for ``k`` around the
    widths of the DSP blocks' operand parts."""
    low, high = shape_bounds(shape)
    values = {low, low + 1, -1, 0, 1, high - 1, high}
    for k in (8, 15, 16, 17, 18, 24, 25, 32, 34, 35):
        values |= {sign * (1 << k) + offset for sign in (-1, 1) for offset in (-1, 0)}
    return sorted(value for value in values if low <= value <= high)


def _operands(rng: np.random.Generator, shape: Shape, count: int) -> np.ndarray:
    """Random values of ``shape``, half uniform and half with random magnitudes."""
    low, high = shape_bounds(shape)
    uniform = rng.integers(low, high, count // 2, endpoint=True)
    magnitude = rng.integers(0, shape.width, count - count // 2, endpoint=True)
    scaled = rng.integers(0, 1 << 62, len(magnitude)) >> (62 - magnitude)
    return np.concatenate([uniform, np.clip(np.where(rng.random(len(scaled)) < 0.5, -scaled, scaled), low, high)])


@dataclass
class _Case:
    """One Multiplier in a testbench: its module, and per cycle ``rst``, ``en``, ``a``, ``b`` and the expected ``o``
    where the pipeline has filled (elsewhere ``None``)."""

    module: str
    dut: Multiplier
    rst: np.ndarray
    en: np.ndarray
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray | None
    expected: list[int | None]

    @classmethod
    def random(cls, module: str, dut: Multiplier, rng: np.random.Generator) -> "_Case":
        """Every pair of edge operands and random ones, each on an enabled cycle after random stall cycles, then
        enabled cycles until the last has come out; with an addend, edge addends and random ones on every cycle."""
        edges_a, edges_b = _edge_values(dut.a_shape), _edge_values(dut.b_shape)
        a = np.concatenate([np.repeat(edges_a, len(edges_b)), _operands(rng, dut.a_shape, RANDOM_OPERANDS)])
        b = np.concatenate([np.tile(edges_b, len(edges_a)), _operands(rng, dut.b_shape, RANDOM_OPERANDS)])
        stalls = rng.random(len(a)) < STALL
        taken = RESET_CYCLES + np.arange(len(a)) + np.cumsum(stalls)
        cycles = taken[-1] + dut.latency + 1
        en = np.ones(cycles, dtype=bool)
        en[(taken - 1)[stalls]] = False
        operands = [_operands(rng, dut.a_shape, cycles), _operands(rng, dut.b_shape, cycles)]
        operands[0][taken], operands[1][taken] = a, b
        c = None
        if dut.addend_shape is not None:
            c = _operands(rng, dut.addend_shape, cycles)
            edges_c = _edge_values(dut.addend_shape)
            c[rng.choice(cycles, len(edges_c), replace=False)] = edges_c
        rst = np.arange(cycles) < RESET_CYCLES
        return cls(module, dut, rst, en, *operands, c, _expected(dut, rst, en, *operands, c))

    def padded(self, cycles: int, rng: np.random.Generator) -> "_Case":
        """The case lengthened to ``cycles`` by enabled cycles of random operands."""
        extra = cycles - len(self.en)
        en = np.concatenate([self.en, np.ones(extra, dtype=bool)])
        rst = np.concatenate([self.rst, np.zeros(extra, dtype=bool)])
        a = np.concatenate([self.a, _operands(rng, self.dut.a_shape, extra)])
        b = np.concatenate([self.b, _operands(rng, self.dut.b_shape, extra)])
        c = None if self.c is None else np.concatenate([self.c, _operands(rng, self.dut.addend_shape, extra)])
        return _Case(self.module, self.dut, rst, en, a, b, c, _expected(self.dut, rst, en, a, b, c))

    def ports(self) -> str:
        name = self.module
        addend = "" if self.c is None else f", .c(c_{name})"
        return f".clk(clk), .rst(rst_{name}), .en(en_{name}), .a(a_{name}), .b(b_{name}){addend}, .o(o_{name})"


def _expected(dut: Multiplier, rst: np.ndarray, en: np.ndarray, a: np.ndarray, b: np.ndarray,
              c: np.ndarray | None) -> list[int | None]:
    """``a·b`` of the operands ``latency`` enabled edges (out of reset) before each cycle, plus ``c << addend_shift``
    of the addend ``addend_latency`` enabled edges before it; ``None`` before that."""
    edges = np.flatnonzero(en & ~rst)
    before = np.searchsorted(edges, np.arange(len(en)))
    latency = dut.latency
    expected = [int(a[edges[n - latency]]) * int(b[edges[n - latency]]) if n >= latency else None for n in before]
    if c is None:
        return expected
    late = dut.addend_latency
    return [None if value is None else value + (int(c[edges[n - late]]) << dut.addend_shift)
            for value, n in zip(expected, before, strict=True)]


def _multiplier_testbench(cases: Sequence[_Case]) -> str:
    cycles = len(cases[0].en)
    declarations, loads, drives, writes = [], [], [], []
    for case in cases:
        name, dut = case.module, case.dut
        widths = {"a": dut.a_shape.width, "b": dut.b_shape.width}
        if case.c is not None:
            widths["c"] = dut.addend_shape.width
        declarations.append(f"    reg [1:0] control_{name} [0:{cycles - 1}];\n    reg rst_{name}, en_{name};\n"
                            f"    wire [{dut.product_shape.width - 1}:0] o_{name};\n    integer out_{name};\n")
        loads.append(f'        $readmemh("{name}_control.hex", control_{name});\n'
                     f'        out_{name} = $fopen("{name}_o.hex", "w");\n')
        drives.append(f"            {{rst_{name}, en_{name}}} = control_{name}[cycle];\n")
        for port, width in widths.items():
            declarations.append(f"    reg [{width - 1}:0] {port}_words_{name} [0:{cycles - 1}];\n"
                                f"    reg [{width - 1}:0] {port}_{name};\n")
            loads.append(f'        $readmemh("{name}_{port}.hex", {port}_words_{name});\n')
            drives.append(f"            {port}_{name} = {port}_words_{name}[cycle];\n")
        declarations.append(f"    {name} dut_{name} ({case.ports()});\n")
        writes.append(f'            $fwrite(out_{name}, "%h\\n", o_{name});\n')
    return clocked_testbench(cycles, declarations, loads, drives, writes)


def _run_multipliers(simulator: str, cases: Sequence[_Case], sources: Sequence[Path], folder: Path, *,
                     defines: dict[str, str] | None = None, include_dirs: Sequence[Path] = ()) -> None:
    """Simulate the Verilog ``sources`` of ``cases`` and compare every filled cycle's ``o`` with ``a·b``."""
    for case in cases:
        _write_words(folder / f"{case.module}_control.hex", (case.rst << 1) | case.en, 2)
        _write_words(folder / f"{case.module}_a.hex", case.a, case.dut.a_shape.width)
        _write_words(folder / f"{case.module}_b.hex", case.b, case.dut.b_shape.width)
        if case.c is not None:
            _write_words(folder / f"{case.module}_c.hex", case.c, case.dut.addend_shape.width)
    (folder / "tb.v").write_text(_multiplier_testbench(cases))
    build_and_run(simulator, [folder / "tb.v", *sources], "tb", folder, defines, include_dirs)
    for case in cases:
        shape = case.dut.product_shape
        (bits,) = _read_fields(folder / f"{case.module}_o.hex", [-(-shape.width // 4)])
        checked = [t for t, value in enumerate(case.expected) if value is not None]
        assert len(checked) >= len(_edge_values(case.dut.a_shape)) * len(_edge_values(case.dut.b_shape))
        for t in checked:
            got = int(bits[t]) - (int(bits[t]) >> (shape.width - 1) << shape.width if shape.signed else 0)
            if got != case.expected[t]:
                edges = np.flatnonzero(case.en & ~case.rst)
                source = edges[np.searchsorted(edges, t) - case.dut.latency]
                pytest.fail(f"{case.module}: cycle {t}: o = {got}, expected {case.a[source]}·{case.b[source]}"
                            f"{'' if case.c is None else ' + addend'} = {case.expected[t]}")


def _same_length(cases: Sequence[_Case], rng: np.random.Generator) -> list[_Case]:
    cycles = max(len(case.en) for case in cases)
    return [case.padded(cycles, rng) for case in cases]


def _module_name(target: str, a_shape: Shape, b_shape: Shape) -> str:
    def name(shape: Shape) -> str:
        return f"{'s' if shape.signed else 'u'}{shape.width}"

    return f"mult_{target}_{name(a_shape)}_{name(b_shape)}"


def _rtl_cases(targets: Sequence[str], folder: Path) -> tuple[list[_Case], Path]:
    """A case per target and shape of :data:`SHAPES`, all as long as the longest, and their Verilog file."""
    rng = np.random.default_rng(36)
    cases = _same_length([_Case.random(_module_name(target, *shapes), Multiplier(*shapes, target), rng)
                          for target in targets for shapes in SHAPES], rng)
    source = folder / "multipliers.v"
    source.write_text("".join(verilog.convert(case.dut, name=case.module) for case in cases))
    return cases, source


ADDEND_CASES = [
    ((signed(32), signed(31)), unsigned(59), 0, True),
    ((unsigned(30), signed(14)), signed(32), 0, True),
    ((signed(32), signed(31)), unsigned(1), 30, True),
    ((unsigned(30), signed(26)), unsigned(59), 0, False),
    ((unsigned(7), signed(3)), signed(5), 2, False),
    ((unsigned(36), unsigned(36)), signed(20), 3, True),
    ((signed(32), unsigned(30)), None, 0, True),
]
"""Operand shapes, addend shape (``None``: none), addend shift and ``fabric_register`` of the Multipliers that
exercise the addend's planned tree (the reciprocal's products among them, and products of more DSP blocks than the
search groups) and the products registered in the fabric."""


def _addend_cases(targets: Sequence[str], folder: Path) -> tuple[list[_Case], Path]:
    """A case per target and :data:`ADDEND_CASES` entry, all as long as the longest, and their Verilog file."""
    rng = np.random.default_rng(59)
    cases = []
    for target in targets:
        for index, (shapes, addend_shape, addend_shift, fabric) in enumerate(ADDEND_CASES):
            dut = Multiplier(*shapes, target, addend_shape=addend_shape, addend_shift=addend_shift,
                             fabric_register=fabric)
            cases.append(_Case.random(f"{_module_name(target, *shapes)}_addend{index}", dut, rng))
    cases = _same_length(cases, rng)
    source = folder / "addend_multipliers.v"
    source.write_text("".join(verilog.convert(case.dut, name=case.module) for case in cases))
    return cases, source


@pytest.mark.parametrize("target", TARGETS)
def test_multiplier_with_addend_on_icarus(target: str, tmp_path: Path):
    """Each target's Multipliers with an addend, or with their products registered in the fabric, in Icarus."""
    simulator_or_skip("icarus")
    cases, source = _addend_cases([target], tmp_path)
    library = simulation_library(target)
    _run_multipliers("icarus", cases, [source, *library.models], tmp_path, defines=library.defines)


@pytest.mark.parametrize("target", TARGETS)
def test_multiplier_on_icarus(target: str, tmp_path: Path):
    """Amaranth's Verilog of each shape's Multiplier with the target's simulation models, in Icarus."""
    simulator_or_skip("icarus")
    cases, source = _rtl_cases([target], tmp_path)
    _run_multipliers("icarus", cases, [source, *simulation_models(target)], tmp_path,
                     defines=simulation_defines(target))


@pytest.mark.slow  # every target's Multiplier also runs on Icarus in make test
def test_multipliers_on_verilator(tmp_path: Path):
    """The Multipliers of every target and shape, with and without addend, in one Verilator build."""
    simulator_or_skip("verilator")
    cases, source = _rtl_cases(TARGETS, tmp_path)
    addend_cases, addend_source = _addend_cases(TARGETS, tmp_path)
    cases = _same_length([*cases, *addend_cases], np.random.default_rng(60))
    models = list(dict.fromkeys(path for target in TARGETS for path in simulation_models(target)))
    defines = {name: value for target in TARGETS for name, value in simulation_defines(target).items()}
    _run_multipliers("verilator", cases, [source, addend_source, *models], tmp_path, defines=defines)


def _netlist(target: str, synth: str, folder: Path, shapes: tuple[Shape, Shape] = WIDE,
             fabric_register: bool = False) -> tuple[_Case, Path]:
    """The Multiplier of ``shapes`` (:data:`WIDE`) on ``target`` synthesised by Yosys's ``synth`` command, and its
    netlist."""
    name = _module_name(target, *shapes)
    case = _Case.random(name, Multiplier(*shapes, target, fabric_register=fabric_register), np.random.default_rng(32))
    (folder / f"{name}.v").write_text(verilog.convert(case.dut, name=name))
    yosys(f"read_verilog {name}.v; {synth} -top {name}; write_verilog -noattr {name}_netlist.v", folder)
    return case, folder / f"{name}_netlist.v"


def test_ecp5_netlists_with_the_model(tmp_path: Path):
    """``synth_ecp5`` of the ecp5 Multiplier (registered MULT18X18D) and of the generic one (a plain ``*``, mapped to
    unregistered MULT18X18D by Yosys) with the model and Yosys's ECP5 cells, on Verilator."""
    simulator_or_skip("verilator")
    netlists = [_netlist(target, "synth_ecp5", tmp_path) for target in ("ecp5", "generic")]
    for _, path in netlists:
        assert "MULT18X18D" in path.read_text()
    cases = _same_length([case for case, _ in netlists], np.random.default_rng(32))
    library = simulation_library("ecp5", netlist=True)
    _run_multipliers("verilator", cases, [*(path for _, path in netlists), *library.models], tmp_path,
                     defines=library.defines, include_dirs=library.includes)


def test_xc7_registers_are_packed_into_dsp48e1(tmp_path: Path):
    """``synth_xilinx`` puts the xc7 Multiplier's partial products in DSP48E1 blocks with AREG and BREG (1 or 2),
    MREG and PREG, and sums the products of each chain in the blocks' post-adders (``C`` or ``PCIN``): the fabric tree
    takes at most ``2^adder_levels`` sums, and a single chain (:data:`CHAINED`) leaves no LUT. The netlists compute
    the products (Yosys's Xilinx cell models, Icarus)."""
    netlists = [_netlist("xc7", "synth_xilinx -family xc7", tmp_path),
                _netlist("xc7", "synth_xilinx -family xc7", tmp_path, CHAINED, fabric_register=True)]
    for case, netlist in netlists:
        text = netlist.read_text()
        blocks = re.findall(r"DSP48E1\s*#\((.*?)\)\s*\S+\s*\((.*?)\);", text, re.S)
        assert len(blocks) == case.dut.dsp_blocks
        for parameters, _ in blocks:
            for register, values in (("AREG", "12"), ("BREG", "12"), ("MREG", "1"), ("PREG", "1")):
                assert re.search(rf"\.{register}\(\d+'s?[bdh]0*[{values}]\)", parameters), \
                    f"{register} unused: {parameters}"
        post_adders = sum(int(re.search(r"\.OPMODE\(7'h([0-9a-f]+)\)", ports).group(1), 16) >> 4 != 0
                          for _, ports in blocks)
        assert post_adders >= case.dut.dsp_blocks - 2 ** case.dut.adder_levels
    chained_case, chained = netlists[1]
    assert chained_case.dut.adder_levels == 0
    assert not re.search(r"^\s*(LUT\d|CARRY4) ", chained.read_text(), re.M)
    simulator_or_skip("icarus")
    cases = _same_length([case for case, _ in netlists], np.random.default_rng(32))
    _run_multipliers("icarus", cases, [*(path for _, path in netlists), *simulation_models("xc7")], tmp_path)


# Structure and arguments.

@pytest.mark.parametrize("target", TARGETS)
def test_latency_and_blocks(target: str):
    """The DSP blocks a Multiplier instantiates are :attr:`dsp_blocks`; latency is the DSP registers plus one per
    adder level (generic: the product register; xc7: the two registers before the post-adders, the longest chain and
    the adder levels, at most the other vendor targets' latency with the same blocks)."""
    primitive = {"ecp5": "MULT18X18D", "ice40": "SB_MAC16"}.get(target)
    for a_shape, b_shape in SHAPES:
        dut = Multiplier(a_shape, b_shape, target)
        text = verilog.convert(dut, name="top")
        if primitive:
            assert len(re.findall(rf"^\s*{primitive} #", text, re.M)) == dut.dsp_blocks
        tree = 3 + int(np.ceil(np.log2(max(dut.dsp_blocks, 1))))
        if target == "generic":
            assert (dut.latency, dut.dsp_blocks) == (1, 0)
        elif target == "xc7":
            longest = dut.latency - 2 - dut.adder_levels
            assert dut.dsp_blocks <= longest * 2 ** dut.adder_levels
            assert dut.latency <= tree
        else:
            assert dut.latency == tree


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("target", TARGETS)
def test_addend_and_fabric_register_latencies(target: str):
    """``latency_of`` is the latency of the Multiplier its arguments build; registering the products in the fabric
    adds a cycle to a plain product's latency (on xc7 at most a cycle, which its chains may take) and keeps every
    block register (on ``ecp5`` the pipeline register too); the addend is taken at most ``latency − 3`` cycles after
    the operands on ``ecp5`` and ``ice40`` (after the DSP blocks), ``latency − 2`` on ``xc7`` (at the first block's
    post-adder), with them on ``generic``."""
    for shapes, addend_shape, addend_shift, fabric in ADDEND_CASES:
        arguments = {"addend_shape": addend_shape, "addend_shift": addend_shift}
        dut = Multiplier(*shapes, target, **arguments, fabric_register=fabric)
        assert dut.latency == Multiplier.latency_of(*shapes, target, **arguments, fabric_register=fabric)
        if addend_shape is None:
            plain = Multiplier.latency_of(*shapes, target)
            if target == "xc7":
                assert plain <= dut.latency <= plain + fabric
            else:
                assert dut.latency == plain + (fabric and target != "generic")
            with pytest.raises(AttributeError, match="no addend_latency"):
                _ = dut.addend_latency
        elif target == "generic":
            assert dut.addend_latency == dut.latency == 1
        else:
            assert 1 <= dut.addend_latency <= dut.latency - (2 if target == "xc7" else 3)
        if target == "ecp5":
            pipelined = len(re.findall(r'REG_PIPELINE_CLK\("CLK0"\)', verilog.convert(dut, name="top")))
            assert pipelined == dut.dsp_blocks


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize(("arguments", "keywords", "message"), [
    ((signed(37), signed(8)), {}, "a_shape must be 1..36 bits wide"),
    ((signed(8), unsigned(0)), {}, "b_shape must be 1..36 bits wide"),
    ((signed(8), signed(8), "xc6"), {}, "target must be one of generic, ice40, ecp5, xc7"),
    ((signed(8), signed(8)), {"addend_shape": unsigned(0)}, "addend_shape must be at least 1 bit wide"),
    ((signed(8), signed(8)), {"addend_shape": unsigned(4), "addend_shift": -1}, "addend_shift must be ≥ 0"),
])
def test_bad_arguments(arguments: tuple, keywords: dict, message: str):
    with pytest.raises(ValueError, match=message):
        Multiplier(*arguments, **keywords)
    gc.collect()


def test_simulation_models_of_targets():
    assert simulation_models("generic") == []
    assert simulation_models("ecp5") == [ECP5_MULT18X18D, ECP5_DP16KD]
    for target, primitive in (("ice40", "SB_MAC16"), ("xc7", "DSP48E1")):
        (path,) = simulation_models(target)
        assert f"module {primitive}" in path.read_text()
    with pytest.raises(ValueError, match="target must be one of"):
        simulation_models("xc6")
