"""The matmul unit: TFLite's int8 ``BATCH_MATMUL`` of one ``[M, K]`` LHS and one RHS per frame, bit-exact with
:class:`~int8attn.golden.matmul.MatmulModel`.

The RHS streams into one of two banks of operand memories while the :class:`~int8attn.hdl.mvu.FoldedEngine`
multiplies the LHS rows of the previous frame by the other bank, so back-to-back frames keep the engine busy as long
as the RHS arrives no faster than the engine uses it (``pe ≤ m`` with ``adj_y``, ``simd ≤ m`` without, checked by
:class:`~int8attn.golden.matmul.MatmulConfig`).
"""

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from int8attn.golden.matmul import MatmulConfig, MatmulModel
from int8attn.golden.requant import RequantConfig
from int8attn.hdl.memory import Ram
from int8attn.hdl.mvu import OPERAND_BITS, FoldedEngine
from int8attn.hdl.pipeline import delay
from int8attn.hdl.streams import LaneBeat
from int8attn.hdl.wrapcheck import WrapChecked

BANKS = 2
WRITE_REGISTER = 1
"""Registers between an RHS beat's acceptance and its write into the operand memories: on an ECP5 the write enables,
decoded from the accepted beat, took 2.7 ns of route alone to a block RAM's clock enable."""


