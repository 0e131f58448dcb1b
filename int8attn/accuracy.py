"""Accuracy of any softmax configuration against float64 softmax and against the ``tflite`` mode.

Metrics per configuration and row set, over every element of every row:

* ``max_abs_error_lsb`` / ``mean_abs_error_lsb``: ``|q − zp − p / scale|`` in output LSBs, ``p`` the float64 softmax
  of ``β·s·(x − max)`` (β and s as float32, as the models take them) and ``scale`` the output scale (``2^−B``; a
  surrogate's own, e.g. 1/255 for ``base2``);
* ``kl_divergence``: mean over rows of ``Σ p·ln(p / p̃)``, ``p̃`` the quantised probabilities floored at half an
  LSB (so that a probability rounded to zero costs a finite amount) and renormalised to sum to 1;
* ``argmax_agreement``: share of rows whose float argmax also has the largest quantised output;
* ``rank_correlation``: mean over rows of Spearman's ρ between ``p`` and the outputs (average ranks for ties; a row
  whose ``p`` or outputs are all equal counts 1 when both are, else 0), since surrogates are meant to keep the order;
* ``max_sum_error`` / ``mean_sum_error``: ``|Σ p̂ − 1|`` per row;
* ``bit_identical_to_tflite``: share of outputs equal to the ``tflite`` mode's (for ``B ≠ 8`` compared on the
  ``tflite`` grid after rescaling, i.e. ``round(q·2^(8−B))``), only where the configuration has a ``tflite``
  counterpart (β·s as given) on the same grid (not for the surrogates).
"""

import argparse
import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from int8attn.golden import SoftmaxConfig, SoftmaxModel
from int8attn.golden.base2 import nearest_grid_shift
from int8attn.golden.config import SURROGATE_MODES
from int8attn.golden.files import READ_ERRORS, write_atomic
from int8attn.golden.presets import knob_grid
from int8attn.golden.stimuli import MIXED_KINDS, int8_rows
from int8attn.usage import UsageError, output_folder

ROW_SETS = MIXED_KINDS
DEPTH_SWEEP = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256)
WIDTH_SWEEP = (6, 8, 10, 12, 16, 31)


def float_softmax(x: np.ndarray, config: SoftmaxConfig) -> np.ndarray:
    scale = float(np.float32(config.beta)) * float(np.float32(config.input_scale))
    z = (x.astype(np.float64) - x.max(axis=1, keepdims=True)) * scale
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class AccuracyMetrics:
    rows: int
    max_abs_error_lsb: float
    mean_abs_error_lsb: float
    kl_divergence: float
    argmax_agreement: float
    rank_correlation: float
    max_sum_error: float
    mean_sum_error: float
    bit_identical_to_tflite: float | None


