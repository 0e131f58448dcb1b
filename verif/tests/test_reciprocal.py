"""The reciprocal unit against the golden model on boundary and random sums, every method.

* Amaranth simulation (target ``generic``), sums back to back and ``o`` taken at random: every result and the
  stream contract (``o`` held while not taken).
* The Verilog of each vendor target with its cell models (:func:`~int8attn.verif.vendor.simulation_library`), on
  Icarus (Verilator: slow): sums with random gaps, ``o`` taken at random; results and contract from a per-cycle trace.
* The ranges the datapath's widths and its saturation rely on, over every normalised sum (numpy, slow).
"""

from pathlib import Path

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.lib import data
from verilog_sim import build_and_run, simulator_or_skip

from int8attn.golden import SoftmaxConfig, SoftmaxModel
from int8attn.golden.fixedpoint import srdhm
from int8attn.hdl.reciprocal import (
    SEED_CONSTANT,
    SEED_SLOPE,
    U_BITS,
    X_BITS,
    Reciprocal,
    saturating_fractions,
)
from int8attn.verif.sim import simulate, stream_monitor, stream_put
from int8attn.verif.vendor import simulation_library

MIN_SUM_BITS = 20
STALL = 0.3
GAP = 0.2
RESET_CYCLES = 2
VENDOR_TARGETS = ("ecp5", "ice40", "xc7")
SIMULATORS = ["icarus", pytest.param("verilator", marks=pytest.mark.slow)]


def boundary_sums(sum_width: int, random_count: int = 1000) -> np.ndarray:
    """Every power of two in range with its neighbours, the extremes, and random sums."""
    low, high = 1 << (MIN_SUM_BITS - 1), (1 << sum_width) - 1
    edges = [value + delta for k in range(MIN_SUM_BITS - 1, sum_width + 1) for delta in (-1, 0, 1)
             for value in (1 << k,)]
    edges += [low, high, 3 << (sum_width - 2), (1 << 31) - 1, 1 << 31]
    rng = np.random.default_rng(sum_width)
    bits = rng.integers(MIN_SUM_BITS, sum_width + 1, random_count)
    randoms = [int(rng.integers(1 << (b - 1), 1 << b)) for b in bits]
    return np.array(sorted({s for s in edges + randoms if low <= s <= high}), dtype=np.int64)


def expected(dut: Reciprocal, config: SoftmaxConfig, sums: np.ndarray) -> list[tuple[int, ...]]:
    """The golden model's ``(scale, shift)`` of each sum, with the sum itself when ``dut`` carries it."""
    model = SoftmaxModel(config)
    result = model.reciprocal(sums)
    return [(int(scale), int(shift), *([int(total)] if dut.carry_sum else []))
            for total, scale, shift in zip(sums, result.scale, result.shift, strict=True)]


def unit(sum_width: int, config: SoftmaxConfig, pipelined: bool, target: str = "generic",
         carry_sum: bool = False) -> Reciprocal:
    table = SoftmaxModel(config).reciprocal_table if config.reciprocal == "lut" else None
    return Reciprocal(sum_width, MIN_SUM_BITS, config.output_bits, steps=config.reciprocal_steps, table=table,
                      pipelined=pipelined, carry_sum=carry_sum, target=target)


def fields(dut: Reciprocal, payload: data.Const) -> tuple[int, ...]:
    return (payload.scale, payload.shift, *([payload.sum] if dut.carry_sum else []))


def compare(sums: np.ndarray, got: list[tuple[int, ...]], wanted: list[tuple[int, ...]]) -> None:
    assert len(got) == len(wanted), f"{len(got)} of {len(wanted)} results came out"
    mismatches = [(int(s), g, w) for s, g, w in zip(sums, got, wanted, strict=True) if g != w]
    assert not mismatches, f"{len(mismatches)} of {len(sums)} sums differ, first (sum, rtl, model): {mismatches[:3]}"


# Amaranth simulation.

