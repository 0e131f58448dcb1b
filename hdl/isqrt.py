"""The integer square root of a stream of unsigned values: non-restoring, one root bit per step, pipelined or
iterative."""

from amaranth import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from int8attn.hdl.pipeline import check_target, delay

MAX_RADICAND_BITS = 64


def _step(remainder: Value, root: Value, pair: Value, width: int) -> tuple[Value, Value]:
    """One non-restoring step on ``width``-bit two's-complement remainders: the remainder takes the next pair of
    radicand bits (``4r + pair``), then subtracts ``4·root + 1`` when it is not negative, else adds ``4·root + 3``;
    the root's new bit is the new remainder's sign, inverted. Returns the new remainder and the bit.

    The trial ``4·root + 1 + 2·[r < 0]`` is ``root`` with two low bits, and the remainder's sign picks it or its
    complement (with the carry in ``[r ≥ 0]``) inside the adder's bit functions, so a step is a carry chain whose
    inputs come from registers, and no multiplexer follows it. The arithmetic is modulo ``2^width``, which holds
    every remainder of the step."""
    negative = remainder[-1] if len(remainder) else Const(0, 1)
    extended = Cat(pair, remainder, Const(0, width))[:width]
    trial = Cat(Const(1, 1), negative, root, Const(0, width))[:width]
    result = (extended + Mux(negative, trial, ~trial) + ~negative)[:width]
    return result, ~result[-1]


