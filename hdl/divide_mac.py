"""Divide MAC: TinyMind's rounded division of each exponential by the row sum, as a multiply and a correction."""

from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from int8attn.hdl.multiplier import MAX_WIDTH, Multiplier
from int8attn.hdl.pipeline import check_target, delay, delay_line
from int8attn.hdl.reciprocal import SCALE_BITS, ReciprocalLayout, output_shift
from int8attn.hdl.streams import LaneBeat

NUMERATOR_SHIFT = 8
OUTPUT_BITS = 8
EXP_BITS = 12
"""Fewest bits of ``e`` kept for the estimate: those below bit ``L − b`` of the row sum's bit length ``L``."""
GROUP = 4
"""Bit lengths that share one selection of ``e``: ``b`` counts the row's bit length within its group."""
RECIPROCAL_BITS = 16
"""Most leading bits of the row's scale kept for the estimate: ``16 − b``."""
ESTIMATE_SHIFT = (30 - NUMERATOR_SHIFT) + EXP_BITS - (SCALE_BITS - RECIPROCAL_BITS)
QUOTIENT_BITS = 9
SATURATED = (1 << OUTPUT_BITS) - 1
ZERO_POINT = 1 << (OUTPUT_BITS - 1)
INPUT_STAGES = 2
"""Registers before the estimate's multiplier: the inputs, then the kept bits of ``e``."""
OUTPUT_STAGES = 2
"""Registers after the correction's product: the difference's sign (as the signs of its halves), then the
corrected quotient."""
CHOICE_STAGES = 3
"""Registers from ``q'`` to its two clamped choices: ``q'`` itself, ``q' + 1``, the clamp."""


