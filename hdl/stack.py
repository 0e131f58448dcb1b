"""The encoder-stack unit: TinyMind's int8 transformer encoder stack as one component, token ids in, the last block's
int8 features out, bit-exact with :class:`~int8attn.golden.stack_unit.StackModel`, built from the embedding,
layernorm, attention, dense and add units' datapaths.

Dataflow (every arrow a valid/ready stream of ``P = lanes`` int8 lanes unless a sub-unit takes others):

* tokens (framing checked, re-framed to ``S`` a sequence) → :class:`~int8attn.hdl.embedding.Embedding` with the
  positional ``QAdd`` → ``x``;
* per block (:class:`EncoderBlock`): ``x`` is forked (:class:`~int8attn.hdl.streams.StreamFork`) into a skip queue
  and LN1 (:class:`~int8attn.hdl.layernorm.LayerNorm`) → :class:`~int8attn.hdl.attention.Attention` →
  ``QAdd1(attn, x)`` (:class:`~int8attn.hdl.add.AddEngine`) → ``skip1``, forked into a second skip queue and LN2 →
  FFN1 (``E → F``, a :class:`~int8attn.hdl.dense.DenseEngine` whose clamp holds the ReLU) → FFN2 (``F → E``) →
  ``QAdd2(skip1, ff2)`` → the next block, the last block's to ``o``.

Where a sub-unit takes other lanes than its producer gives (the attention's ``proj_simd`` in and ``proj_pe`` out,
the dense engines' ``simd`` in and ``pe`` out) a :class:`Link` changes them (:class:`~int8attn.hdl.streams.
LaneConverter`). A link also decouples with queues (:class:`~int8attn.hdl.streams.StreamQueue`) of a sequence: before
the converter (the producer's beats) where it splits beats (fewer lanes out than in: it takes a beat only every few
cycles), after it (the consumer's beats) where the consumer is folded (the attention's projections or a dense
engine with more than one fold take a token's beats only in their first fold, a beat a cycle, which a converter
that gathers could not feed). Then no producer ever waits within a sequence on an idle unit, which makes the beat
timing of a sequence (:meth:`EncoderBlock.timing`) and the latency exact, and a folded engine's first fold never
waits for the converter on back-to-back sequences.

Register slices. A :class:`~int8attn.hdl.streams.StreamBuffer` (``valid``, ``ready`` and the payload registered)
sits before each fork (the block's input, ``QAdd1``'s output), between each layernorm and its link, and before both
inputs of each add, so that no ``ready`` or ``valid`` crosses from one unit into another's logic without a register:
on an ECP5 the units lie far apart and those paths limited the stack to 122 MHz. The timing model follows each slice
(:func:`slice_timing`): it holds two beats and offers each a cycle after taking it.

Skip queues. Each fork passes a beat only when both its skip queue and its branch take it. The attention outputs
nothing of a sequence before its last token is in, so a skip queue shorter than a sequence would deadlock: the fork
would wait for room that only the add frees, and the add for an attention output that waits for the beats behind
the fork. Each skip queue therefore holds ``sequence_beats · (2 + ⌈L / C⌉)`` beats, with ``L`` the cycles from a
sequence's last beat at the fork to the add's first beat of it on an idle block (:meth:`EncoderBlock.timing`) and
``C`` the block's cycles per sequence: the sequence the add is taking, the next one arriving meanwhile, and those
that enter while one crosses the branch at full rate, so that back-to-back sequences never wait for the skip
queue (the feed-forward branch needs only a token to produce, but takes the same rule).
"""

import math
from collections.abc import Callable

from amaranth import Cat, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from int8attn.golden.stack_unit import BlockPlan, StackConfig, StackModel
from int8attn.hdl.add import AddEngine
from int8attn.hdl.attention import Attention, dense_engine
from int8attn.hdl.dense import DenseEngine
from int8attn.hdl.embedding import Embedding
from int8attn.hdl.layernorm import LayerNorm
from int8attn.hdl.streams import (
    LaneBeat,
    LaneConverter,
    Queue,
    Reframe,
    StreamBuffer,
    StreamFork,
    StreamQueue,
    connect_chain,
)

