"""The attention unit: multi-head int8 self-attention over sequences of ``S`` tokens, bit-exact with
:class:`~int8attn.golden.attention_unit.AttentionModel`, built from the dense, matmul and softmax units' datapaths.

Dataflow (every arrow a valid/ready stream; the stages of :meth:`AttentionConfig.plan
<int8attn.golden.attention_unit.AttentionConfig.plan>`):

* the input tokens go to the Q, K and V projections at once (three :class:`~int8attn.hdl.dense.DenseEngine`\\ s of
  all heads' ``H·d`` outputs), which issue in lockstep on one registered room flag (``shared_room``: on an ECP5 a
  flag of one engine reached the others' issue logic in 8.2 ns); each projection's tokens pass a register slice
  (:class:`~int8attn.hdl.streams.StreamBuffer`: on an ECP5 the ready path from a head's Q queue through the split
  into the projection's output queue took 6.4 ns) and are dealt out to the heads, ``d`` outputs each
  (:class:`~int8attn.hdl.streams.StreamSplit`);
* per head: Q waits in a :class:`~int8attn.hdl.streams.Queue` until the sequence's keys are in; the score engine (a
  :class:`~int8attn.hdl.matmul.MatmulEngine`, ``Q·Kᵀ``) holds K in its banks; its rows of ``S`` scores go through
  the head's :class:`~int8attn.hdl.softmax.Softmax`; the P·V engine (a ``MatmulEngine``) holds V in its banks and
  takes the probability rows through a register slice (on an ECP5 the engine's ``ready`` reached the softmax's
  output counters in 6.8 ns);
* the heads' softmaxes share one reciprocal (:class:`~int8attn.hdl.reciprocal.SharedReciprocal`) where they can
  (:func:`_shared_reciprocal`): a pipelined reciprocal takes a sum a cycle, a head offers one a row;
* a surrogate softmax (``hccs``, ``base2``, ``poly``) gives unsigned 8-bit codes at zero point 0: their top bit is
  flipped on the way to P·V, ``code − 128`` at the engine's zero point −128, the same products;
* causal (``--causal``): each head's softmax masks the scores of later keys (:class:`~int8attn.hdl.softmax.Softmax`'s
  ``causal``), whose probabilities are then the P·V engine's zero point and add nothing to the output;
* the heads' outputs are merged back token by token (:class:`~int8attn.hdl.streams.StreamMerge`), then through the
  optional output projection.

Each engine's banks take the next sequence's K and V while it computes, so back-to-back sequences keep the engines
busy; a sequence's scores wait for its last key, so its output follows its last input beat.
"""

import numpy as np
from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from int8attn.golden import SoftmaxConfig, SoftmaxModel
from int8attn.golden.attention import PROJECTIONS
from int8attn.golden.attention_unit import AttentionConfig, AttentionModel, DenseStage
from int8attn.hdl.dense import DenseEngine
from int8attn.hdl.matmul import MatmulEngine
from int8attn.hdl.reciprocal import Reciprocal, SharedReciprocal
from int8attn.hdl.softmax import Softmax, reciprocal_arguments
from int8attn.hdl.streams import LaneBeat, Queue, Reframe, StreamBuffer, StreamMerge, StreamSplit
from int8attn.hdl.wrapcheck import WrapChecked

WEIGHT_BITS = 8
SEQUENCES_AHEAD = 3
"""The fewest sequences of K, V (the engines' banks) and Q (a head's queue) held at once: the one in use and two more
(:attr:`Attention.sequences_ahead`)."""


def _shared_reciprocal(configs: list[SoftmaxConfig]) -> SharedReciprocal | None:
    """One reciprocal for every head's softmax where they can share it: more than one head, identical pipelined
    reciprocals, and rows of at least as many beats as heads (so each head waits at most ``heads − 1`` cycles)."""
    arguments = [reciprocal_arguments(config, SoftmaxModel(config)) for config in configs]
    first = arguments[0]
    if (len(configs) < 2 or first is None or not first["pipelined"] or configs[0].beats < len(configs)
            or any(other != first for other in arguments)):
        return None
    return SharedReciprocal(Reciprocal(**first), len(configs))


