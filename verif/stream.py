"""Valid/ready stream components for cocotb: bus, source, sink, protocol monitor and scoreboard.

A stream of a unit follows one of two protocols (:func:`port_names`). ``stream``: stream member ``X`` has the Verilog
ports ``X__valid``, ``X__ready`` and ``X__payload``; its payload holds ``lanes`` elements of ``lane_bits`` (lane ``k``
at bits ``[b·k+b−1 : b·k]``) and ``last`` at the bit above. ``axis`` (AXI4-Stream): the ports ``P_tvalid``,
``P_tready``, ``P_tdata`` and ``P_tlast`` of a prefix ``P``, each lane sign-extended to whole bytes in ``tdata``. A beat
is one word either way: the payload, or ``tdata`` with ``tlast`` at the bit above. :class:`StreamBus` finds the ports of
one stream and reads and drives that word, :class:`PayloadLayout` packs it and :class:`StreamSpec` is one entry of a
sidecar's ``streams``. The reset's port and active level come with it as a :class:`Reset`.

A :class:`StreamSource` sends frames (or single beats, for framing tests) and a :class:`StreamSink` receives frames.
Their stalls come from any iterator of bools, one per cycle, ``True`` meaning pause: :func:`random_pauses`,
:func:`no_pauses` and :func:`bursts` make the usual ones. A :class:`StreamMonitor` checks the valid/ready contract of
one stream every cycle and records its accepted beats; a :class:`Scoreboard` checks every output beat against a
golden model of any number of input and output streams.

Every component runs on the rising edges of one clock. Components drive right after a rising edge and sample in
the ``ReadOnly`` phase of the same time step, so a beat is accepted on the rising edge that follows a cycle in
which ``valid`` and ``ready`` were both sampled high. Cycles are counted by :class:`CycleCounter`: a beat
accepted on the ``k``-th rising edge since the counter started has cycle ``k``.
"""

import itertools
import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import cocotb
import numpy as np
from cocotb.handle import HierarchyObject, LogicArrayObject, LogicObject
from cocotb.triggers import Event, ReadOnly, RisingEdge

ROW_TEXT_ELEMENTS = 64
PROTOCOLS = ("stream", "axis")

Frames = np.ndarray | Mapping[str, np.ndarray]
"""Frames of a unit: an array (``rows × elements``, or one frame) for one stream, or a mapping by stream name."""


def random_pauses(probability: float, rng: random.Random) -> Iterator[bool]:
    """Endless pauses, each cycle independently ``True`` with ``probability``."""
    while True:
        yield rng.random() < probability


def no_pauses() -> Iterator[bool]:
    """Never pause."""
    return itertools.repeat(False)


def bursts(active: int, paused: int, *, offset: int = 0) -> Iterator[bool]:
    """Endless bursts: ``active`` cycles without a pause, then ``paused`` cycles paused; starts ``offset`` cycles in."""
    if active < 1 or paused < 0 or offset < 0:
        raise ValueError(f"bursts need active ≥ 1, paused ≥ 0 and offset ≥ 0, not {active}, {paused}, {offset}")
    return itertools.islice(itertools.cycle([False] * active + [True] * paused), offset, None)