def run(dut: Reciprocal, sums: np.ndarray, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """Offer the sums back to back, take ``o`` at random; every result, the stream contract checked."""
    results: list[tuple[int, ...]] = []
    transfers: list = []

    async def source(ctx):
        for value in sums:
            await stream_put(ctx, dut.i, int(value))

    async def sink(ctx):
        while len(results) < len(sums):
            ready = bool(rng.random() >= STALL)
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid and ready:
                results.append(fields(dut, payload))

    async def monitor(ctx):
        await stream_monitor(ctx, dut.o, transfers)

    simulate(dut, source, sink, background=(monitor,))
    return results


def check(sum_width: int, config: SoftmaxConfig, pipelined: bool, carry_sum: bool = False) -> None:
    sums = boundary_sums(sum_width)
    dut = unit(sum_width, config, pipelined, carry_sum=carry_sum)
    compare(sums, run(dut, sums, np.random.default_rng(sum_width)), expected(dut, config, sums))


@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "iterative"])
@pytest.mark.parametrize("sum_width", [20, 23, 30, 32, 33, 36])
def test_newton_reciprocal_matches_model(sum_width: int, pipelined: bool):
    check(sum_width, SoftmaxConfig(n=1, lanes=1), pipelined, carry_sum=sum_width == 36)


@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "iterative"])
@pytest.mark.parametrize("steps", [0, 1, 2])
def test_fewer_newton_steps_match_model(steps: int, pipelined: bool):
    check(30, SoftmaxConfig(n=1, lanes=1, mode="lut", reciprocal_steps=steps, output_bits=12), pipelined)


@pytest.mark.parametrize("bits", [1, 5, 12])
def test_reciprocal_table_matches_model(bits: int):
    check(33, SoftmaxConfig(n=1, lanes=1, mode="lut", reciprocal="lut", reciprocal_bits=bits, output_bits=4), True)


@pytest.mark.parametrize("form", ["pipelined", "iterative", "table"])
def test_latency_and_initiation_interval(form: str):
    """With ``o`` always taken, each result leaves :attr:`latency` cycles after its sum is accepted, and sums are
    accepted every :attr:`initiation_interval` cycles."""
    sum_width, config, pipelined, _ = VERILOG_CASES[form]
    dut = unit(sum_width, config, pipelined)
    sums = boundary_sums(sum_width, random_count=0)[:8]
    accepted: list = []
    results: list = []

    async def source(ctx):
        for value in sums:
            await stream_put(ctx, dut.i, int(value))

    async def sink(ctx):
        ctx.set(dut.o.ready, 1)
        while len(results) < len(sums):
            await ctx.tick()

    async def monitors(ctx):
        await stream_monitor(ctx, dut.i, accepted)

    async def outputs(ctx):
        await stream_monitor(ctx, dut.o, results)

    simulate(dut, source, sink, background=(monitors, outputs))
    accept_cycles = [cycle for cycle, _ in accepted]
    assert [cycle for cycle, _ in results] == [cycle + dut.latency for cycle in accept_cycles]
    assert np.diff(accept_cycles).tolist() == [dut.initiation_interval] * (len(sums) - 1)


# Verilog with the vendor targets' cell models.

