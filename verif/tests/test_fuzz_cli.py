"""Fuzzing the command line with Hypothesis: random option values and argument lists, malformed input files.

Every case must end with exit 0, or exit 2 and exactly one line on stderr (``sim`` may also exit 1, a failed check).
An exception out of :func:`int8attn.cli.main` fails the test: :func:`cli_runner.run` raises it where a process would
print its traceback. After a failure no output file exists and no temporary file is left; after a success the output
reads back. Commands run in process, in a fresh folder per case; simulation and (in the argument-list fuzz) emission
are replaced by stand-ins, so each case takes milliseconds.

Each test runs a few dozen examples in ``make test`` (deterministic: the same examples every run) and a ``slow``
variant with :data:`SLOW` times as many random ones.
"""

import io
import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_runner import run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from int8attn.golden.dense import DenseConfig
from int8attn.golden.params import params
from int8attn.golden.quantize import quantize_attention
from int8attn.golden.stack_example import example_paths
from int8attn.units import UNITS
from int8attn.verif import runner

SLOW = 25
"""The slow variant runs this many times the examples of ``make test``'s."""
EXAMPLES = [pytest.param(1, id="fast"), pytest.param(SLOW, id="slow", marks=pytest.mark.slow)]
OPTION_EXAMPLES = {"golden": 40, "verilog": 6, "sim": 30}
ARGUMENT_LIST_EXAMPLES = 40
FILE_EXAMPLES = 80
SWEEP_EXAMPLES = 25
SMALL_SPAN = 64
"""Integers are drawn up to ``low + SMALL_SPAN`` (and the out-of-range ``high + 1``): a valid large design would take
seconds to emit or model."""
JUNK_TEXT = ("", "x", "1.5", "1e3", "0x10", " 7", "-0", "+3", "9" * 30, "nan", "inf", "-inf", "1e-50", "1e300",
             "None", "true", ",", "1,,2", "\u0663", "--n")
DTYPES = ("int8", "uint8", "int16", "int32", ">i4", "int64", "uint64", "float16", "float32", "float64", "bool",
          "complex64", "<U3")
VERILOG_UNITS = ("softmax", "requant", "dense", "matmul")
"""Units whose Verilog the option fuzz emits (the others' RTL is emitted by their own tests)."""
COMMANDS = ("verilog", "golden", "sim")

Case = Callable[[Any], None]


