"""Numerator and output stages of the softmax surrogates (modes ``hccs``, ``base2`` and ``poly``).

The softmax top reads a numerator stage through the two ports of :class:`~int8attn.hdl.exp_rom.ExpRom` (``sum`` for
the accumulator's terms, ``out`` for the final stage's numerators) and writes its outputs through a final stage with
the members of :class:`~int8attn.hdl.final_mac.FinalMac`. The surrogates need no ROM and no rounding:

* :class:`ClippedLinearScore`, HCCS's score ``B − S·min(d, Dmax)`` (and poly's of degree 1, ``b_q + δ_q − min(d, b_q)``,
  for ``b_q ≤ 127``);
* :class:`Base2Terms`, ITA's base-2 terms ``256 >> shift(d)`` and the shifts themselves;
* :class:`ScaleMac`, ``min(score · inv / 2^F, max)`` per lane (HCCS and poly);
* :class:`ShiftOut`, ``inv >> shift(d)`` per lane (base2).

A distance ``d`` is compared with constants only; :func:`_above` does it with LUT logic rather than the carry chain
Yosys would map ``>`` to.
"""

from collections.abc import Sequence

from amaranth import Const, Module, Mux, Shape, Signal, Value, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from int8attn.golden.base2 import MAX_SHIFT, ONE
from int8attn.golden.hccs import B_RANGE, DMAX_RANGE, OUTPUT_BITS, S_RANGE
from int8attn.hdl.exp_rom import DIFF_BITS, ExpRomPort
from int8attn.hdl.multiplier import MAX_WIDTH, Multiplier
from int8attn.hdl.pipeline import check_target, delay
from int8attn.hdl.reciprocal import OR_GROUP, staged_any
from int8attn.hdl.streams import LaneBeat

SHIFT_BITS = MAX_SHIFT.bit_length()
"""Width of a base-2 shift, 0..9."""
TERM_BITS = ONE.bit_length()
"""Width of a base-2 term, ``256 >> shift``."""
CODE_BITS = 8
"""Width of a base-2 output code (uint8)."""
FINE_SHIFT_BITS = 2
"""Low bits of a base-2 shift that :class:`ShiftOut`'s second register applies."""
FINE_SHIFT = (1 << FINE_SHIFT_BITS) - 1
"""The largest shift the second register applies."""
FINAL_OR_BITS = OR_GROUP - 1
"""Saturation flags the output register of :class:`ScaleMac` ORs with each code bit in one LUT4."""


def _above(value: Value, bound: int) -> Value:
    """``value > bound`` for an unsigned ``value`` and a constant ``bound ≥ 0``, as an AND/OR chain over the bits
    from the lowest up, which synthesis maps to LUTs (a comparison becomes a carry chain)."""
    result = Const(0, 1)
    if bound >= 1 << len(value):
        return result
    for bit in range(len(value)):
        result = value[bit] & result if bound >> bit & 1 else value[bit] | result
    return result


class _DistanceStage(wiring.Component):
    """Two read ports like :class:`~int8attn.hdl.exp_rom.ExpRom`'s, each lane a two-register pipeline: a reduction
    of the distance (:meth:`_reduce`), then the port's value of it (:meth:`_value`).

    Members
    -------
    sum : Out(ExpRomPort(lanes, sum_width))
        Read port of the accumulator terms.
    out : Out(ExpRomPort(lanes, out_width))
        Read port of the numerators.
    """

    LATENCY = 2
    sum_zero_bits = 0
    """Zero low bits the ``sum`` port leaves out: none (the attribute :class:`ExpRom` has)."""
    out_zero_bits = 0
    """Zero low bits the ``out`` port leaves out: none."""

    def __init__(self, lanes: int, sum_width: int, out_width: int, reduced_width: int, target: str):
        if lanes < 1:
            raise ValueError(f"lanes must be at least 1, not {lanes}")
        self.lanes = lanes
        self.target = check_target(target)
        self.sum_width = sum_width
        self.out_width = out_width
        self._reduced_width = reduced_width
        super().__init__({"sum": Out(ExpRomPort(lanes, sum_width)), "out": Out(ExpRomPort(lanes, out_width))})

    @property
    def latency(self) -> int:
        """Enabled cycles from ``addr`` to ``data`` on either port: :data:`LATENCY`."""
        return self.LATENCY

    def _reduce(self, distance: Value) -> Value:
        raise NotImplementedError

    def _value(self, port: str, reduced: Value) -> Value:
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        for name, port in (("sum", self.sum), ("out", self.out)):
            for lane in range(self.lanes):
                reduced = Signal(self._reduced_width, name=f"{name}_reduced{lane}")
                with m.If(port.en):
                    m.d.sync += [reduced.eq(self._reduce(port.addr[lane])),
                                 port.data[lane].eq(self._value(name, reduced))]
        return m


