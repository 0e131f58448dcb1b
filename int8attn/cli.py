"""The ``int8attn`` command: emit Verilog, run the golden model, simulate, synthesise, benchmark, for every unit.

The units and their options come from the registry (:mod:`int8attn.units`) and from each unit's configuration
dataclass (:mod:`int8attn.golden.params`): adding a unit adds its subcommands without a line here.

Every user mistake ends the command with one line on stderr, ``int8attn: error: <what>; allowed: <range>``, and exit
code 2.
"""

import argparse
import json
import math
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from int8attn import __version__, bench, soak
from int8attn.golden.files import READ_ERRORS, Content, write_atomic
from int8attn.golden.params import ConfigError, Param, implementation_last, params, value_text
from int8attn.golden.quantize import STACK_METHODS
from int8attn.golden.vectors import VECTORS_DIR, write_vectors
from int8attn.units import UNITS, Unit
from int8attn.usage import UsageError, output_folder

PROG = "int8attn"
LIST_PREVIEW = 8
STACK = "stack"
OWN_GOLDEN = (STACK,)
"""Registered units whose ``golden`` subcommand is their own parser here rather than the registry's ``--in``/``--out``
one: ``golden stack --params P.npz --tokens T.npy --out Y.npy`` (:func:`_add_golden_stack`)."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, with no usage dump."""

    def error(self, message: str) -> NoReturn:
        _fail(message)


def _fail(message: object) -> NoReturn:
    print(f"{PROG}: error: {' '.join(str(message).splitlines())}", file=sys.stderr)
    sys.exit(2)