@dataclass(frozen=True)
class PayloadLayout:
    """Packing of one beat: lane ``k`` is bits ``[s·k+s−1 : s·k]`` (``s`` = :attr:`lane_stride`), ``last`` the bit
    above.

    Parameters
    ----------
    lanes : int
        Elements per beat.
    lane_bits : int
        Bits of each element.
    signed : bool
        Whether the elements are two's complement.
    stride : int, optional
        Bits each lane occupies, ≥ ``lane_bits`` (``lane_bits`` when omitted); an element is sign- (or zero-)
        extended to it, as AXI4-Stream's byte-aligned ``tdata`` lanes are.
    """

    lanes: int
    lane_bits: int = 8
    signed: bool = True
    stride: int | None = None

    def __post_init__(self):
        if self.stride is not None and self.stride < self.lane_bits:
            raise ValueError(f"a lane of {self.lane_bits} bits does not fit in a stride of {self.stride}")

    @classmethod
    def from_stream(cls, entry: Mapping[str, Any]) -> "PayloadLayout":
        """The layout of a sidecar ``streams`` entry, checked against its ``last_bit`` and ``width`` (protocol
        ``stream``, the default) or its ``tdata_bits`` (protocol ``axis``)."""
        protocol = entry.get("protocol", "stream")
        if protocol == "axis":
            layout = cls(entry["lanes"], entry["lane_bits"], entry["signed"], entry["tdata_lane_bits"])
            if entry["tdata_bits"] != layout.last_bit:
                raise ValueError(f"stream entry {dict(entry)}: {layout.lanes} lanes of {layout.lane_stride} bits need "
                                 f"tdata_bits={layout.last_bit}")
            return layout
        if protocol != "stream":
            raise ValueError(f"stream entry {dict(entry)}: protocol {protocol!r}; allowed: {', '.join(PROTOCOLS)}")
        layout = cls(entry["lanes"], entry["lane_bits"], entry["signed"])
        if entry["last_bit"] != layout.last_bit or entry["width"] != layout.width:
            raise ValueError(f"stream entry {dict(entry)}: {layout.lanes} lanes of {layout.lane_bits} bits need "
                             f"last_bit={layout.last_bit} and width={layout.width}")
        return layout

    @property
    def lane_stride(self) -> int:
        return self.lane_bits if self.stride is None else self.stride

    @property
    def last_bit(self) -> int:
        return self.lane_stride * self.lanes

    @property
    def width(self) -> int:
        return self.last_bit + 1

    @property
    def low(self) -> int:
        return -(1 << (self.lane_bits - 1)) if self.signed else 0

    @property
    def high(self) -> int:
        return (1 << (self.lane_bits - int(self.signed))) - 1

    @property
    def dtype(self) -> np.dtype:
        """The narrowest numpy integer type that holds every element."""
        for bits in (8, 16, 32, 64):
            if self.lane_bits <= bits:
                return np.dtype(f"{'' if self.signed else 'u'}int{bits}")
        raise ValueError(f"{self.lane_bits}-bit lanes have no numpy type")

    def fit(self, values: np.ndarray) -> np.ndarray:
        """``values`` as :attr:`dtype`; :class:`ValueError` when one does not fit in a lane."""
        values = np.asarray(values)
        if values.size and (values.min() < self.low or values.max() > self.high):
            raise ValueError(f"values from {values.min()} to {values.max()} do not fit in "
                             f"{'signed' if self.signed else 'unsigned'} {self.lane_bits}-bit lanes")
        return values.astype(self.dtype)

    def pack(self, values: np.ndarray, last: bool) -> int:
        """Payload word of one beat from ``lanes`` values and the ``last`` flag."""
        values = np.asarray(values)
        if values.shape != (self.lanes,):
            raise ValueError(f"a beat holds {self.lanes} values, got shape {values.shape}")
        self.fit(values)
        stride = self.lane_stride
        mask = (1 << stride) - 1
        word = int(last) << self.last_bit
        for lane, value in enumerate(values.tolist()):
            word |= (value & mask) << (stride * lane)
        return word

    @property
    def words(self) -> int:
        """32-bit words of a beat word (:attr:`width` bits)."""
        return -(-self.width // 32)

    def frame_words(self, frames: np.ndarray) -> np.ndarray:
        """The beat words of ``rows × elements`` frames (:meth:`frame_beats` of each, ``last`` on each frame's final
        beat) as little-endian 32-bit words, least significant first: a ``rows × beats × words`` ``uint32`` array."""
        frames = np.asarray(frames)
        if frames.ndim != 2 or frames.size == 0 or frames.shape[1] % self.lanes:
            raise ValueError(f"frames of shape {frames.shape} are not rows of whole numbers (≥ 1) of {self.lanes}-lane "
                             "beats")
        beats = self.fit(frames).reshape(len(frames), -1, self.lanes)
        stride = self.lane_stride
        words = np.zeros((*beats.shape[:2], self.words), dtype=np.uint64)
        for lane in range(self.lanes):
            field = (beats[..., lane].astype(np.int64) & ((1 << stride) - 1)).astype(np.uint64)
            index, shift = divmod(stride * lane, 32)
            words[..., index] |= (field << np.uint64(shift)) & np.uint64(0xFFFFFFFF)
            if shift + stride > 32:
                words[..., index + 1] |= field >> np.uint64(32 - shift)
        index, shift = divmod(self.last_bit, 32)
        words[:, -1, index] |= np.uint64(1 << shift)
        return words.astype("<u4")

    def unpack(self, payload: int) -> tuple[np.ndarray, bool]:
        """``(values, last)`` of a payload word; bits above ``last`` must be zero. A lane reads as its whole stride, so
        one not properly extended comes out out of range."""
        if payload >> self.width:
            raise ValueError(f"payload 0x{payload:x} has bits set above bit {self.last_bit}")
        stride = self.lane_stride
        mask = (1 << stride) - 1
        sign = 1 << (stride - 1) if self.signed else 0
        fields = [(payload >> (stride * lane)) & mask for lane in range(self.lanes)]
        values = np.array([field - (field & sign) * 2 for field in fields], dtype=np.int64)
        return values, bool(payload >> self.last_bit)

    def frame_beats(self, frame: np.ndarray) -> list[int]:
        """Payload words of one frame: its values in order, ``lanes`` per beat, ``last`` on the final beat."""
        frame = np.asarray(frame).reshape(-1)
        if frame.size == 0 or frame.size % self.lanes:
            raise ValueError(f"a frame of {frame.size} values is not a whole number (≥ 1) of {self.lanes}-lane beats")
        count = frame.size // self.lanes
        return [self.pack(frame[beat * self.lanes:(beat + 1) * self.lanes], beat == count - 1)
                for beat in range(count)]


def port_names(prefix: str, protocol: str = "stream") -> dict[str, str]:
    """Role → Verilog port of the stream ``prefix``: ``valid``, ``ready`` and ``payload`` (lanes and ``last``) for
    protocol ``stream``; ``valid``, ``ready``, ``data`` (the lanes) and ``last`` for ``axis``."""
    if protocol == "stream":
        return {"valid": f"{prefix}__valid", "ready": f"{prefix}__ready", "payload": f"{prefix}__payload"}
    if protocol == "axis":
        return {"valid": f"{prefix}_tvalid", "ready": f"{prefix}_tready", "data": f"{prefix}_tdata",
                "last": f"{prefix}_tlast"}
    raise ValueError(f"protocol {protocol!r} is unknown; allowed: {', '.join(PROTOCOLS)}")


@dataclass(frozen=True)
class StreamSpec:
    """One stream of a unit, as its sidecar describes it.

    Members
    -------
    name : str
        The unit's name of the stream (``i``, ``o``, ``q``, ...).
    direction : str
        ``"input"`` or ``"output"``, seen from the unit.
    layout : PayloadLayout
        Packing of a beat.
    beats_per_frame : int
        Beats of one frame.
    protocol : str
        ``"stream"`` or ``"axis"`` (:func:`port_names`).
    prefix : str or None
        Prefix of its ports; ``name`` when ``None``.
    """

    name: str
    direction: str
    layout: PayloadLayout
    beats_per_frame: int
    protocol: str = "stream"
    prefix: str | None = None

    @property
    def elements(self) -> int:
        """Elements of one frame."""
        return self.layout.lanes * self.beats_per_frame

    @property
    def port_prefix(self) -> str:
        return self.name if self.prefix is None else self.prefix

    @property
    def ports(self) -> dict[str, str]:
        """Role → Verilog port (:func:`port_names`)."""
        return port_names(self.port_prefix, self.protocol)

    def widths(self) -> dict[str, int]:
        """Verilog port → width, for every port of the stream."""
        ports = self.ports
        if self.protocol == "axis":
            return {ports["valid"]: 1, ports["ready"]: 1, ports["data"]: self.layout.last_bit, ports["last"]: 1}
        return {ports["valid"]: 1, ports["ready"]: 1, ports["payload"]: self.layout.width}

    def bus(self, dut: HierarchyObject) -> "StreamBus":
        """The stream's ports on ``dut``."""
        return StreamBus(dut, self.port_prefix, self.protocol)


def streams_of(sidecar: Mapping[str, Any]) -> dict[str, StreamSpec]:
    """The streams of a sidecar, in its order, each checked against the widths of its ``ports``."""
    widths = {port["name"]: port["width"] for port in sidecar["ports"]}
    streams = {}
    for name, entry in sidecar["streams"].items():
        if entry["direction"] not in ("input", "output"):
            raise ValueError(f"stream {name}: direction {entry['direction']!r} is not input or output")
        spec = StreamSpec(name, entry["direction"], PayloadLayout.from_stream(entry), entry["beats_per_frame"],
                          entry.get("protocol", "stream"), entry.get("prefix"))
        for port, width in spec.widths().items():
            if widths.get(port) != width:
                raise ValueError(f"port {port} is {widths.get(port)} bits wide; stream {name} needs {width}")
        streams[name] = spec
    return streams


class StreamBus:
    """The ports of stream ``prefix`` of ``dut`` (:func:`port_names` of ``protocol``) and its beat word: the payload
    (``stream``), or ``tdata`` with ``tlast`` at the bit above (``axis``).

    Members
    -------
    prefix, protocol : str
    valid, ready : LogicObject
    data : LogicArrayObject
        The payload (``stream``) or ``tdata`` (``axis``).
    last : LogicObject or None
        ``tlast`` (``axis``); ``None`` when ``last`` is in the payload.
    """

    def __init__(self, dut: HierarchyObject, prefix: str, protocol: str = "stream"):
        self.prefix = prefix
        self.protocol = protocol
        names = port_names(prefix, protocol)
        try:
            self.valid: LogicObject = getattr(dut, names["valid"])
            self.ready: LogicObject = getattr(dut, names["ready"])
            self.data: LogicArrayObject = getattr(dut, names["data" if protocol == "axis" else "payload"])
            self.last: LogicObject | None = getattr(dut, names["last"]) if "last" in names else None
        except AttributeError as error:
            raise ValueError(f"{dut._name} has no {protocol} stream {prefix!r} ({', '.join(names.values())}): "
                             f"{error}") from None

    @property
    def width(self) -> int:
        """Bits of the beat word."""
        return len(self.data) + (self.last is not None)

    def drive(self, word: int) -> None:
        """Put the beat word on the ports."""
        if self.last is None:
            self.data.value = word
        else:
            self.data.value = word & ((1 << len(self.data)) - 1)
            self.last.value = word >> len(self.data)

    def sample(self) -> int | None:
        """The beat word on the ports, ``None`` when a bit is not 0 or 1."""
        data = _unsigned(self.data)
        if self.last is None or data is None:
            return data
        last = _unsigned(self.last)
        return None if last is None else last << len(self.data) | data

    def text(self) -> str:
        """The beat's ports as the simulator shows them, for messages."""
        return str(self.data.value) if self.last is None else f"last={self.last.value} data={self.data.value}"


class Reset:
    """A synchronous reset input and the level that asserts it.

    Parameters
    ----------
    signal : LogicObject
        The reset port.
    active : str
        ``"high"`` or ``"low"``: the level that resets.
    """

    def __init__(self, signal: LogicObject, active: str = "high"):
        if active not in ("high", "low"):
            raise ValueError(f"reset active level {active!r}; allowed: high, low")
        self.signal = signal
        self._level = active == "high"

    def drive(self, asserted: bool) -> None:
        """Assert or release the reset."""
        self.signal.value = int(asserted == self._level)

    def asserted(self) -> bool | None:
        """Whether the reset is asserted; ``None`` while it is X or Z."""
        level = _high(self.signal)
        return None if level is None else level == self._level


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


_WEAK_BITS = str.maketrans("LH", "01")


def _unsigned(signal: LogicArrayObject) -> int | None:
    """The value of a vector as an unsigned integer, ``None`` when a bit is not 0 or 1 (``L``/``H`` count as 0/1).

    Works on the value's text: ``LogicArray.is_resolvable`` builds an object per bit, the bulk of a wide stream's
    simulation time.
    """
    text = str(signal.value).translate(_WEAK_BITS)
    return None if text.strip("01") else int(text, 2)


def _check_width(bus: StreamBus, layout: PayloadLayout) -> None:
    if bus.width != layout.width:
        raise ValueError(f"the beats of stream {bus.prefix} are {bus.width} bits, the layout needs {layout.width}")


class StreamSource:
    """Drives ``valid``/``payload`` of a stream into the DUT and honours its ``ready``.

    In each cycle in which no beat is presented, the source presents the next queued beat unless the pause pattern
    says pause; a presented beat is held, payload unchanged, until it is accepted. While idle the payload carries
    random bits, so a design that samples it without ``valid`` is caught.

    Parameters
    ----------
    bus : StreamBus
        The stream.
    clk : handle
        The clock.
    rst : Reset
        The synchronous reset; no beat counts as accepted while it is asserted.
    layout : PayloadLayout
        Packing of a beat.
    pause : iterable of bool, optional
        One value per cycle, ``True`` to stay idle (:func:`no_pauses` when omitted or exhausted).
    rng : random.Random, optional
        Source of the filler payloads.
    """

    def __init__(self, bus: StreamBus, clk: LogicObject, rst: Reset, layout: PayloadLayout, *,
                 pause: Iterable[bool] | None = None, rng: random.Random | None = None):
        _check_width(bus, layout)
        self.bus = bus
        self.layout = layout
        self._clk = clk
        self._rst = rst
        self._rng = rng if rng is not None else random.Random(bus.prefix)
        self._queue: deque[int] = deque()
        self._presenting = False
        self._empty = Event()
        self.set_pause_generator(pause)
        bus.valid.value = 0
        cocotb.start_soon(self._run())

    def set_pause_generator(self, pause: Iterable[bool] | None) -> None:
        """Take the idle cycles from ``pause`` from the next cycle on; ``None`` never pauses."""
        self._pause: Iterator[bool] = iter(pause) if pause is not None else no_pauses()

    def send(self, frame: np.ndarray) -> None:
        """Queue one frame: its values, ``lanes`` per beat, ``last`` on the final beat."""
        self._queue.extend(self.layout.frame_beats(frame))
        self._empty.clear()

    def send_beat(self, values: np.ndarray, last: bool) -> None:
        """Queue one beat with ``last`` as given, for frames that break the framing on purpose."""
        self._queue.append(self.layout.pack(values, last))
        self._empty.clear()

    def clear(self) -> None:
        """Drop every queued beat, including one being presented (used around a reset)."""
        self._queue.clear()
        self._presenting = False
        self._empty.set()

    @property
    def pending(self) -> int:
        """Beats queued and not yet accepted."""
        return len(self._queue)

    async def wait(self) -> None:
        """Return once every queued beat has been accepted."""
        if self._queue:
            await self._empty.wait()

    async def _run(self) -> None:
        edge = RisingEdge(self._clk)
        settle = ReadOnly()
        accepted = False
        while True:
            await edge
            if accepted and self._presenting:
                self._queue.popleft()
                self._presenting = False
                if not self._queue:
                    self._empty.set()
            pause = next(self._pause, False)
            if not self._presenting and self._queue and not pause:
                self._presenting = True
            if self._presenting:
                self.bus.drive(self._queue[0])
            else:
                self.bus.drive(self._rng.getrandbits(self.layout.width))
            self.bus.valid.value = int(self._presenting)
            await settle
            accepted = bool(_high(self.bus.ready)) and self._rst.asserted() is False


class StreamSink:
    """Drives ``ready`` of a stream out of the DUT and collects the accepted beats into frames.

    A frame ends with the beat that has ``last`` set; :meth:`recv` returns the values of the oldest complete frame.

    Parameters
    ----------
    bus : StreamBus
        The stream.
    clk : handle
        The clock.
    rst : Reset
        The synchronous reset; beats are not collected while it is asserted.
    layout : PayloadLayout
        Packing of a beat.
    pause : iterable of bool, optional
        One value per cycle, ``True`` to hold ``ready`` low (:func:`no_pauses` when omitted or exhausted).
    """

    def __init__(self, bus: StreamBus, clk: LogicObject, rst: Reset, layout: PayloadLayout, *,
                 pause: Iterable[bool] | None = None):
        _check_width(bus, layout)
        self.bus = bus
        self.layout = layout
        self._clk = clk
        self._rst = rst
        self._partial: list[np.ndarray] = []
        self._frames: deque[np.ndarray] = deque()
        self._arrived = Event()
        self.set_pause_generator(pause)
        bus.ready.value = 0
        cocotb.start_soon(self._run())

    def set_pause_generator(self, pause: Iterable[bool] | None) -> None:
        """Take the cycles with ``ready`` low from ``pause`` from the next cycle on; ``None`` never pauses."""
        self._pause: Iterator[bool] = iter(pause) if pause is not None else no_pauses()

    @property
    def count(self) -> int:
        """Complete frames received and not yet taken."""
        return len(self._frames)

    def clear(self) -> None:
        """Drop every frame received and the beats of an incomplete one (used around a reset)."""
        self._frames.clear()
        self._partial.clear()

    async def recv(self) -> np.ndarray:
        """The values of the oldest complete frame, waiting for one if there is none yet."""
        while not self._frames:
            self._arrived.clear()
            await self._arrived.wait()
        return self._frames.popleft()

    async def _run(self) -> None:
        edge = RisingEdge(self._clk)
        settle = ReadOnly()
        while True:
            ready = not next(self._pause, False)
            self.bus.ready.value = int(ready)
            await settle
            if ready and self._rst.asserted() is False and _high(self.bus.valid):
                payload = self.bus.sample()
                if payload is not None:
                    values, last = self.layout.unpack(payload)
                    self._partial.append(values)
                    if last:
                        self._frames.append(np.concatenate(self._partial))
                        self._partial = []
                        self._arrived.set()
            await edge


class StreamMonitor:
    """Checks the valid/ready contract of one stream every cycle and records the accepted beats.

    Once ``valid`` is high it must stay high, with the payload unchanged, until ``ready`` accepts the beat;
    ``valid`` must never be X or Z, nor the payload while ``valid`` is high. Each violation is appended to
    :attr:`errors`. Cycles with the reset asserted are not checked and end any pending beat.

    Parameters
    ----------
    name : str
        Name used in error messages.
    bus : StreamBus
        The stream.
    clk : handle
        The clock.
    rst : Reset
        The synchronous reset.
    cycles : CycleCounter
        Cycle numbering shared with the rest of the testbench.

    Members
    -------
    beats : list of Beat
        Every accepted beat, in order.
    errors : list of str
        Every contract violation.
    """

    def __init__(self, name: str, bus: StreamBus, clk: LogicObject, rst: Reset, cycles: CycleCounter):
        self.name = name
        self.bus = bus
        self._clk = clk
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
        bus = self.bus
        pending: int | None = None
        while True:
            await settle
            cycle = self._cycles.value + 1
            if self._rst.asserted() is not False:
                pending = None
                await edge
                continue
            valid = _high(bus.valid)
            ready = _high(bus.ready)
            if valid is None or ready is None:
                self._error(cycle, f"valid={bus.valid.value} ready={bus.ready.value} is not 0 or 1")
                pending = None
                await edge
                continue
            payload: int | None = None
            if valid:
                payload = bus.sample()
                if payload is None:
                    self._error(cycle, f"payload {bus.text()} has X/Z bits while valid is high")
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


class StickyMonitor:
    """Watches a 1-bit status output that, once high, must stay high until reset (a sticky error flag).

    Parameters
    ----------
    name : str
        Name used in error messages.
    signal, clk : handles
        The flag and the clock.
    rst : Reset
        The synchronous reset.
    cycles : CycleCounter
        Cycle numbering shared with the rest of the testbench.

    Members
    -------
    since : int or None
        Cycle since which the flag is high, ``None`` while it is low.
    errors : list of str
        X/Z values and drops without reset.
    """

    def __init__(self, name: str, signal: LogicObject, clk: LogicObject, rst: Reset, cycles: CycleCounter):
        self.name = name
        self._signal = signal
        self._clk = clk
        self._rst = rst
        self._cycles = cycles
        self.since: int | None = None
        self.errors: list[str] = []
        cocotb.start_soon(self._run())

    async def _run(self) -> None:
        edge, settle = RisingEdge(self._clk), ReadOnly()
        while True:
            await settle
            if self._rst.asserted() is not True:
                level = self._signal.value
                cycle = self._cycles.value
                if not level.is_resolvable:
                    self.errors.append(f"cycle {cycle}: {self.name} output is {level}")
                elif level and self.since is None:
                    self.since = cycle
                elif not level and self.since is not None:
                    self.errors.append(f"cycle {cycle}: {self.name} dropped without reset (high since cycle "
                                       f"{self.since}); it must be sticky")
                    self.since = None
            else:
                self.since = None
            await edge


@dataclass
class ExpectedFrame:
    """One frame an output stream waits for: its golden values, the inputs it came from and a label for messages."""

    index: int
    label: str
    inputs: dict[str, np.ndarray]
    outputs: np.ndarray
    first_cycle: int | None = None
    beats_seen: int = 0


@dataclass(frozen=True)
class FrameRecord:
    """A frame that came out completely: its index among the expected frames and the cycle of its first beat."""

    index: int
    first_cycle: int


def _frame_text(inputs: Mapping[str, np.ndarray]) -> str:
    texts = [np.array2string(row, separator=",", max_line_width=1 << 20, threshold=ROW_TEXT_ELEMENTS)
             for row in inputs.values()]
    if len(texts) == 1:
        return f"input row {texts[0]}"
    return "input rows " + ", ".join(f"{name}={text}" for name, text in zip(inputs, texts, strict=True))


class Scoreboard:
    """Compares every output beat, bit for bit, in order, with the frames of a golden model.

    ``model`` maps input frames to output frames, ``rows × elements`` arrays for each stream. With one input stream
    it takes that stream's array, else a mapping by input stream name; it returns an array when there is one output
    stream, else (or always) a mapping by output stream name. Each output beat must carry the next ``lanes`` golden
    values of the oldest frame its stream expects, with ``last`` set exactly on the frame's final beat; there is no
    tolerance. A beat with no frame left to expect is an error.

    Parameters
    ----------
    model : callable
        The golden model.
    inputs, outputs : mapping of str to StreamSpec
        The unit's input and output streams.

    Members
    -------
    errors : list of str
        Every mismatch, in order.
    done : dict of str to list of FrameRecord
        The frames that came out completely, by output stream.
    beats_checked : int
        Output beats compared, over all output streams.
    """

    def __init__(self, model: Callable[[Any], Any], inputs: Mapping[str, StreamSpec],
                 outputs: Mapping[str, StreamSpec]):
        if not inputs or not outputs:
            raise ValueError("a scoreboard needs at least one input and one output stream")
        self.model = model
        self.inputs = dict(inputs)
        self.outputs = dict(outputs)
        self.errors: list[str] = []
        self.done: dict[str, list[FrameRecord]] = {name: [] for name in outputs}
        self.beats_checked = 0
        self._expected: dict[str, deque[ExpectedFrame]] = {name: deque() for name in outputs}
        self._frames_expected = 0

    def frames_of(self, frames: Frames) -> dict[str, np.ndarray]:
        """``frames`` as a mapping by input stream name of ``rows × elements`` arrays of each stream's type."""
        if not isinstance(frames, Mapping):
            if len(self.inputs) != 1:
                raise ValueError(f"the unit has input streams {', '.join(self.inputs)}: pass a mapping by name")
            frames = {next(iter(self.inputs)): frames}
        if set(frames) != set(self.inputs):
            raise ValueError(f"frames for streams {sorted(frames)}, the unit's inputs are {sorted(self.inputs)}")
        shaped = {name: spec.layout.fit(frames[name]).reshape(-1, spec.elements) for name, spec in self.inputs.items()}
        counts = {len(rows) for rows in shaped.values()}
        if len(counts) != 1:
            raise ValueError(f"input streams got different numbers of frames: "
                             f"{ {name: len(rows) for name, rows in shaped.items()} }")
        return shaped

    def golden(self, frames: Frames) -> dict[str, np.ndarray]:
        """The model's output frames for ``frames``, by output stream name."""
        shaped = self.frames_of(frames)
        result = self.model(next(iter(shaped.values())) if len(shaped) == 1 else shaped)
        if not isinstance(result, Mapping):
            if len(self.outputs) != 1:
                raise ValueError(f"the model returned one array; the unit has outputs {', '.join(self.outputs)}")
            result = {next(iter(self.outputs)): result}
        if set(result) != set(self.outputs):
            raise ValueError(f"the model returned streams {sorted(result)}, the unit's outputs are "
                             f"{sorted(self.outputs)}")
        return {name: np.asarray(result[name]).reshape(-1, spec.elements) for name, spec in self.outputs.items()}

    def expect(self, frames: Frames, label: str) -> None:
        """Queue ``frames`` (one or ``rows × elements`` per input stream), in order, with their golden outputs."""
        shaped = self.frames_of(frames)
        golden = self.golden(shaped)
        for row in range(len(next(iter(shaped.values())))):
            inputs = {name: rows[row].copy() for name, rows in shaped.items()}
            for name, outputs in golden.items():
                self._expected[name].append(ExpectedFrame(self._frames_expected, label, inputs, outputs[row]))
            self._frames_expected += 1

    @property
    def outstanding(self) -> int:
        """Frames expected and not yet completely received, on the output stream most behind."""
        return max(len(queue) for queue in self._expected.values())

    @property
    def frames_done(self) -> int:
        """Frames that came out completely on every output stream."""
        return min(len(records) for records in self.done.values())

    def receiver(self, stream: str) -> Callable[[Beat], None]:
        """The callback that checks the beats of output stream ``stream`` (for :meth:`StreamMonitor.add_callback`)."""
        if stream not in self.outputs:
            raise ValueError(f"{stream!r} is not an output stream; outputs: {', '.join(self.outputs)}")
        return lambda beat: self._receive(stream, beat)

    def _receive(self, stream: str, beat: Beat) -> None:
        self.beats_checked += 1
        queue = self._expected[stream]
        prefix = f"{stream} stream, " if len(self.outputs) > 1 else ""
        if not queue:
            self.errors.append(f"{prefix}cycle {beat.cycle}: unexpected output beat 0x{beat.payload:x}, no row "
                               "outstanding")
            return
        spec = self.outputs[stream]
        frame = queue[0]
        index = frame.beats_seen
        where = f"{prefix}row {frame.index} ({frame.label}), beat {index}/{spec.beats_per_frame}, cycle {beat.cycle}"
        values, last = spec.layout.unpack(beat.payload)
        lanes = spec.layout.lanes
        golden = frame.outputs[index * lanes:(index + 1) * lanes]
        for lane in np.flatnonzero(values != golden):
            element = index * lanes + int(lane)
            self.errors.append(f"{where}, lane {lane} (element {element}): got {int(values[lane])}, expected "
                               f"{int(golden[lane])}; {_frame_text(frame.inputs)}")
        final = index == spec.beats_per_frame - 1
        if last != final:
            self.errors.append(f"{where}: last={int(last)}, expected {int(final)}")
        if frame.first_cycle is None:
            frame.first_cycle = beat.cycle
        frame.beats_seen += 1
        if frame.beats_seen == spec.beats_per_frame:
            queue.popleft()
            self.done[stream].append(FrameRecord(frame.index, frame.first_cycle))

    def flush(self) -> int:
        """Forget every frame still expected, as a reset of the unit does (their beats, also those of a frame partly
        out, must never come out after it); returns how many frames were forgotten."""
        dropped = self.outstanding
        for queue in self._expected.values():
            queue.clear()
        return dropped

    def missing(self) -> list[str]:
        """One message per expected frame that did not come out (completely)."""
        prefix = len(self.outputs) > 1
        return [f"{f'{name} stream, ' if prefix else ''}row {frame.index} ({frame.label}): {frame.beats_seen} of "
                f"{self.outputs[name].beats_per_frame} beats came out"
                for name, queue in self._expected.items() for frame in queue]
