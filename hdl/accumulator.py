"""Accumulator: the row sum of the exp terms."""

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from int8attn.hdl.tree import reduce_tree, tree_stages


class Accumulator(wiring.Component):
    """Adds the lanes of each beat in a registered adder tree, then accumulates the beats of a row.

    Parameters
    ----------
    lanes : int
        Elements per beat.
    term_width : int
        Width of one term.
    sum_width : int
        Width of the row sum.
    exact_width : int
        Width that holds the largest possible row sum; when ``sum_width`` is narrower the sum saturates at
        ``2^sum_width − 1`` (the terms are non-negative, so saturating each addition saturates the total).

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

    def __init__(self, lanes: int, term_width: int, sum_width: int, exact_width: int | None = None):
        self.lanes = lanes
        self.sum_width = sum_width
        self.exact_width = sum_width if exact_width is None else exact_width
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
    def latency(self) -> int:
        return tree_stages(self.lanes) + 1

    def elaborate(self, platform):
        m = Module()
        beat_sum, (valid, first, last) = reduce_tree(
            m, [self.terms[k] for k in range(self.lanes)], lambda a, b: a + b, unsigned(self.exact_width),
            carry=(self.valid, self.first, self.last), enable=self.en)
        running = Signal(unsigned(self.sum_width))
        running_next = beat_sum + (running & ~first.replicate(self.sum_width))
        if self.exact_width > self.sum_width:
            ceiling = (1 << self.sum_width) - 1
            running_next = Mux(running_next > ceiling, ceiling, running_next)
        with m.If(self.en):
            m.d.sync += self.sum_valid.eq(valid & last)
        with m.If(self.en & valid):
            m.d.sync += running.eq(running_next[:self.sum_width])
        m.d.comb += self.sum.eq(running)
        return m
