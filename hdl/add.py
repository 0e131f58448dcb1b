"""The add unit: TinyMind's ``QAdd`` = TFLite's int8 ``ADD`` of two streams, ``lanes`` elements per cycle, bit-exact
with :class:`~int8attn.golden.add_unit.AddModel`.

Per lane, each input's term ``multiplyByQuantizedMultiplier((x − zp)·2^left_shift, M, shift)`` is an
:class:`InputTerm`: the centred input ``d = x − zp`` has 9 bits, so the term's product is ``d · M`` (a
:class:`~int8attn.hdl.multiplier.Multiplier` of 9 × 31 bits, at most two DSP blocks on every vendor target, not the
32 × 31 bits of ``(d·2^k)·M``; none for the ``M = 2^30`` of the input with the larger scale), and the power of two
``2^k`` of the left shifts is folded into the rounding's bit selection. The two terms' int32 sum goes through the
output requantizer, the requantizer unit's own :class:`~int8attn.hdl.requant.Requantizer`.
"""

from dataclasses import replace

from amaranth import Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from int8attn.golden.add import LEFT_SHIFT_CAP, TinyMindAdd
from int8attn.golden.add_unit import AddConfig, AddModel
from int8attn.golden.fixedpoint import INT32_MAX, INT32_MIN, srdhm
from int8attn.hdl.fixedpoint import INT32, RoundingDivideByPot
from int8attn.hdl.multiplier import Multiplier
from int8attn.hdl.pipeline import check_target, delay, event_counter
from int8attn.hdl.requant import Requantizer
from int8attn.hdl.streams import OUTPUT_QUEUE_LATENCY, ROOM_DELAY, LaneBeat, registered_output_queue

INPUT_BITS = 8
INT8_MIN, INT8_MAX = -(1 << (INPUT_BITS - 1)), (1 << (INPUT_BITS - 1)) - 1
CENTRED = signed(INPUT_BITS + 1)
"""``x − zero_point`` of int8 values: −255..255."""
ROUNDING_LATENCY = 1
INPUTS = ("a", "b")


def term_exponent(left_shift: int, shift: int) -> int:
    """``k``: the power of two of ``multiplyByQuantizedMultiplier((x − zp)·2^left_shift, M, shift)``'s operand,
    ``left_shift`` plus the term's own left shift (``−shift`` when negative, capped at 31)."""
    return left_shift + min(max(-shift, 0), LEFT_SHIFT_CAP)


def saturation_bounds(exponent: int) -> tuple[int, int]:
    """``(low, high)``: the centred inputs ``d`` whose ``d·2^exponent`` fits int32; below ``low`` the operand
    saturates to ``INT32_MIN``, above ``high`` to ``INT32_MAX``."""
    return -((-INT32_MIN) >> exponent), INT32_MAX >> exponent


