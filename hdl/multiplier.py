"""A pipelined exact multiplier built from the DSP blocks of each FPGA family.

Yosys maps a plain ``*`` to DSP blocks, but on ECP5 and iCE40 it leaves their internal registers unused: the
product then crosses the DSP block and the fabric in one cycle (≈85 MHz for 32×32 on an ECP5-85, speed 6), while a
``MULT18X18D`` with its own input, pipeline and output registers runs above 400 MHz. :class:`Multiplier` therefore
instantiates its target's blocks with their registers, splits operands wider than a block's ports into parts (an
unsigned low part per full port, then a top part of the operand's signedness), multiplies every pair of parts in
its own block and sums the partial products in an adder tree with one register per level. Each adder spans only
the bits where its terms overlap; the bits below pass through.

An optional addend joins the tree (``o = a·b + (c << addend_shift)``). Where it joins, and whether it is split in two
pieces, is chosen by a small search over the ways of grouping the terms into registered levels (pairs, or a pair
with a third term that it concatenates with freely): the fewest levels whose carry chains stay within
:data:`MAX_CHAIN` bits (an adder fed straight by a DSP block counts :data:`DSP_CHAIN_PENALTY` bits more, for the
block's clock-to-out and its route), then the shortest longest chain, then the latest join, so that the addend may
arrive after the operands. Wider products than :data:`MAX_PLANNED_PRODUCTS` blocks are first summed by the plain
tree.

With ``fabric_register`` each block's registered product is registered once more in fabric flip-flops, so no adder
shares a cycle with a block's clock-to-out: in a large design the route from a DSP block to its adder alone costs
2–3 ns on an ECP5. It costs a cycle. The block keeps all its registers: nextpnr-ecp5 times a ``MULT18X18D`` at its
ports only, whatever its pipeline register setting, so a block without its pipeline register would hide an untimed
path from its input to its output register.
"""

from dataclasses import dataclass
from functools import cache
from itertools import combinations
from math import ceil, log, log2

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
"""Registers from the operands to a DSP block's product on every vendor target: inputs, pipeline (partial products)
and output in the block (``fabric_register`` adds one in the fabric)."""
GENERIC_LATENCY = 1
"""Registers of the ``generic`` target: the product."""
MAX_CHAIN = 40
"""Longest carry chain, in bits, of one level of an adder tree with an addend: its logic takes about 2.4 ns on an
ECP5-85, speed 6, which leaves about 2 ns for the routes at 220–240 MHz."""
DSP_CHAIN_PENALTY = 14
"""Bits a carry chain fed straight by a DSP block's output register counts for beyond its length."""


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


@dataclass(frozen=True)
class _Span:
    """The bits a term of the adder tree may occupy: values ``low..high`` at ``offset``; ``dsp`` for a DSP block's
    output, which no register separates from the first level."""

    offset: int
    low: int
    high: int
    dsp: bool = False

    @property
    def top(self) -> int:
        return self.offset + _range_shape(self.low, self.high).width


def _span(term: _Term) -> _Span:
    return _Span(term.offset, term.low, term.high)


def _merge(x: _Span, y: _Span) -> tuple[_Span, int]:
    """The span of ``x + y`` and the length of its carry chain (0 when ``y`` is a mere concatenation above ``x``)."""
    if x.offset > y.offset:
        x, y = y, x
    k = y.offset - x.offset
    total = _Span(x.offset, x.low + (y.low << k), x.high + (y.high << k))
    free = k > 0 and x.low >= 0 and x.top <= y.offset
    return total, 0 if free else total.top - y.offset


@cache
def _groups(items: tuple[_Span, ...]) -> list[tuple[tuple[int, ...], ...]]:
    """Every partition of ``items`` into singles, pairs and triples; a triple must hold a pair that concatenates
    freely (joined first)."""
    if not items:
        return [()]
    first, rest = 0, tuple(range(1, len(items)))
    partitions = []
    for size in (1, 2, 3):
        for others in combinations(rest, size - 1):
            group = (first, *others)
            if size == 3 and not any(_merge(items[i], items[j])[1] == 0 for i, j in combinations(group, 2)):
                continue
            remaining = tuple(i for i in rest if i not in others)
            for tail in _groups(tuple(items[i] for i in remaining)):
                partitions.append((group, *(tuple(remaining[i] for i in g) for g in tail)))
    return partitions


