"""The unit registry: one :class:`Unit` record per unit, the one place that names its files.

Every generic layer (the command line, the Verilog emitter, the simulation runner, synthesis, sweeps) works from
these records, so a unit is its own files plus one entry in :data:`UNITS`. Models, components and testbenches are
named by import path and imported only when used, so ``int8attn golden`` never imports Amaranth.

A unit's pieces follow one contract:

* config: a frozen dataclass of :func:`int8attn.golden.params.param` fields with ``as_dict()``; the command line,
  the sidecar's ``parameters`` and the build-folder hashes come from it.
* model: ``model(config)`` is a callable from input frames (``rows × frame``, ``input_dtype``) to output frames, with
  ``check_rows``, ``input_dtype``, ``output_dtype`` and ``output_description`` (the output's quantisation, in words).
* component: ``component(config)`` is an Amaranth ``wiring.Component`` with stream members of
  :class:`~int8attn.hdl.streams.LaneBeat` payloads, read-only ``latency`` and ``latency_from`` (``"first"`` or
  ``"last"``: the input beat of a frame that ``latency`` counts from), ``elements_per_cycle``, ``frame_beats``
  (beats per frame of each stream member), ``cycles_per_frame`` (cycles a frame takes at full rate; an output
  stream's beats are evenly spaced over them), ``port_descriptions()`` (Verilog port name → meaning), ``describe()``
  (unit-specific sidecar sections) and ``artefacts()`` (file name → text written beside the Verilog).
* testbench: a cocotb module whose tests are listed in ``tests``; the runner runs them by name.
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from int8attn.golden.params import ConfigError


def _load(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Unit:
    """One registered unit.

    Members
    -------
    name : str
        Command-line name, Verilog top module and file stem.
    summary : str
        One line for ``--help``.
    config : str
        ``module:Class`` of the configuration dataclass.
    model : str
        ``module:Class`` of the golden model.
    component : str
        ``module:Class`` of the Amaranth top.
    testbench : str
        Module of the cocotb tests.
    tests : tuple of str
        Tests of the testbench, the first being the one ``int8attn sim`` runs.
    frame : str
        Name of the configuration field (or property) that holds the elements of one input frame (row) of the first
        input stream.
    accuracy : str or None
        Module behind ``int8attn accuracy`` (see :attr:`accuracy_module`); ``None`` when the unit has none.
    calibrate : str or None
        Module behind ``int8attn calibrate`` (see :attr:`calibration_module`); ``None`` when the unit has none.
    operands : tuple of str
        Input arrays of ``int8attn golden`` (``--<name> FILE`` each) when the unit takes several instead of rows
        (``--in``): the configuration's ``from_operands(*arrays, **parameters)`` sets the fields of its
        ``OPERAND_SHAPE`` from their shapes, and the model's ``instances(*arrays)`` computes.
    folder : tuple of (str, str)
        The default output folder's name after the unit's: ``(prefix, field)`` pairs joined by ``_``; empty for
        ``<frame><value>_p<lanes>``.

    """

    name: str
    summary: str
    config: str
    model: str
    component: str
    testbench: str
    tests: tuple[str, ...]
    frame: str
    accuracy: str | None = None
    calibrate: str | None = None
    operands: tuple[str, ...] = ()
    folder: tuple[tuple[str, str], ...] = ()

    @property
    def config_type(self) -> type:
        return _load(self.config)

    def make_config(self, parameters: dict[str, Any]) -> Any:
        """The configuration from a parameter mapping (a sidecar's ``parameters``, a sweep point)."""
        names = {item.name for item in fields(self.config_type)}
        unknown = sorted(set(parameters) - names)
        if unknown:
            raise ConfigError(f"unknown parameter(s) {', '.join(unknown)} of unit {self.name}; "
                              f"allowed: {', '.join(sorted(names))}")
        return self.config_type(**parameters)

    def make_model(self, config: Any) -> Callable:
        return _load(self.model)(config)

    def make_component(self, config: Any) -> Any:
        return _load(self.component)(config)

    @property
    def targets(self) -> tuple[str, ...]:
        """The ``target`` values the unit implements (its config's ``IMPLEMENTED_TARGETS``); ``int8attn synth
        --family F`` picks target ``F`` when it is one."""
        return self.config_type.IMPLEMENTED_TARGETS

    def frame_elements(self, config: Any) -> int:
        return getattr(config, self.frame)

    @property
    def _folder_fields(self) -> tuple[tuple[str, str], ...]:
        return self.folder or ((self.frame, self.frame), ("p", "lanes"))

    @property
    def folder_pattern(self) -> str:
        """The default output folder's name, with the parameters it depends on in braces."""
        shape = "_".join(f"{prefix}{{{name}}}" for prefix, name in self._folder_fields)
        return f"{self.name}_{shape}[_{{target}}][_{{interface}}]"

    def folder_name(self, config: Any) -> str:
        suffix = "".join(f"_{value}" for value, default in ((config.target, "generic"), (config.interface, "stream"))
                         if value != default)
        shape = "_".join(f"{prefix}{getattr(config, name)}" for prefix, name in self._folder_fields)
        return f"{self.name}_{shape}{suffix}"

    @property
    def accuracy_module(self) -> Any:
        """The module behind ``int8attn accuracy``: ``add_arguments(parser)`` and ``command(config, args)``."""
        if self.accuracy is None:
            raise ValueError(f"unit {self.name} has no accuracy report")
        return importlib.import_module(self.accuracy)

    @property
    def calibration_module(self) -> Any:
        """The module behind ``int8attn calibrate``: ``SUMMARY``, ``add_arguments(parser)`` and ``command(args)``, and
        for every command that takes the unit's parameters ``add_parameter_file_options(parser)``, options that read
        calibrated parameters from a file, and ``parameters_from_files(args)``, the fields they set."""
        if self.calibrate is None:
            raise ValueError(f"unit {self.name} has no calibration")
        return importlib.import_module(self.calibrate)


UNITS: dict[str, Unit] = {unit.name: unit for unit in (
    Unit(name="softmax", summary="int8 softmax (TFLite, TinyMind, LUT knobs; surrogates HCCS, base-2, poly)",
         config="int8attn.golden.config:SoftmaxConfig", model="int8attn.golden.softmax:SoftmaxModel",
         component="int8attn.hdl.softmax:Softmax", testbench="int8attn.verif.tb_softmax",
         tests=("check", "cycle", "framing"), frame="n", accuracy="int8attn.accuracy",
         calibrate="int8attn.calibrate"),
    Unit(name="requant", summary="int32 accumulators to int8/int16 (TFLite MultiplyByQuantizedMultiplier)",
         config="int8attn.golden.requant:RequantConfig", model="int8attn.golden.requant:RequantModel",
         component="int8attn.hdl.requant:Requantizer", testbench="int8attn.verif.tb_requant",
         tests=("check", "cycle"), frame="channels"),
    Unit(name="dense", summary="int8 fully connected layer, pe x simd folded (TFLite FULLY_CONNECTED, TinyMind QDense)",
         config="int8attn.golden.dense:DenseConfig", model="int8attn.golden.dense:DenseModel",
         component="int8attn.hdl.dense:Dense", testbench="int8attn.verif.tb_dense", tests=("check", "cycle"),
         frame="in_features", folder=(("in", "in_features"), ("out", "out_features"), ("pe", "pe"), ("simd", "simd"))),
    Unit(name="matmul", summary="int8 [M, K] x [K, N] per frame (TFLite BATCH_MATMUL), pe x simd folded",
         config="int8attn.golden.matmul:MatmulConfig", model="int8attn.golden.matmul:MatmulModel",
         component="int8attn.hdl.matmul:Matmul", testbench="int8attn.verif.tb_matmul", tests=("check", "cycle"),
         frame="frame_elements", operands=("lhs", "rhs"),
         folder=(("m", "m"), ("k", "k"), ("n", "n"), ("pe", "pe"), ("simd", "simd"))),
    Unit(name="attention", summary="int8 multi-head self-attention (TFLite graph, TinyMind QAttentionSoftmax1D)",
         config="int8attn.golden.attention_unit:AttentionConfig", model="int8attn.golden.attention_unit:AttentionModel",
         component="int8attn.hdl.attention:Attention", testbench="int8attn.verif.tb_attention",
         tests=("check", "cycle"), frame="frame_elements",
         folder=(("s", "seq_len"), ("e", "embed_dim"), ("h", "heads"), ("d", "head_dim"))),
    Unit(name="add", summary="int8 + int8 elementwise, two joined streams (TFLite ADD, TinyMind QAdd)",
         config="int8attn.golden.add_unit:AddConfig", model="int8attn.golden.add_unit:AddModel",
         component="int8attn.hdl.add:Add", testbench="int8attn.verif.tb_add", tests=("check", "cycle"),
         frame="elements", operands=("a", "b"), folder=(("e", "elements"), ("p", "lanes"))),
    Unit(name="embedding", summary="token ids to int8 table rows, optional positional encoding (TinyMind QEmbedding)",
         config="int8attn.golden.embedding_unit:EmbeddingConfig",
         model="int8attn.golden.embedding_unit:EmbeddingModel", component="int8attn.hdl.embedding:Embedding",
         testbench="int8attn.verif.tb_embedding", tests=("check", "cycle"), frame="seq_len",
         folder=(("s", "seq_len"), ("v", "vocab"), ("e", "embed_dim"), ("p", "lanes"))),
    Unit(name="layernorm", summary="int8 LayerNorm over rows of N features (TinyMind QLayerNorm1D)",
         config="int8attn.golden.layernorm_unit:LayerNormConfig", model="int8attn.golden.layernorm_unit:LayerNormModel",
         component="int8attn.hdl.layernorm:LayerNorm", testbench="int8attn.verif.tb_layernorm",
         tests=("check", "cycle"), frame="features", folder=(("n", "features"), ("p", "lanes"))),
    Unit(name="stack", summary="TinyMind's int8 encoder stack: token ids to the last block's features",
         config="int8attn.golden.stack_unit:StackConfig", model="int8attn.golden.stack_unit:StackModel",
         component="int8attn.hdl.stack:EncoderStack", testbench="int8attn.verif.tb_stack", tests=("check", "cycle"),
         frame="seq_len", accuracy="int8attn.stack_accuracy",
         folder=(("s", "seq_len"), ("e", "embed_dim"), ("b", "num_blocks"), ("p", "lanes"))),
)}


def unit_named(name: str) -> Unit:
    """The registered unit ``name``; :class:`ConfigError` naming the registered ones otherwise."""
    try:
        return UNITS[name]
    except KeyError:
        raise ConfigError(f"unit {name!r} is unknown; allowed: {', '.join(UNITS)}") from None


def unit_of(config: Any) -> Unit:
    """The unit whose configuration class ``config`` is an instance of."""
    for unit in UNITS.values():
        if type(config).__module__ + ":" + type(config).__qualname__ == unit.config:
            return unit
    raise ValueError(f"{type(config).__qualname__} is not the configuration of a registered unit")
