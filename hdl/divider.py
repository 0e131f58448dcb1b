"""Per-row reciprocals of the surrogate softmax modes: ``⌊numerator / Σ⌋`` for a constant numerator, by
non-restoring division, or a table entry picked by the leading one of ``Σ``."""

from collections.abc import Sequence

from amaranth import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from int8attn.hdl.pipeline import check_target, delay, delay_line

LEADING_ONE_LATENCY = 2
"""Registers of :class:`LeadingOneReciprocal`: the divisor's thermometer code, then the table entry."""


def _check_divisor_range(divisor_width: int, min_divisor: int) -> None:
    if divisor_width < 1:
        raise ValueError(f"divisor_width must be at least 1, not {divisor_width}")
    if not 1 <= min_divisor < 1 << divisor_width:
        raise ValueError(f"min_divisor must be in 1..{(1 << divisor_width) - 1}, not {min_divisor}")


def _complement(value: int, width: int) -> Const:
    """``~value = −value − 1`` on ``width`` bits."""
    return Const(~value & ((1 << width) - 1), width)


def _step(complement: Value, numerator_bit: Value, divisor: Value, width: int) -> Value:
    """One non-restoring step on complemented remainders, ``width + 1`` bits of the result.

    With the remainder ``r = ~c`` and ``t = 2r + b``: ``r' = t − d`` when ``r ≥ 0`` (``c``'s top bit set), else
    ``t + d``, so ``c' = ~r' = ~t + d`` or ``~t − d``, where ``~t = 2c + (1 − b)`` is ``c`` with ``~b`` below it.
    ``r'`` lies in ``[−d, d)``, and ``c'`` in ``[−d, d − 1]``, whose ``width + 1`` bits hold it for ``d < 2^width``;
    ``c'``'s top bit is the quotient bit ``r' ≥ 0``."""
    trial = Cat(~numerator_bit, complement)[:width + 1]
    positive = complement[-1]
    operand = Cat(divisor[:width], Const(0, 1))
    return (trial + Mux(positive, operand, ~operand) + ~positive)[:width + 1]


def _addend(positive: Value, divisor: Value, width: int) -> Value:
    """:func:`_step`'s second term, ``d`` or ``~d`` on ``width + 1`` bits, with its carry in ``~positive`` below
    it: ``width + 2`` bits, for :func:`_sum`."""
    operand = Cat(divisor[:width], Const(0, 1))
    return Cat(~positive, Mux(positive, operand, ~operand))


def _sum(complement: Value, inverted_bit: Value, addend: Value, width: int) -> Value:
    """:func:`_step`'s result from the complement, the numerator bit's complement and the :func:`_addend` as they
    are, so that a carry chain takes them from registers: a low 1 added to the addend's low bit carries it in."""
    trial = Cat(Const(1, 1), inverted_bit, complement)[:width + 2]
    return (trial + addend)[1:width + 2]


class _DivisorUnit(wiring.Component):
    """A stream of divisors in, one result per divisor out, on ``quotient_width`` bits: the subclass's property,
    from the ``min_divisor`` and whatever else the subclass sets before it calls this constructor."""

    quotient_width: int

    def __init__(self, divisor_width: int, target: str):
        self.divisor_width = divisor_width
        self.target = check_target(target)
        super().__init__({"i": In(stream.Signature(unsigned(divisor_width))),
                          "o": Out(stream.Signature(unsigned(self.quotient_width)))})

    def _advance(self, m: Module) -> Signal:
        """The enable of a stalling pipeline: high unless ``o`` holds a result that is not taken this cycle; it is
        also ``i.ready``."""
        enable = Signal(name="advance")
        m.d.comb += [enable.eq(~self.o.valid | self.o.ready), self.i.ready.eq(enable)]
        return enable


