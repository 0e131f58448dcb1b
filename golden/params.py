"""Unit parameters declared once: range, help text and checks, shared by the model, the generator, the CLI and tests.

A unit's configuration is a frozen dataclass whose fields are made with :func:`param`. The field's metadata (a
:class:`Param`) says what values are legal and what the parameter means; :func:`check_params` enforces it in the
dataclass's ``__post_init__``, and the command line builds one option per field from it.

Kinds of value
--------------
``int``
    An integer in ``low..high``; with ``optional`` also ``None`` (the default's meaning is in the help text).
``float``
    A finite number > 0, taken as float32 as TFLite stores scales.
``choice``
    One of ``choices``.
``ints``, ``floats``
    A non-empty tuple of such values, at most ``max_items`` long; written on the command line comma-separated.
``path``
    A file's path (``str``); the configuration reads and checks the file itself.
``flag``
    ``True`` or ``False``; on the command line an option without a value.
"""

import math
from collections.abc import Sequence
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

KINDS = ("int", "float", "choice", "ints", "floats", "path", "flag")


class ConfigError(ValueError):
    """A parameter out of its legal range; the message names the parameter and the range."""


@dataclass(frozen=True)
class Param:
    """What one configuration field may hold and what it means.

    Members
    -------
    kind : str
        One of :data:`KINDS`.
    help : str
        One line for ``--help`` and the README.
    low, high : int or None
        Range of an ``int``/``ints`` value (inclusive).
    choices : tuple of str
        Values of a ``choice``.
    optional : bool
        ``None`` is legal too.
    max_items : int
        Longest tuple of an ``ints``/``floats`` value.
    structural : bool
        Changes the hardware but no output value (lanes, target): the ``golden`` command omits it and uses ``low``
        (an ``int``) or the default.
    group : str
        Title of the option group on the command line; empty for the unit's main group.
    any_sign : bool
        A ``float``/``floats`` value may be of any sign or zero (finite as float32), not only > 0.
    """

    kind: str
    help: str
    low: int | None = None
    high: int | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False
    max_items: int = 1
    structural: bool = False
    group: str = ""
    any_sign: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")

    @property
    def allowed(self) -> str:
        """The legal values, as every error message names them."""
        if self.kind in ("int", "ints"):
            text = f"integers {self.low}..{self.high}"
        elif self.kind in ("float", "floats"):
            text = "a finite number (as float32), any sign" if self.any_sign else "a finite number > 0 (as float32)"
        elif self.kind == "path":
            text = "a file's path"
        elif self.kind == "flag":
            text = "True or False"
        else:
            text = ", ".join(self.choices)
        if self.kind in ("ints", "floats"):
            text = f"1..{self.max_items} comma-separated {text}"
        return text

    def check(self, name: str, value: Any) -> None:
        """Raise :class:`ConfigError` naming ``name`` and :attr:`allowed` unless ``value`` is legal."""
        if value is None and self.optional:
            return
        if self.kind in ("ints", "floats"):
            if not isinstance(value, tuple) or not 1 <= len(value) <= self.max_items:
                raise ConfigError(f"{name}={value!r} is out of range; allowed: {self.allowed}")
            for item in value:
                self._check_one(name, item, value)
        else:
            self._check_one(name, value, value)

    def _check_one(self, name: str, item: Any, whole: Any) -> None:
        if self.kind in ("int", "ints"):
            if isinstance(item, bool) or not isinstance(item, (int, np.integer)) or not self.low <= item <= self.high:
                raise ConfigError(f"{name}={whole!r} is out of range; allowed: {self.allowed}")
        elif self.kind in ("float", "floats"):
            if not (is_finite_float32 if self.any_sign else is_positive_float32)(item):
                raise ConfigError(f"{name}={whole!r} is out of range; allowed: {self.allowed}")
        elif self.kind == "path":
            if not isinstance(item, str) or not item:
                raise ConfigError(f"{name}={whole!r} is out of range; allowed: {self.allowed}")
        elif self.kind == "flag":
            if not isinstance(item, (bool, np.bool_)):
                raise ConfigError(f"{name}={whole!r} is out of range; allowed: {self.allowed}")
        elif item not in self.choices:
            raise ConfigError(f"{name}={whole!r} is unknown; allowed: {self.allowed}")


