"""Simulation of a final stage (:class:`FinalMac`, :class:`DivideMac`) with random bubbles and output stalls, in
Amaranth and as Verilog with its target's cell models (Icarus or Verilator).

A beat is a mapping of the unit's input ports :data:`INPUTS` to values; it is held until a clock edge with the
unit's ``en`` high takes it. ``o.ready`` is high during the unit's :attr:`latency` cycles from the first beat and
then low with a given probability. Both runners return every payload ``o`` transfers with its cycle, counted from
the first beat's cycle, so a first valid beat comes out at cycle :attr:`latency`.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from amaranth import Shape
from amaranth.back import verilog
from amaranth.lib import data
from amaranth.sim import SimulatorContext
from verilog_sim import build_and_run

from int8attn.verif.sim import simulate
from int8attn.verif.vendor import simulation_library

INPUTS = ("valid", "last", "exp", "reciprocal")
"""The unit's input ports, packed into one word per beat in this order from bit 0 for the Verilog testbench."""
RESET_CYCLES = 2
NAME = "unit"
SIMULATORS = ["icarus", pytest.param("verilator", marks=pytest.mark.slow)]
"""Simulators of the Verilog runs: Verilator's build takes a few seconds, so its runs are slow tests."""


def with_bubbles(beats: Sequence[dict], probability: float, rng: np.random.Generator) -> list[dict]:
    """``beats`` with invalid beats (``last`` set, the contents of a random beat) inserted after each with
    ``probability``, repeatedly."""
    result = []
    for beat in beats:
        result.append(beat)
        while rng.random() < probability:
            result.append({**beats[rng.integers(len(beats))], "valid": 0, "last": 1})
    return result


def _ready(dut: Any, cycles: int, stall: float, rng: np.random.Generator) -> np.ndarray:
    ready = rng.random(cycles) >= stall
    ready[:dut.latency + 1] = True
    return ready


def _cycles(dut: Any, beats: Sequence[dict], stall: float) -> int:
    return int((len(beats) + dut.latency) / (1 - stall) * 1.3) + 64


def run_amaranth(dut: Any, beats: Sequence[dict], stall: float, rng: np.random.Generator) -> list[tuple[int, Any]]:
    """``(cycle, payload)`` of every transfer on ``dut.o``, in Amaranth simulation."""
    outputs: list[tuple[int, Any]] = []
    wanted = sum(bool(beat["valid"]) for beat in beats)
    ready = _ready(dut, _cycles(dut, beats, stall), stall, rng)

    async def source(ctx: SimulatorContext):
        for beat in beats:
            for name in INPUTS:
                ctx.set(getattr(dut, name), beat[name])
            await ctx.tick().until(dut.en)
        ctx.set(dut.valid, 0)

    async def sink(ctx: SimulatorContext):
        for cycle, high in enumerate(ready):
            if len(outputs) == wanted:
                return
            ctx.set(dut.o.ready, bool(high))
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid and high:
                outputs.append((cycle, payload))
        pytest.fail(f"{len(outputs)} of {wanted} beats came out in {len(ready)} cycles")

    simulate(dut, source, sink)
    return outputs


def _bits(shape: Any, value: Any) -> int:
    if isinstance(shape, data.Layout):
        return shape.const(value).as_bits()
    return int(value) & ((1 << Shape.cast(shape).width) - 1)


def _offsets(widths: Mapping[str, int]) -> list[int]:
    """Bit offsets of the packed ports, and the total width last."""
    offsets = [0]
    for width in widths.values():
        offsets.append(offsets[-1] + width)
    return offsets


def _testbench(widths: Mapping[str, int], payload_width: int, beats: int, cycles: int) -> str:
    offsets = _offsets(widths)
    ports = "".join(f", .{name}(beat[{offset + width - 1}:{offset}])"
                    for (name, width), offset in zip(widths.items(), offsets, strict=False))
    return f"""`timescale 1ns/1ps
module tb;
    reg clk = 0, rst = 1, ready = 0, taken = 0;
    reg [{offsets[-1] - 1}:0] beats [0:{beats - 1}];
    reg [{offsets[-1] - 1}:0] beat = 0;
    reg [0:0] ready_words [0:{cycles - 1}];
    wire en, o_valid;
    wire [{payload_width - 1}:0] o_payload;
    integer index = 0, cycle, out;
    {NAME} dut (.clk(clk), .rst(rst), .en(en), .o__valid(o_valid), .o__ready(ready), .o__payload(o_payload){ports});
    initial begin
        $readmemh("beats.hex", beats);
        $readmemh("ready.hex", ready_words);
        out = $fopen("o.hex", "w");
        for (cycle = -{RESET_CYCLES}; cycle < {cycles}; cycle = cycle + 1) begin
            rst = cycle < 0;
            ready = cycle < 0 ? 0 : ready_words[cycle][0];
            beat = index < {beats} ? beats[index] : 0;
            #1;
            if (!rst && o_valid && ready)
                $fwrite(out, "%0d %h\\n", cycle, o_payload);
            taken = !rst && en && index < {beats};
            clk = 1;
            #1;
            if (taken)
                index = index + 1;
            clk = 0;
        end
        $fclose(out);
        $finish;
    end
endmodule
"""


def run_verilog(dut: Any, beats: Sequence[dict], stall: float, rng: np.random.Generator, target: str,
                simulator: str, folder: Path) -> list[tuple[int, data.Const]]:
    """``(cycle, payload)`` of every transfer on ``dut.o``, simulating its Verilog on ``simulator`` with
    :func:`~int8attn.verif.vendor.simulation_library` of ``target``; ``dut`` must not have been elaborated."""
    members = dut.signature.members
    widths = {name: Shape.cast(members[name].shape).width for name in INPUTS}
    payload_layout = members["o"].signature.members["payload"].shape
    words = [sum(_bits(members[name].shape, beat[name]) << offset
                 for name, offset in zip(INPUTS, _offsets(widths), strict=False)) for beat in beats]
    wanted = sum(bool(beat["valid"]) for beat in beats)
    ready = _ready(dut, _cycles(dut, beats, stall), stall, rng)
    digits = -(-sum(widths.values()) // 4)
    (folder / "beats.hex").write_text("".join(f"{word:0{digits}x}\n" for word in words))
    (folder / "ready.hex").write_text("".join(f"{int(bit)}\n" for bit in ready))
    (folder / "unit.v").write_text(verilog.convert(dut, name=NAME, emit_src=False))
    (folder / "tb.v").write_text(_testbench(widths, payload_layout.size, len(words), len(ready)))
    library = simulation_library(target)
    build_and_run(simulator, [folder / "tb.v", folder / "unit.v", *library.models], "tb", folder, library.defines,
                  library.includes)
    lines = (folder / "o.hex").read_text().splitlines()
    assert len(lines) == wanted, f"{len(lines)} of {wanted} beats came out in {len(ready)} cycles"
    return [(int(cycle), payload_layout.from_bits(int(bits, 16))) for cycle, bits in map(str.split, lines)]
