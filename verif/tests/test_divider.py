"""The surrogate modes' reciprocal units against exact Python arithmetic and the HCCS golden model.

* :class:`ConstantDivider`, both forms with a register per step and in halves (two),
  for the numerators of HCCS (8-bit ``div`` at several ``inv_shift``, Q15),
  base2 and poly: boundary and random divisors (every one at a small width) offered with random gaps and taken at
  random; every quotient against ``//``, in order, with the stream contract; latency and initiation interval with
  ``o`` always taken, against :meth:`~ConstantDivider.iterative_interval` too.
* :class:`LeadingOneReciprocal` with the HCCS ``clb`` tables against :func:`~int8attn.golden.hccs.reciprocal`.
* Verilator's lint of the emitted Verilog.
"""

import gc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from amaranth.back import verilog
from cli_runner import verilator_lint

from int8attn.golden.base2 import NUMERATOR as BASE2_NUMERATOR
from int8attn.golden.hccs import INV_MAX, MIN_SUM, Q15_NUMERATOR, U8_NUMERATOR, HccsParams, reciprocal
from int8attn.hdl.divider import ConstantDivider, LeadingOneReciprocal
from int8attn.verif.sim import simulate, stream_monitor, stream_put

GAP = 0.3
STALL = 0.3
RANDOM_DIVISORS = 300
EXHAUSTIVE_WIDTH = 10


def smallest_sum(numerator: int) -> int:
    """The smallest divisor whose quotient fits int16, as the configuration rules ask of 8-bit HCCS and poly."""
    return -(-(numerator + 1) // (INV_MAX + 1))


DIVIDERS = {
    "hccs_shift1": (U8_NUMERATOR << 1, 20, MIN_SUM),
    "hccs_shift15": (U8_NUMERATOR << 15, 20, MIN_SUM),
    "hccs_shift30": (U8_NUMERATOR << 30, 32, smallest_sum(U8_NUMERATOR << 30)),
    "hccs_q15": (Q15_NUMERATOR, 20, MIN_SUM),
    "base2": (BASE2_NUMERATOR, 15, MIN_SUM),
    "poly": (U8_NUMERATOR << 7, 12, 1),
}
"""Per case: numerator, divisor width, smallest divisor."""


def divisors(width: int, low: int, seed: int) -> list[int]:
    """The range's ends, every power of two in it with its neighbours, and random divisors of random bit lengths."""
    high = (1 << width) - 1
    edges = {low, low + 1, high - 1, high} | {(1 << k) + delta for k in range(width + 1) for delta in (-1, 0, 1)}
    rng = np.random.default_rng(seed)
    randoms = []
    for _ in range(RANDOM_DIVISORS):
        bits = int(rng.integers(low.bit_length(), width + 1))
        randoms.append(int(rng.integers(max(low, 1 << (bits - 1)), (1 << bits) - 1, endpoint=True)))
    values = [value for value in edges if low <= value <= high] + randoms
    rng.shuffle(values)
    return values


def run(dut, inputs: list[int], gap: float, stall: float, seed: int) -> tuple[list, list]:
    """Offer ``inputs`` with random gaps, take ``o`` at random; the transfers ``(cycle, payload)`` of ``i`` and
    ``o``, with the stream contract checked on both."""
    rng = np.random.default_rng(seed)
    accepted: list = []
    results: list = []

    async def source(ctx):
        for value in inputs:
            while rng.random() < gap:
                await ctx.tick()
            await stream_put(ctx, dut.i, value)

    async def sink(ctx):
        while len(results) < len(inputs):
            ctx.set(dut.o.ready, bool(rng.random() >= stall))
            await ctx.tick()

    def monitor(interface, transfers: list):
        async def watch(ctx):
            await stream_monitor(ctx, interface, transfers)
        return watch

    simulate(dut, source, sink, background=(monitor(dut.i, accepted), monitor(dut.o, results)))
    return accepted, results


def check_results(dut, inputs: list[int], expected: Callable[[int], int], seed: int, gap: float = GAP,
                  stall: float = STALL) -> None:
    """Every result against ``expected``, in order, with divisors offered with gaps and ``o`` taken at random."""
    accepted, results = run(dut, inputs, gap, stall, seed)
    assert [int(value) for _, value in accepted] == inputs
    got = [int(value) for _, value in results]
    mismatches = [(d, g, expected(d)) for d, g in zip(inputs, got, strict=True) if g != expected(d)]
    assert not mismatches, f"{len(mismatches)} of {len(inputs)} differ, first (divisor, rtl, exact): {mismatches[:3]}"


def check_timing(dut, inputs: list[int]) -> None:
    """With divisors offered back to back and ``o`` always taken, each result leaves :attr:`latency` cycles after
    its divisor was accepted, and divisors are accepted every :attr:`initiation_interval` cycles."""
    accepted, results = run(dut, inputs, 0, 0, 0)
    accept_cycles = [cycle for cycle, _ in accepted]
    assert [cycle for cycle, _ in results] == [cycle + dut.latency for cycle in accept_cycles]
    assert np.diff(accept_cycles).tolist() == [dut.initiation_interval] * (len(inputs) - 1)


FORMS = pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "iterative"])
HALVES = pytest.mark.parametrize("halves", [False, True], ids=["one_register", "halves"])


