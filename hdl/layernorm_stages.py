"""The stages of the layernorm unit (:mod:`int8attn.hdl.layernorm`).

Row statistics, a row at a time on valid/ready streams: :class:`RowSums` (``S = Σ x`` and ``Q = Σ x²`` as the row
arrives), :class:`MeanStage` (the rounded mean) and :class:`VarianceStage` (the denominator ``max(var_q + ε, 0)``),
with :class:`DivideByConstant` for their divisions by ``N``. Each statistics stage after :class:`RowSums` is a
stalling pipeline: its registers advance while ``o`` is free or taken (``i.ready``).

Per element, the lanes of a beat in lockstep under one clock enable ``en`` (the unit's output stall):
:class:`Normalize` (``n14 = ((x − mean)·inv) >> 16``), :class:`GammaScale` (``sat32(n14·γ·2^left_shift)``),
:class:`Rescale` (``RDBPOT(SRDHM(w, M), right_shift)``) and :class:`BiasClamp` (``clamp(wrap32(z + β + zp))``).

Every product is a :class:`~int8attn.hdl.multiplier.Multiplier` of the unit's target; on ``ecp5`` each DSP block's
product is registered again in the fabric before any adder (``fabric_register``), as in the requantizer.
"""

from amaranth import Cat, Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from int8attn.golden.layernorm import NORMALIZED_SHIFT
from int8attn.golden.layernorm_unit import INT8_OFFSET, INT8_SQUARE_MAX, FloorDivision, LayerNormPlan
from int8attn.hdl.accumulator import Accumulator
from int8attn.hdl.fixedpoint import (
    INT32,
    INT32_MAX,
    INT32_MIN,
    RoundingDivideByPot,
    SaturatingRoundingDoublingHighMul,
    clamp,
    saturated,
    saturation_test,
)
from int8attn.hdl.multiplier import Multiplier
from int8attn.hdl.pipeline import check_target, delay

FABRIC_REGISTER_TARGETS = ("ecp5",)
"""Targets whose DSP products are registered again in the fabric before an adder."""
INT8 = signed(8)
GAMMA = signed(16)
DEVIATION = signed(9)
"""``x − mean`` of int8 values: −255..255."""


def _range(low: int, high: int) -> Shape:
    """The narrowest shape holding ``low..high``."""
    return Shape.cast(range(low, high + 1))


def _advance(m: Module, i: stream.Interface, o: stream.Interface) -> Signal:
    """The enable of a stalling pipeline from ``i`` to ``o``: high unless ``o`` holds a value not taken this cycle;
    it is also ``i.ready``."""
    enable = Signal(name="advance")
    m.d.comb += [enable.eq(~o.valid | o.ready), i.ready.eq(enable)]
    return enable


def sums_layout(plan: LayerNormPlan) -> data.StructLayout:
    """A row's sums: ``sum`` (``S``, signed) and ``squares`` (``Q``)."""
    return data.StructLayout({"sum": signed(plan.sum_bits), "squares": unsigned(plan.square_sum_max.bit_length())})


def mean_layout(plan: LayerNormPlan) -> data.StructLayout:
    """A row's rounded ``mean`` (int8) beside its sums."""
    return data.StructLayout({"mean": INT8, **sums_layout(plan).members})


