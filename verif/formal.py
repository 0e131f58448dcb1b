"""Formal harness of the stream contract every unit promises, for SymbiYosys (``sby``) with the Yices SMT solver.

:class:`StreamHarness` wraps a unit's component (``component(config)`` of :mod:`int8attn.units`, or a
:class:`FaultyStream` around one) in a top whose only ports are ``clk`` and ``rst``: its input stream is driven by
``AnySeq`` values (``valid``, the lanes, ``last``), as is its output ``ready``, and ``rst`` is an unconstrained
input, so the solver picks every input sequence, resets at any cycle included. The harness counts what crosses the
streams and states the contract as assertions over those counts and the component's ports alone (black box: no
property looks inside the unit). A register's initial value is its reset value, so the first cycle of every trace
is the first cycle out of reset.

The properties come in groups, each converted and run on its own so that Yosys keeps only the logic each group
reads (:data:`GROUPS`):

``handshake``
    The valid/ready rules of both streams: the harness counts a beat only when ``valid & ready``; the output holds
    ``valid`` and its payload while ``ready`` is low; no output ``valid`` (nor ``error``) in the first cycle out of
    reset.
``framing``
    Output rows of exactly ``frame_beats`` beats with ``last`` on the final one; no row out that did not come in
    well framed (or, for a unit that takes a row as its count of beats, ``misframed_rows == "counted"``, that did not
    come in); the output progresses while complete rows are inside and the sink is ready. A unit with an
    ``error`` output raises it the cycle after a mis-framed beat is accepted, keeps it until reset and raises it for
    nothing else; a unit without one is promised well-framed input (an assumption).
``liveness``
    With the output always ready (an assumption) and well-framed input: each row's first output beat exactly
    ``latency`` cycles after its last input beat (``latency_from == "last"``; each beat's output ``latency`` cycles
    after it for ``"first"``), and, for ``"last"``, the beats of an output row back to back (a ``"first"`` unit's
    output rows have the gaps of their input rows).
``throughput``
    Under the same assumptions, input ``ready`` high on every cycle after ``startup`` cycles out of reset (full rate,
    ``elements_per_cycle`` elements a cycle), or, for a unit whose frame takes more cycles than it has input beats (a
    folded engine), never low for more than the difference running. A group of its own: in a unit with queues it is
    the costliest bounded check by far (the softmax's row-buffer occupancy).
``overflow``
    No internal value wraps: every accumulator, sum and shift result the unit keeps in fewer bits than its exact
    arithmetic needs (the :class:`~int8attn.hdl.wrapcheck.WrapCheck` s its components list when the harness asks,
    :mod:`int8attn.hdl.wrapcheck`) equals its exact value, computed wider, on the cycles it is used, for any input,
    stall and reset sequence. The one group that looks inside the unit, and that needs its arithmetic as it is (the
    multipliers are not cut).
``cover``
    Reachability: a row out, back-to-back output rows, a stalled output beat taken after its stall, the ``error``
    flag raised.

Each property is one :class:`Property`; :func:`properties` lists those of a group for a component, and the harness
records where in this file each assertion is made, so a solver's failure message (which names the source line) maps
back to a property name (:meth:`StreamHarness.property_at`).
"""

from dataclasses import dataclass
from typing import Any

from amaranth import Cat, Elaboratable, Module, Mux, ResetSignal, Shape, Signal, Value
from amaranth.asserts import AnySeq
from amaranth.back import rtlil
from amaranth.hdl import Assert, Assume, Cover, Fragment
from amaranth.lib import wiring

from int8attn.hdl.wrapcheck import WrapCheck

