"""Reciprocal unit: gemmlowp's ``GetReciprocal`` of the row sum, bit for bit, or a reciprocal table."""

from collections.abc import Sequence

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from int8attn.hdl.pipeline import delay, delay_line

SCALE_BITS = 31
HALF = 1 << 30
SEED_CONSTANT = 1515870810        # 48/17 in Q2.29
SEED_SLOPE = -1010580540          # −32/17 in Q2.29
ACCUMULATION_INTEGER_BITS = 12


def output_shift(bit_length: int, output_bits: int) -> int:
    """The row's output shift ``(12 − hp1) + 31 − B`` for a sum of ``bit_length`` bits (``hp1 = 32 − bit_length``)."""
    return bit_length - 32 + ACCUMULATION_INTEGER_BITS + 31 - output_bits


class ReciprocalLayout(data.StructLayout):
    """``scale`` (Q0.31 of ``1/(1+x)``), the row's output right shift and, with ``carry_sum``, the sum itself."""

    def __init__(self, sum_width: int, output_bits: int, carry_sum: bool = False):
        fields = {"scale": unsigned(SCALE_BITS), "shift": unsigned(output_shift(sum_width, output_bits).bit_length())}
        if carry_sum:
            fields["sum"] = unsigned(sum_width)
        super().__init__(fields)