Take = Callable[[int], int]
"""A consumer in the timing model: the cycle it takes its next beat, offered (valid) from a given cycle."""
NEVER = -(1 << 62)
BITS = 8


def folded_input(beats: int, folds: int) -> Take:
    """A folded engine's input (:class:`~int8attn.hdl.mvu.FoldedEngine`): a row's ``beats`` beats are taken only in
    its first fold, the first once the previous row's last fold has issued."""
    state = {"beat": 0, "last": NEVER, "free": NEVER}

    def take(offer: int) -> int:
        first = state["beat"] == 0
        taken = max(offer, state["free"] if first else state["last"] + 1)
        state["last"] = taken
        state["beat"] += 1
        if state["beat"] == beats:
            state["beat"] = 0
            state["free"] = taken + (folds - 1) * beats + 1
        return taken
    return take


def _joined(skip: list[int], latency: int) -> tuple[Take, list[int]]:
    """An add's input joined with its skip queue's beats (written at the cycles ``skip``, out ``latency`` cycles
    later and a beat a cycle) through a register slice (:func:`slice_timing`): a beat is taken when both are there.
    Returns the consumer and the list the cycles it takes are appended to."""
    taken: list[int] = []
    entered: list[int] = []

    def take(offer: int) -> int:
        index = len(taken)
        out_of_queue = max(skip[index] + latency, entered[-1] + 1 if entered else NEVER)
        entered.append(max(out_of_queue, taken[index - 2] + 1 if index >= 2 else NEVER))
        ready = max(entered[-1] + StreamBuffer.LATENCY, taken[-1] + 1 if taken else NEVER)
        taken.append(max(offer, ready))
        return taken[-1]
    return take, taken


def slice_timing(downstream: Take) -> Take:
    """A :class:`~int8attn.hdl.streams.StreamBuffer` in front of ``downstream``: it takes a beat unless it holds two
    (the one it offers and the one in its skid register, which leaves the cycle after the offered one is taken), and
    offers each beat :attr:`~int8attn.hdl.streams.StreamBuffer.LATENCY` cycle after taking it, once the previous one
    is taken."""
    taken: list[int] = []
    state = {"accepted": NEVER}

    def take(offer: int) -> int:
        accepted = max(offer, state["accepted"] + 1, taken[-2] + 1 if len(taken) >= 2 else NEVER)
        state["accepted"] = accepted
        taken.append(downstream(max(accepted + StreamBuffer.LATENCY, taken[-1] + 1 if taken else NEVER)))
        return accepted
    return take


def recorded(take: Take) -> tuple[Take, list[int]]:
    """``take`` with the list the cycles it takes are appended to."""
    taken: list[int] = []

    def record(offer: int) -> int:
        taken.append(take(offer))
        return taken[-1]
    return record, taken


