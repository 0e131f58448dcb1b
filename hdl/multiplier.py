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

On ``xc7`` the products are summed in the DSP48E1 blocks themselves, behaviourally, with registers placed where
``synth_xilinx`` packs them into the blocks: each block adds its product to the previous block's sum shifted down to its
product's offset (``P = M + C``, or the ``PCIN`` cascade), so a chain of blocks needs no fabric adder. The chains are
as long as the latency of the tree form above allows (with ``fabric_register`` counted in it); the fabric adds only
what remains: the chains' sums and the addend's bits that do not fit the first block's ``C`` port.
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
from int8attn.hdl.pipeline import delay


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
XC7_PRODUCT_LATENCY = 2
"""Registers from the operands to a DSP48E1's post-adder: the operands' (``AREG``/``BREG``) and the product's
(``MREG``)."""
XC7_P_WIDTH = 48
"""Width of a DSP48E1's ``C`` port, post-adder and ``P`` register."""


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


@dataclass(frozen=True)
class _Chains:
    """How ``xc7`` sums its products: the blocks, in the order of their products' offsets, form chains of ``length``
    blocks (the last may be shorter) that add through their post-adders; the addend's ``cut`` low bits (all of it when
    it is that wide) enter the first block's ``C`` port and the rest, if any, joins the chains' sums in a tree of
    ``levels`` registered fabric adder levels."""

    length: int
    cut: int
    levels: int

    @property
    def latency(self) -> int:
        return XC7_PRODUCT_LATENCY + self.length + self.levels


_Layout = tuple[bool, tuple[_Part, ...], tuple[_Part, ...], _Plan | None, _Chains | None]
"""Whether ``b`` takes a block's first port, the parts of ``a`` and ``b``, the planned tree (with an addend, except on
``xc7``) and the chains (``xc7``)."""


def _addend_pieces(addend: _Span, cut: int) -> tuple[_Span | None, _Span | None]:
    """The addend's bits below ``cut`` (unsigned unless they are all of it) and those from it; ``None`` for none."""
    width = _range_shape(addend.low, addend.high).width
    if cut >= width:
        return addend, None
    if not cut:
        return None, addend
    return (_Span(addend.offset, 0, (1 << cut) - 1),
            _Span(addend.offset + cut, addend.low >> cut, addend.high >> cut))


def _chain_fits(chain: tuple[_Span, ...], addend: _Span | None) -> bool:
    """Whether ``C`` and every ``P`` of ``chain`` stay within :data:`XC7_P_WIDTH` bits, with ``addend`` on the first
    block's ``C`` port: ``P_0 = M_0 + C``, ``P_k = M_k + (P_{k−1} >> (offset_k − offset_{k−1}))``."""
    low = high = 0
    if addend is not None:
        shift = addend.offset - chain[0].offset
        low, high = addend.low << shift, addend.high << shift
        if _range_shape(low, high).width > XC7_P_WIDTH:
            return False
    previous = chain[0].offset
    for product in chain:
        shift = product.offset - previous
        low, high = product.low + (low >> shift), product.high + (high >> shift)
        if _range_shape(low, high).width > XC7_P_WIDTH:
            return False
        previous = product.offset
    return True


