"""Bit-exact numpy models of int8attn's units; they define every output bit of the RTL."""

from int8attn.golden.config import SoftmaxConfig
from int8attn.golden.params import ConfigError
from int8attn.golden.softmax import SoftmaxModel, softmax
from int8attn.golden.surrogates import Base2Model, HccsModel, PolyModel
from int8attn.golden.tinymind import TinyMindSoftmaxModel

__all__ = ["Base2Model", "ConfigError", "HccsModel", "PolyModel", "SoftmaxConfig", "SoftmaxModel",
           "TinyMindSoftmaxModel", "softmax"]
