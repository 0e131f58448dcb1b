"""Stream payloads and blocks shared by the units: a beat of signed lanes with an end-of-frame flag, a block-RAM
queue and a LUT-RAM queue, and the stream plumbing of composite units (a register slice, re-framing, splitting a
stream into turns, merging turns back, forking a stream, a queue between streams, changing the lanes a beat)."""

import math
from typing import Any

from amaranth import Cat, Const, Module, Mux, Shape, Signal
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from int8attn.hdl.memory import LATENCY as RAM_LATENCY
from int8attn.hdl.memory import Ram
from int8attn.hdl.pipeline import check_target, delay_line

ROOM_DELAY = 3
"""Cycles by which a writer's view of a queue's room lags: the count of words inside and its comparison are registered,
so the room flag leaves a margin for the words that may have been sent since."""
OUTPUT_QUEUE_LATENCY = 2
"""Cycles from a word entering a registered-output queue (:class:`ShallowQueue`,
:class:`~amaranth.lib.fifo.SyncFIFOBuffered`) to its ``r_rdy``."""
LUT_RAM_TARGETS = ("ecp5", "xc7")
r"""Targets with LUT RAM (ECP5 ``TRELLIS_DPR16X4``, 7-series ``RAM32M``), where queues are :class:`ShallowQueue`\ s."""


def _queue_signature(width: int) -> dict:
    """The ports of a queue of ``width``-bit words, named as :class:`amaranth.lib.fifo.SyncFIFO`'s."""
    return {
        "w_en": In(1),
        "w_data": In(width),
        "w_rdy": Out(1),
        "r_en": In(1),
        "r_data": Out(width),
        "r_rdy": Out(1),
    }


def registered_output_queue(width: int, depth: int, target: str, count: str = "thermometer") -> wiring.Component:
    """A queue whose output and flags are registers, a word written out :data:`OUTPUT_QUEUE_LATENCY` cycles later:
    a :class:`ShallowQueue` counting its words as ``count`` says on the :data:`LUT_RAM_TARGETS`, Amaranth's
    :class:`~amaranth.lib.fifo.SyncFIFOBuffered` on the others. Its writer counts its room with credits and never
    writes it full."""
    if target in LUT_RAM_TARGETS:
        return ShallowQueue(width, depth, count)
    return fifo.SyncFIFOBuffered(width=width, depth=depth)


class LaneBeat(data.StructLayout):
    """Stream payload: ``lanes`` elements of ``bits`` (lane 0 in the low bits), signed unless ``signed`` is false,
    and ``last`` (end of frame).

    Lane ``k`` occupies bits ``[bits·k + bits − 1 : bits·k]`` of the payload and ``last`` the bit above the lanes.
    """

    def __init__(self, lanes: int, bits: int = 8, signed: bool = True):
        if lanes < 1 or bits < 1:
            raise ValueError(f"lanes and bits must be ≥ 1, not lanes={lanes}, bits={bits}")
        self.lanes = lanes
        self.bits = bits
        self.signed = signed
        super().__init__({"data": data.ArrayLayout(Shape(bits, signed), lanes), "last": 1})


class FrameStreams:
    """Mixin of a unit with one input stream ``i`` and one output stream ``o``, both ``config.lanes`` lanes wide and
    ``config.beats`` beats per frame, one frame every ``config.beats`` cycles at full rate: the emitter's
    ``elements_per_cycle``, ``frame_beats`` and ``cycles_per_frame``."""

    config: Any

    @property
    def elements_per_cycle(self) -> int:
        return self.config.lanes

    @property
    def frame_beats(self) -> dict[str, int]:
        """Beats per frame on each stream."""
        return {"i": self.config.beats, "o": self.config.beats}

    @property
    def cycles_per_frame(self) -> int:
        """Cycles per frame at full rate."""
        return self.config.beats


