"""Row maximum of a stream of int8 beats."""

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from int8attn.hdl.tree import reduce_tree, tree_stages


class MaxReduce(wiring.Component):
    """Running maximum over the beats of a row, lanes reduced by a registered compare tree.

    Two compare levels share a register stage; the running maximum adds one more.

    Parameters
    ----------
    lanes : int
        Elements per beat.

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

    def __init__(self, lanes: int):
        if lanes < 1:
            raise ValueError(f"lanes must be ≥ 1, not {lanes}")
        self.lanes = lanes
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
        return tree_stages(self.lanes)

    @property
    def latency(self) -> int:
        """Cycles from the committing beat to ``max_valid``."""
        return self.tree_stages + 1

    def elaborate(self, platform):
        m = Module()
        lane_values = [self.lanes_in[k] for k in range(self.lanes)]
        beat_max, (valid, first, commit) = reduce_tree(
            m, lane_values, lambda a, b: Mux(a > b, a, b), signed(8),
            carry=(self.valid, self.first, self.commit))

        running = Signal(signed(8))
        running_next = Mux(first, beat_max, Mux(running > beat_max, running, beat_max))
        with m.If(valid):
            m.d.sync += running.eq(running_next)
        m.d.sync += [
            self.max_valid.eq(valid & commit),
            self.max.eq(running_next),
        ]
        return m