@HALVES
@FORMS
@pytest.mark.parametrize("case", list(DIVIDERS))
def test_constant_divider_matches_floor_division(case: str, pipelined: bool, halves: bool):
    numerator, width, low = DIVIDERS[case]
    dut = ConstantDivider(numerator, width, low, pipelined, halves=halves)
    assert dut.quotient_width == (numerator // low).bit_length() <= 16
    inputs = divisors(width, low, width)
    check_results(dut, inputs, lambda d: numerator // d, width)


@HALVES
@FORMS
@pytest.mark.parametrize(("numerator", "low"), [(U8_NUMERATOR << 5, 1), (BASE2_NUMERATOR, MIN_SUM),
                                               (Q15_NUMERATOR, 37)])
def test_constant_divider_exhaustive(numerator: int, low: int, pipelined: bool, halves: bool):
    dut = ConstantDivider(numerator, EXHAUSTIVE_WIDTH, low, pipelined, halves=halves)
    inputs = list(range(low, 1 << EXHAUSTIVE_WIDTH))
    check_results(dut, inputs, lambda d: numerator // d, low)


@HALVES
@FORMS
def test_constant_divider_under_backpressure(pipelined: bool, halves: bool):
    """Divisors offered back to back while ``o`` is mostly not taken: the pipeline fills and stalls."""
    numerator, width, low = DIVIDERS["hccs_shift15"]
    dut = ConstantDivider(numerator, width, low, pipelined, halves=halves)
    check_results(dut, divisors(width, low, 3)[:80], lambda d: numerator // d, 3, gap=0, stall=0.8)


@HALVES
@FORMS
@pytest.mark.parametrize("case", ["hccs_shift15", "base2", "hccs_shift1"])
def test_constant_divider_latency_and_initiation_interval(case: str, pipelined: bool, halves: bool):
    """A register per step, and the iterative form's load; two per step in halves, the load being the first."""
    numerator, width, low = DIVIDERS[case]
    dut = ConstantDivider(numerator, width, low, pipelined, halves=halves)
    steps = dut.quotient_width
    interval = 2 * steps if halves else steps + 1
    assert dut.latency == (interval - 1 if pipelined and not halves else interval)
    assert dut.initiation_interval == (1 if pipelined else dut.latency)
    assert ConstantDivider.iterative_interval(numerator, low, halves) == interval
    assert (dut.pipelined, dut.method, dut.numerator) == (pipelined, "divide", numerator)
    check_timing(dut, divisors(width, low, 1)[:12])


CLB_CASES = {
    "u8_shift15": (HccsParams(b=64, s=1, dmax=8, reciprocal="clb", inv_shift=15), 20, MIN_SUM),
    "u8_shift1": (HccsParams(b=64, s=1, dmax=8, reciprocal="clb", inv_shift=1), 16, MIN_SUM),
    "u8_shift30": (HccsParams(b=64, s=1, dmax=8, reciprocal="clb", inv_shift=30), 32, 1 << 23),
    "q15": (HccsParams(b=64, s=1, dmax=8, reciprocal="clb", output_bits=16), 20, MIN_SUM),
    "u8_small": (HccsParams(b=64, s=1, dmax=8, reciprocal="clb", inv_shift=5), EXHAUSTIVE_WIDTH, 1),
}
"""Per case: the HCCS parameters, the divisor width and the smallest divisor."""


def clb_unit(case: str) -> tuple[LeadingOneReciprocal, Callable[[int], int], list[int]]:
    """The unit with the table of :func:`reciprocal` at each power of two, the golden reciprocal and the divisors
    (every one at the small width)."""
    params, width, low = CLB_CASES[case]
    table = reciprocal(params, 1 << np.arange(width, dtype=np.int64)).tolist()
    dut = LeadingOneReciprocal(table, width, low)
    inputs = list(range(low, 1 << width)) if width == EXHAUSTIVE_WIDTH else divisors(width, low, width)
    return dut, lambda d: int(reciprocal(params, np.array([d], dtype=np.int64))[0]), inputs


@pytest.mark.parametrize("case", list(CLB_CASES))
def test_leading_one_reciprocal_matches_model(case: str):
    dut, expected, inputs = clb_unit(case)
    check_results(dut, inputs, expected, len(inputs))


def test_leading_one_reciprocal_latency_and_initiation_interval():
    dut, _, inputs = clb_unit("u8_shift15")
    assert (dut.latency, dut.initiation_interval, dut.pipelined, dut.method) == (2, 1, True, "leading one")
    assert dut.quotient_width == max(dut.values[MIN_SUM.bit_length() - 1:]).bit_length()
    check_timing(dut, inputs[:12])


@pytest.mark.parametrize(("build", "message"), [
    (lambda: ConstantDivider(100, 8, 101, True), "numerator"),
    (lambda: ConstantDivider(100, 8, 0, True), "min_divisor"),
    (lambda: ConstantDivider(100, 8, 256, True), "min_divisor"),
    (lambda: ConstantDivider(100, 0, 1, True), "divisor_width"),
    (lambda: ConstantDivider(100, 8, 1, True, "asic"), "target"),
    (lambda: LeadingOneReciprocal([1] * 7, 8, 1), "values"),
    (lambda: LeadingOneReciprocal([1] * 7 + [-1], 8, 1), "values"),
])
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_constructor_checks(build: Callable[[], object], message: str):
    with pytest.raises(ValueError, match=message):
        build()
    gc.collect()


@pytest.mark.parametrize("dut", [
    pytest.param(lambda: ConstantDivider(U8_NUMERATOR << 15, 20, MIN_SUM, True), id="pipelined"),
    pytest.param(lambda: ConstantDivider(U8_NUMERATOR << 15, 20, MIN_SUM, False), id="iterative"),
    pytest.param(lambda: ConstantDivider(U8_NUMERATOR << 15, 20, MIN_SUM, True, halves=True), id="pipelined_halves"),
    pytest.param(lambda: ConstantDivider(U8_NUMERATOR << 15, 20, MIN_SUM, False, halves=True), id="iterative_halves"),
    pytest.param(lambda: clb_unit("u8_shift15")[0], id="leading_one"),
])
def test_verilator_lint_is_clean(dut: Callable[[], object], tmp_path: Path):
    path = tmp_path / "divider.v"
    path.write_text(verilog.convert(dut(), name="divider", emit_src=False))
    result = verilator_lint(path)
    assert result.returncode == 0, result.stderr
