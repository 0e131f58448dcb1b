"""gemmlowp fixed-point building blocks in hardware, bit for bit with :mod:`int8attn.golden.fixedpoint`.

Each block is a small component whose ``latency`` says how many registers it puts between its operands and ``o``;
every register advances only while ``en`` is high, so a block stalls with the pipeline around it. ``clamp`` is a
function: it has no state and no latency of its own.
"""

from amaranth import Const, Module, Mux, Shape, Value, signed
from amaranth.hdl import ShapeLike, ValueLike
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from int8attn.hdl.multiplier import Multiplier, shape_bounds
from int8attn.hdl.wrapcheck import WrapChecked

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
MAX_EXPONENT = 31
INT32 = signed(32)


def _check_int32(name: str, shape: ShapeLike) -> Shape:
    shape = Shape.cast(shape)
    low, high = shape_bounds(shape)
    if low < INT32_MIN or high > INT32_MAX:
        raise ValueError(f"{name} must fit int32 (signed ≤ 32 bits or unsigned ≤ 31 bits), not {shape!r}")
    return shape


def _check_exponent(max_exponent: int) -> int:
    if not 0 <= max_exponent <= MAX_EXPONENT:
        raise ValueError(f"max_exponent must be in 0..{MAX_EXPONENT}, not {max_exponent}")
    return max_exponent


def clamp(value: ValueLike, low: int, high: int) -> Value:
    """``value`` limited to ``low..high``, as combinational logic.

    A function rather than a component: two comparisons and two multiplexers hold no state, so they belong to the
    register stage of whatever uses the result. A bound that ``value``'s shape cannot pass is not compared, so
    ``clamp`` of an unsigned value with ``low = 0`` is a single comparison.

    Parameters
    ----------
    value : ValueLike
        The value to limit.
    low, high : int
        Inclusive bounds, ``low ≤ high``.

    Returns
    -------
    Value
        ``low`` below ``low``, ``high`` above ``high``, ``value`` otherwise (its shape may be wider than the range).
    """
    if low > high:
        raise ValueError(f"low must be ≤ high, not low={low}, high={high}")
    value = Value.cast(value)
    shape_low, shape_high = shape_bounds(value.shape())
    result = value
    if high < shape_high:
        result = Mux(value > high, high, result)
    if low > shape_low:
        result = Mux(value < low, low, result)
    return result


def saturation_test(value: ValueLike, bits: int) -> tuple[Value, Value, Value]:
    """The parts :func:`saturated` chooses from: whether signed ``value`` fits ``signed(bits)`` (its bits from
    ``bits − 1`` up are all equal: a wide AND and NOR, no carry chain), its sign, and its low ``bits`` bits."""
    value = Value.cast(value)
    if bits < 1:
        raise ValueError(f"bits must be ≥ 1, not {bits}")
    if not value.shape().signed:
        raise ValueError(f"value must be signed, not {value.shape()!r}")
    if len(value) <= bits:
        return Const(1), value[-1], value.as_signed()
    top = value[bits - 1:]
    return ~top.any() | top.all(), value[-1], value[:bits].as_signed()


def saturated(fits: ValueLike, sign: ValueLike, low: ValueLike, bits: int) -> Value:
    """The value :func:`saturation_test` split, limited to ``signed(bits)``: ``low`` when it fits, else the bound on
    the side of ``sign``. Its shape is ``signed(bits)``, so a :func:`clamp` to a range inside it compares ``bits``-bit
    values only."""
    bound = Mux(sign, Const(-(1 << (bits - 1)), signed(bits)), Const((1 << (bits - 1)) - 1, signed(bits)))
    return Mux(fits, Value.cast(low).as_signed(), bound)