def evaluate(config: SoftmaxConfig, x: np.ndarray) -> AccuracyMetrics:
    """The metrics of the module docstring for ``config`` on the int8 rows ``x``."""
    model = SoftmaxModel(config)
    q = model(x).astype(np.int64)
    bits = model.output_bits
    levels = q - model.output_zero_point
    p = float_softmax(x, config)
    error = np.abs(levels - p / model.output_scale)
    floored = np.maximum(levels, 0.5)
    estimate = floored / floored.sum(axis=1, keepdims=True)
    kl = np.where(p > 0, p * np.log(np.where(p > 0, p, 1) / estimate), 0).sum(axis=1)
    row_sums = levels.sum(axis=1) * model.output_scale
    float_argmax = p.argmax(axis=1)
    argmax_ok = levels[np.arange(len(x)), float_argmax] == levels.max(axis=1)
    identical = None
    if config.mode not in SURROGATE_MODES and (config.mode != "tinymind" or config.beta == 1.0):
        reference = SoftmaxModel(tflite_counterpart(config))(x).astype(np.int64) + 128
        on_grid = levels if bits == 8 else np.floor(levels * 2.0 ** (8 - bits) + 0.5).astype(np.int64)
        identical = float(np.mean(np.minimum(on_grid, 255) == reference))
    return AccuracyMetrics(
        rows=len(x),
        max_abs_error_lsb=float(error.max()),
        mean_abs_error_lsb=float(error.mean()),
        kl_divergence=float(kl.mean()),
        argmax_agreement=float(argmax_ok.mean()),
        rank_correlation=float(spearman_rows(p, levels).mean()),
        max_sum_error=float(np.abs(row_sums - 1).max()),
        mean_sum_error=float(np.abs(row_sums - 1).mean()),
        bit_identical_to_tflite=identical,
    )


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 0.. along the last axis of a 2-D array, ties sharing the mean of their ranks."""
    order = np.argsort(values, axis=1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=1)
    positions = np.arange(values.shape[1], dtype=np.float64)
    starts = np.ones(values.shape, dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    first = np.where(starts, positions, 0)
    first_of_group = np.maximum.accumulate(first, axis=1)
    ends = np.ones(values.shape, dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    last = np.where(ends, positions, values.shape[1])
    last_of_group = np.flip(np.minimum.accumulate(np.flip(last, axis=1), axis=1), axis=1)
    ranks = np.empty_like(positions, shape=values.shape)
    np.put_along_axis(ranks, order, (first_of_group + last_of_group) / 2, axis=1)
    return ranks


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's ρ of each row pair of ``a`` and ``b``; 1 where both rows are constant, 0 where one is."""
    ra, rb = average_ranks(a), average_ranks(b)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    norm = np.sqrt((ra * ra).sum(axis=1) * (rb * rb).sum(axis=1))
    both_constant = ((ra == 0).all(axis=1)) & ((rb == 0).all(axis=1))
    return np.where(norm > 0, (ra * rb).sum(axis=1) / np.where(norm > 0, norm, 1), both_constant.astype(float))


def tflite_counterpart(config: SoftmaxConfig) -> SoftmaxConfig:
    """The ``tflite`` configuration with the same row length and quantisation."""
    return SoftmaxConfig(n=config.n, lanes=config.lanes, input_scale=config.input_scale, beta=config.beta,
                         input_zero_point=config.input_zero_point)


