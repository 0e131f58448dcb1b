"""The requantizer unit: int32 accumulators to int8/int16 outputs, ``lanes`` per cycle, bit-exact with the model."""

import numpy as np
from amaranth import Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from int8attn.golden.requant import RequantConfig, RequantModel
from int8attn.hdl.fixedpoint import (
    INT32,
    RoundingDivideByPot,
    SaturatingRoundingDoublingHighMul,
    ShiftLeft,
    clamp,
    saturated,
    saturation_test,
)
from int8attn.hdl.pipeline import delay
from int8attn.hdl.streams import FrameStreams, LaneBeat
from int8attn.hdl.wrapcheck import WrapChecked

TABLE_FILE = "requant_table.hex"
ACCUMULATOR_BITS = 32
TABLE_LATENCY = 1
OUTPUT_LATENCY = 1
ENTRY_FIELDS = ("multiplier", "left_shift", "right_shift")


class Requantizer(WrapChecked, FrameStreams, wiring.Component):
    """TFLite's ``MultiplyByQuantizedMultiplier``, zero point and activation clamp on every lane of a beat.

    Element ``k`` of a row belongs to channel ``k``: lane ``j`` of beat ``b`` is channel ``b·lanes + j``. Each
    lane runs through the stages of :attr:`stages`, all advancing together while ``o`` is free or taken
    (``i.ready = ~o.valid | o.ready``), so a full-rate stream moves ``lanes`` elements per cycle and a stall on
    ``o`` holds every stage with its payload:

    * ``table``: the channel's multiplier ``M`` and shifts. Per-tensor, and per-channel with a single beat per
      row, they are constants of each lane. Otherwise a ROM of one row per beat (``lanes`` entries a row) is read
      at the beat counter, which restarts after a beat with ``last`` set and after beat ``beats − 1``.
    * ``left_shift``: ``x = wrap32(acc · 2^max(shift, 0))`` (:class:`~int8attn.hdl.fixedpoint.ShiftLeft`,
      wrapping), wiring when the shift is a constant, and absent when no channel shifts left.
    * ``srdhm``: ``y = SRDHM(x, M)``
      (:class:`~int8attn.hdl.fixedpoint.SaturatingRoundingDoublingHighMul`: the product, then the rounding; on
      ``ecp5`` the DSP blocks' products are registered again in the fabric before the rounding's adder).
    * ``rounding_divide``: ``z = RDBPOT(y, max(−shift, 0))`` (:class:`~int8attn.hdl.fixedpoint.RoundingDivideByPot`),
      absent when no channel shifts right.
    * ``zero_point``: ``wrap32(z + output_zero_point)``, registered on the vendor targets (its carry chain and the
      clamp's comparisons take two ECP5 cycles at 200 MHz); absent on ``generic`` and with a zero point of 0.
    * ``saturate``: whether the value fits the output width, from its high bits
      (:func:`~int8attn.hdl.fixedpoint.saturation_test`: a wide AND and NOR, no carry chain), registered on the
      vendor targets.
    * ``output``: the value saturated to the output width, then ``clamp(…, act_min, act_max)`` on that width,
      registered.

    ``valid``, ``last`` and the channel's values are delayed alongside with :func:`~int8attn.hdl.pipeline.delay`.

    Parameters
    ----------
    config : RequantConfig
        Channels, lanes and quantisation, shared with the golden model and the testbench.

    Attributes
    ----------
    config : RequantConfig
    model : RequantModel
        The golden model of ``config``; its ``multipliers`` and ``shifts`` fill the table.
    table : str
        ``"constant"`` or ``"rom"``.
    entry_layout : StructLayout
        One table entry: ``multiplier``, ``left_shift`` (``max(shift, 0)``) and ``right_shift`` (``max(−shift, 0)``),
        each as wide as the largest value of the configuration needs; a field that is 0 for every channel is left out.
    left_shift_blocks, srdhm_blocks, divide_blocks : list
        The blocks of each lane (the first and the last empty when their stage is absent).

    Members
    -------
    i : In(stream.Signature(LaneBeat(lanes, 32)))
        Rows of int32 accumulators, ``channels / lanes`` beats each, ``last`` on the final beat.
    o : Out(stream.Signature(LaneBeat(lanes, output_bits)))
        The requantized rows, beat for beat, :attr:`latency` cycles after the input when not stalled.
    """

    def __init__(self, config: RequantConfig):
        self.config = config
        self.model = model = RequantModel(config)
        lanes = config.lanes
        self._left_shifts = np.maximum(model.shifts, 0)
        self._right_shifts = np.maximum(-model.shifts, 0)
        self.table = "rom" if config.per_channel and config.beats > 1 else "constant"
        max_left, max_right = int(self._left_shifts.max()), int(self._right_shifts.max())
        widths = {"multiplier": max(1, int(model.multipliers.max()).bit_length()),
                  "left_shift": max_left.bit_length(), "right_shift": max_right.bit_length()}
        self.entry_layout = data.StructLayout({name: unsigned(width) for name, width in widths.items() if width})
        multiplier_shape = self.entry_layout["multiplier"].shape
        self.left_shift_blocks = ([ShiftLeft(max_exponent=max_left) for _ in range(lanes)]
                                  if self.table == "rom" and max_left else [])
        self.srdhm_blocks = [SaturatingRoundingDoublingHighMul(INT32, multiplier_shape, config.target,
                                                               fabric_register=config.target == "ecp5")
                             for _ in range(lanes)]
        self.divide_blocks = [RoundingDivideByPot(max_exponent=max_right) for _ in range(lanes)] if max_right else []
        super().__init__({
            "i": In(stream.Signature(LaneBeat(lanes, ACCUMULATOR_BITS))),
            "o": Out(stream.Signature(LaneBeat(lanes, config.output_bits))),
        })

    @property
    def stages(self) -> dict[str, int]:
        """Cycles of each stage, in order; a stage the parameters make unnecessary takes 0."""
        return {
            "table": TABLE_LATENCY if self.table == "rom" else 0,
            "left_shift": self.left_shift_blocks[0].latency if self.left_shift_blocks else 0,
            "srdhm": self.srdhm_blocks[0].latency,
            "rounding_divide": self.divide_blocks[0].latency if self.divide_blocks else 0,
            "zero_point": int(self.model.output_zero_point != 0 and self.config.target != "generic"),
            "saturate": int(self.config.target != "generic"),
            "output": OUTPUT_LATENCY,
        }

    @property
    def latency(self) -> int:
        """Cycles from an input beat being accepted to its output beat being valid, without stalls."""
        return sum(self.stages.values())

    latency_from = "first"
    """:attr:`latency` counts from each input beat to its own output beat (the frame's first to its first)."""

    def table_rows(self) -> list[list[dict[str, int]]]:
        """The ROM's contents: row ``b`` holds the entries of channels ``b·lanes … b·lanes + lanes − 1``; a field that
        is zero in every entry is not stored."""
        lanes, stored = self.config.lanes, self.entry_layout.members
        return [[{name: value for name, value in self._entry(beat * lanes + lane).items() if name in stored}
                 for lane in range(lanes)] for beat in range(self.config.beats)]

    def _entry(self, channel: int) -> dict[str, int]:
        return {"multiplier": int(self.model.multipliers[channel]), "left_shift": int(self._left_shifts[channel]),
                "right_shift": int(self._right_shifts[channel])}

    def _channel_values(self, m: Module, enable: Value) -> list:
        """Each lane's entry (``_entry`` of its constant channel, or the ROM's read data) at the table's output."""
        lanes, beats = self.config.lanes, self.config.beats
        if self.table == "constant":
            return [self._entry(lane) for lane in range(lanes)]
        rom = memory.Memory(shape=data.ArrayLayout(self.entry_layout, lanes), depth=beats, init=self.table_rows())
        m.submodules.table = rom
        read = rom.read_port()
        beat = Signal(range(beats), name="beat")
        with m.If(self.i.valid & enable):
            m.d.sync += beat.eq(Mux(self.i.payload.last | (beat == beats - 1), 0, beat + 1))
        m.d.comb += [read.en.eq(enable), read.addr.eq(beat)]
        return [{name: read.data[lane][name] if name in self.entry_layout.members else 0 for name in ENTRY_FIELDS}
                for lane in range(lanes)]

    def elaborate(self, platform):
        m = Module()
        stages = self.stages
        enable = Signal(name="en")
        m.d.comb += [enable.eq(~self.o.valid | self.o.ready), self.i.ready.eq(enable)]

        def aligned(value, cycles: int, name: str):
            return value if isinstance(value, int) else delay(m, value, cycles, enable=enable, name=name)

        zero_point = self.model.output_zero_point
        self.share_wrap_checks([*self.left_shift_blocks, *self.srdhm_blocks, *self.divide_blocks])
        for lane, entry in enumerate(self._channel_values(m, enable)):
            accumulator = delay(m, self.i.payload.data[lane], stages["table"], enable=enable, name=f"acc{lane}")
            if self.left_shift_blocks:
                shifter = m.submodules[f"left_shift{lane}"] = self.left_shift_blocks[lane]
                m.d.comb += [shifter.en.eq(enable), shifter.x.eq(accumulator),
                             shifter.exponent.eq(entry["left_shift"])]
                shifted = shifter.o
            elif isinstance(entry["left_shift"], int):
                shifted = (accumulator << entry["left_shift"])[:ACCUMULATOR_BITS].as_signed()
                self.check_wrap(f"left_shift{lane}", enable, accumulator << entry["left_shift"], ACCUMULATOR_BITS)
            else:
                shifted = accumulator

            multiplier = m.submodules[f"srdhm{lane}"] = self.srdhm_blocks[lane]
            m.d.comb += [multiplier.en.eq(enable), multiplier.a.eq(shifted),
                         multiplier.b.eq(aligned(entry["multiplier"], stages["left_shift"], f"multiplier{lane}"))]
            quotient = multiplier.o
            if self.divide_blocks:
                divider = m.submodules[f"rounding_divide{lane}"] = self.divide_blocks[lane]
                right_shift = aligned(entry["right_shift"], stages["left_shift"] + stages["srdhm"],
                                      f"right_shift{lane}")
                m.d.comb += [divider.en.eq(enable), divider.x.eq(quotient), divider.exponent.eq(right_shift)]
                quotient = divider.o

            self.check_wrap(f"zero_point{lane}", enable, quotient + zero_point, ACCUMULATOR_BITS)
            with_zero_point = delay(m, (quotient + zero_point)[:ACCUMULATOR_BITS].as_signed(), stages["zero_point"],
                                 enable=enable, name=f"with_zero_point{lane}")
            bits = self.config.output_bits
            fits, sign, low = (delay(m, part, stages["saturate"], enable=enable, name=f"{name}{lane}")
                               for part, name in zip(saturation_test(with_zero_point, bits),
                                                     ("fits", "sign", "low"), strict=True))
            result = Signal(signed(bits), name=f"out{lane}")
            with m.If(enable):
                m.d.sync += result.eq(clamp(saturated(fits, sign, low, bits), self.model.act_min, self.model.act_max))
            m.d.comb += self.o.payload.data[lane].eq(result)

        latency = self.latency
        m.d.comb += [
            self.o.valid.eq(delay(m, self.i.valid, latency, enable=enable, name="valid")),
            self.o.payload.last.eq(delay(m, self.i.payload.last, latency, enable=enable, name="last")),
        ]
        return m

    def port_descriptions(self) -> dict[str, str]:
        lanes, bits = self.config.lanes, self.config.output_bits
        channel = "k" if self.config.beats == 1 else f"{lanes}b+k on beat b of the row"
        return {
            "i__valid": "input beat valid",
            "i__ready": "input beat accepted when valid",
            "i__payload": f"lane k: bits [32k+31:32k] signed int32 accumulator of channel {channel}; "
                          f"last: bit {ACCUMULATOR_BITS * lanes} (final beat of the row)",
            "o__valid": "output beat valid; held with its payload until taken",
            "o__ready": "sink takes the beat when valid",
            "o__payload": f"lane k: bits [{bits}k+{bits - 1}:{bits}k] signed int{bits} output of channel {channel}; "
                          f"last: bit {bits * lanes}",
        }

    def describe(self) -> dict:
        """The sidecar's requantizer sections: ``quantisation`` and ``structure``."""
        multipliers, shifts = self.config.channel_multipliers()
        rom = self.table == "rom"
        return {
            "quantisation": {
                "per_channel": self.config.per_channel,
                "channel_multipliers": list(multipliers),
                "channel_shifts": list(shifts),
                "shift_sign": "> 0 shifts left (TFLite), whatever the convention",
                "clamp_low": self.model.act_min,
                "clamp_high": self.model.act_max,
            },
            "structure": {
                "table": self.table,
                "table_depth": self.config.beats if rom else 0,
                "table_width": data.ArrayLayout(self.entry_layout, self.config.lanes).size if rom else 0,
                "pipeline_stages": self.stages,
                "dsp_blocks": sum(block.multiplier.dsp_blocks for block in self.srdhm_blocks),
            },
        }

    def artefacts(self) -> dict[str, str]:
        """Per-channel: ``requant_table.hex``, per-tensor: nothing.

        Line ``c`` holds channel ``c``'s multiplier and shift as two 32-bit hex words separated by a space: ``M``
        (0..2^31 − 1) and the shift in two's complement, TFLite's sign (``> 0`` left) whatever the convention.
        ``$readmemh`` reads it into a memory of ``2·channels`` words: ``M`` at ``2c``, the shift at ``2c + 1``.
        """
        if not self.config.per_channel:
            return {}
        lines = (f"{int(m):08x} {int(s) & 0xFFFF_FFFF:08x}\n"
                 for m, s in zip(self.model.multipliers, self.model.shifts, strict=True))
        return {TABLE_FILE: "".join(lines)}