def _integer(allowed: str, low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    def convert(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer; allowed: {allowed}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value} is out of range; allowed: {allowed}")
        return value
    return convert


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; allowed: a finite number > 0") from None


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def convert(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(f"{text!r} is not a choice; allowed: {', '.join(choices)}")
        return text
    return convert


def _items(convert: Callable[[str], Any], allowed: str) -> Callable[[str], tuple]:
    def convert_all(text: str) -> tuple:
        items = [item.strip() for item in text.split(",")]
        if not all(items):
            raise argparse.ArgumentTypeError(f"{text!r} has an empty item; allowed: {allowed}")
        return tuple(convert(item) for item in items)
    return convert_all


def _option_type(spec: Param) -> dict[str, Any]:
    """``add_argument`` keywords that parse one parameter as :class:`Param` describes it."""
    if spec.kind == "choice":
        return {"type": _choice(spec.choices), "metavar": "{" + ",".join(spec.choices) + "}"}
    if spec.kind == "path":
        return {"type": str, "metavar": "FILE"}
    if spec.kind == "flag":
        return {"action": "store_true"}
    single = _integer(spec.allowed) if spec.kind in ("int", "ints") else _number
    if spec.kind in ("ints", "floats"):
        return {"type": _items(single, spec.allowed), "metavar": "V[,V...]"}
    return {"type": single}


def _add_unit_options(parser: argparse.ArgumentParser, unit: Unit, *, structural: bool = True,
                      defaults: dict[str, tuple[Any, str]] | None = None, omit: tuple[str, ...] = ()) -> None:
    """One option per configuration field, with its range and help text; ``structural=False`` leaves out the fields
    that change no output value (an integer takes its smallest legal value, any other its default), and ``omit``
    the fields named. ``defaults`` replaces a field's default by a value and the text that explains it."""
    generated = {item.name: (item.default, value_text(item.default)) for item in fields(unit.config_type)}
    defaults = generated | (defaults or {})
    groups: dict[str, argparse._ArgumentGroup] = {}
    for name, spec in implementation_last(params(unit.config_type)).items():
        if name in omit:
            continue
        default, explained = defaults[name]
        if spec.structural and not structural:
            parser.set_defaults(**{name: spec.low if spec.kind == "int" else default})
            continue
        title = spec.group or f"{unit.name} unit"
        group = groups.setdefault(title, parser.add_argument_group(title))
        text = spec.help if spec.kind in ("choice", "flag") else f"{spec.help}; {spec.allowed}"
        if "(default:" not in text:
            text += f" (default: {explained})"
        group.add_argument(f"--{name.replace('_', '-')}", dest=name, default=default, **_option_type(spec),
                           help=text.replace("%", "%%"))
    if unit.calibrate is not None:
        unit.calibration_module.add_parameter_file_options(parser)


def _config(unit: Unit, args: argparse.Namespace) -> Any:
    values = {name: getattr(args, name) for name in params(unit.config_type)}
    if unit.calibrate is not None:
        values |= unit.calibration_module.parameters_from_files(args)
    return unit.make_config(values)


def _value_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        shown = ",".join(map(str, value[:LIST_PREVIEW]))
        return f"[{shown}{f',... ({len(value)} values)' if len(value) > LIST_PREVIEW else ''}]"
    return str(value)


def _pairs(values: dict) -> str:
    return " ".join(f"{key}={_value_text(value)}" for key, value in values.items())


def _summary(sidecar: dict) -> str:
    """What the verilog command prints: parameters, rate, latency and the unit's own sections."""
    beats = ", ".join(f"{name}: {stream['beats_per_frame']} beats/frame" for name, stream in sidecar["streams"].items())
    lines = [f"{sidecar['top']}: {_pairs(sidecar['parameters'])}",
             f"  {beats}; {sidecar['elements_per_cycle']} elements/cycle, latency {sidecar['latency_cycles']} cycles "
             f"({sidecar['latency_from']} input beat of a frame accepted -> its first output beat valid)"]
    lines += [f"  {key}: {_pairs(value)}" for key, value in sidecar.items()
              if isinstance(value, dict) and key not in ("parameters", "streams")]
    return "\n".join(lines)


def _verilog(unit: Unit, args: argparse.Namespace) -> int:
    config = _config(unit, args)
    out_dir = output_folder(args.out_dir or Path("build") / unit.folder_name(config))
    from int8attn.hdl.emit import emit

    try:
        result = emit(config, out_dir)
    except OSError as error:
        raise UsageError(f"cannot write into {out_dir} ({error.strerror}); allowed: a writable folder") from None
    for path in result.paths:
        print(f"wrote {path}")
    print(_summary(json.loads(result.sidecar.read_text())))
    return 0


def _ends_in(rows: np.ndarray, frame_shape: tuple[int, ...]) -> bool:
    """``rows`` is an array of frames of ``frame_shape`` (a non-empty shape) on its last axes."""
    return bool(frame_shape) and rows.shape[rows.ndim - len(frame_shape):] == tuple(frame_shape)


def _load_rows(path: Path, frame: int, dtype: type, frame_shape: tuple[int, ...] = ()) -> np.ndarray:
    """The frames of ``path``: ``(rows, frame)`` or ``(frame,)``, or ``(..., *frame_shape)`` when given."""
    shapes = f"(rows, {frame}) or ({frame},)" + (f" or (..., {', '.join(map(str, frame_shape))})" if frame_shape
                                                  else "")
    allowed = f"a .npy file of {np.dtype(dtype).name} rows, shape {shapes}"
    try:
        rows = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"input {path} does not exist; allowed: {allowed}") from None
    except READ_ERRORS as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else "not a .npy array"
        raise UsageError(f"cannot read input {path} ({reason}); allowed: {allowed}") from None
    if not isinstance(rows, np.ndarray):
        rows.close()
        raise UsageError(f"input {path} is an .npz archive, not an .npy array; allowed: {allowed}")
    if rows.dtype != dtype:
        raise UsageError(f"input {path} has dtype {rows.dtype}; allowed: {allowed}")
    if rows.shape != (frame,) and (rows.ndim != 2 or rows.shape[1] != frame) and not _ends_in(rows, frame_shape):
        raise UsageError(f"input {path} has shape {rows.shape}; allowed: {allowed}")
    if rows.size == 0:
        raise UsageError(f"input {path} has shape {rows.shape}, no rows; allowed: {allowed}, at least one row")
    return rows


def _save(path: Path, outputs: np.ndarray) -> None:
    _write_file(path, lambda file: np.save(file, outputs, allow_pickle=False))


def _load_operand(path: Path, name: str, allowed: str = "an int8 .npy array") -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"--{name} {path} does not exist; allowed: {allowed}") from None
    except READ_ERRORS:
        raise UsageError(f"cannot read --{name} {path} (not a .npy array); allowed: {allowed}") from None
    if not isinstance(array, np.ndarray):
        array.close()
        raise UsageError(f"--{name} {path} is an .npz archive; allowed: {allowed}")
    return array


def _golden_operands(unit: Unit, args: argparse.Namespace) -> int:
    arrays = [_load_operand(getattr(args, name), name) for name in unit.operands]
    shape_fields = unit.config_type.OPERAND_SHAPE
    parameters = {name: getattr(args, name) for name in params(unit.config_type) if name not in shape_fields}
    config = unit.config_type.from_operands(*arrays, **parameters)
    outputs = unit.make_model(config).instances(*arrays)
    _save(args.output, outputs)
    print(f"wrote {args.output}: {outputs.dtype} {list(outputs.shape)} ({unit.make_model(config).output_description})")
    return 0


