"""The encoder stack's parity figure and golden byte stream, behind ``int8attn plot stack`` and
``int8attn golden-stack`` (``make plot``, ``make golden-stack``), as TinyMind's example has ``make plot`` and
``make golden``.

* :func:`write_parity_figure`: the int8 stack against its float model on token sequences, TinyMind's
  ``plot.py`` figure (overlay of the float and the dequantised int8 outputs, the per-element absolute error) with a
  third panel of every element, int8 against float.
* :func:`write_golden_stack`: the bundled example (:mod:`int8attn.golden.stack_example`) quantised by one method
  and run on its held-out test set, written as TinyMind's ``--golden`` mode prints its output
  (``stack_<method>.golden``: two ``#`` lines, then ``sample <s>: <S·E int8 codes>`` per sequence), as the raw int8
  byte stream (``stack_<method>.bin``, sequence-major, then token, then feature), as ``.npy`` (``stack_<method>.npy``,
  int8 ``[T, S, E]``), with the parameter file that produced it (``stack_<method>_params.npz``) and the test tokens
  (``stack_test_tokens.npy``, int32 ``[T, S]``).

Every file is written through a temporary name and a rename.
"""

import io
import json
import os
from pathlib import Path

import numpy as np

from int8attn.golden.files import write_atomic
from int8attn.golden.quantize import StackParity, quantize_stack, stack_parity
from int8attn.golden.stack import load_stack_params, stack_forward
from int8attn.golden.stack_example import example_paths, npy_bytes, npz_bytes

OVERLAY_ELEMENTS = 256
"""Elements of the overlay and error panels: the first sequences' outputs, flattened, up to this many."""
FIGURE_FORMATS = ("png", "pdf", "svg")


def parity_figure_bytes(parity: StackParity, title: str, image_format: str = "png") -> bytes:
    """The parity figure of ``parity`` as an image file's bytes (module docstring; matplotlib's Agg canvas, no
    pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    reference = parity.reference.reshape(-1).astype(np.float64)
    dequantized = parity.dequantized.reshape(-1)
    error = parity.abs_error.reshape(-1)
    per_sequence = int(np.prod(parity.reference.shape[-2:]))
    shown = max(per_sequence, min(len(reference), OVERLAY_ELEMENTS) // per_sequence * per_sequence)
    index = np.arange(shown)
    figure = Figure(figsize=(11, 9), layout="constrained")
    FigureCanvasAgg(figure)
    overlay, errors, scatter = figure.subplots(3, 1, height_ratios=(1.2, 1, 1.2))
    overlay.plot(index, reference[:shown], "o-", markersize=3, linewidth=1, label="float32 model")
    overlay.plot(index, dequantized[:shown], "x--", markersize=4, linewidth=1, label="int8 stack, dequantised")
    overlay.set(xlabel=f"output element (first {shown // per_sequence} sequences, token-major)", ylabel="value")
    overlay.legend(loc="upper right")
    errors.bar(index, error[:shown], width=1.0, color="tab:red")
    errors.axhline(parity.max_abs_error, color="black", linestyle=":",
                   label=f"max over all {len(error)} elements {parity.max_abs_error:.4f}")
    errors.axhline(parity.mean_abs_error, color="gray", linestyle="--", label=f"mean {parity.mean_abs_error:.4f}")
    errors.set(xlabel="output element", ylabel="|int8 − float|")
    errors.legend(loc="upper right")
    low, high = float(reference.min()), float(reference.max())
    scatter.plot([low, high], [low, high], color="gray", linewidth=1)
    scatter.plot(reference, dequantized, ".", markersize=2, alpha=0.5)
    scatter.set(xlabel="float32 model", ylabel="int8 stack, dequantised",
                title=f"all {len(reference)} elements of {len(reference) // per_sequence} sequences")
    figure.suptitle(f"{title}: max |int8 − float| {parity.max_abs_error:.4f} = "
                    f"{100 * parity.relative_error:.2f} % of the output range {parity.output_range:.3f}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=image_format, dpi=110)
    return buffer.getvalue()


def write_parity_figure(params_path: str | os.PathLike, weights_path: str | os.PathLike, tokens: np.ndarray,
                        output: str | os.PathLike) -> StackParity:
    """The parity figure of the parameter file against the float weights on ``tokens``, written to ``output``
    (its suffix: ``.png``, ``.pdf`` or ``.svg``); returns the parity. Raises
    :class:`~int8attn.golden.params.ConfigError` on bad files or tokens, :class:`OSError` when it cannot write."""
    from int8attn.golden.attention import load_arrays
    from int8attn.golden.float_stack import load_float_weights

    arrays = load_arrays(params_path, "an encoder-stack parameter .npz (int8attn quantize stack)")
    if not isinstance(arrays, dict):
        from int8attn.golden.params import ConfigError

        raise ConfigError(f"{params_path}: is not an .npz archive; allowed: an encoder-stack parameter .npz")
    parity = stack_parity(arrays, load_float_weights(weights_path), tokens, source=str(params_path))
    output = Path(output)
    image_format = output.suffix.lstrip(".").lower() or "png"
    write_atomic(output, parity_figure_bytes(parity, Path(params_path).name, image_format))
    return parity


def golden_text(output: np.ndarray, header: str) -> str:
    """TinyMind's ``--golden`` listing of int8 ``output`` ``[T, S, E]``: ``# <header>``, ``# blocks=... samples=T
    cells=S·E`` is the caller's ``header`` second line, then one ``sample <s>: <codes>`` line per sequence."""
    rows = output.reshape(output.shape[0], -1)
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"sample {index}: " + " ".join(str(int(value)) for value in row) for index, row in enumerate(rows)]
    return "\n".join(lines) + "\n"