def _rows_out(accepted: list[int], beats: int, latency: int) -> list[int]:
    """Output beats of a layernorm (rows of ``beats`` beats): a row's first ``latency`` cycles after its last input
    beat, but not before the previous row's last output beat is issued; a row's beats back to back."""
    out = []
    for row in range(len(accepted) // beats):
        start = accepted[(row + 1) * beats - 1] + latency
        if out:
            start = max(start, out[-1] + 1)
        out += [start + beat for beat in range(beats)]
    return out


def _folded_out(accepted: list[int], beats: int, folds: int, latency: int) -> list[int]:
    """Output beats of a folded engine: fold ``f`` of a row ``latency`` cycles after its last step, ``f · beats``
    cycles after the row's last input beat."""
    return [accepted[(row + 1) * beats - 1] + fold * beats + latency
            for row in range(len(accepted) // beats) for fold in range(folds)]


class Link(wiring.Component):
    """The stream from a producer of ``in_lanes`` lanes to a consumer of ``out_lanes``: a
    :class:`~int8attn.hdl.streams.LaneConverter`, with a :class:`~int8attn.hdl.streams.StreamQueue` before it of
    ``before`` producer beats and one after it of ``after`` consumer beats where they are not 0.

    Parameters
    ----------
    in_lanes, out_lanes : int
    before, after : int
        Beats of the decoupling queues; 0 for none.
    target : str

    Attributes
    ----------
    queues : dict of str to StreamQueue
        ``before`` and ``after``, those there are.
    converter : LaneConverter

    Members
    -------
    i : In(stream.Signature(LaneBeat(in_lanes)))
    o : Out(stream.Signature(LaneBeat(out_lanes)))
    """

    def __init__(self, in_lanes: int, out_lanes: int, before: int, after: int, target: str):
        self.converter = LaneConverter(in_lanes, out_lanes, BITS)
        self.queues = {name: StreamQueue(LaneBeat(lanes, BITS), depth, target)
                       for name, lanes, depth in (("before", in_lanes, before), ("after", out_lanes, after)) if depth}
        super().__init__({"i": In(stream.Signature(LaneBeat(in_lanes, BITS))),
                          "o": Out(stream.Signature(LaneBeat(out_lanes, BITS)))})

    def timing(self, consumer: Take) -> Take:
        """The link with ``consumer`` behind it, as a consumer of the producer's beats: a queue takes every beat and
        gives it ``latency`` cycles later, a beat a cycle; a :class:`~int8attn.hdl.streams.LaneSplit` takes a beat
        once its previous one's last part is taken and offers each part the cycle after it took the beat or the
        previous part was taken; a :class:`~int8attn.hdl.streams.LaneGather` takes a group's last part once the
        previous group is taken and offers the group the cycle after."""
        take = consumer
        if "after" in self.queues:
            take = _queue_timing(self.queues["after"].latency, take)
        if self.converter.gather is not None:
            take = _gather_timing(self.converter.gather_ratio, take)
        if self.converter.split is not None:
            take = _split_timing(self.converter.split_ratio, take)
        if "before" in self.queues:
            take = _queue_timing(self.queues["before"].latency, take)
        return take

    def describe(self) -> dict:
        return {"lanes": [self.converter.in_lanes, self.converter.out_lanes],
                "split": self.converter.split_ratio, "gather": self.converter.gather_ratio,
                **{f"queue_{name}_beats": queue.depth for name, queue in self.queues.items()}}

    def elaborate(self, platform):
        m = Module()
        connect_chain(m, self, (("before", self.queues.get("before")), ("converter", self.converter),
                                ("after", self.queues.get("after"))))
        return m


def _queue_timing(latency: int, downstream: Take) -> Take:
    state = {"taken": NEVER}

    def take(offer: int) -> int:
        state["taken"] = downstream(max(offer + latency, state["taken"] + 1))
        return offer
    return take


def _split_timing(ratio: int, downstream: Take) -> Take:
    state = {"free": NEVER}

    def take(offer: int) -> int:
        accepted = max(offer, state["free"])
        time = accepted + 1
        for _ in range(ratio):
            taken = downstream(time)
            time = taken + 1
        state["free"] = taken
        return accepted
    return take


def _gather_timing(ratio: int, downstream: Take) -> Take:
    state = {"part": 0, "taken": NEVER}

    def take(offer: int) -> int:
        if state["part"] < ratio - 1:
            state["part"] += 1
            return offer
        state["part"] = 0
        accepted = max(offer, state["taken"])
        state["taken"] = downstream(accepted + 1)
        return accepted
    return take


def _feed(produced: list[int], consumer: Take) -> None:
    for time in produced:
        consumer(time)


class EncoderBlock(wiring.Component):
    """One encoder block (module docstring): ``x`` in, ``QAdd2(skip1, FFN2(FFN1(LN2(skip1))))`` with ``skip1 =
    QAdd1(attention(LN1(x)), x)`` out, ``lanes`` int8 elements a beat, sequences of ``S`` tokens, ``last`` on each
    sequence's final beat.

    Parameters
    ----------
    plan : BlockPlan
        The block's layers.
    config : StackConfig
        Lanes, folds and target.

    Attributes
    ----------
    layers : dict of str to wiring.Component
        The sub-units by name, in the order a beat meets them: ``ln1``, ``attention``, ``add1``, ``ln2``, ``ff1``,
        ``ff2``, ``add2``.
    links : dict of str to Link
        ``to_attention``, ``from_attention``, ``to_ff1``, ``to_ff2``, ``from_ff2``.
    skip_depths : dict of str to int
        Beats of the skip queues ``skip`` (``x``) and ``skip1``.

    Members
    -------
    i : In(stream.Signature(LaneBeat(lanes)))
    o : Out(stream.Signature(LaneBeat(lanes)))
    error : Out(1)
        Sticky: a sub-unit raised its error.
    """

    def __init__(self, plan: BlockPlan, config: StackConfig):
        self.config, self.plan = config, plan
        lanes, target = config.lanes, config.target
        self.ln1, self.ln2 = LayerNorm(plan.ln1), LayerNorm(plan.ln2)
        self.attention = Attention(plan.attention)
        self.add1, self.add2 = AddEngine(plan.add1, lanes, target), AddEngine(plan.add2, lanes, target)
        self.ff1 = dense_engine(plan.ff1, config.ff1_simd, target)
        self.ff2 = dense_engine(plan.ff2, config.ff2_simd, target)
        self.layers = {"ln1": self.ln1, "attention": self.attention, "add1": self.add1, "ln2": self.ln2,
                       "ff1": self.ff1, "ff2": self.ff2, "add2": self.add2}
        seq_len, embed, ffn = config.seq_len, config.embed_dim, config.ffn_dim
        projection = self.attention.projections["k"]
        ends = {  # producer lanes, consumer lanes, elements of a sequence, consumer folds
            "to_attention": (lanes, config.proj_simd, seq_len * embed, projection.folds),
            "from_attention": (config.proj_pe, lanes, seq_len * embed, 1),
            "to_ff1": (lanes, config.ff1_simd, seq_len * embed, self.ff1.folds),
            "to_ff2": (config.ff1_pe, config.ff2_simd, seq_len * ffn, self.ff2.folds),
            "from_ff2": (config.ff2_pe, lanes, seq_len * embed, 1),
        }
        self.links = {name: Link(source, sink, elements // source if source > math.gcd(source, sink) else 0,
                                 elements // sink if folds > 1 else 0, target)
                      for name, (source, sink, elements, folds) in ends.items()}
        self.skip_latency = Queue.latency_of(target)
        timing = self.timing(list(range(self.sequence_beats)))
        cycles = self.cycles_per_frame
        self.branch_latencies = {name: max(timing[name][0] - timing[fork][-1], 0)
                                 for name, fork in (("add1_taken", "x_forked"), ("add2_taken", "skip1_forked"))}
        self.skip_depths = {name: self.sequence_beats * (2 + -(-self.branch_latencies[taken] // cycles))
                            for name, taken in (("skip", "add1_taken"), ("skip1", "add2_taken"))}
        super().__init__({
            "i": In(stream.Signature(LaneBeat(lanes, BITS))),
            "o": Out(stream.Signature(LaneBeat(lanes, BITS))),
            "error": Out(1),
        })

    @property
    def sequence_beats(self) -> int:
        """Beats of a sequence on ``i`` and ``o``, ``S · E / lanes``."""
        return self.config.seq_len * self.config.beats

    @property
    def stage_cycles(self) -> dict[str, int]:
        """Cycles each stage spends on a sequence at full rate (a link's converter passes a beat of its narrowest
        lanes a cycle)."""
        config = self.config
        seq_len, embed = config.seq_len, config.embed_dim
        per_sequence = self.sequence_beats
        cycles = {"ln1": per_sequence, "attention": self.attention.cycles_per_frame, "add1": per_sequence,
                  "ln2": per_sequence, "ff1": seq_len * self.ff1.folds * self.ff1.beats,
                  "ff2": seq_len * self.ff2.folds * self.ff2.beats, "add2": per_sequence}
        elements = {"to_attention": embed, "from_attention": embed, "to_ff1": embed, "to_ff2": config.ffn_dim,
                    "from_ff2": embed}
        for name, link in self.links.items():
            cycles[name] = seq_len * elements[name] // link.converter.common
        return cycles

    @property
    def cycles_per_frame(self) -> int:
        """Cycles per sequence at full rate: the slowest stage's."""
        return max(self.stage_cycles.values())

    def timing(self, x: list[int]) -> dict[str, list[int]]:
        """The cycles of a sequence's beats on an idle block whose output is never stalled, ``x`` the cycles its
        input beats are offered: ``x`` (taken at once by the input's register slice), ``x_forked`` (the beats at
        the fork, taken at once), ``attention_in`` (taken by the attention), ``attention_out``, ``add1_taken``,
        ``skip1`` (``QAdd1``'s output beats), ``skip1_forked``, ``ff1_in``, ``ff1_out``, ``ff2_in``, ``ff2_out``,
        ``add2_taken`` and ``out`` (the block's output beats valid).

        Every producer gives its beats as its own timing allows (no consumer ever makes it wait within a sequence,
        module docstring); a consumer takes them as its links, register slices and its own input allow: a layernorm
        every beat, a folded engine a row's beats in its first fold, an add when its skip beat is out of the skip
        queue and its slice.
        """
        config = self.config
        beats = config.beats
        x_forked = [time + StreamBuffer.LATENCY for time in x]
        ln1_out = _rows_out(x_forked, beats, self.ln1.latency)
        projection = self.attention.projections["k"]
        attention_in, attention_taken = recorded(folded_input(projection.beats, projection.folds))
        _feed(ln1_out, slice_timing(self.links["to_attention"].timing(attention_in)))
        interval = self.attention.output_engines[0].beats
        out_beats = config.seq_len * config.embed_dim // config.proj_pe
        attention_out = [attention_taken[-1] + self.attention.latency + beat * interval for beat in range(out_beats)]
        add1_in, add1_taken = _joined(x_forked, self.skip_latency)
        _feed(attention_out, self.links["from_attention"].timing(slice_timing(add1_in)))
        skip1 = [time + self.add1.latency for time in add1_taken]
        skip1_forked = [time + StreamBuffer.LATENCY for time in skip1]
        ln2_out = _rows_out(skip1_forked, beats, self.ln2.latency)
        ff1_in, ff1_taken = recorded(folded_input(self.ff1.beats, self.ff1.folds))
        _feed(ln2_out, slice_timing(self.links["to_ff1"].timing(ff1_in)))
        ff1_out = _folded_out(ff1_taken, self.ff1.beats, self.ff1.folds, self.ff1.latency)
        ff2_in, ff2_taken = recorded(folded_input(self.ff2.beats, self.ff2.folds))
        _feed(ff1_out, self.links["to_ff2"].timing(ff2_in))
        ff2_out = _folded_out(ff2_taken, self.ff2.beats, self.ff2.folds, self.ff2.latency)
        add2_in, add2_taken = _joined(skip1_forked, self.skip_latency)
        _feed(ff2_out, self.links["from_ff2"].timing(slice_timing(add2_in)))
        return {"x": x, "x_forked": x_forked, "attention_in": attention_taken, "attention_out": attention_out,
                "add1_taken": add1_taken, "skip1": skip1, "skip1_forked": skip1_forked, "ff1_in": ff1_taken,
                "ff1_out": ff1_out, "ff2_in": ff2_taken, "ff2_out": ff2_out, "add2_taken": add2_taken,
                "out": [time + self.add2.latency for time in add2_taken]}

    @property
    def latency(self) -> int:
        """Cycles from a sequence's last input beat to its first output beat, on an idle block fed at full rate."""
        return self.timing(list(range(self.sequence_beats)))["out"][0] - (self.sequence_beats - 1)

    def describe(self, prefix: str) -> dict[str, list[dict]]:
        """The block's entries of the sidecar's lists, names prefixed with ``prefix``: ``layers`` (each sub-unit's
        latency, counted from the input beat ``latency_from`` names, its cycles per sequence and structure),
        ``links`` and ``skip_queues`` (beats, and the branch latency they are sized from)."""
        cycles = self.stage_cycles
        layers = []
        for name, layer in self.layers.items():
            if isinstance(layer, LayerNorm):
                unit, origin, structure = "layernorm", "last", layer.describe()["structure"]
            elif isinstance(layer, Attention):
                unit, origin, structure = "attention", "last", layer.describe()["attention"]
            elif isinstance(layer, DenseEngine):
                unit, origin = "dense", "last"
                structure = {"in_features": layer.weights.shape[1], "out_features": layer.weights.shape[0],
                             "pe": layer.pe, "simd": layer.simd, "folds": layer.folds, "beats": layer.beats,
                             "stages": layer.stages}
            else:
                unit, origin, structure = "add", "first", {"stages": layer.stages, "dsp_blocks": layer.dsp_blocks}
            layers.append({"layer": f"{prefix}{name}", "unit": unit, "latency_cycles": layer.latency,
                           "latency_from": origin, "cycles_per_sequence": cycles[name], "structure": structure})
        links = [{"link": f"{prefix}{name}", **link.describe(), "cycles_per_sequence": cycles[name]}
                 for name, link in self.links.items()]
        taken = {"skip": "add1_taken", "skip1": "add2_taken"}
        skips = [{"queue": f"{prefix}{name}", "beats": depth, "branch_latency": self.branch_latencies[taken[name]]}
                 for name, depth in self.skip_depths.items()]
        return {"layers": layers, "links": links, "skip_queues": skips}

    def elaborate(self, platform):
        m = Module()
        config = self.config
        lanes, target = config.lanes, config.target
        beat = LaneBeat(lanes, BITS)
        for name, layer in self.layers.items():
            m.submodules[name] = layer
        for name, link in self.links.items():
            m.submodules[name] = link
        sequence = self.sequence_beats

        def framed(name: str, source, layout: LaneBeat, period: int):
            reframe = m.submodules[f"{name}_frames"] = Reframe(layout, period)
            wiring.connect(m, source, reframe.i)
            return reframe.o

        def skip_queue(name: str, fork: StreamFork):
            queue = m.submodules[name] = StreamQueue(beat, self.skip_depths[name], target)
            wiring.connect(m, fork.o[0], queue.i)
            return framed(name, queue.o, beat, sequence)

        def sliced(name: str, source, sink) -> None:
            buffer = m.submodules[f"{name}_slice"] = StreamBuffer(Value.cast(source.payload).shape())
            wiring.connect(m, source, buffer.i)
            wiring.connect(m, buffer.o, sink)

        fork = m.submodules.fork = StreamFork(beat, 2)
        sliced("x", wiring.flipped(self.i), fork.i)
        skip = skip_queue("skip", fork)
        wiring.connect(m, framed("ln1_rows", fork.o[1], beat, config.beats), self.ln1.i)
        sliced("ln1", self.ln1.o, self.links["to_attention"].i)
        attention_beat = LaneBeat(config.proj_simd, BITS)
        wiring.connect(m, framed("attention_sequences", self.links["to_attention"].o, attention_beat,
                                 config.seq_len * config.embed_dim // config.proj_simd), self.attention.i)
        wiring.connect(m, self.attention.o, self.links["from_attention"].i)
        sliced("attention", framed("attention_out", self.links["from_attention"].o, beat, sequence), self.add1.a)
        sliced("skip", skip, self.add1.b)

        fork1 = m.submodules.fork1 = StreamFork(beat, 2)
        sliced("add1", self.add1.o, fork1.i)
        skip1 = skip_queue("skip1", fork1)
        wiring.connect(m, framed("ln2_rows", fork1.o[1], beat, config.beats), self.ln2.i)
        sliced("ln2", self.ln2.o, self.links["to_ff1"].i)
        wiring.connect(m, self.links["to_ff1"].o, self.ff1.i)
        wiring.connect(m, self.ff1.o, self.links["to_ff2"].i)
        wiring.connect(m, self.links["to_ff2"].o, self.ff2.i)
        wiring.connect(m, self.ff2.o, self.links["from_ff2"].i)
        sliced("skip1", skip1, self.add2.a)
        sliced("ff2", framed("ff2_out", self.links["from_ff2"].o, beat, sequence), self.add2.b)
        wiring.connect(m, self.add2.o, wiring.flipped(self.o))
        with m.If(Cat(layer.error for layer in self.layers.values()).any()):
            m.d.sync += self.error.eq(1)
        return m


class EncoderStack(wiring.Component):
    """The encoder-stack unit of one :class:`~int8attn.golden.stack_unit.StackConfig` (module docstring).

    Parameters
    ----------
    config : StackConfig

    Attributes
    ----------
    config : StackConfig
    model : StackModel
    embedding : Embedding
        With the positional encoding.
    blocks : list of EncoderBlock

    Members
    -------
    i : In(stream.Signature(LaneBeat(1, token_bits, signed=False)))
        Token ids, one a beat, ``last`` on each sequence's ``S``-th token.
    o : Out(stream.Signature(LaneBeat(lanes, 8)))
        The last block's output, token-major, ``E / lanes`` beats a token, ``last`` on each sequence's final beat.
    error : Out(1)
        Sticky: a token's ``last`` flag was misplaced, a token id was ``vocab`` or more, or a sub-unit raised its
        error; cleared by reset.
    """

    def __init__(self, config: StackConfig):
        self.config = config
        self.model = StackModel(config)
        self.embedding = Embedding(config.embedding_config())
        self.blocks = [EncoderBlock(plan, config) for plan in config.plan]
        self.token_bits = self.embedding.token_bits
        super().__init__({
            "i": In(stream.Signature(LaneBeat(1, self.token_bits, signed=False))),
            "o": Out(stream.Signature(LaneBeat(config.lanes, BITS))),
            "error": Out(1),
        })

    latency_from = "last"
    """:attr:`latency` counts from a sequence's last token: the attention needs every token."""

    @property
    def sequence_beats(self) -> int:
        return self.config.seq_len * self.config.beats

    def timing(self) -> dict[str, list[int]]:
        """The cycles of one sequence on an idle unit, tokens offered back to back from cycle 0 and the output never
        stalled: ``tokens`` (taken), ``x0`` (the embedding's output beats) and each block's
        (:meth:`EncoderBlock.timing`) under ``block{b}.``."""
        config = self.config
        tokens = [token * config.beats for token in range(config.seq_len)]
        x = [time + self.embedding.latency + beat for time in tokens for beat in range(config.beats)]
        result = {"tokens": tokens, "x0": x}
        for index, block in enumerate(self.blocks):
            times = block.timing(x)
            result |= {f"block{index}.{name}": value for name, value in times.items()}
            x = times["out"]
        return result

    @property
    def latency(self) -> int:
        """Cycles from a sequence's last token being accepted to its first output beat being valid, on an idle unit
        (:meth:`timing`)."""
        timing = self.timing()
        return timing[f"block{len(self.blocks) - 1}.out"][0] - timing["tokens"][-1]

    @property
    def stage_cycles(self) -> dict[str, int]:
        """Cycles each stage spends on a sequence at full rate: the embedding's and each block's
        (:attr:`EncoderBlock.stage_cycles`)."""
        cycles = {"embedding": self.embedding.cycles_per_frame}
        for index, block in enumerate(self.blocks):
            cycles |= {f"block{index}.{name}": value for name, value in block.stage_cycles.items()}
        return cycles

    @property
    def cycles_per_frame(self) -> int:
        """Cycles per sequence at full rate: the slowest stage's."""
        return max(self.stage_cycles.values())

    @property
    def elements_per_cycle(self) -> float:
        """Tokens per cycle at full rate."""
        return self.config.seq_len / self.cycles_per_frame

    @property
    def frame_beats(self) -> dict[str, int]:
        return {"i": self.config.seq_len, "o": self.sequence_beats}

    @property
    def multipliers(self) -> int:
        """Multipliers of the engines (the attention's, the feed-forward layers'), every block."""
        return sum(block.attention.multipliers + block.ff1.multipliers + block.ff2.multipliers
                   for block in self.blocks)

    @property
    def macs_per_frame(self) -> int:
        """Multiply-accumulates of one sequence in the engines."""
        config = self.config
        feed_forward = 2 * config.seq_len * config.embed_dim * config.ffn_dim
        return sum(block.attention.macs_per_frame + feed_forward for block in self.blocks)

    def elaborate(self, platform):
        m = Module()
        config = self.config
        m.submodules.embedding = embedding = self.embedding
        accept = self.i.valid & self.i.ready
        token = Signal(range(max(config.seq_len, 2)), name="token")
        sequence_end = token == config.seq_len - 1
        with m.If(accept):
            m.d.sync += token.eq(Mux(sequence_end, 0, token + 1))
            with m.If(self.i.payload.last != sequence_end):
                m.d.sync += self.error.eq(1)
        m.d.comb += [embedding.i.valid.eq(self.i.valid), self.i.ready.eq(embedding.i.ready),
                     embedding.i.payload.data.eq(self.i.payload.data), embedding.i.payload.last.eq(sequence_end)]
        source = embedding.o
        for index, block in enumerate(self.blocks):
            m.submodules[f"block{index}"] = block
            wiring.connect(m, source, block.i)
            source = block.o
        wiring.connect(m, source, wiring.flipped(self.o))
        with m.If(Cat(embedding.error, *(block.error for block in self.blocks)).any()):
            m.d.sync += self.error.eq(1)
        return m

    def port_descriptions(self) -> dict[str, str]:
        config = self.config
        lanes, bits = config.lanes, self.token_bits
        return {
            "i__valid": "token beat valid",
            "i__ready": "token accepted",
            "i__payload": f"bits [{bits - 1}:0] unsigned token id 0..{config.vocab - 1}; last: bit {bits} (the "
                          f"sequence's {config.seq_len}th token)",
            "o__valid": "output beat valid; held with its payload until taken",
            "o__ready": "sink takes the beat when valid",
            "o__payload": f"lane k: bits [8k+7:8k] signed int8 output feature {lanes}b+k of the token on its beat b "
                          f"(0..{config.beats - 1}); last: bit {8 * lanes} (the sequence's final beat)",
            "error": "sticky: a misplaced last flag, a token id of vocab or more, or a sub-unit's error; cleared by "
                     "rst",
        }

    def describe(self) -> dict:
        """The sidecar's encoder-stack sections: ``stack`` (the slowest stage, beats a token, where the ReLU is), and
        the lists ``layers`` (the embedding and each block's sub-units: latency, cycles per sequence, structure),
        ``links`` and ``skip_queues`` (:meth:`EncoderBlock.describe`)."""
        cycles = self.stage_cycles
        sections = {"layers": [{"layer": "embedding", "unit": "embedding", "latency_cycles": self.embedding.latency,
                                "latency_from": "first", "cycles_per_sequence": cycles["embedding"],
                                "structure": self.embedding.describe()["embedding"]}],
                    "links": [], "skip_queues": []}
        for index, block in enumerate(self.blocks):
            for key, entries in block.describe(f"block{index}.").items():
                sections[key] += entries
        return {
            "stack": {"slowest_stage": max(cycles, key=cycles.get), "beats_per_token": self.config.beats,
                      "relu": "folded into FFN1's requantizer clamp"},
            **sections,
        }

    def artefacts(self) -> dict[str, str]:
        """Every sub-unit's ROM files, each prefixed with its layer: ``embedding_*``, ``block<b>_attention_*``,
        ``block<b>_ff1_*`` and ``block<b>_ff2_*``."""
        files = {f"embedding_{name}" if not name.startswith("embedding") else name: text
                 for name, text in self.embedding.artefacts().items()}
        for index, block in enumerate(self.blocks):
            prefix = f"block{index}_"
            files |= {f"{prefix}attention_{name}": text for name, text in block.attention.artefacts().items()}
            files |= {f"{prefix}ff1_{name}": text for name, text in block.ff1.weight_files().items()}
            files |= {f"{prefix}ff2_{name}": text for name, text in block.ff2.weight_files().items()}
            for name in ("ln1", "ln2"):
                files |= {f"{prefix}{name}_{file}": text for file, text in block.layers[name].artefacts().items()}
        return files
