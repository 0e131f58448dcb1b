"""Final MAC: probability = RDBPOT(SRDHM(scale, e), shift) + zero point, clamped."""

from amaranth import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from int8attn.hdl.fixedpoint import clamp
from int8attn.hdl.pipeline import delay
from int8attn.hdl.reciprocal import HALF, ReciprocalLayout, output_shift
from int8attn.hdl.streams import LaneBeat


class FinalMac(wiring.Component):
    """Multiplies each exponential by the row's scale and rounds it onto the 1/256 grid.

    For non-negative operands ``RDBPOT(SRDHM(s, e), k) = ⌊(⌊(s·e + 2^30) / 2^(30+k)⌋ + 1) / 2⌋``: one multiply-add,
    a selection of the bits at ``30 + k`` and a half-up rounding of a ``B + 2``-bit value. The result is saturated at
    ``2^B − 1`` and offset by the zero point ``−2^(B−1)``.

    Parameters
    ----------
    lanes : int
        Elements per beat.
    exp_width : int
        Stored width of an exponential.
    exp_shift : int
        Zero bits below the stored ones: the Q0.31 exponential is ``exp << exp_shift``.
    sum_width, min_sum_bits : int
        As for :class:`Reciprocal`; they bound the row's shift.
    output_bits : int
        Output width B.

    Members
    -------
    en : Out(1)
        The unit advances this cycle; the stages before it must hold their outputs when it is low.
    valid, last : In(1)
        A beat is presented; it closes its row.
    exp : In(ArrayLayout(unsigned(exp_width), lanes))
        Exponentials of the beat.
    reciprocal : In(ReciprocalLayout(sum_width, output_bits))
        The row's ``scale`` and ``shift``.
    o : Out(stream.Signature(LaneBeat(lanes, output_bits)))
        Probabilities, :attr:`latency` cycles after the beat.
    """

    latency = 2

    def __init__(self, lanes: int, exp_width: int, exp_shift: int, sum_width: int, min_sum_bits: int,
                 output_bits: int = 8):
        self.lanes = lanes
        self.exp_shift = exp_shift
        self.output_bits = output_bits
        self.shifts = range(output_shift(min_sum_bits, output_bits), output_shift(sum_width, output_bits) + 1)
        super().__init__({
            "en": Out(1),
            "valid": In(1),
            "last": In(1),
            "exp": In(data.ArrayLayout(unsigned(exp_width), lanes)),
            "reciprocal": In(ReciprocalLayout(sum_width, output_bits)),
            "o": Out(stream.Signature(LaneBeat(lanes, output_bits))),
        })

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.en.eq(~self.o.valid | self.o.ready)
        products = [Signal(unsigned(64), name=f"product{lane}") for lane in range(self.lanes)]
        with m.If(self.en):
            m.d.sync += [product.eq(((self.reciprocal.scale * self.exp[lane]) << self.exp_shift) + HALF)
                         for lane, product in enumerate(products)]
        valid, last, shift = (delay(m, value, 1, enable=self.en, name=name) for value, name in
                              ((self.valid, "valid"), (self.last, "last"), (self.reciprocal.shift, "shift")))

        with m.If(self.en):
            m.d.sync += [self.o.valid.eq(valid), self.o.payload.last.eq(last)]
            for lane, product in enumerate(products):
                doubled = Signal(self.output_bits + 2, name=f"doubled{lane}")
                with m.Switch(shift):
                    for k in self.shifts[:-1]:
                        with m.Case(k):
                            m.d.comb += doubled.eq(product >> (30 + k))
                    with m.Default():
                        m.d.comb += doubled.eq(product >> (30 + self.shifts[-1]))
                rounded = (doubled + 1) >> 1
                m.d.sync += self.o.payload.data[lane].eq(
                    clamp(rounded, 0, (1 << self.output_bits) - 1) - (1 << (self.output_bits - 1)))
        return m