def _group_sum(items: tuple[_Span, ...], group: tuple[int, ...]) -> tuple[_Span, int]:
    """The span of a group's sum and its cost: its longest chain, plus the DSP penalty if a DSP output feeds it."""
    spans = [items[i] for i in group]
    if len(spans) == 3:
        i, j = next((i, j) for i, j in combinations(range(3), 2) if _merge(spans[i], spans[j])[1] == 0)
        spans = [_merge(spans[i], spans[j])[0], spans[3 - i - j]]
    total, chain = _merge(*spans) if len(spans) == 2 else (spans[0], 0)
    dsp = any(items[i].dsp for i in group)
    return _Span(total.offset, total.low, total.high), chain + (DSP_CHAIN_PENALTY if dsp and chain else 0)


MAX_PLANNED_PRODUCTS = 4
"""Partial products the search groups with the addend; more are first summed by the plain tree."""
EXTRA_LEVELS = 2
"""Levels beyond the fewest that the search may add to keep chains within :data:`MAX_CHAIN`."""


@dataclass(frozen=True)
class _Plan:
    """How the tree sums its terms: ``head`` levels of the plain tree over the partial products, then per planned level
    the groups of that level's items (their indices); the items of a level are the previous level's sums, then the
    addend pieces that join there (``join`` counts the planned levels from 1). ``cost`` is the longest chain."""

    head: int
    levels: tuple[tuple[tuple[int, ...], ...], ...]
    join: int
    split: int | None
    cost: int


@cache
def _plan(products: tuple[_Span, ...], addend: _Span) -> _Plan:
    """The grouping of ``products`` and ``addend`` (whole, or in two pieces cut where a product starts or ends) into
    registered levels, as the module docstring orders the candidates; when no grouping keeps every chain within
    :data:`MAX_CHAIN`, the one with the shortest longest chain."""
    cuts = sorted({edge for span in products for edge in (span.offset, span.top) if addend.offset < edge < addend.top})
    pieces_by_split = {None: (addend,)}
    for cut in cuts:
        k = cut - addend.offset
        pieces_by_split[cut] = (_Span(addend.offset, 0, (1 << k) - 1), _Span(cut, addend.low >> k, addend.high >> k))
    fewest = max(ceil(log(len(products) + 1, 3)), 1)
    candidates = []
    for levels in range(fewest, fewest + EXTRA_LEVELS + 1):
        for split, pieces in pieces_by_split.items():
            for join in range(levels, 0, -1):
                found = _search(products, pieces, join, 1, levels)
                if found is not None:
                    candidates.append(_Plan(0, found[1], join, split, found[0]))
    within = [plan for plan in candidates if plan.cost <= MAX_CHAIN]
    if within:
        return min(within, key=lambda plan: (len(plan.levels), plan.cost, -plan.join))
    return min(candidates, key=lambda plan: (plan.cost, len(plan.levels), -plan.join))


@cache
def _search(items: tuple[_Span, ...], pieces: tuple[_Span, ...], join: int, level: int,
            levels: int) -> tuple[int, tuple] | None:
    """The cheapest ``(cost, levels)`` that sums ``items`` (with ``pieces`` joining at level ``join``) into one term
    by the end of level ``levels``; ``None`` if none does."""
    if level == join:
        items, pieces = items + pieces, ()
    if level > levels:
        return (0, ()) if len(items) == 1 and not pieces else None
    if len(items) + len(pieces) > 3 ** (levels - level + 1):
        return None
    best = None
    for partition in _groups(items):
        sums = [_group_sum(items, group) for group in partition]
        cost = max(group_cost for _, group_cost in sums)
        if best is not None and cost >= best[0]:
            continue
        rest = _search(tuple(span for span, _ in sums), pieces, join, level + 1, levels)
        if rest is not None and (best is None or max(cost, rest[0]) < best[0]):
            best = (max(cost, rest[0]), (partition, *rest[1]))
    return best


