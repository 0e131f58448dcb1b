"""The folded matrix–vector engine shared by the dense and matmul units (as FINN's MVAU), with the requantizer.

``pe`` processing elements each compute one output channel from ``simd`` products per cycle. A row of ``beats ·
simd`` inputs is multiplied by a ``[folds · pe, beats · simd]`` matrix in ``folds · beats`` steps: in fold ``f``,
PE ``k`` computes channel ``f·pe + k``. The first fold takes the row straight from the input stream and writes it
into a buffer that the later folds replay, so a row is accepted only while its first fold is computed: the input
waits no longer than the engine needs and the latency from a row's last input beat is a constant. The matrix lives
outside the engine (a ROM of weights, RAM banks of an operand): the engine names the word each step needs
(``weights_addr``) and takes it :data:`WEIGHT_LATENCY` cycles later.
"""

from collections.abc import Sequence

from amaranth import Const, Module, Mux, Signal, Value, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from int8attn.golden.requant import RequantConfig
from int8attn.hdl.memory import LATENCY as WEIGHT_LATENCY
from int8attn.hdl.memory import Ram
from int8attn.hdl.multiplier import Multiplier
from int8attn.hdl.pipeline import check_target, delay, event_counter
from int8attn.hdl.requant import ACCUMULATOR_BITS, Requantizer
from int8attn.hdl.streams import OUTPUT_QUEUE_LATENCY, ROOM_DELAY, LaneBeat, registered_output_queue
from int8attn.hdl.tree import reduce_tree, tree_stages
from int8attn.hdl.wrapcheck import WrapChecked

OPERAND_BITS = 9
"""Width of an int8 value minus its zero point: −255..255."""
ACCUMULATE_LATENCY = 2
"""The row sum's register and the bias addition's."""
OPERAND_REGISTER = 1
"""A register after the memories' reads and the choice between streamed and replayed inputs: each input feeds
``pe`` multipliers, and on an ECP5 the route from a block RAM through that choice to the DSP blocks alone takes
about 4 ns."""


class DotProduct(wiring.Component):
    """``Σ_s a[s]·b[s]`` over ``lanes`` pairs of signed operands: a :class:`~int8attn.hdl.multiplier.Multiplier`
    per pair (on ``ecp5`` with its product registered again in the fabric: the route from a DSP block to the tree
    alone took 4.5 ns in a 64-multiplier engine), then a registered adder tree.

    Parameters
    ----------
    lanes : int
        Pairs per cycle, ≥ 1.
    a_bits, b_bits : int
        Widths of the signed operands.
    target : str
        Target of the multipliers and of the tree's depth per stage.

    Attributes
    ----------
    sum_shape : Shape
        Signed, wide enough for every sum.

    Members
    -------
    en : In(1)
        Clock enable of every register.
    a, b : In(ArrayLayout(signed(bits), lanes))
        The operands.
    o : Out(sum_shape)
        Their dot product, :attr:`latency` enabled cycles later.
    """

    def __init__(self, lanes: int, a_bits: int, b_bits: int, target: str = "generic"):
        if lanes < 1:
            raise ValueError(f"lanes must be ≥ 1, not {lanes}")
        self.lanes = lanes
        self.target = check_target(target)
        self.multipliers = [Multiplier(signed(a_bits), signed(b_bits), target, fabric_register=target == "ecp5")
                            for _ in range(lanes)]
        self.sum_shape = signed(a_bits + b_bits + (lanes - 1).bit_length())
        super().__init__({
            "en": In(1),
            "a": In(data.ArrayLayout(signed(a_bits), lanes)),
            "b": In(data.ArrayLayout(signed(b_bits), lanes)),
            "o": Out(self.sum_shape),
        })

    @property
    def latency(self) -> int:
        """The multipliers' latency plus the tree's register stages."""
        return self.multipliers[0].latency + (tree_stages(self.lanes, self.target) if self.lanes > 1 else 0)

    def elaborate(self, platform):
        m = Module()
        products = []
        for lane, multiplier in enumerate(self.multipliers):
            m.submodules[f"multiplier{lane}"] = multiplier
            m.d.comb += [multiplier.en.eq(self.en), multiplier.a.eq(self.a[lane]), multiplier.b.eq(self.b[lane])]
            products.append(multiplier.o)
        total, _ = reduce_tree(m, products, lambda x, y: x + y, self.sum_shape, enable=self.en, target=self.target)
        m.d.comb += self.o.eq(total)
        return m