class SaturatingRoundingDoublingHighMul(WrapChecked, wiring.Component):
    """gemmlowp ``SaturatingRoundingDoublingHighMul``: ``a·b / 2^31`` rounded to nearest, saturated.

    gemmlowp nudges ``a·b`` by ``2^30`` when it is non-negative and by ``1 − 2^30`` when it is negative, then
    truncates toward zero. Both cases equal ``⌊(a·b + 2^30) / 2^31⌋`` (an exact half rounds up), so the rounding is
    one adder and a bit selection. The only product whose result leaves int32 is ``INT32_MIN·INT32_MIN = 2^62``,
    which saturates to ``INT32_MAX``; when an operand shape cannot hold ``INT32_MIN`` the comparison is left out.

    The product comes from a :class:`~int8attn.hdl.multiplier.Multiplier` of ``target`` (vendor DSP blocks with
    their registers, or a registered ``*``); one more stage registers the nudged, shifted and saturated result.

    Parameters
    ----------
    a_shape, b_shape : ShapeLike
        Operand shapes, each within int32 (signed ≤ 32 bits or unsigned ≤ 31 bits).
    target : str
        FPGA family of the multiplier (:data:`~int8attn.hdl.multiplier.TARGETS`).
    fabric_register : bool
        The multiplier's ``fabric_register``: its DSP blocks' products registered again in the fabric.

    Members
    -------
    en : In(1, init=1)
        The registers advance.
    a : In(a_shape)
        First operand.
    b : In(b_shape)
        Second operand.
    o : Out(signed(32))
        ``SRDHM(a, b)``, :attr:`latency` enabled cycles after ``a`` and ``b``.
    """

    def __init__(self, a_shape: ShapeLike = INT32, b_shape: ShapeLike = INT32, target: str = "generic", *,
                 fabric_register: bool = False):
        self.a_shape = _check_int32("a_shape", a_shape)
        self.b_shape = _check_int32("b_shape", b_shape)
        self.multiplier = Multiplier(self.a_shape, self.b_shape, target, fabric_register=fabric_register)
        super().__init__({
            "en": In(1, init=1),
            "a": In(self.a_shape),
            "b": In(self.b_shape),
            "o": Out(INT32),
        })

    @property
    def latency(self) -> int:
        """Registers from the operands to ``o``: the multiplier's, then the result."""
        return self.multiplier.latency + 1

    @property
    def saturates(self) -> bool:
        """Both operand shapes hold ``INT32_MIN``, so the result can saturate."""
        return shape_bounds(self.a_shape)[0] == shape_bounds(self.b_shape)[0] == INT32_MIN

    def elaborate(self, platform):
        m = Module()
        m.submodules.multiplier = multiplier = self.multiplier
        m.d.comb += [multiplier.en.eq(self.en), multiplier.a.eq(self.a), multiplier.b.eq(self.b)]
        rounded = (multiplier.o + (1 << 30)) >> 31
        result = Mux(rounded > INT32_MAX, INT32_MAX, rounded) if self.saturates else rounded
        self.check_wrap("result", self.en, result, len(self.o))
        with m.If(self.en):
            m.d.sync += self.o.eq(result)
        return m


class _ShiftStage(WrapChecked, wiring.Component):
    """One registered stage from ``x`` and a run-time ``exponent`` (0..``max_exponent``) to ``o`` of ``x``'s shape."""

    def __init__(self, shape: ShapeLike = INT32, max_exponent: int = MAX_EXPONENT):
        self.shape = Shape.cast(shape)
        self.max_exponent = _check_exponent(max_exponent)
        super().__init__({
            "en": In(1, init=1),
            "x": In(self.shape),
            "exponent": In(range(max_exponent + 1)),
            "o": Out(self.shape),
        })

    @property
    def latency(self) -> int:
        """Registers from the operands to ``o``."""
        return 1


class RoundingDivideByPot(_ShiftStage):
    """gemmlowp ``RoundingDivideByPOT``: ``x / 2^exponent`` rounded half away from zero, exponent at run time.

    ``⌊(x + 2^(e−1) − [x < 0]) / 2^e⌋`` for ``e ≥ 1`` and ``x`` for ``e = 0``: one adder and an arithmetic right
    shift, registered.

    Parameters
    ----------
    shape : ShapeLike
        Shape of ``x`` and ``o``.
    max_exponent : int
        Largest exponent, 0..31; it sizes ``exponent`` and the shifter.

    Members
    -------
    en : In(1, init=1)
        The register advances.
    x : In(shape)
        Dividend.
    exponent : In(range(max_exponent + 1))
        Power of two of the divisor.
    o : Out(shape)
        The rounded quotient, :attr:`latency` enabled cycles after ``x`` and ``exponent``.
    """

    def elaborate(self, platform):
        m = Module()
        half = (Const(1, self.max_exponent + 1) << self.exponent) >> 1
        nudge = half - ((self.x < 0) & (self.exponent != 0))
        self.check_wrap("quotient", self.en, (self.x + nudge) >> self.exponent, self.shape.width)
        with m.If(self.en):
            m.d.sync += self.o.eq((self.x + nudge) >> self.exponent)
        return m


class ShiftLeft(_ShiftStage):
    """``x · 2^exponent`` with the exponent at run time, wrapping or saturating to the shape of ``x``.

    Wrapping keeps the low bits, as a plain int32 multiply does (TFLite's ``x * (1 << left_shift)``). Saturating is
    gemmlowp ``SaturatingRoundingMultiplyByPOT`` for a positive exponent: ``x > 2^(31−e) − 1`` gives the largest
    value and ``x < −(2^(31−e) − 1)`` the smallest, which for an int32 ``x`` is the exact product clamped.

    Parameters
    ----------
    shape : ShapeLike
        Shape of ``x`` and ``o``.
    max_exponent : int
        Largest exponent, 0..31.
    saturate : bool
        Saturate instead of wrapping.

    Members
    -------
    en : In(1, init=1)
        The register advances.
    x : In(shape)
        Value to shift.
    exponent : In(range(max_exponent + 1))
        Left shift.
    o : Out(shape)
        The shifted value, :attr:`latency` enabled cycles after ``x`` and ``exponent``.
    """

    def __init__(self, shape: ShapeLike = INT32, max_exponent: int = MAX_EXPONENT, saturate: bool = False):
        self.saturate = saturate
        super().__init__(shape, max_exponent)

    def elaborate(self, platform):
        m = Module()
        shifted = self.x << self.exponent
        if not self.saturate:
            self.check_wrap("shifted", self.en, shifted, self.shape.width)
        with m.If(self.en):
            m.d.sync += self.o.eq(clamp(shifted, *shape_bounds(self.shape)) if self.saturate else shifted)
        return m