def write_golden_stack(out_dir: str | os.PathLike, method: str = "tinymind") -> list[Path]:
    """Quantise the bundled example with ``method``, run its test set through the int8 stack and write the files of
    the module docstring into ``out_dir`` (which must exist); returns their paths. Raises :class:`OSError` when it
    cannot write."""
    out_dir = Path(out_dir)
    paths = example_paths()
    with np.load(paths["calibration"]) as archive:
        calibration = archive["tokens"]
    with np.load(paths["weights"]) as archive:
        weights = {key: archive[key] for key in archive.files}
    tokens = np.load(paths["test"])
    arrays = quantize_stack(weights, calibration, method=method)
    params_path = write_atomic(out_dir / f"stack_{method}_params.npz", npz_bytes(arrays))
    output = stack_forward(load_stack_params(params_path), tokens)["output"]
    parity = stack_parity(arrays, weights, tokens)
    blocks, (samples, seq_len, embed) = int(arrays["config.num_blocks"]), output.shape
    header = (f"int8attn encoder stack golden output (bundled example, method {method}; "
              f"max |int8 - float| {parity.max_abs_error:.4f} = {100 * parity.relative_error:.2f}% of range)\n"
              f"blocks={blocks} samples={samples} cells={seq_len * embed}")
    written = [params_path,
               write_atomic(out_dir / "stack_test_tokens.npy", npy_bytes(tokens.astype(np.int32))),
               write_atomic(out_dir / f"stack_{method}.npy", npy_bytes(output)),
               write_atomic(out_dir / f"stack_{method}.bin", output.astype(np.int8).tobytes()),
               write_atomic(out_dir / f"stack_{method}.golden", golden_text(output, header).encode()),
               write_atomic(out_dir / f"stack_{method}.json", (json.dumps({
                   "method": method, "tokens": "stack_test_tokens.npy", "params": params_path.name,
                   "output_scale": parity.output_grid.scale, "output_zero_point": parity.output_grid.zero_point,
                   "max_abs_error": parity.max_abs_error, "mean_abs_error": parity.mean_abs_error,
                   "output_range": parity.output_range, "relative_error": parity.relative_error}, indent=1)
                   + "\n").encode())]
    return written