class FoldedEngine(WrapChecked, wiring.Component):
    """Rows of int8 inputs times a matrix held outside, accumulated in int32 and requantized.

    The pipeline never stalls: a step (fold ``f``, beat ``b``) issues only when its input beat is there (fold 0), the
    matrix is in place (``weights_ready``) and the output queue has room for every beat in flight, so nothing but
    the queue's read port sees the sink's ``ready``. Stages of a step:

    * ``operands``: the inputs ``x − input_zero_point`` (from the stream in fold 0, delayed as long as a memory read,
      else replayed from the row buffer) and the matrix word ``f·beats + b`` (``weights``), both registered once
      more (:data:`OPERAND_REGISTER`).
    * ``dot_product``: one :class:`DotProduct` per PE (on ``ecp5`` its sum registered once more,
      :attr:`product_register`).
    * ``accumulate``: a running int32 sum of every dot product, never cleared, so that its loop is a single adder
      (a bubble's operands are zeroed on the way in): a row's sum is the running sum after its last beat minus the
      one before its first (the running sum is read the cycle after the row's last beat, so the loop's adder drives
      nothing else), and ``wrap32(end − start + bias)`` (int32 arithmetic, as the kernels' accumulators
      wrap) is formed as ``end + (bias − start)``, the bracket computed while the row's later beats go by (a
      one-beat row adds its dot product and the bias directly); ``pe`` lanes a beat, for
    * ``requantizer``: :class:`~int8attn.hdl.requant.Requantizer` of ``requant``, and
    * ``output_queue``: a :class:`~int8attn.hdl.streams.ShallowQueue` in LUT RAM (a
      :class:`~amaranth.lib.fifo.SyncFIFOBuffered` without it) of :attr:`output_queue_depth` beats.

    A frame is ``rows`` rows: its output frame is ``rows · folds`` beats with ``last`` on the final one, and its input
    ``rows · beats`` beats with ``last`` on the final one. A ``last`` anywhere else, or missing there, raises the
    sticky ``error`` output; the frame is still taken as its count of beats.

    Parameters
    ----------
    folds, beats, simd, pe, rows : int
        Folds and input beats per row, lanes of the input and of the output, rows per frame; all ≥ 1.
    input_zero_point : int
        Subtracted from every input.
    weight_bits : int
        Width of a signed matrix element.
    biases : sequence of int
        ``folds · pe`` int32 biases, channel ``c`` at ``c``.
    requant : RequantConfig
        The output requantizer (``lanes = pe``).
    target : str
        Target of the multipliers, the row buffer and the requantizer.
    shared_room : bool
        Issue on ``issue_room`` (below) instead of the engine's own room flag, so that engines fed by one stream
        issue in lockstep without each one's flag reaching the others' issue logic; the output queue holds a beat
        more for the register that ``issue_room`` passes, and one more for a register between the sink's taking of
        a beat and the count of delivered beats (the queue sits at the requantizer, which in a stack lay far from
        the issue logic that counts deliveries: one take decision served both, 8.1 ns on an ECP5). The
        :class:`~int8attn.hdl.streams.ShallowQueue` counts its words in binary (``count="binary"``): in an ECP5 stack
        the take of the attention's projections' 29-bit thermometer codes was the critical path.

    Members
    -------
    i : In(stream.Signature(LaneBeat(simd, 8)))
        Input rows.
    o : Out(stream.Signature(LaneBeat(pe, requant.output_bits)))
        Output rows, ``folds`` beats each, one every ``beats`` cycles at full rate.
    error : Out(1)
        Sticky framing error, cleared by reset.
    weights_ready : In(1, init=1)
        Steps issue only while it is high (the matrix of the coming frame is in place).
    weights_en : Out(1)
        Clock enable of the matrix memories' read and output registers (always high: the pipeline never stalls).
    weights_addr : Out(range(folds · beats))
        Word of the step being issued.
    weights : In(ArrayLayout(ArrayLayout(signed(weight_bits), simd), pe))
        Each PE's word, :data:`WEIGHT_LATENCY` cycles after ``weights_addr``.
    frame_done : Out(1)
        The last step of a frame issues in this cycle.
    room : Out(1)
        With ``shared_room``: the engine's room flag (a register), the output queue has room for every beat in
        flight.
    issue_room : In(1)
        With ``shared_room``: the ``room`` flags of every engine sharing the input, ANDed and registered once by the
        owner; steps issue only while it is high.
    """

    def __init__(self, *, folds: int, beats: int, simd: int, pe: int, rows: int, input_zero_point: int,
                 weight_bits: int, biases: Sequence[int], requant: RequantConfig, target: str = "generic",
                 shared_room: bool = False):
        for name, value in (("folds", folds), ("beats", beats), ("simd", simd), ("pe", pe), ("rows", rows)):
            if value < 1:
                raise ValueError(f"{name} must be ≥ 1, not {value}")
        if len(biases) != folds * pe:
            raise ValueError(f"biases must hold folds·pe = {folds * pe} values, not {len(biases)}")
        if requant.lanes != pe or requant.channels != folds * pe:
            raise ValueError(f"requant must have lanes = pe = {pe} and channels = folds·pe = {folds * pe}")
        self.folds, self.beats, self.simd, self.pe, self.rows = folds, beats, simd, pe, rows
        self.input_zero_point = input_zero_point
        self.weight_bits = weight_bits
        self.biases = [int(bias) for bias in biases]
        self.target = check_target(target)
        self.shared_room = shared_room
        self.dot_products = [DotProduct(simd, OPERAND_BITS, weight_bits, target) for _ in range(pe)]
        self.requantizer = Requantizer(requant)
        ports = {
            "i": In(stream.Signature(LaneBeat(simd, 8))),
            "o": Out(stream.Signature(LaneBeat(pe, requant.output_bits))),
            "error": Out(1),
            "weights_ready": In(1, init=1),
            "weights_en": Out(1),
            "weights_addr": Out(range(max(folds * beats, 2))),
            "weights": In(data.ArrayLayout(data.ArrayLayout(signed(weight_bits), simd), pe)),
            "frame_done": Out(1),
        }
        if shared_room:
            ports |= {"room": Out(1), "issue_room": In(1)}
        super().__init__(ports)

    @property
    def stages(self) -> dict[str, int]:
        """Cycles of each stage from a step's issue to its output beat."""
        return {
            "operands": WEIGHT_LATENCY + OPERAND_REGISTER,
            "dot_product": self.dot_products[0].latency + self.product_register,
            "accumulate": ACCUMULATE_LATENCY + self.route_register,
            "requantizer": self.requantizer.latency,
            "output_queue": OUTPUT_QUEUE_LATENCY,
        }

    @property
    def latency(self) -> int:
        """Cycles from a row's last input beat being accepted to its first output beat being valid, without
        stalls."""
        return sum(self.stages.values())

    @property
    def route_register(self) -> int:
        """Registers between the bias addition and the requantizer: one on ``ecp5``, whose requantizer input lies at
        the DSP blocks (2.4 ns of route from the running sum into the addition, whose output the requantizer pulls
        away), none elsewhere."""
        return int(self.target == "ecp5")

    @property
    def product_register(self) -> int:
        """Registers between a PE's adder tree and its running sum: one on ``ecp5``, where the route from the tree's
        last register to the running sum's carry chain took 2.5 ns of a 5 ns cycle, none elsewhere."""
        return int(self.target == "ecp5")

    @property
    def room_delay(self) -> int:
        """Cycles by which the room flag that steps issue on lags the beats issued: :data:`ROOM_DELAY`, and one more
        for ``issue_room``'s register with ``shared_room``."""
        return ROOM_DELAY + self.shared_room

    @property
    def room_threshold(self) -> int:
        """Beats issued and not yet counted as delivered under which a step may issue: those of the pipeline and one,
        and with ``shared_room`` one more, the beat the delivered count's register has not counted yet."""
        return self.latency + 1 + self.shared_room

    @property
    def output_queue_depth(self) -> int:
        """Beats the output queue holds: every beat in flight when the sink stops taking them, with the room flag's
        lag."""
        return self.room_threshold + self.room_delay

    @property
    def multipliers(self) -> int:
        """Multipliers of the engine, ``pe · simd`` (the requantizer's are apart)."""
        return self.pe * self.simd

    def elaborate(self, platform):
        m = Module()
        folds, beats, simd, pe = self.folds, self.beats, self.simd, self.pe
        stages = self.stages

        fold = Signal(range(max(folds, 2)), name="fold")
        beat = Signal(range(max(beats, 2)), name="beat")
        row = Signal(range(max(self.rows, 2)), name="row")
        row_end = Signal(name="row_end") if beats > 1 else Const(1)
        fold_end = Signal(name="fold_end") if folds > 1 else Const(1)
        frame_end = Signal(name="frame_end") if self.rows > 1 else Const(1)
        streaming = Signal(init=1, name="streaming") if folds > 1 else Const(1)
        room = self.room if self.shared_room else Signal(name="room")
        can_issue = (self.issue_room if self.shared_room else room) & self.weights_ready
        issue = Signal(name="issue")
        m.d.comb += [self.i.ready.eq(can_issue & streaming), issue.eq(can_issue & (self.i.valid | ~streaming)),
                     self.frame_done.eq(issue & row_end & fold_end & frame_end)]
        with m.If(issue):
            self._count(m, beat, row_end, beats)
            with m.If(row_end):
                self._count(m, fold, fold_end, folds)
                if folds > 1:
                    m.d.sync += streaming.eq(fold_end)
                with m.If(fold_end):
                    self._count(m, row, frame_end, self.rows)
        with m.If(self.i.valid & self.i.ready & (self.i.payload.last != (row_end & frame_end))):
            m.d.sync += self.error.eq(1)

        operand_layout = data.ArrayLayout(signed(OPERAND_BITS), simd)
        centred = Signal(operand_layout, name="centred")
        m.d.comb += [centred[lane].eq(self.i.payload.data[lane] - self.input_zero_point) for lane in range(simd)]
        accept = self.i.valid & self.i.ready
        inputs = delay(m, centred, WEIGHT_LATENCY, name="stream_inputs")
        if folds > 1:
            inputs = Mux(delay(m, streaming, WEIGHT_LATENCY, name="from_stream"), inputs,
                         self._replayed(m, centred, accept, beat))
        if self.beats > 1:
            inputs = Mux(delay(m, issue, WEIGHT_LATENCY, name="operand_valid"), inputs, 0)
        inputs = delay(m, inputs, OPERAND_REGISTER, name="inputs")
        weights = delay(m, self.weights, OPERAND_REGISTER, name="weights")
        m.d.comb += [self.weights_en.eq(1), self.weights_addr.eq(fold * beats + beat if folds > 1 else beat)]

        flags = Signal(data.StructLayout({"valid": 1, "first": 1, "last": 1, "fold": len(fold), "frame_end": 1}),
                       name="flags")
        m.d.comb += [flags.valid.eq(issue), flags.first.eq(beat == 0), flags.last.eq(row_end), flags.fold.eq(fold),
                     flags.frame_end.eq(fold_end & frame_end)]
        step = delay(m, flags, stages["operands"] + stages["dot_product"], name="step")
        biases = self._biases(m, delay(m, flags.fold, stages["operands"] + stages["dot_product"] - 1,
                                       name="bias_fold"))

        m.submodules.requantizer = requantizer = self.requantizer
        self.share_wrap_checks([requantizer])
        row_started = delay(m, step.valid & step.first, 1, name="row_started")
        for k in range(pe):
            product = m.submodules[f"dot_product{k}"] = self.dot_products[k]
            m.d.comb += [product.en.eq(1), product.a.eq(inputs), product.b.eq(weights[k])]
            summand = delay(m, product.o, self.product_register, name=f"product{k}")
            offset = Signal(signed(ACCUMULATOR_BITS), name=f"offset{k}")
            if self.beats == 1:
                end_sum = Signal(signed(ACCUMULATOR_BITS), name=f"row_sum{k}")
                with m.If(step.valid):
                    m.d.sync += end_sum.eq(summand)
                m.d.comb += offset.eq(biases[k])
            else:
                end_sum = Signal(signed(ACCUMULATOR_BITS), name=f"running{k}")
                row_start_sum = Signal(signed(ACCUMULATOR_BITS), name=f"row_start_sum{k}")
                m.d.sync += end_sum.eq(end_sum + summand)
                with m.If(step.valid & step.first):
                    m.d.sync += row_start_sum.eq(end_sum)
                with m.If(row_started):
                    m.d.sync += offset.eq(biases[k] - row_start_sum)
            biased = Signal(signed(ACCUMULATOR_BITS), name=f"biased{k}")
            m.d.comb += biased.eq(end_sum + offset)
            if self.checking_wraps:
                self._check_row_sum(m, k, step, summand, biases[k], row_started, biased)
            m.d.sync += requantizer.i.payload.data[k].eq(delay(m, biased, self.route_register, name=f"routed{k}"))
        row_done = delay(m, step.valid & step.last, 1 + self.route_register, name="row_done")
        row_frame_end = Signal(name="row_frame_end")
        with m.If(step.valid & step.last):
            m.d.sync += row_frame_end.eq(step.frame_end)
        m.d.sync += [requantizer.i.valid.eq(row_done),
                     requantizer.i.payload.last.eq(delay(m, row_frame_end, self.route_register, name="routed_last"))]

        out_width = len(self.o.payload.as_value())
        m.submodules.output_queue = output_queue = registered_output_queue(
            out_width, self.output_queue_depth, self.target, "binary" if self.shared_room else "thermometer")
        m.d.comb += [requantizer.o.ready.eq(1), output_queue.w_en.eq(requantizer.o.valid),
                     output_queue.w_data.eq(requantizer.o.payload), self.o.valid.eq(output_queue.r_rdy),
                     self.o.payload.eq(output_queue.r_data), output_queue.r_en.eq(self.o.ready)]
        count_width = (2 * self.output_queue_depth).bit_length()
        issued = event_counter(m, issue & row_end, count_width, "issued")
        delivery = self.o.valid & self.o.ready
        if self.shared_room:
            delivery = delay(m, delivery, 1, name="delivery")
        delivered = event_counter(m, delivery, count_width, "delivered")
        in_output = Signal(count_width, name="in_output")
        m.d.sync += [in_output.eq(issued - delivered), room.eq(in_output < self.room_threshold)]
        return m

    def _check_row_sum(self, m: Module, k: int, step: data.View, summand: Value, bias: Value | int,
                       row_started: Value, biased: Value) -> None:
        """Formal only: PE ``k``'s row sum and bias, accumulated exactly beside the running sum, against ``biased``
        (the running sum's difference, wrapped to int32) on the cycle the requantizer takes it."""
        sum_used = delay(m, step.valid & step.last, 1, name=f"exact_sum_used{k}")
        exact_sum = Signal(signed(len(summand) + self.beats.bit_length()), name=f"exact_row_sum{k}")
        with m.If(step.valid):
            m.d.sync += exact_sum.eq(Mux(step.first, 0, exact_sum) + summand)
        row_bias = Signal(signed(ACCUMULATOR_BITS), name=f"exact_bias{k}")
        if self.beats == 1:
            m.d.comb += row_bias.eq(bias)
        else:
            with m.If(row_started):
                m.d.sync += row_bias.eq(bias)
        self.check_wrap(f"row_sum{k}", sum_used, exact_sum + row_bias, ACCUMULATOR_BITS, narrow=biased)

    @staticmethod
    def _count(m: Module, counter: Signal, at_end, length: int) -> None:
        """Advance ``counter`` through ``0 … length − 1`` and its registered flag ``at_end`` (the counter is at
        ``length − 1``); nothing to count when ``length`` is 1."""
        if length == 1:
            return
        m.d.sync += [counter.eq(Mux(at_end, 0, counter + 1)), at_end.eq(~at_end & (counter == length - 2))]

    def _replayed(self, m: Module, centred, accept, beat):
        """The inputs of the beat that a later fold's step names, :data:`WEIGHT_LATENCY` cycles after its issue: a
        register for one-beat rows, else the row buffer (:class:`~int8attn.hdl.memory.Ram`), written a cycle after
        the beat is accepted (at least two cycles before a later fold reads it)."""
        layout = centred.shape()
        if self.beats == 1:
            held = Signal(layout, name="held")
            with m.If(accept):
                m.d.sync += held.eq(centred)
            return delay(m, held, WEIGHT_LATENCY, name="replayed")
        m.submodules.row_buffer = buffer = Ram(layout.size, self.beats, target=self.target)
        m.d.sync += [buffer.w_en.eq(accept), buffer.w_addr.eq(beat), buffer.w_data.eq(centred)]
        m.d.comb += buffer.r_addr.eq(beat)
        return layout(buffer.r_data)

    def _biases(self, m: Module, fold) -> list:
        """Each PE's bias for the fold ``fold`` named two cycles earlier: constants when every fold has the same,
        else a memory read and a register after it (the memory may sit far from the PEs)."""
        table = [self.biases[f * self.pe:(f + 1) * self.pe] for f in range(self.folds)]
        if all(row == table[0] for row in table):
            return table[0]
        m.submodules.bias_table = table_memory = memory.Memory(
            shape=data.ArrayLayout(signed(ACCUMULATOR_BITS), self.pe), depth=self.folds, init=table)
        read = table_memory.read_port()
        m.d.comb += read.addr.eq(fold)
        registered = delay(m, read.data, 1, name="bias")
        return [registered[k] for k in range(self.pe)]
