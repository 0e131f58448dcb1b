"""Reciprocal unit: gemmlowp's ``GetReciprocal`` of the row sum, bit for bit, or a reciprocal table."""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from amaranth import Cat, Const, Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from int8attn.golden.fixedpoint import one_over_one_plus_x_for_x_in_0_1
from int8attn.hdl.memory import BLOCK_DEPTH, Rom
from int8attn.hdl.memory import LATENCY as ROM_LATENCY
from int8attn.hdl.multiplier import Multiplier
from int8attn.hdl.pipeline import check_target, delay

SCALE_BITS = 31
HALF = 1 << 30
HALF_BITS = 30
SEED_CONSTANT = 1515870810        # 48/17 in Q2.29
SEED_SLOPE = -1010580540          # −32/17 in Q2.29
ACCUMULATION_INTEGER_BITS = 12
FRACTION_BITS = 30
"""Bits below the leading one of the normalised sum that the reciprocal uses: the half denominator is
``2^30 + fraction``."""
X_BITS = 30
"""Width of the estimates ``x_0 .. x_2`` (all in ``2^29 .. 2^30 − 1``); ``x_3`` reaches ``2^30``."""
U_BITS = (26, 22, 14)
"""Signed width of ``u_k = 2^29 − SRDHM(d, x_k)`` per step: ``|u_0| < 2^29/17 + 1``, ``|u_1| < 2^29/17² + 2``,
``|u_2| < 2^29/17⁴ + 2`` (the seed's relative error is below 1/17 and squares each step), each with a margin."""
POSITION_GROUP = 8
"""Candidate positions of the leading one whose AND-OR one register stage selects (two LUT levels)."""
MAX_NORMALISE_LATENCY = 3
"""Registers of the normalisation of the widest sums, and of the iterative form's: the leading one as a one-hot
vector, the selection within each group of :data:`POSITION_GROUP` positions, the OR of the groups' selections."""
OR_GROUP = 4
"""Bits one LUT ORs together at each register of a staged OR (the rounding bit's, over a product's 30 low bits)."""
SATURATION_STAGES = 2
"""Registers of the staged test for the fractions that saturate (the OR of their upper bits)."""
FINAL_LATENCY = 1
"""The iterative form's output register, which takes the saturated scale."""
UPDATE_ADDEND = unsigned(2 * X_BITS - 1)
"""Addend of ``x·u``: ``x`` when ``u`` rounds up, the rounding half, and the rest of the update above bit 31."""


@dataclass(frozen=True)
class Product:
    """Operands and addend of one of the unit's :class:`~int8attn.hdl.multiplier.Multiplier` s, which register
    their DSP blocks' products in the fabric (``fabric_register``)."""

    a_shape: Shape
    b_shape: Shape
    addend_shape: Shape | None = None
    addend_shift: int = 0

    def latency(self, target: str) -> int:
        return Multiplier.latency_of(self.a_shape, self.b_shape, target, addend_shape=self.addend_shape,
                                     addend_shift=self.addend_shift, fabric_register=True)

    def build(self, target: str) -> Multiplier:
        return Multiplier(self.a_shape, self.b_shape, target, addend_shape=self.addend_shape,
                          addend_shift=self.addend_shift, fabric_register=True)


SEED = Product(signed(32), signed(31), unsigned(1), HALF_BITS)
"""``SEED_SLOPE·(fraction − 2^31) + 2^30``."""
STEP = Product(signed(32), unsigned(X_BITS))
"""``−d·x_k``."""
SHARED = Product(signed(32), signed(31), UPDATE_ADDEND)
"""The iterative form's one multiplier, which takes every product in turn."""


def update_product(step: int) -> Product:
    """Step ``step``'s ``x·u`` and its addend."""
    return Product(unsigned(X_BITS), signed(U_BITS[step]), UPDATE_ADDEND)


def output_shift(bit_length: int, output_bits: int) -> int:
    """The row's output shift ``(12 − hp1) + 31 − B`` for a sum of ``bit_length`` bits (``hp1 = 32 − bit_length``)."""
    return bit_length - 32 + ACCUMULATION_INTEGER_BITS + 31 - output_bits


