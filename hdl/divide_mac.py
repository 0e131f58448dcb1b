"""Divide MAC: TinyMind's rounded division of each exponential by the row sum, as a multiply and a correction."""

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from int8attn.hdl.reciprocal import SCALE_BITS, ReciprocalLayout, output_shift
from int8attn.hdl.streams import LaneBeat

NUMERATOR_SHIFT = 8
OUTPUT_BITS = 8
KEPT_BITS = 21
SCALE_DROPPED_BITS = 11
QUOTIENT_BITS = 10
ESTIMATE_SHIFT = 30 + KEPT_BITS - SCALE_DROPPED_BITS


class DivideMac(wiring.Component):
    """``q = ⌊((e << 8) + ⌊S/2⌋) / S⌋ − 128``, clamped to int8, for every lane, without a divider.

    With ``y = (e << 8) + ⌊S/2⌋``, ``L`` the bit length of the row sum ``S`` and ``r`` the reciprocal unit's scale
    (``r ≈ 2^62 / s``, ``s`` the 32 leading bits of ``S``), ``y / S ≈ y·r / 2^(30+L)``. The estimate keeps 21 bits
    of ``y`` below bit ``L`` and 20 bits of ``r``::

        q' = ⌊(⌊y / 2^(L−21)⌋ · ⌊r / 2^11⌋) / 2^40⌋

    Exactness: ``y ≥ ⌊S/2⌋ ≥ 2^(L−2)`` and ``r ≥ 2^30``, so each truncation loses less than 2^−19 of its operand;
    the Newton–Raphson scale and the 32-bit normalisation add less than 2^−27. The estimate is therefore within
    ``(y/S)·2^−17.9 ≤ 256.5·2^−17.9 < 0.002`` of ``y/S``, and ``q'`` is the true quotient ``q`` or one off. The
    remainder ``y − q'·S`` tells which: negative means ``q' − 1``, ``S`` or more means ``q' + 1``. The result is
    the truncating division of the reference bit for bit, for every sum the configuration can reach.

    Parameters
    ----------
    lanes : int
        Elements per beat.
    exp_width : int
        Stored width of a LUT entry.
    exp_shift : int
        Zero bits below the stored ones.
    sum_width, min_sum_bits : int
        Width and smallest bit length of the row sum.

    Members
    -------
    en : Out(1)
        The unit advances this cycle; the stages before it must hold their outputs when it is low.
    valid, last : In(1)
        A beat is presented; it closes its row.
    exp : In(ArrayLayout(unsigned(exp_width), lanes))
        LUT entries of the beat.
    reciprocal : In(ReciprocalLayout(sum_width, 8, carry_sum=True))
        The row's scale, shift and sum.
    o : Out(stream.Signature(LaneBeat(lanes)))
        Probabilities, :attr:`latency` cycles after the beat.
    """

    latency = 4

    def __init__(self, lanes: int, exp_width: int, exp_shift: int, sum_width: int, min_sum_bits: int):
        if min_sum_bits < KEPT_BITS:
            raise ValueError(f"min_sum_bits must be at least {KEPT_BITS}, not {min_sum_bits}")
        self.lanes = lanes
        self.sum_width = sum_width
        self.bit_lengths = range(min_sum_bits, sum_width + 1)
        self.exp_shift = exp_shift
        self.numerator_width = max(exp_width + exp_shift + NUMERATOR_SHIFT, sum_width) + 1
        super().__init__({
            "en": Out(1),
            "valid": In(1),
            "last": In(1),
            "exp": In(data.ArrayLayout(unsigned(exp_width), lanes)),
            "reciprocal": In(ReciprocalLayout(sum_width, OUTPUT_BITS, carry_sum=True)),
            "o": Out(stream.Signature(LaneBeat(lanes, OUTPUT_BITS))),
        })

    def _delay(self, m: Module, value, name: str) -> Signal:
        registered = Signal.like(value, name=name)
        with m.If(self.en):
            m.d.sync += registered.eq(value)
        return registered

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.en.eq(~self.o.valid | self.o.ready)
        row = self.reciprocal

        valid_a = self._delay(m, self.valid, "valid_a")
        last_a = self._delay(m, self.last, "last_a")
        sum_a = self._delay(m, row.sum, "sum_a")
        scale_a = self._delay(m, row.scale[SCALE_DROPPED_BITS:SCALE_BITS], "scale_a")
        shift_a = self._delay(m, row.shift, "shift_a")
        valid_b, last_b, sum_b = (self._delay(m, v, f"{n}_b") for v, n in
                                  ((valid_a, "valid"), (last_a, "last"), (sum_a, "sum")))
        valid_c, last_c, sum_c = (self._delay(m, v, f"{n}_c") for v, n in
                                  ((valid_b, "valid"), (last_b, "last"), (sum_b, "sum")))
        with m.If(self.en):
            m.d.sync += [self.o.valid.eq(valid_c), self.o.payload.last.eq(last_c)]

        for lane in range(self.lanes):
            numerator_a = Signal(self.numerator_width, name=f"numerator_a{lane}")
            with m.If(self.en):
                m.d.sync += numerator_a.eq((self.exp[lane] << (NUMERATOR_SHIFT + self.exp_shift)) + (row.sum >> 1))

            kept = Signal(KEPT_BITS + QUOTIENT_BITS, name=f"kept{lane}")
            with m.Switch(shift_a):
                for bit_length in self.bit_lengths[:-1]:
                    with m.Case(output_shift(bit_length, OUTPUT_BITS)):
                        m.d.comb += kept.eq(numerator_a >> (bit_length - KEPT_BITS))
                with m.Default():
                    m.d.comb += kept.eq(numerator_a >> (self.bit_lengths[-1] - KEPT_BITS))
            product_b = Signal(unsigned(KEPT_BITS + QUOTIENT_BITS + SCALE_BITS - SCALE_DROPPED_BITS),
                               name=f"product_b{lane}")
            numerator_b = self._delay(m, numerator_a, f"numerator_b{lane}")
            with m.If(self.en):
                m.d.sync += product_b.eq(kept * scale_a)

            estimate = product_b[ESTIMATE_SHIFT:]
            estimate_c = self._delay(m, estimate, f"estimate_c{lane}")
            remainder_c = Signal(signed(self.sum_width + QUOTIENT_BITS + 2), name=f"remainder_c{lane}")
            with m.If(self.en):
                m.d.sync += remainder_c.eq(numerator_b - estimate * sum_b)

            quotient = Signal(QUOTIENT_BITS + 1, name=f"quotient{lane}")
            m.d.comb += quotient.eq(estimate_c - (remainder_c < 0) + (remainder_c >= sum_c))
            top = (1 << OUTPUT_BITS) - 1
            with m.If(self.en):
                m.d.sync += self.o.payload.data[lane].eq(
                    Mux(quotient > top, top, quotient) - (1 << (OUTPUT_BITS - 1)))
        return m
