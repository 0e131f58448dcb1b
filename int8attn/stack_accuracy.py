"""``int8attn accuracy stack``: the encoder stack's end-to-end error with each softmax mode in place of TinyMind's.

Every block's ``QAttentionSoftmax1D`` keeps its projections, score grid and output requantizer; only the row softmax
changes (:meth:`~int8attn.golden.stack.TinyMindEncoderBlock.forward`), and P·V's requantizer is rescaled onto the
mode's probability grid, as a graph rebuilt around that softmax would be. The modes (:data:`MODES`), per block on
its score grid ``s``:

* ``tinymind``: TinyMind's own softmax, the reference;
* ``hccs``: aie4ml's defaults; ``hccs calibrated``: ``B``, ``S`` and ``Dmax`` fitted by
  :func:`int8attn.calibrate.calibrate` to the block's score rows on the calibration sequences (from the int8 stack
  with TinyMind's softmax);
* ``base2 rq`` and ``base2 rq F``: whole rows, the distances requantized onto the ``ln 2 / 2^g`` grid nearest to
  ``s`` (:func:`~int8attn.golden.base2.nearest_grid_shift`), without and with ``g`` fraction bits;
* ``poly``: the defaults, where they fit ``s`` (``b`` of 1..255 LSBs); ``poly calibrated``: ``b`` and ``|δ|``
  fitted like HCCS's.

A mode whose defaults do not fit a block's grid is reported as such, with the reason. The error of each mode is
that of ``int8attn plot stack``: against the float32 model on the test sequences, ``max |int8 − float|`` as a share
of the float output range, and the mean. ``changed`` is the share of output codes that differ from the stack with
TinyMind's softmax. With ``--synth FAMILY`` each mode's softmax units are synthesised on their own
(:func:`int8attn.synth.table_report`: one per block, at the stack's ``score_pe`` lanes and target) and the table adds
their resources summed over the blocks and the lowest Fmax: the area the mode puts into the stack. The report,
``stack_softmax.json`` and ``stack_softmax.md`` in the output folder, also gives each block's knobs;
``--update-readme`` puts the table between ``<!-- stack-softmax:start -->`` and ``:end``.
"""

import argparse
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from int8attn.golden.base2 import nearest_grid_shift
from int8attn.golden.config import MODE_KNOBS, SoftmaxConfig
from int8attn.golden.files import write_atomic
from int8attn.golden.params import ConfigError
from int8attn.golden.quantize import StackParity, load_calibration_tokens, quantize_stack, stack_output_grid
from int8attn.golden.stack import stack_forward
from int8attn.golden.stack_unit import RANDOM_METHOD, SEEDED_SHAPE, StackConfig, seeded_example
from int8attn.synth import FAMILIES
from int8attn.usage import UsageError, output_folder

REPORT = "stack_softmax"
AREA = ("luts", "ffs", "dsp", "bram")
README_BLOCK = "stack-softmax"
Fit = Callable[[SoftmaxConfig, np.ndarray], SoftmaxConfig | None]


def _calibrated(mode: str) -> Fit:
    def fit(exact: SoftmaxConfig, rows: np.ndarray) -> SoftmaxConfig:
        from int8attn.calibrate import calibrate

        fitted = calibrate({"rows": rows}, mode, exact.input_scale)["heads"][0]
        knobs = ({"hccs_b": fitted["b"], "hccs_s": fitted["s"], "hccs_dmax": fitted["dmax"]} if mode == "hccs"
                 else {"poly_b": fitted["b"], "poly_delta": fitted["delta"]})
        return replace(exact, mode=mode, **knobs)
    return fit


def _base2(frac_bits: bool) -> Fit:
    def fit(exact: SoftmaxConfig, rows: np.ndarray) -> SoftmaxConfig:
        shift = nearest_grid_shift(exact.input_scale)
        return replace(exact, mode="base2", base2_grid_shift=shift, base2_chunk=exact.n, base2_requantize=True,
                       base2_frac_bits=shift if frac_bits else 0)
    return fit


MODES: dict[str, Fit] = {
    "tinymind": lambda exact, rows: None,
    "hccs": lambda exact, rows: replace(exact, mode="hccs"),
    "hccs calibrated": _calibrated("hccs"),
    "base2 rq": _base2(False),
    "base2 rq F": _base2(True),
    "poly": lambda exact, rows: replace(exact, mode="poly"),
    "poly calibrated": _calibrated("poly"),
}
"""Each mode's softmax of a block, from the block's exact softmax configuration and its calibration score rows
(``None``: TinyMind's own)."""


