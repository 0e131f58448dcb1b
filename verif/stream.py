"""Valid/ready stream components for cocotb: driver, sink, protocol monitor and scoreboard.

Every component runs on the rising edges of one clock. Components drive right after a rising edge and sample in
the ``ReadOnly`` phase of the same time step, so a beat is accepted on the rising edge that follows a cycle in
which ``valid`` and ``ready`` were both sampled high. Cycles are counted by :class:`CycleCounter`: a beat
accepted on the ``k``-th rising edge since the counter started has cycle ``k``.
"""

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import cocotb
import numpy as np
from cocotb.handle import LogicArrayObject, LogicObject
from cocotb.triggers import ReadOnly, RisingEdge

from int8attn.golden import SoftmaxModel

ROW_TEXT_ELEMENTS = 64


@dataclass(frozen=True)
class PayloadLayout:
    """Packing of one beat: lane ``k`` is bits ``[b·k+b−1 : b·k]`` (signed, ``b = lane_bits``), ``last`` the bit above.

    Parameters
    ----------
    lanes : int
        Elements per beat.
    lane_bits : int
        Bits of each element.
    """

    lanes: int
    lane_bits: int = 8

    @property
    def last_bit(self) -> int:
        return self.lane_bits * self.lanes

    @property
    def width(self) -> int:
        return self.last_bit + 1

    def pack(self, values: np.ndarray, last: bool) -> int:
        """Payload word of one beat from ``lanes`` signed values and the ``last`` flag."""
        values = np.asarray(values)
        if values.shape != (self.lanes,):
            raise ValueError(f"a beat holds {self.lanes} values, got shape {values.shape}")
        low, high = -(1 << (self.lane_bits - 1)), (1 << (self.lane_bits - 1)) - 1
        if values.min() < low or values.max() > high:
            raise ValueError(f"values {values} do not fit in signed {self.lane_bits}-bit lanes")
        mask = (1 << self.lane_bits) - 1
        word = int(last) << self.last_bit
        for lane, value in enumerate(values.tolist()):
            word |= (value & mask) << (self.lane_bits * lane)
        return word

    def unpack(self, payload: int) -> tuple[np.ndarray, bool]:
        """``(values, last)`` of a payload word; bits above ``last`` must be zero."""
        if payload >> self.width:
            raise ValueError(f"payload 0x{payload:x} has bits set above bit {self.last_bit}")
        mask, sign = (1 << self.lane_bits) - 1, 1 << (self.lane_bits - 1)
        fields = [(payload >> (self.lane_bits * lane)) & mask for lane in range(self.lanes)]
        values = np.array([field - (field & sign) * 2 for field in fields], dtype=np.int64)
        return values, bool(payload >> self.last_bit)


@dataclass(frozen=True)
class Beat:
    """A beat accepted on a stream: its payload word and the cycle of the rising edge that accepted it."""

    payload: int
    cycle: int


class CycleCounter:
    """Counts rising edges of ``clk`` from the moment it is created.

    Read :attr:`value` in a ``ReadOnly`` phase: it is then the number of rising edges so far, and the next rising
    edge is cycle ``value + 1``.
    """

    def __init__(self, clk: LogicObject):
        self.value = 0
        self._clk = clk
        cocotb.start_soon(self._run())

    async def _run(self) -> None:
        edge = RisingEdge(self._clk)
        while True:
            await edge
            self.value += 1


def _high(signal: LogicObject) -> bool | None:
    """``True``/``False`` for a resolvable 1-bit signal, ``None`` for X or Z."""
    value = signal.value
    return bool(value) if value.is_resolvable else None


