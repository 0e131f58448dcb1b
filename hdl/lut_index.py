"""LUT index unit: the exp-ROM address of each lane."""

from amaranth import Module, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from int8attn.hdl.exp_rom import DIFF_BITS


class LutIndex(wiring.Component):
    """``index = max − x`` per lane, in 0..255 since ``x ≤ max``. Combinational.

    Parameters
    ----------
    lanes : int
        Elements per beat.

    Members
    -------
    max : In(signed(8))
        Row maximum.
    lanes_in : In(ArrayLayout(signed(8), lanes))
        Elements of the row.
    index : Out(ArrayLayout(unsigned(8), lanes))
        ROM addresses.
    """

    latency = 0

    def __init__(self, lanes: int):
        self.lanes = lanes
        super().__init__({
            "max": In(signed(8)),
            "lanes_in": In(data.ArrayLayout(signed(8), lanes)),
            "index": Out(data.ArrayLayout(unsigned(DIFF_BITS), lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        for lane in range(self.lanes):
            m.d.comb += self.index[lane].eq((self.max - self.lanes_in[lane])[:DIFF_BITS])
        return m