class ClippedLinearScore(_DistanceStage):
    """HCCS's score of a distance ``d = max − x``: ``b − s·min(d, dmax)`` on both ports, without a ROM.

    The first register holds ``c = min(d, dmax)`` (the comparison with ``dmax`` is LUT logic, :func:`_above`), the
    second the score, a function of the ``dmax.bit_length()`` bits of ``c`` that synthesis maps to LUTs (no
    multiplier and no adder: one LUT6 per score bit for ``dmax < 64``). Score bits that are 0 for every ``c`` are
    constant registers, which synthesis removes.

    Parameters
    ----------
    lanes : int
        Elements per beat.
    b : int
        Score of the row maximum, 0..32767.
    s : int
        Slope, 0..127.
    dmax : int
        Clip distance, 0..127; ``b − s·dmax ≥ 0``.
    target : str
        One of :data:`~int8attn.golden.params.TARGETS` (the stage is plain logic on all of them).

    Attributes
    ----------
    sum_width, out_width : int
        Width of the scores, ``b.bit_length()`` (at least 1).
    sum_zero_bits, out_zero_bits : int
        0: the ports give whole scores.

    Members
    -------
    sum, out : Out(ExpRomPort(lanes, sum_width))
        Two independent read ports: ``data`` is the score of ``addr``, :attr:`latency` enabled cycles later.
    """

    def __init__(self, lanes: int, b: int, s: int, dmax: int, target: str = "generic"):
        for name, value, (low, high) in (("b", b, B_RANGE), ("s", s, S_RANGE), ("dmax", dmax, DMAX_RANGE)):
            if not low <= value <= high:
                raise ValueError(f"{name} must be in {low}..{high}, not {value}")
        if b - s * dmax < 0:
            raise ValueError(f"b - s*dmax must be at least 0, not {b} - {s}*{dmax} = {b - s * dmax}")
        self.b, self.s, self.dmax = b, s, dmax
        width = max(b.bit_length(), 1)
        super().__init__(lanes, width, width, max(dmax.bit_length(), 1), target)

    def _reduce(self, distance: Value) -> Value:
        return Mux(_above(distance, self.dmax), self.dmax, distance[:self._reduced_width])

    def _value(self, port: str, reduced: Value) -> Value:
        entries = range(1 << self._reduced_width)
        table = sum((self.b - self.s * min(c, self.dmax)) << (self.sum_width * c) for c in entries)
        return Const(table, self.sum_width * len(entries)).word_select(reduced, self.sum_width)


class Base2Terms(_DistanceStage):
    """A base-2 exponent of a distance ``d`` from a non-decreasing table, ``shift(d)`` in 0..9: ITA's
    ``min((d + half) >> grid_shift, 9)`` with ``half = 2^grid_shift >> 1``
    (:func:`~int8attn.golden.base2.exponent_shift`, capped where every term is 0), or that of requantized distances
    (:attr:`Base2Model.shift_table <int8attn.golden.surrogates.Base2Model.shift_table>`).

    The first register holds ``shift(d)``: the shift is the highest ``k`` whose threshold (the first distance of shift
    ``k`` or more) ``d`` passes, each comparison LUT logic (:func:`_above`). The second register holds the port's value
    of it: the term ``256 >> shift`` on ``sum``, the shift itself on ``out``.

    Parameters
    ----------
    lanes : int
        Elements per beat.
    shift_table : sequence of int
        ``shift(d)`` of every distance 0..255, non-decreasing, in 0..9.
    target : str
        One of :data:`~int8attn.golden.params.TARGETS` (the stage is plain logic on all of them).

    Attributes
    ----------
    thresholds : list of int
        The smallest distance of each shift from 1 up, as far as distances (0..255) reach.
    sum_width : int
        :data:`TERM_BITS`, 9.
    out_width : int
        :data:`SHIFT_BITS`, 4.
    sum_zero_bits, out_zero_bits : int
        0.

    Members
    -------
    sum : Out(ExpRomPort(lanes, 9))
        ``256 >> shift(addr)``, :attr:`latency` enabled cycles after ``addr``.
    out : Out(ExpRomPort(lanes, 4))
        ``shift(addr)``, as late; independent of ``sum``.
    """

    def __init__(self, lanes: int, shift_table: Sequence[int], target: str = "generic"):
        table = [int(shift) for shift in shift_table]
        if len(table) != 1 << DIFF_BITS or table != sorted(table) or table[0] != 0 or table[-1] > MAX_SHIFT:
            raise ValueError(f"shift_table must hold {1 << DIFF_BITS} non-decreasing shifts from 0, at most "
                             f"{MAX_SHIFT}")
        self.thresholds = [next(d for d, shift in enumerate(table) if shift >= k) for k in range(1, table[-1] + 1)]
        super().__init__(lanes, TERM_BITS, SHIFT_BITS, SHIFT_BITS, target)

    def _reduce(self, distance: Value) -> Value:
        shift = Const(0, SHIFT_BITS)
        for k, threshold in enumerate(self.thresholds, 1):
            shift = Mux(_above(distance, threshold - 1), k, shift)
        return shift

    def _value(self, port: str, reduced: Value) -> Value:
        return Const(ONE, TERM_BITS) >> reduced if port == "sum" else reduced


