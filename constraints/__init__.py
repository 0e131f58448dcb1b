"""Clock and pin constraints of the emitted units, shipped with the package (``int8attn.constraints``).

Every emitted module names its clock port ``clk``, so one file per FPGA family serves every unit:
``ecp5.lpf`` (nextpnr-ecp5 / Diamond), ``icebreaker.pcf`` (the iCE40 serial harness on an iCEBreaker),
``clock.xdc`` (Vivado) and ``clock.sdc`` (Quartus and other SDC tools).
"""

from importlib import resources
from pathlib import Path

FILES = ("ecp5.lpf", "icebreaker.pcf", "clock.xdc", "clock.sdc")


def constraint_file(name: str) -> Path:
    """The path of constraint file ``name``, from a source checkout or an installed wheel alike."""
    if name not in FILES:
        raise ValueError(f"constraint file {name!r} is unknown; allowed: {', '.join(FILES)}")
    path = resources.files(__name__) / name
    if not isinstance(path, Path) or not path.is_file():
        raise FileNotFoundError(f"constraint file {name} is missing from the int8attn package at {path}")
    return path