class DivideByConstant(wiring.Component):
    """``⌊a / divisor⌋`` of ``0 ≤ a ≤ dividend_max``, exactly, as ``(a·M) >> k``
    (:class:`~int8attn.golden.layernorm_unit.FloorDivision`): a :class:`~int8attn.hdl.multiplier.Multiplier` by the
    constant ``M``, or wiring for a power of two.

    Parameters
    ----------
    division : FloorDivision
        Divisor, largest dividend, ``M`` and ``k``.
    target : str
        FPGA family of the multiplier.

    Members
    -------
    en : In(1, init=1)
        The multiplier advances.
    a : In(unsigned(dividend bits))
        Dividend.
    o : Out(unsigned(quotient bits))
        The quotient, :attr:`latency` enabled cycles after ``a``.
    """

    def __init__(self, division: FloorDivision, target: str = "generic"):
        self.division = division
        self.target = check_target(target)
        self.multiplier = None if division.power_of_two else Multiplier(
            unsigned(division.dividend_bits), unsigned(division.multiplier.bit_length()), target,
            fabric_register=target in FABRIC_REGISTER_TARGETS)
        quotient = division.dividend_max // division.divisor
        super().__init__({"en": In(1, init=1), "a": In(unsigned(division.dividend_bits)),
                          "o": Out(unsigned(max(1, quotient.bit_length())))})

    @property
    def latency(self) -> int:
        """0 for a power of two (a shift), else the multiplier's."""
        return 0 if self.multiplier is None else self.multiplier.latency

    @property
    def dsp_blocks(self) -> int:
        return 0 if self.multiplier is None else self.multiplier.dsp_blocks

    def elaborate(self, platform):
        m = Module()
        shift = self.division.shift
        if self.multiplier is None:
            m.d.comb += self.o.eq(self.a[shift:])
            return m
        m.submodules.multiplier = multiplier = self.multiplier
        m.d.comb += [multiplier.en.eq(self.en), multiplier.a.eq(self.a),
                     multiplier.b.eq(self.division.multiplier), self.o.eq(multiplier.o[shift:])]
        return m


class RowSums(wiring.Component):
    """``S = Σ x`` and ``Q = Σ x²`` of each row of int8 beats, on a stream.

    The squares come from a :class:`~int8attn.hdl.multiplier.Multiplier` per lane; the elements, offset to
    ``x + 128`` (unsigned), wait beside them. Two :class:`~int8attn.hdl.accumulator.Accumulator`\\ s sum the lanes of
    each beat and the beats of each row; the output register takes ``Σ (x + 128) − 128·N`` and ``Q`` and holds them
    until taken. A row's sums overwrite whatever it still holds, so ``o`` must be taken before the next row's sums
    arrive, at least ``features / lanes`` cycles later: the unit's statistics stages each take a row that often or
    more.

    Parameters
    ----------
    plan : LayerNormPlan
        ``N`` and the sums' widths.
    lanes : int
        Elements per beat.
    target : str
        FPGA family of the multipliers and of the adder trees' depth.

    Members
    -------
    valid, first, last : In(1)
        A beat is presented; it opens / closes its row.
    lanes_in : In(ArrayLayout(signed(8), lanes))
        The beat.
    o : Out(stream.Signature(sums_layout(plan)))
        Each row's sums, :attr:`latency` cycles after its last beat.
    """

    def __init__(self, plan: LayerNormPlan, lanes: int, target: str = "generic"):
        self.plan = plan
        self.lanes = lanes
        self.target = check_target(target)
        self.squarers = [Multiplier(INT8, INT8, target, fabric_register=target in FABRIC_REGISTER_TARGETS)
                         for _ in range(lanes)]
        features = plan.features
        self.offset_sum = Accumulator(lanes, 8, ((2 * INT8_OFFSET - 1) * features).bit_length(), target=target)
        self.square_sum = Accumulator(lanes, INT8_SQUARE_MAX.bit_length(), plan.square_sum_max.bit_length(),
                                      target=target)
        super().__init__({
            "valid": In(1),
            "first": In(1),
            "last": In(1),
            "lanes_in": In(data.ArrayLayout(INT8, lanes)),
            "o": Out(stream.Signature(sums_layout(plan))),
        })

    @property
    def latency(self) -> int:
        """Cycles from a row's last beat to its sums on ``o``: the squares, the accumulators, the output register."""
        return self.squarers[0].latency + self.square_sum.latency + 1

    @property
    def dsp_blocks(self) -> int:
        return sum(squarer.dsp_blocks for squarer in self.squarers)

    def elaborate(self, platform):
        m = Module()
        square_latency = self.squarers[0].latency
        flags = delay(m, Cat(self.valid, self.first, self.last), square_latency, name="beat_flags")
        offsets = delay(m, Cat(*(self.lanes_in[lane].as_unsigned() ^ INT8_OFFSET for lane in range(self.lanes))),
                        square_latency, name="offsets")
        m.submodules.offset_sum = offset_sum = self.offset_sum
        m.submodules.square_sum = square_sum = self.square_sum
        for accumulator in (offset_sum, square_sum):
            m.d.comb += [accumulator.en.eq(1), accumulator.valid.eq(flags[0]), accumulator.first.eq(flags[1]),
                         accumulator.last.eq(flags[2])]
        m.d.comb += offset_sum.terms.eq(offsets)
        for lane, squarer in enumerate(self.squarers):
            m.submodules[f"square{lane}"] = squarer
            m.d.comb += [squarer.a.eq(self.lanes_in[lane]), squarer.b.eq(self.lanes_in[lane]),
                         square_sum.terms[lane].eq(squarer.o[:len(square_sum.terms[lane])])]
        with m.If(offset_sum.sum_valid):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.squares.eq(square_sum.sum),
                         self.o.payload.sum.eq(offset_sum.sum - INT8_OFFSET * self.plan.features)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m