def examples(count: int, scale: int, case: Case, strategy: st.SearchStrategy) -> None:
    """Run ``case`` on ``count · scale`` examples of ``strategy``: derandomized (the same examples every run) at
    scale 1, the fast variant of ``make test``, random in the slow variant; no example database is written."""
    @settings(max_examples=count * scale, deadline=None, derandomize=scale == 1, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(strategy)
    def check(example: Any) -> None:
        case(example)

    check()


class Workspace:
    """A fresh folder per case under ``root`` (the command's working folder and its outputs)."""

    def __init__(self, root: Path):
        self.root = root
        self.counter = itertools.count()

    def new(self) -> Path:
        folder = self.root / f"case{next(self.counter)}"
        folder.mkdir()
        return folder


def assert_clean(result: Any, outputs: tuple[Path, ...] = (), folder: Path | None = None, *,
                 may_fail: bool = False) -> None:
    """Exit 0, or 2 with one ``int8attn: error:`` line (or 1 with ``may_fail``); after a failure no output exists;
    never a temporary file left."""
    if folder is not None:
        assert not list(folder.rglob("*.tmp")), f"temporary files left: {list(folder.rglob('*.tmp'))}"
    if result.returncode == 0 or (may_fail and result.returncode == 1):
        return
    assert result.returncode == 2, (result.args, result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("int8attn: error: "), (result.args, result.stderr)
    for output in outputs:
        assert not output.exists(), f"{output} written by a failed command {result.args}"


# Values and arrays.

def int_text(low: int, high: int) -> st.SearchStrategy[str]:
    return st.one_of(st.integers(low - 2, min(high, low + SMALL_SPAN)).map(str), st.just(str(high + 1)),
                     st.sampled_from(JUNK_TEXT))


FLOAT_TEXT = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.floats(1e-3, 10).map(str),
                       st.sampled_from(JUNK_TEXT))


@st.composite
def arrays(draw: st.DrawFn, like: np.ndarray | None = None) -> np.ndarray:
    """An array of a random dtype and shape (``like``'s shape half the time), with ordinary or extreme values."""
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    if like is not None and draw(st.booleans()):
        shape = like.shape
    else:
        shape = tuple(draw(st.lists(st.integers(0, 5), max_size=3)))
    kind = draw(st.sampled_from(("random", "zero", "extreme", "nan", "tiny")))
    if dtype.kind == "U":
        return np.full(shape, draw(st.sampled_from(("relu", "x", ""))), dtype=dtype)
    if dtype.kind in "fc":
        values = {"random": np.random.default_rng(draw(st.integers(0, 9))).normal(0, 3, shape), "zero": 0.0,
                  "extreme": np.finfo(dtype).max, "nan": draw(st.sampled_from((np.nan, np.inf, -np.inf))),
                  "tiny": np.finfo(dtype).smallest_subnormal}[kind]
        return np.full(shape, values).astype(dtype)
    if dtype.kind == "b":
        return np.ones(shape, dtype=dtype)
    info = np.iinfo(dtype)
    value = {"random": draw(st.integers(-3, 3)), "zero": 0, "extreme": info.max, "nan": info.min, "tiny": 1}[kind]
    return np.full(shape, max(min(value, info.max), info.min), dtype=dtype)


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def npz_bytes(content: Mapping[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **content)
    return buffer.getvalue()


@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` as it is, cut short, with bytes changed, or replaced by text, noise or a pickle."""
    kind = draw(st.sampled_from(("intact", "intact", "cut", "flipped", "noise", "empty", "pickle", "huge header")))
    if kind == "cut":
        return data[:draw(st.integers(0, max(len(data) - 1, 0)))]
    if kind == "flipped" and data:
        changed = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            changed[draw(st.integers(0, len(changed) - 1))] = draw(st.integers(0, 255))
        return bytes(changed)
    if kind == "noise":
        return draw(st.binary(max_size=200))
    if kind == "empty":
        return b""
    if kind == "pickle":
        buffer = io.BytesIO()
        np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        return buffer.getvalue()
    if kind == "huge header":
        rows = draw(st.sampled_from((10 ** 12, 2 ** 62, -1)))
        header = f"{{'descr': '|i1', 'fortran_order': False, 'shape': ({rows}, 64), }}"
        header += " " * (63 - len(header) % 64) + "\n"
        return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\0" * 64
    return data


@st.composite
def npz_variant(draw: st.DrawFn, valid: Mapping[str, np.ndarray]) -> bytes:
    """An ``.npz`` of ``valid``'s arrays with one to three keys dropped, replaced (:func:`arrays`) or added, damaged
    or not."""
    content = dict(valid)
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(sorted(content) + ["junk"]))
        if draw(st.booleans()) and key in content:
            del content[key]
        else:
            content[key] = draw(arrays(content.get(key)))
    return draw(damaged(npz_bytes(content)))


@st.composite
def npy_variant(draw: st.DrawFn, valid: np.ndarray) -> bytes:
    """An ``.npy`` of ``valid`` or of another array (:func:`arrays`), damaged or not; sometimes an ``.npz``."""
    array = valid if draw(st.booleans()) else draw(arrays(valid))
    if draw(st.integers(0, 9)) == 0:
        return npz_bytes({"x": array})
    return draw(damaged(npy_bytes(array)))


# Inputs the commands take, valid ones first.

@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Valid input arrays and files of every command fuzzed here, small."""
    folder = tmp_path_factory.mktemp("valid")
    rng = np.random.default_rng(0)
    embed, heads, head_dim = 8, 2, 4
    weights = {name: rng.normal(0, 0.3, (embed, heads * head_dim)).astype(np.float32) for name in ("wq", "wk", "wv")}
    calibration = rng.normal(0, 1, (4, 8, embed)).astype(np.float32)
    with np.load(example_paths()["weights"]) as archive:
        stack_weights = {key: archive[key] for key in archive.files}
    with np.load(example_paths()["calibration"]) as archive:
        stack_calibration = {key: archive[key] for key in archive.files}
    result = run("quantize", "stack", "-o", folder / "stack.npz")
    assert result.returncode == 0, result.stderr
    with np.load(folder / "stack.npz") as archive:
        stack_params = {key: archive[key] for key in archive.files}
    dense = DenseConfig(in_features=8, out_features=4, weights_seed=3).tensors
    logits = {"head0": rng.integers(-128, 128, (4, 8)).astype(np.int8),
              "head1": rng.integers(-128, 128, (4, 8)).astype(np.int8)}
    hccs = folder / "hccs.json"
    result = run("calibrate", "softmax", "--mode", "hccs", "--logits", write(folder / "logits.npz", npz_bytes(logits)),
                 "--input-scale", "0.05", "--search-rows", "4", "-o", hccs)
    assert result.returncode == 0, result.stderr
    return {
        "rows8": rng.integers(-128, 128, (3, 8)).astype(np.int8),
        "rows64": rng.integers(-128, 128, (3, 64)).astype(np.int8),
        "dense_weights": {"weight": dense.weight, "bias": dense.bias,
                          "weight_scale": np.float32(dense.weight_scale[0]),
                          "input_scale": np.float32(dense.input_scale), "input_zero_point": np.int32(0),
                          "output_scale": np.float32(dense.output_scale), "output_zero_point": np.int32(0),
                          "activation": np.str_("relu")},
        "attention_weights": weights, "attention_calibration": calibration,
        "attention_params": quantize_attention(weights, calibration, convention="tflite", heads=heads),
        "sequences": rng.integers(-128, 128, (2, 8, embed)).astype(np.int8),
        "stack_weights": stack_weights, "stack_calibration": stack_calibration, "stack_params": stack_params,
        "tokens": np.load(example_paths()["test"])[:4], "logits": logits,
        "hccs_params": json.loads(hccs.read_text()),
    }


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def fake_simulation(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """``int8attn sim`` without a simulator: the runner returns a pass for the rows it was given."""
    def simulated(config: Any, simulator: str, **options: Any) -> runner.SimResult:
        return runner.SimResult(simulator, ("check",), options.get("rows", 64), 0, [], 0, None, [], True, {}, folder,
                                folder / "check.log")

    monkeypatch.setattr(runner, "run", simulated)


# Random option values.

def option_strategy(unit_name: str, command: str) -> st.SearchStrategy[list[str]]:
    """The options of ``command UNIT``: each of the unit's parameters omitted or given a value drawn for its kind
    (in range or not, or text that is no value at all), in either ``--opt=value`` or ``--opt value`` form."""
    unit = UNITS[unit_name]
    specs = params(unit.config_type)
    if command == "golden":
        specs = {name: spec for name, spec in specs.items()
                 if not spec.structural and name not in getattr(unit.config_type, "OPERAND_SHAPE", ())}
    parts = []
    for name, spec in specs.items():
        flag = f"--{name.replace('_', '-')}"
        if spec.kind == "flag":
            parts.append(st.sampled_from([[], [flag]]))
            continue
        if spec.kind in ("int", "ints"):
            value = int_text(spec.low, spec.high)
        elif spec.kind in ("float", "floats"):
            value = FLOAT_TEXT
        elif spec.kind == "choice":
            value = st.one_of(st.sampled_from(spec.choices), st.sampled_from(JUNK_TEXT))
        else:
            value = st.sampled_from(("missing.npz", ".", "bad.npz", "bad.json"))
        if spec.kind in ("ints", "floats"):
            value = st.lists(value, min_size=1, max_size=4).map(",".join)
        given_value = st.tuples(value, st.booleans()).map(
            lambda pair, flag=flag: [f"{flag}={pair[0]}"] if pair[1] else [flag, pair[0]])
        parts.append(st.one_of(st.just([]), st.just([]), given_value))
    return st.tuples(*parts).map(lambda chosen: [item for option in chosen for item in option])


def unit_inputs(unit_name: str, valid: dict[str, Any], folder: Path) -> list[str | Path]:
    """The file arguments ``golden UNIT`` needs, valid for the unit's default configuration."""
    unit = UNITS[unit_name]
    if unit.operands:
        config = unit.make_config({})
        if unit_name == "matmul":
            shapes = {"lhs": (config.m, config.k), "rhs": (config.k, config.n)}
        else:
            shapes = {name: (2, unit.frame_elements(config)) for name in unit.operands}
        return [item for name in unit.operands
                for item in (f"--{name}", write(folder / f"{name}.npy", npy_bytes(np.ones(shapes[name], np.int8))))]
    config = unit.make_config({})
    model = unit.make_model(config)
    frame = unit.frame_elements(config)
    rows = np.zeros((2, frame), dtype=model.input_dtype)
    return ["--in", write(folder / "in.npy", npy_bytes(rows))]


def options_case(command: str, valid: dict[str, Any], workspace: Workspace) -> Case:
    def case(example: tuple[str, list[str]]) -> None:
        unit_name, options = example
        folder = workspace.new()
        write(folder / "bad.npz", b"PK\x03\x04 not a zip")
        write(folder / "bad.json", "{\"mode\": ")
        if command == "verilog":
            output = folder / "out"
            result = run("verilog", unit_name, *options, "-o", output, cwd=folder)
            assert_clean(result, (), folder)
            if result.returncode:
                assert not output.exists() or not any(output.iterdir()), list(output.iterdir())
            else:
                assert (output / f"{unit_name}.v").is_file() and (output / f"{unit_name}.json").is_file()
        elif command == "golden":
            output = folder / "out.npy"
            result = run("golden", unit_name, *options, *unit_inputs(unit_name, valid, folder), "--out", output,
                         cwd=folder)
            assert_clean(result, (output,), folder)
            if result.returncode == 0:
                np.load(output, allow_pickle=False)
        else:
            result = run("sim", unit_name, *options, "--rows", "2", cwd=folder)
            assert_clean(result, (), folder, may_fail=True)
    return case


COMMAND_UNITS = {"golden": tuple(name for name in UNITS if name != "stack"), "verilog": VERILOG_UNITS,
                 "sim": tuple(UNITS)}
"""Units whose options each command's fuzz draws (``golden stack`` has its own options, fuzzed through its files)."""


@pytest.mark.parametrize("scale", EXAMPLES)
@pytest.mark.parametrize("command", COMMANDS)
def test_random_option_values(command: str, scale: int, valid: dict[str, Any], tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    """``COMMAND UNIT`` with random values of the unit's options: the real emitter and models, a stand-in
    simulator."""
    fake_simulation(monkeypatch, tmp_path)
    strategy = st.sampled_from(COMMAND_UNITS[command]).flatmap(
        lambda name: option_strategy(name, command).map(lambda options: (name, options)))
    examples(OPTION_EXAMPLES[command], scale, options_case(command, valid, Workspace(tmp_path)), strategy)


# Random argument lists.

def argument_tokens() -> list[str]:
    """Tokens of random argument lists: unit names, every option of every unit, values, and the other commands'
    names."""
    options = {f"--{item.name.replace('_', '-')}" for unit in UNITS.values() for item in fields(unit.config_type)}
    options |= {"--in", "--out", "-o", "--out-dir", "--rows", "--seed", "--simulator", "--waves", "--lhs", "--rhs",
                "--a", "--b", "--params", "--tokens", "--hccs-params", "--head", "--", "-", "--version"}
    return sorted(options) + list(UNITS) + list(COMMANDS) + ["verilator", "icarus", "0", "1", "2", "4", "8", "-1",
                                                             "in.npy", "out.npy", "nan", "tflite", "lut", "x", "."]


@pytest.mark.parametrize("scale", EXAMPLES)
def test_random_argument_lists(scale: int, valid: dict[str, Any], tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``int8attn verilog|golden|sim`` followed by random tokens (never ``--help``). The emitter and the simulator
    are stand-ins here; :func:`test_random_option_values` runs the real emitter."""
    from int8attn.hdl import emit

    fake_simulation(monkeypatch, tmp_path)

    def emitted(config: Any, out_dir: Path) -> Any:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        return emit.EmitResult(verilog=write(Path(out_dir) / "unit.v", "module unit; endmodule\n"),
                               sidecar=write(Path(out_dir) / "unit.json", json.dumps({"top": "unit"})),
                               artefacts=())

    monkeypatch.setattr(emit, "emit", emitted)
    monkeypatch.setattr("int8attn.cli._summary", lambda sidecar: "summary")
    workspace = Workspace(tmp_path)

    def case(argv: list[str]) -> None:
        folder = workspace.new()
        write(folder / "in.npy", npy_bytes(valid["rows64"]))
        result = run(*argv, cwd=folder)
        assert_clean(result, (), folder, may_fail=argv[0] == "sim")

    tokens = st.lists(st.one_of(st.sampled_from(argument_tokens()), st.text(max_size=6)), max_size=8)
    examples(ARGUMENT_LIST_EXAMPLES, scale, case,
             st.tuples(st.sampled_from(COMMANDS), tokens).map(lambda pair: [pair[0], *pair[1]]))


# Malformed input files.

def file_case(valid: dict[str, Any], workspace: Workspace) -> tuple[Case, st.SearchStrategy]:
    """A case that runs the command reading a file of a kind of :data:`FILE_KINDS`, and the strategy of ``(kind,
    content)`` (valid, varied or damaged)."""
    def command(kind: str, data: bytes) -> tuple[list[str | Path], tuple[Path, ...], Path]:
        folder = workspace.new()
        data_file = write(folder / f"data{'.json' if kind == 'hccs params' else '.npz'}", data)
        out = folder / "out.npy"
        if kind == "rows":
            return ["golden", "softmax", "--n", "8", "--in", data_file, "--out", out], (out,), folder
        if kind == "sim rows":
            return ["sim", "softmax", "--n", "8", "--lanes", "2", "--in", data_file], (), folder
        if kind == "dense weights":
            rows = write(folder / "rows.npy", npy_bytes(valid["rows8"]))
            return ["golden", "dense", "--weights", data_file, "--in", rows, "--out", out], (out,), folder
        if kind == "attention params":
            rows = write(folder / "rows.npy", npy_bytes(valid["sequences"]))
            return ["golden", "attention", "--params", data_file, "--in", rows, "--out", out], (out,), folder
        if kind == "stack params":
            tokens = write(folder / "tokens.npy", npy_bytes(valid["tokens"]))
            return ["golden", "stack", "--params", data_file, "--tokens", tokens, "--out", out], (out,), folder
        if kind == "stack tokens":
            params_file = write(folder / "params.npz", npz_bytes(valid["stack_params"]))
            return ["golden", "stack", "--params", params_file, "--tokens", data_file, "--out", out], (out,), folder
        if kind in ("attention weights", "attention calibration"):
            weights = write(folder / "w.npz", npz_bytes(valid["attention_weights"]))
            calibration = write(folder / "c.npy", npy_bytes(valid["attention_calibration"]))
            files = {"attention weights": (data_file, calibration), "attention calibration": (weights, data_file)}
            weights, calibration = files[kind]
            return ["quantize", "attention", "--weights", weights, "--calibration", calibration, "--heads", "2",
                    "-o", folder / "q.npz"], (folder / "q.npz",), folder
        if kind in ("stack weights", "stack calibration"):
            option = "--weights" if kind == "stack weights" else "--calibration"
            return ["quantize", "stack", option, data_file, "-o", folder / "q.npz"], (folder / "q.npz",), folder
        if kind == "logits":
            return ["calibrate", "softmax", "--mode", "poly", "--logits", data_file, "--input-scale", "0.05",
                    "--search-rows", "4", "-o", folder / "c.json"], (folder / "c.json",), folder
        if kind == "rows file":
            return ["accuracy", "softmax", "--n", "8", "--rows", "8", "--no-plot", "--rows-file", data_file, "-o",
                    folder / "acc"], (), folder
        rows = write(folder / "rows.npy", npy_bytes(valid["rows64"]))
        return ["golden", "softmax", "--mode", "hccs", "--hccs-params", data_file, "--in", rows, "--out", out], (
            out,), folder

    strategies = {
        "rows": npy_variant(valid["rows8"]), "sim rows": npy_variant(valid["rows8"]),
        "dense weights": npz_variant(valid["dense_weights"]),
        "attention params": npz_variant(valid["attention_params"]),
        "stack params": npz_variant(valid["stack_params"]), "stack tokens": npy_variant(valid["tokens"]),
        "attention weights": npz_variant(valid["attention_weights"]),
        "attention calibration": npy_variant(valid["attention_calibration"]),
        "stack weights": npz_variant(valid["stack_weights"]),
        "stack calibration": npz_variant(valid["stack_calibration"]),
        "logits": npz_variant(valid["logits"]), "rows file": npy_variant(valid["rows8"]),
        "hccs params": json_variant(valid["hccs_params"]),
    }

    def case(example: tuple[str, bytes]) -> None:
        argv, outputs, folder = command(*example)
        result = run(*argv, cwd=folder)
        assert_clean(result, outputs, folder, may_fail=argv[0] == "sim")

    return case, st.sampled_from(FILE_KINDS).flatmap(lambda kind: strategies[kind].map(lambda data: (kind, data)))


JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=True),
                        st.text(max_size=4), st.just([]), st.just({}))


@st.composite
def json_variant(draw: st.DrawFn, document: dict) -> bytes:
    """``document`` with up to three values (at the top or in a head) replaced, as JSON, damaged or not."""
    document = json.loads(json.dumps(document))
    for _ in range(draw(st.integers(0, 3))):
        heads = document.get("heads")
        in_head = isinstance(heads, list) and heads and isinstance(heads[0], dict) and draw(st.booleans())
        target = heads[0] if in_head else document
        key = draw(st.sampled_from(sorted(target) + ["junk"]))
        target[key] = draw(JSON_VALUES)
    return draw(damaged(json.dumps(document).encode()))


FILE_KINDS = ("rows", "sim rows", "dense weights", "attention params", "stack params", "stack tokens",
              "attention weights", "attention calibration", "stack weights", "stack calibration", "logits", "rows file",
              "hccs params")


@pytest.mark.parametrize("scale", EXAMPLES)
def test_malformed_input_files(scale: int, valid: dict[str, Any], tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command that reads a file, on valid, varied and damaged files of its kind."""
    fake_simulation(monkeypatch, tmp_path)
    case, strategy = file_case(valid, Workspace(tmp_path))
    examples(FILE_EXAMPLES, scale, case, strategy)


# Sweep files.

TOML_VALUES = st.one_of(st.integers(-3, 70).map(str), st.sampled_from(("nan", "inf", "1e400", "-0.0", "0.05", "true",
                                                                       '"lut"', '"x"', "1979-05-27", "{a = 1}",
                                                                       '"ecp5"', "[]", '["xc7"]', "[1, 2]", '["a", 1]',
                                                                       "9223372036854775807")))


@st.composite
def sweep_document(draw: st.DrawFn) -> bytes:
    """A sweep file from the format's sections and keys (and junk ones) with random values, damaged or not."""
    keys = sorted({item.name for unit in UNITS.values() for item in fields(unit.config_type)})
    lines = []
    for key in draw(st.lists(st.sampled_from(("name", "unit", "junk")), max_size=2, unique=True)):
        value = draw(st.one_of(TOML_VALUES, st.sampled_from(tuple(f'"{name}"' for name in UNITS))))
        lines.append(f"{key} = {value}")
    for section in draw(st.lists(st.sampled_from(("base", "grid", "run", "extra", "bogus")), max_size=4)):
        lines.append(f"[[{section}]]" if section == "extra" else f"[{section}]")
        names = ("families", "simulate", "rows", "seed", "timeout", "junk") if section == "run" else (*keys, "junk")
        for key in draw(st.lists(st.sampled_from(names), max_size=3, unique=True)):
            value = draw(TOML_VALUES)
            lines.append(f"{key} = [{value}]" if section == "grid" and draw(st.booleans()) else f"{key} = {value}")
    return draw(damaged("\n".join(lines).encode()))


@pytest.mark.parametrize("scale", EXAMPLES)
def test_malformed_sweep_files(scale: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sweep files of every shape; the points of a file that loads are stand-ins (recorded as failed), so what runs
    is the file's checks, the cache and the reports."""
    from int8attn import sweep

    def not_run(unit: Any, pending: dict, run_settings: dict, work: Path, jobs: int, executor: Any) -> Any:
        for label, (parameters, _) in pending.items():
            yield label, sweep.failed_record(label, parameters, "not run in the fuzz test")

    monkeypatch.setattr(sweep, "run_points", not_run)
    workspace = Workspace(tmp_path)

    def case(data: bytes) -> None:
        folder = workspace.new()
        result = run("sweep", write(folder / "s.toml", data), "-o", folder / "out", cwd=folder)
        assert_clean(result, (), folder)

    examples(SWEEP_EXAMPLES, scale, case, sweep_document())
