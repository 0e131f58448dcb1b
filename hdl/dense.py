"""The dense unit: the folded engine (:class:`~int8attn.hdl.mvu.FoldedEngine`) with its weights in ROMs
(:class:`DenseEngine`, also a stage of attention), bit-exact with :class:`~int8attn.golden.dense.DenseModel`.

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
from int8attn.hdl.wrapcheck import WrapChecked

WEIGHT_FILE = "dense_weights_pe{pe}.hex"


class DenseEngine(WrapChecked, wiring.Component):
    """``requant(W·(x − input_zero_point) + bias)`` for rows ``x`` of int8 inputs: a
    :class:`~int8attn.hdl.mvu.FoldedEngine` whose PE ``k`` reads its rows of ``W`` from a
    :class:`~int8attn.hdl.memory.Rom`, word ``f·beats + b`` holding inputs ``b·simd …`` of channel ``f·pe + k``.

    Parameters
    ----------
    weights : numpy.ndarray
        ``[out, in]`` integers (the weights minus their zero point), in ``weight_bits`` signed bits.
    weight_bits : int
        Width of a signed weight: 8, or 9 with a weight zero point.
    biases : sequence of int
        ``out`` int32 biases.
    input_zero_point : int
    requant : RequantConfig
        The output requantizer: ``out`` channels, ``pe`` lanes.
    pe, simd : int
        Output channels in parallel (dividing ``out``) and inputs per cycle (dividing ``in``).
    target : str
    shared_room : bool
        The engine's ``shared_room`` (:class:`~int8attn.hdl.mvu.FoldedEngine`): ``room`` and ``issue_room`` ports.

    Members
    -------
    i : In(stream.Signature(LaneBeat(simd, 8)))
        Input rows, ``in / simd`` beats each, ``last`` on the final one.
    o : Out(stream.Signature(LaneBeat(pe, requant.output_bits)))
        Output rows, ``out / pe`` beats each, one every ``in / simd`` cycles at full rate.
    error : Out(1)
        Sticky framing error, cleared by reset.
    room : Out(1)
        With ``shared_room``: the engine's room flag.
    issue_room : In(1)
        With ``shared_room``: the sharing engines' room flags, ANDed and registered; steps issue only while it is high.
    """

    def __init__(self, *, weights: np.ndarray, weight_bits: int, biases, input_zero_point: int,
                 requant: RequantConfig, pe: int, simd: int, target: str = "generic", shared_room: bool = False):
        out_features, in_features = weights.shape
        if out_features % pe or in_features % simd:
            raise ValueError(f"pe={pe} must divide {out_features} and simd={simd} must divide {in_features}")
        self.weights = np.asarray(weights, dtype=np.int64)
        self.weight_bits = weight_bits
        self.pe, self.simd = pe, simd
        self.folds, self.beats = out_features // pe, in_features // simd
        self.engine = FoldedEngine(folds=self.folds, beats=self.beats, simd=simd, pe=pe, rows=1,
                                   input_zero_point=input_zero_point, weight_bits=weight_bits, biases=list(biases),
                                   requant=requant, target=target, shared_room=shared_room)
        self.weight_roms = [Rom(self.weight_words(k), simd * weight_bits, target=target) for k in range(pe)]
        ports = {
            "i": In(stream.Signature(LaneBeat(simd, 8))),
            "o": Out(stream.Signature(LaneBeat(pe, requant.output_bits))),
            "error": Out(1),
        }
        if shared_room:
            ports |= {"room": Out(1), "issue_room": In(1)}
        super().__init__(ports)

    @property
    def stages(self) -> dict[str, int]:
        """Cycles of each stage from a step's issue to its output beat (the engine's)."""
        return self.engine.stages

    @property
    def latency(self) -> int:
        """Cycles from a row's last input beat being accepted to its first output beat being valid, without
        stalls."""
        return self.engine.latency

    @property
    def multipliers(self) -> int:
        """Multipliers of the engine, ``pe · simd`` (the requantizer's are apart)."""
        return self.engine.multipliers

    def weight_words(self, pe: int) -> list[int]:
        """PE ``pe``'s ROM: word ``f·beats + b`` holds the weights of channel ``f·pe + pe`` for inputs ``b·simd + s``
        in lane ``s``, two's complement."""
        mask = (1 << self.weight_bits) - 1
        rows = self.weights[pe::self.pe].reshape(self.folds, self.beats, self.simd)
        lanes = (rows & mask).astype(object) << (np.arange(self.simd) * self.weight_bits)
        return [int(word) for word in np.bitwise_or.reduce(lanes, axis=2).reshape(-1)]

    def weight_files(self) -> dict[str, str]:
        """``dense_weights_pe<k>.hex``: PE ``k``'s weight ROM, one word a line (the Verilog holds it too)."""
        digits = -(-self.simd * self.weight_bits // 4)
        return {WEIGHT_FILE.format(pe=pe): "".join(f"{word:0{digits}x}\n" for word in self.weight_words(pe))
                for pe in range(self.pe)}

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = engine = self.engine
        self.share_wrap_checks([engine])
        wiring.connect(m, wiring.flipped(self.i), engine.i)
        wiring.connect(m, engine.o, wiring.flipped(self.o))
        m.d.comb += self.error.eq(engine.error)
        if self.engine.shared_room:
            m.d.comb += [self.room.eq(engine.room), engine.issue_room.eq(self.issue_room)]
        for k, rom in enumerate(self.weight_roms):
            m.submodules[f"weight_rom{k}"] = rom
            m.d.comb += [rom.en.eq(engine.weights_en), rom.addr[0].eq(engine.weights_addr),
                         engine.weights[k].eq(data.ArrayLayout(engine.weights[k].shape().elem_shape,
                                                               self.simd)(rom.data[0]))]
        return m


class Dense(DenseEngine):
    """The dense unit of one :class:`~int8attn.golden.dense.DenseConfig`: a :class:`DenseEngine` of its weights
    (``w − weight_zero_point``), biases and requantizer, with the unit's sidecar metadata.

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
        super().__init__(weights=self.model.weights,
                         weight_bits=8 if config.tensors.weight_zero_point == 0 else OPERAND_BITS,
                         biases=self.model.bias.tolist(), input_zero_point=config.tensors.input_zero_point,
                         requant=config.requant_config(), pe=config.pe, simd=config.simd, target=config.target)

    latency_from = "last"
    misframed_rows = "counted"
    """A row is every ``beats`` input beats, wherever ``last`` falls (a misplaced one raises ``error``)."""

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
    def macs_per_frame(self) -> int:
        """Multiply-accumulates of one row, ``in · out``."""
        return self.config.in_features * self.config.out_features

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
        multipliers, shifts = config.requant_config().channel_multipliers()
        return {
            "dense": {
                "folds": config.folds, "beats": config.beats, "cycles_per_row": config.cycles_per_row,
                "weights_digest": tensors.digest,
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
        """:meth:`~DenseEngine.weight_files`."""
        return self.weight_files()