def _chains(products: tuple[_Span, ...], addend: _Span | None, budget: int) -> _Chains:
    """The longest chains (the fewest fabric adders) whose latency is within ``budget``, each with as many of the
    addend's bits on the first block's ``C`` port as fit; when none is, the chains of the lowest latency."""
    order = sorted(products, key=lambda span: span.offset)
    candidates = []
    for length in range(len(order), 0, -1):
        first = tuple(order[:length])
        terms = -(-len(order) // length)
        cut = 0
        if addend is not None:
            width = _range_shape(addend.low, addend.high).width
            cut = next((cut for cut in range(width, 0, -1)
                        if _chain_fits(first, _addend_pieces(addend, cut)[0])), 0)
            terms += cut < width
        candidates.append(_Chains(length, cut, ceil(log2(terms))))
    within = [chains for chains in candidates if chains.latency <= budget]
    return within[0] if within else min(candidates, key=lambda chains: chains.latency)


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
        return False, (), (), None, None
    first, second = PORTS[target]
    straight = first.split(a_shape), second.split(b_shape)
    crossed = second.split(a_shape), first.split(b_shape)
    swapped = len(crossed[0]) * len(crossed[1]) < len(straight[0]) * len(straight[1])
    a_parts, b_parts = (tuple(parts) for parts in (crossed if swapped else straight))
    products = tuple(_Span(a.offset + b.offset, *_product_bounds(a, b), dsp=not fabric_register)
                     for a in a_parts for b in b_parts)
    tree = None
    if addend is not None and len(products) <= MAX_PLANNED_PRODUCTS:
        tree = _plan(products, addend)
    elif addend is not None:
        low, high = _sum_bounds(a_shape, b_shape, addend)
        product_sum = _Span(0, low - (addend.low << addend.offset), high - (addend.high << addend.offset))
        tail = _plan((product_sum,), addend)
        tree = _Plan(ceil(log2(len(products))), tail.levels, tail.join, tail.split, tail.cost)
    if target != "xc7":
        return swapped, a_parts, b_parts, tree, None
    budget = _latency(target, (swapped, a_parts, b_parts, tree, None), fabric_register)
    return swapped, a_parts, b_parts, None, _chains(products, addend, budget)


def _adder_levels(layout: _Layout) -> int:
    _, a_parts, b_parts, tree, chains = layout
    if chains is not None:
        return chains.levels
    if tree is not None:
        return tree.head + len(tree.levels)
    blocks = len(a_parts) * len(b_parts)
    return ceil(log2(blocks)) if blocks else 0


def _latency(target: str, layout: _Layout, fabric_register: bool) -> int:
    """The latency of ``layout``; on ``xc7`` without its chains (``layout[4]`` ``None``), that of the adder tree
    the other vendor targets sum their products in, which bounds the chains'."""
    if target == "generic":
        return GENERIC_LATENCY
    if layout[4] is not None:
        return layout[4].latency
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
      17 bits), in chains of blocks that sum them in their post-adders (the module docstring), with registers on the
      parts (``AREG``/``BREG``, two of them in the later blocks of a chain), the product (``MREG``) and the sum
      (``PREG``) for ``synth_xilinx`` to pack into the block. ``a`` and ``b`` take the 25- and 18-bit ports in the
      order that needs fewer blocks.

    On ``ecp5`` and ``ice40`` the partial products (the DSP blocks' registered outputs) are summed in a tree with one
    registered adder level per halving; a single partial product is ``o`` itself. With an addend the tree is planned
    as the module docstring says; ``generic`` adds it to the product before the product register. On ``xc7`` the
    tree sums the chains' sums and the addend's bits beyond the first block's ``C`` port.

    ``fabric_register`` (``ecp5``, ``ice40``) registers each block's product once more in the fabric, a cycle more;
    see the module docstring. On ``xc7`` it only lengthens the latency the chains may take. ``generic`` ignores
    it.

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
        self._swapped, self._a_parts, self._b_parts, self._tree, self._chains = layout
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
        """Registers from the operands to ``o``: 1 for ``generic``; on ``ecp5`` and ``ice40`` 3 in the DSP blocks (4
        with ``fabric_register``) plus the adder levels; on ``xc7`` 2 before the blocks' post-adders, one per block of
        the longest chain, plus the adder levels, at most the others' latency with the same blocks."""
        return _latency(self.target, self._layout, self.fabric_register)

    @property
    def addend_latency(self) -> int:
        """Registers from the addend ``c`` to ``o`` (only with an addend): 1 for ``generic``; on ``ecp5`` and
        ``ice40`` the levels from the one it joins; on ``xc7`` the adder levels, plus the first chain's blocks when
        some of its bits enter the chain."""
        if self.addend_shape is None:
            raise AttributeError("a Multiplier without addend_shape has no addend_latency")
        if self._chains is not None:
            return self._chains.levels + (self._chains.length if self._chains.cut else 0)
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
        if self._chains is not None:
            m.d.comb += self.o.eq(self._chained_sum(m).value)
            return m
        product = {"ecp5": self._mult18x18d, "ice40": self._sb_mac16}[self.target]
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

    def _chained_sum(self, m: Module) -> _Term:
        """``xc7``: the chains' sums (the first with the addend's low bits), then the tree over them and the rest of
        the addend, which waits in registers for the chains when its low bits entered the first one."""
        pairs = sorted(((a_part, b_part) for a_part in self._a_parts for b_part in self._b_parts),
                       key=lambda pair: pair[0].offset + pair[1].offset)
        length = self._chains.length
        low, rest = (None, None) if self.addend_shape is None else self._addend_terms(self._chains.cut)
        terms = [self._chain(m, pairs[start:start + length], length, low if start == 0 else None)
                 for start in range(0, len(pairs), length)]
        if rest is not None:
            wait = length if low is not None else 0
            terms.append(_Term(delay(m, rest.value, wait, enable=self.en, name="addend_rest"), rest.offset,
                               rest.low, rest.high))
        return self._sum(m, terms)

    def _addend_terms(self, cut: int) -> tuple[_Term | None, _Term | None]:
        """``c``'s bits below ``cut`` and those from it, as :func:`_addend_pieces` splits its span."""
        low, rest = _addend_pieces(self._addend_span, cut)
        if rest is None:
            return _Term(self.c, low.offset, low.low, low.high), None
        if low is None:
            return None, _Term(self.c, rest.offset, rest.low, rest.high)
        return (_Term(self.c[:cut], low.offset, low.low, low.high),
                _Term(self.c.shift_right(cut), rest.offset, rest.low, rest.high))

    def _chain(self, m: Module, pairs: list[tuple[_Part, _Part]], length: int, addend: _Term | None) -> _Term:
        """The sum of the products of ``pairs`` (and ``addend``) through a chain of DSP48E1 post-adders, ready
        :data:`XC7_PRODUCT_LATENCY` ``+ length`` cycles after the operands: block ``k`` adds its product to the
        previous block's ``P`` shifted down to its product's offset (``C``, or ``PCIN`` when the shift is 0 or 17),
        and the bits shifted out wait in registers. A shorter chain takes its operands later. Every register is
        one that ``synth_xilinx`` packs into the block: the operands' last two (``AREG``/``BREG`` 2), the product
        (``MREG``) and the sum (``PREG``)."""
        base = pairs[0][0].offset + pairs[0][1].offset
        total_low = total_high = 0
        previous, previous_offset, below = None, base, []
        for position, (a_part, b_part) in enumerate(pairs):
            name = f"pp{self._a_parts.index(a_part)}{self._b_parts.index(b_part)}"
            first, _, second, _ = self._operands(a_part, b_part)
            wait = length - len(pairs) + position + 1
            a = delay(m, first, wait, enable=self.en, name=f"{name}_a")
            b = delay(m, second, wait, enable=self.en, name=f"{name}_b")
            product_low, product_high = _product_bounds(a_part, b_part)
            product = Signal(_range_shape(product_low, product_high), name=f"{name}_m")
            offset = a_part.offset + b_part.offset
            total_low += product_low << (offset - base)
            total_high += product_high << (offset - base)
            if previous is None:
                low, high, value = product_low, product_high, product
                if addend is not None:
                    shift = addend.offset - base
                    low, high = low + (addend.low << shift), high + (addend.high << shift)
                    total_low, total_high = total_low + (addend.low << shift), total_high + (addend.high << shift)
                    value = product + (addend.value << shift)
            else:
                shift = offset - previous_offset
                below.append(delay(m, previous[:shift], len(pairs) - position, enable=self.en, name=f"{name}_below"))
                low, high = product_low + (low >> shift), product_high + (high >> shift)
                value = product + previous.shift_right(shift)
            p = Signal(_range_shape(low, high), name=f"{name}_p")
            with m.If(self.en):
                m.d.sync += [product.eq(a * b), p.eq(value)]
            previous, previous_offset = p, offset
        total = Cat(*below, previous)
        return _Term(total.as_signed() if previous.shape().signed else total, base, total_low, total_high)

    @staticmethod
    def _product_bits(bits: Value, a_part: _Part, b_part: _Part) -> Value:
        """The product of two parts from the low bits of a block's output."""
        product = bits[:a_part.width + b_part.width]
        return product.as_signed() if a_part.signed or b_part.signed else product