def load_rows(path: Path, n: int) -> dict[str, np.ndarray]:
    """User rows: an ``.npy`` array, or every array of an ``.npz``, each int8 of shape ``(rows, n)``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"rows file {path} does not exist")
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                loaded = dict(loaded.items())
    except READ_ERRORS as error:
        raise ValueError(f"{path} is not an .npy or .npz file ({type(error).__name__}: {error})") from None
    arrays = loaded if isinstance(loaded, dict) else {path.stem: loaded}
    for name, array in arrays.items():
        if array.dtype != np.int8 or array.ndim != 2 or array.shape[1] != n or not len(array):
            raise ValueError(f"{path}:{name} must be int8 of shape (rows, {n}), rows ≥ 1; it is {array.dtype} "
                             f"{array.shape}")
    return arrays


def report(configs: dict[str, SoftmaxConfig], row_sets: dict[str, np.ndarray]) -> list[dict]:
    """One record per configuration and row set."""
    records = []
    for label, config in configs.items():
        for set_name, rows in row_sets.items():
            metrics = evaluate(config, rows)
            records.append({"config": label, "row_set": set_name, "parameters": config.as_dict(),
                            **asdict(metrics)})
    return records


def markdown_table(records: list[dict]) -> str:
    header = ("| config | rows | max err (LSB) | mean err (LSB) | KL | argmax | rank ρ | max \\|Σp−1\\| | = tflite |\n"
              "|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in records:
        identical = "–" if r["bit_identical_to_tflite"] is None else f"{100 * r['bit_identical_to_tflite']:.1f}%"
        lines.append(f"| {r['config']} | {r['row_set']} {r['rows']} | {r['max_abs_error_lsb']:.2f} | "
                     f"{r['mean_abs_error_lsb']:.3f} | {r['kl_divergence']:.2e} | "
                     f"{100 * r['argmax_agreement']:.1f}% | {r['rank_correlation']:.3f} | {r['max_sum_error']:.4f} | "
                     f"{identical} |")
    return header + "\n".join(lines) + "\n"


def rom_sweep(base: SoftmaxConfig, rows: np.ndarray) -> list[dict]:
    """Max and mean error over ROM depth × width (other knobs at their defaults)."""
    points = []
    for width in WIDTH_SWEEP:
        for depth in DEPTH_SWEEP:
            config = replace(base, mode="lut", rom_depth=depth, rom_width=width)
            metrics = evaluate(config, rows)
            points.append({"rom_depth": depth, "rom_width": width, "max_abs_error_lsb": metrics.max_abs_error_lsb,
                           "mean_abs_error_lsb": metrics.mean_abs_error_lsb})
    return points


def plot_rom_sweep(points: list[dict], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for width in WIDTH_SWEEP:
        series = [p for p in points if p["rom_width"] == width]
        depths = [p["rom_depth"] for p in series]
        axes[0].plot(depths, [p["max_abs_error_lsb"] for p in series], marker="o", label=f"width {width}")
        axes[1].plot(depths, [p["mean_abs_error_lsb"] for p in series], marker="o", label=f"width {width}")
    for axis, what in zip(axes, ("max", "mean"), strict=True):
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("exp ROM depth (entries)")
        axis.set_ylabel(f"{what} |error| (output LSB)")
        axis.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    figure.suptitle(title)
    write_atomic(path, lambda file: figure.savefig(file, format="png", dpi=110))
    plt.close(figure)


def write_report(base: SoftmaxConfig, out_dir: Path, rows: int = 2000, seed: int = 0,
                 user_rows: dict[str, np.ndarray] | None = None, configs: dict[str, SoftmaxConfig] | None = None,
                 plot: bool = True) -> dict[str, Path]:
    """Run the accuracy report and write ``accuracy.json``, ``accuracy.md`` and ``accuracy_rom.png``.

    ``configs`` defaults to ``base`` in modes ``tflite`` and ``tinymind`` (where β = 1) and the knob grid.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if configs is None:
        configs = {"tflite": tflite_counterpart(base)}
        if float(np.float32(base.beta)) == 1.0:
            configs["tinymind"] = replace(tflite_counterpart(base), mode="tinymind")
        configs.update(knob_grid(tflite_counterpart(base)))
        calibration = np.concatenate([int8_rows(kind, base.n, rows, seed + 1) for kind in ROW_SETS])
        configs.update(surrogates(base, calibration))
    row_sets = {kind: int8_rows(kind, base.n, rows, seed) for kind in ROW_SETS}
    row_sets.update(user_rows or {})
    records = report(configs, row_sets)
    paths = {"json": out_dir / "accuracy.json", "markdown": out_dir / "accuracy.md"}
    document = {"base": tflite_counterpart(base).as_dict(), "rows_per_set": rows, "seed": seed, "results": records}
    if plot:
        points = rom_sweep(tflite_counterpart(base), row_sets["peaked"])
        document["rom_sweep"] = {"row_set": "peaked", "points": points}
        paths["plot"] = out_dir / "accuracy_rom.png"
        plot_rom_sweep(points, paths["plot"], f"softmax n={base.n}, s={base.input_scale}, β={base.beta}: "
                                              "error vs exp ROM depth and width (peaked rows)")
    write_atomic(paths["json"], json.dumps(document, indent=2) + "\n")
    write_atomic(
        paths["markdown"],
        f"# Softmax accuracy (n={base.n}, input_scale={base.input_scale}, beta={base.beta}, {rows} rows per set)\n\n"
        + markdown_table(records))
    return paths


