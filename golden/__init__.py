"""Bit-exact numpy models of int8attn's units; they define every output bit of the RTL."""

from .config import ConfigError, SoftmaxConfig
from .softmax import SoftmaxModel, softmax

__all__ = ["ConfigError", "SoftmaxConfig", "SoftmaxModel", "softmax"]