@cache
def saturating_fractions(steps: int) -> int:
    """How many fractions, from 0 up, give an estimate ``x_steps ≥ 2^30`` that ``Rescale<0>`` saturates (the
    golden model's ``2^31 − 1``): 2 after three steps (``x_3 = 2^30`` exactly), none after fewer. No other fraction
    saturates (checked over all of them by the slow test)."""
    count = 0
    while one_over_one_plus_x_for_x_in_0_1(count << 1, steps) == (1 << SCALE_BITS) - 1:
        count += 1
    return count


def staged_any(m: Module, bits: Value, stages: int, enable: Value, name: str) -> Value:
    """Whether any of ``bits`` is set, known ``stages`` registers later: each register takes the OR of every group
    of :data:`OR_GROUP` bits, and what remains after the last one is ORed with no register."""
    for stage in range(stages):
        bits = delay(m, Cat(*(bits[k:k + OR_GROUP].any() for k in range(0, len(bits), OR_GROUP))), 1,
                     enable=enable, name=f"{name}{stage}")
    return bits.any()


def _saturated_scale(x: Value) -> Value:
    """``Rescale<0>`` of the Q2.29 estimate ``x ≤ 2^30``: ``2x``, saturated to ``2^31 − 1``."""
    return Mux(x >= HALF, (1 << SCALE_BITS) - 1, Cat(Const(0, 1), x[:X_BITS]))


class ReciprocalLayout(data.StructLayout):
    """``scale`` (Q0.31 of ``1/(1+x)``), the row's output right shift and, with ``carry_sum``, the sum itself."""

    def __init__(self, sum_width: int, output_bits: int, carry_sum: bool = False):
        fields = {"scale": unsigned(SCALE_BITS), "shift": unsigned(output_shift(sum_width, output_bits).bit_length())}
        if carry_sum:
            fields["sum"] = unsigned(sum_width)
        super().__init__(fields)