def block_softmaxes(config: StackConfig, calibration: np.ndarray) -> dict[str, list[SoftmaxConfig | None] | str]:
    """Per mode of :data:`MODES`, one softmax configuration per block, or the reason the mode does not fit."""
    params = config.stack_params
    scores = stack_forward(params, calibration)["t.scores"]
    choices: dict[str, list[SoftmaxConfig | None] | str] = {}
    for label, fit in MODES.items():
        blocks = []
        try:
            for index, block in enumerate(params.blocks):
                exact = replace(block.attention.softmax_model(params.seq_len).config, mode="tflite")
                blocks.append(fit(exact, scores[..., index, :, :].reshape(-1, params.seq_len)))
        except ConfigError as error:
            choices[label] = f"block {index}: {error}"
            continue
        choices[label] = blocks
    return choices


def _knobs(softmax: SoftmaxConfig | None) -> dict:
    if softmax is None:
        return {}
    return {"mode": softmax.mode} | {name: getattr(softmax, name) for name in MODE_KNOBS.get(softmax.mode, ())}


def report(config: StackConfig, float_weights: object, calibration: np.ndarray, tokens: np.ndarray,
           output_grid: object) -> list[dict]:
    """One record per mode of :data:`MODES`: its error on ``tokens`` against ``float_weights``' float32 model
    (module docstring) and each block's knobs, or the reason it does not fit."""
    from int8attn.golden.float_stack import float_stack_forward

    params = config.stack_params
    reference = float_stack_forward(float_weights, tokens)["output"]
    exact = stack_forward(params, tokens)["output"]
    records = []
    for label, choice in block_softmaxes(config, calibration).items():
        if isinstance(choice, str):
            records.append({"mode": label, "fits": False, "reason": choice})
            continue
        output = stack_forward(params, tokens, choice)["output"]
        parity = StackParity(reference=reference, quantized=output, output_grid=output_grid)
        records.append({"mode": label, "fits": True, "relative_error": parity.relative_error,
                        "max_abs_error": parity.max_abs_error, "mean_abs_error": parity.mean_abs_error,
                        "changed": float(np.mean(output != exact)), "blocks": [_knobs(item) for item in choice]})
    return records


def synthesise(config: StackConfig, records: list[dict], family: str, out_dir: Path) -> None:
    """Add to each fitting record the ``area`` of its softmax units on ``family`` (module docstring)."""
    from int8attn.synth import table_report

    params = config.stack_params
    for record in records:
        if not record["fits"]:
            continue
        reports = []
        for index, block in enumerate(params.blocks):
            exact = block.attention.softmax_model(params.seq_len).config
            knobs = record["blocks"][index] or {"mode": exact.mode}
            softmax = replace(exact, lanes=config.score_pe, target=config.target, **knobs)
            folder = out_dir / "synth" / f"{record['mode'].replace(' ', '_')}_block{index}"
            reports.append(table_report(softmax, family, folder))
        if not all(report.get("fits", True) for report in reports):
            record["area"] = {"family": family, "fits": False,
                              "does_not_fit": next(report["does_not_fit"] for report in reports
                                                   if not report.get("fits", True))}
            continue
        record["area"] = {"family": family, "fits": True,
                          **{name: sum(report["resources"][name] for report in reports) for name in AREA},
                          "fmax_mhz": min(report["fmax_mhz"] for report in reports if report.get("fmax_mhz"))
                          if all(report.get("fmax_mhz") for report in reports) else None}