class MeanStage(wiring.Component):
    """The rounded mean ``m = sign(S)·⌊(|S| + N/2) / N⌋`` (TinyMind's ``(S ± N/2) / N``, C's truncating ``/``).

    Stages: ``|S|`` and the sign, ``|S| + N/2`` (registered each: one carry chain a cycle), the division
    (:class:`DivideByConstant`), the signed result (registered). The sums pass alongside.

    Parameters
    ----------
    plan : LayerNormPlan
    target : str

    Members
    -------
    i : In(stream.Signature(sums_layout(plan)))
    o : Out(stream.Signature(mean_layout(plan)))
        :attr:`latency` cycles after ``i`` when not stalled.
    """

    def __init__(self, plan: LayerNormPlan, target: str = "generic"):
        self.plan = plan
        self.division = DivideByConstant(plan.mean_division, target)
        super().__init__({"i": In(stream.Signature(sums_layout(plan))),
                          "o": Out(stream.Signature(mean_layout(plan)))})

    @property
    def latency(self) -> int:
        return 2 + self.division.latency + 1

    @property
    def dsp_blocks(self) -> int:
        return self.division.dsp_blocks

    def elaborate(self, platform):
        m = Module()
        enable = _advance(m, self.i, self.o)
        m.submodules.division = division = self.division
        total = self.i.payload.sum
        negative = Signal(name="negative")
        magnitude = Signal.like(division.a, name="magnitude")
        dividend = Signal.like(division.a, name="dividend")
        with m.If(enable):
            m.d.sync += [negative.eq(total < 0), magnitude.eq(Mux(total < 0, -total, total)),
                         dividend.eq(magnitude + self.plan.half)]
        m.d.comb += [division.en.eq(enable), division.a.eq(dividend)]
        wait = 2 + division.latency
        sums = delay(m, Cat(self.i.payload.sum, self.i.payload.squares), wait, enable=enable, name="sums")
        valid = delay(m, self.i.valid, wait, enable=enable, name="valid")
        sign = delay(m, negative, 1 + division.latency, enable=enable, name="negative")
        quotient = division.o
        with m.If(enable):
            m.d.sync += [self.o.valid.eq(valid), self.o.payload.mean.eq(Mux(sign, -quotient, quotient)),
                         Cat(self.o.payload.sum, self.o.payload.squares).eq(sums)]
        return m