class StreamDriver:
    """Drives ``valid``/``payload`` of a stream input and honours its ``ready``.

    Each cycle in which no beat is presented, the driver stays idle with probability ``idle``; otherwise it
    presents the next queued beat and holds it, payload unchanged, until it is accepted. While idle the payload
    carries random bits, so a design that samples it without ``valid`` is caught.

    Parameters
    ----------
    clk, valid, ready, payload : handles
        The clock and the stream's signals.
    rst : handle
        Synchronous active-high reset: no beat counts as accepted while it is high.
    idle : float
        Probability that a cycle with no beat presented stays idle.
    rng : random.Random
        Source of the idle cycles and of the filler payloads.
    """

    def __init__(self, clk: LogicObject, valid: LogicObject, ready: LogicObject, payload: LogicArrayObject,
                 rst: LogicObject, *, idle: float, rng: random.Random):
        self._clk = clk
        self._valid = valid
        self._ready = ready
        self._payload = payload
        self._rst = rst
        self._width = len(payload)
        self._idle = idle
        self._rng = rng
        self._queue: deque[int] = deque()
        self._presenting = False
        cocotb.start_soon(self._run())

    def send(self, payload: int) -> None:
        """Queue one beat."""
        self._queue.append(payload)

    def clear(self) -> None:
        """Drop every queued beat, including one being presented (used around a reset)."""
        self._queue.clear()
        self._presenting = False

    @property
    def pending(self) -> int:
        """Beats queued and not yet accepted."""
        return len(self._queue)

    async def _run(self) -> None:
        edge = RisingEdge(self._clk)
        settle = ReadOnly()
        accepted = False
        while True:
            await edge
            if accepted and self._presenting:
                self._queue.popleft()
                self._presenting = False
            if not self._presenting and self._queue and self._rng.random() >= self._idle:
                self._presenting = True
            if self._presenting:
                self._payload.value = self._queue[0]
            else:
                self._payload.value = self._rng.getrandbits(self._width)
            self._valid.value = int(self._presenting)
            await settle
            accepted = bool(_high(self._ready)) and _high(self._rst) is False


class StreamSink:
    """Drives ``ready`` of a stream output: low with probability ``backpressure`` in each cycle.

    Parameters
    ----------
    clk, ready : handles
        The clock and the stream's ``ready``.
    backpressure : float
        Probability that ``ready`` is low in a cycle; 0 keeps it high.
    rng : random.Random
        Source of the stall cycles.
    """

    def __init__(self, clk: LogicObject, ready: LogicObject, *, backpressure: float, rng: random.Random):
        self._clk = clk
        self._ready = ready
        self._backpressure = backpressure
        self._rng = rng
        cocotb.start_soon(self._run())

    async def _run(self) -> None:
        edge = RisingEdge(self._clk)
        while True:
            self._ready.value = int(self._rng.random() >= self._backpressure)
            await edge


class StreamMonitor:
    """Checks the valid/ready contract of one stream every cycle and records the accepted beats.

    Once ``valid`` is high it must stay high, with the payload unchanged, until ``ready`` accepts the beat;
    ``valid`` must never be X or Z, nor the payload while ``valid`` is high. Each violation is appended to
    :attr:`errors`. Cycles with ``rst`` high are not checked and end any pending beat.

    Parameters
    ----------
    name : str
        Name used in error messages.
    clk, valid, ready, payload, rst : handles
        The clock, the stream's signals and the synchronous reset.
    cycles : CycleCounter
        Cycle numbering shared with the rest of the testbench.
    """

    def __init__(self, name: str, clk: LogicObject, valid: LogicObject, ready: LogicObject,
                 payload: LogicArrayObject, rst: LogicObject, cycles: CycleCounter):
        self.name = name
        self._clk = clk
        self._valid = valid
        self._ready = ready
        self._payload = payload
        self._rst = rst
        self._cycles = cycles
        self.beats: list[Beat] = []
        self.errors: list[str] = []
        self._callbacks: list[Callable[[Beat], None]] = []
        cocotb.start_soon(self._run())

    def add_callback(self, callback: Callable[[Beat], None]) -> None:
        """Call ``callback(beat)`` for every accepted beat, in order."""
        self._callbacks.append(callback)

    def _error(self, cycle: int, message: str) -> None:
        self.errors.append(f"{self.name} stream, cycle {cycle}: {message}")

    async def _run(self) -> None:
        edge = RisingEdge(self._clk)
        settle = ReadOnly()
        pending: int | None = None
        while True:
            await settle
            cycle = self._cycles.value + 1
            if _high(self._rst) is not False:
                pending = None
                await edge
                continue
            valid = _high(self._valid)
            ready = _high(self._ready)
            if valid is None or ready is None:
                self._error(cycle, f"valid={self._valid.value} ready={self._ready.value} is not 0 or 1")
                pending = None
                await edge
                continue
            payload: int | None = None
            if valid:
                value = self._payload.value
                if value.is_resolvable:
                    payload = value.to_unsigned()
                else:
                    self._error(cycle, f"payload {value} has X/Z bits while valid is high")
            if pending is not None:
                if not valid:
                    self._error(cycle, f"valid dropped before the beat 0x{pending:x} was accepted")
                elif payload != pending:
                    self._error(cycle, f"payload changed from 0x{pending:x} to {payload!r} while valid && !ready")
            if valid and ready and payload is not None:
                beat = Beat(payload, cycle)
                self.beats.append(beat)
                for callback in self._callbacks:
                    callback(beat)
                pending = None
            elif valid:
                pending = payload
            else:
                pending = None
            await edge


