"""Accumulators: the row sum of the exp terms, and the chunked running sum of ITA's streaming softmax."""

from amaranth import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from int8attn.hdl.pipeline import check_target, delay
from int8attn.hdl.tree import reduce_tree, tree_stages
from int8attn.hdl.wrapcheck import WrapChecked

FINE_BITS = 2
"""The low bits of the shift that :class:`ChunkedAccumulator`'s second shift register applies."""


def _signature(lanes: int, term_width: int, sum_width: int, beat_flags: dict | None = None) -> dict:
    """The members of an accumulator: clock enable, a beat's flags (``beat_flags`` after the framing ones), its
    terms, the sum."""
    return {
        "en": In(1),
        "valid": In(1),
        "first": In(1),
        "last": In(1),
        **(beat_flags or {}),
        "terms": In(data.ArrayLayout(unsigned(term_width), lanes)),
        "sum_valid": Out(1),
        "sum": Out(unsigned(sum_width)),
    }


class Accumulator(WrapChecked, wiring.Component):
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
        super().__init__(_signature(lanes, term_width, sum_width))

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
            self.check_wrap("running", self.en & valid, total, width)
            m.d.comb += [self.sum_valid.eq(row_done), self.sum.eq(running)]
            return m
        overflow = Signal()
        with m.If(self.en & valid):
            m.d.sync += overflow.eq((overflow & ~first) | total[width] | beat_sum[width:].any())
        with m.If(self.en):
            m.d.sync += [self.sum_valid.eq(row_done), self.sum.eq(Mux(overflow, (1 << width) - 1, running))]
        return m


class ChunkedAccumulator(WrapChecked, wiring.Component):
    """The running sum of ITA's streaming softmax: chunk sums, the total shifted right whenever the maximum grows.

    An :class:`Accumulator` sums the terms of each chunk (its ``first``/``last`` mark chunk boundaries). When a
    chunk's sum ``S`` is out, the running total becomes ``S`` for the first chunk of a row and ``(total >> shift) + S``
    for the others; the total after the row's last chunk is the row sum. Shifts of ``sum_width`` or more clear the
    total. The shift comes with a chunk's first beat, clamped to ``sum_width`` as it is delayed, so ``total >> shift``
    is registered while the chunk's terms are summed (in :attr:`shift_stages` registers) and the loop holds one
    adder; a chunk must therefore last at least two beats.

    Parameters
    ----------
    lanes, term_width, sum_width : int
        As for :class:`Accumulator`; ``sum_width`` holds every row sum.
    shift_width : int
        Width of ``shift``.
    target : str
        One of ``TARGETS``.
    chunk_beats : int
        Beats of the shortest chunk, at least 2.

    Members
    -------
    Those of :class:`Accumulator`, ``first`` and ``last`` opening and closing a chunk, and:

    shift : In(unsigned(shift_width))
        With a chunk's first beat: the right shift of the total before the chunk's sum is added.
    row_first, row_last : In(1)
        With a chunk's last beat: the chunk opens / closes its row.
    """

    def __init__(self, lanes: int, term_width: int, sum_width: int, shift_width: int, target: str = "generic",
                 chunk_beats: int = 2):
        if chunk_beats < 2:
            raise ValueError(f"chunk_beats must be at least 2, not {chunk_beats}")
        self.chunk = Accumulator(lanes, term_width, sum_width, target=target)
        self.chunk_beats = chunk_beats
        super().__init__(_signature(lanes, term_width, sum_width, {
            "shift": In(unsigned(shift_width)),
            "row_first": In(1),
            "row_last": In(1),
        }))

    @property
    def tree_stages(self) -> int:
        return self.chunk.tree_stages

    @property
    def latency(self) -> int:
        """The chunk sum's latency and the running total's register."""
        return self.chunk.latency + 1

    @property
    def shift_stages(self) -> int:
        """Registers of ``total >> shift``: one, or two (a multiple of 4, then the rest) when chunks last three beats
        or more and leave the time."""
        return 1 if self.chunk_beats < 3 else 2

    def elaborate(self, platform):
        m = Module()
        m.submodules.chunk = chunk = self.chunk
        self.share_wrap_checks([chunk])
        m.d.comb += [chunk.en.eq(self.en), chunk.valid.eq(self.valid), chunk.first.eq(self.first),
                     chunk.last.eq(self.last), chunk.terms.eq(self.terms)]
        latency = chunk.latency
        row_first, row_last = delay(m, Cat(self.row_first, self.row_last), latency, enable=self.en,
                                    name="chunk_row_flags")
        opens = delay(m, self.valid & self.first, latency, enable=self.en, name="chunk_opens")
        width = len(self.sum)
        clamped = Mux(self.shift >= width, width, self.shift)[:width.bit_length()]
        shift = delay(m, clamped, latency, enable=self.en, name="chunk_shift")
        total = Signal.like(self.sum, name="total")
        shifted = Signal.like(self.sum, name="shifted_total")
        if self.shift_stages == 2:
            coarse = Signal.like(self.sum, name="coarse_shifted_total")
            coarse_opens = delay(m, opens, 1, enable=self.en, name="coarse_opens")
            fine_shift = delay(m, shift[:FINE_BITS], 1, enable=self.en, name="fine_shift")
        with m.If(self.en):
            if self.shift_stages == 1:
                with m.If(opens):
                    m.d.sync += shifted.eq(total >> shift)
            else:
                with m.If(opens):
                    m.d.sync += coarse.eq(total >> Cat(Const(0, FINE_BITS), shift[FINE_BITS:]))
                with m.If(coarse_opens):
                    m.d.sync += shifted.eq(coarse >> fine_shift)
            m.d.sync += self.sum_valid.eq(chunk.sum_valid & row_last)
            with m.If(chunk.sum_valid):
                m.d.sync += total.eq(Mux(row_first, 0, shifted) + chunk.sum)
        self.check_wrap("total", self.en & chunk.sum_valid, Mux(row_first, 0, shifted) + chunk.sum, len(total))
        m.d.comb += self.sum.eq(total)
        return m
