"""The dense unit: a folded matrix–vector engine (as FINN's MVAU) with TFLite's requantisation, bit-exact with
:class:`~int8attn.golden.dense.DenseModel`.

``pe`` processing elements each compute one output channel from ``simd`` products per cycle: a row of
``in_features`` inputs takes ``beats = in_features / simd`` cycles per fold and ``folds = out_features / pe`` folds,
output channel ``f·pe + k`` being PE ``k``'s result in fold ``f``. The first fold takes its inputs straight from the
input stream and writes them into a buffer that the later folds replay, so the unit accepts a row only while it
computes its first fold: the input waits no longer than the engine needs and the latency from a row's last input
beat is a constant.
"""

import numpy as np
from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from int8attn.golden.dense import DenseConfig, DenseModel
from int8attn.golden.requant import RequantConfig
from int8attn.hdl.memory import Ram, Rom
from int8attn.hdl.multiplier import Multiplier
from int8attn.hdl.pipeline import delay
from int8attn.hdl.requant import ACCUMULATOR_BITS, Requantizer
from int8attn.hdl.streams import LaneBeat
from int8attn.hdl.tree import reduce_tree, tree_stages

OPERAND_BITS = 9
"""Width of an input or weight minus its zero point: −255..255."""
ACCUMULATE_LATENCY = 1
WEIGHT_FILE = "dense_weights_pe{pe}.hex"


