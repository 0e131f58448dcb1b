"""The embedding unit: token ids in, one per beat; each token's table row out, ``lanes`` int8 elements a beat,
optionally plus the positional encoding; bit-exact with :class:`~int8attn.golden.embedding_unit.EmbeddingModel`.

The table is a :class:`~int8attn.hdl.memory.Rom` of ``vocab · E/P`` words of ``P`` lanes, word ``t·(E/P) + b``
holding features ``b·P … b·P + P − 1`` of token ``t``. With the positional encoding a second ROM holds the
positional codes the same way (word ``s·(E/P) + b`` for position ``s``), read beside the first, and the two words go
through the add unit's :class:`~int8attn.hdl.add.AddEngine` (the embedding is ``QAdd``'s input a, the positional
code its input b).
"""

import numpy as np
from amaranth import Cat, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from int8attn.golden.embedding_unit import EmbeddingConfig, EmbeddingModel
from int8attn.hdl.add import INPUT_BITS, AddEngine
from int8attn.hdl.memory import Rom
from int8attn.hdl.pipeline import delay
from int8attn.hdl.streams import LaneBeat, StreamBuffer

TABLE_FILE = "embedding_table.hex"
POSITIONAL_FILE = "positional_table.hex"
ISSUE_LATENCY = 1


def table_words(table: np.ndarray, lanes: int) -> list[int]:
    """The ROM words of an int8 ``(rows, E)`` table: word ``r·(E/lanes) + b`` holds elements ``b·lanes …`` of row
    ``r``, lane ``k`` in bits ``[8k+7:8k]`` (two's complement)."""
    codes = np.ascontiguousarray(table.astype(np.uint8).reshape(-1, lanes))
    return [int.from_bytes(word.tobytes(), "little") for word in codes]


def times_constant(value: Value, constant: int) -> Value:
    """``value · constant`` for an unsigned ``value`` and a constant ≥ 1, as shifted copies added (no multiplier for
    synthesis to map onto a DSP block)."""
    terms = [value << bit for bit in range(constant.bit_length()) if constant >> bit & 1]
    return sum(terms[1:], terms[0])