class MatmulEngine(WrapChecked, wiring.Component):
    """``requant(Σ_k (lhs − lhs_zero_point)·(rhs − rhs_zero_point))`` of one ``[m, k]`` LHS and one RHS per frame:
    a :class:`~int8attn.hdl.mvu.FoldedEngine` reading two banks of operand memories that the RHS stream fills.

    Output column ``n = f·pe + c`` is PE ``c``'s channel in fold ``f``; PE ``c``'s operand memory (a
    :class:`~int8attn.hdl.memory.Ram` written by lanes) holds ``rhs − rhs_zero_point`` of its columns, word ``bank ·
    folds·beats + f·beats + b`` holding rows ``b·simd …`` of the shared dimension in its ``simd`` lanes. The RHS
    stream carries the tensor in its memory order: with ``adj_y`` (``[n, k]``) a beat is ``simd`` elements of one
    column (one PE's whole word), without (``[k, n]``) ``pe`` elements of one row (lane ``row mod simd`` of every
    PE's word ``f·beats + row / simd``). A bank is filled, then used for one frame of LHS rows, then freed when the
    frame's last step issues, while the other bank fills; a bank counts as full :attr:`bank_flag_latency` cycles
    after its last beat (its writes are registered once, :data:`WRITE_REGISTER`). A ``last`` misplaced on either
    input raises the sticky ``error``.

    Parameters
    ----------
    m, k, n : int
        LHS rows, shared dimension, RHS columns.
    adj_y : bool
        The RHS arrives as ``[n, k]``.
    pe, simd : int
        Output columns in parallel (dividing ``n``), shared-dimension elements per cycle (dividing ``k``).
    lhs_zero_point, rhs_zero_point : int
    requant : RequantConfig
        The output requantizer: ``n`` channels, ``pe`` lanes.
    target : str
    banks : int
        RHS banks, ≥ 2: one in use, the others filling (more let a producer run further ahead).

    Members
    -------
    lhs : In(stream.Signature(LaneBeat(simd, 8)))
        The LHS, row-major, ``m · k / simd`` beats a frame.
    rhs : In(stream.Signature(LaneBeat(simd if adj_y else pe, 8)))
        The RHS, row-major, ``n · k / lanes`` beats a frame.
    o : Out(stream.Signature(LaneBeat(pe, requant.output_bits)))
        The product, row-major, ``m · n / pe`` beats a frame, one every ``k / simd`` cycles at full rate.
    error : Out(1)
        Sticky framing error, cleared by reset.
    banks : int
        The RHS banks; an owner whose pipeline runs further ahead may raise it before elaboration (the attention
        does, :attr:`~int8attn.hdl.attention.Attention.sequences_ahead`).
    """

    def __init__(self, *, m: int, k: int, n: int, adj_y: bool, pe: int, simd: int, lhs_zero_point: int,
                 rhs_zero_point: int, requant: RequantConfig, target: str = "generic", banks: int = BANKS):
        if n % pe or k % simd:
            raise ValueError(f"pe={pe} must divide n={n} and simd={simd} must divide k={k}")
        if banks < 2:
            raise ValueError(f"banks must be ≥ 2, not {banks}")
        self.banks = banks
        self.m, self.k, self.n, self.adj_y, self.pe, self.simd = m, k, n, adj_y, pe, simd
        self.folds, self.beats = n // pe, k // simd
        self.rhs_zero_point = rhs_zero_point
        self.engine = FoldedEngine(folds=self.folds, beats=self.beats, simd=simd, pe=pe, rows=m,
                                   input_zero_point=lhs_zero_point, weight_bits=OPERAND_BITS, biases=[0] * n,
                                   requant=requant, target=target)
        self.rhs_lanes = simd if adj_y else pe
        self.target = target
        super().__init__({
            "lhs": In(stream.Signature(LaneBeat(simd, 8))),
            "rhs": In(stream.Signature(LaneBeat(self.rhs_lanes, 8))),
            "o": Out(stream.Signature(LaneBeat(pe, requant.output_bits))),
            "error": Out(1),
        })

    @property
    def stages(self) -> dict[str, int]:
        return self.engine.stages

    @property
    def latency(self) -> int:
        """Cycles from a frame's first LHS beat being accepted to its first output beat, without stalls: the row's
        other beats and the engine's pipeline."""
        return self.beats - 1 + self.engine.latency

    @property
    def cycles_per_frame(self) -> int:
        """Cycles per frame at full rate: ``m · folds · beats``."""
        return self.m * self.folds * self.beats

    @property
    def bank_flag_latency(self) -> int:
        """Cycles from a frame's last RHS beat to the engine seeing its bank full: the registered write, then the
        flag's register."""
        return WRITE_REGISTER + 1

    @property
    def frame_beats(self) -> dict[str, int]:
        return {"lhs": self.m * self.beats, "rhs": self.n * self.k // self.rhs_lanes, "o": self.m * self.folds}

    @property
    def multipliers(self) -> int:
        return self.engine.multipliers

    @staticmethod
    def _nested_counters(m: Module, advance, counts: dict[str, int]) -> tuple[dict, object]:
        """Counters over ``counts`` (innermost first), advancing with ``advance``: their values by name, and whether
        every counter is at its end (the frame's last beat)."""
        values, carry = {}, advance
        at_end = 1
        for name, length in counts.items():
            counter = Signal(range(max(length, 2)), name=f"rhs_{name}")
            end = counter == length - 1
            with m.If(carry):
                m.d.sync += counter.eq(Mux(end, 0, counter + 1))
            values[name] = counter
            carry = carry & end
            at_end = end & at_end
        return values, at_end

    def elaborate(self, platform):
        m = Module()
        folds, beats, simd, pe = self.folds, self.beats, self.simd, self.pe
        bank_words = folds * beats
        m.submodules.engine = engine = self.engine
        self.share_wrap_checks([engine])
        wiring.connect(m, wiring.flipped(self.lhs), engine.i)
        wiring.connect(m, engine.o, wiring.flipped(self.o))

        banks = self.banks
        full = Signal(banks, name="full")
        write_bank = Signal(range(banks), name="write_bank")
        read_bank = Signal(range(banks), name="read_bank")
        accept = self.rhs.valid & self.rhs.ready
        if self.adj_y:
            counts = {"beat": beats, "column_pe": pe, "fold": folds}
        else:
            counts = {"fold": folds, "row_lane": simd, "row_beat": beats}
        position, frame_end = self._nested_counters(m, accept, counts)
        # ``weights_ready`` is ``full[read_bank]`` taken from the next values of both, so that the engine's issue (and
        # its ``lhs.ready``) starts from a register. Both of its candidates (the frame goes on, or it is done and the
        # following bank is read) come from registers, and the engine's ``frame_done`` only picks one: ``frame_done``
        # depends on ``weights_ready``, and in a four-head attention on ECP5 this loop through the bank flags' mux
        # was the critical path (7.0 ns, 5.5 of it routing).
        read_bank_full = Signal(name="read_bank_full")
        m.d.comb += [self.rhs.ready.eq(~full.bit_select(write_bank, 1)), engine.weights_ready.eq(read_bank_full)]
        with m.If(accept & frame_end):
            m.d.sync += write_bank.eq(Mux(write_bank == banks - 1, 0, write_bank + 1))
        filled = Signal(banks)
        freed = Signal(banks)
        occupied = Signal(banks, name="occupied")
        following_bank = Signal(range(banks), name="following_bank")
        m.d.comb += [filled.eq(delay(m, Mux(accept & frame_end, 1 << write_bank, 0), WRITE_REGISTER, name="filled")),
                     freed.eq(Mux(engine.frame_done, 1 << read_bank, 0)),
                     occupied.eq(full | filled),
                     following_bank.eq(Mux(read_bank == banks - 1, 0, read_bank + 1))]
        m.d.sync += [full.eq(occupied & ~freed), read_bank.eq(Mux(engine.frame_done, following_bank, read_bank)),
                     read_bank_full.eq(Mux(engine.frame_done, occupied.bit_select(following_bank, 1),
                                           occupied.bit_select(read_bank, 1)))]
        with m.If(accept & (self.rhs.payload.last != frame_end) | engine.error):
            m.d.sync += self.error.eq(1)

        operand = data.ArrayLayout(signed(OPERAND_BITS), simd)
        centred = [self.rhs.payload.data[lane] - self.rhs_zero_point for lane in range(self.rhs_lanes)]
        for k in range(pe):
            ram = m.submodules[f"operands{k}"] = Ram(OPERAND_BITS * simd, banks * bank_words, target=self.target,
                                                     lanes=simd)
            word = Signal(operand, name=f"rhs_word{k}")
            address = position["fold"] * beats + position["beat" if self.adj_y else "row_beat"]
            if self.adj_y:
                enables = Mux(accept & (position["column_pe"] == k), (1 << simd) - 1, 0)
                m.d.comb += [word[lane].eq(centred[lane]) for lane in range(simd)]
            else:
                enables = Mux(accept, 1 << position["row_lane"], 0)
                m.d.comb += [word[lane].eq(centred[k]) for lane in range(simd)]
            m.d.comb += [ram.w_en.eq(delay(m, enables, WRITE_REGISTER, name=f"rhs_enables{k}")),
                         ram.w_addr.eq(delay(m, write_bank * bank_words + address, WRITE_REGISTER,
                                             name=f"rhs_address{k}")),
                         ram.w_data.eq(delay(m, word, WRITE_REGISTER, name=f"rhs_data{k}")),
                         ram.r_en.eq(engine.weights_en),
                         ram.r_addr.eq(read_bank * bank_words + engine.weights_addr),
                         engine.weights[k].eq(operand(ram.r_data))]
        return m


class Matmul(MatmulEngine):
    """The matmul unit of one :class:`~int8attn.golden.matmul.MatmulConfig`: a :class:`MatmulEngine` with TFLite's
    requantizer of the scales, and the unit's sidecar metadata.

    Parameters
    ----------
    config : MatmulConfig

    Members
    -------
    lhs, rhs, o, error
        As :class:`MatmulEngine`'s.
    """

    def __init__(self, config: MatmulConfig):
        self.config = config
        self.model = MatmulModel(config)
        requant = RequantConfig(channels=config.n, lanes=config.pe, multipliers=(self.model.multiplier,),
                                shifts=(self.model.shift,), output_zero_point=config.output_zero_point,
                                target=config.target)
        super().__init__(m=config.m, k=config.k, n=config.n, adj_y=config.adj_y, pe=config.pe, simd=config.simd,
                         lhs_zero_point=config.lhs_zero_point, rhs_zero_point=config.rhs_zero_point, requant=requant,
                         target=config.target)

    latency_from = "first"

    @property
    def elements_per_cycle(self) -> float:
        """LHS elements per cycle at full rate."""
        return self.m * self.k / self.cycles_per_frame

    @property
    def macs_per_frame(self) -> int:
        """Multiply-accumulates of one frame, ``m · k · n``."""
        return self.m * self.k * self.n

    def port_descriptions(self) -> dict[str, str]:
        config = self.config
        rhs = "simd elements of one RHS row [N, K]" if config.adj_y else "pe elements of one RHS row [K, N]"
        return {
            "lhs__valid": "LHS beat valid",
            "lhs__ready": "LHS beat accepted (only while the engine computes a row's first fold)",
            "lhs__payload": f"{config.simd} int8 LHS elements (lane s in bits [8s+7:8s]) and last at bit "
                            f"{8 * config.simd} (final beat of the frame)",
            "rhs__valid": "RHS beat valid",
            "rhs__ready": "RHS beat accepted (while a bank is free)",
            "rhs__payload": f"{rhs} (lane j in bits [8j+7:8j]) and last at bit {8 * self.rhs_lanes} (final beat of "
                            "the frame)",
            "o__valid": "output beat valid",
            "o__ready": "output beat taken",
            "o__payload": f"{config.pe} int8 outputs of columns f*{config.pe}+k of one row (lane k in bits "
                          f"[8k+7:8k]) and last at bit {8 * config.pe} (final beat of the frame)",
            "error": "sticky: a last flag was misplaced on lhs or rhs",
        }

    def describe(self) -> dict:
        config = self.config
        return {
            "matmul": {
                "folds": config.folds, "beats": config.beats,
                "rhs_lanes": self.rhs_lanes, "operand_banks": self.banks,
                "operand_memory_words": self.banks * config.folds * config.beats,
            },
            "quantisation": {"multiplier": self.model.multiplier, "shift": self.model.shift},
            "stages": self.stages,
        }

    def artefacts(self) -> dict[str, str]:
        return {}