class Reciprocal(wiring.Component):
    """Normalises the row sum by its leading one, then takes the reciprocal of the normalised sum.

    Normalisation: the position of the leading one as a one-hot vector (each candidate bit set with every bit above
    it clear), then the 30 bits below it (``fraction``) and the row's shift, each an AND-OR over the candidate
    positions, in one register for up to :data:`POSITION_GROUP` positions, else per group of them and then across
    the groups. Sums wider than 32 bits keep their 32 leading bits (floor), as the golden model's wide-sum rule says.

    Method ``newton`` is gemmlowp's Newton–Raphson division. gemmlowp computes ``SRDHM(a, b) = ⌊(a·b + 2^30) / 2^31⌋``
    on operands that never reach −2^31 here. With the half denominator ``d = 2^30 + fraction`` and the Q2.29
    estimate ``x``, one step is ``u = 2^29 − SRDHM(d, x)``, ``v = SRDHM(x, u)``, ``x ← x + 4v``; the final
    ``Rescale<0>`` saturates ``2x`` to ``2^31 − 1``. Every product goes through a
    :class:`~int8attn.hdl.multiplier.Multiplier` of ``target`` (its DSP products registered in the fabric), whose
    addend carries the additions, so that the 7 dependent products of 3 steps take no adder stage of their own:

    * The seed constant is ``−1.5`` times the slope, so ``x_0 = SRDHM(d, slope) + 48/17`` is
      ``⌊(slope·(fraction − 2^31) + 2^30) / 2^31⌋``: one product whose operand ``fraction − 2^31`` is ``fraction``
      with two bits above it, and the rounding half as addend.
    * ``u`` is ``⌊(−d·x + 2^30 − 1) / 2^31⌋`` modulo ``2^w`` (``w`` from :data:`U_BITS`): bits of the product
      ``−d·x`` (with ``−d`` formed while the seed is computed) plus a rounding bit, set when the product's 31 low
      bits exceed ``2^30``. The pipelined form leaves that bit to the next product: ``x·u = x·U + [round]·x``, and
      ``[round]·x`` (below bit 30) joins the next addend beside the rounding half, so ``−d·x`` needs no addend. The
      rounding bit's OR over 30 bits is staged over the registers the next product leaves before its addend.
    * ``x + 4v = 4·⌊(x·u + 2^30 + ⌊x/4⌋·2^31) / 2^31⌋ + (x mod 4)``: the update is the product's addend too. The
      last step's product gives the scale itself, ``2x_3 − s = 8·⌊(x·u + 2^30 + ⌊(2x − s)/8⌋·2^31) / 2^31⌋ +
      ((2x − s) mod 8)``, where ``s`` marks the fractions whose ``x_3`` reaches ``2^30``
      (:func:`saturating_fractions`, known from the normalisation), so that ``2^31 − 1`` needs no multiplexer:
      the last multiplier's output register is the output register.

    ``u`` shrinks quadratically (:data:`U_BITS`), so the products of the last step take narrow operands. Delays
    follow from the multipliers' ``latency`` and ``addend_latency``. The pipelined form has a multiplier per product
    and takes a sum every cycle. Its registers advance with one enable, itself a register: ``o`` shows the output
    register, or a skid register that kept it when it moved on untaken; the enable (and ``i.ready``) is high while
    the skid register is empty, so no path runs from ``o.ready`` into the pipeline, and ``o.valid`` is a register.
    The iterative form passes every product through one multiplier (its operands from registers loaded by strobes
    registered a cycle ahead from a shift register that times the sum, the exact ``u`` from the addend
    ``2^30 − 1``), one product after another.

    Method ``lut`` reads the scale from a table indexed by the bits that follow the normalised sum's leading one, in
    :class:`~int8attn.hdl.memory.Rom` blocks (read and output register); a table of more than one block's words is
    split over blocks by its upper index bits, and a register after them picks the block's word.

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
        Method ``newton``: ``True`` has one multiplier per product and takes a sum every cycle; ``False`` shares
        one multiplier and takes a sum every :attr:`initiation_interval` cycles.
    carry_sum : bool
        Pass each sum through to ``o`` beside its reciprocal.
    target : str
        FPGA family of the multipliers and block memories, one of :data:`~int8attn.golden.params.TARGETS`.

    Members
    -------
    i : In(stream.Signature(unsigned(sum_width)))
        Row sums; ``ready`` while the unit can take one (pipelined: a register, low from the cycle after ``o`` was
        left untaken while the pipeline moved on, until ``o`` is taken; iterative: while it is idle).
    o : Out(stream.Signature(ReciprocalLayout(sum_width, output_bits, carry_sum)))
        ``scale`` and ``shift`` per row, :attr:`latency` cycles after the sum when not stalled; held while not taken.
    """

    def __init__(self, sum_width: int, min_sum_bits: int, output_bits: int = 8, steps: int = 3,
                 table: Sequence[int] | None = None, pipelined: bool = True, carry_sum: bool = False,
                 target: str = "generic"):
        if not 1 <= min_sum_bits <= sum_width:
            raise ValueError(f"min_sum_bits must be in 1..{sum_width}, not {min_sum_bits}")
        if not 0 <= steps <= len(U_BITS):
            raise ValueError(f"steps must be in 0..{len(U_BITS)}, not {steps}")
        if table is not None and (len(table) & (len(table) - 1) or len(table) < 2):
            raise ValueError("the reciprocal table needs a power-of-two number of entries, at least 2")
        self.sum_width = sum_width
        self.min_sum_bits = min_sum_bits
        self.output_bits = output_bits
        self.steps = steps
        self.table = None if table is None else [int(v) for v in table]
        self.pipelined = pipelined or table is not None
        self.carry_sum = carry_sum
        self.target = check_target(target)
        super().__init__({"i": In(self.sum_stream), "o": Out(self.scale_stream)})

    @property
    def sum_stream(self) -> stream.Signature:
        """The stream of row sums, ``i``'s, from its sender's side."""
        return stream.Signature(unsigned(self.sum_width))

    @property
    def scale_stream(self) -> stream.Signature:
        """The stream of results, ``o``'s, from its sender's side."""
        return stream.Signature(ReciprocalLayout(self.sum_width, self.output_bits, self.carry_sum))

    @property
    def method(self) -> str:
        return "newton" if self.table is None else "lut"

    @staticmethod
    def newton_latency(steps: int, target: str) -> int:
        """Latency of the iterative (shared-multiplier) form of method ``newton`` on ``target``, which is also its
        :attr:`initiation_interval`: the normalisation, each of the ``1 + 2·steps`` products through the shared
        multiplier after an operand register, and the output register."""
        return (MAX_NORMALISE_LATENCY + (1 + 2 * steps) * (1 + SHARED.latency(check_target(target)))
                + FINAL_LATENCY)

    @property
    def latency(self) -> int:
        """Cycles from an accepted sum to its result on ``o``."""
        if self.table is not None:
            return self._normalise_latency + ROM_LATENCY + (self._table_blocks > 1)
        if not self.pipelined:
            return self.newton_latency(self.steps, self.target)
        products = [SEED] + [product for step in range(self.steps) for product in (STEP, update_product(step))]
        return self._normalise_latency + sum(product.latency(self.target) for product in products)

    @property
    def initiation_interval(self) -> int:
        """Cycles between accepted sums at full rate."""
        return 1 if self.pipelined else self.latency

    @property
    def _table_blocks(self) -> int:
        return -(-len(self.table) // BLOCK_DEPTH)

    @property
    def _normalise_latency(self) -> int:
        """Registers of the pipelined form's normalisation: the last stage is left out when one group holds every
        candidate position."""
        positions = self.sum_width - self.min_sum_bits + 1
        return MAX_NORMALISE_LATENCY - (positions <= POSITION_GROUP)

    def _normalise(self, m: Module, value: Value, enable: Value | None, stages: int) -> tuple[Value, Value]:
        """``(fraction, shift)`` of ``value``: the 30 bits below its leading one and the row's output shift,
        ``stages`` registers later (2, or 3 with more than one group of positions), each advancing while ``enable``."""
        positions = range(self.min_sum_bits - 1, self.sum_width)
        leading = Signal(len(positions), name="leading_one")
        held = Signal(self.sum_width, name="normalised_sum")
        first = []
        for position in positions:
            clear_above = ~value[position + 1:].any() if position + 1 < self.sum_width else Const(1)
            first.append(clear_above if position == positions[0] else value[position] & clear_above)
        statements = [[leading.eq(Cat(*first)), held.eq(value)], [], []]
        shift_shape = self.o.payload.shift.shape()
        groups = []
        for start in range(0, len(positions), POSITION_GROUP):
            fraction = Signal(FRACTION_BITS, name=f"fraction_group{len(groups)}")
            shift = Signal(shift_shape, name=f"shift_group{len(groups)}")
            selected_fraction = selected_shift = Const(0)
            for index in range(start, min(start + POSITION_GROUP, len(positions))):
                position = positions[index]
                aligned = (held << FRACTION_BITS)[position:position + FRACTION_BITS]
                selected_fraction = selected_fraction | Mux(leading[index], aligned, 0)
                selected_shift = selected_shift | Mux(leading[index], output_shift(position + 1, self.output_bits), 0)
            statements[1] += [fraction.eq(selected_fraction), shift.eq(selected_shift)]
            groups.append((fraction, shift))
        fraction, shift = groups[0]
        if stages == MAX_NORMALISE_LATENCY:
            fraction = Signal(FRACTION_BITS, name="fraction")
            shift = Signal(shift_shape, name="normalised_shift")
            either_fraction = either_shift = Const(0)
            for group_fraction, group_shift in groups:
                either_fraction, either_shift = either_fraction | group_fraction, either_shift | group_shift
            statements[2] = [fraction.eq(either_fraction), shift.eq(either_shift)]
        for stage in statements[:stages]:
            if enable is None:
                m.d.sync += stage
            else:
                with m.If(enable):
                    m.d.sync += stage
        return fraction, shift

    def elaborate(self, platform):
        m = Module()
        if not self.pipelined:
            self._elaborate_iterative(m)
            return m
        enable = Signal(init=1, name="advance")
        m.d.comb += self.i.ready.eq(enable)
        stages = self._normalise_latency
        fraction, shift = self._normalise(m, self.i.payload, enable, stages)
        valid = delay(m, self.i.valid, stages, enable=enable, name="normalised_valid")
        final = Signal(self.o.payload.shape(), name="final")
        scale, elapsed = (self._table if self.table is not None else self._newton)(m, enable, fraction)
        m.d.comb += final.scale.eq(scale)
        elapsed -= 1
        statements = [final.shift.eq(delay(m, shift, elapsed, enable=enable, name="shift"))]
        if self.carry_sum:
            statements.append(final.sum.eq(delay(m, self.i.payload, self.latency - 1, enable=enable, name="sum")))
        with m.If(enable):
            m.d.sync += statements
        self._skid(m, enable, final, delay(m, valid, elapsed, enable=enable, name="valid"))
        return m

    def _skid(self, m: Module, enable: Signal, final: Value, arriving: Value) -> None:
        """``o`` from the output register ``final`` (valid when ``arriving`` was, as it entered), or from a skid
        register that keeps it when ``final`` moves on untaken. ``enable`` (the pipeline's, and ``i.ready``) is a
        register, high while the skid register is empty, so that no path runs from ``o.ready`` to the pipeline's
        registers; ``o.valid`` is a register too."""
        skid = Signal.like(final, name="skid")
        final_valid, skid_valid = Signal(name="final_valid"), Signal(name="skid_valid")
        skid_next = Mux(skid_valid, skid_valid, final_valid) & ~self.o.ready
        final_next = Mux(enable, arriving, final_valid)
        m.d.comb += self.o.payload.eq(Mux(skid_valid, skid, final))
        m.d.sync += [final_valid.eq(final_next), skid_valid.eq(skid_next), enable.eq(~skid_next),
                     self.o.valid.eq(final_next | skid_next)]
        with m.If(~skid_valid):
            m.d.sync += skid.eq(final)

    def _table(self, m: Module, enable: Value, fraction: Value) -> tuple[Value, int]:
        """The table's word at the fraction's leading bits, from a register (the blocks' output registers, or after
        them the one that picks a block's word), and the cycles after the normalisation until it holds it."""
        index = fraction[FRACTION_BITS - (len(self.table) - 1).bit_length():]
        words = min(len(self.table), BLOCK_DEPTH)
        data = []
        for block in range(self._table_blocks):
            rom = Rom(self.table[block * words:(block + 1) * words], SCALE_BITS, target=self.target)
            m.submodules[f"reciprocal_rom{block}"] = rom
            m.d.comb += [rom.en.eq(enable), rom.addr[0].eq(index[:rom.address_bits])]
            data.append(rom.data[0])
        if len(data) == 1:
            return data[0], ROM_LATENCY
        block = delay(m, index[(words - 1).bit_length():], ROM_LATENCY, enable=enable, name="rom_block")
        picked = Signal(SCALE_BITS, name="rom_word")
        with m.If(enable):
            m.d.sync += picked.eq(Cat(data).word_select(block, SCALE_BITS))
        return picked, ROM_LATENCY + 1

    def _newton(self, m: Module, enable: Value, fraction: Value) -> tuple[Value, int]:
        """The scale of ``fraction``, from a multiplier's output register, and the cycles after the normalisation
        until it holds it."""
        m.submodules.seed = seed = SEED.build(self.target)
        m.d.comb += [seed.en.eq(enable), seed.a.eq(Cat(fraction, Const(0b10, 2)).as_signed()),
                     seed.b.eq(SEED_SLOPE), seed.c.eq(1)]
        minus_d = Signal(signed(32), name="minus_d")
        with m.If(enable):
            m.d.sync += minus_d.eq(-Cat(fraction, Const(1, 1)))
        elapsed = seed.latency
        x = seed.o[SCALE_BITS:SCALE_BITS + X_BITS]
        if not self.steps:
            return Cat(Const(0, 1), x), elapsed
        minus_d = delay(m, minus_d, elapsed - 1, enable=enable, name="minus_d")
        below = saturating_fractions(self.steps)
        bits = below.bit_length()
        stages = min(SATURATION_STAGES, elapsed)
        saturates = ~staged_any(m, fraction[bits:], stages, enable, "above_saturation") & delay(
            m, fraction[:bits] < below, stages, enable=enable, name="low_fraction")
        saturates = delay(m, saturates, elapsed - stages, enable=enable, name="saturates")
        for step in range(self.steps):
            ready = elapsed
            x, saturates, elapsed = self._step(m, enable, step, x, minus_d, saturates, elapsed)
            minus_d = delay(m, minus_d, elapsed - ready, enable=enable, name=f"minus_d{step}")
        return x, elapsed

    def _step(self, m: Module, enable: Value, step: int, x: Value, minus_d: Value, saturates: Value,
              elapsed: int) -> tuple[Value, Value, int]:
        """Step ``step`` from ``x`` (with ``−d`` and the saturation flag) ``elapsed`` cycles after the
        normalisation: the next estimate (in the last step the scale ``2x − s``), the flag, and the cycles elapsed
        when they are ready."""
        m.submodules[f"dx{step}"] = product = STEP.build(self.target)
        m.d.comb += [product.en.eq(enable), product.a.eq(minus_d), product.b.eq(x)]
        u = product.o[SCALE_BITS:SCALE_BITS + U_BITS[step]].as_signed()
        x, saturates = (delay(m, value, product.latency, enable=enable, name=f"{name}{step}")
                        for value, name in ((x, "x"), (saturates, "saturates")))

        m.submodules[f"xu{step}"] = update = update_product(step).build(self.target)
        m.d.comb += [update.en.eq(enable), update.a.eq(x), update.b.eq(u)]
        slack = update.latency - update.addend_latency
        registered = max(slack - 1, 0)
        round_up = (delay(m, product.o[HALF_BITS], registered, enable=enable, name=f"round_half{step}")
                    & staged_any(m, product.o[:HALF_BITS], registered, enable, f"round_low{step}_"))
        x_then, saturates_then = (delay(m, value, registered, enable=enable, name=f"{name}{step}_round")
                                  for value, name in ((x, "x"), (saturates, "saturates")))
        # The rest of the update: x + 4v = (x mod 4) + 4·(⌊x/4⌋ + v), and in the last step
        # 2x − s + 8v = ((2x − s) mod 8) + 8·(⌊(2x − s)/8⌋ + v).
        last = step + 1 == self.steps
        rest = Cat(Const(0, 1), x_then) - saturates_then if last else x_then
        low_bits = 3 if last else 2
        addend = Cat(Mux(round_up, x_then, 0), Const(1, 1), rest[low_bits:X_BITS + last])
        m.d.comb += update.c.eq(delay(m, addend, slack - registered, enable=enable, name=f"addend{step}"))
        low = delay(m, rest[:low_bits], update.latency - registered, enable=enable, name=f"update_low{step}")
        saturates = delay(m, saturates, update.latency, enable=enable, name=f"saturates{step}_updated")
        result = Cat(low, update.o[SCALE_BITS:SCALE_BITS + X_BITS + last - low_bits])
        return result, saturates, elapsed + product.latency + update.latency

    def _elaborate_iterative(self, m: Module) -> None:
        fraction, shift = self._normalise(m, self.i.payload, None, MAX_NORMALISE_LATENCY)
        m.submodules.shared = shared = SHARED.build(self.target)
        a = Signal(SHARED.a_shape, name="operand_a")
        b = Signal(SHARED.b_shape, name="operand_b")
        c = Signal(SHARED.addend_shape, name="operand_c")
        m.d.comb += [shared.a.eq(a), shared.b.eq(b), shared.c.eq(c)]
        minus_d = Signal(signed(32))
        x = Signal(X_BITS)
        held_shift = Signal.like(shift)
        period = 1 + shared.latency
        final = MAX_NORMALISE_LATENCY + (1 + 2 * self.steps) * period
        busy = Signal()
        done = Signal(name="at_final")
        accept = self.i.valid & ~busy
        elapsed = Signal(final, name="elapsed")
        m.d.comb += self.i.ready.eq(~busy)
        m.d.sync += elapsed.eq(Cat(accept, elapsed[:-1]))
        if self.carry_sum:
            held_sum = Signal(self.sum_width)
            with m.If(self.i.valid & self.i.ready):
                m.d.sync += held_sum.eq(self.i.payload)

        output = shared.o[SCALE_BITS:]
        updated = Cat(x[:2], output[:X_BITS - 1])
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(accept):
            m.d.sync += busy.eq(1)
        with m.If(elapsed[final - 2]):
            m.d.sync += done.eq(1)
        with m.If(done & (~self.o.valid | self.o.ready)):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.shift.eq(held_shift), busy.eq(0), done.eq(0),
                         self.o.payload.scale.eq(_saturated_scale(updated if self.steps else output[:X_BITS]))]
            if self.carry_sum:
                m.d.sync += self.o.payload.sum.eq(held_sum)
        start = MAX_NORMALISE_LATENCY
        steps = [start + (1 + 2 * step) * period for step in range(self.steps)]
        updates = [start + (2 + 2 * step) * period for step in range(self.steps)]
        estimates = [(output[:X_BITS], steps[:1]), (updated, steps[1:])]
        loads = [
            (a, [(Cat(fraction, Const(0b10, 2)).as_signed(), [start]), (minus_d, steps), (x, updates)]),
            (b, [(Const(SEED_SLOPE, SHARED.b_shape), [start]), *estimates,
                 (output[:U_BITS[0]].as_signed(), updates)]),
            (c, [(Const(HALF), [start]), (Const(HALF - 1), steps),
                 (Cat(Const(HALF, HALF_BITS + 1), x[2:X_BITS]), updates)]),
            (x, estimates),
            (minus_d, [(-Cat(fraction, Const(1, 1)), [start])]),
            (held_shift, [(shift, [start])]),
        ]
        for register, sources in loads:
            self._load(m, elapsed, register, [(value, times) for value, times in sources if times])

    @staticmethod
    def _load(m: Module, elapsed: Value, register: Signal, sources: list[tuple[Value, list[int]]]) -> None:
        """Load ``register`` with each source at the cycles after acceptance listed with it, from strobes registered
        a cycle ahead (one per source, so that each drives only this register's multiplexer); bit ``k`` of
        ``elapsed`` is high ``k + 1`` cycles after a sum was accepted."""
        strobes = []
        selected = Const(0)
        for index, (value, times) in enumerate(sources):
            strobe = Signal(name=f"{register.name}_from{index}")
            m.d.sync += strobe.eq(Cat(*(elapsed[time - 2] for time in times)).any())
            strobes.append(strobe)
            selected = selected | Mux(strobe, value, 0)
        with m.If(Cat(*strobes).any()):
            m.d.sync += register.eq(selected)