@dataclass
class ExpectedRow:
    """One row the scoreboard waits for: its input, its golden output and a label for messages."""

    index: int
    label: str
    inputs: np.ndarray
    outputs: np.ndarray
    first_cycle: int | None = None
    beats_seen: int = 0


@dataclass(frozen=True)
class RowRecord:
    """A row that came out completely: its index among the expected rows and the cycle of its first output beat."""

    index: int
    first_cycle: int


def _row_text(row: np.ndarray) -> str:
    return np.array2string(row, separator=",", max_line_width=1 << 20, threshold=ROW_TEXT_ELEMENTS)


class Scoreboard:
    """Compares every output beat, bit for bit, with the rows of a :class:`SoftmaxModel`, in order.

    Each beat must carry the next ``lanes`` golden outputs of the oldest expected row, with ``last`` set exactly
    on the row's final beat. There is no tolerance. A beat with no row left to expect is an error.

    Parameters
    ----------
    model : SoftmaxModel
        The golden model of the design under test.
    layout : PayloadLayout
        Payload packing of the output stream.
    """

    def __init__(self, model: SoftmaxModel, layout: PayloadLayout):
        self.model = model
        self.layout = layout
        self.errors: list[str] = []
        self.done: list[RowRecord] = []
        self.beats_checked = 0
        self._expected: deque[ExpectedRow] = deque()
        self._rows_expected = 0

    @property
    def beats_per_row(self) -> int:
        return self.model.config.beats

    @property
    def outstanding(self) -> int:
        """Rows expected and not yet completely received."""
        return len(self._expected)

    def expect(self, rows: np.ndarray, label: str) -> None:
        """Queue ``rows`` (int8, ``rows × n``), in order, with their golden outputs."""
        outputs = self.model(rows)
        for inputs, golden in zip(rows, outputs, strict=True):
            self._expected.append(ExpectedRow(self._rows_expected, label, inputs.copy(), golden))
            self._rows_expected += 1

    def receive(self, beat: Beat) -> None:
        """Check one output beat against the oldest expected row."""
        self.beats_checked += 1
        if not self._expected:
            self.errors.append(f"cycle {beat.cycle}: unexpected output beat 0x{beat.payload:x}, no row outstanding")
            return
        row = self._expected[0]
        index = row.beats_seen
        where = f"row {row.index} ({row.label}), beat {index}/{self.beats_per_row}, cycle {beat.cycle}"
        values, last = self.layout.unpack(beat.payload)
        lanes = self.layout.lanes
        golden = row.outputs[index * lanes:(index + 1) * lanes]
        for lane in np.flatnonzero(values != golden):
            element = index * lanes + int(lane)
            self.errors.append(f"{where}, lane {lane} (element {element}): got {int(values[lane])}, expected "
                               f"{int(golden[lane])}; input row {_row_text(row.inputs)}")
        final = index == self.beats_per_row - 1
        if last != final:
            self.errors.append(f"{where}: last={int(last)}, expected {int(final)}")
        if row.first_cycle is None:
            row.first_cycle = beat.cycle
        row.beats_seen += 1
        if row.beats_seen == self.beats_per_row:
            self._expected.popleft()
            self.done.append(RowRecord(row.index, row.first_cycle))

    def missing(self) -> list[str]:
        """One message per expected row that did not come out (completely)."""
        return [f"row {row.index} ({row.label}): {row.beats_seen} of {self.beats_per_row} beats came out"
                for row in self._expected]