class Queue(wiring.Component):
    """First-in first-out queue of ``depth`` words in a :class:`~int8attn.hdl.memory.Ram` of ``target``, whose
    registered read output keeps block RAM clock-to-out off every path.

    The RAM is read ahead into a small queue of :attr:`read_ahead` words (reads in flight count against its room):
    on :data:`LUT_RAM_TARGETS` a :class:`ShallowQueue`, whose output and flags are registers; elsewhere (iCE40 has no
    LUT RAM, and its 4-input LUTs would put more levels behind ``r_en``) a :class:`~amaranth.lib.fifo.SyncFIFO`.
    Every read is decided a cycle ahead from registers. A
    word written into an empty queue can be read :attr:`latency` cycles later. The ports follow
    :class:`amaranth.lib.fifo.SyncFIFO`.

    Parameters
    ----------
    width : int
        Word width.
    depth : int
        Words the RAM holds; the queue holds up to ``depth + latency`` more in flight and in its read-ahead registers.
    target : str
        Target of the RAM, one of :data:`~int8attn.golden.params.TARGETS`.

    Members
    -------
    w_en : In(1)
        Write ``w_data`` (taken when ``w_rdy``).
    w_data : In(width)
        Word written.
    w_rdy : Out(1)
        The RAM has room (a register: it ignores the room a read makes in the same cycle).
    r_en : In(1)
        Take ``r_data`` (when ``r_rdy``).
    r_data : Out(width)
        The oldest word.
    r_rdy : Out(1)
        ``r_data`` holds a word.
    """

    def __init__(self, width: int, depth: int, target: str = "generic"):
        if width < 1 or depth < 1:
            raise ValueError(f"width and depth must be ≥ 1, not width={width}, depth={depth}")
        check_target(target)
        self.width = width
        self.depth = depth
        self.target = target
        super().__init__(_queue_signature(width))

    @property
    def _ahead_latency(self) -> int:
        return ShallowQueue.LATENCY if self.target in LUT_RAM_TARGETS else 1

    @property
    def read_ahead(self) -> int:
        """Words of the read-ahead queue: the reads in flight, one decided ahead, and those the read-ahead queue
        holds at full rate (two in a :class:`ShallowQueue`, its RAM and its output register; one in a
        :class:`~amaranth.lib.fifo.SyncFIFO`)."""
        return RAM_LATENCY + 2 + self._ahead_latency

    @property
    def latency(self) -> int:
        """Cycles from a write into an empty queue to ``r_rdy``: the write (which decides the read at the same edge),
        the RAM read and the read-ahead queue (:meth:`latency_of` the target)."""
        return self.latency_of(self.target)

    @staticmethod
    def latency_of(target: str) -> int:
        """:attr:`latency` of a queue on ``target``, whatever its width and depth."""
        return 1 + RAM_LATENCY + (ShallowQueue.LATENCY if target in LUT_RAM_TARGETS else 1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.ram = ram = Ram(self.width, self.depth, target=self.target)
        if self.target in LUT_RAM_TARGETS:
            ahead = ShallowQueue(self.width, self.read_ahead)
        else:
            ahead = fifo.SyncFIFO(width=self.width, depth=self.read_ahead)
        m.submodules.ahead = ahead
        write_address = Signal(range(self.depth))
        read_address = Signal(range(self.depth))
        stored = Signal(range(self.depth + 1))
        write = self.w_en & self.w_rdy
        read = Signal()
        in_flight = delay_line(m, read, RAM_LATENCY, name="in_flight")[1:]
        held = Signal(range(self.read_ahead + 1), name="held") if self.target in LUT_RAM_TARGETS else ahead.level
        pending = Signal(range(self.read_ahead + len(in_flight) + 2))
        w_rdy = Signal(init=1)
        m.d.sync += w_rdy.eq((stored < self.depth - 1) | ((stored == self.depth - 1) & ~write))
        m.d.comb += [
            self.w_rdy.eq(w_rdy),
            pending.eq(held + sum(in_flight) + read),
            ram.w_en.eq(write),
            ram.w_addr.eq(write_address),
            ram.w_data.eq(self.w_data),
            ram.r_addr.eq(read_address),
            ahead.w_en.eq(in_flight[-1]),
            ahead.w_data.eq(ram.r_data),
            ahead.r_en.eq(self.r_en),
            self.r_data.eq(ahead.r_data),
            self.r_rdy.eq(ahead.r_rdy),
        ]
        # ``read`` is decided a cycle ahead from registers only: a word will be stored, and the words landing in the
        # read-ahead queue (ignoring this cycle's take) leave room for one more.
        will_store = write | (stored >= 2) | ((stored == 1) & ~read)
        m.d.sync += read.eq(will_store & (pending < self.read_ahead))
        if self.target in LUT_RAM_TARGETS:
            m.d.sync += held.eq(held + in_flight[-1] - (self.r_en & ahead.r_rdy))
        with m.If(write):
            m.d.sync += write_address.eq(Mux(write_address == self.depth - 1, 0, write_address + 1))
        with m.If(read):
            m.d.sync += read_address.eq(Mux(read_address == self.depth - 1, 0, read_address + 1))
        m.d.sync += stored.eq(stored + write - read)
        return m


class ShallowQueue(wiring.Component):
    """First-in first-out queue of a few words in LUT RAM, with a registered output and flags that are registers.

    The flags follow the words inside (in the RAM and in the output register) and change with ``w_en`` and with the
    taking of ``r_data`` (from a register and ``r_en``), so no counter's carry chain or comparison sits between
    ``r_en`` and the flags (as in :class:`amaranth.lib.fifo.SyncFIFOBuffered`), and the wide enables that move a word
    from the RAM into the output register are in no loop. The words are counted in one of two ways (``count``), which
    give the same flags on every cycle:

    * ``"thermometer"``: bit ``k`` of a ``depth``-bit code is set while more than ``k`` words are inside; the take
      reaches ``depth`` registers through one LUT each.
    * ``"binary"``: a binary count, and each flag a register decided from it and the cycle's write and take; the take
      reaches the count's carry chain and the three flags only, for a deep queue far from its reader (in an ECP5
      stack the 32-bit code of a layer norm's output queue put 3.9 ns of routing behind the take).

    The RAM is written synchronously and read asynchronously, which ECP5 (``TRELLIS_DPR16X4``) and 7-series
    (``RAM32M``) build from LUTs; iCE40 has no LUT RAM. The ports are named as :class:`amaranth.lib.fifo.SyncFIFO`'s.

    Parameters
    ----------
    width : int
        Word width, ≥ 1.
    depth : int
        Words the queue holds, ≥ 1, the one in the output register among them.
    count : str
        ``"thermometer"`` (default) or ``"binary"``: how the words inside are counted.

    Members
    -------
    w_en : In(1)
        Write ``w_data``. Obeyed without looking at ``w_rdy``, so that the source of ``w_en`` is in no loop of the
        flags: the writer must keep it low while ``w_rdy`` is low (the units count their room with credits).
    w_data : In(width)
        Word written.
    w_rdy : Out(1)
        The queue has room (a register: it ignores the room a read makes in the same cycle).
    r_en : In(1)
        Take ``r_data`` (when ``r_rdy``).
    r_data : Out(width)
        The oldest word, from a register.
    r_rdy : Out(1)
        ``r_data`` holds a word (a register).
    """

    COUNTS = ("thermometer", "binary")

    def __init__(self, width: int, depth: int, count: str = "thermometer"):
        if width < 1 or depth < 1:
            raise ValueError(f"width and depth must be ≥ 1, not width={width}, depth={depth}")
        if count not in self.COUNTS:
            raise ValueError(f"count must be one of {', '.join(self.COUNTS)}, not {count!r}")
        self.width = width
        self.depth = depth
        self.count = count
        super().__init__(_queue_signature(width))

    LATENCY = 2
    """Cycles from a write into an empty queue to ``r_rdy``: the write, then the move into the output register."""

    @property
    def latency(self) -> int:
        """:attr:`LATENCY`."""
        return self.LATENCY

    def elaborate(self, platform):
        m = Module()
        m.submodules.ram = ram = memory.Memory(shape=self.width, depth=self.depth, init=[])
        write_port = ram.write_port()
        read_port = ram.read_port(domain="comb")
        write_address = Signal(range(self.depth))
        read_address = Signal(range(self.depth))
        inside = Signal(self.depth if self.count == "thermometer" else range(self.depth + 1), name="inside")
        not_empty, two_or_more, full = flags = self._flags(inside)
        write = self.w_en
        take = self.r_rdy & self.r_en
        in_ram = Mux(self.r_rdy, two_or_more, not_empty)
        move = in_ram & (~self.r_rdy | self.r_en)
        m.d.comb += [
            self.w_rdy.eq(~full),
            write_port.en.eq(write),
            write_port.addr.eq(write_address),
            write_port.data.eq(self.w_data),
            read_port.addr.eq(read_address),
        ]
        if self.count == "thermometer":
            with m.If(write & ~take):
                m.d.sync += inside.eq(Cat(Const(1, 1), inside[:-1]))
            with m.Elif(take & ~write):
                m.d.sync += inside.eq(inside[1:])
        else:
            m.d.sync += inside.eq(inside + write - take)
            for more_than, flag in zip(self._flagged_counts, flags, strict=True):
                m.d.sync += flag.eq(Mux(write & ~take, inside >= more_than,
                                        Mux(take & ~write, inside > more_than + 1, inside > more_than)))
        with m.If(write):
            m.d.sync += write_address.eq(Mux(write_address == self.depth - 1, 0, write_address + 1))
        with m.If(move):
            m.d.sync += [read_address.eq(Mux(read_address == self.depth - 1, 0, read_address + 1)),
                         self.r_data.eq(read_port.data), self.r_rdy.eq(1)]
        with m.Elif(self.r_en):
            m.d.sync += self.r_rdy.eq(0)
        return m

    @property
    def _flagged_counts(self) -> tuple[int, int, int]:
        """The counts the flags compare the words inside with: more than none, more than one, more than
        ``depth − 1``."""
        return 0, 1, self.depth - 1

    def _flags(self, inside: Signal) -> tuple:
        """The flags of :attr:`_flagged_counts`: bits of the thermometer code, or registers beside the binary
        count."""
        if self.count == "thermometer":
            return inside[0], inside[1] if self.depth > 1 else Const(0, 1), inside[-1]
        return tuple(Signal(name=f"more_than_{more_than}") for more_than in self._flagged_counts)


def connect_chain(m: Module, outer: wiring.Component,
                  stages: tuple[tuple[str, wiring.Component | None], ...]) -> None:
    """Add the stages of ``stages`` that are not ``None`` to ``m`` under their names and connect ``outer.i`` through
    them, in order, to ``outer.o`` (straight through when none is)."""
    source = wiring.flipped(outer.i)
    for name, stage in stages:
        if stage is not None:
            m.submodules[name] = stage
            wiring.connect(m, source, stage.i)
            source = stage.o
    wiring.connect(m, source, wiring.flipped(outer.o))


def _turns(m: Module, advance, ways: int, run: int, name: str) -> Signal:
    """The way whose turn it is: ``run`` advances each, ``ways`` ways in a circle."""
    way = Signal(range(max(ways, 2)), name=f"{name}_way")
    beat = Signal(range(max(run, 2)), name=f"{name}_beat")
    run_end = beat == run - 1
    with m.If(advance):
        m.d.sync += beat.eq(Mux(run_end, 0, beat + 1))
        with m.If(run_end):
            m.d.sync += way.eq(Mux(way == ways - 1, 0, way + 1))
    return way


class StreamBuffer(wiring.Component):
    """A register slice: ``o.valid`` and ``o.payload`` are registers, and ``i.ready`` is one too (a skid register
    keeps the beat taken in the cycle ``o`` stalls), so neither ``valid`` nor ``ready`` passes through; a beat every
    cycle at full rate, :attr:`LATENCY` cycles later.

    Parameters
    ----------
    layout : ShapeLike
        The payload.

    Members
    -------
    i : In(stream.Signature(layout))
    o : Out(stream.Signature(layout))
    """

    LATENCY = 1

    def __init__(self, layout: Any):
        super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(layout))})

    def elaborate(self, platform):
        m = Module()
        skid = Signal.like(self.i.payload, name="skid")
        skid_valid = Signal(name="skid_valid")
        m.d.comb += self.i.ready.eq(~skid_valid)
        with m.If(self.o.ready | ~self.o.valid):
            with m.If(skid_valid):
                m.d.sync += [self.o.payload.eq(skid), self.o.valid.eq(1), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(self.i.valid)]
        with m.Elif(self.i.valid & ~skid_valid):
            m.d.sync += [skid.eq(self.i.payload), skid_valid.eq(1)]
        return m


