"""A pipelined exact multiplier built from the DSP blocks of each FPGA family.

Yosys maps a plain ``*`` to DSP blocks, but on ECP5 and iCE40 it leaves their internal registers unused: the
product then crosses the DSP block and the fabric in one cycle (≈85 MHz for 32×32 on an ECP5-85, speed 6), while a
``MULT18X18D`` with its own input, pipeline and output registers runs above 400 MHz. :class:`Multiplier` therefore
instantiates its target's blocks with their registers, splits operands wider than a block's ports into parts (an
unsigned low part per full port, then a top part of the operand's signedness), multiplies every pair of parts in
its own block and sums the partial products in an adder tree with one register per level. Each adder spans only
the bits where its terms overlap; the bits below pass through.
"""

from dataclasses import dataclass
from math import ceil, log2

from amaranth import Cat, ClockSignal, Const, Module, ResetSignal, Shape, Signal, Value, signed, unsigned
from amaranth.hdl import Instance, ShapeLike
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from int8attn.golden.params import TARGETS


def shape_bounds(shape: ShapeLike) -> tuple[int, int]:
    """The smallest and largest value of ``shape``."""
    shape = Shape.cast(shape)
    if shape.signed:
        return -(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1
    return 0, (1 << shape.width) - 1


MAX_WIDTH = 36
DSP_LATENCY = 3
"""Registers inside a DSP block on every vendor target: inputs, pipeline (partial products), output."""
GENERIC_LATENCY = 1
"""Registers of the ``generic`` target: the product."""


@dataclass(frozen=True)
class _Port:
    """An operand port of a DSP block: ``width`` bits, signed only (DSP48E1) or of selectable signedness."""

    width: int
    signed_only: bool = False

    def split(self, shape: Shape) -> list["_Part"]:
        """The parts of an operand of ``shape``: unsigned low parts as wide as the port takes, then the top part."""
        low = self.width - self.signed_only
        top = self.width if shape.signed else low
        parts = []
        while shape.width - len(parts) * low > top:
            parts.append(_Part(len(parts) * low, low, signed=False))
        offset = len(parts) * low
        return [*parts, _Part(offset, shape.width - offset, shape.signed)]


@dataclass(frozen=True)
class _Part:
    """Bits ``offset`` to ``offset + width`` of an operand; ``signed`` for the top part of a signed operand."""

    offset: int
    width: int
    signed: bool

    @property
    def shape(self) -> Shape:
        return signed(self.width) if self.signed else unsigned(self.width)

    @property
    def bounds(self) -> tuple[int, int]:
        return shape_bounds(self.shape)

    def of(self, value: Value) -> Value:
        bits = value[self.offset:self.offset + self.width]
        return bits.as_signed() if self.signed else bits


@dataclass(frozen=True)
class _Term:
    """``value · 2^offset``, where ``value`` lies in ``low..high``."""

    value: Value
    offset: int
    low: int
    high: int

    @property
    def shape(self) -> Shape:
        return _range_shape(self.low, self.high)


PORTS = {
    "ecp5": (_Port(18), _Port(18)),
    "ice40": (_Port(16), _Port(16)),
    "xc7": (_Port(25, signed_only=True), _Port(18, signed_only=True)),
}
"""The two multiplier ports of each vendor target's DSP block (``MULT18X18D``, ``SB_MAC16``, ``DSP48E1``)."""


def _check_operand(name: str, shape: ShapeLike) -> Shape:
    shape = Shape.cast(shape)
    if not 1 <= shape.width <= MAX_WIDTH:
        raise ValueError(f"{name} must be 1..{MAX_WIDTH} bits wide, not {shape!r}")
    return shape


def _range_shape(low: int, high: int) -> Shape:
    """The narrowest shape holding ``low..high`` (``Shape.cast(range(…))`` without the range's length limit)."""
    if low < 0:
        return signed(max((~low).bit_length(), high.bit_length()) + 1)
    return unsigned(high.bit_length())


def _product_bounds(a: _Part, b: _Part) -> tuple[int, int]:
    corners = [x * y for x in a.bounds for y in b.bounds]
    return min(corners), max(corners)


def _extend(value: Value, width: int) -> Value:
    """``value`` sign- or zero-extended to ``width`` bits, as an unsigned value."""
    fill = value[-1] if value.shape().signed else Const(0, 1)
    return Cat(value, fill.replicate(width - len(value)))


def _add(x: _Term, y: _Term) -> _Term:
    """``x + y``, adding only where they overlap: the bits of the lower term below the higher one pass through."""
    if x.offset > y.offset:
        x, y = y, x
    k = y.offset - x.offset
    low, high = x.low + (y.low << k), x.high + (y.high << k)
    if k == 0:
        return _Term(x.value + y.value, x.offset, low, high)
    head = x.value.shift_right(k)
    upper = head + y.value if len(head) else y.value
    below = x.value[:k] if len(x.value) >= k else _extend(x.value, k)
    value = Cat(below, upper)
    return _Term(value.as_signed() if upper.shape().signed else value, x.offset, low, high)


class Multiplier(wiring.Component):
    """``o = a·b`` exactly, pipelined, with the multipliers of an FPGA family's DSP blocks.

    Targets:

    * ``generic``: behavioural Verilog for any tool: ``a·b`` and one register, which vendor tools absorb into the
      DSP's output register. The operands are not registered: a constant operand then stays a constant that
      synthesis folds (an operand register would hold it, and a constant multiplier would become a general one).
    * ``ecp5``: ``MULT18X18D`` blocks with their input, pipeline and output registers (``CLK0``, clock enable
      ``CE0 = en``, synchronous ``RST0`` from the domain's reset); 18-bit parts of selectable signedness.
    * ``ice40``: ``SB_MAC16`` blocks in 16×16 mode with input, 8×8 and 16×16 pipeline registers (``CE = en``,
      reset from the domain's reset); 16-bit parts of selectable signedness.
    * ``xc7``: behavioural partial products that each fit a DSP48E1 (25×18 signed, so unsigned low parts are 24 and
      17 bits), with registers on the parts (``AREG``/``BREG``), the product (``MREG``) and again (``PREG``) for
      ``synth_xilinx`` to pack into the block. ``a`` and ``b`` take the 25- and 18-bit ports in the order that needs
      fewer blocks.

    On the vendor targets the partial products (the DSP blocks' registered outputs) are summed in a tree with one
    registered adder level per halving; a single partial product is ``o`` itself.

    Parameters
    ----------
    a_shape, b_shape : ShapeLike
        Operand shapes, 1..36 bits, signed or unsigned.
    target : str
        One of :data:`TARGETS`.

    Attributes
    ----------
    a_shape, b_shape : Shape
    target : str
    product_shape : Shape
        Shape of ``o``: ``a_shape.width + b_shape.width`` bits, signed when either operand is.

    Members
    -------
    en : In(1, init=1)
        Clock enable of the whole pipeline: while it is low every register holds, those inside DSP blocks too.
    a : In(a_shape)
        First operand.
    b : In(b_shape)
        Second operand.
    o : Out(product_shape)
        ``a·b``, :attr:`latency` enabled cycles after ``a`` and ``b``.
    """

    def __init__(self, a_shape: ShapeLike, b_shape: ShapeLike, target: str = "generic"):
        self.a_shape = _check_operand("a_shape", a_shape)
        self.b_shape = _check_operand("b_shape", b_shape)
        if target not in TARGETS:
            raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
        self.target = target
        width = self.a_shape.width + self.b_shape.width
        self.product_shape = signed(width) if self.a_shape.signed or self.b_shape.signed else unsigned(width)
        self._swapped, self._a_parts, self._b_parts = self._plan()
        super().__init__({
            "en": In(1, init=1),
            "a": In(self.a_shape),
            "b": In(self.b_shape),
            "o": Out(self.product_shape),
        })

    def _plan(self) -> tuple[bool, list[_Part], list[_Part]]:
        """Whether ``b`` takes the block's first port, and the parts of ``a`` and ``b``."""
        if self.target == "generic":
            return False, [], []
        first, second = PORTS[self.target]
        straight = first.split(self.a_shape), second.split(self.b_shape)
        swapped = second.split(self.a_shape), first.split(self.b_shape)
        if len(swapped[0]) * len(swapped[1]) < len(straight[0]) * len(straight[1]):
            return True, *swapped
        return False, *straight

    @property
    def dsp_blocks(self) -> int:
        """DSP blocks of the target (``MULT18X18D``, ``SB_MAC16`` or ``DSP48E1``) used; 0 for ``generic``."""
        return len(self._a_parts) * len(self._b_parts)

    @property
    def adder_levels(self) -> int:
        """Registered adder levels summing the partial products."""
        return ceil(log2(self.dsp_blocks)) if self.dsp_blocks else 0

    @property
    def latency(self) -> int:
        """Registers from the operands to ``o``: 1 for ``generic``; 3 in the DSP blocks plus the adder levels."""
        if self.target == "generic":
            return GENERIC_LATENCY
        return DSP_LATENCY + self.adder_levels

    def elaborate(self, platform):
        m = Module()
        if self.target == "generic":
            with m.If(self.en):
                m.d.sync += self.o.eq(self.a * self.b)
            return m
        product = {"ecp5": self._mult18x18d, "ice40": self._sb_mac16, "xc7": self._dsp48e1}[self.target]
        terms = []
        for i, a_part in enumerate(self._a_parts):
            for j, b_part in enumerate(self._b_parts):
                value = product(m, f"pp{i}{j}", a_part, b_part)
                terms.append(_Term(value, a_part.offset + b_part.offset, *_product_bounds(a_part, b_part)))
        m.d.comb += self.o.eq(self._sum(m, terms).value)
        return m

    def _register(self, m: Module, term: _Term, name: str) -> _Term:
        register = Signal(term.shape, name=name)
        with m.If(self.en):
            m.d.sync += register.eq(term.value)
        return _Term(register, term.offset, term.low, term.high)

    def _sum(self, m: Module, terms: list[_Term]) -> _Term:
        """The sum of ``terms``: each level pairs the term of the lowest offset with that of the highest (often a
        mere concatenation), the second lowest with the second highest, and so on, and registers the sums and an
        unpaired term."""
        for level in range(1, self.adder_levels + 1):
            terms = sorted(terms, key=lambda term: term.offset)
            half = len(terms) // 2
            sums = [_add(terms[k], terms[-1 - k]) for k in range(half)] + terms[half:len(terms) - half]
            terms = [self._register(m, term, f"sum{level}_{k}") for k, term in enumerate(sums)]
        return terms[0]

    def _operands(self, a_part: _Part, b_part: _Part) -> tuple[Value, _Part, Value, _Part]:
        """The parts on the block's first and second port, each with its operand bits."""
        a, b = a_part.of(self.a), b_part.of(self.b)
        return (b, b_part, a, a_part) if self._swapped else (a, a_part, b, b_part)

    def _port(self, m: Module, name: str, value: Value, part: _Part, width: int) -> Signal:
        """``value``, bits of ``part``, sign- or zero-extended to a ``width``-bit block port."""
        port = Signal(signed(width) if part.signed else unsigned(width), name=name)
        m.d.comb += port.eq(value)
        return port

    def _mult18x18d(self, m: Module, name: str, a_part: _Part, b_part: _Part) -> Value:
        first, first_part, second, second_part = self._operands(a_part, b_part)
        a = self._port(m, f"{name}_a", first, first_part, 18)
        b = self._port(m, f"{name}_b", second, second_part, 18)
        p = Signal(36, name=f"{name}_p")
        # As in Yosys's own mapping, C is 0 and the shift inputs SRIA/SRIB stay unconnected: nextpnr cannot route a
        # constant to them. Every register takes CE0 and RST0.
        m.submodules[name] = Instance(
            "MULT18X18D",
            p_REG_INPUTA_CLK="CLK0", p_REG_INPUTB_CLK="CLK0", p_REG_PIPELINE_CLK="CLK0", p_REG_OUTPUT_CLK="CLK0",
            p_RESETMODE="SYNC",
            i_CLK0=ClockSignal(), i_CE0=self.en, i_RST0=ResetSignal(allow_reset_less=True),
            i_SIGNEDA=Const(first_part.signed), i_SIGNEDB=Const(second_part.signed),
            i_SOURCEA=Const(0), i_SOURCEB=Const(0),
            **{f"i_A{k}": a[k] for k in range(18)},
            **{f"i_B{k}": b[k] for k in range(18)},
            **{f"i_C{k}": Const(0) for k in range(18)},
            **{f"o_P{k}": p[k] for k in range(36)},
        )
        return self._product_bits(p, a_part, b_part)

    def _sb_mac16(self, m: Module, name: str, a_part: _Part, b_part: _Part) -> Value:
        first, first_part, second, second_part = self._operands(a_part, b_part)
        reset = ResetSignal(allow_reset_less=True)
        product = Signal(32, name=f"{name}_o")
        zero = Const(0)
        # Every input is driven: Yosys's cell model without its port defaults (for Icarus) leaves the others x.
        m.submodules[name] = Instance(
            "SB_MAC16",
            p_A_REG=Const(1), p_B_REG=Const(1), p_TOP_8x8_MULT_REG=Const(1), p_BOT_8x8_MULT_REG=Const(1),
            p_PIPELINE_16x16_MULT_REG1=Const(1), p_PIPELINE_16x16_MULT_REG2=Const(1),
            p_TOPOUTPUT_SELECT=Const(3, 2), p_BOTOUTPUT_SELECT=Const(3, 2),
            p_A_SIGNED=Const(first_part.signed), p_B_SIGNED=Const(second_part.signed),
            i_CLK=ClockSignal(), i_CE=self.en,
            i_A=self._port(m, f"{name}_a", first, first_part, 16),
            i_B=self._port(m, f"{name}_b", second, second_part, 16),
            i_C=Const(0, 16), i_D=Const(0, 16),
            i_IRSTTOP=reset, i_IRSTBOT=reset, i_ORSTTOP=reset, i_ORSTBOT=reset,
            i_AHOLD=zero, i_BHOLD=zero, i_CHOLD=zero, i_DHOLD=zero, i_OHOLDTOP=zero, i_OHOLDBOT=zero,
            i_OLOADTOP=zero, i_OLOADBOT=zero, i_ADDSUBTOP=zero, i_ADDSUBBOT=zero,
            i_CI=zero, i_ACCUMCI=zero, i_SIGNEXTIN=zero,
            o_O=product,
        )
        return self._product_bits(product, a_part, b_part)

    def _dsp48e1(self, m: Module, name: str, a_part: _Part, b_part: _Part) -> Value:
        first, first_part, second, second_part = self._operands(a_part, b_part)
        a = Signal(first_part.shape, name=f"{name}_a")
        b = Signal(second_part.shape, name=f"{name}_b")
        shape = _range_shape(*_product_bounds(a_part, b_part))
        product = Signal(shape, name=f"{name}_m")
        output = Signal(shape, name=f"{name}_p")
        with m.If(self.en):
            m.d.sync += [a.eq(first), b.eq(second), product.eq(a * b), output.eq(product)]
        return output

    @staticmethod
    def _product_bits(bits: Value, a_part: _Part, b_part: _Part) -> Value:
        """The product of two parts from the low bits of a block's output."""
        product = bits[:a_part.width + b_part.width]
        return product.as_signed() if a_part.signed or b_part.signed else product
