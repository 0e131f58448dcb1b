"""Stream payloads and blocks shared by the units: a beat of signed lanes with an end-of-frame flag, a block-RAM
queue."""

from typing import Any

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, fifo, wiring
from amaranth.lib.wiring import In, Out

from int8attn.hdl.memory import LATENCY as RAM_LATENCY
from int8attn.hdl.memory import Ram
from int8attn.hdl.pipeline import check_target, delay_line


class LaneBeat(data.StructLayout):
    """Stream payload: ``lanes`` signed elements of ``bits`` (lane 0 in the low bits) and ``last`` (end of frame).

    Lane ``k`` occupies bits ``[bits·k + bits − 1 : bits·k]`` of the payload and ``last`` the bit above the lanes.
    """

    def __init__(self, lanes: int, bits: int = 8):
        if lanes < 1 or bits < 1:
            raise ValueError(f"lanes and bits must be ≥ 1, not lanes={lanes}, bits={bits}")
        self.lanes = lanes
        self.bits = bits
        super().__init__({"data": data.ArrayLayout(signed(bits), lanes), "last": 1})


class FrameStreams:
    """Mixin of a unit with one input stream ``i`` and one output stream ``o``, both ``config.lanes`` lanes wide and
    ``config.beats`` beats per frame: the emitter's ``elements_per_cycle`` and ``frame_beats``."""

    config: Any

    @property
    def elements_per_cycle(self) -> int:
        return self.config.lanes

    @property
    def frame_beats(self) -> dict[str, int]:
        """Beats per frame on each stream."""
        return {"i": self.config.beats, "o": self.config.beats}


class Queue(wiring.Component):
    """First-in first-out queue of ``depth`` words in a :class:`~int8attn.hdl.memory.Ram` of ``target``, whose
    registered read output keeps block RAM clock-to-out off every path.

    The RAM is read ahead into a small register queue of :attr:`read_ahead` words (reads in flight count against
    its room), from which ``r_data`` is taken without delay; every read is decided a cycle ahead from registers. A
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
        super().__init__({
            "w_en": In(1),
            "w_data": In(width),
            "w_rdy": Out(1),
            "r_en": In(1),
            "r_data": Out(width),
            "r_rdy": Out(1),
        })

    @property
    def read_ahead(self) -> int:
        """Words of the read-ahead register queue: the reads in flight, the word being taken, one decided ahead."""
        return RAM_LATENCY + 3

    @property
    def latency(self) -> int:
        """Cycles from a write into an empty queue to ``r_rdy``: the write (which decides the read at the same edge),
        the RAM read and the read-ahead queue."""
        return 1 + RAM_LATENCY + 1

    def elaborate(self, platform):
        m = Module()
        m.submodules.ram = ram = Ram(self.width, self.depth, target=self.target)
        m.submodules.ahead = ahead = fifo.SyncFIFO(width=self.width, depth=self.read_ahead)
        write_address = Signal(range(self.depth))
        read_address = Signal(range(self.depth))
        stored = Signal(range(self.depth + 1))
        write = self.w_en & self.w_rdy
        read = Signal()
        in_flight = delay_line(m, read, RAM_LATENCY, name="in_flight")[1:]
        pending = Signal(range(ahead.depth + len(in_flight) + 2))
        w_rdy = Signal(init=1)
        m.d.sync += w_rdy.eq((stored < self.depth - 1) | ((stored == self.depth - 1) & ~write))
        m.d.comb += [
            self.w_rdy.eq(w_rdy),
            pending.eq(ahead.level + sum(in_flight) + read),
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
        m.d.sync += read.eq(will_store & (pending < ahead.depth))
        with m.If(write):
            m.d.sync += write_address.eq(Mux(write_address == self.depth - 1, 0, write_address + 1))
        with m.If(read):
            m.d.sync += read_address.eq(Mux(read_address == self.depth - 1, 0, read_address + 1))
        m.d.sync += stored.eq(stored + write - read)
        return m

