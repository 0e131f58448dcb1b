"""LUT index unit: the exp-ROM address of each lane."""

from amaranth import Module, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from int8attn.hdl.exp_rom import DIFF_BITS


class LutIndex(wiring.Component):
    """``index = max − x`` per lane, in 0..255 since ``x ≤ max``; ``registered``, the subtraction and the route to
    the ROMs' address inputs get a cycle of their own.

    Parameters
    ----------
    lanes : int
        Elements per beat.
    registered : bool
        Register the indices (latency 1) rather than compute them combinationally (latency 0).

    Members
    -------
    en : In(1)
        Clock enable of the register.
    max : In(signed(8))
        Row maximum.
    lanes_in : In(ArrayLayout(signed(8), lanes))
        Elements of the row.
    index : Out(ArrayLayout(unsigned(8), lanes))
        ROM addresses, :attr:`latency` enabled cycles after ``max`` and ``lanes_in``.
    """

    def __init__(self, lanes: int, registered: bool = True):
        self.lanes = lanes
        self.registered = registered
        super().__init__({
            "en": In(1),
            "max": In(signed(8)),
            "lanes_in": In(data.ArrayLayout(signed(8), lanes)),
            "index": Out(data.ArrayLayout(unsigned(DIFF_BITS), lanes)),
        })

    @property
    def latency(self) -> int:
        return int(self.registered)

    def elaborate(self, platform):
        m = Module()
        updates = [self.index[lane].eq((self.max - self.lanes_in[lane])[:DIFF_BITS]) for lane in range(self.lanes)]
        if self.registered:
            with m.If(self.en):
                m.d.sync += updates
        else:
            m.d.comb += updates
        return m