class DotProduct(wiring.Component):
    """``Σ_s a[s]·b[s]`` over ``lanes`` pairs of signed operands: a :class:`~int8attn.hdl.multiplier.Multiplier`
    per pair, then a registered adder tree.

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
        self.target = target
        self.multipliers = [Multiplier(signed(a_bits), signed(b_bits), target) for _ in range(lanes)]
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


class Dense(wiring.Component):
    """The dense unit of one :class:`~int8attn.golden.dense.DenseConfig`.

    Stages of a step (fold ``f``, beat ``b``), all advancing together while the requantizer takes the accumulators
    (``en``):

    * ``operands``: PE ``k``'s weights ``w − weight_zero_point`` for inputs ``b·simd …`` of channel ``f·pe + k``
      from its ROM (:class:`~int8attn.hdl.memory.Rom`, word ``f·beats + b``), and the inputs ``x −
      input_zero_point``: from the stream in fold 0 (delayed as long as the ROM read), else from the row buffer
      (:class:`~int8attn.hdl.memory.Ram`).
    * ``dot_product``: one :class:`DotProduct` per PE.
    * ``accumulate``: ``acc = (b = 0 ? bias : acc) + dot`` in 32 bits (wrapping as int32 does); after the row's last
      beat the accumulators leave, ``pe`` lanes a beat, for
    * ``requantizer``: :class:`~int8attn.hdl.requant.Requantizer` (channels ``out_features``, lanes ``pe``).

    A beat with ``last`` set anywhere but a row's final input beat, or a final beat without it, raises the sticky
    ``error`` output; the row is still taken as ``beats`` beats.

    Parameters
    ----------
    config : DenseConfig

    Members
    -------
    i : In(stream.Signature(LaneBeat(simd, 8)))
        Input rows, ``in_features / simd`` beats each, ``last`` on the final one.
    o : Out(stream.Signature(LaneBeat(pe, 8)))
        Output rows, ``out_features / pe`` beats each, one every ``beats`` cycles at full rate.
    error : Out(1)
        Sticky framing error, cleared by reset.
    """

    def __init__(self, config: DenseConfig):
        self.config = config
        self.model = DenseModel(config)
        self.weight_bits = 8 if config.tensors.weight_zero_point == 0 else OPERAND_BITS
        self.dot_products = [DotProduct(config.simd, OPERAND_BITS, self.weight_bits, config.target)
                             for _ in range(config.pe)]
        self.weight_roms = [Rom(self.weight_words(pe), config.simd * self.weight_bits, target=config.target)
                            for pe in range(config.pe)]
        self.requantizer = Requantizer(self.requant_config)
        super().__init__({
            "i": In(stream.Signature(LaneBeat(config.simd, 8))),
            "o": Out(stream.Signature(LaneBeat(config.pe, 8))),
            "error": Out(1),
        })

    @property
    def requant_config(self) -> RequantConfig:
        return self.config.requant_config()

    @property
    def stages(self) -> dict[str, int]:
        """Cycles of each stage from a step's issue to its output beat."""
        return {
            "operands": self.weight_roms[0].latency,
            "dot_product": self.dot_products[0].latency,
            "accumulate": ACCUMULATE_LATENCY,
            "requantizer": self.requantizer.latency,
        }

    @property
    def latency(self) -> int:
        """Cycles from a row's last input beat being accepted to its first output beat being valid, without
        stalls."""
        return sum(self.stages.values())

    latency_from = "last"

    @property
    def elements_per_cycle(self) -> float:
        """Input elements per cycle at full rate: ``in_features / cycles_per_frame``."""
        return self.config.in_features / self.cycles_per_frame

    @property
    def cycles_per_frame(self) -> int:
        """Cycles per row at full rate, ``folds · beats``."""
        return self.config.cycles_per_row

    @property
    def frame_beats(self) -> dict[str, int]:
        return {"i": self.config.beats, "o": self.config.folds}

    @property
    def multipliers(self) -> int:
        """Multipliers of the engine, ``pe · simd`` (the requantizer's are apart)."""
        return self.config.pe * self.config.simd

    def weight_words(self, pe: int) -> list[int]:
        """PE ``pe``'s ROM: word ``f·beats + b`` holds ``w − weight_zero_point`` of channel ``f·pe + pe`` for inputs
        ``b·simd + s`` in lane ``s``, two's complement."""
        config = self.config
        mask = (1 << self.weight_bits) - 1
        rows = self.model.weights[pe::config.pe].reshape(config.folds, config.beats, config.simd)
        lanes = (rows & mask).astype(object) << (np.arange(config.simd) * self.weight_bits)
        return [int(word) for word in np.bitwise_or.reduce(lanes, axis=2).reshape(-1)]

    def port_descriptions(self) -> dict[str, str]:
        config = self.config
        return {
            "i__valid": "input beat valid",
            "i__ready": "input beat accepted (high only while the engine computes a row's first fold)",
            "i__payload": f"{config.simd} int8 inputs (lane s in bits [8s+7:8s]) and last at bit {8 * config.simd}",
            "o__valid": "output beat valid",
            "o__ready": "output beat taken",
            "o__payload": f"{config.pe} int8 outputs of channels f*{config.pe}+k (lane k in bits [8k+7:8k]) and "
                          f"last at bit {8 * config.pe}",
            "error": "sticky: an input row's last flag was misplaced",
        }

    def describe(self) -> dict:
        config, tensors = self.config, self.config.tensors
        multipliers, shifts = self.requant_config.channel_multipliers()
        return {
            "dense": {
                "folds": config.folds, "beats": config.beats, "cycles_per_row": config.cycles_per_row,
                "engine_multipliers": self.multipliers, "weights_digest": tensors.digest,
                "weight_rom_words": config.folds * config.beats, "weight_rom_bits": config.simd * self.weight_bits,
                "weight_roms": config.pe,
            },
            "quantisation": {
                "input": {"scale": tensors.input_scale, "zero_point": tensors.input_zero_point},
                "weight": {"scale": list(tensors.weight_scale), "zero_point": tensors.weight_zero_point},
                "output": {"scale": tensors.output_scale, "zero_point": tensors.output_zero_point,
                           "clamp": list(self.model.requantizer.config.output_range())},
                "channel_multipliers": list(multipliers), "channel_shifts": list(shifts),
            },
            "stages": self.stages,
        }

    def artefacts(self) -> dict[str, str]:
        """``dense_weights_pe<k>.hex``: PE ``k``'s weight ROM, one word a line (the Verilog holds it too)."""
        digits = -(-self.config.simd * self.weight_bits // 4)
        return {WEIGHT_FILE.format(pe=pe): "".join(f"{word:0{digits}x}\n" for word in self.weight_words(pe))
                for pe in range(self.config.pe)}

    def elaborate(self, platform):
        m = Module()
        config = self.config
        folds, beats, simd, pe = config.folds, config.beats, config.simd, config.pe
        stages = self.stages
        m.submodules.requantizer = requantizer = self.requantizer
        wiring.connect(m, requantizer.o, wiring.flipped(self.o))

        accumulators = Signal(data.ArrayLayout(signed(ACCUMULATOR_BITS), pe), name="accumulators")
        accumulators_valid = Signal(name="accumulators_valid")
        accumulators_last = Signal(name="accumulators_last")
        enable = Signal(name="en")
        m.d.comb += [enable.eq(~accumulators_valid | requantizer.i.ready),
                     requantizer.i.valid.eq(accumulators_valid), requantizer.i.payload.data.eq(accumulators),
                     requantizer.i.payload.last.eq(accumulators_last)]

        fold = Signal(range(max(folds, 2)), name="fold")
        beat = Signal(range(max(beats, 2)), name="beat")
        streaming = fold == 0
        issue = Signal(name="issue")
        m.d.comb += [self.i.ready.eq(enable & streaming), issue.eq(enable & (self.i.valid | ~streaming))]
        row_end = beat == beats - 1
        with m.If(issue):
            m.d.sync += beat.eq(Mux(row_end, 0, beat + 1))
            with m.If(row_end):
                m.d.sync += fold.eq(Mux(fold == folds - 1, 0, fold + 1))
        with m.If(self.i.valid & self.i.ready & (self.i.payload.last != (row_end & streaming))):
            m.d.sync += self.error.eq(1)

        zero_point = config.tensors.input_zero_point
        operand_layout = data.ArrayLayout(signed(OPERAND_BITS), simd)
        centred = Signal(operand_layout, name="centred")
        m.d.comb += [centred[lane].eq(self.i.payload.data[lane] - zero_point) for lane in range(simd)]
        inputs = delay(m, centred, stages["operands"], enable=enable, name="stream_inputs")
        if folds > 1:
            m.submodules.row_buffer = buffer = Ram(operand_layout.size, max(beats, 2), target=config.target)
            m.d.comb += [buffer.w_en.eq(self.i.valid & self.i.ready), buffer.w_addr.eq(beat),
                         buffer.w_data.eq(centred), buffer.r_en.eq(enable), buffer.r_addr.eq(beat)]
            from_stream = delay(m, streaming, stages["operands"], enable=enable, name="from_stream")
            inputs = Mux(from_stream, inputs, operand_layout(buffer.r_data))

        address = fold * beats + beat if folds > 1 else beat
        flags = Signal(data.StructLayout({"valid": 1, "first": 1, "last": 1, "fold": len(fold)}), name="flags")
        m.d.comb += [flags.valid.eq(issue), flags.first.eq(beat == 0), flags.last.eq(row_end), flags.fold.eq(fold)]
        step = delay(m, flags, stages["operands"] + stages["dot_product"], enable=enable, name="step")
        bias_fold = delay(m, flags.fold, stages["operands"] + stages["dot_product"] - 1, enable=enable,
                          name="bias_fold")
        biases = self._biases(m, bias_fold, enable)

        for k in range(pe):
            rom = m.submodules[f"weight_rom{k}"] = self.weight_roms[k]
            product = m.submodules[f"dot_product{k}"] = self.dot_products[k]
            weights = data.ArrayLayout(signed(self.weight_bits), simd)(rom.data[0])
            m.d.comb += [rom.en.eq(enable), rom.addr[0].eq(address), product.en.eq(enable),
                         product.a.eq(inputs), product.b.eq(weights)]
            accumulator = Signal(signed(ACCUMULATOR_BITS), name=f"acc{k}")
            total = Signal(signed(ACCUMULATOR_BITS), name=f"total{k}")
            m.d.comb += total.eq(Mux(step.first, biases[k], accumulator) + product.o)
            with m.If(enable & step.valid):
                m.d.sync += accumulator.eq(total)
                with m.If(step.last):
                    m.d.sync += accumulators[k].eq(total)
        with m.If(enable):
            m.d.sync += accumulators_valid.eq(step.valid & step.last)
            with m.If(step.valid & step.last):
                m.d.sync += accumulators_last.eq(step.fold == folds - 1)
        return m

    def _biases(self, m: Module, fold, enable) -> list:
        """Each PE's bias for the fold ``fold`` names a cycle earlier: constants with one fold, else a memory."""
        config = self.config
        bias = self.model.bias
        if config.folds == 1:
            return [int(bias[k]) for k in range(config.pe)]
        table = bias.reshape(config.folds, config.pe).tolist()
        m.submodules.bias_table = table_memory = memory.Memory(
            shape=data.ArrayLayout(signed(ACCUMULATOR_BITS), config.pe), depth=config.folds, init=table)
        read = table_memory.read_port()
        m.d.comb += [read.en.eq(enable), read.addr.eq(fold)]
        return [read.data[k] for k in range(config.pe)]
