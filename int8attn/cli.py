"""The ``int8attn`` command: emit Verilog, run the golden model, simulate, benchmark, write golden vectors.

Every user mistake ends the command with one line on stderr, ``int8attn: error: <what>; allowed: <range>``, and exit
code 2.
"""

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import NoReturn

import numpy as np

from int8attn import __version__
from int8attn.golden import ConfigError, SoftmaxConfig, SoftmaxModel
from int8attn.golden.config import (
    ACCUMULATOR_WIDTH_RANGE,
    DIFF_RANGE,
    MAX_LANES,
    MAX_N,
    MAX_NEWTON_STEPS,
    MODES,
    OUTPUT_BITS_RANGE,
    RECIPROCAL_BITS_RANGE,
    RECIPROCAL_METHODS,
    ROM_WIDTH_RANGE,
)
from int8attn.golden.vectors import VECTORS_DIR, write_vectors

PROG = "int8attn"
DEFAULTS = SoftmaxConfig()


class UsageError(Exception):
    """A user mistake: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, with no usage dump."""

    def error(self, message: str) -> NoReturn:
        _fail(message)


def _fail(message: object) -> NoReturn:
    print(f"{PROG}: error: {' '.join(str(message).splitlines())}", file=sys.stderr)
    sys.exit(2)


def _integer(allowed: str, low: int | None = None) -> Callable[[str], int]:
    def convert(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer; allowed: {allowed}") from None
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"{value} is out of range; allowed: {allowed}")
        return value
    return convert


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; allowed: a finite number > 0") from None


def _add_unit_options(parser: argparse.ArgumentParser, lanes: bool = True) -> None:
    unit = parser.add_argument_group("softmax unit")
    unit.add_argument("--n", type=_integer(f"integers 1..{MAX_N}"), default=DEFAULTS.n,
                      help=f"row length, 1..{MAX_N} (default: %(default)s)")
    if lanes:
        unit.add_argument("--lanes", type=_integer(f"integers 1..{MAX_LANES} dividing n"), default=DEFAULTS.lanes,
                          help=f"elements per beat, 1..{MAX_LANES}, dividing n (default: %(default)s)")
    else:
        parser.set_defaults(lanes=1)
    unit.add_argument("--input-scale", type=_number, default=DEFAULTS.input_scale,
                      help="scale of the int8 input, > 0, taken as float32 (default: %(default)s)")
    unit.add_argument("--beta", type=_number, default=DEFAULTS.beta,
                      help="softmax beta, > 0, taken as float32 (default: %(default)s)")
    unit.add_argument("--input-zero-point", type=_integer("integers -128..127"), default=DEFAULTS.input_zero_point,
                      help="zero point of the input, -128..127; it cancels (default: %(default)s)")
    unit.add_argument("--mode", choices=MODES, default=DEFAULTS.mode,
                      help="tflite: bit-exact TFLite; tinymind: bit-exact TinyMind (beta 1); lut: tflite with the "
                           "knobs below (default: %(default)s)")
    knobs = parser.add_argument_group("knobs of --mode lut (their defaults give tflite)")
    for name, (low, high), text in (
        ("rom-depth", (1, DIFF_RANGE), "exp ROM entries kept (default: all that can be non-zero)"),
        ("rom-width", ROM_WIDTH_RANGE, "bits kept of each exponential (default: %(default)s)"),
        ("accumulator-width", ACCUMULATOR_WIDTH_RANGE, "saturating row-sum width (default: never saturates)"),
        ("reciprocal-steps", (0, MAX_NEWTON_STEPS), "Newton-Raphson steps (default: %(default)s)"),
        ("reciprocal-bits", RECIPROCAL_BITS_RANGE, "index bits of the reciprocal table (default: %(default)s)"),
        ("output-bits", OUTPUT_BITS_RANGE, "output width B: scale 2^-B, zero point -2^(B-1) (default: %(default)s)"),
    ):
        knobs.add_argument(f"--{name}", type=_integer(f"integers {low}..{high}"),
                           default=getattr(DEFAULTS, name.replace("-", "_")), help=f"{low}..{high}: {text}")
    knobs.add_argument("--reciprocal", choices=RECIPROCAL_METHODS, default=DEFAULTS.reciprocal,
                       help="Newton-Raphson steps or a table on the sum's leading bits (default: %(default)s)")


def _config(args: argparse.Namespace) -> SoftmaxConfig:
    return SoftmaxConfig(**{item.name: getattr(args, item.name) for item in fields(SoftmaxConfig)})


