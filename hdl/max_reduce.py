"""Row maximum of a stream of int8 beats."""

from amaranth import Module, Mux, Signal, Value, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from int8attn.hdl.pipeline import check_target
from int8attn.hdl.tree import reduce_tree, tree_stages


class MaxReduce(wiring.Component):
    """Running maximum over the beats of a row, lanes reduced by a registered compare tree.

    The tree has :data:`~int8attn.hdl.tree.LEVELS_PER_STAGE` compare levels per register stage of ``target``. On
    ``generic`` the running maximum is one register, updated by a compare and a multiplexer in one cycle. On the
    vendor targets that loop would hold a carry chain, its routing and the register's enable in one cycle, so two
    running maxima take the beats in turn (the phase toggles on every beat) and each is updated over two cycles:
    compare, then select. A beat restarts its running maximum when it is the first or the second of its row, and the
    row's maximum is the larger of the two after its last beat (only the last beat's own maximum for a one-beat row).

    Parameters
    ----------
    lanes : int
        Elements per beat.
    target : str
        FPGA family the pipeline depth is chosen for, one of ``TARGETS``.

    Members
    -------
    valid : In(1)
        A beat is presented on ``lanes_in``.
    lanes_in : In(ArrayLayout(signed(8), lanes))
        The beat.
    first : In(1)
        The beat opens a row.
    commit : In(1)
        The beat closes a well-framed row: its maximum is to be reported.
    max_valid : Out(1)
        One-cycle pulse, :attr:`latency` cycles after the committing beat.
    max : Out(signed(8))
        The row maximum, valid with ``max_valid``.
    """

    def __init__(self, lanes: int, target: str = "generic"):
        if lanes < 1:
            raise ValueError(f"lanes must be ≥ 1, not {lanes}")
        self.lanes = lanes
        self.target = check_target(target)
        super().__init__({
            "valid": In(1),
            "lanes_in": In(data.ArrayLayout(signed(8), lanes)),
            "first": In(1),
            "commit": In(1),
            "max_valid": Out(1),
            "max": Out(signed(8)),
        })

    @property
    def tree_stages(self) -> int:
        return tree_stages(self.lanes, self.target)

    @property
    def interleaved(self) -> bool:
        """Two running maxima, each updated over two cycles (every target but ``generic``)."""
        return self.target != "generic"

    @property
    def latency(self) -> int:
        """Cycles from the committing beat to ``max_valid``: the tree, then the running maximum (interleaved:
        compare, select, and the two stages of the combination)."""
        return self.tree_stages + (4 if self.interleaved else 1)

    def elaborate(self, platform):
        m = Module()
        lane_values = [self.lanes_in[k] for k in range(self.lanes)]
        beat_max, (valid, first, commit) = reduce_tree(
            m, lane_values, lambda a, b: Mux(_greater(a, b), a, b), signed(8),
            carry=(self.valid, self.first, self.commit), target=self.target)

        if not self.interleaved:
            running = Signal(signed(8))
            with m.If(valid & (first | _greater(beat_max, running))):
                m.d.sync += running.eq(beat_max)
            m.d.sync += self.max_valid.eq(valid & commit)
            m.d.comb += self.max.eq(running)
            return m

        maxima = [Signal(signed(8), name=f"running{k}") for k in range(2)]
        phase = Signal()
        after_first = Signal()
        with m.If(valid):
            m.d.sync += [phase.eq(~phase), after_first.eq(first & ~commit)]
        # Compare: the beat against both running maxima, each result beside the restart of a row.
        compared_valid, compared_phase, compared_commit, compared_single = (
            Signal(name=f"compared_{name}") for name in ("valid", "phase", "commit", "single"))
        compared = Signal(signed(8))
        replaces = [Signal(name=f"replaces{k}") for k in range(2)]
        m.d.sync += [
            compared_valid.eq(valid),
            compared_phase.eq(phase),
            compared_commit.eq(valid & commit),
            compared_single.eq(first & commit),
            compared.eq(beat_max),
            *(replace.eq(first | after_first | _greater(beat_max, running))
              for replace, running in zip(replaces, maxima, strict=True)),
        ]
        # Select: the running maximum of the beat's phase takes it.
        for k, running in enumerate(maxima):
            with m.If(compared_valid & (compared_phase == k) & replaces[k]):
                m.d.sync += running.eq(compared)
        # Combine, after the row's last beat: keep both maxima and which to take (the larger one; for a one-beat row
        # the last beat's own), then take it.
        selected_commit, selected_phase, selected_single = (
            Signal(name=f"selected_{name}") for name in ("commit", "phase", "single"))
        combined_commit = Signal()
        kept = [Signal(signed(8), name=f"kept{k}") for k in range(2)]
        takes_second = Signal()
        m.d.sync += [
            selected_commit.eq(compared_commit),
            selected_phase.eq(compared_phase),
            selected_single.eq(compared_single),
            combined_commit.eq(selected_commit),
            *(k.eq(running) for k, running in zip(kept, maxima, strict=True)),
            takes_second.eq(Mux(selected_single, selected_phase, _greater(maxima[1], maxima[0]))),
            self.max_valid.eq(combined_commit),
            self.max.eq(Mux(takes_second, kept[1], kept[0])),
        ]
        return m


def _greater(a: Value, b: Value) -> Value:
    """``a > b`` for int8 ``a`` and ``b``, as an unsigned compare of the offset-binary forms: Yosys then maps it to a
    single carry chain (a signed compare gets a second chain for the sign)."""
    return (a.as_unsigned() ^ 0x80) > (b.as_unsigned() ^ 0x80)