def surrogates(base: SoftmaxConfig, calibration_rows: np.ndarray | None = None) -> dict[str, SoftmaxConfig]:
    """The surrogate modes on ``base``'s row length and β·s: ``hccs`` and ``poly`` on their default knobs and, given
    ``calibration_rows``, with the parameters :func:`int8attn.calibrate.calibrate` fits to them; ``base2`` with ITA's
    chunks and with whole rows, on its own grid: logits read at ``ln 2 / 2^g``, the
    :func:`~int8attn.golden.base2.nearest_grid_shift` nearest to ``base``'s β·s (β = 1); and on whole rows at β·s, its
    distances requantized onto that grid (``rq``), without and with ``g`` fraction bits (``F``)."""
    from int8attn.calibrate import calibrate

    scale = float(np.float32(base.beta)) * float(np.float32(base.input_scale))
    exact = replace(tflite_counterpart(base), beta=1.0, input_scale=scale)
    shift = nearest_grid_shift(scale)
    on_grid = replace(exact, mode="base2", base2_grid_shift=shift, input_scale=math.log(2) / (1 << shift))
    configs = {"hccs": replace(exact, mode="hccs")}
    if calibration_rows is not None:
        fitted = calibrate({"rows": calibration_rows}, "hccs", scale)["heads"][0]
        configs["hccs calibrated"] = replace(exact, mode="hccs", hccs_b=fitted["b"], hccs_s=fitted["s"],
                                             hccs_dmax=fitted["dmax"])
    requantized = replace(exact, mode="base2", base2_grid_shift=shift, base2_chunk=base.n, base2_requantize=True)
    configs |= {f"base2 g{shift}": on_grid, f"base2 g{shift} row": replace(on_grid, base2_chunk=base.n),
                f"base2 rq g{shift} row": requantized,
                f"base2 rq g{shift} F{shift} row": replace(requantized, base2_frac_bits=shift),
                "poly": replace(exact, mode="poly")}
    if calibration_rows is not None:
        fitted = calibrate({"rows": calibration_rows}, "poly", scale)["heads"][0]
        configs["poly calibrated"] = replace(exact, mode="poly", poly_b=fitted["b"], poly_delta=fitted["delta"])
    return configs


def point_metrics(config: SoftmaxConfig, rows: int, seed: int) -> dict:
    """A sweep point's accuracy: the metrics of ``config`` on ``rows`` rows of each row set, as ``accuracy_<set>``."""
    return {f"accuracy_{kind}": asdict(evaluate(config, int8_rows(kind, config.n, rows, seed))) for kind in ROW_SETS}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``int8attn accuracy softmax`` beyond the unit's parameters."""
    parser.add_argument("--rows", type=_integer_at_least(1), default=2000,
                        help="rows per generated row set: uniform, normal, peaked (default: %(default)s)")
    parser.add_argument("--seed", type=_integer_at_least(0), default=0,
                        help="seed of the generated rows (default: %(default)s)")
    parser.add_argument("--rows-file", type=Path, action="append", default=[],
                        help="your own int8 rows (.npy, or every array of an .npz); repeatable")
    parser.add_argument("--grid", action="store_true",
                        help="report tflite, tinymind and the knob grid around this unit, not only the unit")
    parser.add_argument("--no-plot", action="store_true", help="skip the ROM depth/width sweep and its plot")
    parser.add_argument("-o", "--out-dir", type=Path, default=Path("build/reports/accuracy"),
                        help="output folder (default: %(default)s)")
    parser.add_argument("--update-readme", action="store_true", help="replace the accuracy block of ./README.md")


def _integer_at_least(low: int):
    def convert(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer; allowed: integers >= {low}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is out of range; allowed: integers >= {low}")
        return value
    return convert


def command(config: SoftmaxConfig, args: argparse.Namespace) -> int:
    """``int8attn accuracy softmax``: write the report (and the README block), print the table."""
    from int8attn.bench import README, ReadmeError, with_table

    if args.update_readme:
        try:
            with_table(README, "", "accuracy")
        except ReadmeError as error:
            raise UsageError(error) from None
    user_rows = {}
    for path in args.rows_file:
        try:
            user_rows.update(load_rows(path, config.n))
        except ValueError as error:
            raise UsageError(f"{error}; allowed: .npy/.npz of int8 rows, shape (rows, {config.n})") from None
    out_dir = output_folder(args.out_dir)
    configs = None if args.grid else {"this": config}
    paths = write_report(config, out_dir, rows=args.rows, seed=args.seed, user_rows=user_rows,
                         configs=configs, plot=not args.no_plot)
    table = paths["markdown"].read_text()
    print(table)
    for path in paths.values():
        print(f"wrote {path}")
    if args.update_readme:
        write_atomic(README, with_table(README, table.split("\n", 2)[2], "accuracy"))
        print(f"updated the accuracy block of {README}")
    return 0