_Layout = tuple[bool, tuple[_Part, ...], tuple[_Part, ...], _Plan | None]
"""Whether ``b`` takes a block's first port, the parts of ``a`` and ``b``, and the planned tree (with an addend)."""


def _addend_span(addend_shape: Shape, addend_shift: int) -> _Span:
    low, high = shape_bounds(addend_shape)
    return _Span(addend_shift, low, high)


def _sum_bounds(a_shape: Shape, b_shape: Shape, addend: _Span) -> tuple[int, int]:
    corners = [x * y for x in shape_bounds(a_shape) for y in shape_bounds(b_shape)]
    return min(corners) + (addend.low << addend.offset), max(corners) + (addend.high << addend.offset)


def _checked_layout(a_shape: ShapeLike, b_shape: ShapeLike, target: str, addend_shape: ShapeLike | None,
                    addend_shift: int, fabric_register: bool) -> tuple[Shape, Shape, str, Shape | None, int, _Layout]:
    """The checked arguments of a :class:`Multiplier` and its layout."""
    a_shape = _check_operand("a_shape", a_shape)
    b_shape = _check_operand("b_shape", b_shape)
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    if addend_shape is not None:
        addend_shape = Shape.cast(addend_shape)
        if addend_shape.width < 1:
            raise ValueError(f"addend_shape must be at least 1 bit wide, not {addend_shape!r}")
    if addend_shift < 0:
        raise ValueError(f"addend_shift must be ≥ 0, not {addend_shift}")
    addend = None if addend_shape is None else _addend_span(addend_shape, addend_shift)
    layout = _layout(a_shape, b_shape, target, addend, fabric_register)
    return a_shape, b_shape, target, addend_shape, addend_shift, layout


@cache
def _layout(a_shape: Shape, b_shape: Shape, target: str, addend: _Span | None, fabric_register: bool) -> _Layout:
    """How a product is split over the target's DSP blocks and, with an addend, how its tree is planned."""
    if target == "generic":
        return False, (), (), None
    first, second = PORTS[target]
    straight = first.split(a_shape), second.split(b_shape)
    crossed = second.split(a_shape), first.split(b_shape)
    swapped = len(crossed[0]) * len(crossed[1]) < len(straight[0]) * len(straight[1])
    a_parts, b_parts = (tuple(parts) for parts in (crossed if swapped else straight))
    if addend is None:
        return swapped, a_parts, b_parts, None
    products = tuple(_Span(a.offset + b.offset, *_product_bounds(a, b), dsp=not fabric_register)
                     for a in a_parts for b in b_parts)
    if len(products) <= MAX_PLANNED_PRODUCTS:
        return swapped, a_parts, b_parts, _plan(products, addend)
    low, high = _sum_bounds(a_shape, b_shape, addend)
    product_sum = _Span(0, low - (addend.low << addend.offset), high - (addend.high << addend.offset))
    tail = _plan((product_sum,), addend)
    return swapped, a_parts, b_parts, _Plan(ceil(log2(len(products))), tail.levels, tail.join, tail.split, tail.cost)


def _adder_levels(layout: _Layout) -> int:
    _, a_parts, b_parts, tree = layout
    if tree is not None:
        return tree.head + len(tree.levels)
    blocks = len(a_parts) * len(b_parts)
    return ceil(log2(blocks)) if blocks else 0