class VarianceStage(wiring.Component):
    """The denominator ``d = max(var_q + ε, 0)``, ``var_q = ⌊(V + N/2) / N⌋``, from the mean and the sums in one
    pass: ``V = Σ (x − m)² = Q + m·(N·m − 2S)``, exact for the rounded mean (an identity of integers).

    Stages: ``N·m`` (a :class:`~int8attn.hdl.multiplier.Multiplier` by the constant ``N``, wiring for a power of two),
    ``N·m − 2S`` and ``Q + N/2`` (registered), ``m·(N·m − 2S) + (Q + N/2)`` (a multiplier with an addend), the
    division by ``N`` (:class:`DivideByConstant`), ``+ ε`` and the clamp at 0 (registered).

    Parameters
    ----------
    plan : LayerNormPlan
    target : str

    Members
    -------
    i : In(stream.Signature(mean_layout(plan)))
    o : Out(stream.Signature(unsigned(denominator bits)))
        :attr:`latency` cycles after ``i`` when not stalled.
    """

    def __init__(self, plan: LayerNormPlan, target: str = "generic"):
        self.plan = plan
        self.target = check_target(target)
        n = plan.features
        fabric = target in FABRIC_REGISTER_TARGETS
        power_of_two = n & (n - 1) == 0
        self.scale = None if power_of_two else Multiplier(INT8, unsigned(n.bit_length()), target,
                                                          fabric_register=fabric)
        sum_low, sum_high = -INT8_OFFSET * n, (INT8_OFFSET - 1) * n
        self.difference_shape = _range(-INT8_OFFSET * n - 2 * sum_high, (INT8_OFFSET - 1) * n - 2 * sum_low)
        self.addend_shape = unsigned((plan.square_sum_max + plan.half).bit_length())
        self.product = Multiplier(INT8, self.difference_shape, target, addend_shape=self.addend_shape,
                                  fabric_register=fabric)
        self.division = DivideByConstant(plan.variance_division, target)
        super().__init__({"i": In(stream.Signature(mean_layout(plan))),
                          "o": Out(stream.Signature(unsigned(plan.denominator_bits)))})

    @property
    def scale_latency(self) -> int:
        return 0 if self.scale is None else self.scale.latency

    @property
    def latency(self) -> int:
        return self.scale_latency + 1 + self.product.latency + self.division.latency + 1

    @property
    def dsp_blocks(self) -> int:
        return sum(block.dsp_blocks for block in (self.scale, self.product, self.division) if block is not None)

    def elaborate(self, platform):
        m = Module()
        plan = self.plan
        enable = _advance(m, self.i, self.o)
        payload = self.i.payload
        if self.scale is None:
            scaled = payload.mean << (plan.features.bit_length() - 1)
        else:
            m.submodules.scale = scale = self.scale
            m.d.comb += [scale.en.eq(enable), scale.a.eq(payload.mean), scale.b.eq(plan.features)]
            scaled = scale.o
        wait = self.scale_latency
        total, squares, mean = (delay(m, value, wait, enable=enable, name=name) for value, name in (
            (payload.sum, "sum"), (payload.squares, "squares"), (payload.mean, "mean")))
        difference = Signal(self.difference_shape, name="difference")
        addend = Signal(self.addend_shape, name="squares_half")
        factor = Signal(INT8, name="factor")
        with m.If(enable):
            m.d.sync += [difference.eq(scaled - (total << 1)), addend.eq(squares + plan.half), factor.eq(mean)]
        m.submodules.product = product = self.product
        m.d.comb += [product.en.eq(enable), product.a.eq(factor), product.b.eq(difference),
                     product.c.eq(delay(m, addend, product.latency - product.addend_latency, enable=enable,
                                        name="addend"))]
        m.submodules.division = division = self.division
        m.d.comb += [division.en.eq(enable), division.a.eq(product.o[:len(division.a)])]
        variance = division.o
        epsilon = plan.layer.epsilon_q
        denominator = variance + epsilon
        if epsilon < 0:
            denominator = Mux(denominator < 0, 0, denominator)
        valid = delay(m, self.i.valid, self.latency - 1, enable=enable, name="valid")
        with m.If(enable):
            m.d.sync += [self.o.valid.eq(valid), self.o.payload.eq(denominator)]
        return m