class DivideMac(wiring.Component):
    """``q = ⌊((e << 8) + ⌊S/2⌋) / S⌋ − 128``, clamped to int8, for every lane, without a divider.

    With ``y = (e << 8) + ⌊S/2⌋``, ``L`` the bit length of the row sum ``S`` (``2^(L−1) ≤ S < 2^L``) and ``r`` the
    reciprocal unit's scale (``r ≈ 2^62 / s``, ``s`` the 32 leading bits of ``S``), ``256·e / S ≈ e·r / 2^(22+L)``.
    The bit lengths ``L`` of a configuration form groups of four from ``min_sum_bits`` up; with ``b`` the position of
    ``L`` in its group (0..3), the estimate keeps the bits of ``e`` below bit ``L`` from bit ``L − b − 12`` up (at
    most 15) and the ``16 − b`` leading bits of ``r``::

        q' = ⌊⌊e / 2^(L−b−12)⌋ · ⌊r / 2^(15+b)⌋ / 2^19⌋

    so that ``e`` is selected per group and only the row's ``r`` per position in the group.

    Exactness: the truncation of ``e`` lowers ``256·e / S`` by less than ``256·2^(L−b−12) / 2^(L−1) ≤ 1/8``, that of
    ``r`` (``r ≳ 2^30``) by less than about ``256·2^−12 = 1/16``, and the Newton–Raphson scale and the 32-bit
    normalisation move it by less than ``256·2^−27``. As ``y / S − 256·e / S = ⌊S/2⌋ / S ∈ (1/2 − 2^−31, 1/2]``, the
    estimate lies in ``(y/S − 1, y/S)``, so ``q'`` is the quotient ``q`` or ``q − 1``: it is ``q − 1`` exactly when
    ``y − (q' + 1)·S ≥ 0``. That difference lies in ``[−S, S)``, so its sign is bit ``sum_width`` of the difference
    taken modulo ``2^(sum_width+1)``, formed as ``Z − q'·S`` with ``Z = (e << 8) − ⌈S/2⌉``. Every LUT entry is at
    most the row sum (the sum includes it), so ``e < 2^L`` and ``q' ≤ 256`` fit their 15 and 9 bits.

    Pipeline: the inputs are registered, then the kept bits of ``e`` and of ``r`` are selected (registered
    multiplexers); the estimate's :class:`~int8attn.hdl.multiplier.Multiplier` follows, then that of ``q'·S`` (a sum
    wider than 36 bits takes two, and the upper product is subtracted from ``Z`` as soon as it is ready), while ``Z``
    and the clamped choices ``q'`` and ``q' + 1`` are prepared. The sign of the difference is taken in two halves:
    the borrow of the lower ``h`` bits, and the sign of the upper part both without and with a borrow (the latter
    from ``Z − 2^h``, prepared like ``Z``); the last register picks the sign and, by it, the choice.

    Parameters
    ----------
    lanes : int
        Elements per beat.
    exp_width : int
        Stored width of a LUT entry.
    exp_shift : int
        Zero bits below the stored ones.
    sum_width, min_sum_bits : int
        Width and smallest bit length of the row sum; ``min_sum_bits ≥ 12``, ``sum_width ≤ 72``.
    target : str
        FPGA family of the multipliers (:data:`~int8attn.golden.params.TARGETS`).

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

    def __init__(self, lanes: int, exp_width: int, exp_shift: int, sum_width: int, min_sum_bits: int,
                 target: str = "generic"):
        if lanes < 1:
            raise ValueError(f"lanes must be at least 1, not {lanes}")
        if exp_shift < 0:
            raise ValueError(f"exp_shift must be at least 0, not {exp_shift}")
        if not EXP_BITS <= min_sum_bits <= sum_width:
            raise ValueError(f"min_sum_bits must be in {EXP_BITS}..{sum_width}, not {min_sum_bits}")
        if sum_width > 2 * MAX_WIDTH:
            raise ValueError(f"sum_width must be at most {2 * MAX_WIDTH}, not {sum_width}")
        self.lanes = lanes
        self.exp_shift = exp_shift
        self.sum_width = sum_width
        self.target = check_target(target)
        self.bit_lengths = range(min_sum_bits, sum_width + 1)
        self.chunks = [(offset, min(sum_width - offset, MAX_WIDTH)) for offset in range(0, sum_width, MAX_WIDTH)]
        self.estimators = [Multiplier(unsigned(EXP_BITS + GROUP - 1), unsigned(RECIPROCAL_BITS), target,
                                      fabric_register=True) for _ in range(lanes)]
        self.checkers = [[Multiplier(unsigned(QUOTIENT_BITS), unsigned(width), target, fabric_register=True)
                          for _, width in self.chunks] for _ in range(lanes)]
        super().__init__({
            "en": Out(1),
            "valid": In(1),
            "last": In(1),
            "exp": In(data.ArrayLayout(unsigned(exp_width), lanes)),
            "reciprocal": In(ReciprocalLayout(sum_width, OUTPUT_BITS, carry_sum=True)),
            "o": Out(stream.Signature(LaneBeat(lanes, OUTPUT_BITS))),
        })

    @property
    def _estimate_time(self) -> int:
        """Cycles from a beat to ``q'``."""
        return INPUT_STAGES + self.estimators[0].latency

    @property
    def _upper_time(self) -> int | None:
        """Cycles from a beat to ``Z`` less the upper product; ``None`` for a single product."""
        if len(self.chunks) == 1:
            return None
        return self._estimate_time + self.checkers[0][1].latency + 1

    @property
    def _compare_time(self) -> int:
        """Cycles from a beat to the difference's operands; the two clamped choices take :data:`CHOICE_STAGES`
        from ``q'`` and must be ready with the difference's sign."""
        lower = self._estimate_time + self.checkers[0][0].latency
        upper = lower if self._upper_time is None else self._upper_time
        return max(lower, upper, self._estimate_time + CHOICE_STAGES - 1)

    @property
    def latency(self) -> int:
        """Cycles from a beat to its probabilities: :data:`INPUT_STAGES`, both multipliers (and the subtraction of
        the upper product of a wide sum when it is not hidden by the lower one's longer latency), then
        :data:`OUTPUT_STAGES`."""
        return self._compare_time + OUTPUT_STAGES

    def _register(self, m: Module, value, width: int, name: str) -> Signal:
        register = Signal(width, name=name)
        with m.If(self.en):
            m.d.sync += register.eq(value)
        return register

    def _minuend(self, m: Module, numerator: Signal, half: Signal, upper: list, name: str) -> Signal:
        """``(numerator << (exp_shift + 8)) + half``, less the upper product ``upper`` shifted to its chunk, at
        :attr:`_compare_time`."""
        z = self._register(m, (numerator << (self.exp_shift + NUMERATOR_SHIFT)) + half, self.sum_width + 1, name)
        for product in upper:
            z = self._register(m, Cat(z[:MAX_WIDTH], z[MAX_WIDTH:] - product), len(z), f"{name}_upper")
        ready = self._upper_time if upper else self._compare_time
        return delay(m, z, self._compare_time - ready, enable=self.en, name=name)

    def elaborate(self, platform):
        m = Module()
        en = self.en
        m.d.comb += en.eq(~self.o.valid | self.o.ready)
        row = self.reciprocal
        width = self.sum_width + 1
        estimate_time, compare_time = self._estimate_time, self._compare_time
        z_time = compare_time if self._upper_time is None else self._upper_time - 1

        groups = -(-len(self.bit_lengths) // GROUP)
        group = Signal(range(max(groups, 2)))
        within = Signal(range(GROUP))
        with m.If(en), m.Switch(row.shift):
            for index, bit_length in enumerate(self.bit_lengths):
                last = bit_length == self.bit_lengths[-1]
                with m.Default() if last else m.Case(output_shift(bit_length, OUTPUT_BITS)):
                    m.d.sync += [group.eq(index // GROUP), within.eq(index % GROUP)]
        scale = self._register(m, row.scale, SCALE_BITS, "scale")
        reciprocal = Signal(RECIPROCAL_BITS)
        with m.If(en), m.Switch(within):
            for b in range(GROUP):
                with m.Case(b):
                    m.d.sync += reciprocal.eq(scale >> (SCALE_BITS - RECIPROCAL_BITS + b))
        row_sums = delay_line(m, row.sum, max(estimate_time, z_time - 4), enable=en, name="row_sum")
        row_sum = row_sums[estimate_time]
        split = width // 2
        half = self._register(m, -self._register(m, (row_sums[z_time - 4] + 1) >> 1, width, "ceiling"), width, "half")
        halves = [delay(m, half, 1, enable=en, name="half"), self._register(m, half - (1 << split), width, "half_less")]

        for lane, (estimator, checkers) in enumerate(zip(self.estimators, self.checkers, strict=True)):
            exp = self._register(m, self.exp[lane], len(self.exp[lane]), f"exp{lane}")
            kept = Signal(EXP_BITS + GROUP - 1, name=f"kept{lane}")
            with m.If(en), m.Switch(group):
                for a in range(groups):
                    with m.Default() if a == groups - 1 else m.Case(a):
                        shift = self.bit_lengths[0] + GROUP * a - EXP_BITS
                        m.d.sync += kept.eq((exp << self.exp_shift) >> shift)
            m.submodules[f"estimator{lane}"] = estimator
            m.d.comb += [estimator.en.eq(en), estimator.a.eq(kept), estimator.b.eq(reciprocal)]
            estimate = estimator.o[ESTIMATE_SHIFT:ESTIMATE_SHIFT + QUOTIENT_BITS]

            products = []
            for chunk, ((offset, chunk_width), checker) in enumerate(zip(self.chunks, checkers, strict=True)):
                m.submodules[f"checker{lane}_{chunk}"] = checker
                m.d.comb += [checker.en.eq(en), checker.a.eq(estimate),
                             checker.b.eq(row_sum[offset:offset + chunk_width])]
                products.append(checker.o)

            numerator = delay(m, exp, z_time - 2, enable=en, name=f"exp{lane}")
            product = delay(m, products[0], compare_time - estimate_time - checkers[0].latency, enable=en,
                            name=f"product{lane}")
            wrapped = Signal(width, name=f"product{lane}_wrapped")
            m.d.comb += wrapped.eq(product)
            z, z_less = (self._minuend(m, numerator, half, products[1:], f"z{lane}_{borrow}")
                         for borrow, half in enumerate(halves))
            borrow = self._register(m, (z[:split] - wrapped[:split])[split], 1, f"borrow{lane}")
            signs = [self._register(m, (minuend[split:] - wrapped[split:])[width - split - 1], 1,
                                    f"negative{lane}_{k}") for k, minuend in enumerate((z, z_less))]

            quotient = delay(m, estimate, 1, enable=en, name=f"estimate{lane}")
            values = [delay(m, quotient, 1, enable=en, name=f"plain{lane}"),
                      self._register(m, quotient + 1, QUOTIENT_BITS + 1, f"incremented{lane}")]
            choices = [delay(m, self._register(m, Mux(value[OUTPUT_BITS:].any(), SATURATED, value) ^ ZERO_POINT,
                                               OUTPUT_BITS, f"choice{lane}_{k}"),
                             compare_time + 1 - estimate_time - CHOICE_STAGES, enable=en, name=f"choice{lane}_{k}")
                       for k, value in enumerate(values)]
            with m.If(en):
                m.d.sync += self.o.payload.data[lane].eq(
                    Mux(Mux(borrow, signs[1], signs[0]), choices[0], choices[1]))

        valid, last = (delay(m, value, self.latency - 1, enable=en, name=name)
                       for value, name in ((self.valid, "valid"), (self.last, "last")))
        with m.If(en):
            m.d.sync += [self.o.valid.eq(valid), self.o.payload.last.eq(last)]
        return m