def _latency(target: str, layout: _Layout, fabric_register: bool) -> int:
    if target == "generic":
        return GENERIC_LATENCY
    return DSP_LATENCY + fabric_register + _adder_levels(layout)


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
    registered adder level per halving; a single partial product is ``o`` itself. With an addend the tree is planned
    as the module docstring says; ``generic`` adds it to the product before the product register.

    ``fabric_register`` (vendor targets) registers each block's product once more in the fabric, a cycle more; see
    the module docstring. ``generic`` ignores it.

    Parameters
    ----------
    a_shape, b_shape : ShapeLike
        Operand shapes, 1..36 bits, signed or unsigned.
    target : str
        One of :data:`TARGETS`.
    addend_shape : ShapeLike or None
        Shape of the addend ``c``; ``None`` (the default) for a plain product.
    addend_shift : int
        Bits ``c`` is shifted left by before it is added, ≥ 0.
    fabric_register : bool
        Register the blocks' products again in the fabric.

    Attributes
    ----------
    a_shape, b_shape : Shape
    addend_shape : Shape or None
    addend_shift : int
    fabric_register : bool
    target : str
    product_shape : Shape
        Shape of ``o``: without an addend ``a_shape.width + b_shape.width`` bits, signed when either operand is;
        with one, the narrowest shape of every ``a·b + (c << addend_shift)``.

    Members
    -------
    en : In(1, init=1)
        Clock enable of the whole pipeline: while it is low every register holds, those inside DSP blocks too.
    a : In(a_shape)
        First operand.
    b : In(b_shape)
        Second operand.
    c : In(addend_shape)
        The addend, only with ``addend_shape``: taken :attr:`addend_latency` enabled cycles before ``o``, that is
        ``latency − addend_latency`` enabled cycles after its ``a`` and ``b``.
    o : Out(product_shape)
        ``a·b (+ c << addend_shift)``, :attr:`latency` enabled cycles after ``a`` and ``b``.
    """

    def __init__(self, a_shape: ShapeLike, b_shape: ShapeLike, target: str = "generic", *,
                 addend_shape: ShapeLike | None = None, addend_shift: int = 0, fabric_register: bool = False):
        self.a_shape, self.b_shape, self.target, self.addend_shape, self.addend_shift, layout = _checked_layout(
            a_shape, b_shape, target, addend_shape, addend_shift, fabric_register)
        self.fabric_register = fabric_register
        self._layout = layout
        self._swapped, self._a_parts, self._b_parts, self._tree = layout
        members = {"en": In(1, init=1), "a": In(self.a_shape), "b": In(self.b_shape)}
        if self.addend_shape is None:
            width = self.a_shape.width + self.b_shape.width
            self.product_shape = signed(width) if self.a_shape.signed or self.b_shape.signed else unsigned(width)
        else:
            self.product_shape = _range_shape(*_sum_bounds(self.a_shape, self.b_shape, self._addend_span))
            members["c"] = In(self.addend_shape)
        super().__init__({**members, "o": Out(self.product_shape)})

    @staticmethod
    def latency_of(a_shape: ShapeLike, b_shape: ShapeLike, target: str = "generic", *,
                   addend_shape: ShapeLike | None = None, addend_shift: int = 0,
                   fabric_register: bool = False) -> int:
        """The :attr:`latency` of the Multiplier these arguments build, without building it."""
        *_, layout = _checked_layout(a_shape, b_shape, target, addend_shape, addend_shift, fabric_register)
        return _latency(target, layout, fabric_register)

    @property
    def _addend_span(self) -> _Span:
        return _addend_span(self.addend_shape, self.addend_shift)

    @property
    def dsp_blocks(self) -> int:
        """DSP blocks of the target (``MULT18X18D``, ``SB_MAC16`` or ``DSP48E1``) used; 0 for ``generic``."""
        return len(self._a_parts) * len(self._b_parts)

    @property
    def adder_levels(self) -> int:
        """Registered adder levels summing the partial products (and the addend)."""
        return _adder_levels(self._layout)

    @property
    def latency(self) -> int:
        """Registers from the operands to ``o``: 1 for ``generic``; 3 in the DSP blocks (4 with ``fabric_register``)
        plus the adder levels."""
        return _latency(self.target, self._layout, self.fabric_register)

    @property
    def addend_latency(self) -> int:
        """Registers from the addend ``c`` to ``o`` (only with an addend): 1 for ``generic``; on the vendor targets
        the levels from the one it joins."""
        if self.addend_shape is None:
            raise AttributeError("a Multiplier without addend_shape has no addend_latency")
        if self._tree is None:
            return GENERIC_LATENCY
        return len(self._tree.levels) - self._tree.join + 1

    def elaborate(self, platform):
        m = Module()
        if self.target == "generic":
            total = self.a * self.b
            if self.addend_shape is not None:
                total = total + (self.c << self.addend_shift)
            with m.If(self.en):
                m.d.sync += self.o.eq(total)
            return m
        product = {"ecp5": self._mult18x18d, "ice40": self._sb_mac16, "xc7": self._dsp48e1}[self.target]
        terms = []
        for i, a_part in enumerate(self._a_parts):
            for j, b_part in enumerate(self._b_parts):
                value = product(m, f"pp{i}{j}", a_part, b_part)
                if self.fabric_register:
                    value = self._register_value(m, value, f"pp{i}{j}_q")
                terms.append(_Term(value, a_part.offset + b_part.offset, *_product_bounds(a_part, b_part)))
        total = self._sum(m, terms) if self._tree is None else self._planned_sum(m, terms)
        m.d.comb += self.o.eq(total.value)
        return m

    def _addend_pieces(self) -> list[_Term]:
        """``c`` as the plan takes it: whole, or its bits below the plan's split and those from it."""
        addend = self._addend_span
        if self._tree.split is None:
            return [_Term(self.c, addend.offset, addend.low, addend.high)]
        k = self._tree.split - addend.offset
        return [_Term(self.c[:k], addend.offset, 0, (1 << k) - 1),
                _Term(self.c.shift_right(k), self._tree.split, addend.low >> k, addend.high >> k)]

    def _planned_sum(self, m: Module, terms: list[_Term]) -> _Term:
        """The sum of the partial products and the addend pieces, level by level as the plan groups them; a triple
        joins its freely concatenated pair first."""
        if self._tree.head:
            terms = [self._sum(m, terms)]
        for level, partition in enumerate(self._tree.levels, start=1):
            if level == self._tree.join:
                terms = terms + self._addend_pieces()
            sums = []
            for group in partition:
                members = [terms[i] for i in group]
                if len(members) == 3:
                    i, j = next((i, j) for i, j in combinations(range(3), 2)
                                if _merge(_span(members[i]), _span(members[j]))[1] == 0)
                    members = [_add(members[i], members[j]), members[3 - i - j]]
                total = _add(*members) if len(members) == 2 else members[0]
                sums.append(self._register(m, total, f"sum{self._tree.head + level}_{len(sums)}"))
            terms = sums
        return terms[0]

    def _register_value(self, m: Module, value: Value, name: str) -> Signal:
        register = Signal(value.shape(), name=name)
        with m.If(self.en):
            m.d.sync += register.eq(value)
        return register

    def _register(self, m: Module, term: _Term, name: str) -> _Term:
        register = Signal(term.shape, name=name)
        with m.If(self.en):
            m.d.sync += register.eq(term.value)
        return _Term(register, term.offset, term.low, term.high)

    def _sum(self, m: Module, terms: list[_Term]) -> _Term:
        """The sum of ``terms``: each level pairs the term of the lowest offset with that of the highest (often a
        mere concatenation), the second lowest with the second highest, and so on, and registers the sums and an
        unpaired term."""
        for level in range(1, ceil(log2(len(terms))) + 1):
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
            p_REG_INPUTA_CLK="CLK0", p_REG_INPUTB_CLK="CLK0", p_REG_OUTPUT_CLK="CLK0",
            p_REG_PIPELINE_CLK="CLK0",
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
        output = Signal(shape, name=f"{name}_p")
        with m.If(self.en):
            m.d.sync += [a.eq(first), b.eq(second)]
        product = Signal(shape, name=f"{name}_m")
        with m.If(self.en):
            m.d.sync += [product.eq(a * b), output.eq(product)]
        return output

    @staticmethod
    def _product_bits(bits: Value, a_part: _Part, b_part: _Part) -> Value:
        """The product of two parts from the low bits of a block's output."""
        product = bits[:a_part.width + b_part.width]
        return product.as_signed() if a_part.signed or b_part.signed else product