def _output_folder(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise UsageError(f"output folder {path} is an existing file; allowed: a new folder or a writable folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create output folder {path} ({error.strerror}); allowed: a writable folder") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"output folder {path} is not writable; allowed: a writable folder")
    return path


def _verilog_softmax(args: argparse.Namespace) -> int:
    config = _config(args)
    out_dir = _output_folder(args.out_dir or Path(f"build/softmax_n{config.n}_p{config.lanes}"))
    from int8attn.hdl.emit import emit_softmax

    try:
        result = emit_softmax(config, out_dir)
    except OSError as error:
        raise UsageError(f"cannot write into {out_dir} ({error.strerror}); allowed: a writable folder") from None
    for path in (result.verilog, result.sidecar, result.rom_hex):
        print(f"wrote {path}")
    print(_summary(json.loads(result.sidecar.read_text())))
    return 0


def _pairs(values: dict) -> str:
    return " ".join(f"{key}={value}" for key, value in values.items())


def _summary(sidecar: dict) -> str:
    return (f"{sidecar['top']}: {_pairs(sidecar['parameters'])}\n"
            f"  {sidecar['beats_per_row']} beats/row, {sidecar['elements_per_cycle']} elements/cycle, "
            f"latency {sidecar['latency_cycles']} cycles (last input beat accepted -> first output beat valid)\n"
            f"  quantisation: {_pairs(sidecar['quantisation'])}\n"
            f"  structure: {_pairs(sidecar['structure'])}")


