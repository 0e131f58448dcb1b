"""The int8 softmax unit: max reduction → LUT index → exp ROM → accumulator → reciprocal → final MAC."""

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from int8attn.golden import SoftmaxConfig, SoftmaxModel
from int8attn.hdl.accumulator import Accumulator
from int8attn.hdl.divide_mac import DivideMac
from int8attn.hdl.exp_rom import DIFF_BITS, ExpRom
from int8attn.hdl.final_mac import FinalMac
from int8attn.hdl.lut_index import LutIndex
from int8attn.hdl.max_reduce import MaxReduce
from int8attn.hdl.pipeline import delay
from int8attn.hdl.reciprocal import Reciprocal
from int8attn.hdl.streams import FrameStreams, LaneBeat

INDEX_QUEUE_SLACK = 32
EXP_ROM_FILE = "exp_rom.hex"
ROW_BUFFER_LATENCY = 1


class Softmax(FrameStreams, wiring.Component):
    """Streaming int8 softmax, bit-exact with :class:`~int8attn.golden.SoftmaxModel` in every mode.

    A row of ``n`` elements arrives as ``n / lanes`` beats. Beats are written to a row buffer of :attr:`banks` banks
    while :class:`MaxReduce` finds the row maximum. The sum pass then reads the row back, turns each element into a
    ROM index (:class:`LutIndex`), sums the terms (:class:`ExpRom`, :class:`Accumulator`) and queues the indices.
    :class:`Reciprocal` turns the sum into a scale and a shift, and :class:`FinalMac` (modes ``tflite``, ``lut``) or
    :class:`DivideMac` (mode ``tinymind``) scales the queued exponentials of the row. Rows overlap in every stage,
    so ``lanes`` elements are accepted and produced every cycle on back-to-back rows.

    Framing: a beat with ``last`` set before beat ``n/lanes − 1``, or beat ``n/lanes − 1`` without ``last``, raises the
    sticky ``error`` output; the row is dropped and input resumes after the next beat with ``last`` set.

    Parameters
    ----------
    config : SoftmaxConfig
        Row length, lanes and quantisation, shared with the golden model and the testbench.

    Members
    -------
    i : In(stream.Signature(LaneBeat(lanes)))
        Input rows.
    o : Out(stream.Signature(LaneBeat(lanes, output_bits)))
        Probabilities (scale 2^−B, zero point −2^(B−1); B = 8 but in mode ``lut``), ``last`` on the final beat of
        each row.
    error : Out(1)
        Sticky framing error, cleared by reset.
    """

    def __init__(self, config: SoftmaxConfig):
        self.config = config
        self.model = model = SoftmaxModel(config)
        lanes = config.lanes
        self.max_reduce = MaxReduce(lanes)
        self.lut_index = LutIndex(lanes)
        depth = model.rom_depth
        self.exp_rom = ExpRom(lanes, model.accumulator_table[:depth], model.exp_table[:depth])
        sum_bits = model.sum_bits
        self.accumulator = Accumulator(lanes, self.exp_rom.sum_width, sum_bits, model.exact_sum_bits)
        min_sum_bits = int(model.accumulator_table[0]).bit_length()
        steps = config.reciprocal_steps
        pipelined = Reciprocal.newton_latency(steps) > config.beats
        if config.mode == "tinymind":
            self.reciprocal = Reciprocal(sum_bits, min_sum_bits, model.output_bits, steps=steps, pipelined=pipelined,
                                         carry_sum=True)
            self.final_mac = DivideMac(lanes, *self._exp_port(), sum_bits, min_sum_bits)
        else:
            table = model.reciprocal_table if config.reciprocal == "lut" else None
            self.reciprocal = Reciprocal(sum_bits, min_sum_bits, model.output_bits, steps=steps, table=table,
                                         pipelined=pipelined)
            self.final_mac = FinalMac(lanes, *self._exp_port(), sum_bits, min_sum_bits, model.output_bits)
        super().__init__({
            "i": In(stream.Signature(LaneBeat(lanes))),
            "o": Out(stream.Signature(LaneBeat(lanes, model.output_bits))),
            "error": Out(1),
        })

    def _exp_port(self) -> tuple[int, int]:
        """Stored width and dropped zero bits of the exp ROM's ``out`` port."""
        return self.exp_rom.out_width - self.exp_rom.out_zero_bits, self.exp_rom.out_zero_bits

    @property
    def banks(self) -> int:
        """Row buffer banks: enough that the writer never waits for the sum pass at full rate."""
        beats = self.config.beats
        return 2 + -(-self.max_reduce.latency // beats)

    @property
    def index_queue_depth(self) -> int:
        return self.config.beats + INDEX_QUEUE_SLACK

    @property
    def latency(self) -> int:
        """Cycles from the last input beat of a row being accepted to its first output beat being valid."""
        maximum_queue = sum_register = 1
        last_read = self.config.beats - 1
        return (self.max_reduce.latency + maximum_queue + last_read + ROW_BUFFER_LATENCY + self.exp_rom.latency
                + self.accumulator.latency + sum_register + self.reciprocal.latency + self.exp_rom.latency
                + self.final_mac.latency)

    latency_from = "last"
    """:attr:`latency` counts from a row's last input beat: a row's output needs the whole row."""

    def port_descriptions(self) -> dict[str, str]:
        lanes, bits = self.config.lanes, self.model.output_bits
        return {
            "i__valid": "input beat valid",
            "i__ready": "input beat accepted when valid",
            "i__payload": f"lane k: bits [8k+7:8k] (signed int8), last: bit {8 * lanes}",
            "o__valid": "output beat valid",
            "o__ready": "sink takes the beat when valid",
            "o__payload": f"lane k: bits [{bits}k+{bits - 1}:{bits}k] (signed int{bits}), last: bit {bits * lanes}",
            "error": "sticky framing error (last on the wrong beat); the row is dropped; cleared by rst",
        }

    def artefacts(self) -> dict[str, str]:
        """``exp_rom.hex``: the numerator table, one hex word per entry."""
        digits = (self.exp_rom.out_width + 3) // 4
        return {EXP_ROM_FILE: "".join(f"{value:0{digits}x}\n" for value in self.exp_rom.out_table)}

    def describe(self) -> dict:
        """The sidecar's softmax sections: ``quantisation``, ``exp_rom`` and ``structure``."""
        model, rom = self.model, self.exp_rom
        quantisation = {"output_scale": 2.0 ** -model.output_bits, "output_zero_point": model.output_zero_point}
        for name in ("input_multiplier", "input_left_shift", "diff_min"):
            if hasattr(model, name):
                quantisation[name] = getattr(model, name)
        return {
            "quantisation": quantisation,
            "exp_rom": {
                "file": EXP_ROM_FILE,
                "depth": rom.depth,
                "word_width": rom.out_width,
                "stored_width": rom.out_width - rom.out_zero_bits,
                "dropped_zero_bits": rom.out_zero_bits,
                "index": "max(row) - x; entries at or beyond depth read 0",
                "format": ("TinyMind LUT entry lut[255 - index] (Q1.30)" if self.config.mode == "tinymind"
                           else "Q0.31 exp(beta*input_scale*(x - max)), one hex word per line"),
            },
            "structure": {
                "row_buffer_banks": self.banks,
                "row_buffer_depth": self.banks * self.config.beats,
                "index_queue_depth": self.index_queue_depth,
                "term_width": rom.sum_width,
                "term_rom_stored_width": rom.sum_width - rom.sum_zero_bits,
                "sum_width": model.sum_bits,
                "sum_saturates": model.sum_bits < model.exact_sum_bits,
                "final_stage": type(self.final_mac).__name__,
                "reciprocal": self.reciprocal.method,
                "reciprocal_unit": "pipelined" if self.reciprocal.pipelined else "iterative",
                "reciprocal_initiation_interval": self.reciprocal.initiation_interval,
                "max_tree_stages": self.max_reduce.tree_stages,
                "adder_tree_stages": self.accumulator.latency - 1,
            },
        }

    def elaborate(self, platform):
        m = Module()
        lanes, beats = self.config.lanes, self.config.beats
        for name in ("max_reduce", "lut_index", "exp_rom", "accumulator", "reciprocal", "final_mac"):
            m.submodules[name] = getattr(self, name)

        row_buffer = memory.Memory(shape=data.ArrayLayout(signed(8), lanes), depth=self.banks * beats, init=[])
        m.submodules.row_buffer = row_buffer
        write = row_buffer.write_port()
        read = row_buffer.read_port()
        row_maxima = fifo.SyncFIFO(width=8, depth=self.banks)
        m.submodules.row_maxima = row_maxima
        index_queue = fifo.SyncFIFOBuffered(width=lanes * DIFF_BITS, depth=self.index_queue_depth)
        m.submodules.index_queue = index_queue

        # Input: framing, row buffer writes, row maximum.
        occupied = Signal(range(self.banks + 1))
        write_base = Signal(range(self.banks * beats))
        write_beat = Signal(range(max(beats, 2)))
        discarding = Signal()
        accept = self.i.valid & self.i.ready
        closes_row = write_beat == beats - 1
        framing_ok = self.i.payload.last == closes_row
        commit = accept & ~discarding & framing_ok & self.i.payload.last
        m.d.comb += [
            self.i.ready.eq(occupied < self.banks),
            write.addr.eq(write_base + write_beat),
            write.data.eq(self.i.payload.data),
            write.en.eq(accept & ~discarding),
            self.max_reduce.valid.eq(accept & ~discarding),
            self.max_reduce.lanes_in.eq(self.i.payload.data),
            self.max_reduce.first.eq(write_beat == 0),
            self.max_reduce.commit.eq(commit),
            row_maxima.w_data.eq(self.max_reduce.max),
            row_maxima.w_en.eq(self.max_reduce.max_valid),
        ]
        with m.If(accept):
            with m.If(discarding):
                m.d.sync += discarding.eq(~self.i.payload.last)
            with m.Elif(~framing_ok):
                m.d.sync += [self.error.eq(1), write_beat.eq(0), discarding.eq(~self.i.payload.last)]
            with m.Elif(closes_row):
                m.d.sync += [write_beat.eq(0), write_base.eq(self._next_row(write_base))]
            with m.Else():
                m.d.sync += write_beat.eq(write_beat + 1)

        # Sum pass: read the row back, index the ROM, accumulate, queue the indices.
        sum_enable = Signal()
        read_base = Signal(range(self.banks * beats))
        read_beat = Signal(range(max(beats, 2)))
        issue = sum_enable & row_maxima.r_rdy
        releases = issue & (read_beat == beats - 1)
        m.d.comb += [
            read.en.eq(sum_enable),
            read.addr.eq(read_base + read_beat),
            row_maxima.r_en.eq(releases),
        ]
        m.d.sync += occupied.eq(occupied + commit - releases)
        with m.If(issue):
            with m.If(read_beat == beats - 1):
                m.d.sync += [read_beat.eq(0), read_base.eq(self._next_row(read_base))]
            with m.Else():
                m.d.sync += read_beat.eq(read_beat + 1)

        read_valid, read_first, read_last, read_max = (
            delay(m, value, ROW_BUFFER_LATENCY, enable=sum_enable, name=name) for value, name in (
                (issue, "read_valid"), (read_beat == 0, "read_first"), (read_beat == beats - 1, "read_last"),
                (row_maxima.r_data.as_signed(), "read_max")))
        rom_valid, rom_first, rom_last = (
            delay(m, value, self.exp_rom.latency, enable=sum_enable, name=name) for value, name in (
                (read_valid, "rom_valid"), (read_first, "rom_first"), (read_last, "rom_last")))
        m.d.comb += [
            self.lut_index.max.eq(read_max),
            self.lut_index.lanes_in.eq(read.data),
            self.exp_rom.sum.en.eq(sum_enable),
            self.exp_rom.sum.addr.eq(self.lut_index.index),
            index_queue.w_data.eq(self.lut_index.index),
            index_queue.w_en.eq(read_valid & sum_enable),
            self.accumulator.en.eq(sum_enable),
            self.accumulator.valid.eq(rom_valid),
            self.accumulator.first.eq(rom_first),
            self.accumulator.last.eq(rom_last),
            self.accumulator.terms.eq(self.exp_rom.sum.data),
            sum_enable.eq(~(read_valid & ~index_queue.w_rdy) & ~(self.reciprocal.i.valid & ~self.reciprocal.i.ready)),
        ]
        with m.If(self.accumulator.sum_valid & sum_enable):
            m.d.sync += [self.reciprocal.i.valid.eq(1), self.reciprocal.i.payload.eq(self.accumulator.sum)]
        with m.Elif(self.reciprocal.i.ready):
            m.d.sync += self.reciprocal.i.valid.eq(0)

        # Output pass: join each queued beat with its row's reciprocal, then the final MAC.
        out_enable = self.final_mac.en
        out_beat = Signal(range(max(beats, 2)))
        row_reciprocal = Signal.like(self.reciprocal.o.payload)
        starts_row = out_beat == 0
        take = out_enable & index_queue.r_rdy & (~starts_row | self.reciprocal.o.valid)
        current = Mux(starts_row, self.reciprocal.o.payload.as_value(), row_reciprocal.as_value())
        mac_valid, mac_last, mac_reciprocal = (
            delay(m, value, self.exp_rom.latency, enable=out_enable, name=name) for value, name in (
                (take, "mac_valid"), (out_beat == beats - 1, "mac_last"), (current, "mac_reciprocal")))
        m.d.comb += [
            index_queue.r_en.eq(take),
            self.reciprocal.o.ready.eq(take & starts_row),
            self.exp_rom.out.en.eq(out_enable),
            self.exp_rom.out.addr.eq(index_queue.r_data),
            self.final_mac.valid.eq(mac_valid),
            self.final_mac.last.eq(mac_last),
            self.final_mac.exp.eq(self.exp_rom.out.data),
            self.final_mac.reciprocal.eq(mac_reciprocal),
        ]
        wiring.connect(m, wiring.flipped(self.o), self.final_mac.o)
        with m.If(take):
            m.d.sync += out_beat.eq(Mux(out_beat == beats - 1, 0, out_beat + 1))
            with m.If(starts_row):
                m.d.sync += row_reciprocal.eq(self.reciprocal.o.payload)
        return m

    def _next_row(self, base: Signal):
        """Base address of the next bank of the row buffer."""
        beats = self.config.beats
        return Mux(base >= (self.banks - 1) * beats, base - (self.banks - 1) * beats, base + beats)