def param(default: Any = MISSING, /, *, kind: str, help: str, **options: Any) -> Any:
    """A dataclass field carrying a :class:`Param` in its metadata (key ``"param"``)."""
    metadata = {"param": Param(kind=kind, help=help, **options)}
    return field(default=default, metadata=metadata)


def value_text(value: Any) -> str:
    """A parameter value as the command line takes it: a tuple or list comma-separated, anything else as ``str``."""
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def param_of(item: Field) -> Param:
    """The :class:`Param` of a configuration field."""
    return item.metadata["param"]


def params(config_type: type) -> dict[str, Param]:
    """Every parameter of a configuration class, in declaration order."""
    return {item.name: param_of(item) for item in fields(config_type)}


def check_params(config: object, names: Sequence[str] | None = None) -> None:
    """Check the fields ``names`` (default: all) of ``config`` against their :class:`Param`."""
    for name, spec in params(type(config)).items():
        if names is None or name in names:
            spec.check(name, getattr(config, name))


def is_finite_float32(value: Any) -> bool:
    """``value`` is a number that stays finite as a float32, of any sign or zero."""
    if isinstance(value, (bool, str, np.bool_)):
        return False
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    with np.errstate(over="ignore"):
        return math.isfinite(number) and math.isfinite(float(np.float32(number)))


def is_positive_float32(value: Any) -> bool:
    """``value`` is a finite number > 0 that stays finite and non-zero as a float32."""
    if isinstance(value, (bool, str)):
        return False
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    if not math.isfinite(number) or number <= 0:
        return False
    with np.errstate(over="ignore", under="ignore"):
        single = float(np.float32(number))
    return math.isfinite(single) and single != 0


TARGETS = ("generic", "ice40", "ecp5", "xc7")
INTERFACES = ("stream", "axis")
IMPLEMENTATION_GROUP = "implementation (changes the Verilog, never an output value)"


@dataclass(frozen=True, kw_only=True)
class Implementation:
    """The fields every unit's configuration shares: how its hardware is built, not what it computes.

    Parameters
    ----------
    target : str
        FPGA family whose primitives and register placement the Verilog uses; ``generic`` is portable behavioural
        Verilog.
    interface : str
        Port names and conventions of the emitted top: ``stream`` (Amaranth's ``i__valid``, ``clk``, ``rst``, ...)
        or ``axis`` (AXI4-Stream: ``aclk``, ``aresetn``, ``s_axis_*``, ``m_axis_*``).

    Members
    -------
    IMPLEMENTED_TARGETS : tuple of str
        Class attribute: the targets the unit's generator implements so far; any other is refused.
    """

    IMPLEMENTED_TARGETS: ClassVar[tuple[str, ...]] = ("generic",)

    target: str = param("generic", kind="choice", choices=TARGETS, structural=True, group=IMPLEMENTATION_GROUP,
                        help="FPGA family whose primitives the Verilog instantiates; generic: portable Verilog")
    interface: str = param("stream", kind="choice", choices=INTERFACES, structural=True, group=IMPLEMENTATION_GROUP,
                           help="ports: stream (i__valid, clk, rst, ...) or axis (AXI4-Stream: aclk, aresetn, "
                                "s_axis_*, m_axis_*)")

    def __post_init__(self):
        check_params(self, IMPLEMENTATION_FIELDS)
        if self.target not in self.IMPLEMENTED_TARGETS:
            raise ConfigError(f"target={self.target!r} is not implemented for {type(self).__name__} yet; allowed: "
                              f"{', '.join(self.IMPLEMENTED_TARGETS)}")


IMPLEMENTATION_FIELDS = ("target", "interface")


def implementation_last(values: dict[str, Any]) -> dict[str, Any]:
    """A configuration's parameters with the :class:`Implementation` fields moved after the unit's own."""
    return ({name: value for name, value in values.items() if name not in IMPLEMENTATION_FIELDS}
            | {name: values[name] for name in IMPLEMENTATION_FIELDS if name in values})