class InputTerm(wiring.Component):
    """TinyMind's ``multiplyByQuantizedMultiplier((x − zero_point)·2^left_shift, multiplier, shift)`` of an int8
    ``x`` (:func:`~int8attn.golden.add.tinymind_multiply_by_quantized_multiplier`), pipelined.

    With ``d = x − zero_point`` and ``k = left_shift + min(max(−shift, 0), 31)`` the operand of the rounding doubling
    high multiply is ``sat32(d·2^k)``. Where ``d·2^k`` fits int32 its ``SRDHM`` is ``⌊(d·M·2^k + 2^30) / 2^31⌋``, the
    product ``d·M`` rounded at bit ``31 − k``; where it does not, the operand is ``INT32_MAX`` or ``INT32_MIN`` and its
    ``SRDHM`` is a constant of ``M``. So the stages are:

    * ``centre``: ``d = x − zero_point``, registered on the vendor targets (on an ECP5 the subtraction and the route
      into the DSP blocks' input registers took 5.6 ns together), absent on ``generic``;
    * ``multiply``: ``d · M`` in a :class:`~int8attn.hdl.multiplier.Multiplier` (9 × ``M``'s bits), while ``d``'s
      comparisons with the saturation bounds wait beside it; absent when ``M`` is 0 or a power of two (a shift:
      TFLite's and TinyMind's ``ADD`` give the input of the larger scale ``M = 2^30``);
    * ``srdhm``: the product rounded at bit ``31 − k``, or the saturated constant, registered;
    * ``rounding_divide``: ``RDBPOT(…, max(shift, 0))``, a :class:`~int8attn.hdl.fixedpoint.RoundingDivideByPot`,
      absent when ``shift ≤ 0``.

    Parameters
    ----------
    zero_point : int
        Zero point of ``x``, −128..127.
    left_shift : int
        Left shift of the centred input, 0..23.
    multiplier : int
        Q0.31 multiplier ``M``, 0..2^31 − 1.
    shift : int
        TinyMind's shift, ``> 0`` right, ``< 0`` a saturating left shift (capped at 31).
    target : str
        Target of the multiplier.
    fabric_register : bool
        The multiplier's ``fabric_register``.

    Attributes
    ----------
    multiplier : Multiplier or None
        The product's multiplier; ``None`` when ``M`` is 0 or a power of two.
    divider : RoundingDivideByPot or None
        The ``rounding_divide`` stage; ``None`` when ``shift ≤ 0``.

    Members
    -------
    en : In(1, init=1)
        The registers advance.
    x : In(signed(8))
        The input.
    o : Out(signed(32))
        The term, :attr:`latency` enabled cycles after ``x``.
    """

    def __init__(self, *, zero_point: int, left_shift: int, multiplier: int, shift: int, target: str = "generic",
                 fabric_register: bool = False):
        self.zero_point = zero_point
        self.multiplier_value = multiplier
        self.exponent = term_exponent(left_shift, shift)
        self.right_shift = max(shift, 0)
        self.centre_latency = int(check_target(target) != "generic")
        power_of_two = multiplier & (multiplier - 1) == 0
        self.multiplier = None if power_of_two else Multiplier(CENTRED, unsigned(multiplier.bit_length()), target,
                                                               fabric_register=fabric_register)
        self.divider = RoundingDivideByPot(max_exponent=self.right_shift) if self.right_shift else None
        super().__init__({"en": In(1, init=1), "x": In(signed(INPUT_BITS)), "o": Out(INT32)})

    @property
    def stages(self) -> dict[str, int]:
        """Cycles of each stage, in order."""
        return {"centre": self.centre_latency, "multiply": self.multiplier.latency if self.multiplier else 0,
                "srdhm": ROUNDING_LATENCY, "rounding_divide": self.divider.latency if self.divider else 0}

    @property
    def latency(self) -> int:
        """Enabled cycles from ``x`` to ``o``."""
        return sum(self.stages.values())

    def elaborate(self, platform):
        m = Module()
        enable = self.en
        centred = Signal(CENTRED, name="centred")
        m.d.comb += centred.eq(delay(m, self.x - self.zero_point, self.centre_latency, enable=enable, name="centre"))
        if self.multiplier is None:
            product = centred << (self.multiplier_value.bit_length() - 1) if self.multiplier_value else 0
        else:
            m.submodules.multiplier = multiplier = self.multiplier
            m.d.comb += [multiplier.en.eq(enable), multiplier.a.eq(centred), multiplier.b.eq(self.multiplier_value)]
            product = multiplier.o
        drop = 31 - self.exponent
        value = Value.cast((product + (1 << (drop - 1))) >> drop if drop > 0 else product << -drop)
        low, high = saturation_bounds(self.exponent)
        smallest, largest = INT8_MIN - self.zero_point, INT8_MAX - self.zero_point
        checks = {"below": (low > smallest, centred < low, INT32_MIN),
                  "above": (high < largest, centred > high, INT32_MAX)}
        for name, (possible, saturates, bound) in checks.items():
            if possible:
                flag = delay(m, saturates, self.stages["multiply"], enable=enable, name=name)
                value = Mux(flag, int(srdhm(bound, self.multiplier_value)), value)
        result = Signal(INT32, name="srdhm")
        with m.If(enable):
            m.d.sync += result.eq(value)
        if self.divider is None:
            m.d.comb += self.o.eq(result)
            return m
        m.submodules.rounding_divide = divider = self.divider
        m.d.comb += [divider.en.eq(enable), divider.x.eq(result), divider.exponent.eq(self.right_shift),
                     self.o.eq(divider.o)]
        return m