class Reciprocal(wiring.Component):
    """Normalises the row sum by its leading one, then takes the reciprocal of the normalised sum.

    Method ``newton`` is gemmlowp's Newton–Raphson division. gemmlowp computes ``SRDHM(a, b) = ⌊(a·b + 2^30) / 2^31⌋``
    on operands that never reach −2^31 here, so every product-and-round is one multiply-add followed by a shift.
    With ``d`` the half denominator and ``x`` the Q2.29 estimate, one step is ``t = ⌊(d·x + 2^30)/2^31⌋``,
    ``v = ⌊(x·(2^29 − t) + 2^30)/2^31⌋``, ``x ← x + 4v``. The ``4v`` term never saturates: with ``d ∈ [½, 1)`` the
    seed error is below 1/17, so ``|v| < 3/17`` against a saturation bound of 4. The next ``d·x + 2^30`` is the
    previous one plus ``4·d·v``, so each step costs two multiply-adds. The final ``Rescale<0>`` saturates ``2x`` to
    ``2^31 − 1``.

    Method ``lut`` reads the scale from a table indexed by the bits that follow the normalised sum's leading one.

    Sums wider than 32 bits keep their 32 leading bits (floor), as the golden model's wide-sum rule says.

    Parameters
    ----------
    sum_width : int
        Width of the row sum.
    min_sum_bits : int
        Bit length of the smallest possible row sum (the row maximum's own term).
    output_bits : int
        Output width B; the shift is ``(12 − hp1) + 31 − B``.
    steps : int
        Newton–Raphson steps, 0..3; ignored when ``table`` is given.
    table : sequence of int or None
        Reciprocal table (method ``lut``), ``2^k`` Q0.31 entries; ``None`` selects method ``newton``.
    pipelined : bool
        Method ``newton``: ``True`` has one multiplier per multiply-add and takes a sum every cycle; ``False`` shares
        one multiplier and takes a sum every :attr:`initiation_interval` cycles.
    carry_sum : bool
        Pass each sum through to ``o`` beside its reciprocal.

    Members
    -------
    i : In(stream.Signature(unsigned(sum_width)))
        Row sums.
    o : Out(stream.Signature(ReciprocalLayout(sum_width, output_bits, carry_sum)))
        ``scale`` and ``shift`` per row, :attr:`latency` cycles after the sum when not stalled.
    """

    def __init__(self, sum_width: int, min_sum_bits: int, output_bits: int = 8, steps: int = 3,
                 table: Sequence[int] | None = None, pipelined: bool = True, carry_sum: bool = False):
        if not 1 <= min_sum_bits <= sum_width:
            raise ValueError(f"min_sum_bits must be in 1..{sum_width}, not {min_sum_bits}")
        if not 0 <= steps <= 3:
            raise ValueError(f"steps must be in 0..3, not {steps}")
        if table is not None and (len(table) & (len(table) - 1) or len(table) < 2):
            raise ValueError("the reciprocal table needs a power-of-two number of entries, at least 2")
        self.sum_width = sum_width
        self.min_sum_bits = min_sum_bits
        self.output_bits = output_bits
        self.steps = steps
        self.table = None if table is None else [int(v) for v in table]
        self.pipelined = pipelined or table is not None
        self.carry_sum = carry_sum
        super().__init__({
            "i": In(stream.Signature(unsigned(sum_width))),
            "o": Out(stream.Signature(ReciprocalLayout(sum_width, output_bits, carry_sum))),
        })

    @property
    def method(self) -> str:
        return "newton" if self.table is None else "lut"

    TABLE_LATENCY = 3

    @staticmethod
    def newton_latency(steps: int) -> int:
        """Latency of method ``newton``; also the interval of its shared-multiplier form."""
        return 4 + 2 * steps

    @property
    def latency(self) -> int:
        """Cycles from an accepted sum to its result on ``o``."""
        return self.TABLE_LATENCY if self.table is not None else self.newton_latency(self.steps)

    @property
    def initiation_interval(self) -> int:
        """Cycles between accepted sums at full rate."""
        return 1 if self.pipelined else self.latency

    def _normalise(self, m: Module, enable, sum_value, normalised, shift) -> None:
        """``normalised`` = the 32 leading bits of ``sum_value``; ``shift`` = the row's output shift."""
        with m.If(enable):
            for count, bit_length in enumerate(range(self.sum_width, self.min_sum_bits - 1, -1)):
                aligned = (sum_value << (32 - bit_length) if bit_length <= 32
                           else sum_value >> (bit_length - 32))
                updates = [normalised.eq(aligned[:32]), shift.eq(output_shift(bit_length, self.output_bits))]
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
        if self.table is not None:
            m = self._elaborate_table()
        else:
            m = self._elaborate_pipelined() if self.pipelined else self._elaborate_iterative()
        if self.carry_sum and self.pipelined:
            self._carry_sum(m)
        return m

    def _carry_sum(self, m: Module) -> None:
        """Delay each accepted sum so that it leaves with its reciprocal."""
        enable = ~self.o.valid | self.o.ready
        with m.If(enable):
            m.d.sync += self.o.payload.sum.eq(delay(m, self.i.payload, self.latency - 1, enable=enable, name="sum"))

    def _elaborate_table(self):
        m = Module()
        enable = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(enable)
        normalised = Signal(32)
        shift = Signal(self.o.payload.shift.shape())
        valid = Signal()
        with m.If(enable):
            m.d.sync += valid.eq(self.i.valid)
        self._normalise(m, enable, self.i.payload, normalised, shift)
        index_bits = (len(self.table) - 1).bit_length()
        rom = memory.Memory(shape=unsigned(SCALE_BITS), depth=len(self.table), init=self.table)
        m.submodules.reciprocal_rom = rom
        read = rom.read_port()
        table_valid = Signal()
        table_shift = Signal.like(shift)
        m.d.comb += [read.en.eq(enable), read.addr.eq(normalised[31 - index_bits:31])]
        with m.If(enable):
            m.d.sync += [table_valid.eq(valid), table_shift.eq(shift),
                         self.o.valid.eq(table_valid), self.o.payload.scale.eq(read.data),
                         self.o.payload.shift.eq(table_shift)]
        return m

    def _elaborate_pipelined(self):
        m = Module()
        enable = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(enable)

        valid_in = Signal()
        shift_in = Signal(self.o.payload.shift.shape())
        normalised = Signal(32)
        with m.If(enable):
            m.d.sync += valid_in.eq(self.i.valid)
        self._normalise(m, enable, self.i.payload, normalised, shift_in)
        valid = delay_line(m, valid_in, self.latency - 2, enable=enable, name="valid")
        shift = delay_line(m, shift_in, self.latency - 2, enable=enable, name="shift")
        half_denominator = delay_line(m, normalised[1:], max(2 * self.steps - 1, 0), enable=enable,
                                      name="half_denominator")

        estimate = Signal(signed(66), name="seed_product")
        with m.If(enable):
            m.d.sync += estimate.eq(half_denominator[0] * SEED_SLOPE + (SEED_CONSTANT << 31) + HALF)
        x = Signal(signed(33), name="x0")
        product = Signal(signed(66), name="dx0")
        with m.If(enable):
            m.d.sync += x.eq(estimate >> 31)
            if self.steps:
                m.d.sync += product.eq(half_denominator[1] * (estimate >> 31) + HALF)
        for step in range(self.steps):
            correction = Signal(signed(66), name=f"xu{step}")
            x_held = Signal(signed(33), name=f"x{step}_held")
            product_held = Signal(signed(66), name=f"dx{step}_held")
            with m.If(enable):
                m.d.sync += [correction.eq((x << 29) + HALF - x * (product >> 31)),
                             x_held.eq(x), product_held.eq(product)]
            v = correction >> 31
            next_x = Signal(signed(33), name=f"x{step + 1}")
            next_product = Signal(signed(66), name=f"dx{step + 1}")
            with m.If(enable):
                m.d.sync += next_x.eq(x_held + (v << 2))
                if step + 1 < self.steps:
                    m.d.sync += next_product.eq(product_held + half_denominator[2 * step + 3] * (v << 2))
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
        final_step = self.latency - 1
        m.d.comb += self.i.ready.eq(step == 0)
        self._normalise(m, self.i.valid & self.i.ready, self.i.payload, normalised, shift)
        held_sum = Signal(self.sum_width)
        if self.carry_sum:
            with m.If(self.i.valid & self.i.ready):
                m.d.sync += held_sum.eq(self.i.payload)

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
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
                if self.carry_sum:
                    m.d.sync += self.o.payload.sum.eq(held_sum)
        with m.Elif(step[0]):
            m.d.comb += [multiplicand.eq(x), multiplier.eq(-high), addend.eq((x << 29) + HALF)]
            m.d.sync += held.eq(accumulator)
        with m.Else():
            m.d.comb += [multiplicand.eq(half_denominator), multiplier.eq(high << 2), addend.eq(held)]
            m.d.sync += x.eq(x + (high << 2))
        with m.If((step != 0) & (step != final_step)):
            m.d.sync += [step.eq(step + 1), accumulator.eq(multiplicand * multiplier + addend)]
        return m
