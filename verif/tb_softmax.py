"""cocotb testbench of the emitted ``softmax`` module.

Run through :func:`int8attn.verif.runner.run_softmax`, which passes the parameters as ``INT8ATTN_*`` environment
variables (:class:`~int8attn.verif.runner.TBSettings`). Every output beat is compared with
:class:`~int8attn.golden.SoftmaxModel`; each test writes a report into the ``INT8ATTN_RESULT`` JSON file.

Tests
-----
check
    Random and directed rows with random idle input cycles and random output backpressure.
cycle
    No stalls, at least 1000 back-to-back rows: exact latency, gap-free output, measured throughput.
framing
    Rows with ``last`` on a wrong beat raise the sticky ``error`` output and are dropped; reset clears ``error``.
"""

import json
import random
import zlib
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.handle import HierarchyObject
from cocotb.triggers import ReadOnly, RisingEdge

from int8attn.golden import SoftmaxConfig, SoftmaxModel
from int8attn.verif.runner import TBSettings
from int8attn.verif.stream import CycleCounter, PayloadLayout, Scoreboard, StreamDriver, StreamMonitor, StreamSink

CLOCK_NS = 10
RESET_CYCLES = 5
CYCLE_TEST_ROWS = 1000
STALL_MARGIN = 4
DRAIN_SLACK = 100
MAX_REPORTED = 20
MAX_STALL = 0.95


def load_sidecar(path: Path) -> tuple[dict, SoftmaxConfig, PayloadLayout, PayloadLayout]:
    """The sidecar, the configuration it was emitted for, and the input and output payload layouts.

    The layouts come from the sidecar's lane widths and are checked against its port widths and ``last`` bits.
    """
    sidecar = json.loads(Path(path).read_text())
    names = {item.name for item in fields(SoftmaxConfig)}
    config = SoftmaxConfig(**{key: value for key, value in sidecar["parameters"].items() if key in names})
    widths = {port["name"]: port["width"] for port in sidecar["ports"]}
    layouts = (PayloadLayout(config.lanes, sidecar["lane_bits"]),
               PayloadLayout(config.lanes, sidecar["output_lane_bits"]))
    for layout, port, last in zip(layouts, ("i__payload", "o__payload"), ("last_bit", "output_last_bit"), strict=True):
        if widths.get(port) != layout.width or sidecar[last] != layout.last_bit:
            raise ValueError(f"sidecar {path}: {port} is {widths.get(port)} bits with {last}={sidecar[last]}; "
                             f"{config.lanes} lanes of {layout.lane_bits} bits need {layout.width} bits and "
                             f"{last}={layout.last_bit}")
    return sidecar, config, *layouts


def random_rows(rng: np.random.Generator, count: int, n: int) -> Iterator[tuple[str, np.ndarray]]:
    """``count`` rows, cycling through uniform int8, normal(0, 20) clipped, and peaked rows."""
    for index in range(count):
        kind = index % 3
        if kind == 0:
            yield "uniform", rng.integers(-128, 128, n)
        elif kind == 1:
            yield "normal(0,20)", np.clip(np.rint(rng.normal(0, 20, n)), -128, 127)
        else:
            row = np.clip(np.rint(rng.normal(-60, 15, n)), -128, 127)
            peaks = rng.choice(n, size=min(n, int(rng.integers(1, 4))), replace=False)
            row[peaks] = rng.integers(40, 128, peaks.size)
            yield "peaked", row


