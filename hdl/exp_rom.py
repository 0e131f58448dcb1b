"""Exp ROM: per-lane lookup of the golden model's exp tables in block memories."""

from collections.abc import Sequence

from amaranth import Module, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from int8attn.hdl.memory import BLOCK_PORTS, LATENCY, Rom
from int8attn.hdl.pipeline import check_target

DIFF_BITS = 8


class ExpRomPort(wiring.Signature):
    """One read port over all lanes, from the ROM's side: ``addr`` (diff per lane) and ``en`` in, ``data`` out
    :data:`~int8attn.hdl.memory.LATENCY` enabled cycles later."""

    def __init__(self, lanes: int, width: int):
        super().__init__({
            "en": In(1),
            "addr": In(data.ArrayLayout(unsigned(DIFF_BITS), lanes)),
            "data": Out(data.ArrayLayout(unsigned(width), lanes)),
        })


class ExpRom(wiring.Component):
    """Two ROMs per lane, both indexed by ``d = max − x`` (0..255), in :class:`~int8attn.hdl.memory.Rom` block
    memories with registered outputs.

    The ``sum`` port reads the accumulator terms, the ``out`` port the numerators. Diffs at or beyond the table depth
    read 0 (the tables are stored padded with zeros to 256 entries). Low bits that are zero in every entry are not
    stored: the ``sum`` port restores them, the ``out`` port leaves them to its user (``out_zero_bits``), whose
    multiplier is then narrower. Each pair of lanes shares a two-port ROM, so on ``ecp5`` one ``DP16KD`` serves two
    lanes through its ports A and B.

    Parameters
    ----------
    lanes : int
        Elements per beat.
    sum_table, out_table : sequence of int
        Table contents from the golden model, of equal length (the ROM depth, 1..256).
    target : str
        Target of the ROMs, one of :data:`~int8attn.golden.params.TARGETS`.

    Members
    -------
    sum : Out(ExpRomPort(lanes, sum_width))
        Read port of the accumulator terms.
    out : Out(ExpRomPort(lanes, out_width - out_zero_bits))
        Read port of the exponentials.
    """

    def __init__(self, lanes: int, sum_table: Sequence[int], out_table: Sequence[int], target: str = "generic"):
        if not 1 <= len(sum_table) == len(out_table) <= 1 << DIFF_BITS:
            raise ValueError("ROM tables must have equal lengths in 1..256")
        self.lanes = lanes
        self.target = check_target(target)
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

    @property
    def latency(self) -> int:
        """Enabled cycles from ``addr`` to ``data`` on either port: the :class:`~int8attn.hdl.memory.Rom`
        latency."""
        return LATENCY

    def elaborate(self, platform):
        m = Module()
        padding = [0] * ((1 << DIFF_BITS) - self.depth)
        for name, port, table, width, zero_bits, restored in (
                ("sum", self.sum, self.sum_table, self.sum_width, self.sum_zero_bits, self.sum_zero_bits),
                ("out", self.out, self.out_table, self.out_width, self.out_zero_bits, 0)):
            stored = [value >> zero_bits for value in table] + padding
            for first in range(0, self.lanes, BLOCK_PORTS):
                lanes = range(first, min(first + BLOCK_PORTS, self.lanes))
                rom = Rom(stored, width - zero_bits, ports=len(lanes), target=self.target)
                m.submodules[f"{name}_rom{first}"] = rom
                m.d.comb += rom.en.eq(port.en)
                for k, lane in enumerate(lanes):
                    m.d.comb += [rom.addr[k].eq(port.addr[lane]), port.data[lane].eq(rom.data[k] << restored)]
        return m


def _common_zero_bits(table: Sequence[int]) -> int:
    """Trailing zero bits shared by every entry of ``table``."""
    combined = 0
    for value in table:
        combined |= value
    return (combined & -combined).bit_length() - 1 if combined else 0