class _OutputStage(wiring.Component):
    """The members of :class:`~int8attn.hdl.final_mac.FinalMac` around a per-lane datapath of :attr:`latency`
    registers that advance together with ``en``.

    Members
    -------
    en : Out(1)
        The stage advances this cycle (``o`` is empty or taken); the stages before it must hold their outputs when
        it is low.
    valid, last : In(1)
        A beat is presented; it closes its row.
    exp : In(ArrayLayout(exp_shape, lanes))
        The beat's per-lane operands.
    reciprocal : In(unsigned(inv_width))
        The row's reciprocal.
    o : Out(stream.Signature(LaneBeat(lanes, output_bits, signed=signed)))
        Codes, :attr:`latency` cycles after the beat.
    """

    def __init__(self, lanes: int, exp_shape: Shape, inv_width: int, output_bits: int, signed: bool, target: str):
        if lanes < 1:
            raise ValueError(f"lanes must be at least 1, not {lanes}")
        if not 1 <= inv_width <= MAX_WIDTH:
            raise ValueError(f"inv_width must be in 1..{MAX_WIDTH}, not {inv_width}")
        self.lanes = lanes
        self.inv_width = inv_width
        self.target = check_target(target)
        super().__init__({
            "en": Out(1),
            "valid": In(1),
            "last": In(1),
            "exp": In(data.ArrayLayout(exp_shape, lanes)),
            "reciprocal": In(unsigned(inv_width)),
            "o": Out(stream.Signature(LaneBeat(lanes, output_bits, signed=signed))),
        })

    @property
    def latency(self) -> int:
        raise NotImplementedError

    def _handshake(self, m: Module) -> None:
        """``en`` from ``o``, and ``valid`` and ``last`` delayed to ``o`` over :attr:`latency` enabled cycles."""
        m.d.comb += self.en.eq(~self.o.valid | self.o.ready)
        valid, last = (delay(m, value, self.latency - 1, enable=self.en, name=name)
                       for value, name in ((self.valid, "valid"), (self.last, "last")))
        with m.If(self.en):
            m.d.sync += [self.o.valid.eq(valid), self.o.payload.last.eq(last)]


