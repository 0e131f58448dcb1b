"""cocotb tests that every unit gets besides its own testbench's: ``reset_anywhere`` and ``soak``.

The runner (:data:`int8attn.verif.runner.GENERIC_TESTS`) loads this module beside the unit's testbench module when
one of these tests is asked for, so no unit lists them in its ``tests``. Both build on
:class:`~int8attn.verif.testbench.StreamTB` and draw their frames from the unit's own random stimuli: the first of
:data:`STIMULI_NAMES` its testbench module defines (the names the testbenches use), else frames uniform over each input
stream's lane range (:func:`uniform_frames`).

* ``reset_anywhere``: resets in the middle of an input frame, in the middle of an output frame, while the output is
  stalled (ready held low with a beat waiting), back to back (pulses of 1 to 3 cycles one or two cycles apart, traffic
  in between) and at random cycles under random stalls. After every disruption the unit must stay silent (any output
  beat is a stale one) for its latency, a frame and a margin, and then give the next frames exactly as the golden
  model does.
* ``soak``: ``INT8ATTN_ROWS`` random frames streamed without a break, in batches whose stall probabilities change
  (full rate, the settings' idle and backpressure, heavy idle, heavy backpressure, both), every output bit compared
  and the valid/ready contract of every stream checked on every cycle; the report adds ``mismatches`` and
  ``violations``. Memory stays bounded: the monitors' beat records are dropped after each batch.
"""

import importlib
import itertools
import random
from collections.abc import Callable, Iterator

import cocotb
from cocotb.handle import HierarchyObject
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from int8attn.units import unit_named
from int8attn.verif.runner import TBSettings
from int8attn.verif.stream import Frames, random_pauses
from int8attn.verif.testbench import DRAIN_SLACK, MAX_STALL, RESET_CYCLES, STALL_MARGIN, Stimuli, StreamTB

STIMULI_NAMES = ("random_rows", "random_frames", "random_sequences")
"""Names under which a unit's testbench module may define its random stimuli
(:data:`~int8attn.verif.testbench.Stimuli`), tried in this order."""
FRAMES_IN_FLIGHT = 3
"""Frames queued before each disruption of ``reset_anywhere``."""
RANDOM_RESETS = 4
FRESH_FRAMES = 2
"""Frames sent and checked after each disruption."""
STALL_HOLD = 3
"""Cycles the output must have been valid and stalled before ``reset_anywhere`` resets it."""
BACK_TO_BACK_GAPS = (1, 2, 1)
SOAK_BATCH = 256
SOAK_POLL_CYCLES = 32
"""Cycles between the ``soak`` test's looks at the frames outstanding (at least a frame's cycles)."""
SOAK_STALLS = ((0.0, 0.0), None, (0.6, 0.0), (0.0, 0.6), (0.3, 0.3))
"""(idle, backpressure) of successive ``soak`` batches, cycled; ``None`` is the settings' own pair."""


def uniform_frames(tb: StreamTB, count: int) -> Iterator[tuple[str, Frames]]:
    """``count`` frames with every element uniform over its input stream's lane range."""
    for _ in range(count):
        frames = {key: tb.rng.integers(spec.layout.low, spec.layout.high, spec.elements, endpoint=True)
                  for key, spec in tb.inputs.items()}
        yield "uniform", frames if len(frames) > 1 else next(iter(frames.values()))


def unit_stimuli(tb: StreamTB) -> Stimuli:
    """The random stimuli of the unit under test: the first of :data:`STIMULI_NAMES` in its testbench module, else
    :func:`uniform_frames`."""
    module = importlib.import_module(unit_named(tb.sidecar["unit"]).testbench)
    for name in STIMULI_NAMES:
        stimuli = getattr(module, name, None)
        if callable(stimuli):
            return stimuli
    return uniform_frames


def _frame_cycles(tb: StreamTB) -> int:
    return max(tb.frame_beats, tb.sidecar.get("cycles_per_frame", 0))


def _cycle_budget(tb: StreamTB, frames: int, stall: float) -> int:
    """Cycles ``frames`` frames may take at stall probability ``stall`` (the bound :meth:`StreamTB.drain` uses)."""
    stall = min(stall, MAX_STALL)
    return STALL_MARGIN * int(frames * _frame_cycles(tb) / (1 - stall) ** 2) + 2 * tb.latency + DRAIN_SLACK


async def reset_pulse(tb: StreamTB, cycles: int) -> int:
    """Assert the reset for ``cycles`` cycles from now (call right after a rising edge), dropping what the sources
    still had queued, what the sinks held and every frame the scoreboard expected; returns the frames dropped."""
    for source in tb.sources.values():
        source.clear()
    for sink in tb.sinks.values():
        sink.clear()
    dropped = tb.scoreboard.flush()
    tb.rst.drive(True)
    await ClockCycles(tb.clk, cycles)
    tb.rst.drive(False)
    return dropped