class IntegerSqrt(wiring.Component):
    """``⌊√(x · 2^prescale_bits)⌋`` of each ``x`` by the non-restoring digit-by-digit method, a root bit per step.

    The radicand ``X = x · 2^prescale_bits`` is taken two bits at a time from the top: for ``R = root_bits`` steps,
    step ``s`` brings pair ``R − s`` of ``X`` into the remainder (``r = 4r + pair``), subtracts ``4·root + 1`` from it
    when it is not negative and adds ``4·root + 3`` when it is, and appends a 1 to the root when the result is not
    negative (else a 0). After step ``s`` the root is ``⌊√(X >> 2(R − s))⌋`` and the remainder ``(X >> 2(R − s))``
    less ``root²`` (not negative) or ``(root + 1)²`` (negative), so ``−2^(s+1) ≤ r < 2^(s+1)``: ``s + 2`` bits
    (:func:`~int8attn.golden.layernorm_unit.nonrestoring_isqrt` is the same arithmetic on integers). A restoring step
    would need a multiplexer after its subtraction, driven by the subtraction's sign; here the sign of the remainder
    held in a register picks the operation (:func:`_step`). The pairs below ``prescale_bits`` are zeros, so no
    register holds them.

    The pipelined form has a register stage per step, each as narrow as its root and remainder, beside the bits of
    ``x`` still to come; the last stage's root is ``o``. The iterative form holds the remainder, the root and the
    radicand's pairs in a shift register and takes a step per cycle after the load.

    Parameters
    ----------
    width : int
        Width of ``x``; ``width + prescale_bits`` at most 64.
    prescale_bits : int
        Zero bits appended to ``x``.
    pipelined : bool
        ``True``: a register stage per step, a value every cycle. ``False``: one step reused, a value every
        :attr:`initiation_interval` cycles.
    target : str
        FPGA family (:data:`~int8attn.golden.params.TARGETS`); the unit uses no vendor primitive.

    Members
    -------
    i : In(stream.Signature(unsigned(width)))
        Values. Pipelined: ``ready`` unless ``o`` holds a root that is not taken this cycle. Iterative: while idle,
        or while ``o`` is taken.
    o : Out(stream.Signature(unsigned(root_bits)))
        Roots in order, :attr:`latency` cycles after their values when not stalled; held while not taken.
    """

    def __init__(self, width: int, prescale_bits: int = 0, *, pipelined: bool = True, target: str = "generic"):
        if width < 1 or prescale_bits < 0 or width + prescale_bits > MAX_RADICAND_BITS:
            raise ValueError(f"width ≥ 1 and prescale_bits ≥ 0 must total at most {MAX_RADICAND_BITS} bits, not "
                             f"{width} and {prescale_bits}")
        self.width = width
        self.prescale_bits = prescale_bits
        self.target = check_target(target)
        self._pipelined = pipelined
        super().__init__({"i": In(stream.Signature(unsigned(width))),
                          "o": Out(stream.Signature(unsigned(self.root_bits)))})

    @staticmethod
    def steps(width: int, prescale_bits: int = 0) -> int:
        """Root bits of a ``width``-bit value with ``prescale_bits`` zeros appended: half the radicand's bits,
        rounded up."""
        return (width + prescale_bits + 1) // 2

    @staticmethod
    def iterative_interval(width: int, prescale_bits: int = 0) -> int:
        """:attr:`initiation_interval` of the iterative form, before building one: the load and a cycle a step."""
        return IntegerSqrt.steps(width, prescale_bits) + 1

    @property
    def root_bits(self) -> int:
        return self.steps(self.width, self.prescale_bits)

    @property
    def pipelined(self) -> bool:
        return self._pipelined

    @property
    def latency(self) -> int:
        """Cycles from an accepted value to its root on ``o``: pipelined, a step each; iterative,
        :meth:`iterative_interval`."""
        return self.root_bits if self._pipelined else self.iterative_interval(self.width, self.prescale_bits)

    @property
    def initiation_interval(self) -> int:
        """Cycles between accepted values at full rate."""
        return 1 if self._pipelined else self.latency

    def _pair(self, value: Value, pair: int) -> Value:
        """Bits ``2·pair`` and ``2·pair + 1`` of the radicand, from the low bits of ``x`` in ``value``; zeros below
        the prescale."""
        bits = [value[k - self.prescale_bits] if 0 <= k - self.prescale_bits < len(value) else Const(0, 1)
                for k in (2 * pair, 2 * pair + 1)]
        return Cat(*bits)

    def elaborate(self, platform):
        m = Module()
        if self._pipelined:
            self._elaborate_pipelined(m)
        else:
            self._elaborate_iterative(m)
        return m

    def _elaborate_pipelined(self, m: Module) -> None:
        enable = Signal(name="advance")
        m.d.comb += [enable.eq(~self.o.valid | self.o.ready), self.i.ready.eq(enable)]
        steps = self.root_bits
        remainder, root, rest = Const(0, 0), Const(0, 0), self.i.payload
        for step in range(1, steps + 1):
            pair = steps - step
            new_remainder, bit = _step(remainder, root, self._pair(rest, pair), step + 2)
            if step == steps:
                with m.If(enable):
                    m.d.sync += self.o.payload.eq(Cat(bit, root))
                break
            kept = max(0, min(2 * pair - self.prescale_bits, len(rest)))
            next_remainder = Signal(step + 2, name=f"remainder{step}")
            next_root = Signal(step, name=f"root{step}")
            with m.If(enable):
                m.d.sync += [next_remainder.eq(new_remainder), next_root.eq(Cat(bit, root))]
            remainder, root = next_remainder, next_root
            if kept:
                next_rest = Signal(kept, name=f"radicand{step}")
                with m.If(enable):
                    m.d.sync += next_rest.eq(rest[:kept])
                rest = next_rest
            else:
                rest = Const(0, 0)
        with m.If(enable):
            m.d.sync += self.o.valid.eq(delay(m, self.i.valid, steps - 1, enable=enable, name="valid"))

    def _elaborate_iterative(self, m: Module) -> None:
        steps = self.root_bits
        pairs = Signal(2 * steps, name="radicand_pairs", reset_less=True)
        remainder = Signal(steps + 2, name="remainder", reset_less=True)
        root = Signal(steps, name="root", reset_less=True)
        remaining = Signal(range(steps + 1), name="remaining_steps")
        busy = Signal(name="busy")
        m.d.comb += [self.o.payload.eq(root), self.i.ready.eq(~busy | (self.o.valid & self.o.ready))]
        new_remainder, bit = _step(remainder, root, pairs[-2:], steps + 2)
        with m.If(remaining != 0):
            m.d.sync += [remainder.eq(new_remainder), root.eq(Cat(bit, root)), pairs.eq(pairs << 2),
                         remaining.eq(remaining - 1)]
        with m.If(remaining == 1):
            m.d.sync += self.o.valid.eq(1)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [busy.eq(0), self.o.valid.eq(0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [busy.eq(1), pairs.eq(Cat(Const(0, self.prescale_bits), self.i.payload)), remainder.eq(0),
                         root.eq(0), remaining.eq(steps)]