class AddEngine(wiring.Component):
    """``QAdd(a, b)`` of one :class:`~int8attn.golden.add.TinyMindAdd` on two joined int8 streams, ``lanes``
    elements a beat.

    A beat is taken from ``a`` and ``b`` together, when both are valid and the output queue has room for every beat
    in flight (``a.ready = room & b.valid``, ``b.ready = room & a.valid``, ``room`` a register counted with credits);
    lane ``k`` of the output is ``QAdd`` of lane ``k`` of both. The pipeline never stalls, so nothing but the output
    queue's read port sees the sink's ``ready`` (a stall that held every stage, as it once did, put the sink's
    ``ready`` into both inputs' ``ready`` through one enable: 7.9 ns of routing in an ECP5 stack), and a full-rate
    stream moves ``lanes`` elements per cycle. The stages (:attr:`stages`):

    * ``terms``: each input's :class:`InputTerm` per lane; the input of the shorter of the two waits in registers
      for the longer (8 bits a lane rather than the term's 32);
    * ``sum``: ``wrap32(term_a + term_b)``, registered on the vendor targets (so no carry chain shares a cycle with
      the route into the requantizer's DSP blocks), absent on ``generic``;
    * ``requantizer``: the :class:`~int8attn.hdl.requant.Requantizer` of the layer's ``output_requantizer`` (per
      tensor, ``lanes`` channels);
    * ``output_queue``: a :class:`~int8attn.hdl.streams.ShallowQueue` in LUT RAM (a
      :class:`~amaranth.lib.fifo.SyncFIFOBuffered` without it) of :attr:`output_queue_depth` beats.

    ``last`` passes through with ``a``'s beat; a joined beat whose two ``last`` flags differ raises ``error``.

    Parameters
    ----------
    layer : TinyMindAdd
        The integer parameters.
    lanes : int
        Elements per beat, ≥ 1.
    target : str

    Attributes
    ----------
    terms : dict of str to list of InputTerm
        Each input's terms, one per lane.
    requantizer : Requantizer

    Members
    -------
    a, b : In(stream.Signature(LaneBeat(lanes, 8)))
        The operands.
    o : Out(stream.Signature(LaneBeat(lanes, 8)))
        The sums, beat for beat, :attr:`latency` cycles after the operands when not stalled.
    error : Out(1)
        Sticky: ``a`` and ``b`` disagreed on ``last``; cleared by reset.
    """

    def __init__(self, layer: TinyMindAdd, lanes: int, target: str = "generic"):
        if lanes < 1:
            raise ValueError(f"lanes must be ≥ 1, not {lanes}")
        self.layer = layer
        self.lanes = lanes
        self.target = check_target(target)
        requant = layer.output_requantizer.model.config
        self.requantizer = Requantizer(replace(requant, channels=lanes, lanes=lanes, target=target))
        self.terms = {name: [InputTerm(zero_point=getattr(layer, f"input_{name}_zero_point"),
                                       left_shift=layer.left_shift,
                                       multiplier=getattr(layer, f"input_{name}_multiplier"),
                                       shift=getattr(layer, f"input_{name}_shift"), target=target,
                                       fabric_register=target == "ecp5") for _ in range(lanes)]
                      for name in INPUTS}
        beat = stream.Signature(LaneBeat(lanes, INPUT_BITS))
        super().__init__({"a": In(beat), "b": In(beat), "o": Out(beat), "error": Out(1)})

    @property
    def stages(self) -> dict[str, int]:
        """Cycles of each stage, in order."""
        return {"terms": max(self.terms[name][0].latency for name in INPUTS), "sum": int(self.target != "generic"),
                "requantizer": self.requantizer.latency, "output_queue": OUTPUT_QUEUE_LATENCY}

    @property
    def latency(self) -> int:
        """Cycles from a joined input beat being accepted to its output beat being valid, without stalls."""
        return sum(self.stages.values())

    @property
    def room_threshold(self) -> int:
        """Beats taken and not yet counted as delivered under which a beat is taken: those of the pipeline, one, and
        the one the delivered count's register has not counted yet (it counts the sink's takes a cycle late, so that
        the take decision drives the output queue alone)."""
        return self.latency + 2

    @property
    def output_queue_depth(self) -> int:
        """Beats the output queue holds: every beat in flight when the sink stops taking them, with the room flag's
        lag."""
        return self.room_threshold + ROOM_DELAY

    @property
    def dsp_blocks(self) -> int:
        """DSP blocks of the vendor target: the terms' multipliers and the requantizer's."""
        terms = sum(term.multiplier.dsp_blocks for name in INPUTS for term in self.terms[name] if term.multiplier)
        return terms + sum(block.multiplier.dsp_blocks for block in self.requantizer.srdhm_blocks)

    def elaborate(self, platform):
        m = Module()
        stages = self.stages
        front = stages["terms"] + stages["sum"]
        m.submodules.requantizer = requant = self.requantizer
        room = Signal(name="room")
        accept = self.a.valid & self.b.valid & room
        m.d.comb += [self.a.ready.eq(room & self.b.valid), self.b.ready.eq(room & self.a.valid)]
        for lane in range(self.lanes):
            terms = []
            for name in INPUTS:
                term = m.submodules[f"{name}_term{lane}"] = self.terms[name][lane]
                wait = delay(m, getattr(self, name).payload.data[lane], stages["terms"] - term.latency,
                             name=f"{name}_wait{lane}")
                m.d.comb += [term.en.eq(1), term.x.eq(wait)]
                terms.append(term.o)
            total = delay(m, (terms[0] + terms[1])[:32].as_signed(), stages["sum"], name=f"sum{lane}")
            m.d.comb += requant.i.payload.data[lane].eq(total)
        m.d.comb += [requant.i.valid.eq(delay(m, accept, front, name="valid")),
                     requant.i.payload.last.eq(delay(m, self.a.payload.last, front, name="last"))]
        with m.If(accept & (self.a.payload.last != self.b.payload.last)):
            m.d.sync += self.error.eq(1)

        out_width = len(Value.cast(self.o.payload))
        m.submodules.output_queue = output_queue = registered_output_queue(out_width, self.output_queue_depth,
                                                                           self.target)
        m.d.comb += [requant.o.ready.eq(1), output_queue.w_en.eq(requant.o.valid),
                     output_queue.w_data.eq(requant.o.payload), self.o.valid.eq(output_queue.r_rdy),
                     self.o.payload.eq(output_queue.r_data), output_queue.r_en.eq(self.o.ready)]
        count_width = (2 * self.output_queue_depth).bit_length()
        issued = event_counter(m, accept, count_width, "issued")
        delivered = event_counter(m, delay(m, self.o.valid & self.o.ready, 1, name="delivery"), count_width,
                                  "delivered")
        in_output = Signal(count_width, name="in_output")
        m.d.sync += [in_output.eq(issued - delivered), room.eq(in_output < self.room_threshold)]
        return m


