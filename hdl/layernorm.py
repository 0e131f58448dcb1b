"""The layernorm unit: TinyMind's ``QLayerNorm1D`` over rows of ``N`` int8 features, ``lanes`` per cycle, bit-exact
with :class:`~int8attn.golden.layernorm_unit.LayerNormModel`."""

from amaranth import Cat, Const, Module, Mux, Shape, Signal, Value, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from int8attn.golden.layernorm import INV_SQRT_NUMERATOR_BITS, Q30_MAX, SQRT_PRESCALE_BITS
from int8attn.golden.layernorm_unit import ZERO_ROOT_SUBSTITUTE, LayerNormConfig, LayerNormModel
from int8attn.hdl.divider import ConstantDivider
from int8attn.hdl.isqrt import IntegerSqrt
from int8attn.hdl.layernorm_stages import (
    INT8,
    BiasClamp,
    GammaScale,
    MeanStage,
    Normalize,
    Rescale,
    RowSums,
    VarianceStage,
)
from int8attn.hdl.memory import LATENCY as MEMORY_LATENCY
from int8attn.hdl.memory import Ram, Rom
from int8attn.hdl.pipeline import delay, event_counter
from int8attn.hdl.streams import (
    OUTPUT_QUEUE_LATENCY,
    ROOM_DELAY,
    FrameStreams,
    LaneBeat,
    registered_output_queue,
)