def markdown_table(records: list[dict], sequences: int) -> str:
    area = next((record["area"] for record in records if "area" in record), None)
    header = "| softmax mode | max \\|int8 − float\\| / range | mean \\|int8 − float\\| | outputs changed |"
    rule = "|:---|---:|---:|---:|"
    if area is not None:
        header += f" softmax LUT / FF / DSP / BRAM ({area['family']}) | Fmax (MHz) |"
        rule += "---:|---:|"
    lines = [header, rule]
    for record in records:
        if not record["fits"]:
            lines.append(f"| {record['mode']} | does not fit: {record['reason']} | | |" + " | |" * (area is not None))
            continue
        line = (f"| {record['mode']} | {100 * record['relative_error']:.2f} % | {record['mean_abs_error']:.4f} | "
                f"{100 * record['changed']:.1f} % |")
        if area is not None:
            mine = record["area"]
            if mine["fits"]:
                fmax = "—" if mine["fmax_mhz"] is None else f"{mine['fmax_mhz']:.1f}"
                line += f" {' / '.join(str(mine[name]) for name in AREA)} | {fmax} |"
            else:
                line += f" does not fit: {mine['does_not_fit']} | |"
        lines.append(line)
    return "\n".join(lines) + f"\n\n{sequences} test sequences.\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``int8attn accuracy stack`` beyond the unit's parameters."""
    parser.add_argument("--weights", type=Path,
                        help="float weights .npz the --params file was quantised from (required with --params; "
                             "without it, the seeded example's)")
    parser.add_argument("--calibration", type=Path,
                        help="calibration token ids .npy/.npz for the calibrated modes (default: those of the "
                             "seeded example; with --params, the bundled example's)")
    parser.add_argument("--tokens", type=Path,
                        help="test token ids .npy [rows, S] (default: the bundled example's held-out set, at its "
                             "sizes)")
    parser.add_argument("--synth", choices=FAMILIES, metavar="FAMILY",
                        help=f"also synthesise each mode's softmax units on FAMILY ({', '.join(FAMILIES)})")
    parser.add_argument("-o", "--out-dir", type=Path, default=Path("build/reports/accuracy"),
                        help="output folder (default: %(default)s)")
    parser.add_argument("--update-readme", action="store_true", help="replace the stack-softmax block of ./README.md")


def _inputs(config: StackConfig, args: argparse.Namespace) -> tuple[dict, object, np.ndarray, np.ndarray]:
    """The parameter file's arrays, the float weights, the calibration and the test tokens of the command."""
    from int8attn.golden.attention import load_arrays
    from int8attn.golden.float_stack import FloatStackWeights, load_float_weights
    from int8attn.golden.stack_example import example_paths

    paths = example_paths()
    sizes = {name: getattr(config, name) for name in SEEDED_SHAPE}
    if config.params is None:
        if args.weights is not None:
            raise UsageError("--weights is out of range without --params; allowed: none (the seeded example has "
                             "its own float weights)")
        weights, calibration = seeded_example(config.params_seed, **sizes)
        arrays = quantize_stack(weights, calibration, method=RANDOM_METHOD)
        weights = FloatStackWeights.from_arrays(weights)
    else:
        if args.weights is None:
            raise UsageError("--weights is missing; allowed: the float weights .npz the --params file was quantised "
                             "from")
        arrays = load_arrays(config.params, "an encoder-stack parameter .npz (int8attn quantize stack)")
        weights = load_float_weights(args.weights)
        calibration = None
    if args.calibration is not None or calibration is None:
        calibration = load_calibration_tokens(args.calibration or paths["calibration"])
    if args.tokens is None and sizes != SEEDED_SHAPE:
        raise UsageError(f"--tokens is missing; allowed: test token ids [rows, {config.seq_len}] (the bundled test "
                         f"set has the example's sizes {SEEDED_SHAPE})")
    tokens = load_calibration_tokens(args.tokens or paths["test"])
    if not isinstance(arrays, dict):
        raise UsageError(f"{config.params}: is not an .npz archive; allowed: an encoder-stack parameter .npz")
    return arrays, weights, calibration, tokens


def command(config: StackConfig, args: argparse.Namespace) -> int:
    """``int8attn accuracy stack``: write the report (and the README block), print the table."""
    from int8attn.bench import README, ReadmeError, with_table

    if args.update_readme:
        try:
            with_table(README, "", README_BLOCK)
        except ReadmeError as error:
            raise UsageError(error) from None
    arrays, weights, calibration, tokens = _inputs(config, args)
    records = report(config, weights, calibration, tokens, stack_output_grid(arrays, str(config.params)))
    out_dir = output_folder(args.out_dir)
    if args.synth is not None:
        synthesise(config, records, args.synth, out_dir)
    table = markdown_table(records, len(tokens.reshape(-1, tokens.shape[-1])))
    written = [write_atomic(out_dir / f"{REPORT}.json", (json.dumps(records, indent=1) + "\n").encode()),
               write_atomic(out_dir / f"{REPORT}.md", table.encode())]
    print(table)
    for path in written:
        print(f"wrote {path}")
    if args.update_readme:
        write_atomic(README, with_table(README, table, README_BLOCK).encode())
        print(f"updated {README}")
    return 0
