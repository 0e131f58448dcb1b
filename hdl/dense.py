"""The dense unit: the folded engine (:class:`~int8attn.hdl.mvu.FoldedEngine`) with its weights in ROMs, bit-exact
with :class:`~int8attn.golden.dense.DenseModel`.

A row of ``in_features`` inputs takes ``beats = in_features / simd`` cycles per fold and ``folds = out_features /
pe`` folds; output channel ``f·pe + k`` is PE ``k``'s result in fold ``f``, and PE ``k``'s weights are a ROM of
``folds · beats`` words.
"""

import numpy as np
from amaranth import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from int8attn.golden.dense import DenseConfig, DenseModel
from int8attn.golden.requant import RequantConfig
from int8attn.hdl.memory import Rom
from int8attn.hdl.mvu import OPERAND_BITS, FoldedEngine
from int8attn.hdl.streams import LaneBeat

WEIGHT_FILE = "dense_weights_pe{pe}.hex"


class Dense(wiring.Component):
    """The dense unit of one :class:`~int8attn.golden.dense.DenseConfig`: a :class:`~int8attn.hdl.mvu.FoldedEngine`
    whose PE ``k`` reads ``w − weight_zero_point`` of its channels from a :class:`~int8attn.hdl.memory.Rom`, word
    ``f·beats + b`` holding inputs ``b·simd …`` of channel ``f·pe + k``.

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
        self.engine = FoldedEngine(folds=config.folds, beats=config.beats, simd=config.simd, pe=config.pe, rows=1,
                                   input_zero_point=config.tensors.input_zero_point, weight_bits=self.weight_bits,
                                   biases=self.model.bias.tolist(), requant=self.requant_config,
                                   target=config.target)
        self.weight_roms = [Rom(self.weight_words(pe), config.simd * self.weight_bits, target=config.target)
                            for pe in range(config.pe)]
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
        """Cycles of each stage from a step's issue to its output beat (the engine's)."""
        return self.engine.stages

    @property
    def latency(self) -> int:
        """Cycles from a row's last input beat being accepted to its first output beat being valid, without
        stalls."""
        return self.engine.latency

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
        return self.engine.multipliers

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
        m.submodules.engine = engine = self.engine
        wiring.connect(m, wiring.flipped(self.i), engine.i)
        wiring.connect(m, engine.o, wiring.flipped(self.o))
        m.d.comb += self.error.eq(engine.error)
        for k, rom in enumerate(self.weight_roms):
            m.submodules[f"weight_rom{k}"] = rom
            m.d.comb += [rom.en.eq(engine.weights_en), rom.addr[0].eq(engine.weights_addr),
                         engine.weights[k].eq(data.ArrayLayout(engine.weights[k].shape().elem_shape,
                                                               config.simd)(rom.data[0]))]
        return m