class Reframe(wiring.Component):
    """A stream passed through with its ``last`` flags replaced: set on every ``period``-th beat, counted from reset.

    No register on the data path: the payload, ``valid`` and ``ready`` pass straight through.

    Parameters
    ----------
    layout : LaneBeat
        The payload.
    period : int
        Beats per frame at the output, ≥ 1.

    Members
    -------
    i : In(stream.Signature(layout))
    o : Out(stream.Signature(layout))
    """

    def __init__(self, layout: LaneBeat, period: int):
        if period < 1:
            raise ValueError(f"period must be ≥ 1, not {period}")
        self.period = period
        super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(layout))})

    def elaborate(self, platform):
        m = Module()
        count = Signal(range(max(self.period, 2)), name="count")
        end = count == self.period - 1
        m.d.comb += [self.o.valid.eq(self.i.valid), self.i.ready.eq(self.o.ready),
                     self.o.payload.data.eq(self.i.payload.data), self.o.payload.last.eq(end)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += count.eq(Mux(end, 0, count + 1))
        return m


class StreamSplit(wiring.Component):
    """Deals one stream out to ``ways`` streams in turns of ``run`` beats: the first ``run`` beats to ``o[0]``, the
    next ``run`` to ``o[1]`` and so on, round the circle. No register on the data path; the choices are expressions
    (continuous assignments in Verilog, defined from time 0 in any simulator).

    Parameters
    ----------
    layout : LaneBeat
    ways, run : int
        Outputs and beats per turn, ≥ 1.

    Members
    -------
    i : In(stream.Signature(layout))
    o : Out(stream.Signature(layout)).array(ways)
    """

    def __init__(self, layout: LaneBeat, ways: int, run: int):
        if ways < 1 or run < 1:
            raise ValueError(f"ways and run must be ≥ 1, not ways={ways}, run={run}")
        self.ways, self.run = ways, run
        super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(layout)).array(ways)})

    def elaborate(self, platform):
        m = Module()
        way = _turns(m, self.i.valid & self.i.ready, self.ways, self.run, "split")
        m.d.comb += self.i.ready.eq(Cat(output.ready for output in self.o).bit_select(way, 1))
        for index, output in enumerate(self.o):
            chosen = way == index if self.ways > 1 else Const(1)
            m.d.comb += [output.valid.eq(self.i.valid & chosen), output.payload.eq(self.i.payload)]
        return m


