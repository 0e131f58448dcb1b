"""Final MAC: probability = RDBPOT(SRDHM(scale, e), shift) + zero point, clamped."""

from amaranth import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from int8attn.hdl.fixedpoint import clamp
from int8attn.hdl.multiplier import Multiplier
from int8attn.hdl.pipeline import check_target, delay
from int8attn.hdl.reciprocal import HALF, SCALE_BITS, ReciprocalLayout, output_shift
from int8attn.hdl.streams import LaneBeat
from int8attn.hdl.wrapcheck import WrapChecked

HALF_BITS = HALF.bit_length() - 1
STAGES = 3
"""Registers after the multipliers: the rounding addition, the coarse shift, the fine shift with the clamp."""


class FinalMac(WrapChecked, wiring.Component):
    """Multiplies each exponential by the row's scale and rounds it onto the 1/2^B grid.

    For non-negative operands and ``k ≥ 1``, with ``P = ⌊s·e / 2^30⌋``, ``SRDHM(s, e) = ⌊(P + 1) / 2⌋`` and::

        RDBPOT(SRDHM(s, e), k) = ⌊(P + 1 + 2^k) / 2^(k+1)⌋

    Every shift the configuration can reach is at least ``k0 = output_shift(min_sum_bits, B)``, so the result is
    ``T >> (k − k0)`` with ``T`` the bits of ``P + 1 + 2^k`` above bit ``k0``, and ``P`` has only a few bits there.
    A shift past the top of ``P`` gives 0 and is taken as the first such shift, which keeps ``T`` as narrow.

    After the exact product (a :class:`~int8attn.hdl.multiplier.Multiplier` per lane, its DSP products registered
    again in the fabric) come three registered stages. The first adds ``1 + 2^k`` as two short additions that run
    beside each other: the carry out of the bits up to ``k0`` (a carry chain of ``k0 + 1`` bits), and the bits above
    ``k0`` plus the upper part of the addend, with and without that carry; the addends are decoded from the row's
    shift while the product is computed. The second picks the sum by the carry and shifts it by the multiple of 4 in
    ``k − k0``, the third shifts it by the rest and saturates it at ``2^B − 1``, offset by the zero point
    ``−2^(B−1)``.

    The result is exact for every scale, exponential and reachable shift, saturation included.

    Parameters
    ----------
    lanes : int
        Elements per beat.
    exp_width : int
        Stored width of an exponential, 1..36.
    exp_shift : int
        Zero bits below the stored ones: the Q0.31 exponential is ``exp << exp_shift``.
    sum_width, min_sum_bits : int
        As for :class:`Reciprocal`; they bound the row's shift, whose smallest value must be at least 1.
    output_bits : int
        Output width B.
    target : str
        FPGA family of the multipliers (:data:`~int8attn.golden.params.TARGETS`).

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

    def __init__(self, lanes: int, exp_width: int, exp_shift: int, sum_width: int, min_sum_bits: int,
                 output_bits: int = 8, target: str = "generic"):
        if lanes < 1:
            raise ValueError(f"lanes must be at least 1, not {lanes}")
        if exp_shift < 0:
            raise ValueError(f"exp_shift must be at least 0, not {exp_shift}")
        if not 1 <= min_sum_bits <= sum_width:
            raise ValueError(f"min_sum_bits must be in 1..{sum_width}, not {min_sum_bits}")
        if output_shift(min_sum_bits, output_bits) < 1:
            raise ValueError(f"min_sum_bits must be at least {1 - output_shift(0, output_bits)} for "
                             f"{output_bits}-bit outputs, not {min_sum_bits}")
        self.lanes = lanes
        self.exp_shift = exp_shift
        self.output_bits = output_bits
        self.target = check_target(target)
        self.shifts = range(output_shift(min_sum_bits, output_bits), output_shift(sum_width, output_bits) + 1)
        self.multipliers = [Multiplier(unsigned(SCALE_BITS), unsigned(exp_width), target, fabric_register=True)
                            for _ in range(lanes)]
        product_width = SCALE_BITS + exp_width + exp_shift - HALF_BITS
        self._top = max(product_width + 1, self.shifts[0] + 1)
        super().__init__({
            "en": Out(1),
            "valid": In(1),
            "last": In(1),
            "exp": In(data.ArrayLayout(unsigned(exp_width), lanes)),
            "reciprocal": In(ReciprocalLayout(sum_width, output_bits)),
            "o": Out(stream.Signature(LaneBeat(lanes, output_bits))),
        })

    @property
    def latency(self) -> int:
        """Cycles from a beat to its probabilities: the multipliers', then :data:`STAGES`."""
        return self.multipliers[0].latency + STAGES

    def elaborate(self, platform):
        m = Module()
        en = self.en
        m.d.comb += en.eq(~self.o.valid | self.o.ready)
        products = self.multipliers[0].latency
        top, first = self._top, self.shifts[0]

        shift = delay(m, self.reciprocal.shift, products - 1, enable=en, name="shift")
        lowest = Signal()
        addends = [Signal(top - first, name=f"addend{k}") for k in (0, 1)]
        offset = Signal(range(max(min(self.shifts[-1], top) - first + 1, 2)))
        with m.If(en), m.Switch(shift):
            for k in self.shifts:
                limited = min(k, top)
                with m.Default() if k == self.shifts[-1] else m.Case(k):
                    m.d.sync += [lowest.eq(limited == first), offset.eq(limited - first),
                                 *(addend.eq(((1 << limited) >> (first + 1)) + k) for k, addend in enumerate(addends))]
        coarse = delay(m, offset[2:], 1, enable=en, name="coarse") << 2 if len(offset) > 2 else Const(0)
        fine = delay(m, offset[:2], 2, enable=en, name="fine")

        for lane, multiplier in enumerate(self.multipliers):
            m.submodules[f"multiplier{lane}"] = multiplier
            m.d.comb += [multiplier.en.eq(en), multiplier.a.eq(self.reciprocal.scale),
                         multiplier.b.eq(self.exp[lane])]
            product = (multiplier.o << self.exp_shift)[HALF_BITS:]
            low = Signal(first + 1, name=f"low{lane}")
            m.d.comb += low.eq(product)
            carry = Signal(name=f"carry{lane}")
            sums = [Signal(top - first, name=f"high{lane}_{k}") for k in (0, 1)]
            rounded = Signal(top - first, name=f"rounded{lane}")
            for k, (high, addend) in enumerate(zip(sums, addends, strict=True)):
                self.check_wrap(f"high{lane}_{k}", en, product[first + 1:] + addend, len(high))
            with m.If(en):
                m.d.sync += [
                    carry.eq((low + Cat(Const(1, first), lowest))[first + 1]),
                    *(high.eq(product[first + 1:] + addend) for high, addend in zip(sums, addends, strict=True)),
                    rounded.eq(Mux(carry, sums[1], sums[0]) >> coarse),
                    self.o.payload.data[lane].eq(
                        clamp(rounded >> fine, 0, (1 << self.output_bits) - 1) - (1 << (self.output_bits - 1))),
                ]

        valid, last = (delay(m, value, products + STAGES - 1, enable=en, name=name)
                       for value, name in ((self.valid, "valid"), (self.last, "last")))
        with m.If(en):
            m.d.sync += [self.o.valid.eq(valid), self.o.payload.last.eq(last)]
        return m