async def until(tb: StreamTB, condition: Callable[[], bool], limit: int) -> bool:
    """Wait for the first rising edge (at most ``limit``) after which ``condition()`` holds; the monitors have then
    recorded every beat accepted up to that edge, and signals may be driven."""
    for _ in range(limit):
        await RisingEdge(tb.clk)
        if condition():
            return True
    return False


def _send(tb: StreamTB, stimuli: Stimuli, count: int) -> None:
    for label, frame in stimuli(tb, count):
        tb.send(frame, label)


class ResetScenarios:
    """The disruptions of ``reset_anywhere`` on one :class:`StreamTB`, each followed by :meth:`recover`.

    Parameters
    ----------
    tb : StreamTB
    stimuli : Stimuli
        The unit's random frames (:func:`unit_stimuli`).
    stall : float
        The larger stall probability of the sources and sinks, for the cycle budgets.

    Members
    -------
    resets : int
        Reset pulses applied.
    ran, skipped : list of str
        Scenarios that ran, and those the unit's framing makes impossible (with the reason).
    """

    def __init__(self, tb: StreamTB, stimuli: Stimuli, stall: float):
        self.tb = tb
        self.stimuli = stimuli
        self.stall = stall
        self.rng = random.Random(f"{tb.settings.seed}-reset-anywhere")
        self.resets = 0
        self.ran: list[str] = []
        self.skipped: list[str] = []
        self.input_key = next(iter(tb.inputs))
        self.output_key = next(iter(tb.outputs))

    async def pulse(self, low: int = 1, high: int = RESET_CYCLES) -> None:
        """A reset of ``low`` to ``high`` cycles (:func:`reset_pulse`)."""
        self.resets += 1
        await reset_pulse(self.tb, self.rng.randint(low, high))

    def _fail(self, scenario: str, message: str) -> None:
        self.tb.errors.append(f"{scenario}: {message}")

    async def recover(self, scenario: str) -> None:
        """After a reset: no output beat for the latency, a frame and a margin (the scoreboard expects none, so any
        beat is reported as unexpected), then :data:`FRESH_FRAMES` frames exact."""
        tb = self.tb
        await ClockCycles(tb.clk, tb.latency + _frame_cycles(tb) + DRAIN_SLACK)
        _send(tb, self.stimuli, FRESH_FRAMES)
        await tb.drain(self.stall)
        if tb.error is not None and tb.error.since is not None:
            self._fail(scenario, f"error output high since cycle {tb.error.since} after the reset")
        self.ran.append(scenario)

    async def mid_frame(self, scenario: str, key: str) -> None:
        """Reset after a random number of beats of stream ``key`` that is not a whole number of frames."""
        tb = self.tb
        beats = tb.streams[key].beats_per_frame
        monitor = tb.monitors[key]
        start = len(monitor.beats)
        frame = self.rng.randrange(FRAMES_IN_FLIGHT - 1)
        if beats >= 2:
            target = frame * beats + self.rng.randint(1, beats - 1)
        elif key == self.output_key:
            target = frame + 1
        else:
            self.skipped.append(f"{scenario}: frames of stream {key} are one beat")
            return
        _send(tb, self.stimuli, FRAMES_IN_FLIGHT)
        if not await until(tb, lambda: len(monitor.beats) - start >= target,
                           _cycle_budget(tb, FRAMES_IN_FLIGHT, self.stall)):
            self._fail(scenario, f"beat {target} of stream {key} never came")
            return
        await self.pulse()
        await self.recover(f"{scenario} (after beat {target} of stream {key})")

    async def stalled_output(self) -> None:
        """Hold every output's ready low until an output beat has waited :data:`STALL_HOLD` cycles, then reset."""
        scenario = "reset while the output is stalled"
        tb = self.tb
        for sink in tb.sinks.values():
            sink.set_pause_generator(itertools.repeat(True))
        valid = tb.monitors[self.output_key].bus.valid
        _send(tb, self.stimuli, FRAMES_IN_FLIGHT)
        waited, limit = 0, _cycle_budget(tb, FRAMES_IN_FLIGHT, self.stall)
        for _ in range(limit):
            await ReadOnly()
            waited = waited + 1 if str(valid.value) == "1" else 0
            await RisingEdge(tb.clk)
            if waited >= STALL_HOLD:
                break
        await self.pulse()
        for key, sink in tb.sinks.items():
            sink.set_pause_generator(random_pauses(tb.settings.backpressure,
                                                   random.Random(f"{tb.settings.seed}-reset-anywhere-{key}")))
        if waited < STALL_HOLD:
            self._fail(scenario, f"no output beat waited {STALL_HOLD} cycles within {limit} cycles")
            return
        await self.recover(scenario)

    async def back_to_back(self) -> None:
        """Short pulses one or two cycles apart, traffic queued after each release."""
        tb = self.tb
        _send(tb, self.stimuli, FRAMES_IN_FLIGHT)
        await ClockCycles(tb.clk, self.rng.randint(1, tb.latency + tb.frame_beats))
        for gap in BACK_TO_BACK_GAPS:
            await self.pulse(1, 3)
            _send(tb, self.stimuli, 1)
            await ClockCycles(tb.clk, gap)
        await self.pulse(1, 1)
        await self.recover(f"back-to-back resets ({len(BACK_TO_BACK_GAPS) + 1} pulses)")

    async def random_points(self) -> None:
        """Resets at random cycles of random traffic under the settings' stalls."""
        tb = self.tb
        for index in range(RANDOM_RESETS):
            _send(tb, self.stimuli, FRAMES_IN_FLIGHT)
            await ClockCycles(tb.clk, self.rng.randint(1, _cycle_budget(tb, FRAMES_IN_FLIGHT, 0) // STALL_MARGIN))
            await self.pulse()
            await self.recover(f"random reset {index + 1}")


@cocotb.test()
async def reset_anywhere(dut: HierarchyObject) -> None:
    """Resets mid input frame, mid output frame, with the output stalled, back to back and at random: no stale beat
    afterwards, and the next frames exact."""
    settings = TBSettings.from_env()
    tb = StreamTB(dut, settings, "reset_anywhere", idle=settings.idle, backpressure=settings.backpressure)
    scenarios = ResetScenarios(tb, unit_stimuli(tb), max(settings.idle, settings.backpressure))
    await tb.reset()
    await scenarios.mid_frame("reset mid input frame", scenarios.input_key)
    await scenarios.mid_frame("reset mid output frame", scenarios.output_key)
    await scenarios.stalled_output()
    await scenarios.back_to_back()
    await scenarios.random_points()
    tb.error_is_low()
    tb.finish(resets=scenarios.resets, scenarios=scenarios.ran, skipped=scenarios.skipped)


def _set_stalls(tb: StreamTB, idle: float, backpressure: float, salt: str) -> None:
    seed = tb.settings.seed
    for key, source in tb.sources.items():
        source.set_pause_generator(random_pauses(idle, random.Random(f"{seed}-{salt}-{key}-idle")))
    for key, sink in tb.sinks.items():
        sink.set_pause_generator(random_pauses(backpressure, random.Random(f"{seed}-{salt}-{key}-backpressure")))


@cocotb.test()
async def soak(dut: HierarchyObject) -> None:
    """``INT8ATTN_ROWS`` random frames back to back under changing random stalls; every bit and every handshake
    checked."""
    settings = TBSettings.from_env()
    tb = StreamTB(dut, settings, "soak", idle=settings.idle, backpressure=settings.backpressure)
    stimuli = unit_stimuli(tb)
    await tb.reset()
    stalls = [pair or (settings.idle, settings.backpressure) for pair in SOAK_STALLS]
    worst = max(max(pair) for pair in stalls)
    poll = max(SOAK_POLL_CYCLES, _frame_cycles(tb))
    sent = batches = 0
    while sent < settings.rows and not tb.failures():
        count = min(SOAK_BATCH, settings.rows - sent)
        idle, backpressure = stalls[batches % len(stalls)]
        _set_stalls(tb, idle, backpressure, f"soak-{batches}")
        _send(tb, stimuli, count)
        sent += count
        batches += 1
        checked, quiet, limit = tb.scoreboard.beats_checked, 0, _cycle_budget(tb, 1, worst)
        while tb.scoreboard.outstanding > SOAK_BATCH // 2 and not tb.failures():
            await ClockCycles(tb.clk, poll)
            quiet = 0 if tb.scoreboard.beats_checked != checked else quiet + poll
            checked = tb.scoreboard.beats_checked
            if quiet > limit:
                tb.errors.append(f"no output beat for {quiet} cycles with {tb.scoreboard.outstanding} frames "
                                 f"outstanding")
        for monitor in tb.monitors.values():
            monitor.beats.clear()
    await tb.drain(worst)
    tb.error_is_low()
    violations = sum(len(monitor.errors) for monitor in tb.monitors.values()) + (
        len(tb.error.errors) if tb.error is not None else 0)
    tb.finish(mismatches=len(tb.scoreboard.errors), violations=violations, batches=batches,
              stalls=[list(pair) for pair in stalls])