class ScaleMac(_OutputStage):
    """The output stage of modes ``hccs`` and ``poly``: per lane ``min(⌊score · inv / 2^inv_shift⌋, max)``, with
    ``max`` 255 for 8-bit outputs (uint8 lanes) and 32767 for 16-bit ones (int16 lanes, Q15; never negative).

    The exact product comes from a :class:`~int8attn.hdl.multiplier.Multiplier` per lane (the target's DSP blocks,
    their products registered again in the fabric). Since ``max`` is all ones, the code is the product's bits from
    ``inv_shift`` up to ``max``'s width, ORed with whether any bit above them is set. That test is an OR of
    :data:`~int8attn.hdl.reciprocal.OR_GROUP` bits per LUT and register until at most :data:`FINAL_OR_BITS` flags
    remain, which the output register ORs with each code bit.

    Parameters
    ----------
    lanes : int
        Elements per beat.
    score_width : int
        Width of the unsigned scores, 1..36.
    inv_width : int
        Width of the unsigned reciprocal, 1..36.
    inv_shift : int
        Fraction bits of the reciprocal, ≥ 0.
    output_bits : int
        8 (uint8 codes) or 16 (int16 codes).
    target : str
        FPGA family of the multipliers (:data:`~int8attn.golden.params.TARGETS`).

    Attributes
    ----------
    code_bits : int
        Bits of the largest code: ``max = 2^code_bits − 1``.
    or_stages : int
        Registers of the saturation test.

    Members
    -------
    Those of :class:`_OutputStage`, with ``exp`` the beat's scores (``unsigned(score_width)``), ``reciprocal`` the
    row's ``inv`` and ``o`` signed 16-bit lanes for ``output_bits = 16``, unsigned 8-bit ones otherwise.
    """

    def __init__(self, lanes: int, score_width: int, inv_width: int, inv_shift: int, output_bits: int,
                 target: str = "generic"):
        if not 1 <= score_width <= MAX_WIDTH:
            raise ValueError(f"score_width must be in 1..{MAX_WIDTH}, not {score_width}")
        if inv_shift < 0:
            raise ValueError(f"inv_shift must be at least 0, not {inv_shift}")
        if output_bits not in OUTPUT_BITS:
            raise ValueError(f"output_bits must be one of {', '.join(map(str, OUTPUT_BITS))}, not {output_bits}")
        signed = output_bits == 16
        super().__init__(lanes, unsigned(score_width), inv_width, output_bits, signed, target)
        self.score_width = score_width
        self.inv_shift = inv_shift
        self.output_bits = output_bits
        self.code_bits = output_bits - signed
        self.multipliers = [Multiplier(unsigned(score_width), unsigned(inv_width), target, fabric_register=True)
                            for _ in range(lanes)]
        flags = max(score_width + inv_width - inv_shift - self.code_bits, 0)
        self.or_stages = 0
        while flags > FINAL_OR_BITS:
            flags = -(-flags // OR_GROUP)
            self.or_stages += 1

    @property
    def latency(self) -> int:
        """Cycles from a beat to its codes: the multipliers', :attr:`or_stages`, then the output register."""
        return self.multipliers[0].latency + self.or_stages + 1

    def elaborate(self, platform):
        m = Module()
        self._handshake(m)
        low, high = self.inv_shift, self.inv_shift + self.code_bits
        for lane, multiplier in enumerate(self.multipliers):
            m.submodules[f"multiplier{lane}"] = multiplier
            m.d.comb += [multiplier.en.eq(self.en), multiplier.a.eq(self.exp[lane]),
                         multiplier.b.eq(self.reciprocal)]
            code = delay(m, multiplier.o[low:high], self.or_stages, enable=self.en, name=f"code{lane}")
            saturated = staged_any(m, multiplier.o[high:], self.or_stages, self.en, f"saturated{lane}_")
            with m.If(self.en):
                m.d.sync += self.o.payload.data[lane].eq(code | saturated.replicate(self.code_bits))
        return m


class ShiftOut(_OutputStage):
    """The output stage of mode ``base2``: per lane ``inv >> shift``, as uint8.

    The first register holds ``inv`` shifted by the multiple of 4 in ``shift`` (the bits the output can still reach),
    the second shifts it by the rest: a 4:1 multiplexer per bit and register. Only the low 8 bits of ``inv >> shift``
    are kept, as the golden model's uint8 cast does; base2's ``inv`` is at most 255, so nothing is lost there.

    Parameters
    ----------
    lanes : int
        Elements per beat.
    inv_width : int
        Width of the unsigned reciprocal, 1..36.
    target : str
        One of :data:`~int8attn.golden.params.TARGETS` (the stage is plain logic on all of them).

    Members
    -------
    Those of :class:`_OutputStage`, with ``exp`` the beat's 4-bit shifts (:class:`Base2Terms`' ``out`` port),
    ``reciprocal`` the row's ``inv`` and ``o`` unsigned 8-bit lanes.
    """

    LATENCY = 2

    def __init__(self, lanes: int, inv_width: int, target: str = "generic"):
        super().__init__(lanes, unsigned(SHIFT_BITS), inv_width, CODE_BITS, False, target)

    @property
    def latency(self) -> int:
        """Cycles from a beat to its codes: :data:`LATENCY`."""
        return self.LATENCY

    def elaborate(self, platform):
        m = Module()
        self._handshake(m)
        for lane in range(self.lanes):
            shift = self.exp[lane]
            coarse = Signal(min(self.inv_width, CODE_BITS + FINE_SHIFT), name=f"coarse{lane}")
            fine = Signal(FINE_SHIFT_BITS, name=f"fine{lane}")
            with m.If(self.en):
                m.d.sync += [coarse.eq(self.reciprocal >> (shift[FINE_SHIFT_BITS:] << FINE_SHIFT_BITS)),
                             fine.eq(shift[:FINE_SHIFT_BITS]),
                             self.o.payload.data[lane].eq((coarse >> fine)[:CODE_BITS])]
        return m