def _golden(unit: Unit, args: argparse.Namespace) -> int:
    if unit.operands:
        return _golden_operands(unit, args)
    config = _config(unit, args)
    model = unit.make_model(config)
    frame = unit.frame_elements(config)
    frame_shape = getattr(config, "frame_shape", ())
    rows = _load_rows(args.input, frame, model.input_dtype, frame_shape)
    if _ends_in(rows, frame_shape):
        leading = rows.shape[:rows.ndim - len(frame_shape)]
        outputs = model(rows.reshape(-1, frame)).reshape(*leading, *config.output_shape)
    else:
        outputs = model(rows.reshape(-1, frame)).reshape(*rows.shape[:-1], -1)
    _save(args.output, outputs)
    print(f"wrote {args.output}: {outputs.dtype} {list(outputs.shape)} ({model.output_description})")
    return 0


def _sim(unit: Unit, args: argparse.Namespace) -> int:
    config = _config(unit, args)
    from int8attn.verif.runner import SimulatorMissing, run

    options = {name: getattr(args, name) for name in ("rows", "seed") if getattr(args, name) is not None}
    if args.input is not None:
        model = unit.make_model(config)
        rows = _load_rows(args.input, unit.frame_elements(config), model.input_dtype)
        try:
            model.check_rows(rows.reshape(-1, unit.frame_elements(config)))
        except ConfigError as error:
            raise UsageError(f"input {args.input}: {error}") from None
        options["frames"] = args.input.resolve()
    try:
        result = run(config, args.simulator, waves=args.waves, **options)
    except SimulatorMissing as error:
        raise UsageError(error) from None
    print(f"{'PASS' if result.passed else 'FAIL'} {_pairs(config.as_dict())} on {result.simulator}: "
          f"{result.rows} rows, {result.beats} output beats compared with the golden model, {result.cycles} cycles")
    if args.waves:
        for path in sorted(result.build_dir.rglob("*.fst")) + sorted(result.build_dir.rglob("*.vcd")):
            print(f"waves {path}")
    print(f"log {result.log}")
    for error in result.errors:
        print(error)
    return 0 if result.passed else 1


def _synth(unit: Unit, args: argparse.Namespace) -> int:
    if args.target is None:
        args.target = args.family if args.family in unit.targets else "generic"
    config = _config(unit, args)
    if args.freq_mhz is not None and not 0 < args.freq_mhz < math.inf:
        raise UsageError(f"--freq-mhz {args.freq_mhz} is out of range; allowed: a finite number > 0")
    out_dir = output_folder(args.out_dir or Path("build") / "synth" / unit.folder_name(config))
    from int8attn.synth import ToolMissing, synthesize

    try:
        report = synthesize(config, args.family, out_dir, seed=args.seed, freq_mhz=args.freq_mhz, seeds=args.seeds)
    except ToolMissing as error:
        raise UsageError(error) from None
    except RuntimeError as error:
        print(f"{PROG}: synthesis failed: {error}", file=sys.stderr)
        return 1
    print(f"{args.family}: {_pairs(config.as_dict())}")
    print(f"  {report['method']}")
    print(f"  resources: {_pairs({k: v for k, v in report['resources'].items() if not isinstance(v, dict)})}")
    if "macs_per_s" in report:
        print(f"  {report['multipliers']} engine multipliers, {report['macs_per_cycle']:g} MACs/cycle, "
              f"{report['macs_per_s']} MACs/s")
    print(f"  fmax {report['fmax_mhz']} MHz, {report['elements_per_s']} elements/s, "
          f"latency {report['latency_cycles']} cycles ({report['latency_ns']} ns)")
    if report["critical_path"]:
        path = report["critical_path"]
        print(f"  critical path: {path['delay_ns']} ns in stage {path['stage']} ({' -> '.join(path['stages'])})")
    if "seed_sweep" in report:
        sweep = report["seed_sweep"]
        print(f"  seeds {sweep['seeds'][0]}..{sweep['seeds'][-1]}: fmax {', '.join(map(str, sweep['fmax_mhz']))} MHz; "
              f"median {sweep['median_mhz']}, min {sweep['min_mhz']}, max {sweep['max_mhz']}")
    print(f"wrote {out_dir / f'report_{args.family}.json'}")
    return 0


def _add_formal(parser: argparse.ArgumentParser, unit: Unit) -> None:
    _add_unit_options(parser, unit)
    from int8attn import formal

    formal.add_arguments(parser)


def _formal(unit: Unit, args: argparse.Namespace) -> int:
    from int8attn import formal

    return formal.command(unit, _config(unit, args), args)


def _accuracy(unit: Unit, args: argparse.Namespace) -> int:
    return unit.accuracy_module.command(_config(unit, args), args)


def _sweep(args: argparse.Namespace) -> int:
    from int8attn.bench import README, ReadmeError, with_table
    from int8attn.sweep import SweepError, load_sweep, run_sweep

    try:
        block = f"sweep-{load_sweep(args.file)['name']}"
        if args.update_readme:
            with_table(README, "", block)
        paths = run_sweep(args.file, args.out_dir, jobs=args.jobs, executor=args.executor)
    except (SweepError, ReadmeError) as error:
        raise UsageError(error) from None
    for path in paths.values():
        print(f"wrote {path}")
    if args.update_readme:
        write_atomic(README, with_table(README, paths["markdown"].read_text().split("\n", 2)[2], block))
        print(f"updated the {block} block of {README}")
    return 0