class ConstantDivider(_DivisorUnit):
    """``⌊numerator / d⌋`` of each divisor ``d`` by non-restoring division, one quotient bit per step.

    The quotient has ``Q = quotient_width`` bits, so the dividend's bits above its ``Q`` low ones leave the remainder
    ``numerator >> Q`` (below every divisor in range) before the first step. Step ``s`` (1..Q) appends bit
    ``Q − s`` of the numerator, a constant, to the remainder (``t = 2r + b``) and subtracts the divisor from it, or
    adds it when the remainder is negative (:func:`_step`); the quotient bit is set when the result is not negative.
    The steps keep the remainder's complement ``~r``, whose top bit is the quotient bit, so that no step inverts
    anything: the remainder's sign selects between ``d`` and ``~d`` inside the adder's bit functions (about one LUT
    per bit on xc7), and the quotient bit is the top bit of the register that takes the adder's result.

    The remainder needs the width of the divisor, ``n`` bits and a sign for ``d < 2^n``. The pipelined form's
    steps are narrower while the numerator's bits brought in so far, ``p_s = numerator >> (Q − s)`` after step
    ``s``, are: step ``s`` works on ``n = min(bit length of p_s, divisor_width)`` bits. A divisor of ``2^n`` or more
    exceeds ``p_s``, so the quotient bits up to ``s`` are 0 and the remainder is ``p_s``: for such a divisor (a bit
    set from ``n`` up, tested a stage ahead, or on ``i`` for the first step) the step's register takes the constant
    ``~p_s`` in place of the adder's result, a synchronous set or reset of each bit, and the flag, held a stage
    longer, clears the step's quotient bit when the next stage records it.

    The pipelined form has a register stage per step: the remainder's complement, the divisor and the quotient bits
    so far; the last step's register is ``o``. The iterative form holds the remainder's complement on the divisor's
    width, the divisor and a shift register loaded with the numerator's ``Q`` low bits that shifts its top bit into
    the remainder and the quotient bit in at the bottom each step, until it holds the quotient.

    With ``halves`` each step takes two registers, so that no LUT comes before a carry chain: the first
    registers the :func:`_addend`, ``d`` or ``~d`` picked by the remainder's sign (a LUT per bit); the second the sum
    (:func:`_sum`), a carry chain whose inputs are all registers. The pipelined form copies the remainder's
    complement into the first register of each step, records the quotient bits there, and tests a divisor above
    the step's width there. The iterative form picks the addend every cycle but the load, which loads it with ``d``
    (the remainder starts positive), and sums on every other cycle from the one after the load; its shift register
    holds the numerator's bits complemented, as the sum takes them.

    Parameters
    ----------
    numerator : int
        The constant dividend, at least ``min_divisor``.
    divisor_width : int
        Width of the divisor.
    min_divisor : int
        Smallest divisor; the result for a smaller one (0 included) is unspecified.
    pipelined : bool
        ``True``: a register stage per quotient bit, a divisor every cycle. ``False``: one step reused, a divisor
        every :attr:`initiation_interval` cycles.
    target : str
        FPGA family (:data:`~int8attn.golden.params.TARGETS`); the divider uses no vendor primitive.
    halves : bool
        Two registers per step: twice the latency (and the iterative form's interval), a carry chain alone between
        registers (ECP5: 248 MHz alone for base2's divider against 211 with one register per step).

    Members
    -------
    i : In(stream.Signature(unsigned(divisor_width)))
        Divisors. Pipelined: ``ready`` unless ``o`` holds a result that is not taken this cycle. Iterative: while
        idle, or while ``o`` is taken.
    o : Out(stream.Signature(unsigned(quotient_width)))
        Quotients in order, :attr:`latency` cycles after their divisors when not stalled; held while not taken.
    """

    def __init__(self, numerator: int, divisor_width: int, min_divisor: int, pipelined: bool,
                 target: str = "generic", halves: bool = False):
        _check_divisor_range(divisor_width, min_divisor)
        if numerator < min_divisor:
            raise ValueError(f"numerator must be at least min_divisor ({min_divisor}), not {numerator}")
        self._numerator = numerator
        self._pipelined = pipelined
        self._halves = halves
        self.min_divisor = min_divisor
        super().__init__(divisor_width, target)

    @property
    def numerator(self) -> int:
        return self._numerator

    @property
    def quotient_width(self) -> int:
        """Bits of the largest quotient, ``⌊numerator / min_divisor⌋``."""
        return (self._numerator // self.min_divisor).bit_length()

    @property
    def pipelined(self) -> bool:
        return self._pipelined

    @property
    def method(self) -> str:
        return "divide"

    @property
    def halves(self) -> bool:
        """Each step takes two registers."""
        return self._halves

    @property
    def latency(self) -> int:
        """Cycles from an accepted divisor to its quotient on ``o``: pipelined, ``Q`` (``2·Q`` in :attr:`halves`);
        iterative, :meth:`iterative_interval`."""
        if self._pipelined:
            return self.quotient_width * (2 if self._halves else 1)
        return self.iterative_interval(self._numerator, self.min_divisor, self._halves)

    @property
    def initiation_interval(self) -> int:
        """Cycles between accepted divisors at full rate."""
        return 1 if self._pipelined else self.latency

    @staticmethod
    def iterative_interval(numerator: int, min_divisor: int, halves: bool) -> int:
        """:attr:`initiation_interval` of the iterative form, before building one: a cycle per quotient bit and the
        load, ``Q + 1``; in :attr:`halves`, two cycles per quotient bit, the load being the first step's first,
        ``2·Q``."""
        steps = (numerator // min_divisor).bit_length()
        return 2 * steps if halves else steps + 1

    def _prefix(self, steps: int) -> int:
        """The numerator's bits that ``steps`` steps have brought into the remainder."""
        return self._numerator >> (self.quotient_width - steps)

    def _width(self, step: int) -> int:
        """Bits of the remainder's magnitude at step ``step``."""
        return min(self._prefix(step).bit_length(), self.divisor_width)

    def elaborate(self, platform):
        m = Module()
        if self._halves:
            if self._pipelined:
                self._elaborate_pipelined_halves(m)
            else:
                self._elaborate_iterative_halves(m)
        elif self._pipelined:
            self._elaborate_pipelined(m)
        else:
            self._elaborate_iterative(m)
        return m

    def _elaborate_pipelined(self, m: Module) -> None:
        enable = self._advance(m)
        steps = self.quotient_width
        divisors = delay_line(m, self.i.payload, steps - 1, enable=enable, name="divisor")
        valid = delay(m, self.i.valid, steps - 1, enable=enable, name="valid")
        complement = _complement(self._prefix(0), self._width(1) + 1)
        above = self._above(self.i.payload, 1)
        resolved = Const(0, 0)
        for step in range(1, steps + 1):
            width = self._width(step)
            numerator_bit = Const((self._numerator >> (steps - step)) & 1, 1)
            result = _step(complement, numerator_bit, divisors[step - 1], width)
            if step == steps:
                self._output(m, enable, Cat(result[width], resolved), valid, above)
                break
            complement, restart = self._remainder_register(step)
            statements = [complement.eq(result)]
            quotient = resolved
            if step > 1:
                quotient = Signal(step - 1, name=f"quotient{step}", reset_less=True)
                statements.append(quotient.eq(resolved))
            bit = complement[width]
            restarting = above
            if restarting is not None:
                held = Signal(name=f"divisor_above{step}_held", reset_less=True)
                statements.append(held.eq(restarting))
                bit = bit & ~held
            above = self._above(divisors[step - 1], step + 1)
            if above is not None:
                statements.append(above.eq(divisors[step - 1][self._width(step + 1):].any()))
            with m.If(enable):
                m.d.sync += statements
            if restarting is not None:
                with m.If(enable & restarting):
                    m.d.sync += complement.eq(restart)
            resolved = Cat(bit, quotient)

    def _output(self, m: Module, enable: Value, quotient: Value, valid: Value, above: Value | None) -> None:
        """The last step's register, ``o``, taking ``quotient`` with its low bit cleared when the divisor is
        ``above`` the step's width."""
        with m.If(enable):
            m.d.sync += [self.o.payload.eq(quotient), self.o.valid.eq(valid)]
        if above is not None:
            with m.If(enable & above):
                m.d.sync += self.o.payload[0].eq(0)

    def _remainder_register(self, step: int) -> tuple[Signal, Const]:
        """The pipelined form's register of the remainder's complement after step ``step``, and the constant it
        restarts at for a divisor above the step's width."""
        width = self._width(step)
        restart = _complement(self._prefix(step), width + 1)
        # The restart value is the register's initial value too, so that the restart is a synchronous set or reset
        # of each bit.
        return Signal(width + 1, name=f"remainder_complement{step}", init=restart.value, reset_less=True), restart

    def _elaborate_pipelined_halves(self, m: Module) -> None:
        enable = self._advance(m)
        steps = self.quotient_width
        divisors = delay_line(m, self.i.payload, 2 * steps - 2, enable=enable, name="divisor")
        valid = delay(m, self.i.valid, 2 * steps - 1, enable=enable, name="valid")
        complement = _complement(self._prefix(0), self._width(1) + 1)
        quotient = Const(0, 0)
        held = None
        for step in range(1, steps + 1):
            width = self._width(step)
            divisor = divisors[2 * step - 2]
            addend = Signal(width + 2, name=f"addend{step}", reset_less=True)
            statements = [addend.eq(_addend(complement[-1], divisor, width))]
            if step > 1:
                copy = Signal(len(complement), name=f"{complement.name}_copy", reset_less=True)
                recorded = Signal(step - 1, name=f"quotient{step}_copy", reset_less=True)
                bit = complement[-1] if held is None else complement[-1] & ~held
                statements += [copy.eq(complement), recorded.eq(Cat(bit, quotient))]
                complement, quotient = copy, recorded
            above = None
            if width < self.divisor_width:
                above = Signal(name=f"divisor_above{step}", reset_less=True)
                statements.append(above.eq(divisor[width:].any()))
            with m.If(enable):
                m.d.sync += statements
            inverted_bit = Const(~self._numerator >> (steps - step) & 1, 1)
            result = _sum(complement, inverted_bit, addend, width)
            if step == steps:
                self._output(m, enable, Cat(result[width], quotient), valid, above)
                break
            complement, restart = self._remainder_register(step)
            statements = [complement.eq(result)]
            if step > 1:
                summed = Signal(step - 1, name=f"quotient{step}", reset_less=True)
                statements.append(summed.eq(quotient))
                quotient = summed
            held = None
            if above is not None:
                held = Signal(name=f"divisor_above{step}_held", reset_less=True)
                statements.append(held.eq(above))
            with m.If(enable):
                m.d.sync += statements
            if above is not None:
                with m.If(enable & above):
                    m.d.sync += complement.eq(restart)

    def _above(self, divisor: Value, step: int) -> Value | None:
        """Whether ``divisor`` exceeds step ``step``'s width: a register for a later step, else from ``divisor``
        itself; ``None`` when the step has the divisor's width."""
        width = self._width(step)
        if width == self.divisor_width:
            return None
        if step == 1:
            return divisor[width:].any()
        return Signal(name=f"divisor_above{step}")

    def _elaborate_iterative(self, m: Module) -> None:
        steps = self.quotient_width
        width = self.divisor_width
        start = _complement(self._prefix(0), width + 1)
        low_bits = self._numerator & ((1 << steps) - 1)
        # The loaded values are the registers' initial values too, so that a load is a synchronous set or reset.
        divisor = Signal(width, name="divisor", reset_less=True)
        complement = Signal(width + 1, name="remainder_complement", init=start.value, reset_less=True)
        shifting = Signal(steps, name="numerator_quotient", init=low_bits, reset_less=True)
        remaining = Signal(range(steps + 1), name="remaining_steps")
        busy = Signal(name="busy")
        m.d.comb += [self.o.payload.eq(shifting), self.i.ready.eq(~busy | (self.o.valid & self.o.ready))]
        result = _step(complement, shifting[-1], divisor, width)
        with m.If(remaining != 0):
            m.d.sync += [complement.eq(result), shifting.eq(Cat(result[width], shifting[:-1])),
                         remaining.eq(remaining - 1)]
        with m.If(remaining == 1):
            m.d.sync += self.o.valid.eq(1)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [busy.eq(0), self.o.valid.eq(0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [busy.eq(1), divisor.eq(self.i.payload), complement.eq(start), shifting.eq(low_bits),
                         remaining.eq(steps)]

    def _elaborate_iterative_halves(self, m: Module) -> None:
        steps = self.quotient_width
        width = self.divisor_width
        start = _complement(self._prefix(0), width + 1)
        inverted_bits = ~self._numerator & ((1 << steps) - 1)
        divisor = Signal(width, name="divisor", reset_less=True)
        addend = Signal(width + 2, name="addend", reset_less=True)
        complement = Signal(width + 1, name="remainder_complement", init=start.value, reset_less=True)
        shifting = Signal(steps, name="numerator_quotient", init=inverted_bits, reset_less=True)
        remaining = Signal(range(2 * steps), name="remaining_cycles")
        busy = Signal(name="busy")
        load = Signal(name="load")
        m.d.comb += [self.o.payload.eq(shifting), self.i.ready.eq(~busy | (self.o.valid & self.o.ready)),
                     load.eq(self.i.valid & self.i.ready)]
        result = _sum(complement, shifting[-1], addend, width)
        m.d.sync += addend.eq(_addend(complement[-1], divisor, width))
        with m.If(remaining[0]):
            m.d.sync += [complement.eq(result), shifting.eq(Cat(result[width], shifting[:-1]))]
        with m.If(remaining != 0):
            m.d.sync += remaining.eq(remaining - 1)
        with m.If(remaining == 1):
            m.d.sync += self.o.valid.eq(1)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [busy.eq(0), self.o.valid.eq(0)]
        with m.If(load):
            m.d.sync += [busy.eq(1), divisor.eq(self.i.payload), addend.eq(_addend(Const(1, 1), self.i.payload, width)),
                         complement.eq(start), shifting.eq(inverted_bits), remaining.eq(2 * steps - 1)]


class LeadingOneReciprocal(_DivisorUnit):
    """``values[⌊log2 d⌋]`` of each divisor ``d``: HCCS's ``clb`` reciprocal, whose table
    :meth:`~int8attn.golden.surrogates.HccsModel.clb_table` gives.

    The first register holds the divisor's thermometer code, ``d ≥ 2^k`` for each position ``k`` above
    ``⌊log2 min_divisor⌋``, the OR of the divisor's bits from ``k`` up. An output bit is set for the positions where
    the table entries have it; each run of consecutive such positions ``a..b`` is the test
    ``d ≥ 2^a ∧ ¬(d ≥ 2^(b+1))``, and the second register (``o``) takes the OR of the runs' tests.

    Parameters
    ----------
    values : sequence of int
        The result of each position of the leading one, ``divisor_width`` non-negative entries.
    divisor_width : int
        Width of the divisor.
    min_divisor : int
        Smallest divisor; the entries below ``⌊log2 min_divisor⌋`` are never read, and the result for a smaller
        divisor is unspecified.
    target : str
        FPGA family (:data:`~int8attn.golden.params.TARGETS`); the unit uses no vendor primitive.

    Members
    -------
    i : In(stream.Signature(unsigned(divisor_width)))
        Divisors; ``ready`` unless ``o`` holds a result that is not taken this cycle.
    o : Out(stream.Signature(unsigned(quotient_width)))
        Table entries in order, :attr:`latency` cycles after their divisors when not stalled; held while not taken.
    """

    def __init__(self, values: Sequence[int], divisor_width: int, min_divisor: int, target: str = "generic"):
        _check_divisor_range(divisor_width, min_divisor)
        values = [int(value) for value in values]
        if len(values) != divisor_width:
            raise ValueError(f"values must have divisor_width ({divisor_width}) entries, not {len(values)}")
        if min(values) < 0:
            raise ValueError(f"values must be non-negative, not {min(values)}")
        self.values = values
        self.min_divisor = min_divisor
        super().__init__(divisor_width, target)

    @property
    def _lowest(self) -> int:
        """The lowest position of the leading one, ``⌊log2 min_divisor⌋``."""
        return self.min_divisor.bit_length() - 1

    @property
    def quotient_width(self) -> int:
        """Bits of the largest entry that a divisor in range reads."""
        return max(self.values[self._lowest:]).bit_length()

    @property
    def latency(self) -> int:
        return LEADING_ONE_LATENCY

    @property
    def initiation_interval(self) -> int:
        return 1

    @property
    def pipelined(self) -> bool:
        return True

    @property
    def method(self) -> str:
        return "leading one"

    def elaborate(self, platform):
        m = Module()
        enable = self._advance(m)
        divisor = self.i.payload
        lowest, width = self._lowest, self.divisor_width
        at_least = Signal(width - lowest - 1, name="at_least")
        with m.If(enable):
            m.d.sync += at_least.eq(Cat(*(divisor[k:].any() for k in range(lowest + 1, width))))
        thermometer = [Const(1), *at_least, Const(0)]
        bits = []
        for bit in range(self.quotient_width):
            runs = []
            for position in range(lowest, width):
                if self.values[position] >> bit & 1:
                    if runs and runs[-1][1] == position:
                        runs[-1][1] = position + 1
                    else:
                        runs.append([position, position + 1])
            bits.append(Cat(*(thermometer[start - lowest] & ~thermometer[end - lowest] for start, end in runs)).any())
        valid = delay(m, self.i.valid, LEADING_ONE_LATENCY - 1, enable=enable, name="valid")
        with m.If(enable):
            m.d.sync += [self.o.payload.eq(Cat(*bits)), self.o.valid.eq(valid)]
        return m