GROUPS = ("handshake", "framing", "liveness", "throughput", "overflow", "cover")
"""The property groups, in the order :func:`int8attn.formal.run_formal` runs them."""
FAULTS = ("ready_ignored", "payload_while_stalled", "valid_dropped")
"""The deliberate contract breaches of :class:`FaultyStream`."""
FRAMABLE_GROUPS = ("framing", "liveness", "throughput")
"""The groups that may be checked on well-framed input only (``framed_groups``)."""
DEFAULT_FRAMED_GROUPS = ("liveness", "throughput")
"""The groups checked on well-framed input by default: timing is a property of well-framed traffic. The framing group
sees any input by default; on well-framed input only it reaches much deeper (the attention's: to 92 cycles in 28 s and
110 in 486 s, against 60 in 181 s on any input), which is how its output rows under a stalling sink are checked."""
MISFRAMED_ROWS = ("dropped", "counted")
"""What a unit makes of a mis-framed input row (:attr:`Contract.misframed_rows`)."""


@dataclass(frozen=True)
class Property:
    """One property of the stream contract.

    Members
    -------
    name : str
        Identifier, unique in its group.
    kind : str
        ``"assert"``, ``"assume"`` (a promise about the unit's environment) or ``"cover"``.
    group : str
        One of :data:`GROUPS`.
    text : str
        What it states, in words.
    """

    name: str
    kind: str
    group: str
    text: str