def _testbench(sum_width: int, payload_width: int, sums: int, cycles: int) -> str:
    return f"""`timescale 1ns/1ps
module tb;
    reg clk = 0, rst = 1, i_valid = 0, o_ready = 0, taken = 0;
    reg [{sum_width - 1}:0] sums [0:{sums - 1}];
    reg [1:0] controls [0:{cycles - 1}];
    reg [{sum_width - 1}:0] i_payload = 0;
    wire i_ready, o_valid;
    wire [{payload_width - 1}:0] o_payload;
    integer index = 0, cycle, out;
    dut dut (.clk(clk), .rst(rst), .i__valid(i_valid), .i__ready(i_ready), .i__payload(i_payload),
             .o__valid(o_valid), .o__ready(o_ready), .o__payload(o_payload));
    initial begin
        $readmemh("sums.hex", sums);
        $readmemh("controls.hex", controls);
        out = $fopen("trace.hex", "w");
        for (cycle = -{RESET_CYCLES}; cycle < {cycles}; cycle = cycle + 1) begin
            rst = cycle < 0;
            i_valid = cycle >= 0 && index < {sums} && controls[cycle][0];
            i_payload = index < {sums} ? sums[index] : 0;
            o_ready = cycle >= 0 && controls[cycle][1];
            #1;
            if (!rst)
                $fwrite(out, "%h %h %h\\n", o_valid, o_ready, o_payload);
            taken = i_valid && i_ready;
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


def run_verilog(dut: Reciprocal, sums: np.ndarray, rng: np.random.Generator, simulator: str,
                folder: Path) -> list[tuple[int, ...]]:
    """Every result of the sums offered with random gaps and taken at random, simulating the Verilog of ``dut``
    with its target's cell models; the stream contract checked on every cycle."""
    layout = dut.o.payload.shape()
    cycles = int((len(sums) * dut.initiation_interval + dut.latency) / (1 - max(STALL, GAP)) * 1.3) + 64
    controls = (rng.random(cycles) >= GAP).astype(int) | (rng.random(cycles) >= STALL).astype(int) << 1
    controls[0] = 0b11
    controls[:dut.latency + 1] |= 0b10
    digits = -(-dut.sum_width // 4)
    (folder / "sums.hex").write_text("".join(f"{int(value):0{digits}x}\n" for value in sums))
    (folder / "controls.hex").write_text("".join(f"{control:x}\n" for control in controls))
    (folder / "dut.v").write_text(verilog.convert(dut, name="dut", emit_src=False))
    (folder / "tb.v").write_text(_testbench(dut.sum_width, layout.size, len(sums), cycles))
    library = simulation_library(dut.target)
    build_and_run(simulator, [folder / "tb.v", folder / "dut.v", *library.models], "tb", folder, library.defines,
                  library.includes)
    trace = [(valid == "1", ready == "1", int(bits, 16) if valid == "1" else None) for valid, ready, bits in
             map(str.split, (folder / "trace.hex").read_text().splitlines())]
    first = next(cycle for cycle, (valid, _, _) in enumerate(trace) if valid)
    assert first == dut.latency, f"the first result came out at cycle {first}, not after {dut.latency} cycles"
    for cycle, ((valid, ready, bits), (next_valid, _, next_bits)) in enumerate(zip(trace, trace[1:], strict=False)):
        if valid and not ready:
            assert next_valid and next_bits == bits, f"o not held while not taken at cycle {cycle}"
    return [fields(dut, layout.from_bits(bits)) for valid, ready, bits in trace if valid and ready]


VERILOG_CASES = {
    "pipelined": (37, SoftmaxConfig(n=1, lanes=1), True, True),
    "iterative": (30, SoftmaxConfig(n=1, lanes=1, mode="lut", reciprocal_steps=3, output_bits=12), False, False),
    "table": (33, SoftmaxConfig(n=1, lanes=1, mode="lut", reciprocal="lut", reciprocal_bits=12, output_bits=4),
              True, False),
}
"""Per form: sum width, configuration, pipelined, carry_sum."""


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("form", list(VERILOG_CASES))
@pytest.mark.parametrize("target", VENDOR_TARGETS)
def test_verilog_with_vendor_models(target: str, form: str, simulator: str, tmp_path: Path):
    simulator_or_skip(simulator)
    sum_width, config, pipelined, carry_sum = VERILOG_CASES[form]
    sums = boundary_sums(sum_width, random_count=200 if pipelined else 40)
    dut = unit(sum_width, config, pipelined, target, carry_sum)
    got = run_verilog(dut, sums, np.random.default_rng(sum_width), simulator, tmp_path)
    compare(sums, got, expected(dut, config, sums))


# The ranges the datapath relies on, over every half denominator d = 2^30 + fraction.

@pytest.mark.slow
def test_newton_ranges_over_every_fraction():
    """``x_k`` fits :data:`X_BITS` bits (``x_3`` reaches ``2^30``), ``u_k`` fits :data:`U_BITS` with a margin (the
    pipelined form's ``u`` less its rounding bit too), and ``x_k = 2^30`` exactly for the fractions below
    :func:`saturating_fractions`, ``x_k < 2^30`` for the others."""
    chunk = 1 << 24
    steps = len(U_BITS)
    for start in range(0, 1 << 30, chunk):
        fraction = np.arange(start, start + chunk, dtype=np.int64)
        d = fraction + (1 << 30)
        x = SEED_CONSTANT + srdhm(d, SEED_SLOPE)
        for step in range(steps + 1):
            assert (x <= 1 << X_BITS).all(), step
            saturated = fraction[x == 1 << X_BITS].tolist()
            assert saturated == list(range(start, saturating_fractions(step))), step
            if step == steps:
                break
            u = (1 << 29) - srdhm(d, x)
            limit = (1 << (U_BITS[step] - 1)) - 2
            assert -limit <= u.min() and u.max() <= limit, step
            x = x + 4 * srdhm(x, u)
