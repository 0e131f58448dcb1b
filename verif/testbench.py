"""The generic cocotb testbench of a unit with valid/ready streams, built from its emitted sidecar.

:class:`StreamTB` reads the sidecar named by ``INT8ATTN_SIDECAR`` (see :class:`~int8attn.verif.runner.TBSettings`),
starts the clock on the port it names (``clk`` or AXI4-Stream's ``aclk``), drives its reset (``rst`` active high, or
``aresetn`` active low), and puts a :class:`~int8attn.verif.stream.StreamSource` on every input stream, a
:class:`~int8attn.verif.stream.StreamSink` on every output stream, a protocol monitor on each and a
:class:`~int8attn.verif.stream.Scoreboard` fed by the unit's golden model (from the unit registry). A 1-bit ``error``
output, when the unit has one, is watched as a sticky flag. Each test writes one report into ``INT8ATTN_RESULT``.

:func:`check_test` and :func:`cycle_test` are the shared bodies of the ``check`` and ``cycle`` tests of the units'
testbench modules, which supply the stimuli.
"""

import json
import random
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from cocotb.clock import Clock
from cocotb.handle import HierarchyObject, LogicObject
from cocotb.triggers import RisingEdge

from int8attn.units import unit_named
from int8attn.verif.runner import TBSettings
from int8attn.verif.stream import (
    CycleCounter,
    Frames,
    Reset,
    Scoreboard,
    StickyMonitor,
    StreamMonitor,
    StreamSink,
    StreamSource,
    StreamSpec,
    random_pauses,
    streams_of,
)

CLOCK_NS = 10
RESET_CYCLES = 5
CYCLE_TEST_ROWS = 256
CYCLE_TEST_SEQUENCES = 40
STALL_MARGIN = 4
DRAIN_SLACK = 100
MAX_REPORTED = 20
MAX_STALL = 0.95
STICKY_FLAG = "error"
CLOCKING = {"clock": "clk", "reset": "rst", "reset_active": "high"}
"""The sidecar's clock and reset keys, with the values of a sidecar that has none (the ``stream`` interface)."""
LATENCY_REFERENCES = ("last", "first")

Stimuli = Callable[["StreamTB", int], Iterable[tuple[str, Frames]]]
"""``stimuli(tb, count)``: ``count`` labelled frames (an array, or a mapping by input stream) drawn from ``tb.rng``."""
Directed = Callable[["StreamTB"], Iterable[tuple[str, Frames]]]
"""``directed(tb)``: the labelled corner-case frames of a unit."""


