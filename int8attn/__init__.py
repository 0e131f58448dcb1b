"""int8attn: integer transformer numerics as verified Verilog."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("int8attn")
except PackageNotFoundError:
    __version__ = "0+unknown"