class Embedding(wiring.Component):
    """The embedding unit of one :class:`~int8attn.golden.embedding_unit.EmbeddingConfig`.

    A token is taken from ``i`` when the unit has issued all but the last beat of the previous one, so a row follows
    another without a gap; the token's ``E / P`` ROM words are then read on consecutive cycles. Every stage advances
    while the output (or the adder's input) is free or taken, so the table rows stream out at ``P`` elements per
    cycle and a stall holds every stage with its payload. The stages (:attr:`stages`):

    * ``issue``: the ROM address ``t·(E/P) + b`` (set to ``t·(E/P)`` when the token is taken, then counted up) and,
      with the positional encoding, the position's address ``s·(E/P) + b``; the position ``s`` counts the tokens since
      the last ``last`` (it restarts after a token with ``last`` set and after ``S`` tokens);
    * ``table``: the ROMs' read and output register (:data:`~int8attn.hdl.memory.LATENCY`);
    * ``slice``: on the vendor targets, a :class:`~int8attn.hdl.streams.StreamBuffer` (register slice) after the
      ROMs, so that the ``ready`` of the output (or of the adder's input) reaches the ROMs' clock enables and the
      issue logic from a register (on an ECP5 the positional unit at E = P = 8 went from 124 to
      153 MHz with it, and to 193 MHz with the adder's registered centring); absent on ``generic``;
    * ``add``: the :class:`~int8attn.hdl.add.AddEngine` of the positional ``QAdd`` (absent without it).

    ``last`` is set on a token's final output beat when it was set on the token. A token id of ``vocab`` or more
    (possible when ``vocab`` is not a power of two) raises ``error``; its row is then undefined.

    Parameters
    ----------
    config : EmbeddingConfig

    Attributes
    ----------
    config : EmbeddingConfig
    model : EmbeddingModel
    token_bits : int
        Width of a token id, that of ``vocab − 1`` (at least 1).
    table, positional_table : Rom, Rom or None
        The ROMs.
    adder : AddEngine or None
        The positional ``QAdd``.
    words_signature : stream.Signature
        The stream of the ROMs' words of a beat (the embedding's in the low lanes, the positional codes' above) and
        ``last``.

    Members
    -------
    i : In(stream.Signature(LaneBeat(1, token_bits, signed=False)))
        Token ids, one per beat, ``last`` on a sequence's final token.
    o : Out(stream.Signature(LaneBeat(lanes, 8)))
        Each token's ``E`` int8 features, ``E / P`` beats, in order.
    error : Out(1)
        Sticky: a token id of ``vocab`` or more was taken; cleared by reset.
    """

    def __init__(self, config: EmbeddingConfig):
        self.config = config
        self.model = EmbeddingModel(config)
        layers = config.layers
        self.token_bits = max(1, (config.vocab - 1).bit_length())
        width = INPUT_BITS * config.lanes
        self.table = Rom(table_words(layers.embedding.table, config.lanes), width, target=config.target)
        positional = layers.positional
        self.positional_table = (None if positional is None else
                                 Rom(table_words(positional.table, config.lanes), width, target=config.target))
        self.adder = None if positional is None else AddEngine(positional.adder, config.lanes, config.target)
        self.words_signature = stream.Signature(LaneBeat(config.lanes * (1 if positional is None else 2), INPUT_BITS))
        super().__init__({
            "i": In(stream.Signature(LaneBeat(1, self.token_bits, signed=False))),
            "o": Out(stream.Signature(LaneBeat(config.lanes, INPUT_BITS))),
            "error": Out(1),
        })

    @property
    def stages(self) -> dict[str, int]:
        """Cycles of each stage, in order."""
        return {"issue": ISSUE_LATENCY, "table": self.table.latency,
                "slice": StreamBuffer.LATENCY if self.config.target != "generic" else 0,
                "add": self.adder.latency if self.adder else 0}

    @property
    def latency(self) -> int:
        """Cycles from a frame's first token being accepted to its first output beat being valid, without stalls."""
        return sum(self.stages.values())

    latency_from = "first"
    """:attr:`latency` counts from each token to its first output beat (a frame's first to its first)."""

    @property
    def cycles_per_frame(self) -> int:
        """Cycles per frame at full rate: ``S · E / P``."""
        return self.config.seq_len * self.config.beats

    @property
    def elements_per_cycle(self) -> float:
        """Tokens per cycle at full rate, ``P / E``."""
        return self.config.seq_len / self.cycles_per_frame

    @property
    def frame_beats(self) -> dict[str, int]:
        """Beats per frame on each stream."""
        return {"i": self.config.seq_len, "o": self.cycles_per_frame}

    def elaborate(self, platform):
        m = Module()
        config = self.config
        beats = config.beats
        m.submodules.table = table = self.table
        enable = Signal(name="en")

        busy = Signal(name="busy")
        beat = Signal(range(max(beats, 2)), name="beat")
        address = Signal(table.address_bits, name="address")
        token_last = Signal(name="token_last")
        at_end = beat == beats - 1
        take = self.i.valid & self.i.ready
        token = self.i.payload.data[0]
        m.d.comb += self.i.ready.eq(enable & (~busy | at_end))
        with m.If(enable):
            with m.If(take):
                m.d.sync += [busy.eq(1), beat.eq(0), address.eq(times_constant(token, beats)),
                             token_last.eq(self.i.payload.last)]
            with m.Elif(busy & at_end):
                m.d.sync += busy.eq(0)
            with m.Elif(busy):
                m.d.sync += [beat.eq(beat + 1), address.eq(address + 1)]
        if config.vocab < 1 << self.token_bits:
            with m.If(take & (token >= config.vocab)):
                m.d.sync += self.error.eq(1)
        m.d.comb += [table.en.eq(enable), table.addr[0].eq(address)]

        roms = [table]
        if self.positional_table is not None:
            m.submodules.positional_table = positional = self.positional_table
            span = config.seq_len * beats
            position = Signal(range(max(span, 2)), name="position")
            with m.If(enable & busy):
                m.d.sync += position.eq(Mux(at_end & (token_last | (position == span - 1)), 0, position + 1))
            m.d.comb += [positional.en.eq(enable), positional.addr[0].eq(position)]
            roms.append(positional)

        words = self.words_signature.create(path=("words",))
        m.d.comb += [words.valid.eq(delay(m, busy, table.latency, enable=enable, name="valid")),
                     words.payload.last.eq(delay(m, busy & at_end & token_last, table.latency, enable=enable,
                                                 name="last")),
                     words.payload.data.as_value().eq(Cat(rom.data[0] for rom in roms)),
                     enable.eq(~words.valid | words.ready)]
        if self.stages["slice"]:
            m.submodules.slice = register_slice = StreamBuffer(self.words_signature.members["payload"].shape)
            wiring.connect(m, words, register_slice.i)
            words = register_slice.o
        if self.adder is None:
            wiring.connect(m, words, wiring.flipped(self.o))
            return m
        m.submodules.adder = adder = self.adder
        width = INPUT_BITS * config.lanes
        for index, operand in enumerate((adder.a, adder.b)):
            m.d.comb += [operand.valid.eq(words.valid), operand.payload.last.eq(words.payload.last),
                         operand.payload.data.as_value().eq(words.payload.data.as_value()[index * width:][:width])]
        m.d.comb += words.ready.eq(adder.a.ready)
        wiring.connect(m, adder.o, wiring.flipped(self.o))
        return m

    def port_descriptions(self) -> dict[str, str]:
        config = self.config
        lanes, bits = config.lanes, self.token_bits
        return {
            "i__valid": "token beat valid",
            "i__ready": "token accepted (once the previous token's row has all but its last beat issued)",
            "i__payload": f"bits [{bits - 1}:0] unsigned token id 0..{config.vocab - 1}; last: bit {bits} (final "
                          "token of the sequence)",
            "o__valid": "output beat valid; held with its payload until taken",
            "o__ready": "sink takes the beat when valid",
            "o__payload": f"lane k: bits [8k+7:8k] signed int8 feature {lanes}b+k of the token on its beat b "
                          f"(0..{config.beats - 1}); last: bit {8 * lanes} (the sequence's final token, final beat)",
            "error": f"sticky: a token id of {config.vocab} or more was taken",
        }

    def describe(self) -> dict:
        """The sidecar's ``embedding`` section (ROMs, stages) and, with the positional encoding, ``quantisation``
        (the positional ``QAdd`` in TinyMind's key names)."""
        config = self.config
        roms = [rom for rom in (self.table, self.positional_table) if rom is not None]
        section = {
            "embedding": {
                "token_bits": self.token_bits,
                "beats_per_token": config.beats,
                "table_words": len(self.table.table),
                "positional_table_words": len(self.positional_table.table) if self.positional_table else 0,
                "rom_word_bits": self.table.width,
                "rom_blocks": sum(rom.blocks for rom in roms),
                "stages": self.stages,
                "dsp_blocks": self.adder.dsp_blocks if self.adder else 0,
            },
        }
        positional = config.layers.positional
        if positional is not None:
            integers = positional.adder.arrays("pos.add")
            section["quantisation"] = {"positional_qadd": {key: int(value) for key, value in integers.items()}}
        return section

    def artefacts(self) -> dict[str, str]:
        """``embedding_table.hex`` and, with the positional encoding, ``positional_table.hex``: the ROMs, one word a
        line (lane 0 in the low byte; the Verilog holds them too)."""
        digits = -(-self.table.width // 4)
        roms = {TABLE_FILE: self.table, POSITIONAL_FILE: self.positional_table}
        return {name: "".join(f"{word:0{digits}x}\n" for word in rom.table) for name, rom in roms.items()
                if rom is not None}