@dataclass(frozen=True)
class Contract:
    """What the harness needs of a component: the unit protocol of :mod:`int8attn.units`.

    Members
    -------
    latency : int
        ``component.latency``.
    latency_from : str
        ``"first"`` or ``"last"``.
    beats_in, beats_out : int
        ``frame_beats`` of the ``i`` and ``o`` streams.
    elements_per_cycle : int
        Elements of the input stream a cycle at full rate.
    cycles_per_frame : int
        Cycles a frame takes at full rate.
    has_error : bool
        The component has a 1-bit ``error`` output (sticky framing error).
    misframed_rows : str
        What the unit makes of a mis-framed row: ``"dropped"`` (discarded up to and including its next ``last``) or
        ``"counted"`` (a row is every ``beats_in`` beats, wherever ``last`` falls); the component's
        ``misframed_rows``, ``"dropped"`` when it has none.
    """

    latency: int
    latency_from: str
    beats_in: int
    beats_out: int
    elements_per_cycle: int
    cycles_per_frame: int
    has_error: bool
    misframed_rows: str = "dropped"

    @classmethod
    def of(cls, dut: Any) -> "Contract":
        """The contract of ``dut``, a component with streams ``i`` and ``o`` of the unit protocol."""
        members = dut.signature.members
        for name in ("i", "o"):
            if name not in members:
                raise ValueError(f"{type(dut).__name__} has no stream {name!r}: the harness takes one input stream i "
                                 "and one output stream o")
        extra = sorted(name for name in members if name not in ("i", "o", "error"))
        if extra:
            raise ValueError(f"{type(dut).__name__} has members {', '.join(extra)} besides i, o and error; the "
                             "harness drives none of them")
        if dut.latency_from not in ("first", "last"):
            raise ValueError(f"latency_from must be 'first' or 'last', not {dut.latency_from!r}")
        misframed_rows = getattr(dut, "misframed_rows", "dropped")
        if misframed_rows not in MISFRAMED_ROWS:
            raise ValueError(f"misframed_rows must be one of {', '.join(MISFRAMED_ROWS)}, not {misframed_rows!r}")
        beats = dut.frame_beats
        error = members["error"] if "error" in members else None
        has_error = error is not None and error.flow == wiring.Out and Shape.cast(error.shape).width == 1
        return cls(latency=dut.latency, latency_from=dut.latency_from, beats_in=beats["i"], beats_out=beats["o"],
                   elements_per_cycle=dut.elements_per_cycle, cycles_per_frame=dut.cycles_per_frame,
                   has_error=has_error, misframed_rows=misframed_rows)

    @property
    def output_interval(self) -> int:
        """Cycles between the beats of an output row at full rate."""
        return max(self.cycles_per_frame // self.beats_out, 1)

    @property
    def idle_input_bound(self) -> int:
        """Consecutive cycles the input may go without ``ready`` at full rate: a frame's cycles beyond its beats (0 for
        a unit that takes a beat every cycle; a folded engine takes its row only in its first fold)."""
        return max(self.cycles_per_frame - self.beats_in, 0)

    @property
    def progress_bound(self) -> int:
        """Cycles the output may go without a beat while complete rows are inside and the sink is ready: the latency
        and an output row."""
        return self.latency + self.beats_out * self.output_interval


def properties(contract: Contract, group: str, *,
               framed_groups: tuple[str, ...] = DEFAULT_FRAMED_GROUPS) -> list[Property]:
    """The properties of ``group`` for a component of ``contract``, in the order the harness states them;
    ``framed_groups`` (of :data:`FRAMABLE_GROUPS`) assume well-framed input for a unit with an ``error`` output too
    (a unit without one always has them assumed)."""
    if group not in GROUPS:
        raise ValueError(f"group must be one of {', '.join(GROUPS)}, not {group!r}")
    framed = contract.has_error and group in framed_groups
    beats_in, beats_out = contract.beats_in, contract.beats_out
    listed: list[tuple[str, str, str]] = []
    if group == "handshake":
        listed += [
            ("beats_taken_only_when_ready", "assert",
             "the harness counts an input beat exactly on the cycles with valid & ready, and an output beat likewise: "
             "with ready low no beat is taken"),
            ("output_valid_held", "assert", "once o.valid is high it stays high until o.ready takes the beat"),
            ("output_payload_stable", "assert", "o.payload (lanes and last) does not change while a beat waits for "
                                                "o.ready"),
            ("output_idle_after_reset", "assert", "o.valid is low in the first cycle out of reset"),
        ]
        if contract.has_error:
            listed.append(("error_low_after_reset", "assert", "error is low in the first cycle out of reset"))
    if group in ("framing", "liveness", "throughput", "cover") and not contract.has_error:
        listed.append(("input_well_framed", "assume",
                       f"every input row is {beats_in} beats with last on the final one (the unit has no error "
                       "output: framing is its environment's promise)"))
    elif framed and group == "framing":
        listed.append(("input_well_framed", "assume",
                       f"every input row is {beats_in} beats with last on the final one (the output side under a "
                       "stalling sink, checked deeper; the framing group on any input checks the mis-framed rows and "
                       "error)"))
    elif framed:
        listed.append(("input_well_framed", "assume",
                       f"every input row is {beats_in} beats with last on the final one (timing is checked on "
                       "well-framed traffic; mis-framed rows are the framing group's)"))
    if group in ("liveness", "throughput"):
        listed.append(("output_always_ready", "assume", "the sink takes every beat: o.ready is high on every cycle"))
    if group == "framing":
        listed += [
            ("output_framing", "assert",
             f"every output row is exactly {beats_out} beats, last set on its final beat and on no other"),
            ("rows_out_within_rows_in", "assert",
             "no output row ends unless more well-framed rows went in than came out"
             if contract.misframed_rows == "dropped" else
             f"no output row ends unless more rows went in than came out, a row being every {beats_in} input beats "
             "(the unit takes a mis-framed row by its count of beats, and raises error)"),
            ("output_progress", "assert",
             f"while well-framed rows are inside (beats, for latency_from=first) and o.ready is high, an output beat "
             f"comes at least every {contract.progress_bound} cycles (latency + an output row)"),
        ]
        if contract.has_error and not framed:
            listed += [
                ("error_on_misframe", "assert",
                 f"error is high the cycle after a mis-framed beat is accepted (last before beat {beats_in - 1}, or "
                 f"beat {beats_in - 1} without last)"),
                ("error_sticky", "assert", "once high, error stays high until reset"),
                ("error_only_on_misframe", "assert", "error is high only after a mis-framed beat since reset"),
            ]
    if group == "liveness":
        anchor = "its last input beat" if contract.latency_from == "last" else "its input beat"
        listed += [
            ("latency_exact", "assert",
             f"each well-framed row's first output beat is valid exactly {contract.latency} cycles after {anchor} "
             "was accepted, and no output beat starts a row at any other time" if contract.latency_from == "last"
             else f"each output beat is valid exactly {contract.latency} cycles after {anchor} was accepted, and "
                  "o.valid is never high otherwise"),
        ]
        if contract.latency_from == "last" and contract.output_interval == 1:
            listed.append(("output_gap_free", "assert", "the beats of an output row come on consecutive cycles"))
    if group == "throughput":
        idle = contract.idle_input_bound
        listed.append(("input_ready_after_startup", "assert",
                       ("i.ready is high on every cycle from the startup bound on, out of reset "
                        if idle == 0 else
                        f"from the startup bound on, out of reset, i.ready is never low more than {idle} cycles "
                        f"running (a row of {beats_in} beats every {contract.cycles_per_frame} cycles: ")
                       + f"{contract.elements_per_cycle:g} elements a cycle)"))
    if group == "overflow":
        listed.append(("no_wrap", "assert",
                       "every narrow accumulator, sum, product and shift result the unit lists equals its exact value "
                       "(the widened bits are redundant) on each cycle it is used"))
    if group == "cover":
        listed += [
            ("row_out", "cover", "an output row completes"),
            ("back_to_back_rows", "cover", "an output row starts on the cycle after the previous one ended"),
            ("stalled_output", "cover", "an output beat waits for o.ready at least one cycle, then is taken"),
        ]
        if contract.has_error:
            listed.append(("error_raised", "cover", "error goes high"))
    return [Property(name, kind, group, text) for name, kind, text in listed]


def _counter_width(limit: int) -> int:
    return max(limit, 1).bit_length() + 1


class _Harness(Elaboratable):
    """What every formal top has: the component, its group's properties, where each is stated (so that a solver's
    message maps back to a name) and, in the ``overflow`` group, the component's :class:`WrapCheck` s."""

    def __init__(self, dut: Any, group: str, listed: list[Property]):
        self.dut = dut
        self.group = group
        self.properties = listed
        self.wrap_checks: list[WrapCheck] = []
        self._locations: dict[tuple[str, int], str] = {}

    def property_at(self, filename: str, line: int) -> str | None:
        """The property whose statement is at ``filename:line`` (known once the harness is elaborated)."""
        for (path, at), name in self._locations.items():
            if at == line and (path == filename or path.endswith("/" + filename.split("/")[-1])):
                return name
        return None

    @property
    def locations(self) -> dict[str, str]:
        """``file:line`` of each stated property, by name (known once the harness is elaborated)."""
        return {name: f"{path}:{line}" for (path, line), name in self._locations.items()}

    def _state(self, m: Module, name: str, kind: str, test: Value) -> None:
        known = {item.name: item for item in self.properties}
        if name not in known or known[name].kind != kind:
            raise ValueError(f"{kind} {name!r} is not in the {self.group} properties")
        statement = {"assert": Assert, "assume": Assume, "cover": Cover}[kind](test, name, src_loc_at=1)
        self._locations[statement.src_loc] = name
        m.d.comb += statement

    def _add_dut(self, m: Module, platform: Any) -> None:
        """The component as ``m``'s submodule ``dut``; in the ``overflow`` group elaborated here, after asking it for
        its :class:`WrapCheck` s."""
        if self.group == "overflow":
            self.wrap_checks = self.dut.wrap_checks = []
            m.submodules.dut = Fragment.get(self.dut, platform)
        else:
            m.submodules.dut = self.dut

    def _assert_no_wrap(self, m: Module) -> None:
        self._state(m, "no_wrap", "assert", Cat(check.holds() for check in self.wrap_checks).all())


class StreamHarness(_Harness):
    """The formal top of one property group around a unit's component.

    Parameters
    ----------
    dut : wiring.Component
        The component: streams ``i`` and ``o`` of :class:`~int8attn.hdl.streams.LaneBeat` payloads, optional 1-bit
        ``error``, and ``latency``, ``latency_from``, ``frame_beats``, ``elements_per_cycle``, ``cycles_per_frame``.
    group : str
        One of :data:`GROUPS`.
    depth : int
        Cycles the solver explores: sizes the harness counters so that none saturates within them.
    startup : int
        Cycles out of reset after which ``liveness`` expects ``i.ready`` high on every cycle.
    free_reset : bool
        ``rst`` is an unconstrained input (reset at any cycle); otherwise it is assumed low (reset only at the
        start, through the registers' initial values).
    framed_groups : tuple of str
        The groups (of :data:`FRAMABLE_GROUPS`) that assume well-framed input even when the unit has an ``error``
        output (the bounded checks of a long pipeline are several times faster); :data:`DEFAULT_FRAMED_GROUPS` by
        default.

    Members
    -------
    contract : Contract
    properties : list of Property
        Those of ``group``.
    wrap_checks : list of WrapCheck
        In the ``overflow`` group, the values the unit listed (known once the harness is elaborated).
    """

    def __init__(self, dut: Any, group: str, *, depth: int = 64, startup: int = 0, free_reset: bool = True,
                 framed_groups: tuple[str, ...] = DEFAULT_FRAMED_GROUPS):
        self.contract = Contract.of(dut)
        super().__init__(dut, group, properties(self.contract, group, framed_groups=framed_groups))
        self.depth = depth
        self.startup = startup
        self.free_reset = free_reset

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        dut = self.dut
        self._add_dut(m, platform)
        contract, group = self.contract, self.group
        beats_in, beats_out = contract.beats_in, contract.beats_out
        rst = ResetSignal()
        if not self.free_reset:
            m.d.comb += Assume(~rst)

        # The environment: every input the solver picks, cycle by cycle.
        m.d.comb += [
            dut.i.valid.eq(AnySeq(1)),
            dut.i.payload.eq(AnySeq(len(Value.cast(dut.i.payload)))),
        ]
        if group in ("liveness", "throughput"):
            m.d.comb += dut.o.ready.eq(1)
            self._state(m, "output_always_ready", "assume", dut.o.ready)
        else:
            m.d.comb += dut.o.ready.eq(AnySeq(1))
        accepted = Signal(name="accepted")
        delivered = Signal(name="delivered")
        m.d.comb += [accepted.eq(dut.i.valid & dut.i.ready), delivered.eq(dut.o.valid & dut.o.ready)]
        # ``fresh``: the first cycle out of reset (the initial state is the reset state).
        fresh = Signal(init=1, reset_less=True, name="fresh")
        m.d.sync += fresh.eq(rst)

        if group == "handshake":
            self._handshake(m, dut, rst, fresh, accepted, delivered)
            return m
        if group == "overflow":
            self._assert_no_wrap(m)
            return m

        # Input framing as the unit sees it: beats since the last ``last`` (``beats_in`` once a row overran, which a
        # unit that drops mis-framed rows discards up to and including its next ``last``), or the beat's place in
        # its row for a unit that counts rows by their beats.
        in_run = Signal(range(beats_in + 1), name="in_run")
        at_row_end = in_run == beats_in - 1
        offered_misframed = dut.i.valid & (in_run < beats_in) & (dut.i.payload.last != at_row_end)
        misframed = Signal(name="misframed")
        row_in = Signal(name="row_in")
        m.d.comb += misframed.eq(accepted & offered_misframed)
        if contract.misframed_rows == "dropped":
            m.d.comb += row_in.eq(accepted & dut.i.payload.last & at_row_end)
            with m.If(accepted):
                m.d.sync += in_run.eq(Mux(dut.i.payload.last, 0, Mux(in_run == beats_in, beats_in, in_run + 1)))
        else:
            m.d.comb += row_in.eq(accepted & at_row_end)
            with m.If(accepted):
                m.d.sync += in_run.eq(Mux(at_row_end, 0, in_run + 1))
        if "input_well_framed" in {item.name for item in self.properties}:
            self._state(m, "input_well_framed", "assume", ~offered_misframed)

        out_beat = Signal(range(max(beats_out, 2)), name="out_beat")
        row_out = Signal(name="row_out")
        m.d.comb += row_out.eq(delivered & dut.o.payload.last)
        with m.If(delivered):
            m.d.sync += out_beat.eq(Mux(out_beat == beats_out - 1, 0, out_beat + 1))

        width = _counter_width(self.depth)
        limit = (1 << width) - 1
        pending_rows = Signal(width, name="pending_rows")
        m.d.sync += pending_rows.eq(Mux(pending_rows == limit, limit, pending_rows + row_in - row_out))

        if group == "framing":
            self._framing(m, dut, rst, accepted, delivered, misframed, row_in, row_out, out_beat, pending_rows, width)
        elif group == "liveness":
            self._liveness(m, dut, accepted, row_in, out_beat)
        elif group == "throughput":
            self._throughput(m, dut)
        else:
            self._cover(m, dut, delivered, row_out, out_beat)
        return m

    def _handshake(self, m: Module, dut: Any, rst: Value, fresh: Value, accepted: Value, delivered: Value) -> None:
        contract = self.contract
        width = _counter_width(self.depth)
        beats_in = Signal(width, name="beats_in")
        beats_out = Signal(width, name="beats_out")
        counted_in = Signal(width, reset_less=True, name="counted_in")
        counted_out = Signal(width, reset_less=True, name="counted_out")
        took_in = Signal(reset_less=True, name="took_in")
        took_out = Signal(reset_less=True, name="took_out")
        m.d.sync += [beats_in.eq(beats_in + accepted), beats_out.eq(beats_out + delivered),
                     counted_in.eq(beats_in), counted_out.eq(beats_out),
                     took_in.eq(dut.i.valid & dut.i.ready), took_out.eq(dut.o.valid & dut.o.ready)]
        # Each count against its value a cycle back and that cycle's valid & ready (not across a reset).
        self._state(m, "beats_taken_only_when_ready", "assert",
                    fresh | ((beats_in == (counted_in + took_in)[:width])
                             & (beats_out == (counted_out + took_out)[:width])))

        stalled = Signal(reset_less=True, name="stalled")
        held_payload = Signal.like(Value.cast(dut.o.payload), reset_less=True, name="held_payload")
        m.d.sync += [stalled.eq(dut.o.valid & ~dut.o.ready & ~rst), held_payload.eq(dut.o.payload)]
        self._state(m, "output_valid_held", "assert", ~stalled | dut.o.valid)
        self._state(m, "output_payload_stable", "assert", ~stalled | (Value.cast(dut.o.payload) == held_payload))
        self._state(m, "output_idle_after_reset", "assert", ~fresh | ~dut.o.valid)
        if contract.has_error:
            self._state(m, "error_low_after_reset", "assert", ~fresh | ~dut.error)

    def _framing(self, m: Module, dut: Any, rst: Value, accepted: Value, delivered: Value, misframed: Value,
                 row_in: Value, row_out: Value, out_beat: Value, pending_rows: Value, width: int) -> None:
        contract = self.contract
        self._state(m, "output_framing", "assert",
                    ~dut.o.valid | (dut.o.payload.last == (out_beat == contract.beats_out - 1)))
        self._state(m, "rows_out_within_rows_in", "assert", ~row_out | (pending_rows != 0))

        # Progress: cycles without an output beat while something complete is inside and the sink is ready.
        if contract.latency_from == "first":
            limit = (1 << width) - 1
            pending = Signal(width, name="pending_beats")
            m.d.sync += pending.eq(Mux(pending == limit, limit, pending + accepted - delivered))
        else:
            pending = pending_rows
        bound = contract.progress_bound
        waited = Signal(range(bound + 2), name="waited")
        with m.If((pending == 0) | ~dut.o.ready | delivered):
            m.d.sync += waited.eq(0)
        with m.Elif(waited <= bound):
            m.d.sync += waited.eq(waited + 1)
        self._state(m, "output_progress", "assert", waited <= bound)

        if "error_sticky" in {item.name for item in self.properties}:
            after_misframe = Signal(reset_less=True, name="after_misframe")
            had_error = Signal(reset_less=True, name="had_error")
            seen_misframe = Signal(name="seen_misframe")
            m.d.sync += [after_misframe.eq(misframed & ~rst), had_error.eq(dut.error & ~rst)]
            with m.If(misframed):
                m.d.sync += seen_misframe.eq(1)
            self._state(m, "error_on_misframe", "assert", ~after_misframe | dut.error)
            self._state(m, "error_sticky", "assert", ~had_error | dut.error)
            self._state(m, "error_only_on_misframe", "assert", ~dut.error | seen_misframe)

    def _liveness(self, m: Module, dut: Any, accepted: Value, row_in: Value, out_beat: Value) -> None:
        contract = self.contract
        latency = contract.latency
        if contract.latency_from == "last":
            due = _delayed(m, row_in, latency, "row_due")
            self._state(m, "latency_exact", "assert", (dut.o.valid & (out_beat == 0)) == due)
        else:
            due = _delayed(m, accepted, latency, "beat_due")
            self._state(m, "latency_exact", "assert", dut.o.valid == due)
        if contract.latency_from == "last" and contract.output_interval == 1:
            self._state(m, "output_gap_free", "assert", (out_beat == 0) | dut.o.valid)

    def _throughput(self, m: Module, dut: Any) -> None:
        since_reset = Signal(range(self.startup + 1), name="since_reset")
        with m.If(since_reset < self.startup):
            m.d.sync += since_reset.eq(since_reset + 1)
        idle = self.contract.idle_input_bound
        if idle == 0:
            self._state(m, "input_ready_after_startup", "assert", (since_reset < self.startup) | dut.i.ready)
            return
        not_ready = Signal(range(idle + 2), name="not_ready")
        with m.If(dut.i.ready | (since_reset < self.startup)):
            m.d.sync += not_ready.eq(0)
        with m.Elif(not_ready <= idle):
            m.d.sync += not_ready.eq(not_ready + 1)
        self._state(m, "input_ready_after_startup", "assert",
                    (since_reset < self.startup) | dut.i.ready | (not_ready < idle))

    def _cover(self, m: Module, dut: Any, delivered: Value, row_out: Value, out_beat: Value) -> None:
        ended = Signal(name="row_ended")
        waited = Signal(name="beat_waited")
        m.d.sync += [ended.eq(row_out), waited.eq(dut.o.valid & ~dut.o.ready)]
        self._state(m, "row_out", "cover", row_out)
        self._state(m, "back_to_back_rows", "cover", ended & dut.o.valid & (out_beat == 0))
        self._state(m, "stalled_output", "cover", waited & delivered)
        if self.contract.has_error:
            self._state(m, "error_raised", "cover", dut.error)


def _delayed(m: Module, value: Value, cycles: int, name: str) -> Value:
    """``value`` through ``cycles`` registers (reset with the domain)."""
    for stage in range(cycles):
        register = Signal(name=f"{name}_{stage + 1}")
        m.d.sync += register.eq(value)
        value = register
    return value


class FaultyStream(wiring.Component):
    """A unit's component with one deliberate breach of the stream contract, which :class:`StreamHarness` must catch.

    ``fault``:

    * ``ready_ignored``: ``i.ready`` is always high; a beat offered while the unit is not ready is taken and lost.
    * ``payload_while_stalled``: the output payload's bit 0 flips from the second cycle a beat waits for ``o.ready``.
    * ``valid_dropped``: ``o.valid`` drops on the second cycle a beat waits for ``o.ready`` (the unit still holds it).

    Every other member, and ``latency``, ``latency_from``, ``frame_beats``, ``elements_per_cycle``,
    ``cycles_per_frame`` and ``misframed_rows``, are the unit's.
    """

    def __init__(self, dut: Any, fault: str):
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {', '.join(FAULTS)}, not {fault!r}")
        self.dut = dut
        self.fault = fault
        super().__init__(dut.signature)

    @property
    def latency(self) -> int:
        return self.dut.latency

    @property
    def latency_from(self) -> str:
        return self.dut.latency_from

    @property
    def frame_beats(self) -> dict[str, int]:
        return self.dut.frame_beats

    @property
    def elements_per_cycle(self) -> int:
        return self.dut.elements_per_cycle

    @property
    def cycles_per_frame(self) -> int:
        return self.dut.cycles_per_frame

    @property
    def misframed_rows(self) -> str:
        return getattr(self.dut, "misframed_rows", "dropped")

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        m.submodules.unit = dut = self.dut
        stalled = Signal(name="stalled")
        m.d.sync += stalled.eq(dut.o.valid & ~dut.o.ready)
        payload = Value.cast(dut.o.payload)
        m.d.comb += [
            dut.i.valid.eq(self.i.valid),
            dut.i.payload.eq(self.i.payload),
            self.i.ready.eq(1 if self.fault == "ready_ignored" else dut.i.ready),
            self.o.valid.eq(dut.o.valid & ~stalled if self.fault == "valid_dropped" else dut.o.valid),
            self.o.payload.eq(payload ^ stalled if self.fault == "payload_while_stalled" else payload),
            dut.o.ready.eq(self.o.ready),
        ]
        if "error" in self.signature.members:
            m.d.comb += self.error.eq(dut.error)
        return m


class StageHarness(_Harness):
    """The ``overflow`` group of one stage of a composite unit, on its own (an attention's projections, matmul engines
    and softmaxes): every input port of the stage (its input streams' valid and payload, its output streams' ready,
    any other input) a free value on every cycle, reset at any cycle, and the :class:`WrapCheck` s it lists asserted.

    A stage's checks read its own values only, so a stage that wraps for no input wraps for none inside the unit
    either, whatever the stages before it send: the unit's ``overflow`` is the conjunction of its stages' runs, each
    as deep as that stage needs instead of the whole pipeline's latency.

    Parameters
    ----------
    stage : wiring.Component
        A :class:`~int8attn.hdl.wrapcheck.WrapChecked` component, not elaborated anywhere else.
    name : str
        The stage's name in its unit.

    Members
    -------
    group : str
        ``"overflow"``.
    properties : list of Property
        The group's one property, ``no_wrap``.
    wrap_checks : list of WrapCheck
        The values the stage listed (known once the harness is elaborated).
    """

    def __init__(self, stage: Any, name: str):
        super().__init__(stage, "overflow", [Property(
            "no_wrap", "assert", "overflow", "every narrow value a stage lists equals its exact value on each cycle it "
            "is used, for any values on the stage's inputs (each stage checked on its own)")])
        self.name = name

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        self._add_dut(m, platform)
        stage = self.dut
        for _path, member, value in stage.signature.flatten(stage):
            if member.flow == wiring.In:
                m.d.comb += value.eq(AnySeq(len(Value.cast(value))))
        self._assert_no_wrap(m)
        return m


def harness_rtlil(harness: StreamHarness | StageHarness) -> str:
    """The RTLIL of ``harness`` for Yosys (top module ``top``; ports ``clk`` and ``rst``)."""
    return rtlil.convert(harness, name="top", ports=[], platform="formal", emit_src=True)
