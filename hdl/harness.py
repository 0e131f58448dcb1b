"""Serial harness: measures a wide-port core on an FPGA with a handful of pins."""

from amaranth import Elaboratable, Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


class Loopback(wiring.Component):
    """A registered stream stage from ``in_width`` to ``out_width`` bits: the harness alone, to cost it."""

    def __init__(self, in_width: int, out_width: int):
        super().__init__({
            "i": In(stream.Signature(in_width)),
            "o": Out(stream.Signature(out_width)),
        })

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.ready):
            m.d.sync += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload)]
        return m


class SerialHarness(wiring.Component):
    """Registered serial-in / serial-out wrapper around a core with ``i`` and ``o`` streams.

    ``sdi`` shifts one bit into the input word on each cycle with ``sdi_en`` (LSB first); once the word is full it is
    offered to the core as one beat. Each output beat is captured when the shifter is empty and leaves LSB first on
    ``sdo``, one bit per cycle, with ``sdo_valid``. Every pin is registered, so the pins add no path to the core's,
    and so is the core's ``o.ready`` (the shifter's ``empty`` flag).

    Parameters
    ----------
    core : wiring.Component
        The design under measurement; its ``i``/``o`` payloads may be any width.

    Members
    -------
    sdi, sdi_en : In(1)
        Serial input and its shift enable.
    sdo, sdo_valid : Out(1)
        Serial output and its strobe.
    error : Out(1)
        The core's ``error`` output (registered), 0 if it has none.
    """

    def __init__(self, core: Elaboratable):
        self.core = core
        self.in_width = len(Value.cast(core.i.payload))
        self.out_width = len(Value.cast(core.o.payload))
        super().__init__({
            "sdi": In(1),
            "sdi_en": In(1),
            "sdo": Out(1),
            "sdo_valid": Out(1),
            "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        sdi, sdi_en = Signal(), Signal()
        m.d.sync += [sdi.eq(self.sdi), sdi_en.eq(self.sdi_en)]

        word = Signal(self.in_width)
        filled = Signal(range(self.in_width + 1))
        offered = Signal()
        m.d.comb += [core.i.valid.eq(offered), core.i.payload.eq(word)]
        with m.If(offered):
            with m.If(core.i.ready):
                m.d.sync += [offered.eq(0), filled.eq(0)]
        with m.Elif(sdi_en):
            m.d.sync += [word.eq((word >> 1) | (sdi << (self.in_width - 1))), filled.eq(filled + 1)]
            with m.If(filled == self.in_width - 1):
                m.d.sync += offered.eq(1)

        shifter = Signal(self.out_width)
        remaining = Signal(range(self.out_width + 1))
        empty = Signal(init=1)
        m.d.comb += core.o.ready.eq(empty)
        with m.If(core.o.valid & empty):
            m.d.sync += [shifter.eq(core.o.payload), remaining.eq(self.out_width), empty.eq(0)]
        with m.Elif(~empty):
            m.d.sync += [shifter.eq(shifter >> 1), remaining.eq(remaining - 1), empty.eq(remaining == 1)]
        m.d.sync += [self.sdo.eq(shifter[0]), self.sdo_valid.eq(~empty)]
        if hasattr(core, "error"):
            m.d.sync += self.error.eq(core.error)
        return m