class SharedReciprocal(wiring.Component):
    """One pipelined :class:`Reciprocal` serving the row sums of ``users`` softmax units (an attention unit's heads).

    A sum offered on ``i[k]`` enters the reciprocal when no unit of a lower index offers one in the same cycle; its
    result comes back on ``o[k]`` from a register, :attr:`latency` cycles later. The users take every result as it
    comes (``o`` is always ready), so the reciprocal never stalls and the user's index follows it in a delay line.
    When each unit offers a sum at most every ``users`` cycles, unit ``k`` waits at most ``k`` cycles (:attr:`wait`),
    and unit 0 never.

    Parameters
    ----------
    reciprocal : Reciprocal
        The shared unit, pipelined.
    users : int
        Units sharing it, ≥ 2.

    Members
    -------
    i : In(stream.Signature(unsigned(sum_width))).array(users)
        Each unit's row sums.
    o : Out(stream.Signature(ReciprocalLayout(...), always_ready=True)).array(users)
        Each unit's reciprocals, in the order of its sums.
    """

    OUTPUT_REGISTER = 1

    def __init__(self, reciprocal: Reciprocal, users: int):
        if not reciprocal.pipelined:
            raise ValueError("a shared reciprocal must be pipelined (one sum a cycle)")
        if users < 2:
            raise ValueError(f"users must be ≥ 2, not {users}")
        self.reciprocal = reciprocal
        self.users = users
        super().__init__({"i": In(reciprocal.sum_stream).array(users),
                          "o": Out(self.result_stream(reciprocal)).array(users)})

    @staticmethod
    def result_stream(reciprocal: Reciprocal) -> stream.Signature:
        """The stream of one user's results, from the sender's side: ``reciprocal``'s, always ready."""
        return stream.Signature(reciprocal.scale_stream.members["payload"].shape, always_ready=True)

    @property
    def latency(self) -> int:
        """Cycles from a sum entering the reciprocal to its result on ``o``: the reciprocal's and the output
        register."""
        return self.reciprocal.latency + self.OUTPUT_REGISTER

    @property
    def wait(self) -> int:
        """Most cycles a sum waits for the reciprocal (the last unit's, when the others' sums come first)."""
        return self.users - 1

    def elaborate(self, platform):
        m = Module()
        m.submodules.reciprocal = reciprocal = self.reciprocal
        chosen, payload = Const(self.users - 1, range(self.users)), self.i[-1].payload
        for user in reversed(range(self.users - 1)):
            chosen = Mux(self.i[user].valid, user, chosen)
            payload = Mux(self.i[user].valid, self.i[user].payload, payload)
        chosen_user = Signal(range(self.users), name="chosen_user")
        m.d.comb += [
            chosen_user.eq(chosen),
            reciprocal.i.valid.eq(Cat(port.valid for port in self.i).any()),
            reciprocal.i.payload.eq(payload),
            reciprocal.o.ready.eq(1),
        ]
        m.d.comb += [port.ready.eq(reciprocal.i.ready & (chosen_user == user)) for user, port in enumerate(self.i)]
        owner = delay(m, chosen_user, self.reciprocal.latency, name="owner")
        result = Signal.like(reciprocal.o.payload, name="result")
        m.d.sync += result.eq(reciprocal.o.payload)
        for user, port in enumerate(self.o):
            m.d.sync += port.valid.eq(reciprocal.o.valid & (owner == user))
            m.d.comb += port.payload.eq(result)
        return m