def directed_rows(model: SoftmaxModel, rng: np.random.Generator) -> Iterator[tuple[str, np.ndarray]]:
    """Corner-case rows: equal, one-hot, extremes, alternating, at the end of the exp ROM, distinct values."""
    n = model.config.n
    yield "all 0", np.zeros(n)
    yield "all equal", np.full(n, rng.integers(-128, 128))
    for position in sorted({0, n // 2, n - 1}):
        row = np.zeros(n)
        row[position] = 127
        yield f"one hot at {position}", row
    yield "all -128", np.full(n, -128)
    yield "all 127", np.full(n, 127)
    alternating = np.where(np.arange(n) % 2 == 0, -128, 127)
    yield "alternating -128/127", alternating
    yield "alternating 127/-128", -1 - alternating
    single = np.full(n, -128)
    single[rng.integers(n)] = 127
    yield "one 127, rest -128 (diff -255)", single
    smallest = 1 - model.rom_depth
    edge = np.full(n, 127 + smallest)
    if smallest > -255:
        edge[1::2] = 126 + smallest
    edge[rng.integers(n)] = 127
    yield f"diffs at {smallest}, the last exp ROM entry, and one below", edge
    distinct = np.concatenate([rng.permutation(256)[:min(256, n - start)] for start in range(0, n, 256)]) - 128
    yield "distinct values", distinct
    yield "ramp", np.linspace(-128, 127, n).round()


class SoftmaxTB:
    """Clock, reset and stream components around the ``softmax`` DUT.

    Parameters
    ----------
    dut : HierarchyObject
        The ``softmax`` toplevel.
    settings : TBSettings
        Sidecar, seed and stall probabilities.
    name : str
        Test name, salting the random streams so that tests differ.
    idle, backpressure : float
        Stall probabilities, overriding those of ``settings``.
    """

    def __init__(self, dut: HierarchyObject, settings: TBSettings, name: str, *, idle: float, backpressure: float):
        self.dut = dut
        self.settings = settings
        self.name = name
        self.sidecar, self.config, self.in_layout, out_layout = load_sidecar(settings.sidecar)
        self.model = SoftmaxModel(self.config)
        self.rng = np.random.default_rng([settings.seed, zlib.crc32(name.encode())])
        dut.rst.value = 1
        dut.i__valid.value = 0
        dut.o__ready.value = 0
        Clock(dut.clk, CLOCK_NS, unit="ns").start()
        self.cycles = CycleCounter(dut.clk)
        self.driver = StreamDriver(dut.clk, dut.i__valid, dut.i__ready, dut.i__payload, dut.rst, idle=idle,
                                   rng=random.Random(f"{settings.seed}-{name}-idle"))
        self.sink = StreamSink(dut.clk, dut.o__ready, backpressure=backpressure,
                               rng=random.Random(f"{settings.seed}-{name}-backpressure"))
        self.in_monitor = StreamMonitor("input", dut.clk, dut.i__valid, dut.i__ready, dut.i__payload, dut.rst,
                                        self.cycles)
        self.out_monitor = StreamMonitor("output", dut.clk, dut.o__valid, dut.o__ready, dut.o__payload, dut.rst,
                                         self.cycles)
        self.scoreboard = Scoreboard(self.model, out_layout)
        self.out_monitor.add_callback(self.scoreboard.receive)
        self.error_since: int | None = None
        self.errors: list[str] = []
        cocotb.start_soon(self._watch_error())

    @property
    def beats(self) -> int:
        return self.config.beats

    async def _watch_error(self) -> None:
        """Track when ``error`` went high; it must be 0 or 1 and, once high, stay high until reset."""
        edge, settle = RisingEdge(self.dut.clk), ReadOnly()
        while True:
            await settle
            if self.dut.rst.value != 1:
                level = self.dut.error.value
                cycle = self.cycles.value
                if not level.is_resolvable:
                    self.errors.append(f"cycle {cycle}: error output is {level}")
                elif level and self.error_since is None:
                    self.error_since = cycle
                elif not level and self.error_since is not None:
                    self.errors.append(f"cycle {cycle}: error dropped without reset (high since cycle "
                                       f"{self.error_since}); it must be sticky")
                    self.error_since = None
            else:
                self.error_since = None
            await edge

    async def reset(self) -> None:
        """Hold ``rst`` high for 5 cycles, dropping whatever the driver still had queued."""
        self.driver.clear()
        self.dut.rst.value = 1
        for _ in range(RESET_CYCLES):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0

    def send(self, rows: np.ndarray, label: str, *, expect: bool = True, last_at: int | None = -1) -> None:
        """Queue ``rows`` (``k × n``), beat by beat.

        ``last_at`` is the beat that carries ``last`` (−1: the final beat, as framing requires); the row is cut
        after it, and with ``None`` no beat carries ``last``. With ``expect`` the scoreboard awaits the rows.
        """
        rows = np.asarray(rows).astype(np.int8).reshape(-1, self.config.n)
        end = self.beats if last_at is None or last_at == -1 else last_at + 1
        final = self.beats - 1 if last_at == -1 else last_at
        lanes = self.config.lanes
        for row in rows:
            for beat in range(end):
                self.driver.send(self.in_layout.pack(row[beat * lanes:(beat + 1) * lanes], beat == final))
        if expect:
            self.scoreboard.expect(rows, label)

    def failures(self) -> list[str]:
        return self.in_monitor.errors + self.out_monitor.errors + self.scoreboard.errors + self.errors

    async def drain(self, stall: float) -> None:
        """Run until every expected row came out, then long enough to catch any extra beat.

        Stops early at the first failure. The deadline allows the nominal rate slowed down by ``stall`` (the
        larger stall probability) with a margin.
        """
        edge = RisingEdge(self.dut.clk)
        latency = self.sidecar["latency_cycles"]
        stall = min(stall, MAX_STALL)
        budget = (self.driver.pending + self.beats * self.scoreboard.outstanding) / (1 - stall) ** 2
        deadline = self.cycles.value + STALL_MARGIN * int(budget) + 2 * latency + DRAIN_SLACK
        while self.scoreboard.outstanding and not self.failures() and self.cycles.value < deadline:
            await edge
        for _ in range(latency + self.beats + DRAIN_SLACK):
            await edge
        self.errors += self.scoreboard.missing()

    def error_is_low(self) -> None:
        if self.error_since is not None:
            self.errors.append(f"error output high since cycle {self.error_since} with no framing error")

    def finish(self, **measured: object) -> None:
        """Write this test's report to ``INT8ATTN_RESULT`` and fail with the first error, if any."""
        errors = self.failures()
        report = {
            "rows": len(self.scoreboard.done),
            "beats": self.scoreboard.beats_checked,
            "errors": errors[:MAX_REPORTED] + ([f"... {len(errors) - MAX_REPORTED} more"]
                                               if len(errors) > MAX_REPORTED else []),
            "cycles": self.cycles.value,
            "elements_per_cycle": None,
            "latency_cycles": [],
            "passed": not errors,
        } | measured
        path = self.settings.result
        reports = json.loads(path.read_text()) if path.is_file() else {}
        reports[self.name] = report
        path.write_text(json.dumps(reports, indent=2) + "\n")
        assert not errors, f"{len(errors)} error(s); first: {errors[0]}"


@cocotb.test()
async def check(dut: HierarchyObject) -> None:
    """Random and directed rows, random idle input cycles and output backpressure; every bit checked."""
    settings = TBSettings.from_env()
    tb = SoftmaxTB(dut, settings, "check", idle=settings.idle, backpressure=settings.backpressure)
    await tb.reset()
    rows = list(random_rows(tb.rng, settings.rows, tb.config.n))
    if settings.directed:
        rows += directed_rows(tb.model, tb.rng)
    for label, row in rows:
        tb.send(row, label)
    await tb.drain(max(settings.idle, settings.backpressure))
    tb.error_is_low()
    tb.finish()


@cocotb.test()
async def cycle(dut: HierarchyObject) -> None:
    """No stalls, at least 1000 back-to-back rows: exact latency, gap-free output, measured throughput."""
    settings = TBSettings.from_env()
    tb = SoftmaxTB(dut, settings, "cycle", idle=0, backpressure=0)
    await tb.reset()
    count = max(CYCLE_TEST_ROWS, settings.rows)
    for label, row in random_rows(tb.rng, count, tb.config.n):
        tb.send(row, label)
    await tb.drain(0)
    tb.error_is_low()
    done, inputs, outputs = tb.scoreboard.done, tb.in_monitor.beats, tb.out_monitor.beats
    expected_latency = tb.sidecar["latency_cycles"]
    latencies = [row.first_cycle - inputs[row.index * tb.beats + tb.beats - 1].cycle for row in done]
    tb.errors += [f"row {row.index}: first output beat {latency} cycles after its last input beat, expected "
                  f"{expected_latency}" for row, latency in zip(done, latencies, strict=True)
                  if latency != expected_latency][:MAX_REPORTED]
    gaps = [(before.cycle, after.cycle) for before, after in zip(outputs, outputs[1:], strict=False)
            if after.cycle != before.cycle + 1]
    tb.errors += [f"output valid low for {after - before - 1} cycle(s) before cycle {after}"
                  for before, after in gaps[:MAX_REPORTED]]
    elements = len(done) * tb.config.n
    span = outputs[-1].cycle - inputs[0].cycle + 1 if outputs and inputs else 0
    nominal = tb.sidecar["elements_per_cycle"]
    bound = -(-count * tb.config.n // nominal) + expected_latency + tb.beats - 1
    if span > bound:
        tb.errors.append(f"{count} rows took {span} cycles from first input to last output, more than {bound} at "
                         f"{nominal} elements/cycle")
    tb.finish(elements_per_cycle=sustained_rate(inputs, outputs, tb.config.lanes),
              latency_cycles=sorted(set(latencies)), span_cycles=span, elements=elements)


def sustained_rate(inputs: list, outputs: list, lanes: int) -> float | None:
    """Elements per cycle kept up on both sides: beats × lanes over the cycles from the first to the last beat,
    the lower of input and output (the pipeline's fill, once per run, is in neither)."""
    if len(inputs) < 2 or len(outputs) < 2:
        return None
    return min(len(side) * lanes / (side[-1].cycle - side[0].cycle + 1) for side in (inputs, outputs))


@cocotb.test()
async def framing(dut: HierarchyObject) -> None:
    """Early and missing ``last``: sticky ``error``, the row dropped, later rows intact; reset clears ``error``."""
    settings = TBSettings.from_env()
    tb = SoftmaxTB(dut, settings, "framing", idle=settings.idle, backpressure=settings.backpressure)
    stall = max(settings.idle, settings.backpressure)
    n, beats = tb.config.n, tb.beats
    cases: list[tuple[str, int | None]] = [(f"no last on beat {beats - 1}", None)]
    if beats >= 2:
        early = int(tb.rng.integers(beats - 1))
        cases.insert(0, (f"early last on beat {early}", early))
    for case, last_at in cases:
        await tb.reset()
        await ReadOnly()
        if dut.error.value != 0:
            tb.errors.append(f"{case}: error output is {dut.error.value} right after reset")
        await RisingEdge(dut.clk)
        tb.send(tb.rng.integers(-128, 128, n), f"{case}: row before")
        await tb.drain(stall)
        if tb.error_since is not None:
            tb.errors.append(f"{case}: error high at cycle {tb.error_since} before any framing error")
        start = len(tb.in_monitor.beats)
        if last_at is None:
            tb.send(tb.rng.integers(-128, 128, n), case, expect=False, last_at=None)
            tb.send(tb.rng.integers(-128, 128, n), f"{case}: terminating beat", expect=False, last_at=0)
            bad = start + beats - 1
        else:
            tb.send(tb.rng.integers(-128, 128, n), case, expect=False, last_at=last_at)
            bad = start + last_at
        tb.send(tb.rng.integers(-128, 128, (2, n)), f"{case}: rows after")
        await tb.drain(stall)
        accepted = tb.in_monitor.beats
        if len(accepted) <= bad:
            tb.errors.append(f"{case}: the mis-framed beat was never accepted")
        elif tb.error_since is None:
            tb.errors.append(f"{case}: error output never went high")
        elif tb.error_since < accepted[bad].cycle:
            tb.errors.append(f"{case}: error high at cycle {tb.error_since}, before the mis-framed beat was "
                             f"accepted at cycle {accepted[bad].cycle}")
    await tb.reset()
    tb.send(tb.rng.integers(-128, 128, n), "row after the final reset")
    await tb.drain(stall)
    tb.error_is_low()
    tb.finish()