def _synth_table(args: argparse.Namespace) -> int:
    from int8attn.bench import README, ReadmeError, with_table
    from int8attn.synth import ToolMissing, benchmark_table

    try:
        if args.update_readme:
            with_table(README, "", "synth")
        json_path, md_path = benchmark_table(output_folder(args.out_dir), seed=args.seed, jobs=args.jobs)
    except (ToolMissing, ReadmeError) as error:
        raise UsageError(error) from None
    table = md_path.read_text()
    print(table)
    print(f"wrote {json_path}\nwrote {md_path}")
    if args.update_readme:
        write_atomic(README, with_table(README, table, "synth"))
        print(f"updated the synth block of {README}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from int8attn.verif.runner import SimulatorMissing

    try:
        return bench.run(quick=args.quick, update_readme=args.update_readme, units=args.units)
    except (bench.ReadmeError, SimulatorMissing) as error:
        raise UsageError(error) from None


def _soak(args: argparse.Namespace) -> int:
    from int8attn.verif.runner import SimulatorMissing

    if args.list:
        print("\n".join(soak.selected(args.configs)))
        return 0
    try:
        result = soak.run_soak(args.rows, args.configs, simulator=args.simulator, engine=args.engine,
                               seed=args.seed, jobs=args.jobs, out_dir=args.out_dir)
    except SimulatorMissing as error:
        raise UsageError(error) from None
    print(result["markdown"].read_text(), end="")
    print(f"wrote {result['json']}\nwrote {result['markdown']}")
    problems = soak.failures(result["records"])
    for problem in problems:
        print(problem)
    return 1 if problems else 0


def _quantize_attention(args: argparse.Namespace) -> int:
    from int8attn.golden.quantize import quantize_attention_files

    arrays = quantize_attention_files(args.weights, args.calibration, convention=args.convention, heads=args.heads)
    _write_file(args.output, lambda file: np.savez(file, **arrays))
    print(f"wrote {args.output}: {args.convention} attention parameters, {args.heads} head(s)")
    return 0


def _output_file(path: Path) -> Path:
    """``path``, its folder created if needed; :class:`UsageError` when ``path`` is a folder."""
    if path.is_dir():
        raise UsageError(f"output {path} is a folder; allowed: a file path")
    output_folder(path.parent if str(path.parent) else Path("."))
    return path


def _write_file(path: Path, content: Content) -> Path:
    """``content`` into the file ``path`` atomically (:func:`~int8attn.golden.files.write_atomic`); a one-line
    :class:`UsageError` when it cannot be written."""
    try:
        return write_atomic(path, content)
    except OSError as error:
        raise UsageError(f"cannot write {path} ({error.strerror}); allowed: a writable file path") from None


def _write(path: Path, content: Content) -> Path:
    """``content`` into the file ``path``, its folder created, atomically (:func:`_write_file`)."""
    return _write_file(_output_file(path), content)


def _load_tokens(path: Path, option: str) -> np.ndarray:
    """Token ids of the ``.npy`` file ``path``: integers ``(rows, S)`` or ``(S,)``; ids are checked by the model."""
    allowed = "an .npy array of integer token ids, shape (rows, S) or (S,)"
    array = _load_operand(path, option, allowed)
    if array.dtype.kind not in "iu" or array.ndim not in (1, 2) or 0 in array.shape:
        raise UsageError(f"--{option} {path} is {array.dtype}{list(array.shape)}; allowed: {allowed}")
    return array


def _example_path(value: Path | None, name: str) -> Path:
    from int8attn.golden.stack_example import example_paths

    return example_paths()[name] if value is None else value


def _quantize_stack(args: argparse.Namespace) -> int:
    from int8attn.golden.quantize import quantize_stack_files
    from int8attn.golden.stack_example import npz_bytes

    weights, calibration = _example_path(args.weights, "weights"), _example_path(args.calibration, "calibration")
    output = args.output or Path("build") / "stack" / f"stack_{args.method}.npz"
    arrays = quantize_stack_files(weights, calibration, method=args.method)
    _write(output, npz_bytes(arrays))
    sizes = ", ".join(f"{name}={int(arrays[f'config.{key}'])}" for name, key in (
        ("V", "vocab"), ("S", "seq_len"), ("E", "embed_dim"), ("F", "ffn_dim"), ("B", "num_blocks")))
    print(f"wrote {output}: encoder-stack parameters ({sizes}), method {args.method}, "
          f"{int(arrays['config.num_calibration_sequences'])} sequences observed (calibration {calibration})")
    return 0


def _golden_stack(args: argparse.Namespace) -> int:
    from int8attn.golden.stack import load_stack_params, stack_forward
    from int8attn.golden.stack_example import npy_bytes

    params = load_stack_params(args.params)
    tokens = _load_tokens(args.tokens, "tokens")
    try:
        output = stack_forward(params, tokens)["output"]
    except ConfigError as error:
        raise ConfigError(f"--tokens {args.tokens}: {error}") from None
    _write(args.output, npy_bytes(output))
    print(f"wrote {args.output}: int8 {list(output.shape)} (the stack's output codes, on the grid "
          f"block{params.num_blocks - 1}.scale.out of {args.params})")
    return 0


def _plot_stack(args: argparse.Namespace) -> int:
    from int8attn.stack_report import FIGURE_FORMATS, write_parity_figure

    weights, tokens_path = _example_path(args.weights, "weights"), _example_path(args.tokens, "test")
    if args.output.suffix.lstrip(".").lower() not in FIGURE_FORMATS:
        raise UsageError(f"-o {args.output} has an unknown image format; allowed: a file ending in "
                         f"{', '.join('.' + name for name in FIGURE_FORMATS)}")
    tokens = _load_tokens(tokens_path, "tokens")
    _output_file(args.output)
    try:
        parity = write_parity_figure(args.params, weights, tokens, args.output)
    except OSError as error:
        raise UsageError(f"cannot write {args.output} ({error.strerror}); allowed: a writable file path") from None
    print(f"wrote {args.output}: {tokens.reshape(-1, tokens.shape[-1]).shape[0]} sequences, max |int8 - float| "
          f"{parity.max_abs_error:.4f} = {100 * parity.relative_error:.2f}% of the output range "
          f"{parity.output_range:.4f}, mean {parity.mean_abs_error:.4f}")
    return 0


def _golden_stack_files(args: argparse.Namespace) -> int:
    from int8attn.stack_report import write_golden_stack

    try:
        paths = write_golden_stack(output_folder(args.out_dir), args.method)
    except OSError as error:
        raise UsageError(f"cannot write into {args.out_dir} ({error.strerror}); allowed: a writable folder") from None
    for path in paths:
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


def _golden_vectors(args: argparse.Namespace) -> int:
    for path in write_vectors(output_folder(args.out_dir)):
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


def _add_verilog(parser: argparse.ArgumentParser, unit: Unit) -> None:
    _add_unit_options(parser, unit)
    parser.add_argument("-o", "--out-dir", type=Path, help=f"output folder (default: build/{unit.folder_pattern})")


def _add_golden(parser: argparse.ArgumentParser, unit: Unit) -> None:
    if unit.operands:
        _add_unit_options(parser, unit, structural=False, omit=unit.config_type.OPERAND_SHAPE)
        for name in unit.operands:
            parser.add_argument(f"--{name}", type=Path, required=True,
                                help=f"the {name} operand (.npy, int8); the shape sets "
                                     f"{', '.join(unit.config_type.OPERAND_SHAPE)}")
        parser.add_argument("--out", dest="output", type=Path, required=True, help="output .npy")
        return
    _add_unit_options(parser, unit, structural=False)
    parser.add_argument("--in", dest="input", type=Path, required=True,
                        help=f"input rows (.npy), shape (rows, {unit.frame}); a 1-D array of length {unit.frame} is "
                             "one row")
    parser.add_argument("--out", dest="output", type=Path, required=True,
                        help="output .npy: one output row per input row")


def _add_sim(parser: argparse.ArgumentParser, unit: Unit) -> None:
    _add_unit_options(parser, unit)
    parser.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator",
                        help="HDL simulator (default: %(default)s)")
    parser.add_argument("--rows", type=_integer("integers >= 1", low=1),
                        help="random rows to check, after the directed rows (default: the runner's, 64)")
    parser.add_argument("--seed", type=_integer("integers >= 0", low=0),
                        help="seed of the rows and of the stall patterns (default: the runner's, 1)")
    parser.add_argument("--in", dest="input", type=Path,
                        help=f"input rows (.npy, shape (rows, {unit.frame})) to check instead of the random rows")
    parser.add_argument("--waves", action="store_true", help="record an FST waveform (rebuilds with tracing)")


