"""The int8 softmax unit: max reduction → LUT index → exp ROM → accumulator → reciprocal → final MAC; in the
surrogate modes a score stage, a divider and a scaling stage take the exp ROM's, the reciprocal's and the MAC's
places."""

from amaranth import Cat, Module, Mux, Signal, Value, signed
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from int8attn.golden import SoftmaxConfig, SoftmaxModel
from int8attn.golden.config import SURROGATE_MODES
from int8attn.hdl.accumulator import Accumulator, ChunkedAccumulator
from int8attn.hdl.divide_mac import DivideMac
from int8attn.hdl.divider import ConstantDivider, LeadingOneReciprocal
from int8attn.hdl.exp_rom import DIFF_BITS, ExpRom
from int8attn.hdl.final_mac import FinalMac
from int8attn.hdl.lut_index import LutIndex
from int8attn.hdl.max_reduce import MaxReduce
from int8attn.hdl.memory import Ram
from int8attn.hdl.pipeline import delay, event_counter
from int8attn.hdl.reciprocal import Reciprocal, SharedReciprocal
from int8attn.hdl.streams import (
    LUT_RAM_TARGETS,
    OUTPUT_QUEUE_LATENCY,
    ROOM_DELAY,
    FrameStreams,
    LaneBeat,
    Queue,
    ShallowQueue,
    registered_output_queue,
)
from int8attn.hdl.surrogate_stages import Base2Terms, ClippedLinearScore, ScaleMac, ShiftOut
from int8attn.hdl.wrapcheck import WrapChecked

INDEX_QUEUE_SLACK = 4
SUM_SHIFT_BITS = 8
"""Width of the running-sum shift of a chunked ``base2`` unit: a maximum grows by at most 255."""
EXP_ROM_FILE = "exp_rom.hex"
SCORE_ROM_FILE = "score_rom.hex"
WEIGHT_ROM_FILE = "weight_rom.hex"
ROM_FORMATS = {
    "tflite": "Q0.31 exp(beta*input_scale*(x - max)), one hex word per line",
    "lut": "Q0.31 exp(beta*input_scale*(x - max)), one hex word per line",
    "tinymind": "TinyMind LUT entry lut[255 - index] (Q1.30)",
    "poly": "score max(b_q - index, 0)^n + delta_q, one hex word per line",
    "base2": "output weight m(index)*2^(9 - i(index)) of the fraction bits' exponent, one hex word per line",
}