class StreamMerge(wiring.Component):
    """Takes ``run`` beats from ``i[0]``, then ``run`` from ``i[1]`` and so on, round the circle, into one stream. No
    register on the data path.

    Parameters
    ----------
    layout : LaneBeat
    ways, run : int
        Inputs and beats per turn, ≥ 1.

    Members
    -------
    i : In(stream.Signature(layout)).array(ways)
    o : Out(stream.Signature(layout))
    """

    def __init__(self, layout: LaneBeat, ways: int, run: int):
        if ways < 1 or run < 1:
            raise ValueError(f"ways and run must be ≥ 1, not ways={ways}, run={run}")
        self.ways, self.run = ways, run
        super().__init__({"i": In(stream.Signature(layout)).array(ways), "o": Out(stream.Signature(layout))})

    def elaborate(self, platform):
        m = Module()
        way = _turns(m, self.o.valid & self.o.ready, self.ways, self.run, "merge")
        payload = self.i[-1].payload.as_value()
        for index in reversed(range(self.ways - 1)):
            payload = Mux(way == index, self.i[index].payload.as_value(), payload)
        m.d.comb += [self.o.valid.eq(Cat(source.valid for source in self.i).bit_select(way, 1)),
                     self.o.payload.eq(payload)]
        for index, source in enumerate(self.i):
            m.d.comb += source.ready.eq(self.o.ready & (way == index if self.ways > 1 else Const(1)))
        return m