def _add_synth(parser: argparse.ArgumentParser, unit: Unit) -> None:
    _add_unit_options(parser, unit, defaults={"target": (None, "the --family when the unit implements it, else "
                                                          "generic")})
    parser.add_argument("--family", choices=("ice40", "ecp5", "xc7"), required=True,
                        help="ice40: iCE40UP5K in a serial harness; ecp5: ECP5-85 out of context; xc7: resources only")
    parser.add_argument("--seed", type=_integer("integers >= 0", low=0), default=1,
                        help="nextpnr seed (default: %(default)s)")
    parser.add_argument("--seeds", type=_integer("integers 1..100", low=1, high=100), default=1,
                        help="also place and route with the next seeds, --seeds in all, and report each Fmax and "
                             "their median (default: %(default)s)")
    parser.add_argument("--freq-mhz", type=_number,
                        help="nextpnr timing target in MHz (default: 50 for ice40, 200 for ecp5)")
    parser.add_argument("-o", "--out-dir", type=Path,
                        help=f"output folder (default: build/synth/{unit.folder_pattern})")


def _add_accuracy(parser: argparse.ArgumentParser, unit: Unit) -> None:
    _add_unit_options(parser, unit)
    unit.accuracy_module.add_arguments(parser)


def _add_golden_stack(units: argparse._SubParsersAction) -> None:
    """``golden stack``: TinyMind's encoder stack on token ids of any integer dtype (``--tokens``), the parameter
    file required (``--params``), in place of the registry's ``golden`` for the ``stack`` unit."""
    summary = "TinyMind's int8 encoder stack (embedding, positional encoding, encoder blocks) on token ids"
    parser = units.add_parser(STACK, help=summary, allow_abbrev=False,
                              description=f"run the bit-exact golden model: {summary}.")
    parser.add_argument("--params", type=Path, metavar="FILE", required=True,
                        help="encoder-stack parameter .npz (int8attn.golden.stack; `int8attn quantize stack` writes "
                             "one, the shared tinymind_encoder_stack.npz is one)")
    parser.add_argument("--tokens", type=Path, metavar="FILE", required=True,
                        help="token ids .npy, integers (rows, S) or (S,), each 0..V-1")
    parser.add_argument("--out", dest="output", type=Path, required=True, metavar="FILE",
                        help="output .npy: int8 (rows, S, E), the last block's output codes")
    parser.set_defaults(handler=_golden_stack)
    units.metavar = units.metavar[:-1] + "," + STACK + "}"