def _load_rows(path: Path, n: int) -> np.ndarray:
    allowed = f"a .npy file of int8 rows, shape (rows, {n}) or ({n},)"
    try:
        rows = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"input {path} does not exist; allowed: {allowed}") from None
    except (OSError, ValueError, EOFError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else "not a .npy array"
        raise UsageError(f"cannot read input {path} ({reason}); allowed: {allowed}") from None
    if not isinstance(rows, np.ndarray):
        rows.close()
        raise UsageError(f"input {path} is an .npz archive, not an .npy array; allowed: {allowed}")
    if rows.dtype != np.int8:
        raise UsageError(f"input {path} has dtype {rows.dtype}; allowed: {allowed}")
    if rows.shape != (n,) and (rows.ndim != 2 or rows.shape[1] != n):
        raise UsageError(f"input {path} has shape {rows.shape}; allowed: {allowed}")
    return rows


def _golden_softmax(args: argparse.Namespace) -> int:
    config = _config(args)
    rows = _load_rows(args.input, config.n)
    model = SoftmaxModel(config)
    probabilities = model(rows.reshape(-1, config.n)).reshape(rows.shape)
    try:
        with open(args.output, "wb") as file:
            np.save(file, probabilities, allow_pickle=False)
    except OSError as error:
        raise UsageError(f"cannot write {args.output} ({error.strerror}); allowed: a writable file path") from None
    count = 1 if rows.ndim == 1 else rows.shape[0]
    print(f"wrote {args.output}: {count} row(s) x {config.n} {probabilities.dtype} probabilities "
          f"(scale 2^-{model.output_bits}, zero point {model.output_zero_point})")
    return 0


def _sim_softmax(args: argparse.Namespace) -> int:
    config = _config(args)
    from int8attn.verif.runner import SimulatorMissing, run_softmax

    options = {name: getattr(args, name) for name in ("rows", "seed") if getattr(args, name) is not None}
    try:
        result = run_softmax(config, args.simulator, waves=args.waves, **options)
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


def _synth_softmax(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.freq_mhz is not None and not 0 < args.freq_mhz < math.inf:
        raise UsageError(f"--freq-mhz {args.freq_mhz} is out of range; allowed: a finite number > 0")
    out_dir = _output_folder(args.out_dir or Path(f"build/synth/softmax_n{config.n}_p{config.lanes}"))
    from int8attn.synth import ToolMissing, synthesize

    try:
        report = synthesize(config, args.family, out_dir, seed=args.seed, freq_mhz=args.freq_mhz)
    except ToolMissing as error:
        raise UsageError(error) from None
    except RuntimeError as error:
        print(f"{PROG}: synthesis failed: {error}", file=sys.stderr)
        return 1
    print(f"{args.family}: {_pairs(config.as_dict())}")
    print(f"  {report['method']}")
    print(f"  resources: {_pairs({k: v for k, v in report['resources'].items() if not isinstance(v, dict)})}")
    print(f"  fmax {report['fmax_mhz']} MHz, {report['elements_per_s']} elements/s, "
          f"latency {report['latency_cycles']} cycles")
    print(f"wrote {out_dir / f'report_{args.family}.json'}")
    return 0


def _accuracy_softmax(args: argparse.Namespace) -> int:
    from int8attn import accuracy
    from int8attn.bench import README, ReadmeError, with_table

    config = _config(args)
    if args.update_readme:
        try:
            with_table(README, "", "accuracy")
        except ReadmeError as error:
            raise UsageError(error) from None
    user_rows = {}
    for path in args.rows_file:
        try:
            user_rows.update(accuracy.load_rows(path, config.n))
        except ValueError as error:
            raise UsageError(f"{error}; allowed: .npy/.npz of int8 rows, shape (rows, {config.n})") from None
    out_dir = _output_folder(args.out_dir)
    configs = None if args.grid else {"this": config}
    paths = accuracy.write_report(config, out_dir, rows=args.rows, seed=args.seed, user_rows=user_rows,
                                  configs=configs, plot=not args.no_plot)
    table = paths["markdown"].read_text()
    print(table)
    for path in paths.values():
        print(f"wrote {path}")
    if args.update_readme:
        README.write_text(with_table(README, table.split("\n", 2)[2], "accuracy"))
        print(f"updated the accuracy block of {README}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from int8attn.sweep import SweepError, run_sweep

    if args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs} is out of range; allowed: integers >= 1")
    try:
        paths = run_sweep(args.file, args.out_dir, jobs=args.jobs, executor=args.executor)
    except SweepError as error:
        raise UsageError(error) from None
    for path in paths.values():
        print(f"wrote {path}")
    return 0


def _synth_table(args: argparse.Namespace) -> int:
    from int8attn.bench import README, ReadmeError, with_table
    from int8attn.synth import ToolMissing, benchmark_table

    try:
        if args.update_readme:
            with_table(README, "", "synth")
        json_path, md_path = benchmark_table(_output_folder(args.out_dir), seed=args.seed)
    except (ToolMissing, ReadmeError) as error:
        raise UsageError(error) from None
    table = md_path.read_text()
    print(table)
    print(f"wrote {json_path}\nwrote {md_path}")
    if args.update_readme:
        README.write_text(with_table(README, table, "synth"))
        print(f"updated the synth block of {README}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from int8attn import bench
    from int8attn.verif.runner import SimulatorMissing

    try:
        return bench.run(quick=args.quick, update_readme=args.update_readme)
    except (bench.ReadmeError, SimulatorMissing) as error:
        raise UsageError(error) from None


def _golden_vectors(args: argparse.Namespace) -> int:
    for path in write_vectors(_output_folder(args.out_dir)):
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``int8attn`` and its subcommands."""
    parser = _Parser(prog=PROG, allow_abbrev=False,
                     description="int8 softmax datapaths: emit Verilog, run the golden model, simulate, benchmark.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def unit_parser(command: str, help_text: str) -> argparse.ArgumentParser:
        group = commands.add_parser(command, help=help_text, allow_abbrev=False)
        units = group.add_subparsers(dest="unit", required=True, metavar="{softmax}")
        return units.add_parser("softmax", help=f"{help_text}: int8 softmax", allow_abbrev=False)

    verilog = unit_parser("verilog", "emit Verilog")
    _add_unit_options(verilog)
    verilog.add_argument("-o", "--out-dir", type=Path,
                         help="output folder (default: build/softmax_n{n}_p{lanes})")
    verilog.set_defaults(handler=_verilog_softmax)

    golden = unit_parser("golden", "run the bit-exact golden model")
    _add_unit_options(golden, lanes=False)
    golden.add_argument("--in", dest="input", type=Path, required=True,
                        help="int8 rows (.npy), shape (rows, n); a 1-D array of length n is one row")
    golden.add_argument("--out", dest="output", type=Path, required=True,
                        help="output .npy: probabilities, same shape as the input (int8; int16 past 8 bits)")
    golden.set_defaults(handler=_golden_softmax)

    sim = unit_parser("sim", "simulate the generated RTL against the golden model")
    _add_unit_options(sim)
    sim.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator",
                     help="HDL simulator (default: %(default)s)")
    sim.add_argument("--rows", type=_integer("integers >= 1", low=1),
                     help="random rows to check, after the directed rows (default: the runner's, 64)")
    sim.add_argument("--seed", type=_integer("integers >= 0", low=0),
                     help="seed of the rows and of the stall patterns (default: the runner's, 1)")
    sim.add_argument("--waves", action="store_true", help="record an FST waveform (rebuilds with tracing)")
    sim.set_defaults(handler=_sim_softmax)

    synth = unit_parser("synth", "synthesise, place and route with the open FPGA tools (YoWASP)")
    _add_unit_options(synth)
    synth.add_argument("--family", choices=("ice40", "ecp5", "xc7"), required=True,
                       help="ice40: iCE40UP5K in a serial harness; ecp5: ECP5-85 out of context; xc7: resources only")
    synth.add_argument("--seed", type=_integer("integers >= 0", low=0), default=1,
                       help="nextpnr seed (default: %(default)s)")
    synth.add_argument("--freq-mhz", type=_number,
                       help="nextpnr timing target in MHz (default: 50 for ice40, 200 for ecp5)")
    synth.add_argument("-o", "--out-dir", type=Path,
                       help="output folder (default: build/synth/softmax_n{n}_p{lanes})")
    synth.set_defaults(handler=_synth_softmax)

    table = commands.add_parser("synth-table", help="the README's resource/Fmax table: default softmax at "
                                "(N, P) = (10, 1), (64, 4), (256, 8) on xc7, ecp5 and ice40", allow_abbrev=False)
    table.add_argument("--seed", type=_integer("integers >= 0", low=0), default=1,
                       help="nextpnr seed (default: %(default)s)")
    table.add_argument("-o", "--out-dir", type=Path, default=Path("build/reports/synth"),
                       help="output folder (default: %(default)s)")
    table.add_argument("--update-readme", action="store_true", help="replace the synth block of ./README.md")
    table.set_defaults(handler=_synth_table)

    accuracy = unit_parser("accuracy", "accuracy against float64 softmax and tflite")
    _add_unit_options(accuracy)
    accuracy.add_argument("--rows", type=_integer("integers >= 1", low=1), default=2000,
                          help="rows per generated row set: uniform, normal, peaked (default: %(default)s)")
    accuracy.add_argument("--seed", type=_integer("integers >= 0", low=0), default=0,
                          help="seed of the generated rows (default: %(default)s)")
    accuracy.add_argument("--rows-file", type=Path, action="append", default=[],
                          help="your own int8 rows (.npy, or every array of an .npz); repeatable")
    accuracy.add_argument("--grid", action="store_true",
                          help="report tflite, tinymind and the knob grid around this unit, not only the unit")
    accuracy.add_argument("--no-plot", action="store_true", help="skip the ROM depth/width sweep and its plot")
    accuracy.add_argument("-o", "--out-dir", type=Path, default=Path("build/reports/accuracy"),
                          help="output folder (default: %(default)s)")
    accuracy.add_argument("--update-readme", action="store_true", help="replace the accuracy block of ./README.md")
    accuracy.set_defaults(handler=_accuracy_softmax)

    sweep = commands.add_parser("sweep", help="run a parameter sweep file (accuracy, RTL check, synthesis)",
                                allow_abbrev=False)
    sweep.add_argument("file", type=Path, help="sweep file (TOML), e.g. sweep.toml")
    sweep.add_argument("--jobs", type=_integer("integers >= 1", low=1), default=2,
                       help="points run in parallel (default: %(default)s)")
    sweep.add_argument("--executor", help="dask://HOST:PORT: run the points on a Dask cluster instead")
    sweep.add_argument("-o", "--out-dir", type=Path, help="output folder (default: build/sweeps/<name>)")
    sweep.set_defaults(handler=_sweep)

    bench = commands.add_parser("bench", help="measure model throughput and RTL elements/cycle and latency",
                                allow_abbrev=False)
    bench.add_argument("--quick", action="store_true", help="fewer rows")
    bench.add_argument("--update-readme", action="store_true",
                       help="replace the benchmark block of ./README.md with the new table")
    bench.set_defaults(handler=_bench)

    vectors = commands.add_parser("golden-vectors", help="rewrite the committed golden vectors", allow_abbrev=False)
    vectors.add_argument("--out-dir", type=Path, default=VECTORS_DIR,
                         help="folder to write (default: the package's golden/vectors)")
    vectors.set_defaults(handler=_golden_vectors)
    commands.metavar = "{" + ",".join(commands.choices) + "}"
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``int8attn``; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ConfigError, UsageError) as error:
        _fail(error)


if __name__ == "__main__":
    sys.exit(main())