class Softmax(WrapChecked, FrameStreams, wiring.Component):
    """Streaming int8 softmax, bit-exact with :class:`~int8attn.golden.SoftmaxModel` in every mode.

    A row of ``n`` elements arrives as ``n / lanes`` beats. Beats are written to a row buffer of :attr:`banks` banks
    while :class:`MaxReduce` finds the row maximum. The sum pass then reads the row back, turns each element into a
    ROM index (:class:`LutIndex`), sums the terms (:class:`ExpRom`, :class:`Accumulator`) and queues the indices.
    :class:`Reciprocal` turns the sum into a scale and a shift, and :class:`FinalMac` (modes ``tflite``, ``lut``) or
    :class:`DivideMac` (mode ``tinymind``) scales the queued exponentials of the row. The surrogate modes put their
    own stages in those places (:meth:`_build_surrogate`); a chunked ``base2`` unit also keeps each chunk's running
    maximum beside the row buffer. Rows overlap in every stage, so ``lanes`` elements are accepted and produced every
    cycle on back-to-back rows.

    Framing: a beat with ``last`` set before beat ``n/lanes − 1``, or beat ``n/lanes − 1`` without ``last``, raises the
    sticky ``error`` output; the row is dropped and input resumes after the next beat with ``last`` set.

    Causal (attention's mask, TinyMind's ``QCausalAttentionSoftmax1D``): the rows come in frames of ``n``, and row ``t``
    of a frame keeps its elements ``0..t``. A masked element enters the maximum as −128 and its exponential is 0 in
    the sum and in the output stage, so its probability is the zero point and the kept elements get the softmax of the
    row's first ``t + 1`` elements (in the exact modes, whose arithmetic does not depend on ``n``). Counters at the
    input and at the sum pass give the mask (:meth:`_causal_keep`); the index queue carries it to the output pass.

    Parameters
    ----------
    config : SoftmaxConfig
        Row length, lanes and quantisation, shared with the golden model and the testbench.
    causal : bool
        Mask each frame of ``n`` rows causally (above); modes ``tflite``, ``lut`` and ``tinymind``.
    shared_reciprocal : SharedReciprocal or None
        A reciprocal outside the unit, shared with others (its reciprocal built from :func:`reciprocal_arguments` of
        each user's configuration): the row sums leave on ``sums`` and their reciprocals return on ``scales``, after a
        wait of at most :attr:`SharedReciprocal.wait <int8attn.hdl.reciprocal.SharedReciprocal.wait>` cycles.

    Members
    -------
    i : In(stream.Signature(LaneBeat(lanes)))
        Input rows.
    o : Out(stream.Signature(LaneBeat(lanes, output_bits)))
        Probabilities (scale 2^−B, zero point −2^(B−1); B = 8 but in mode ``lut``; the surrogates' unsigned codes with
        zero point 0, Q15 for ``hccs`` with 16-bit output), ``last`` on the final beat of each row.
    error : Out(1)
        Sticky framing error, cleared by reset.
    sums : Out(stream.Signature(unsigned(sum_bits)))
        With a shared reciprocal only: the row sums.
    scales : In(stream.Signature(ReciprocalLayout(...), always_ready=True))
        With a shared reciprocal only: their reciprocals, in order, taken as they come.
    """

    def __init__(self, config: SoftmaxConfig, causal: bool = False,
                 shared_reciprocal: SharedReciprocal | None = None):
        if causal and config.mode in SURROGATE_MODES:
            raise ValueError(f"causal masking takes the exact modes tflite, lut and tinymind, not {config.mode}")
        self.config = config
        self.causal = causal
        self.shared_reciprocal = shared_reciprocal
        self.model = model = SoftmaxModel(config)
        lanes, target = config.lanes, config.target
        if shared_reciprocal is not None:
            arguments = reciprocal_arguments(config, model)
            if arguments is None or not arguments["pipelined"]:
                raise ValueError(f"shared_reciprocal takes the modes tflite, lut and tinymind with a pipelined "
                                 f"reciprocal, not mode {config.mode} at n={config.n}, lanes={lanes}")
        self.max_reduce = MaxReduce(lanes, target)
        self.row_buffer = Ram(8 * lanes, self.banks * config.beats, target=target)
        self.lut_index = LutIndex(lanes, registered=target != "generic")
        if config.mode in SURROGATE_MODES:
            self._build_surrogate()
        else:
            self._build_exact()
        ports = {
            "i": In(stream.Signature(LaneBeat(lanes))),
            "o": Out(stream.Signature(LaneBeat(lanes, model.output_bits, signed=model.output_signed))),
            "error": Out(1),
        }
        if shared_reciprocal is not None:
            ports |= {"sums": Out(self.reciprocal.sum_stream),
                      "scales": In(SharedReciprocal.result_stream(self.reciprocal))}
        super().__init__(ports)

    def _build_exact(self) -> None:
        """The stages of modes ``tflite``, ``lut`` and ``tinymind``: exp ROM, Newton or table reciprocal, final MAC
        (``tinymind``: a divider per lane)."""
        config, model = self.config, self.model
        lanes, target = config.lanes, config.target
        depth = model.rom_depth
        self.exp_rom = ExpRom(lanes, model.accumulator_table[:depth], model.exp_table[:depth], target=target)
        sum_bits = model.sum_bits
        self.accumulator = Accumulator(lanes, self.exp_rom.sum_width, sum_bits, model.exact_sum_bits, target=target)
        shared = self.shared_reciprocal
        self.reciprocal = Reciprocal(**reciprocal_arguments(config, model)) if shared is None else shared.reciprocal
        min_sum_bits = self.reciprocal.min_sum_bits
        if config.mode == "tinymind":
            self.final_mac = DivideMac(lanes, *self._exp_port(), sum_bits, min_sum_bits, target=target)
        else:
            self.final_mac = FinalMac(lanes, *self._exp_port(), sum_bits, min_sum_bits, model.output_bits,
                                      target=target)

    def _build_surrogate(self) -> None:
        """The stages of the surrogate modes: a score stage (``hccs``, and ``poly`` of degree 1 where it fits:
        ``B − S·min(d, Dmax)`` computed; ``poly``: a score ROM; ``base2``: ``256 >> shift(d)`` decoded), a divider by
        a constant numerator (``hccs`` ``clb``: a leading-one reciprocal) and a scaling MAC (``base2``: a shifter).
        The divider is iterative when a row lasts as long as a division, on the vendor targets with two registers per
        step when a row lasts as long as that (:class:`ConstantDivider`'s ``halves``), else pipelined."""
        config, model = self.config, self.model
        lanes, target = config.lanes, config.target
        if config.mode == "hccs":
            params = model.params
            self.exp_rom = ClippedLinearScore(lanes, params.b, params.s, params.dmax, target=target)
        elif config.mode == "poly" and model.linear_score is not None:
            self.exp_rom = ClippedLinearScore(lanes, *model.linear_score, target=target)
        elif config.mode == "poly":
            table = model.score_table[:model.rom_depth]
            self.exp_rom = ExpRom(lanes, table, table, target=target)
        elif self.weighted_base2:
            depth = model.rom_depth
            self.exp_rom = ExpRom(lanes, model.score_table[:depth], model.weight_table[:depth], target=target)
        else:
            self.exp_rom = Base2Terms(lanes, model.shift_table, target=target)
        sum_bits, min_sum = model.sum_bits, model.smallest_sum
        if self.chunked:
            self.chunk_max_reduce = MaxReduce(lanes, target)
            self.chunk_maxima = Ram(8, self.banks * config.beats, target=target)
            self.chunk_index = LutIndex(lanes, registered=target != "generic")
            self.accumulator = ChunkedAccumulator(lanes, self.exp_rom.sum_width, sum_bits, SUM_SHIFT_BITS,
                                                  target=target, chunk_beats=model.shortest_chunk // lanes)
        else:
            self.accumulator = Accumulator(lanes, self.exp_rom.sum_width, sum_bits, target=target)
        if config.mode == "hccs" and config.hccs_reciprocal == "clb":
            self.reciprocal = LeadingOneReciprocal(model.clb_table(sum_bits), sum_bits, min_sum, target=target)
        else:
            halves = target != "generic" and (
                ConstantDivider.iterative_interval(model.numerator, min_sum, halves=True) <= config.beats)
            pipelined = ConstantDivider.iterative_interval(model.numerator, min_sum, halves) > config.beats
            self.reciprocal = ConstantDivider(model.numerator, sum_bits, min_sum, pipelined=pipelined, target=target,
                                              halves=halves)
        inv_width = self.reciprocal.quotient_width
        if config.mode == "base2" and not self.weighted_base2:
            self.final_mac = ShiftOut(lanes, inv_width, target=target)
        else:
            inv_shift = model.weight_shift if config.mode == "base2" else model.inv_shift
            width, zero_bits = self._exp_port()
            self.final_mac = ScaleMac(lanes, width, inv_width, inv_shift - zero_bits, model.output_bits, target=target)

    @property
    def weighted_base2(self) -> bool:
        """Mode ``base2`` with fraction bits: a ROM of terms and output weights and a :class:`ScaleMac`, where ITA's
        arithmetic (requantized distances too) decodes a shift and shifts (:class:`Base2Terms`, :class:`ShiftOut`)."""
        return self.config.mode == "base2" and self.config.base2_frac_bits > 0

    @property
    def chunked(self) -> bool:
        """Mode ``base2`` with rows of several chunks: ITA's streaming sum."""
        return self.config.mode == "base2" and self.model.chunked

    @property
    def chunk_register(self) -> int:
        """Registers between the row buffer's output and the sum pass's indices: two in a chunked ``base2`` unit, which
        registers each chunk's running maximum from its RAM and then takes it and its rise there, none otherwise."""
        return 2 * self.chunked

    @property
    def stages(self) -> dict[str, wiring.Component]:
        """The pipeline stages by instance name; the surrogate modes name theirs for what they compute."""
        names = ("max_reduce", "row_buffer", "lut_index", "exp_rom", "accumulator", "reciprocal", "final_mac")
        if self.chunked:
            names += ("chunk_max_reduce", "chunk_maxima", "chunk_index")
        renamed = dict(zip(names, names, strict=True))
        if self.config.mode in SURROGATE_MODES:
            renamed |= {"exp_rom": "terms" if self.config.mode == "base2" else "score", "reciprocal": "normaliser",
                        "final_mac": "output_stage"}
        return {renamed[name]: getattr(self, name) for name in names}

    def _exp_port(self) -> tuple[int, int]:
        """Stored width and dropped zero bits of the exp ROM's ``out`` port."""
        return self.exp_rom.out_width - self.exp_rom.out_zero_bits, self.exp_rom.out_zero_bits

    @property
    def banks(self) -> int:
        """Row buffer banks: enough that the writer never waits for the sum pass at full rate."""
        beats = self.config.beats
        return 2 + -(-self.max_reduce.latency // beats)

    @property
    def scale_latency(self) -> int:
        """Cycles from reading a row's last beat to its scale entering the scale queue."""
        sum_register = 1
        return (self.row_buffer.latency + self.chunk_register + self.lut_index.latency + self.exp_rom.latency
                + self.accumulator.latency
                + sum_register + self.reciprocal_latency + self.scale_queue_latency)

    @property
    def reciprocal_latency(self) -> int:
        """Cycles from a row sum entering the reciprocal to its scale: the shared reciprocal's when there is one."""
        shared = self.shared_reciprocal
        return self.reciprocal.latency if shared is None else shared.latency

    @property
    def scale_queue_latency(self) -> int:
        """Cycles from a scale entering the scale queue to ``r_rdy``: 2 for the :class:`ShallowQueue` of
        :data:`LUT_RAM_TARGETS`, whose flags are registers (on ECP5 the ``SyncFIFO`` level behind ``r_rdy`` made the
        output pass's ``take`` decision a 5.3 ns path); 1 for the :class:`amaranth.lib.fifo.SyncFIFO` of the others
        (on iCE40, without LUT RAM, the ``ShallowQueue`` puts more 4-input LUT levels behind ``take``)."""
        return ShallowQueue.LATENCY if self.config.target in LUT_RAM_TARGETS else 1

    @property
    def index_queue_depth(self) -> int:
        """Beats the index queue holds: a row and the beats read while its scale is computed (and waits for a shared
        reciprocal), so the sum pass never waits at full rate."""
        wait = 0 if self.shared_reciprocal is None else self.shared_reciprocal.wait
        return self.config.beats + self.scale_latency + wait + INDEX_QUEUE_SLACK

    @property
    def index_register(self) -> int:
        """Registers the output pass puts between the index queue's read-ahead registers and the exp ROM's address:
        one on the vendor targets, none on ``generic``."""
        return int(self.config.target != "generic")

    @property
    def exp_register(self) -> int:
        """Registers between the exp ROM's output register and the final MAC: one on ``ecp5``, whose block RAM
        columns lie far from its DSP rows (4.4 ns of routing from a ``DP16KD`` to a ``MULT18X18D`` in the (256, 8)
        softmax), none elsewhere, nor after the surrogates' score stages, which hold no block RAM."""
        return int(self.config.target == "ecp5" and isinstance(self.exp_rom, ExpRom))

    @property
    def output_queue_depth(self) -> int:
        """Beats the output queue holds: every beat in flight in the final MAC when the sink stops taking them."""
        return (self.index_register + self.exp_rom.latency + self.exp_register + self.final_mac.latency + ROOM_DELAY
                + OUTPUT_QUEUE_LATENCY + 1)

    @property
    def scale_queue_depth(self) -> int:
        """Scales the scale queue holds: one per row whose every beat is in the index queue, and the row being
        output."""
        return self.index_queue_depth // self.config.beats + 2

    @property
    def latency(self) -> int:
        """Cycles from the last input beat of a row being accepted to its first output beat being valid."""
        maximum_queue = 1
        last_read = self.config.beats - 1
        return (self.max_reduce.latency + maximum_queue + last_read + self.scale_latency + self.index_register
                + self.exp_rom.latency + self.exp_register + self.final_mac.latency + OUTPUT_QUEUE_LATENCY)

    latency_from = "last"
    """:attr:`latency` counts from a row's last input beat: a row's output needs the whole row."""

    def port_descriptions(self) -> dict[str, str]:
        lanes, bits = self.config.lanes, self.model.output_bits
        kind = "signed int" if self.model.output_signed else "unsigned uint"
        return {
            "i__valid": "input beat valid",
            "i__ready": "input beat accepted when valid",
            "i__payload": f"lane k: bits [8k+7:8k] (signed int8), last: bit {8 * lanes}",
            "o__valid": "output beat valid",
            "o__ready": "sink takes the beat when valid",
            "o__payload": f"lane k: bits [{bits}k+{bits - 1}:{bits}k] ({kind}{bits}), last: bit {bits * lanes}",
            "error": "sticky framing error (last on the wrong beat); the row is dropped; cleared by rst",
        }

    def artefacts(self) -> dict[str, str]:
        """The numerator (mode ``poly``: score; ``base2``: output weight) table, one hex word per entry, for the modes
        that keep it in a ROM."""
        if not isinstance(self.exp_rom, ExpRom):
            return {}
        digits = (self.exp_rom.out_width + 3) // 4
        return {self.rom_file: "".join(f"{value:0{digits}x}\n" for value in self.exp_rom.out_table)}

    @property
    def rom_file(self) -> str:
        return {"poly": SCORE_ROM_FILE, "base2": WEIGHT_ROM_FILE}.get(self.config.mode, EXP_ROM_FILE)

    def describe(self) -> dict:
        """The sidecar's softmax sections: ``quantisation``, ``exp_rom`` (modes with a ROM) and ``structure``."""
        model, rom = self.model, self.exp_rom
        quantisation = {"output_scale": model.output_scale, "output_zero_point": model.output_zero_point}
        for name in ("input_multiplier", "input_left_shift", "diff_min"):
            if hasattr(model, name):
                quantisation[name] = getattr(model, name)
        sections = {"quantisation": quantisation | model.constants() if self.config.mode in SURROGATE_MODES
                    else quantisation}
        if isinstance(rom, ExpRom):
            sections["exp_rom"] = {
                "file": self.rom_file,
                "depth": rom.depth,
                "word_width": rom.out_width,
                "stored_width": rom.out_width - rom.out_zero_bits,
                "dropped_zero_bits": rom.out_zero_bits,
                "index": "max(row) - x; entries at or beyond depth read 0",
                "format": ROM_FORMATS[self.config.mode],
            }
        return sections | {
            "structure": {
                "row_buffer_banks": self.banks,
                "row_buffer_depth": self.banks * self.config.beats,
                "index_queue_depth": self.index_queue_depth,
                "scale_queue_depth": self.scale_queue_depth,
                "output_queue_depth": self.output_queue_depth,
                "term_width": rom.sum_width,
                "term_rom_stored_width": rom.sum_width - rom.sum_zero_bits,
                "sum_width": model.sum_bits,
                "sum_saturates": model.sum_bits < model.exact_sum_bits,
                "final_stage": type(self.final_mac).__name__,
                "reciprocal": self.reciprocal.method,
                "reciprocal_unit": "pipelined" if self.reciprocal.pipelined else "iterative",
                "reciprocal_initiation_interval": self.reciprocal.initiation_interval,
                "max_tree_stages": self.max_reduce.tree_stages,
                "adder_tree_stages": self.accumulator.tree_stages,
            },
        }

    def elaborate(self, platform):
        m = Module()
        lanes, beats = self.config.lanes, self.config.beats
        shared = self.shared_reciprocal is not None
        self.share_wrap_checks(self.stages.values())
        for name, stage in self.stages.items():
            if not (shared and name == "reciprocal"):
                m.submodules[name] = stage
        sums = self.sums if shared else self.reciprocal.i
        reciprocals = self.scales if shared else self.reciprocal.o
        row_buffer = self.row_buffer
        row_maxima = fifo.SyncFIFO(width=8, depth=self.banks)
        m.submodules.row_maxima = row_maxima
        index_width = lanes * DIFF_BITS
        index_queue = Queue(index_width + lanes * self.causal, self.index_queue_depth, self.config.target)
        m.submodules.index_queue = index_queue
        scale_width = len(Value.cast(self.reciprocal.o.payload))
        if self.config.target in LUT_RAM_TARGETS:
            scales = ShallowQueue(scale_width, self.scale_queue_depth)
        else:
            scales = fifo.SyncFIFO(width=scale_width, depth=self.scale_queue_depth)
        m.submodules.scales = scales

        # Input: framing, row buffer writes, row maximum.
        occupied = Signal(range(self.banks + 1))
        write_base = Signal(range(self.banks * beats))
        write_address = Signal(range(self.banks * beats))
        write_beat = Signal(range(max(beats, 2)))
        discarding = Signal()
        accept = self.i.valid & self.i.ready
        closes_row = write_beat == beats - 1
        framing_ok = self.i.payload.last == closes_row
        commit = accept & ~discarding & framing_ok & self.i.payload.last
        m.d.comb += [
            self.i.ready.eq(occupied < self.banks),
            row_buffer.w_addr.eq(write_address),
            row_buffer.w_data.eq(self.i.payload.data),
            row_buffer.w_en.eq(accept & ~discarding),
            self.max_reduce.valid.eq(accept & ~discarding),
            self.max_reduce.first.eq(write_beat == 0),
            self.max_reduce.commit.eq(commit),
            row_maxima.w_data.eq(self.max_reduce.max),
            row_maxima.w_en.eq(self.max_reduce.max_valid),
        ]
        if self.causal:
            keep = self._causal_keep(m, accept & ~discarding, commit, ~framing_ok, "write")
            m.d.comb += [self.max_reduce.lanes_in[lane].eq(Mux(keep[lane], self.i.payload.data[lane], -128))
                         for lane in range(lanes)]
        else:
            m.d.comb += self.max_reduce.lanes_in.eq(self.i.payload.data)
        with m.If(accept):
            with m.If(discarding):
                m.d.sync += discarding.eq(~self.i.payload.last)
            with m.Elif(~framing_ok):
                m.d.sync += [self.error.eq(1), write_beat.eq(0), write_address.eq(write_base),
                             discarding.eq(~self.i.payload.last)]
            with m.Elif(closes_row):
                m.d.sync += [write_beat.eq(0), write_base.eq(self._next(write_address)),
                             write_address.eq(self._next(write_address))]
            with m.Else():
                m.d.sync += [write_beat.eq(write_beat + 1), write_address.eq(self._next(write_address))]
        if self.chunked:
            self._write_chunk_maxima(m, accept & ~discarding, framing_ok, write_beat == 0, closes_row, write_address)

        # Sum pass: read the row back, index the ROM, accumulate, queue the indices. It never stalls: a beat is read
        # only while the index queue has room for it (``issued − taken``, the beats read and not yet taken by the output
        # pass), and the queue bounds the rows whose scales wait in ``scales``.
        count_width = (2 * self.index_queue_depth).bit_length()
        queued = Signal(count_width)
        room = Signal()
        read_address = Signal(range(self.banks * beats))
        read_beat = Signal(range(max(beats, 2)))
        issue = row_maxima.r_rdy & room
        issued = event_counter(m, issue, count_width, "issued")
        releases = issue & (read_beat == beats - 1)
        m.d.comb += [
            row_buffer.r_addr.eq(read_address),
            row_maxima.r_en.eq(releases),
        ]
        m.d.sync += occupied.eq(occupied + commit - releases)
        with m.If(issue):
            m.d.sync += [read_beat.eq(Mux(read_beat == beats - 1, 0, read_beat + 1)),
                         read_address.eq(self._next(read_address))]

        read_latency = self.row_buffer.latency + self.chunk_register
        first, last = read_beat == 0, read_beat == beats - 1
        read_data, term_index = row_buffer.r_data, self.lut_index.index
        if self.chunked:
            # The terms of ITA's streaming sum: each chunk's elements below the running maximum after the chunk.
            first, last, chunk_flags = self._read_chunk_maxima(m, issue, read_beat, read_address)
            read_data = delay(m, row_buffer.r_data, self.chunk_register, name="read_data")
            term_index = self.chunk_index.index
            m.d.comb += [self.chunk_index.en.eq(1), self.chunk_index.max.eq(chunk_flags["maximum"]),
                         self.chunk_index.lanes_in.eq(read_data)]
            rom_flags = {name: delay(m, chunk_flags[name], self.lut_index.latency + self.exp_rom.latency - lag,
                                     name=f"rom_{name}") for name, lag in (("row_first", 0), ("row_last", 0),
                                                                            ("shift", 1))}
            m.d.comb += [self.accumulator.row_first.eq(rom_flags["row_first"]),
                         self.accumulator.row_last.eq(rom_flags["row_last"]),
                         self.accumulator.shift.eq(rom_flags["shift"])]
        read_valid, read_first, read_last = (
            delay(m, value, read_latency, name=name) for value, name in (
                (issue, "read_valid"), (first, "read_first"), (last, "read_last")))
        read_max = delay(m, row_maxima.r_data.as_signed(), read_latency, name="read_max")
        index_valid, index_first, index_last = (
            delay(m, value, self.lut_index.latency, name=name) for value, name in (
                (read_valid, "index_valid"), (read_first, "index_first"), (read_last, "index_last")))
        rom_valid, rom_first, rom_last = (
            delay(m, value, self.exp_rom.latency, name=name) for value, name in (
                (index_valid, "rom_valid"), (index_first, "rom_first"), (index_last, "rom_last")))
        m.d.comb += [
            self.lut_index.en.eq(1),
            self.lut_index.max.eq(read_max),
            self.lut_index.lanes_in.eq(read_data),
            self.exp_rom.sum.en.eq(1),
            self.exp_rom.sum.addr.eq(term_index),
            index_queue.w_en.eq(index_valid),
            self.accumulator.en.eq(1),
            self.accumulator.valid.eq(rom_valid),
            self.accumulator.first.eq(rom_first),
            self.accumulator.last.eq(rom_last),
        ]
        if self.causal:
            read_keep = self._causal_keep(m, issue, releases, 0, "read")
            index_keep = delay(m, read_keep, read_latency + self.lut_index.latency, name="index_keep")
            rom_keep = delay(m, index_keep, self.exp_rom.latency, name="rom_keep")
            m.d.comb += [index_queue.w_data.eq(Cat(self.lut_index.index, index_keep)),
                         *_masked(self.accumulator.terms, self.exp_rom.sum.data, rom_keep, lanes)]
        else:
            m.d.comb += [index_queue.w_data.eq(self.lut_index.index),
                         self.accumulator.terms.eq(self.exp_rom.sum.data)]
        with m.If(self.accumulator.sum_valid):
            m.d.sync += [sums.valid.eq(1), sums.payload.eq(self.accumulator.sum)]
        with m.Elif(sums.ready):
            m.d.sync += sums.valid.eq(0)
        m.d.comb += [scales.w_en.eq(reciprocals.valid), scales.w_data.eq(reciprocals.payload)]
        if not shared:
            m.d.comb += reciprocals.ready.eq(1)

        # Output pass: join each queued beat with its row's scale (which leaves the scale queue with the row's last
        # beat), then the final MAC. It never stalls either: a beat is taken only while the output queue has room for
        # every beat in flight.
        out_width = len(self.o.payload.as_value())
        m.submodules.output_queue = output_queue = registered_output_queue(out_width, self.output_queue_depth,
                                                                           self.config.target)
        out_room = Signal()
        out_beat = Signal(range(max(beats, 2)))
        closes_row = Signal(init=beats == 1)
        take = out_room & index_queue.r_rdy & scales.r_rdy
        taken = event_counter(m, take, count_width, "taken")
        delivered = event_counter(m, self.o.valid & self.o.ready, count_width, "delivered")
        in_output = Signal(count_width)
        m.d.sync += [
            in_output.eq(taken - delivered),
            out_room.eq(in_output < self.output_queue_depth - ROOM_DELAY),
        ]
        index = delay(m, index_queue.r_data[:index_width] if self.causal else index_queue.r_data, self.index_register,
                      name="index")
        mac_delay = self.index_register + self.exp_rom.latency + self.exp_register
        mac_valid, mac_last, mac_reciprocal = (
            delay(m, value, mac_delay, name=name)
            for value, name in (
                (take, "mac_valid"), (closes_row, "mac_last"), (scales.r_data, "mac_reciprocal")))
        exp = delay(m, self.exp_rom.out.data, self.exp_register, name="exp")
        if self.causal:
            mac_keep = delay(m, index_queue.r_data[index_width:], mac_delay, name="mac_keep")
            m.d.comb += _masked(self.final_mac.exp, exp, mac_keep, lanes)
        else:
            m.d.comb += self.final_mac.exp.eq(exp)
        m.d.comb += [
            index_queue.r_en.eq(take),
            scales.r_en.eq(take & closes_row),
            self.exp_rom.out.en.eq(1),
            self.exp_rom.out.addr.eq(index),
            self.final_mac.valid.eq(mac_valid),
            self.final_mac.last.eq(mac_last),
            self.final_mac.reciprocal.eq(mac_reciprocal),
        ]
        m.d.comb += [
            self.final_mac.o.ready.eq(1),
            output_queue.w_en.eq(self.final_mac.o.valid),
            output_queue.w_data.eq(self.final_mac.o.payload),
            self.o.valid.eq(output_queue.r_rdy),
            self.o.payload.eq(output_queue.r_data),
            output_queue.r_en.eq(self.o.ready),
        ]
        with m.If(take):
            m.d.sync += [
                out_beat.eq(Mux(closes_row, 0, out_beat + 1)),
                closes_row.eq(out_beat == beats - 2 if beats > 1 else 1),
            ]
        m.d.sync += [
            queued.eq(issued - taken),
            room.eq(queued < self.index_queue_depth - ROOM_DELAY),
        ]
        return m

    def _causal_keep(self, m: Module, step: Value, row_end: Value, restart: Value, name: str) -> Signal:
        """The lanes a causal frame keeps of the beat ``step`` takes next, registered: ``limit`` is the row's index
        ``t`` in its frame less the beat's first element, and lane ``k`` is kept while ``k ≤ limit``. ``row_end``
        steps to the next row (after row ``n − 1``, row 0 of the next frame), ``restart`` back to the row's first
        beat."""
        lanes, n = self.config.lanes, self.config.n
        row = Signal(range(n), name=f"{name}_row")
        limit = Signal(range(-n, n), name=f"{name}_limit")
        keep = Signal(lanes, init=1, name=f"{name}_keep")
        next_row = Mux(row == n - 1, 0, row + 1)
        next_limit = Signal.like(limit, name=f"{name}_next_limit")
        m.d.comb += next_limit.eq(Mux(row_end, next_row, Mux(restart, row, limit - lanes)))
        with m.If(step):
            m.d.sync += [limit.eq(next_limit), keep.eq(Cat(next_limit >= lane for lane in range(lanes)))]
            with m.If(row_end):
                m.d.sync += row.eq(next_row)
        return keep

    def _chunk_beat(self, m: Module, event: Value, restart: Value, row_end: Value, name: str) -> tuple[Value, Value]:
        """A count of the beats of ``event`` within their base-2 chunk, back to 0 after a chunk's last beat, after
        ``row_end`` and on ``restart``; returns whether the beat opens and whether it closes its chunk."""
        chunk_beats = self.config.base2_chunk // self.config.lanes
        beat = Signal(range(max(chunk_beats, 2)), name=name)
        closes = (beat == chunk_beats - 1) | row_end
        with m.If(event):
            m.d.sync += beat.eq(Mux(closes | restart, 0, beat + 1))
        return beat == 0, closes

    def _write_chunk_maxima(self, m: Module, taken: Value, framing_ok: Value, row_start: Value, row_end: Value,
                            write_address: Value) -> None:
        """Input pass of a chunked ``base2`` row: the running maximum of the row up to the end of each chunk, written to
        :attr:`chunk_maxima` at the address of the chunk's first beat (rows dropped for their framing are overwritten
        like their beats). A row's first beat never closes a chunk, which lasts two beats or more."""
        opens, closes = self._chunk_beat(m, taken, ~framing_ok, row_end, "write_chunk_beat")
        chunk_start = Signal.like(write_address, name="chunk_start")
        start = Mux(opens, write_address, chunk_start)
        with m.If(taken):
            m.d.sync += chunk_start.eq(start)
        reduce = self.chunk_max_reduce
        m.d.comb += [
            reduce.valid.eq(taken),
            reduce.lanes_in.eq(self.i.payload.data),
            reduce.first.eq(row_start),
            reduce.commit.eq(taken & framing_ok & closes),
            self.chunk_maxima.w_en.eq(reduce.max_valid),
            self.chunk_maxima.w_addr.eq(delay(m, start, reduce.latency, name="chunk_max_address")),
            self.chunk_maxima.w_data.eq(reduce.max),
        ]

    def _read_chunk_maxima(self, m: Module, issue: Value, read_beat: Value,
                           read_address: Value) -> tuple[Value, Value, dict[str, Value]]:
        """Sum pass of a chunked ``base2`` row: the chunk flags of each beat read and, :attr:`chunk_register` cycles
        after its row-buffer data, the running maximum up to the end of its chunk (registered once after the RAM) and
        whether the chunk opens and closes its row; a cycle later, the shift of the running sum, ``shift(new − old
        maximum)`` (0 for a row's first chunk and when the maximum stays)."""
        beats = self.config.beats
        row_end = read_beat == beats - 1
        opens, closes = self._chunk_beat(m, issue, 0, row_end, "read_chunk_beat")
        latency = self.row_buffer.latency + 1
        valid, chunk_opens, row_opens = (
            delay(m, value, latency, name=name) for value, name in (
                (issue, "chunk_read_valid"), (opens, "chunk_read_opens"), (read_beat == 0, "chunk_read_row_first")))
        chunk_max = delay(m, self.chunk_maxima.r_data.as_signed(), 1, name="chunk_max")
        maximum = Signal(signed(8), name="running_max")
        rise = Signal(8, name="max_rise")
        shift = Signal(8, name="sum_shift")
        chunk_row_first = Signal(name="chunk_row_first")
        with m.If(valid & chunk_opens):
            m.d.sync += [
                maximum.eq(chunk_max),
                rise.eq(Mux(row_opens, 0, (chunk_max - maximum).as_unsigned()[:8])),
                chunk_row_first.eq(row_opens),
            ]
        grid_shift = self.config.base2_grid_shift
        m.d.sync += shift.eq((rise + ((1 << grid_shift) >> 1)) >> grid_shift)
        m.d.comb += self.chunk_maxima.r_addr.eq(read_address)
        return opens, closes, {"maximum": maximum, "shift": shift, "row_first": chunk_row_first,
                               "row_last": delay(m, row_end, latency + 1, name="chunk_row_last")}

    def _next(self, address: Signal):
        """The row buffer address after ``address``: its banks follow each other, so rows are read and written at
        consecutive addresses, wrapping after the last bank."""
        return Mux(address == self.banks * self.config.beats - 1, 0, address + 1)


def _masked(target: Value, terms: Value, keep: Value, lanes: int) -> list:
    """``target`` lane by lane: ``terms``' lane where ``keep`` has its bit, else 0."""
    return [target[lane].eq(Mux(keep[lane], terms[lane], 0)) for lane in range(lanes)]


def reciprocal_arguments(config: SoftmaxConfig, model: SoftmaxModel) -> dict | None:
    """The :class:`~int8attn.hdl.reciprocal.Reciprocal` arguments of a unit of ``config`` (``None`` in the surrogate
    modes, whose normaliser is another unit): pipelined when a row is shorter than two iterative divisions."""
    if config.mode in SURROGATE_MODES:
        return None
    steps = config.reciprocal_steps
    return {
        "sum_width": model.sum_bits,
        "min_sum_bits": int(model.accumulator_table[0]).bit_length(),
        "output_bits": model.output_bits,
        "steps": steps,
        "table": model.reciprocal_table if config.mode != "tinymind" and config.reciprocal == "lut" else None,
        "pipelined": 2 * Reciprocal.newton_latency(steps, config.target) > config.beats,
        "carry_sum": config.mode == "tinymind",
        "target": config.target,
    }