class StreamTB:
    """Clock, reset, sources, sinks, monitors and scoreboard around a unit, from its sidecar.

    Parameters
    ----------
    dut : HierarchyObject
        The toplevel, with the sidecar's ``clock`` and synchronous ``reset`` (active at ``reset_active``; see
        :data:`CLOCKING`) and the ports of its streams.
    settings : TBSettings
        Sidecar, seed and report file.
    name : str
        Test name: the key of the report and the salt of the random streams, so that tests differ.
    idle, backpressure : float
        Probability of an idle cycle on each source and of ``ready`` low on each sink.
    model : callable, optional
        Golden model; by default the registered unit's model for the sidecar's parameters.

    Members
    -------
    sidecar : dict
    streams, inputs, outputs : dict of str to StreamSpec
        All streams, the unit's input streams and its output streams, by name.
    model : callable
    clk : LogicObject
        The clock port.
    rst : Reset
        The reset port and its active level.
    latency : int
        The sidecar's ``latency_cycles``.
    rng : numpy.random.Generator
        Source of the test's frames.
    cycles : CycleCounter
    sources, sinks, monitors : dict of str to component
        By stream name; every stream has a monitor.
    scoreboard : Scoreboard
    error : StickyMonitor or None
        The watch on the ``error`` output, when the unit has one.
    errors : list of str
        Errors found by the test itself.
    """

    def __init__(self, dut: HierarchyObject, settings: TBSettings, name: str, *, idle: float, backpressure: float,
                 model: Callable[[Any], Any] | None = None):
        self.dut = dut
        self.settings = settings
        self.name = name
        self.sidecar = json.loads(settings.sidecar.read_text())
        self.streams = streams_of(self.sidecar)
        self.inputs = {key: spec for key, spec in self.streams.items() if spec.direction == "input"}
        self.outputs = {key: spec for key, spec in self.streams.items() if spec.direction == "output"}
        if model is None:
            unit = unit_named(self.sidecar["unit"])
            model = unit.make_model(unit.make_config(self.sidecar["parameters"]))
        self.model = model
        self.latency: int = self.sidecar["latency_cycles"]
        seed = settings.seed
        self.rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        clocking = CLOCKING | {key: self.sidecar[key] for key in CLOCKING if key in self.sidecar}
        self.clk: LogicObject = getattr(dut, clocking["clock"])
        self.rst = Reset(getattr(dut, clocking["reset"]), clocking["reset_active"])
        self.rst.drive(True)
        Clock(self.clk, CLOCK_NS, unit="ns").start()
        self.cycles = CycleCounter(self.clk)
        buses = {key: spec.bus(dut) for key, spec in self.streams.items()}
        self.sources = {
            key: StreamSource(buses[key], self.clk, self.rst, spec.layout,
                              pause=random_pauses(idle, random.Random(f"{seed}-{name}-{key}-idle")),
                              rng=random.Random(f"{seed}-{name}-{key}-filler"))
            for key, spec in self.inputs.items()}
        self.sinks = {
            key: StreamSink(buses[key], self.clk, self.rst, spec.layout,
                            pause=random_pauses(backpressure, random.Random(f"{seed}-{name}-{key}-backpressure")))
            for key, spec in self.outputs.items()}
        self.monitors = {key: StreamMonitor(key, bus, self.clk, self.rst, self.cycles) for key, bus in buses.items()}
        self.scoreboard = Scoreboard(model, self.inputs, self.outputs)
        for key in self.outputs:
            self.monitors[key].add_callback(self.scoreboard.receiver(key))
        sticky = any(port["name"] == STICKY_FLAG and port["direction"] == "output" and port["width"] == 1
                     for port in self.sidecar["ports"])
        self.error = (StickyMonitor(STICKY_FLAG, getattr(dut, STICKY_FLAG), self.clk, self.rst, self.cycles) if sticky
                      else None)
        self.errors: list[str] = []

    @property
    def source(self) -> StreamSource:
        """The source of the unit's only input stream."""
        if len(self.sources) != 1:
            raise ValueError(f"the unit has input streams {', '.join(self.sources)}: pick one from sources")
        return next(iter(self.sources.values()))

    @property
    def sink(self) -> StreamSink:
        """The sink of the unit's only output stream."""
        if len(self.sinks) != 1:
            raise ValueError(f"the unit has output streams {', '.join(self.sinks)}: pick one from sinks")
        return next(iter(self.sinks.values()))

    @property
    def first_input(self) -> StreamSpec:
        """The unit's first input stream, whose elements the sidecar's ``elements_per_cycle`` counts."""
        return next(iter(self.inputs.values()))

    @property
    def frame_beats(self) -> int:
        """Beats of a frame on the longest stream."""
        return max(spec.beats_per_frame for spec in self.streams.values())

    async def reset(self) -> None:
        """Assert the reset for 5 cycles, dropping whatever the sources still had queued and the sinks held."""
        for source in self.sources.values():
            source.clear()
        for sink in self.sinks.values():
            sink.clear()
        self.rst.drive(True)
        for _ in range(RESET_CYCLES):
            await RisingEdge(self.clk)
        self.rst.drive(False)

    def send(self, frames: Frames, label: str, *, expect: bool = True) -> None:
        """Queue ``frames`` (one or ``rows × elements``; a mapping by stream name when there are several inputs).

        With ``expect`` the scoreboard awaits their golden outputs.
        """
        shaped = self.scoreboard.frames_of(frames)
        for key, rows in shaped.items():
            for row in rows:
                self.sources[key].send(row)
        if expect:
            self.scoreboard.expect(shaped, label)

    def failures(self) -> list[str]:
        monitors = [error for monitor in self.monitors.values() for error in monitor.errors]
        return monitors + self.scoreboard.errors + (self.error.errors if self.error else []) + self.errors

    def _failed(self) -> bool:
        return bool(self.scoreboard.errors or self.errors or any(monitor.errors for monitor in self.monitors.values())
                    or (self.error is not None and self.error.errors))

    async def drain(self, stall: float) -> None:
        """Run until every expected frame came out, then long enough to catch any extra beat.

        Stops early at the first failure. The deadline allows the nominal rate (``cycles_per_frame`` a frame)
        slowed down by ``stall`` (the larger stall probability) with a margin.
        """
        edge = RisingEdge(self.clk)
        stall = min(stall, MAX_STALL)
        pending = max(source.pending for source in self.sources.values())
        frame_cycles = max(self.frame_beats, self.sidecar.get("cycles_per_frame", 0))
        budget = (pending + frame_cycles * self.scoreboard.outstanding) / (1 - stall) ** 2
        deadline = self.cycles.value + STALL_MARGIN * int(budget) + 2 * self.latency + DRAIN_SLACK
        while self.scoreboard.outstanding and not self._failed() and self.cycles.value < deadline:
            await edge
        for _ in range(self.latency + self.frame_beats + DRAIN_SLACK):
            await edge
        self.errors += self.scoreboard.missing()

    def error_is_low(self) -> None:
        """Record an error if the ``error`` output is high (nothing to check on a unit without one)."""
        if self.error is not None and self.error.since is not None:
            self.errors.append(f"error output high since cycle {self.error.since} with no framing error")

    def timing(self, count: int) -> dict[str, Any]:
        """Check and measure a run of ``count`` back-to-back frames, all expected, sent with no stalls.

        Every frame's first output beat must come exactly ``latency_cycles`` after its reference input beat, which
        the sidecar's ``latency_from`` names: the frame's ``last`` input beat (units that need the whole frame, like
        softmax) or its ``first`` (units that work beat by beat, output beat ``k`` following input beat ``k``), the
        latest over the input streams. An output stream's beats must come evenly spaced, ``cycles_per_frame /
        beats_per_frame`` cycles apart (back to back for most units), and the run must take no longer than
        ``cycles_per_frame`` a row allows, plus the latency, the last frame's output beats and one input frame (an
        input may have to arrive in full before the first frame starts). Returns the report fields
        ``elements_per_cycle`` (sustained), ``latency_cycles`` (distinct values), ``span_cycles`` and ``elements``
        (of the first input stream).
        """
        latency_from = self.sidecar["latency_from"]
        if latency_from not in LATENCY_REFERENCES:
            raise ValueError(f"sidecar latency_from={latency_from!r}; allowed: {', '.join(LATENCY_REFERENCES)}")
        inputs = {key: self.monitors[key].beats for key in self.inputs}
        offsets = {key: spec.beats_per_frame - 1 if latency_from == "last" else 0 for key, spec in self.inputs.items()}
        latencies = []
        for key in self.outputs:
            for record in self.scoreboard.done[key]:
                starts = {name: record.index * spec.beats_per_frame + offsets[name]
                          for name, spec in self.inputs.items()}
                if any(start >= len(inputs[name]) for name, start in starts.items()):
                    self.errors.append(f"row {record.index} came out before all its input beats were accepted")
                    continue
                latency = record.first_cycle - max(inputs[name][start].cycle for name, start in starts.items())
                latencies.append(latency)
                if latency != self.latency and len(self.errors) < MAX_REPORTED:
                    self.errors.append(f"row {record.index}: first output beat {latency} cycles after its "
                                       f"{latency_from} input beat, expected {self.latency}")
        frame_cycles = self.sidecar["cycles_per_frame"]
        intervals = {key: frame_cycles // spec.beats_per_frame for key, spec in self.outputs.items()}
        for key, interval in intervals.items():
            beats = self.monitors[key].beats
            gaps = [(before.cycle, after.cycle) for before, after in zip(beats, beats[1:], strict=False)
                    if after.cycle != before.cycle + interval]
            self.errors += [f"{key} stream: beat at cycle {after}, {after - before} cycles after the one before; "
                            f"expected {interval}" for before, after in gaps[:MAX_REPORTED]]
        firsts = [beats[0].cycle for beats in inputs.values() if beats]
        lasts = [self.monitors[key].beats[-1].cycle for key in self.outputs if self.monitors[key].beats]
        span = max(lasts) - min(firsts) + 1 if firsts and lasts else 0
        frame = self.first_input.elements
        tail = max((spec.beats_per_frame - 1) * intervals[key] + 1 for key, spec in self.outputs.items())
        fill = max(spec.beats_per_frame for spec in self.inputs.values())
        bound = count * frame_cycles + self.latency + tail + fill
        if span > bound:
            self.errors.append(f"{count} rows took {span} cycles from first input to last output, more than {bound} "
                               f"at {frame_cycles} cycles a row")
        return {"elements_per_cycle": self.sustained_rate(), "latency_cycles": sorted(set(latencies)),
                "span_cycles": span, "elements": self.scoreboard.frames_done * frame}

    def sustained_rate(self) -> float | None:
        """Input elements per cycle kept up on every stream: its frames (beats over ``beats_per_frame``) times the
        first input's frame elements, over the cycles from its first to its last beat, the lowest over the streams (the
        pipeline's fill, once per run, is in none)."""
        frame = self.first_input.elements
        rates = []
        for key, spec in self.streams.items():
            beats = self.monitors[key].beats
            if len(beats) < 2:
                return None
            rates.append(len(beats) / spec.beats_per_frame * frame / (beats[-1].cycle - beats[0].cycle + 1))
        return min(rates)

    def finish(self, **measured: object) -> None:
        """Write this test's report to ``INT8ATTN_RESULT`` and fail with the first error, if any."""
        errors = self.failures()
        report = {
            "rows": self.scoreboard.frames_done,
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


def file_frames(path: Path) -> Iterable[tuple[str, Frames]]:
    """The labelled frames of a ``.npy`` of rows (one input stream) or an ``.npz`` with one array of frames per input
    stream, by stream name."""
    if path.suffix != ".npz":
        for index, row in enumerate(np.atleast_2d(np.load(path))):
            yield f"{path.name} row {index}", row
        return
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    count = len(next(iter(arrays.values())))
    for index in range(count):
        yield f"{path.name} frame {index}", {name: array[index].reshape(-1) for name, array in arrays.items()}


async def check_test(dut: HierarchyObject, stimuli: Stimuli, directed: Directed | None = None, *,
                     model: Callable[[Any], Any] | None = None) -> None:
    """The ``check`` test: ``INT8ATTN_ROWS`` random frames (or the frames of ``INT8ATTN_FRAMES``) and the directed
    ones, random idle input cycles and output backpressure; every output bit checked."""
    settings = TBSettings.from_env()
    tb = StreamTB(dut, settings, "check", idle=settings.idle, backpressure=settings.backpressure, model=model)
    await tb.reset()
    if settings.frames is None:
        frames = list(stimuli(tb, settings.rows))
    else:
        frames = list(file_frames(settings.frames))
    if settings.directed and directed is not None:
        frames += directed(tb)
    for label, frame in frames:
        tb.send(frame, label)
    await tb.drain(max(settings.idle, settings.backpressure))
    tb.error_is_low()
    tb.finish()


async def _back_to_back(dut: HierarchyObject, stimuli: Stimuli, model: Callable[[Any], Any] | None,
                        least: int) -> tuple[StreamTB, int]:
    """The ``cycle`` tests' run: at least ``least`` frames (``INT8ATTN_ROWS`` if more) back to back, no stalls, all
    out and checked, ``error`` low; the testbench and the frame count."""
    settings = TBSettings.from_env()
    tb = StreamTB(dut, settings, "cycle", idle=0, backpressure=0, model=model)
    await tb.reset()
    count = max(least, settings.rows)
    for label, frame in stimuli(tb, count):
        tb.send(frame, label)
    await tb.drain(0)
    tb.error_is_low()
    return tb, count


async def cycle_test(dut: HierarchyObject, stimuli: Stimuli, *, model: Callable[[Any], Any] | None = None) -> None:
    """The ``cycle`` test: at least :data:`CYCLE_TEST_ROWS` back-to-back random frames, no stalls; exact latency on
    every frame, counted from the input beat the sidecar's ``latency_from`` names, gap-free output, sustained
    elements/cycle (:meth:`StreamTB.timing`)."""
    tb, count = await _back_to_back(dut, stimuli, model, CYCLE_TEST_ROWS)
    tb.finish(**tb.timing(count))


async def sequence_cycle_test(dut: HierarchyObject, stimuli: Stimuli, *,
                              model: Callable[[Any], Any] | None = None) -> None:
    """The ``cycle`` test of a unit that needs a whole sequence before it outputs (attention, the encoder stack):
    back-to-back sequences (the larger of ``INT8ATTN_ROWS`` and :data:`CYCLE_TEST_SEQUENCES`), no stalls; the first
    sequence's first output beat exactly ``latency_cycles`` after its last input beat (an idle unit), and the run
    within ``cycles_per_frame`` a sequence, one more for the first sequence's input and the last one's output, each
    spread over a sequence's cycles, and the latency."""
    tb, count = await _back_to_back(dut, stimuli, model, CYCLE_TEST_SEQUENCES)
    inputs, outputs = tb.monitors["i"].beats, tb.monitors["o"].beats
    measured = {}
    if inputs and outputs:
        last_input = inputs[tb.inputs["i"].beats_per_frame - 1].cycle
        latency = outputs[0].cycle - last_input
        if latency != tb.latency:
            tb.errors.append(f"sequence 0: first output beat {latency} cycles after its last input beat, expected "
                             f"{tb.latency}")
        span = outputs[-1].cycle - inputs[0].cycle + 1
        bound = (count + 1) * tb.sidecar["cycles_per_frame"] + tb.latency
        if span > bound:
            tb.errors.append(f"{count} sequences took {span} cycles from first input to last output, more than "
                             f"{bound} at {tb.sidecar['cycles_per_frame']} cycles a sequence")
        measured = {"elements_per_cycle": tb.sustained_rate(), "latency_cycles": [latency], "span_cycles": span,
                    "elements": count * tb.first_input.elements}
    await RisingEdge(tb.clk)
    tb.finish(**measured)