UNIT_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser, Unit], None],
                               Callable[[Unit, argparse.Namespace], int]]] = {
    "verilog": ("emit Verilog, its JSON sidecar and artefacts", _add_verilog, _verilog),
    "golden": ("run the bit-exact golden model on rows from a .npy file", _add_golden, _golden),
    "sim": ("simulate the generated RTL against the golden model", _add_sim, _sim),
    "synth": ("synthesise, place and route with the open FPGA tools (YoWASP)", _add_synth, _synth),
    "accuracy": ("accuracy report against float references", _add_accuracy, _accuracy),
    "formal": ("prove the stream contract with SymbiYosys (k-induction, bounded checks, covers)", _add_formal,
               _formal),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``int8attn`` and its subcommands, one unit subcommand per registered unit."""
    listing = "; ".join(f"{unit.name}: {unit.summary}" for unit in UNITS.values())
    parser = _Parser(prog=PROG, allow_abbrev=False,
                     description=f"int8 transformer units as verified Verilog. Units: {listing}.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    unit_parsers: dict[str, argparse._SubParsersAction] = {}
    for command, (help_text, add_options, handler) in UNIT_COMMANDS.items():
        offered = [unit for unit in UNITS.values() if (command != "accuracy" or unit.accuracy is not None)
                   and (command != "formal" or not unit.operands)
                   and not (command == "golden" and unit.name in OWN_GOLDEN)]
        names = ",".join(unit.name for unit in offered)
        group = commands.add_parser(command, help=f"{help_text} ({names})", allow_abbrev=False,
                                    description=f"{help_text}. Units: " + "; ".join(
                                        f"{unit.name}: {unit.summary}" for unit in offered) + ".")
        units = group.add_subparsers(dest="unit", required=True, metavar="{" + names + "}")
        unit_parsers[command] = units
        for unit in offered:
            unit_parser = units.add_parser(unit.name, help=unit.summary, allow_abbrev=False,
                                           description=f"{help_text}: {unit.summary}.")
            add_options(unit_parser, unit)
            unit_parser.set_defaults(handler=lambda args, unit=unit, handler=handler: handler(unit, args))

    _add_golden_stack(unit_parsers["golden"])

    calibrated = [unit for unit in UNITS.values() if unit.calibrate is not None]
    calibrate = commands.add_parser("calibrate", help="fit a unit's parameters to representative inputs ("
                                    + ",".join(unit.name for unit in calibrated) + ")", allow_abbrev=False)
    calibrate_units = calibrate.add_subparsers(dest="unit", required=True)
    for unit in calibrated:
        module = unit.calibration_module
        unit_parser = calibrate_units.add_parser(unit.name, help=module.SUMMARY, allow_abbrev=False,
                                                 description=f"{module.SUMMARY}.")
        module.add_arguments(unit_parser)
        unit_parser.set_defaults(handler=module.command)

    table = commands.add_parser("synth-table", help="the README's resource/Fmax table: default softmax at "
                                "(N, P) = (10, 1), (64, 4), (256, 8) and the other modes on xc7, ecp5 and ice40",
                                allow_abbrev=False)
    table.add_argument("--seed", type=_integer("integers >= 0", low=0), default=1,
                       help="nextpnr seed (default: %(default)s)")
    table.add_argument("-o", "--out-dir", type=Path, default=Path("build/reports/synth"),
                       help="output folder (default: %(default)s)")
    table.add_argument("--jobs", type=_integer("integers >= 1", low=1), default=2,
                       help="runs in parallel (default: %(default)s)")
    table.add_argument("--update-readme", action="store_true", help="replace the synth block of ./README.md")
    table.set_defaults(handler=_synth_table)

    sweep = commands.add_parser("sweep", help="run a parameter sweep file (accuracy, RTL check, synthesis)",
                                allow_abbrev=False)
    sweep.add_argument("file", type=Path, help="sweep file (TOML), e.g. sweep.toml")
    sweep.add_argument("--jobs", type=_integer("integers >= 1", low=1), default=2,
                       help="points run in parallel (default: %(default)s)")
    sweep.add_argument("--executor", help="dask://HOST:PORT: run the points on a Dask cluster instead")
    sweep.add_argument("-o", "--out-dir", type=Path, help="output folder (default: build/sweeps/<name>)")
    sweep.add_argument("--update-readme", action="store_true",
                       help="replace the sweep-<name> block of ./README.md with the summary table")
    sweep.set_defaults(handler=_sweep)

    bench_command = commands.add_parser("bench", help="measure model throughput and RTL elements/cycle and latency",
                                        allow_abbrev=False)
    bench_command.add_argument("--quick", action="store_true", help="fewer rows")
    bench_command.add_argument("--update-readme", action="store_true",
                               help="replace the benchmark block of ./README.md with the new table")
    bench_command.add_argument("--units", type=_items(_choice(bench.BENCH_UNITS), ", ".join(bench.BENCH_UNITS)),
                               default=bench.BENCH_UNITS, metavar="U[,U...]",
                               help="units to measure (default: all); the report and README block are "
                                    "bench-<units>")
    bench_command.set_defaults(handler=_bench)

    soak_command = commands.add_parser("soak", help="endurance: random rows through the regression matrix of every "
                                       "unit on the RTL, under random stalls (mismatches, protocol violations, rows/s)",
                                       allow_abbrev=False)
    soak_command.add_argument("--rows", type=_integer("integers >= 1", low=1), default=soak.SOAK_ROWS,
                              help="random rows per configuration (default: %(default)s)")
    soak_command.add_argument("--configs", type=_items(str, "shell patterns of the configurations' labels"),
                              metavar="PATTERN[,PATTERN...]",
                              help="configurations whose label matches a pattern, e.g. 'softmax/*,dense/*' (default: "
                                   "all; --list prints them)")
    soak_command.add_argument("--simulator", type=_choice(("verilator", "icarus")), default="verilator",
                              metavar="{verilator,icarus}", help="HDL simulator (default: %(default)s)")
    soak_command.add_argument("--engine", type=_choice(soak.ENGINES), default=soak.CPP_ENGINE,
                              metavar="{" + ",".join(soak.ENGINES) + "}",
                              help="testbench: a Verilator C++ one fed by numpy (verilator only), or the cocotb soak "
                                   "test (default: %(default)s)")
    soak_command.add_argument("--seed", type=_integer("integers >= 0", low=0), default=1,
                              help="seed of the rows and of the stall patterns (default: %(default)s)")
    soak_command.add_argument("--jobs", type=_integer("integers >= 1", low=1), default=1,
                              help="configurations simulated at once (default: %(default)s)")
    soak_command.add_argument("-o", "--out-dir", type=Path, default=soak.REPORTS,
                              help="report folder: soak.json, soak.md (default: %(default)s)")
    soak_command.add_argument("--list", action="store_true", help="print the selected configurations and exit")
    soak_command.set_defaults(handler=_soak)

    quantize = commands.add_parser("quantize", help="quantise float weights into a unit's parameter file "
                                   "(attention, stack)", allow_abbrev=False)
    quantize_units = quantize.add_subparsers(dest="unit", required=True)
    attention = quantize_units.add_parser(
        "attention", allow_abbrev=False,
        help="float Q/K/V (and output) projections and calibration sequences to an attention parameter .npz, "
             "calibrated as TinyMind's host calibration does")
    attention.add_argument("--weights", type=Path, required=True,
                           help="float weights .npz: wq, wk, wv [E, H*d], optional bq, bk, bv, wo [H*d, E_out], bo")
    attention.add_argument("--calibration", type=Path, required=True,
                           help="float calibration sequences [T, S, E] (.npy, or an .npz of one array)")
    attention.add_argument("--convention", type=_choice(("tflite", "tinymind")), default="tflite",
                           metavar="{tflite,tinymind}", help="parameter file convention (default: %(default)s)")
    attention.add_argument("--heads", type=_integer("integers >= 1", low=1), default=1,
                           help="heads H, dividing the projections' outputs (default: %(default)s)")
    attention.add_argument("-o", "--out", dest="output", type=Path, required=True, help="parameter .npz to write")
    attention.set_defaults(handler=_quantize_attention)
    stack = quantize_units.add_parser(
        STACK, allow_abbrev=False,
        help="float encoder-stack weights and calibration token sequences to an encoder-stack parameter .npz "
             "(TinyMind's example layout), by TinyMind's calibration or a robust one")
    stack.add_argument("--weights", type=Path, metavar="FILE",
                       help="float weights .npz (int8attn.golden.float_stack: float.emb_table, block{b}.float.*; the "
                            "shared tinymind_encoder_stack.npz is one) (default: the bundled example, "
                            "golden/examples/stack_float.npz)")
    stack.add_argument("--calibration", type=Path, metavar="FILE",
                       help="calibration token ids [T, S]: an .npy, or an .npz holding `tokens` (its first "
                            "config.num_calibration_sequences rows when present) or one array (default: the bundled "
                            "example, golden/examples/stack_calibration.npz)")
    stack.add_argument("--method", type=_choice(STACK_METHODS), default="tinymind",
                       metavar="{" + ",".join(STACK_METHODS) + "}",
                       help="tinymind: the example's own calibration; robust: 1024 more varied sequences and 5%% "
                            "headroom (default: %(default)s)")
    stack.add_argument("-o", "--out", dest="output", type=Path, metavar="FILE",
                       help="parameter .npz to write (default: build/stack/stack_<method>.npz)")
    stack.set_defaults(handler=_quantize_stack)

    plot = commands.add_parser("plot", help="figures of a model against its float reference (stack)",
                               allow_abbrev=False)
    plot_units = plot.add_subparsers(dest="unit", required=True)
    plot_stack = plot_units.add_parser(
        STACK, allow_abbrev=False,
        help="the encoder stack's int8-vs-float parity figure: float and dequantised int8 outputs overlaid, "
             "the per-element absolute error, every element int8 against float")
    plot_stack.add_argument("--params", type=Path, metavar="FILE", required=True,
                            help="encoder-stack parameter .npz written by `int8attn quantize stack`")
    plot_stack.add_argument("--weights", type=Path, metavar="FILE",
                            help="its float weights .npz (default: the bundled example's)")
    plot_stack.add_argument("--tokens", type=Path, metavar="FILE",
                            help="token ids .npy, integers (rows, S) (default: the bundled example's held-out test "
                                 "set, golden/examples/stack_test.npy)")
    plot_stack.add_argument("-o", "--out", dest="output", type=Path, metavar="FILE",
                            default=Path("build/stack/parity.png"),
                            help="figure to write, .png, .pdf or .svg (default: %(default)s)")
    plot_stack.set_defaults(handler=_plot_stack)

    golden_stack = commands.add_parser(
        "golden-stack", allow_abbrev=False,
        help="quantise the bundled encoder-stack example and write its int8 output on the held-out test set as "
             "TinyMind's `make golden` does (.golden listing, raw .bin bytes, .npy, the parameter file)")
    golden_stack.add_argument("--method", type=_choice(STACK_METHODS), default="tinymind",
                              metavar="{" + ",".join(STACK_METHODS) + "}",
                              help="calibration method (default: %(default)s)")
    golden_stack.add_argument("-o", "--out-dir", type=Path, default=Path("build/golden_stack"),
                              help="output folder (default: %(default)s)")
    golden_stack.set_defaults(handler=_golden_stack_files)

    vectors = commands.add_parser("golden-vectors", help="rewrite the committed golden vectors", allow_abbrev=False)
    vectors.add_argument("--out-dir", type=Path, default=VECTORS_DIR,
                         help="folder to write (default: the package's golden/vectors)")
    vectors.set_defaults(handler=_golden_vectors)
    commands.metavar = "{" + ",".join(commands.choices) + "}"
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``int8attn``; returns the exit code. NumPy's floating-point warnings are off: the float models overflow to
    inf and NaN as C's float arithmetic does, and what that leads to is reported as the one-line error."""
    args = build_parser().parse_args(argv)
    try:
        with np.errstate(all="ignore"):
            return args.handler(args)
    except (ConfigError, UsageError) as error:
        _fail(error)


if __name__ == "__main__":
    sys.exit(main())