def dense_engine(stage: DenseStage, simd: int, target: str, shared_room: bool = False) -> DenseEngine:
    """The :class:`~int8attn.hdl.dense.DenseEngine` of ``stage`` (symmetric int8 weights), ``simd`` inputs and the
    requantizer's lanes as outputs per cycle."""
    return DenseEngine(weights=np.asarray(stage.weights, dtype=np.int64), weight_bits=WEIGHT_BITS,
                       biases=np.asarray(stage.biases, dtype=np.int64).tolist(),
                       input_zero_point=stage.input_zero_point, requant=stage.requant, pe=stage.requant.lanes,
                       simd=simd, target=target, shared_room=shared_room)


class Attention(WrapChecked, wiring.Component):
    """The attention unit of one :class:`~int8attn.golden.attention_unit.AttentionConfig` (module docstring).

    Parameters
    ----------
    config : AttentionConfig

    Members
    -------
    i : In(stream.Signature(LaneBeat(proj_simd, 8)))
        Sequences of ``S`` tokens of ``E`` features, token-major, ``E / proj_simd`` beats a token, ``last`` on the
        sequence's final beat.
    o : Out(stream.Signature(LaneBeat(lanes, 8)))
        The output tokens (``E_out`` features, or the heads' ``H·d``), token-major, ``last`` on the sequence's final
        beat; ``lanes`` is ``out_pe`` with an output projection, else ``proj_pe``.
    error : Out(1)
        Sticky: a ``last`` flag was misplaced on the input.
    """

    def __init__(self, config: AttentionConfig):
        self.config = config
        self.model = AttentionModel(config)
        plan = config.plan()
        self.plan = plan
        target = config.target
        self.projections = {name: dense_engine(stage, config.proj_simd, target, shared_room=True)
                            for name, stage in plan.projections.items()}
        self.score_engines = [MatmulEngine(m=config.seq_len, k=config.head_dim, n=config.seq_len, adj_y=True,
                                           pe=config.score_pe, simd=config.proj_pe, lhs_zero_point=head.q_zero_point,
                                           rhs_zero_point=head.k_zero_point, requant=head.score, target=target,
                                           banks=SEQUENCES_AHEAD)
                              for head in plan.heads]
        self.shared_reciprocal = _shared_reciprocal([head.softmax for head in plan.heads])
        self.softmaxes = [Softmax(head.softmax, causal=config.causal, shared_reciprocal=self.shared_reciprocal)
                          for head in plan.heads]
        self.output_engines = [MatmulEngine(m=config.seq_len, k=config.seq_len, n=config.head_dim, adj_y=False,
                                            pe=config.proj_pe, simd=config.score_pe,
                                            lhs_zero_point=head.probability_zero_point,
                                            rhs_zero_point=head.v_zero_point, requant=head.output, target=target,
                                            banks=SEQUENCES_AHEAD)
                               for head in plan.heads]
        self.output_projection = (None if plan.output is None
                                  else dense_engine(plan.output, config.proj_pe, target))
        self.out_lanes = config.out_pe if plan.output is not None else config.proj_pe
        for engine in (*self.score_engines, *self.output_engines):
            engine.banks = self.sequences_ahead
        super().__init__({
            "i": In(stream.Signature(LaneBeat(config.proj_simd, 8))),
            "o": Out(stream.Signature(LaneBeat(self.out_lanes, 8))),
            "error": Out(1),
        })

    @property
    def head_beats(self) -> int:
        """Beats of one head's ``d`` features of a token, ``d / proj_pe``."""
        return self.config.head_dim // self.config.proj_pe

    @property
    def sequences_ahead(self) -> int:
        """Sequences whose K and V banks and Q beats are held at once, at least :data:`SEQUENCES_AHEAD`. Sequence
        ``i``'s V bank fills during its projection and is freed when its P·V ends, its latency and a P·V pass later;
        sequences come one every :attr:`cycles_per_frame` cycles, so the banks must hold the latency's worth of them
        and two more, or the projections of sequence ``i + banks`` wait for that bank (at 8 cycles a sequence and a
        latency of 75, three banks ran at 16 cycles a sequence)."""
        return max(SEQUENCES_AHEAD, -(-self.latency // self.cycles_per_frame) + 2)

    @property
    def q_queue_depth(self) -> int:
        """Beats a head's Q queue holds: :attr:`sequences_ahead` sequences (one waits there for its last key)."""
        return self.sequences_ahead * self.config.seq_len * self.head_beats

    @property
    def stage_cycles(self) -> dict[str, int]:
        """Cycles each stage spends on a sequence at full rate."""
        config = self.config
        seq_len, heads, d = config.seq_len, config.heads, config.head_dim
        cycles = {
            "projections": seq_len * (config.embed_dim // config.proj_simd) * (heads * d // config.proj_pe),
            "scores": self.score_engines[0].cycles_per_frame,
            "softmax": seq_len * seq_len // config.score_pe,
            "outputs": self.output_engines[0].cycles_per_frame,
            "merge": seq_len * heads * self.head_beats,
        }
        if self.output_projection is not None:
            cycles["output_projection"] = (seq_len * (heads * d // config.proj_pe)
                                           * (config.output_features // config.out_pe))
        return cycles

    @property
    def cycles_per_frame(self) -> int:
        """Cycles per sequence at full rate: the slowest stage's."""
        return max(self.stage_cycles.values())

    @property
    def elements_per_cycle(self) -> float:
        """Input elements per cycle at full rate."""
        return self.config.frame_elements / self.cycles_per_frame

    @property
    def frame_beats(self) -> dict[str, int]:
        config = self.config
        return {"i": config.seq_len * config.embed_dim // config.proj_simd,
                "o": config.seq_len * config.output_features // self.out_lanes}

    @property
    def multipliers(self) -> int:
        """Multipliers of the engines (the requantizers' and softmaxes' apart)."""
        return sum(self.multipliers_by_stage.values())

    @property
    def multipliers_by_stage(self) -> dict[str, int]:
        """Multipliers of each kind of engine, all heads together."""
        counts = {"projections": sum(engine.multipliers for engine in self.projections.values()),
                  "scores": sum(engine.multipliers for engine in self.score_engines),
                  "outputs": sum(engine.multipliers for engine in self.output_engines)}
        if self.output_projection is not None:
            counts["output_projection"] = self.output_projection.multipliers
        return counts

    @property
    def macs_per_frame(self) -> int:
        """Multiply-accumulates of one sequence."""
        config = self.config
        seq_len, heads, d = config.seq_len, config.heads, config.head_dim
        macs = 3 * seq_len * config.embed_dim * heads * d + 2 * heads * seq_len * seq_len * d
        if self.output_projection is not None:
            macs += seq_len * heads * d * config.output_features
        return macs

    @property
    def latency(self) -> int:
        """Cycles from a sequence's last input beat to its first output beat, when the unit was idle: the K projection
        of the last token up to head 0's last beat (one every ``E / proj_simd`` cycles) and its register slice, the
        score engine's bank flag, the first score row, its softmax and register slice and the first output row; with
        an output projection, then the rest of the first token (:meth:`_first_token_cycles`) and the projection."""
        config = self.config
        projection, score = self.projections["k"], self.score_engines[0]
        softmax, output = self.softmaxes[0], self.output_engines[0]
        latency = (projection.latency + StreamBuffer.LATENCY + (self.head_beats - 1) * projection.beats
                   + score.bank_flag_latency + score.latency + (config.seq_len // config.score_pe - 1) * score.beats
                   + softmax.latency + StreamBuffer.LATENCY + output.latency)
        if self.output_projection is not None:
            latency += self._first_token_cycles() + self.output_projection.latency
        return latency

    def _first_token_cycles(self) -> int:
        """Cycles from head 0's first output beat of a sequence's first token to the merge's last beat of it: head
        ``h`` starts ``h · d/proj_pe`` projection beats after head 0 (its keys come later in each token), its beats
        follow one every ``S / score_pe`` cycles, and the merge passes one beat a cycle, head after head."""
        projection_beats, output_beats = self.projections["k"].beats, self.output_engines[0].beats
        waits = self._reciprocal_waits()
        time = None
        for head in range(self.config.heads):
            for beat in range(self.head_beats):
                arrival = head * self.head_beats * projection_beats + waits[head] + beat * output_beats
                time = arrival if time is None else max(arrival, time + 1)
        return time

    def _reciprocal_waits(self) -> list[int]:
        """Cycles each head's first score row waits for the shared reciprocal in an idle unit (0 without one): head
        ``h``'s row ``r`` offers its sum ``h · d/proj_pe`` projection beats and ``r`` score rows after head 0's first,
        and the lowest head goes first."""
        heads = self.config.heads
        if self.shared_reciprocal is None:
            return [0] * heads
        head_offset = self.head_beats * self.projections["k"].beats
        row_cycles = self.config.seq_len // self.config.score_pe * self.score_engines[0].beats
        arrivals = {}
        for head in range(heads):
            for row in range(self.config.seq_len):
                arrivals.setdefault(head * head_offset + row * row_cycles, []).append((head, row))
        waits, pending, time = {}, [], 0
        while len(waits) < heads:
            pending = sorted(pending + [(head, row, time) for head, row in arrivals.get(time, ())])
            if pending:
                head, row, arrival = pending.pop(0)
                if row == 0:
                    waits[head] = time - arrival
            time += 1
        return [waits[head] for head in range(heads)]

    def formal_stages(self) -> dict[str, tuple[wiring.Component, int]]:
        """The stages that list :class:`~int8attn.hdl.wrapcheck.WrapCheck` s, for the formal ``overflow`` group to
        check one by one (:class:`~int8attn.verif.formal.StageHarness`), each with the cycles from reset in which two
        of its frames come out at full rate: the Q, K and V projections and the output projection (their latency
        and two tokens), each head's score and P·V engines (an RHS frame, its bank flag, their latency and two
        frames) and its softmax (its latency and two rows). The stages are the unit's own, which is then not
        elaborated itself.

        Raises
        ------
        ValueError
            The heads share a reciprocal, which makes their softmaxes one stage with it.
        """
        if self.shared_reciprocal is not None:
            raise ValueError(f"the heads share a reciprocal (heads={self.config.heads}, rows of "
                             f"{self.config.seq_len // self.config.score_pe} beats), which joins their softmaxes into "
                             "one stage; allowed: heads=1, or rows of fewer beats than heads (seq_len / score_pe < "
                             "heads)")
        self._MustUse__silence = True  # its stages are elaborated instead
        projections = {f"{name}_projection": engine for name, engine in self.projections.items()}
        if self.output_projection is not None:
            projections["output_projection"] = self.output_projection
        stages = {name: (engine, engine.latency + 2 * engine.folds * engine.beats)
                  for name, engine in projections.items()}
        for head in range(self.config.heads):
            for kind, engine in (("score", self.score_engines[head]), ("output", self.output_engines[head])):
                stages[f"{kind}{head}"] = (engine, engine.frame_beats["rhs"] + engine.bank_flag_latency
                                           + engine.latency + 2 * engine.cycles_per_frame)
            softmax = self.softmaxes[head]
            stages[f"softmax{head}"] = (softmax, softmax.latency + 2 * softmax.config.beats)
        return stages

    latency_from = "last"
    misframed_rows = "counted"
    """A sequence is every ``S·E / proj_simd`` input beats, wherever ``last`` falls (a misplaced one raises
    ``error``)."""

    def port_descriptions(self) -> dict[str, str]:
        config = self.config
        return {
            "i__valid": "input beat valid",
            "i__ready": "input beat accepted",
            "i__payload": f"{config.proj_simd} int8 features of a token (lane s in bits [8s+7:8s]) and last at bit "
                          f"{8 * config.proj_simd} (final beat of the sequence)",
            "o__valid": "output beat valid",
            "o__ready": "output beat taken",
            "o__payload": f"{self.out_lanes} int8 output features of a token (lane k in bits [8k+7:8k]) and last at "
                          f"bit {8 * self.out_lanes} (final beat of the sequence)",
            "error": "sticky: an input sequence's last flag was misplaced",
        }

    def describe(self) -> dict:
        config = self.config
        return {
            "attention": {
                "seq_len_tokens": config.seq_len, "features": config.embed_dim, "head_count": config.heads,
                "head_size": config.head_dim, "output_features": config.output_features,
                "output_projection": self.output_projection is not None, "softmax": config.mode,
                "shared_reciprocal": self.shared_reciprocal is not None,
                "multipliers_by_stage": self.multipliers_by_stage,
                "stage_cycles": self.stage_cycles, "sequences_ahead": self.sequences_ahead,
                "q_queue_beats": self.q_queue_depth,
            },
        }

    def artefacts(self) -> dict[str, str]:
        return {name: text for softmax in self.softmaxes[:1] for name, text in softmax.artefacts().items()}

    def elaborate(self, platform):
        m = Module()
        self.share_wrap_checks([*self.projections.values(), *self.score_engines, *self.softmaxes, *self.output_engines,
                                self.output_projection])
        config = self.config
        token_beats = config.embed_dim // config.proj_simd
        sequence_beats = config.seq_len * token_beats
        accept = self.i.valid & self.i.ready
        beat = Signal(range(max(sequence_beats, 2)), name="input_beat")
        sequence_end = beat == sequence_beats - 1
        with m.If(accept):
            m.d.sync += beat.eq(Mux(sequence_end, 0, beat + 1))
        with m.If(accept & (self.i.payload.last != sequence_end)):
            m.d.sync += self.error.eq(1)
        token_beat = Signal(range(max(token_beats, 2)), name="token_beat")
        token_end = token_beat == token_beats - 1
        with m.If(accept):
            m.d.sync += token_beat.eq(Mux(token_end, 0, token_beat + 1))

        # The projections issue in lockstep: the same counters from reset, the same input beats and one registered
        # room flag for all three, so one's ready is every one's and no engine's flag reaches another's issue logic.
        issue_room = Signal(name="projections_room")
        m.d.sync += issue_room.eq(Cat(engine.room for engine in self.projections.values()).all())
        m.d.comb += self.i.ready.eq(self.projections["k"].i.ready)
        splits = {}
        lane_beat = LaneBeat(config.proj_pe, 8)
        for name in PROJECTIONS:
            engine = m.submodules[f"{name}_projection"] = self.projections[name]
            m.d.comb += [engine.i.valid.eq(self.i.valid), engine.i.payload.data.eq(self.i.payload.data),
                         engine.i.payload.last.eq(token_end), engine.issue_room.eq(issue_room)]
            buffer = m.submodules[f"{name}_buffer"] = StreamBuffer(lane_beat)
            split = m.submodules[f"{name}_split"] = StreamSplit(lane_beat, config.heads, self.head_beats)
            wiring.connect(m, engine.o, buffer.i)
            wiring.connect(m, buffer.o, split.i)
            splits[name] = split
            with m.If(engine.error):
                m.d.sync += self.error.eq(1)

        sequence = config.seq_len * self.head_beats
        if self.shared_reciprocal is not None:
            shared = m.submodules.shared_reciprocal = self.shared_reciprocal
            for head, softmax in enumerate(self.softmaxes):
                wiring.connect(m, softmax.sums, shared.i[head])
                wiring.connect(m, shared.o[head], softmax.scales)
        merge = m.submodules.merge = StreamMerge(lane_beat, config.heads, self.head_beats)
        for head in range(config.heads):
            self._head(m, head, splits, merge.i[head], lane_beat, sequence)
        merged = m.submodules.merged_frames = Reframe(lane_beat, config.seq_len * config.heads * self.head_beats)
        wiring.connect(m, merge.o, merged.i)
        if self.output_projection is None:
            wiring.connect(m, merged.o, wiring.flipped(self.o))
            return m
        projection = m.submodules.output_projection = self.output_projection
        tokens = m.submodules.projection_tokens = Reframe(lane_beat, config.heads * self.head_beats)
        wiring.connect(m, merged.o, tokens.i)
        wiring.connect(m, tokens.o, projection.i)
        out_frames = m.submodules.output_frames = Reframe(LaneBeat(self.out_lanes, 8),
                                                          config.seq_len * config.output_features // self.out_lanes)
        wiring.connect(m, projection.o, out_frames.i)
        wiring.connect(m, out_frames.o, wiring.flipped(self.o))
        return m

    def _head(self, m: Module, head: int, splits: dict, merged, lane_beat: LaneBeat, sequence: int) -> None:
        """Head ``head``'s Q queue, score engine, softmax and P·V engine, from its turns of the projections to its
        input of the merge."""
        config = self.config
        score = m.submodules[f"score{head}"] = self.score_engines[head]
        softmax = m.submodules[f"softmax{head}"] = self.softmaxes[head]
        output = m.submodules[f"output{head}"] = self.output_engines[head]

        queue = m.submodules[f"q_queue{head}"] = Queue(lane_beat.size, self.q_queue_depth, target=config.target)
        q_frames = m.submodules[f"q_frames{head}"] = Reframe(lane_beat, sequence)
        wiring.connect(m, splits["q"].o[head], q_frames.i)
        m.d.comb += [queue.w_en.eq(q_frames.o.valid & queue.w_rdy), queue.w_data.eq(q_frames.o.payload),
                     q_frames.o.ready.eq(queue.w_rdy),
                     score.lhs.valid.eq(queue.r_rdy), score.lhs.payload.eq(queue.r_data),
                     queue.r_en.eq(score.lhs.ready)]
        for name, engine in (("k", score), ("v", output)):
            frames = m.submodules[f"{name}_frames{head}"] = Reframe(lane_beat, sequence)
            wiring.connect(m, splits[name].o[head], frames.i)
            wiring.connect(m, frames.o, engine.rhs)

        rows = m.submodules[f"score_rows{head}"] = Reframe(LaneBeat(config.score_pe, 8),
                                                           config.seq_len // config.score_pe)
        wiring.connect(m, score.o, rows.i)
        wiring.connect(m, rows.o, softmax.i)
        probabilities = m.submodules[f"probability_frames{head}"] = Reframe(
            LaneBeat(config.score_pe, 8), config.seq_len * config.seq_len // config.score_pe)
        if softmax.model.output_signed:
            wiring.connect(m, softmax.o, probabilities.i)
        else:
            m.d.comb += [probabilities.i.valid.eq(softmax.o.valid), softmax.o.ready.eq(probabilities.i.ready),
                         probabilities.i.payload.last.eq(softmax.o.payload.last)]
            for lane in range(config.score_pe):
                m.d.comb += probabilities.i.payload.data[lane].eq(softmax.o.payload.data[lane] ^ 0x80)
        probability_slice = m.submodules[f"probability_slice{head}"] = StreamBuffer(LaneBeat(config.score_pe, 8))
        wiring.connect(m, probabilities.o, probability_slice.i)
        wiring.connect(m, probability_slice.o, output.lhs)
        wiring.connect(m, output.o, merged)
        with m.If(score.error | softmax.error | output.error):
            m.d.sync += self.error.eq(1)
