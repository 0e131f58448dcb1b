"""Accumulator: the row sum of the exp terms."""

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from int8attn.hdl.pipeline import check_target
from int8attn.hdl.tree import reduce_tree, tree_stages


class Accumulator(wiring.Component):
    """Adds the lanes of each beat in a registered adder tree, then accumulates the beats of a row.

    When ``sum_width`` is narrower than ``exact_width`` the row sum saturates at ``2^sum_width − 1``. The terms are
    non-negative, so saturating every addition equals saturating the total once: the running sum wraps at
    ``2^sum_width`` and a sticky flag records that it did (or that a beat's own sum reached ``2^sum_width``); one
    more register stage then puts out the ceiling for a flagged row. The loop thus holds a single adder.

    Parameters
    ----------
    lanes : int
        Elements per beat.
    term_width : int
        Width of one term.
    sum_width : int
        Width of the row sum.
    exact_width : int
        Width that holds the largest possible row sum; when ``sum_width`` is narrower the sum saturates.
    target : str
        FPGA family the adder tree's depth per stage is chosen for, one of ``TARGETS``.

    Members
    -------
    en : In(1)
        Clock enable of the whole unit (low stalls it).
    valid, first, last : In(1)
        A beat is presented; it opens / closes its row.
    terms : In(ArrayLayout(unsigned(term_width), lanes))
        The beat's terms.
    sum_valid : Out(1)
        High :attr:`latency` enabled cycles after a row's last beat, for one enabled cycle.
    sum : Out(unsigned(sum_width))
        The row sum, valid with ``sum_valid``.
    """

    def __init__(self, lanes: int, term_width: int, sum_width: int, exact_width: int | None = None,
                 target: str = "generic"):
        self.lanes = lanes
        self.sum_width = sum_width
        self.exact_width = sum_width if exact_width is None else exact_width
        self.target = check_target(target)
        super().__init__({
            "en": In(1),
            "valid": In(1),
            "first": In(1),
            "last": In(1),
            "terms": In(data.ArrayLayout(unsigned(term_width), lanes)),
            "sum_valid": Out(1),
            "sum": Out(unsigned(sum_width)),
        })

    @property
    def saturates(self) -> bool:
        return self.exact_width > self.sum_width

    @property
    def tree_stages(self) -> int:
        return tree_stages(self.lanes, self.target)

    @property
    def latency(self) -> int:
        """Enabled cycles from a row's last beat to ``sum_valid``: the tree, the running sum, the saturation."""
        return self.tree_stages + 1 + self.saturates

    def elaborate(self, platform):
        m = Module()
        beat_sum, (valid, first, last) = reduce_tree(
            m, [self.terms[k] for k in range(self.lanes)], lambda a, b: a + b, unsigned(self.exact_width),
            carry=(self.valid, self.first, self.last), enable=self.en, target=self.target)
        width = self.sum_width
        running = Signal(unsigned(width))
        total = Signal(unsigned(width + 1))
        m.d.comb += total.eq(beat_sum[:width] + (running & ~first.replicate(width)))
        row_done = Signal()
        with m.If(self.en):
            m.d.sync += row_done.eq(valid & last)
        with m.If(self.en & valid):
            m.d.sync += running.eq(total[:width])
        if not self.saturates:
            m.d.comb += [self.sum_valid.eq(row_done), self.sum.eq(running)]
            return m
        overflow = Signal()
        with m.If(self.en & valid):
            m.d.sync += overflow.eq((overflow & ~first) | total[width] | beat_sum[width:].any())
        with m.If(self.en):
            m.d.sync += [self.sum_valid.eq(row_done), self.sum.eq(Mux(overflow, (1 << width) - 1, running))]
        return m
