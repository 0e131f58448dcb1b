"""Stream payloads shared by the units: a beat of signed lanes with an end-of-frame flag."""

from typing import Any

from amaranth import signed
from amaranth.lib import data


class LaneBeat(data.StructLayout):
    """Stream payload: ``lanes`` signed elements of ``bits`` (lane 0 in the low bits) and ``last`` (end of frame).

    Lane ``k`` occupies bits ``[bits·k + bits − 1 : bits·k]`` of the payload and ``last`` the bit above the lanes.
    """

    def __init__(self, lanes: int, bits: int = 8):
        if lanes < 1 or bits < 1:
            raise ValueError(f"lanes and bits must be ≥ 1, not lanes={lanes}, bits={bits}")
        self.lanes = lanes
        self.bits = bits
        super().__init__({"data": data.ArrayLayout(signed(bits), lanes), "last": 1})


class FrameStreams:
    """Mixin of a unit with one input stream ``i`` and one output stream ``o``, both ``config.lanes`` lanes wide and
    ``config.beats`` beats per frame: the emitter's ``elements_per_cycle`` and ``frame_beats``."""

    config: Any

    @property
    def elements_per_cycle(self) -> int:
        return self.config.lanes

    @property
    def frame_beats(self) -> dict[str, int]:
        """Beats per frame on each stream."""
        return {"i": self.config.beats, "o": self.config.beats}