class LayerNorm(FrameStreams, wiring.Component):
    """Streaming TinyMind ``QLayerNorm1D``: rows of ``features`` int8 values in, their normalised int8 values out.

    A row arrives as ``features / lanes`` beats, counted from reset: a beat whose ``last`` flag disagrees with the
    count raises the sticky ``error`` output, and the count goes on. Beats are written to a row buffer of
    :attr:`banks` banks while :class:`~int8attn.hdl.layernorm_stages.RowSums` sums them and their squares. The row's
    statistics then flow through stalling pipelines on valid/ready streams, one row at a time:
    :class:`~int8attn.hdl.layernorm_stages.MeanStage` (the rounded mean, which also enters the mean queue),
    :class:`~int8attn.hdl.layernorm_stages.VarianceStage` (``d = max(var_q + ε, 0)``, the variance sum in one pass),
    :class:`~int8attn.hdl.isqrt.IntegerSqrt` (``⌊√(d·2^28)⌋``) and
    :class:`~int8attn.hdl.divider.ConstantDivider` (``2^44 / root``, the root 0 replaced by ``2^13`` and the
    quotient saturated at ``2^31 − 1``), whose result enters the inverse queue. The square root and the divider are
    iterative when a row lasts as long as one of their computations, else pipelined.

    The output pass takes a row's mean and inverse when it starts the row, reads the row back from the buffer and
    runs every lane through :class:`~int8attn.hdl.layernorm_stages.Normalize`,
    :class:`~int8attn.hdl.layernorm_stages.GammaScale`, :class:`~int8attn.hdl.layernorm_stages.Rescale` and
    :class:`~int8attn.hdl.layernorm_stages.BiasClamp`, with γ and ``wrap32(β + zp_out)`` from tables read at the
    beat's index (constants when every beat of a lane has the same), into an output queue. No stage stalls: the pass
    issues a beat only while the output queue has room for every beat in flight, from registered counters (as the
    softmax's output pass does), so ``o.ready`` reaches the output queue only and no clock enable fans out; the
    statistics never wait either, the mean and inverse queues holding a row's values for every bank. Rows overlap in
    every stage, so ``lanes`` elements are accepted and produced every cycle on back-to-back rows.

    Parameters
    ----------
    config : LayerNormConfig
        Row length, lanes and the layer's parameters, shared with the golden model and the testbench.

    Attributes
    ----------
    config : LayerNormConfig
    model : LayerNormModel
    plan : LayerNormPlan
        The integer stages and their ranges.

    Members
    -------
    i : In(stream.Signature(LaneBeat(lanes)))
        Input rows, ``last`` on each row's final beat.
    o : Out(stream.Signature(LaneBeat(lanes)))
        The normalised rows, ``last`` on each row's final beat, :attr:`latency` cycles after the row's last input
        beat when not stalled.
    error : Out(1)
        Sticky framing error (``last`` on the wrong beat), cleared by reset.
    """

    def __init__(self, config: LayerNormConfig):
        self.config = config
        self.model = LayerNormModel(config)
        self.plan = plan = config.plan
        lanes, beats, target = config.lanes, config.beats, config.target
        layer = plan.layer
        self.row_sums = RowSums(plan, lanes, target)
        self.mean = MeanStage(plan, target)
        self.variance = VarianceStage(plan, target)
        isqrt_pipelined = IntegerSqrt.iterative_interval(plan.denominator_bits, SQRT_PRESCALE_BITS) > beats
        self.isqrt = IntegerSqrt(plan.denominator_bits, SQRT_PRESCALE_BITS, pipelined=isqrt_pipelined, target=target)
        numerator = 1 << INV_SQRT_NUMERATOR_BITS
        halves = target != "generic" and ConstantDivider.iterative_interval(numerator, plan.divisor_min,
                                                                            halves=True) <= beats
        pipelined = ConstantDivider.iterative_interval(numerator, plan.divisor_min, halves) > beats
        self.reciprocal = ConstantDivider(numerator, plan.root_bits, plan.divisor_min, pipelined=pipelined,
                                          target=target, halves=halves)
        self.normalize = Normalize(lanes, plan.inverse_max, target)
        self.gamma_scale = GammaScale(lanes, self.normalize.normalized_shape, plan.left_shift, target)
        self.rescale = Rescale(lanes, layer.output_multiplier, plan.right_shift, target)
        self.bias_clamp = BiasClamp(lanes, layer.qmin, layer.qmax, registered=target != "generic")
        self.row_buffer = Ram(8 * lanes, self.banks * beats, target=target)
        self.tables = {name: Rom(self._table_words(values), self._entry_bits(values) * lanes, target=target)
                       for name, values in self._table_values().items() if not self._constant(values)}
        super().__init__({
            "i": In(stream.Signature(LaneBeat(lanes))),
            "o": Out(stream.Signature(LaneBeat(lanes))),
            "error": Out(1),
        })

    def _table_values(self) -> dict[str, list[list[int]]]:
        """γ and the biases by beat and lane."""
        lanes, beats = self.config.lanes, self.config.beats
        values = {"gamma": self.plan.layer.gamma, "bias": self.plan.biases}
        return {name: [[int(table[beat * lanes + lane]) for lane in range(lanes)] for beat in range(beats)]
                for name, table in values.items()}

    @staticmethod
    def _constant(rows: list[list[int]]) -> bool:
        """Every beat holds the same values: each lane's value is a constant."""
        return all(row == rows[0] for row in rows)

    @staticmethod
    def _entry_bits(rows: list[list[int]]) -> int:
        """Bits of the narrowest signed entry that holds every value of a table."""
        values = [value for row in rows for value in row]
        return Shape.cast(range(min(values), max(values) + 1)).width + (min(values) >= 0)

    def _table_words(self, rows: list[list[int]]) -> list[int]:
        """A table's rows as ROM words: lane ``k``'s entry (two's complement) at bits ``[w·k, w·k + w)``."""
        bits = self._entry_bits(rows)
        mask = (1 << bits) - 1
        return [sum((value & mask) << (bits * lane) for lane, value in enumerate(row)) for row in rows]

    @property
    def stages(self) -> dict[str, wiring.Component]:
        """The stages by instance name, in the order a row meets them."""
        return {"row_sums": self.row_sums, "mean": self.mean, "variance": self.variance, "isqrt": self.isqrt,
                "reciprocal": self.reciprocal, "row_buffer": self.row_buffer, "normalize": self.normalize,
                "gamma_scale": self.gamma_scale, "rescale": self.rescale, "bias_clamp": self.bias_clamp,
                **{f"{name}_table": table for name, table in self.tables.items()}}

    @property
    def statistics_latency(self) -> int:
        """Cycles from a row's last input beat to its inverse at the inverse queue's output."""
        return (self.row_sums.latency + self.mean.latency + self.variance.latency + self.isqrt.latency
                + self.reciprocal.latency + OUTPUT_QUEUE_LATENCY)

    @property
    def element_latency(self) -> int:
        """Cycles from reading a beat from the row buffer to its output beat: the read and the per-element stages."""
        return (MEMORY_LATENCY + self.normalize.latency + self.gamma_scale.latency + self.rescale.latency
                + self.bias_clamp.latency)

    @property
    def banks(self) -> int:
        """Row buffer banks: the row being written and those waiting for their statistics and their output pass, so
        that the writer never waits at full rate."""
        return 2 + -(-self.statistics_latency // self.config.beats)

    @property
    def latency(self) -> int:
        """Cycles from the last input beat of a row being accepted to its first output beat being valid: the
        statistics, the output pass and the output queue."""
        return self.statistics_latency + self.element_latency + OUTPUT_QUEUE_LATENCY

    latency_from = "last"
    """:attr:`latency` counts from a row's last input beat: a row's output needs its statistics."""

    @property
    def dsp_blocks(self) -> int:
        """DSP blocks of the target: the squares, the divisions by ``N``, the variance and every lane's products."""
        return sum(stage.dsp_blocks for stage in (self.row_sums, self.mean, self.variance, self.normalize,
                                                   self.gamma_scale, self.rescale))

    def _queue(self, width: int, depth: int) -> wiring.Component:
        """A :func:`~int8attn.hdl.streams.registered_output_queue` counting its words in binary: the output queue is
        some 30 words deep, and in an ECP5 stack the take of a 32-bit thermometer code, from the register slice after
        the unit, was the stack's critical path."""
        return registered_output_queue(width, depth, self.config.target, "binary")

    @property
    def room_threshold(self) -> int:
        """Beats issued and not yet counted as delivered under which the output pass issues: those of the pass, one,
        and the one the delivered count's register has not counted yet (it counts the sink's takes a cycle late, so
        that the take decision drives the output queue alone: in an ECP5 stack the queue at the pass's DSP blocks and
        the count at the issue logic lay 7 ns apart)."""
        return self.element_latency + OUTPUT_QUEUE_LATENCY + 2

    @property
    def output_queue_depth(self) -> int:
        """Beats the output queue holds: every beat in flight in the output pass when the sink stops taking them,
        and the margin of the room flag's lag."""
        return self.room_threshold + ROOM_DELAY

    def elaborate(self, platform):
        m = Module()
        config, plan = self.config, self.plan
        beats, banks = config.beats, self.banks
        for name, stage in self.stages.items():
            m.submodules[name] = stage
        m.submodules.mean_queue = mean_queue = self._queue(INT8.width, banks)
        m.submodules.inverse_queue = inverse_queue = self._queue(plan.inverse_max.bit_length(), banks)

        def following(address: Signal):
            return Mux(address == banks * beats - 1, 0, address + 1)

        # Input: framing count, row buffer writes, row sums.
        occupied = Signal(range(banks + 1))
        input_room = Signal(init=1, name="input_room")
        write_address = Signal(range(banks * beats))
        accept = self.i.valid & self.i.ready
        _, opens_row, closes_row = _row_flags(m, accept, beats, "write")
        commit = accept & closes_row
        row_sums, row_buffer = self.row_sums, self.row_buffer
        m.d.comb += [
            self.i.ready.eq(input_room),
            row_buffer.w_en.eq(accept),
            row_buffer.w_addr.eq(write_address),
            row_buffer.w_data.eq(self.i.payload.data),
            row_sums.valid.eq(accept),
            row_sums.first.eq(opens_row),
            row_sums.last.eq(closes_row),
            row_sums.lanes_in.eq(self.i.payload.data),
        ]
        with m.If(accept):
            m.d.sync += write_address.eq(following(write_address))
            with m.If(self.i.payload.last != closes_row):
                m.d.sync += self.error.eq(1)

        # Statistics: sums → mean (into the mean queue) → denominator → root → inverse (into the inverse queue).
        wiring.connect(m, row_sums.o, self.mean.i)
        wiring.connect(m, self.mean.o, self.variance.i)
        wiring.connect(m, self.variance.o, self.isqrt.i)
        root = self.isqrt.o.payload
        reciprocal = self.reciprocal
        m.d.comb += [
            mean_queue.w_en.eq(self.mean.o.valid & self.mean.o.ready),
            mean_queue.w_data.eq(self.mean.o.payload.mean),
            reciprocal.i.valid.eq(self.isqrt.o.valid),
            self.isqrt.o.ready.eq(reciprocal.i.ready),
            reciprocal.i.payload.eq(Mux(root == 0, ZERO_ROOT_SUBSTITUTE, root) if plan.zero_root else root),
            reciprocal.o.ready.eq(1),
            inverse_queue.w_en.eq(reciprocal.o.valid),
        ]
        quotient = reciprocal.o.payload
        if plan.zero_root:
            m.d.comb += inverse_queue.w_data.eq(Mux(quotient > Q30_MAX, Q30_MAX, quotient))
        else:
            m.d.comb += inverse_queue.w_data.eq(quotient)

        # Output pass: a row starts when its inverse is out of the queue, then a beat a cycle while the output queue
        # has room for every beat in flight (``issued − delivered`` and its comparison are registers, with a margin
        # for their lag), so that ``o.ready`` reaches the output queue only and nothing in the pass stalls.
        m.submodules.output_queue = output_queue = self._queue(len(self.o.payload.as_value()),
                                                               self.output_queue_depth)
        count_width = (2 * self.output_queue_depth).bit_length()
        in_output = Signal(count_width, name="in_output")
        room = Signal(name="output_room")
        read_address = Signal(range(banks * beats))
        issue = Signal(name="issue")
        out_beat, row_first, row_last = _row_flags(m, issue, beats, "read")
        m.d.comb += issue.eq(room & (~row_first | inverse_queue.r_rdy))
        issued = event_counter(m, issue, count_width, "issued")
        delivered = event_counter(m, delay(m, self.o.valid & self.o.ready, 1, name="delivery"), count_width,
                                  "delivered")
        m.d.sync += [in_output.eq(issued - delivered), room.eq(in_output < self.room_threshold)]
        starts = issue & row_first
        released = Signal(name="released")
        m.d.sync += released.eq(issue & row_last)
        row_mean = Signal(INT8, name="row_mean")
        row_inverse = Signal(len(inverse_queue.r_data), name="row_inverse")
        mean = Mux(row_first, mean_queue.r_data.as_signed(), row_mean)
        inverse = Mux(row_first, inverse_queue.r_data, row_inverse)
        m.d.comb += [mean_queue.r_en.eq(starts), inverse_queue.r_en.eq(starts), row_buffer.r_en.eq(1),
                     row_buffer.r_addr.eq(read_address)]
        # ``ready`` is ``occupied < banks`` decided a cycle ahead, so that it leaves a register; ``occupied`` moves by
        # one at most, so the decision compares it with constants rather than its next value.
        m.d.sync += [occupied.eq(occupied + commit - released),
                     input_room.eq((occupied < banks - 1) | ((occupied == banks - 1) & (~commit | released))
                                   | ((occupied == banks) & released))]
        with m.If(issue):
            m.d.sync += [read_address.eq(following(read_address)), row_mean.eq(mean), row_inverse.eq(inverse)]

        read = MEMORY_LATENCY
        normalize, gamma_scale, rescale, bias_clamp = self.normalize, self.gamma_scale, self.rescale, self.bias_clamp
        m.d.comb += [
            normalize.x.eq(row_buffer.r_data),
            normalize.mean.eq(delay(m, mean, read, name="beat_mean")),
            normalize.inverse.eq(delay(m, inverse, read, name="beat_inverse")),
            gamma_scale.normalized.eq(normalize.o),
            *(gamma_scale.gamma[lane].eq(entry)
              for lane, entry in enumerate(self._entries(m, "gamma", out_beat, normalize.latency))),
            rescale.x.eq(gamma_scale.o),
            bias_clamp.x.eq(rescale.o),
            *(bias_clamp.bias[lane].eq(entry) for lane, entry in enumerate(
                self._entries(m, "bias", out_beat, normalize.latency + gamma_scale.latency + rescale.latency))),
            output_queue.w_en.eq(delay(m, issue, self.element_latency, name="valid")),
            output_queue.w_data.eq(Cat(bias_clamp.o, delay(m, row_last, self.element_latency, name="last"))),
            self.o.valid.eq(output_queue.r_rdy),
            self.o.payload.eq(output_queue.r_data),
            output_queue.r_en.eq(self.o.ready),
        ]
        return m

    def _entries(self, m: Module, name: str, beat: Signal, wait: int) -> list[Value]:
        """The table ``name``'s entry of each lane for the beat issued ``wait`` plus a memory read's cycles before:
        the lane's constant, or the table read at the beat's index delayed by ``wait`` (a table read takes as long as
        the row buffer's); signed, as narrow as the table's values."""
        rows = self._table_values()[name]
        bits = self._entry_bits(rows)
        if name not in self.tables:
            return [Const(value, signed(bits)) for value in rows[0]]
        table = self.tables[name]
        m.d.comb += table.addr[0].eq(delay(m, beat, wait, name=f"{name}_beat"))
        return [table.data[0][bits * lane:bits * (lane + 1)].as_signed() for lane in range(self.config.lanes)]

    def port_descriptions(self) -> dict[str, str]:
        lanes = self.config.lanes
        return {
            "i__valid": "input beat valid",
            "i__ready": "input beat accepted when valid",
            "i__payload": f"lane k: bits [8k+7:8k] (signed int8 feature {lanes}b+k on beat b of the row), "
                          f"last: bit {8 * lanes} (final beat of the row)",
            "o__valid": "output beat valid; held with its payload until taken",
            "o__ready": "sink takes the beat when valid",
            "o__payload": f"lane k: bits [8k+7:8k] (signed int8 output of feature {lanes}b+k), last: bit {8 * lanes}",
            "error": "sticky framing error (last on the wrong beat; rows are counted regardless); cleared by rst",
        }

    def describe(self) -> dict:
        """The sidecar's layernorm sections: ``quantisation`` (the integer parameters) and ``structure``."""
        plan, layer = self.plan, self.plan.layer
        return {
            "quantisation": {
                "gamma_q14": layer.gamma.tolist(),
                "beta_on_output_grid": layer.beta.tolist(),
                "epsilon_q": int(layer.epsilon_q),
                "output_multiplier": int(layer.output_multiplier),
                "output_shift_right": int(layer.output_shift),
                "zero_point_out": int(layer.output_zero_point),
                "clamp_low": int(layer.qmin),
                "clamp_high": int(layer.qmax),
            },
            "structure": {
                "row_buffer_banks": self.banks,
                "row_buffer_depth": self.banks * self.config.beats,
                "output_queue_depth": self.output_queue_depth,
                "mean_division": self._division_text(plan.mean_division),
                "variance_division": self._division_text(plan.variance_division),
                "variance": "one pass: Q + m*(N*m - 2S)",
                "denominator_bits": plan.denominator_bits,
                "isqrt_unit": "pipelined" if self.isqrt.pipelined else "iterative",
                "root_bits": plan.root_bits,
                "reciprocal_unit": "pipelined" if self.reciprocal.pipelined else "iterative",
                "reciprocal_quotient_bits": self.reciprocal.quotient_width,
                "inverse_bits": plan.inverse_max.bit_length(),
                "tables": sorted(self.tables),
                "statistics_latency": self.statistics_latency,
                "pipeline_stages": {name: stage.latency for name, stage in self.stages.items()},
                "dsp_blocks": self.dsp_blocks,
            },
        }

    @staticmethod
    def _division_text(division) -> str:
        if division.power_of_two:
            return f"shift right by {division.shift}"
        return f"(a * {division.multiplier}) >> {division.shift}, a < 2^{division.dividend_bits}"

    def artefacts(self) -> dict[str, str]:
        return {}


def _row_flags(m: Module, step: Value, beats: int, name: str) -> tuple[Signal, Signal, Signal]:
    """A count of the steps within their row of ``beats``, and registers that say whether the next step opens
    and whether it closes the row, kept beside the count so that no comparison of it comes before their users."""
    beat = Signal(range(max(beats, 2)), name=f"{name}_beat")
    opens = Signal(init=1, name=f"{name}_opens_row")
    closes = Signal(init=beats == 1, name=f"{name}_closes_row")
    with m.If(step):
        m.d.sync += [beat.eq(Mux(closes, 0, beat + 1)), opens.eq(closes),
                     closes.eq(Mux(closes, beats == 1, beat == beats - 2))]
    return beat, opens, closes