class StreamFork(wiring.Component):
    """One stream to ``ways`` streams, every beat to each: a beat moves when every output takes it
    (``o[k].valid = i.valid & o[j].ready`` for every other ``j``, ``i.ready`` all the ``ready``\\ s). No register;
    each ``ready`` reaches the other outputs' ``valid``, so the outputs' ``ready`` should come from registers.

    Parameters
    ----------
    layout : ShapeLike
    ways : int
        Outputs, ≥ 1.

    Members
    -------
    i : In(stream.Signature(layout))
    o : Out(stream.Signature(layout)).array(ways)
    """

    def __init__(self, layout: Any, ways: int):
        if ways < 1:
            raise ValueError(f"ways must be ≥ 1, not {ways}")
        self.ways = ways
        super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(layout)).array(ways)})

    def elaborate(self, platform):
        m = Module()
        readies = [output.ready for output in self.o]
        m.d.comb += self.i.ready.eq(Cat(readies).all())
        for index, output in enumerate(self.o):
            others = Cat(readies[:index] + readies[index + 1:])
            m.d.comb += [output.valid.eq(self.i.valid & (others.all() if len(others) else 1)),
                         output.payload.eq(self.i.payload)]
        return m


class StreamQueue(wiring.Component):
    """A :class:`Queue` of ``depth`` beats between two streams: ``i.ready`` is the queue's registered ``w_rdy``,
    ``o.valid`` its ``r_rdy``; a beat written into an empty queue is out :attr:`latency` cycles later, and a full
    queue gives a beat every cycle.

    Parameters
    ----------
    layout : ShapeLike
    depth : int
        Beats the RAM holds (the queue holds a few more in flight).
    target : str

    Members
    -------
    i : In(stream.Signature(layout))
    o : Out(stream.Signature(layout))
    """

    def __init__(self, layout: Any, depth: int, target: str = "generic"):
        self.queue = Queue(Shape.cast(layout).width, depth, target)
        self.depth = depth
        super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(layout))})

    @property
    def latency(self) -> int:
        """Cycles from a beat written into an empty queue to its ``o.valid``."""
        return self.queue.latency

    def elaborate(self, platform):
        m = Module()
        m.submodules.queue = queue = self.queue
        m.d.comb += [queue.w_en.eq(self.i.valid & queue.w_rdy), queue.w_data.eq(self.i.payload),
                     self.i.ready.eq(queue.w_rdy), self.o.valid.eq(queue.r_rdy), self.o.payload.eq(queue.r_data),
                     queue.r_en.eq(self.o.ready)]
        return m


