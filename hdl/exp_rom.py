"""Exp ROM: per-lane lookup of the golden model's exp tables."""

from collections.abc import Sequence

from amaranth import Module, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

DIFF_BITS = 8


class ExpRomPort(wiring.Signature):
    """One read port over all lanes, from the ROM's side: ``addr`` (diff per lane) and ``en`` in, ``data`` out one
    cycle later."""

    def __init__(self, lanes: int, width: int):
        super().__init__({
            "en": In(1),
            "addr": In(data.ArrayLayout(unsigned(DIFF_BITS), lanes)),
            "data": Out(data.ArrayLayout(unsigned(width), lanes)),
        })


class ExpRom(wiring.Component):
    """Two synchronous ROMs per lane, both indexed by ``d = max − x`` (0..255).

    The ``sum`` port reads the accumulator terms, the ``out`` port the numerators. Diffs at or beyond the table depth
    read 0. Low bits that are zero in every entry are not stored: the ``sum`` port restores them, the ``out`` port
    leaves them to its user (``out_zero_bits``), whose multiplier is then narrower.

    Parameters
    ----------
    lanes : int
        Elements per beat.
    sum_table, out_table : sequence of int
        Table contents from the golden model, of equal length (the ROM depth, 1..256).

    Members
    -------
    sum : Out(ExpRomPort(lanes, sum_width))
        Read port of the accumulator terms.
    out : Out(ExpRomPort(lanes, out_width))
        Read port of the exponentials.
    """

    latency = 1

    def __init__(self, lanes: int, sum_table: Sequence[int], out_table: Sequence[int]):
        if not 1 <= len(sum_table) == len(out_table) <= 1 << DIFF_BITS:
            raise ValueError("ROM tables must have equal lengths in 1..256")
        self.lanes = lanes
        self.sum_table = [int(v) for v in sum_table]
        self.out_table = [int(v) for v in out_table]
        self.depth = len(self.sum_table)
        self.sum_width = max(max(self.sum_table).bit_length(), 1)
        self.out_width = max(max(self.out_table).bit_length(), 1)
        self.sum_zero_bits = _common_zero_bits(self.sum_table)
        self.out_zero_bits = _common_zero_bits(self.out_table)

        super().__init__({
            "sum": Out(ExpRomPort(lanes, self.sum_width)),
            "out": Out(ExpRomPort(lanes, self.out_width - self.out_zero_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        for port, table, width, zero_bits, restored in (
                (self.sum, self.sum_table, self.sum_width, self.sum_zero_bits, self.sum_zero_bits),
                (self.out, self.out_table, self.out_width, self.out_zero_bits, 0)):
            name = "sum" if port is self.sum else "out"
            stored = [value >> zero_bits for value in table]
            stored_width = width - zero_bits
            for lane in range(self.lanes):
                rom = memory.Memory(shape=unsigned(stored_width), depth=max(self.depth, 2), init=stored)
                m.submodules[f"{name}_rom{lane}"] = rom
                read = rom.read_port()
                address = port.addr[lane]
                m.d.comb += [read.en.eq(port.en), read.addr.eq(address)]
                if self.depth == 1 << DIFF_BITS:
                    m.d.comb += port.data[lane].eq(read.data << restored)
                else:
                    in_range = Signal(name=f"{name}_in_range{lane}")
                    with m.If(port.en):
                        m.d.sync += in_range.eq(address < self.depth)
                    m.d.comb += port.data[lane].eq((read.data & in_range.replicate(stored_width)) << restored)
        return m


def _common_zero_bits(table: Sequence[int]) -> int:
    """Trailing zero bits shared by every entry of ``table``."""
    combined = 0
    for value in table:
        combined |= value
    return (combined & -combined).bit_length() - 1 if combined else 0