class Normalize(wiring.Component):
    """``n14 = ((x − mean)·inv) >> 16`` on every lane: the deviation and the row's ``inv`` (registered), then a
    :class:`~int8attn.hdl.multiplier.Multiplier` per lane; the shift is wiring.

    Parameters
    ----------
    lanes : int
    inverse_max : int
        Largest ``inv``; it sizes ``inverse`` and ``o``.
    target : str

    Members
    -------
    en : In(1, init=1)
        The stage advances.
    x : In(ArrayLayout(signed(8), lanes))
    mean : In(signed(8))
    inverse : In(unsigned(inverse bits))
    o : Out(ArrayLayout(signed(n14 bits), lanes))
        ``n14`` of each lane, :attr:`latency` enabled cycles after ``x``, ``mean`` and ``inverse``.
    """

    def __init__(self, lanes: int, inverse_max: int, target: str = "generic"):
        self.lanes = lanes
        self.inverse_shape = unsigned(inverse_max.bit_length())
        self.multipliers = [Multiplier(DEVIATION, self.inverse_shape, target,
                                       fabric_register=target in FABRIC_REGISTER_TARGETS) for _ in range(lanes)]
        extreme = 255 * inverse_max
        self.normalized_shape = _range(-extreme >> NORMALIZED_SHIFT, extreme >> NORMALIZED_SHIFT)
        super().__init__({
            "en": In(1, init=1),
            "x": In(data.ArrayLayout(INT8, lanes)),
            "mean": In(INT8),
            "inverse": In(self.inverse_shape),
            "o": Out(data.ArrayLayout(self.normalized_shape, lanes)),
        })

    @property
    def latency(self) -> int:
        return 1 + self.multipliers[0].latency

    @property
    def dsp_blocks(self) -> int:
        return sum(multiplier.dsp_blocks for multiplier in self.multipliers)

    def elaborate(self, platform):
        m = Module()
        inverse = Signal(self.inverse_shape, name="inverse")
        with m.If(self.en):
            m.d.sync += inverse.eq(self.inverse)
        for lane, multiplier in enumerate(self.multipliers):
            deviation = Signal(DEVIATION, name=f"deviation{lane}")
            with m.If(self.en):
                m.d.sync += deviation.eq(self.x[lane] - self.mean)
            m.submodules[f"product{lane}"] = multiplier
            m.d.comb += [multiplier.en.eq(self.en), multiplier.a.eq(deviation), multiplier.b.eq(inverse),
                         self.o[lane].eq(multiplier.o[NORMALIZED_SHIFT:].as_signed())]
        return m


class GammaScale(wiring.Component):
    """``sat32(n14·γ·2^left_shift)`` on every lane: TinyMind's ``sat32(n14·γ)`` and the saturating left shift of its
    output multiplier in one saturation (a value saturated once stays saturated by the shift). The product is a
    :class:`~int8attn.hdl.multiplier.Multiplier`; the saturation tests its high bits (a wide AND and NOR) and is
    registered.

    Parameters
    ----------
    lanes : int
    normalized_shape : Shape
        Shape of ``n14``.
    left_shift : int
        0..31.
    target : str

    Members
    -------
    en : In(1, init=1)
    normalized : In(ArrayLayout(normalized_shape, lanes))
    gamma : In(ArrayLayout(signed(16), lanes))
    o : Out(ArrayLayout(signed(32), lanes))
        :attr:`latency` enabled cycles after ``normalized`` and ``gamma``.
    """

    def __init__(self, lanes: int, normalized_shape: Shape, left_shift: int, target: str = "generic"):
        if not 0 <= left_shift <= 31:
            raise ValueError(f"left_shift must be in 0..31, not {left_shift}")
        self.lanes = lanes
        self.left_shift = left_shift
        self.multipliers = [Multiplier(normalized_shape, GAMMA, target,
                                       fabric_register=target in FABRIC_REGISTER_TARGETS) for _ in range(lanes)]
        super().__init__({
            "en": In(1, init=1),
            "normalized": In(data.ArrayLayout(normalized_shape, lanes)),
            "gamma": In(data.ArrayLayout(GAMMA, lanes)),
            "o": Out(data.ArrayLayout(INT32, lanes)),
        })

    @property
    def latency(self) -> int:
        return self.multipliers[0].latency + 1

    @property
    def dsp_blocks(self) -> int:
        return sum(multiplier.dsp_blocks for multiplier in self.multipliers)

    def elaborate(self, platform):
        m = Module()
        shift = self.left_shift
        bound = (Const(INT32_MIN, INT32), Const(INT32_MAX, INT32))
        for lane, multiplier in enumerate(self.multipliers):
            m.submodules[f"product{lane}"] = multiplier
            m.d.comb += [multiplier.en.eq(self.en), multiplier.a.eq(self.normalized[lane]),
                         multiplier.b.eq(self.gamma[lane])]
            fits, sign, low = saturation_test(multiplier.o, 32 - shift)
            with m.If(self.en):
                m.d.sync += self.o[lane].eq(Mux(fits, Cat(Const(0, shift), low).as_signed(), Mux(sign, *bound)))
        return m