class LaneSplit(wiring.Component):
    """Each beat of ``ratio · lanes`` lanes out as ``ratio`` beats of ``lanes`` lanes, its low lanes first; ``last``
    on the final one of a beat with ``last``.

    The beat is held in a register and shifted down a part each time one is taken; ``o.valid`` and the payload are
    registers. A beat taken at cycle ``t`` gives its first part at ``t + 1`` and the next one the cycle after each is
    taken; the next beat is taken in the cycle the final part is, so a beat every ``ratio`` cycles at full rate.

    Parameters
    ----------
    lanes, ratio : int
        Lanes of the output, and output beats per input beat (≥ 2).
    bits : int
        Bits of a lane.

    Members
    -------
    i : In(stream.Signature(LaneBeat(ratio · lanes, bits)))
    o : Out(stream.Signature(LaneBeat(lanes, bits)))
    """

    def __init__(self, lanes: int, ratio: int, bits: int = 8):
        if ratio < 2:
            raise ValueError(f"ratio must be ≥ 2, not {ratio}")
        self.lanes, self.ratio, self.bits = lanes, ratio, bits
        super().__init__({"i": In(stream.Signature(LaneBeat(ratio * lanes, bits))),
                          "o": Out(stream.Signature(LaneBeat(lanes, bits)))})

    def elaborate(self, platform):
        m = Module()
        width = self.lanes * self.bits
        held = Signal(width * self.ratio, name="held")
        held_last = Signal(name="held_last")
        part = Signal(range(self.ratio), name="part")
        final = Signal(name="final")
        m.d.comb += [self.i.ready.eq(~self.o.valid | (self.o.ready & final)),
                     self.o.payload.data.as_value().eq(held[:width]), self.o.payload.last.eq(held_last & final)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [held.eq(held[width:]), part.eq(part + 1), final.eq(part == self.ratio - 2)]
            with m.If(final):
                m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [held.eq(self.i.payload.data.as_value()), held_last.eq(self.i.payload.last),
                         self.o.valid.eq(1), part.eq(0), final.eq(0)]
        return m


class LaneGather(wiring.Component):
    """Every ``ratio`` beats of ``lanes`` lanes out as one beat of ``ratio · lanes`` lanes, the first in the low
    lanes; ``last`` if any of them had it.

    The parts before the last are shifted into a register; the last one moves them with it into the output
    register (``o.valid`` and the payload are registers), which takes it in the cycle its beat is taken. A group
    whose last part is taken at cycle ``t`` is out at ``t + 1``; a part every cycle at full rate.

    Parameters
    ----------
    lanes, ratio : int
        Lanes of the input, and input beats per output beat (≥ 2).
    bits : int
        Bits of a lane.

    Members
    -------
    i : In(stream.Signature(LaneBeat(lanes, bits)))
    o : Out(stream.Signature(LaneBeat(ratio · lanes, bits)))
    """

    def __init__(self, lanes: int, ratio: int, bits: int = 8):
        if ratio < 2:
            raise ValueError(f"ratio must be ≥ 2, not {ratio}")
        self.lanes, self.ratio, self.bits = lanes, ratio, bits
        super().__init__({"i": In(stream.Signature(LaneBeat(lanes, bits))),
                          "o": Out(stream.Signature(LaneBeat(ratio * lanes, bits)))})

    def elaborate(self, platform):
        m = Module()
        width = self.lanes * self.bits
        parts = Signal(width * (self.ratio - 1), name="parts")
        parts_last = Signal(name="parts_last")
        part = Signal(range(self.ratio), name="part")
        final = Signal(name="final")
        data = self.i.payload.data.as_value()
        m.d.comb += self.i.ready.eq(~final | ~self.o.valid | self.o.ready)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            with m.If(final):
                m.d.sync += [self.o.payload.data.as_value().eq(Cat(parts, data)),
                             self.o.payload.last.eq(parts_last | self.i.payload.last), self.o.valid.eq(1),
                             parts_last.eq(0), part.eq(0), final.eq(self.ratio == 1)]
            with m.Else():
                m.d.sync += [parts.eq(Cat(parts[width:], data) if self.ratio > 2 else data),
                             parts_last.eq(parts_last | self.i.payload.last), part.eq(part + 1),
                             final.eq(part == self.ratio - 2)]
        return m


class LaneConverter(wiring.Component):
    """A stream of ``in_lanes`` lanes a beat as one of ``out_lanes`` lanes, element order and ``last`` kept: a
    :class:`LaneSplit` to ``g = gcd(in_lanes, out_lanes)`` lanes where ``in_lanes > g``, then a :class:`LaneGather`
    where ``out_lanes > g``; a wire when they are equal. A frame must be a whole number of beats on both sides.

    Parameters
    ----------
    in_lanes, out_lanes : int
    bits : int

    Attributes
    ----------
    split, gather : LaneSplit or None, LaneGather or None

    Members
    -------
    i : In(stream.Signature(LaneBeat(in_lanes, bits)))
    o : Out(stream.Signature(LaneBeat(out_lanes, bits)))
    """

    def __init__(self, in_lanes: int, out_lanes: int, bits: int = 8):
        if in_lanes < 1 or out_lanes < 1:
            raise ValueError(f"in_lanes and out_lanes must be ≥ 1, not {in_lanes}, {out_lanes}")
        common = math.gcd(in_lanes, out_lanes)
        self.in_lanes, self.out_lanes, self.common = in_lanes, out_lanes, common
        self.split = LaneSplit(common, in_lanes // common, bits) if in_lanes > common else None
        self.gather = LaneGather(common, out_lanes // common, bits) if out_lanes > common else None
        super().__init__({"i": In(stream.Signature(LaneBeat(in_lanes, bits))),
                          "o": Out(stream.Signature(LaneBeat(out_lanes, bits)))})

    @property
    def split_ratio(self) -> int:
        """Output beats of the split per input beat (1 without a split)."""
        return self.in_lanes // self.common

    @property
    def gather_ratio(self) -> int:
        """Input beats of the gather per output beat (1 without a gather)."""
        return self.out_lanes // self.common

    def elaborate(self, platform):
        m = Module()
        connect_chain(m, self, (("split", self.split), ("gather", self.gather)))
        return m
