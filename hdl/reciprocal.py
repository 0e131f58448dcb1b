"""Reciprocal unit: gemmlowp's ``GetReciprocal`` of the row sum, bit for bit."""

from amaranth import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

SCALE_BITS = 31
HALF = 1 << 30
ONE_F2 = 1 << 29
SEED_CONSTANT = 1515870810        # 48/17 in Q2.29
SEED_SLOPE = -1010580540          # −32/17 in Q2.29
NEWTON_STEPS = 3
OUTPUT_SHIFT_OFFSET = 3           # output shift = (12 − hp1) + 23 = bit_length(sum) + 3


def output_shift_bits(sum_width: int) -> int:
    return (sum_width + OUTPUT_SHIFT_OFFSET).bit_length()


class ReciprocalLayout(data.StructLayout):
    """``scale`` (Q0.31 of ``1/(1+x)``) and the row's output right shift."""

    def __init__(self, sum_width: int):
        super().__init__({"scale": unsigned(SCALE_BITS), "shift": unsigned(output_shift_bits(sum_width))})


class Reciprocal(wiring.Component):
    """Normalises the row sum by its leading one and runs gemmlowp's Newton–Raphson division.

    gemmlowp computes ``SRDHM(a, b) = ⌊(a·b + 2^30) / 2^31⌋`` on operands that never reach −2^31 here, so every
    product-and-round is one multiply-add followed by a shift. With ``d`` the half denominator and ``x`` the
    Q2.29 estimate, one Newton step is ``t = ⌊(d·x + 2^30)/2^31⌋``, ``v = ⌊(x·(2^29 − t) + 2^30)/2^31⌋``,
    ``x ← x + 4v``. The ``4v`` term never saturates: with ``d ∈ [½, 1)`` the seed error is below 1/17, so
    ``|v| < 3/17`` against a saturation bound of 4. The next ``d·x + 2^30`` is the previous one plus ``4·d·v``,
    so each step costs two multiply-adds. The final ``Rescale<0>`` saturates ``2x`` to ``2^31 − 1``.

    Sums wider than 32 bits keep their 32 leading bits (floor), as the golden model's wide-sum rule says.

    Parameters
    ----------
    sum_width : int
        Width of the row sum.
    min_sum_bits : int
        Bit length of the smallest possible row sum (the row maximum's own term).
    pipelined : bool
        ``True``: one multiplier per multiply-add, a new sum every cycle. ``False``: one shared multiplier, a new
        sum every :attr:`initiation_interval` cycles.

    Members
    -------
    i : In(stream.Signature(unsigned(sum_width)))
        Row sums.
    o : Out(stream.Signature(ReciprocalLayout(sum_width)))
        ``scale`` and ``shift`` per row, :attr:`latency` cycles after the sum when not stalled.
    """

    def __init__(self, sum_width: int, min_sum_bits: int, pipelined: bool = True):
        if not 1 <= min_sum_bits <= sum_width:
            raise ValueError(f"min_sum_bits must be in 1..{sum_width}, not {min_sum_bits}")
        self.sum_width = sum_width
        self.min_sum_bits = min_sum_bits
        self.pipelined = pipelined
        super().__init__({
            "i": In(stream.Signature(unsigned(sum_width))),
            "o": Out(stream.Signature(ReciprocalLayout(sum_width))),
        })

    latency = 10
    """Cycles from an accepted sum to its result on ``o``."""

    @property
    def initiation_interval(self) -> int:
        """Cycles between accepted sums at full rate."""
        return 1 if self.pipelined else self.latency

    def _normalise(self, m: Module, enable, sum_value, normalised, shift) -> None:
        """``normalised`` = the 32 leading bits of ``sum_value``; ``shift`` = its bit length + 3."""
        with m.If(enable):
            for count, bit_length in enumerate(range(self.sum_width, self.min_sum_bits - 1, -1)):
                aligned = (sum_value << (32 - bit_length) if bit_length <= 32
                           else sum_value >> (bit_length - 32))
                updates = [normalised.eq(aligned[:32]), shift.eq(bit_length + OUTPUT_SHIFT_OFFSET)]
                if bit_length == self.min_sum_bits:
                    if count == 0:
                        m.d.sync += updates
                    else:
                        with m.Else():
                            m.d.sync += updates
                elif count == 0:
                    with m.If(sum_value[bit_length - 1]):
                        m.d.sync += updates
                else:
                    with m.Elif(sum_value[bit_length - 1]):
                        m.d.sync += updates

    @staticmethod
    def _saturate(x):
        return Mux(x >= (1 << (SCALE_BITS - 1)), (1 << SCALE_BITS) - 1, (x << 1)[:SCALE_BITS])

    def elaborate(self, platform):
        return self._elaborate_pipelined() if self.pipelined else self._elaborate_iterative()

    def _elaborate_pipelined(self):
        m = Module()
        enable = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(enable)

        valid = [Signal(name=f"valid{k}") for k in range(self.latency - 1)]
        shift = [Signal(self.o.payload.shift.shape(), name=f"shift{k}") for k in range(self.latency - 1)]
        with m.If(enable):
            m.d.sync += valid[0].eq(self.i.valid)
            m.d.sync += [valid[k].eq(valid[k - 1]) for k in range(1, len(valid))]
            m.d.sync += [shift[k].eq(shift[k - 1]) for k in range(1, len(shift))]

        normalised = Signal(32)
        self._normalise(m, enable, self.i.payload, normalised, shift[0])
        half_denominators = [Signal(SCALE_BITS, name=f"half_denominator{k}") for k in range(2 * NEWTON_STEPS - 1)]
        with m.If(enable):
            m.d.sync += half_denominators[0].eq(normalised[1:])
            m.d.sync += [half_denominators[k].eq(half_denominators[k - 1])
                         for k in range(1, len(half_denominators))]

        def half_denominator(stage):
            return half_denominators[stage - 1] if stage > 0 else normalised[1:]

        estimate = Signal(signed(66), name="seed_product")
        with m.If(enable):
            m.d.sync += estimate.eq(half_denominator(0) * SEED_SLOPE + (SEED_CONSTANT << 31) + HALF)
        x = Signal(signed(33), name="x_seed")
        product = Signal(signed(66), name="dx0")
        with m.If(enable):
            m.d.sync += [x.eq(estimate >> 31), product.eq(half_denominator(1) * (estimate >> 31) + HALF)]
        stage = 2
        for step in range(NEWTON_STEPS):
            correction = Signal(signed(66), name=f"xu{step}")
            x_held = Signal(signed(33), name=f"x{step}_held")
            product_held = Signal(signed(66), name=f"dx{step}_held")
            t = product >> 31
            with m.If(enable):
                m.d.sync += [correction.eq((x << 29) + HALF - x * t), x_held.eq(x), product_held.eq(product)]
            stage += 1
            v = correction >> 31
            next_x = Signal(signed(33), name=f"x{step + 1}")
            next_product = Signal(signed(66), name=f"dx{step + 1}")
            with m.If(enable):
                m.d.sync += next_x.eq(x_held + (v << 2))
                if step + 1 < NEWTON_STEPS:
                    m.d.sync += next_product.eq(product_held + half_denominator(stage) * (v << 2))
            stage += 1
            x, product = next_x, next_product

        with m.If(enable):
            m.d.sync += [
                self.o.valid.eq(valid[-1]),
                self.o.payload.scale.eq(self._saturate(x)),
                self.o.payload.shift.eq(shift[-1]),
            ]
        return m

    def _elaborate_iterative(self):
        m = Module()
        normalised = Signal(32)
        shift = Signal(self.o.payload.shift.shape())
        half_denominator = normalised[1:]
        x = Signal(signed(33))
        accumulator = Signal(signed(66))
        held = Signal(signed(66))
        high = accumulator >> 31
        multiplicand = Signal(signed(33))
        multiplier = Signal(signed(36))
        addend = Signal(signed(66))
        step = Signal(range(self.latency))
        m.d.comb += self.i.ready.eq(step == 0)
        self._normalise(m, self.i.valid & self.i.ready, self.i.payload, normalised, shift)

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        final_step = self.latency - 1
        with m.If(step == 0):
            with m.If(self.i.valid):
                m.d.sync += step.eq(1)
        with m.Elif(step == 1):
            m.d.comb += [multiplicand.eq(half_denominator), multiplier.eq(SEED_SLOPE),
                         addend.eq((SEED_CONSTANT << 31) + HALF)]
        with m.Elif(step == 2):
            m.d.comb += [multiplicand.eq(half_denominator), multiplier.eq(high), addend.eq(HALF)]
            m.d.sync += x.eq(high)
        with m.Elif(step == final_step):
            with m.If(~self.o.valid | self.o.ready):
                m.d.sync += [
                    self.o.valid.eq(1),
                    self.o.payload.scale.eq(self._saturate(x)),
                    self.o.payload.shift.eq(shift),
                    step.eq(0),
                ]
        with m.Elif(step[0]):
            m.d.comb += [multiplicand.eq(x), multiplier.eq(-high), addend.eq((x << 29) + HALF)]
            m.d.sync += held.eq(accumulator)
        with m.Else():
            m.d.comb += [multiplicand.eq(half_denominator), multiplier.eq(high << 2), addend.eq(held)]
            m.d.sync += x.eq(x + (high << 2))
        with m.If((step != 0) & (step != final_step)):
            m.d.sync += [step.eq(step + 1), accumulator.eq(multiplicand * multiplier + addend)]
        return m