class Rescale(wiring.Component):
    """``RDBPOT(SRDHM(w, M), right_shift)`` on every lane: TinyMind's ``multiplyByQuantizedMultiplier`` after its left
    shift, from the blocks of :mod:`int8attn.hdl.fixedpoint` the requantizer is built of.

    Parameters
    ----------
    lanes : int
    multiplier : int
        ``M``, 0..2^31 − 1.
    right_shift : int
        0..31; 0 leaves the rounding division out.
    target : str

    Members
    -------
    en : In(1, init=1)
    x : In(ArrayLayout(signed(32), lanes))
    o : Out(ArrayLayout(signed(32), lanes))
        :attr:`latency` enabled cycles after ``x``.
    """

    def __init__(self, lanes: int, multiplier: int, right_shift: int, target: str = "generic"):
        self.lanes = lanes
        self.multiplier = multiplier
        self.right_shift = right_shift
        self.srdhm_blocks = [SaturatingRoundingDoublingHighMul(INT32, unsigned(max(1, multiplier.bit_length())),
                                                               target,
                                                               fabric_register=target in FABRIC_REGISTER_TARGETS)
                             for _ in range(lanes)]
        self.divide_blocks = ([RoundingDivideByPot(max_exponent=right_shift) for _ in range(lanes)] if right_shift
                              else [])
        super().__init__({
            "en": In(1, init=1),
            "x": In(data.ArrayLayout(INT32, lanes)),
            "o": Out(data.ArrayLayout(INT32, lanes)),
        })

    @property
    def latency(self) -> int:
        return self.srdhm_blocks[0].latency + (self.divide_blocks[0].latency if self.divide_blocks else 0)

    @property
    def dsp_blocks(self) -> int:
        return sum(block.multiplier.dsp_blocks for block in self.srdhm_blocks)

    def elaborate(self, platform):
        m = Module()
        for lane, block in enumerate(self.srdhm_blocks):
            m.submodules[f"srdhm{lane}"] = block
            m.d.comb += [block.en.eq(self.en), block.a.eq(self.x[lane]), block.b.eq(self.multiplier)]
            result = block.o
            if self.divide_blocks:
                divider = m.submodules[f"rounding_divide{lane}"] = self.divide_blocks[lane]
                m.d.comb += [divider.en.eq(self.en), divider.x.eq(result), divider.exponent.eq(self.right_shift)]
                result = divider.o
            m.d.comb += self.o[lane].eq(result)
        return m


class BiasClamp(wiring.Component):
    """``clamp(wrap32(z + bias), qmin, qmax)`` on every lane, ``bias = wrap32(β + zp_out)``: the int32 addition
    (registered on the vendor targets), whether the sum fits int8 from its high bits
    (:func:`~int8attn.hdl.fixedpoint.saturation_test`, registered on the vendor targets), then the saturated value
    clamped to ``qmin..qmax`` (registered).

    Parameters
    ----------
    lanes : int
    qmin, qmax : int
        The clamp, int8 values.
    registered : bool
        Register the addition and the test (two more cycles; the vendor targets).

    Members
    -------
    en : In(1, init=1)
    x : In(ArrayLayout(signed(32), lanes))
    bias : In(ArrayLayout(signed(32), lanes))
    o : Out(ArrayLayout(signed(8), lanes))
        :attr:`latency` enabled cycles after ``x`` and ``bias``.
    """

    def __init__(self, lanes: int, qmin: int, qmax: int, registered: bool):
        self.lanes = lanes
        self.qmin, self.qmax = qmin, qmax
        self.registered = registered
        super().__init__({
            "en": In(1, init=1),
            "x": In(data.ArrayLayout(INT32, lanes)),
            "bias": In(data.ArrayLayout(INT32, lanes)),
            "o": Out(data.ArrayLayout(INT8, lanes)),
        })

    @property
    def latency(self) -> int:
        return 1 + 2 * self.registered

    def elaborate(self, platform):
        m = Module()
        for lane in range(self.lanes):
            total = delay(m, (self.x[lane] + self.bias[lane])[:32].as_signed(), int(self.registered), enable=self.en,
                          name=f"with_bias{lane}")
            fits, sign, low = (delay(m, part, int(self.registered), enable=self.en, name=f"{name}{lane}")
                               for part, name in zip(saturation_test(total, 8), ("fits", "sign", "low"), strict=True))
            with m.If(self.en):
                m.d.sync += self.o[lane].eq(clamp(saturated(fits, sign, low, 8), self.qmin, self.qmax))
        return m