class Add(AddEngine):
    """The add unit of one :class:`~int8attn.golden.add_unit.AddConfig`: an :class:`AddEngine` of the configuration's
    ``QAdd``, and the unit's sidecar metadata.

    Parameters
    ----------
    config : AddConfig

    Members
    -------
    a, b, o, error
        As :class:`AddEngine`'s; a frame is ``elements / lanes`` beats on each stream.
    """

    def __init__(self, config: AddConfig):
        self.config = config
        self.model = AddModel(config)
        super().__init__(self.model.layer, config.lanes, config.target)

    latency_from = "first"
    """:attr:`latency` counts from each joined input beat to its own output beat."""

    @property
    def elements_per_cycle(self) -> int:
        return self.config.lanes

    @property
    def frame_beats(self) -> dict[str, int]:
        """Beats per frame on each stream."""
        return {name: self.config.beats for name in (*INPUTS, "o")}

    @property
    def cycles_per_frame(self) -> int:
        """Cycles per frame at full rate."""
        return self.config.beats

    def port_descriptions(self) -> dict[str, str]:
        lanes = self.config.lanes
        descriptions = {}
        for name in INPUTS:
            descriptions |= {
                f"{name}__valid": f"operand {name} beat valid",
                f"{name}__ready": f"operand {name} beat accepted (with the {'b' if name == 'a' else 'a'} beat: "
                                  "both are taken together)",
                f"{name}__payload": f"lane k: bits [8k+7:8k] signed int8 {name} of element k of the beat; last: bit "
                                    f"{8 * lanes} (final beat of the frame)",
            }
        return descriptions | {
            "o__valid": "output beat valid; held with its payload until taken",
            "o__ready": "sink takes the beat when valid",
            "o__payload": f"lane k: bits [8k+7:8k] signed int8 a+b of element k; last: bit {8 * lanes} (a's)",
            "error": "sticky: a and b disagreed on last in a beat taken",
        }

    def describe(self) -> dict:
        """The sidecar's add sections: ``quantisation`` (the integer ``QAdd`` in TinyMind's key names) and
        ``structure``."""
        layer = self.layer
        requantizer = layer.output_requantizer
        integers = {name: getattr(layer, name) for name in TinyMindAdd.SCALAR_FIELDS}
        return {
            "quantisation": {
                "qadd": integers | {f"output_requantizer.{name}": getattr(requantizer, name)
                                    for name in ("multiplier", "shift", "zero_point", "qmin", "qmax")},
                "shift_sign": "> 0 shifts right (TinyMind)",
                "clamp_low": requantizer.qmin,
                "clamp_high": requantizer.qmax,
            },
            "structure": {
                "pipeline_stages": self.stages,
                "term_stages": {name: self.terms[name][0].stages for name in INPUTS},
                "requantizer_stages": self.requantizer.stages,
                "dsp_blocks": self.dsp_blocks,
            },
        }

    def artefacts(self) -> dict[str, str]:
        return {}
