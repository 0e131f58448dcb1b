"""AXI4-Stream top of any unit: ``aclk``, ``aresetn``, ``s_axis_*`` and ``m_axis_*`` around the unit's streams.

The wrapper adds no logic but the lane re-packing, so the unit's latency and throughput are unchanged. Naming: a unit
with one input stream takes it on ``s_axis_tvalid``, ``s_axis_tready``, ``s_axis_tdata`` and ``s_axis_tlast``, and one
output stream on ``m_axis_*``; with several input (output) streams, stream ``X`` is ``s_axis_X_*`` (``m_axis_X_*``).
Each lane of ``tdata`` is padded to whole bytes (:func:`tdata_lane_bits`): lane ``k`` occupies bits
``[W·k+W−1 : W·k]``; output lanes are sign-extended to ``W`` bits, of input lanes only the low bits that the unit
takes are read. Other ports of the unit (the softmax's sticky ``error``) keep their names.
"""

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from amaranth import ClockDomain, Module, Shape
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from int8attn.hdl.streams import LaneBeat

CLOCK = "aclk"
RESET = "aresetn"
SLAVE, MASTER = "s_axis", "m_axis"
SIGNALS = ("tvalid", "tready", "tdata", "tlast")


def tdata_lane_bits(bits: int) -> int:
    """Bits of a lane of ``bits`` in ``tdata``: the next multiple of 8 (int8 → 8, int12 → 16, int32 → 32)."""
    return -(-bits // 8) * 8


@dataclass(frozen=True)
class AxisStream:
    """One stream of the unit as an AXI4-Stream interface.

    Members
    -------
    name : str
        The unit's stream member (``i``, ``o``, ...): the key of the sidecar's ``streams``.
    prefix : str
        Port prefix: ``s_axis``/``m_axis``, or ``s_axis_<name>``/``m_axis_<name>`` when the unit has several streams
        of that direction.
    direction : str
        ``"input"`` or ``"output"``, seen from the unit.
    lanes, lane_bits : int
        Elements per beat and their width in the unit.
    signed : bool
        The elements are two's complement; else unsigned, zero-extended in ``tdata``.
    """

    name: str
    prefix: str
    direction: str
    lanes: int
    lane_bits: int
    signed: bool = True

    @property
    def tdata_lane_bits(self) -> int:
        return tdata_lane_bits(self.lane_bits)

    def port(self, signal: str) -> str:
        """Verilog port name of ``signal`` (one of :data:`SIGNALS`)."""
        return f"{self.prefix}_{signal}"

    def descriptions(self) -> dict[str, str]:
        """Port name → meaning, for the sidecar."""
        width = self.tdata_lane_bits
        kind = "signed int" if self.signed else "unsigned uint"
        lanes = f"lane k: bits [{width}k+{width - 1}:{width}k], {kind}{self.lane_bits}"
        if width != self.lane_bits:
            extension = "sign-extended" if self.signed else "zero-extended"
            lanes += (f" {extension} to {width} bits" if self.direction == "output"
                      else f" in the low {self.lane_bits} bits (the bits above are ignored)")
        beat, sink = ("input", "the unit") if self.direction == "input" else ("output", "the sink")
        return {
            self.port("tvalid"): f"{beat} beat valid (TVALID)",
            self.port("tready"): f"{sink} takes the beat when tvalid (TREADY)",
            self.port("tdata"): f"{lanes}; {self.lanes} lane(s) (TDATA)",
            self.port("tlast"): "final beat of the frame (TLAST)",
        }


def _renamed(text: str) -> str:
    """A description of the unit's ports with its clock and reset named as on the AXI4-Stream top."""
    return re.sub(r"\brst\b", RESET, re.sub(r"\bclk\b", CLOCK, text))


class AxisWrapper(wiring.Component):
    """The AXI4-Stream top of ``core``: its own ``sync`` domain on ``aclk`` with the synchronous reset ``~aresetn``,
    so the Verilog has no ``clk``/``rst`` ports, and one AXI4-Stream interface per stream of ``core``.

    Parameters
    ----------
    core : wiring.Component
        A unit's component (:mod:`int8attn.units` contract) with stream members of
        :class:`~int8attn.hdl.streams.LaneBeat` payloads.

    Members
    -------
    aclk : In(1)
        Clock, rising edge.
    aresetn : In(1)
        Synchronous reset, active low.
    <prefix>_tvalid, <prefix>_tready, <prefix>_tdata, <prefix>_tlast
        Each stream of :attr:`axis_streams`; ``tdata`` is an ``ArrayLayout`` of ``lanes``
        :func:`tdata_lane_bits`-wide lanes, signed as the core's.
    <port>
        Every other port of ``core``, same name, direction and shape.

    Attributes
    ----------
    core : wiring.Component
    axis_streams : dict of str to AxisStream
        By the core's stream name, in the core's order.
    """

    def __init__(self, core: wiring.Component):
        self.core = core
        streams = {name: member for name, member in core.signature.members.items()
                   if member.is_signature and isinstance(member.signature, stream.Signature)}
        per_flow = Counter(member.flow for member in streams.values())
        self.axis_streams: dict[str, AxisStream] = {}
        for name, member in streams.items():
            layout = member.signature.members["payload"].shape
            if not isinstance(layout, LaneBeat):
                raise TypeError(f"stream {name} carries {layout!r}; the AXI4-Stream top takes LaneBeat payloads only")
            direction, base = ("input", SLAVE) if member.flow == In else ("output", MASTER)
            prefix = base if per_flow[member.flow] == 1 else f"{base}_{name}"
            self.axis_streams[name] = AxisStream(name, prefix, direction, layout.lanes, layout.bits, layout.signed)
        ports: list[tuple[str, Any]] = [(CLOCK, In(1)), (RESET, In(1))]
        for spec in self.axis_streams.values():
            into, out_of = (In, Out) if spec.direction == "input" else (Out, In)
            lane = Shape(spec.tdata_lane_bits, spec.signed)
            ports += [(spec.port("tvalid"), into(1)), (spec.port("tready"), out_of(1)),
                      (spec.port("tdata"), into(data.ArrayLayout(lane, spec.lanes))),
                      (spec.port("tlast"), into(1))]
        for name, member in core.signature.members.items():
            if name in streams:
                continue
            if member.is_signature:
                raise TypeError(f"member {name} of {type(core).__name__} is an interface, not a stream or a port")
            ports.append((name, member))
        names = [name for name, _ in ports]
        clashes = sorted({name for name in names if names.count(name) > 1})
        if clashes:
            raise ValueError(f"ports of {type(core).__name__} clash with the AXI4-Stream names: {clashes}")
        super().__init__(dict(ports))

    @property
    def latency(self) -> int:
        return self.core.latency

    @property
    def latency_from(self) -> str:
        return self.core.latency_from

    @property
    def elements_per_cycle(self) -> int:
        return self.core.elements_per_cycle

    @property
    def frame_beats(self) -> dict[str, int]:
        """Beats per frame of each stream, by the core's stream name (the keys of :attr:`axis_streams`)."""
        return self.core.frame_beats

    @property
    def cycles_per_frame(self) -> int:
        return self.core.cycles_per_frame

    def port_descriptions(self) -> dict[str, str]:
        """The clock, the reset, each AXI4-Stream port, and the core's other ports as the core describes them."""
        descriptions = {CLOCK: "clock, rising edge (ACLK)",
                        RESET: f"synchronous reset, active low, sampled on the rising edge of {CLOCK} (ARESETn)"}
        for spec in self.axis_streams.values():
            descriptions |= spec.descriptions()
        core = self.core.port_descriptions()
        for name in self.core.signature.members:
            if name not in self.axis_streams:
                descriptions[name] = _renamed(core[name])
        return descriptions

    def describe(self) -> dict:
        return self.core.describe()

    def artefacts(self) -> dict[str, str]:
        return self.core.artefacts()

    def elaborate(self, platform):
        m = Module()
        sync = m.domains.sync = ClockDomain("sync")
        m.d.comb += [sync.clk.eq(self.aclk), sync.rst.eq(~self.aresetn)]
        m.submodules.core = core = self.core
        for name, spec in self.axis_streams.items():
            beat = getattr(core, name)
            valid, ready, tdata, last = (getattr(self, spec.port(signal)) for signal in SIGNALS)
            if spec.direction == "input":
                m.d.comb += [beat.valid.eq(valid), ready.eq(beat.ready), beat.payload.last.eq(last)]
                m.d.comb += [beat.payload.data[lane].eq(tdata[lane]) for lane in range(spec.lanes)]
            else:
                m.d.comb += [valid.eq(beat.valid), beat.ready.eq(ready), last.eq(beat.payload.last)]
                m.d.comb += [tdata[lane].eq(beat.payload.data[lane]) for lane in range(spec.lanes)]
        for name, member in self.core.signature.members.items():
            if name not in self.axis_streams:
                outer, inner = getattr(self, name), getattr(core, name)
                m.d.comb += inner.eq(outer) if member.flow == In else outer.eq(inner)
        return m
