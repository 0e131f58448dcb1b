"""The bundled encoder-stack example: seeded float weights at the sizes of TinyMind's example, its calibration token
sequences and a held-out test set, in ``golden/examples/`` (:data:`EXAMPLE_DIR`), so that ``int8attn quantize stack``,
``int8attn golden stack``, ``int8attn plot stack`` and ``int8attn golden-stack`` run without arguments.

Sizes: vocabulary ``V = 16``, sequence ``S = 8``, embedding ``E = 8``, hidden ``F = 16``, ``B = 2`` blocks.

* ``stack_float.npz`` (:func:`example_float_weights`, the :mod:`int8attn.golden.float_stack` format): the embedding
  table ``N(0, 0.5)``; no ``float.pos_table`` (``config.seq_len = 8``: TinyMind's sinusoidal table);
  per block ``w_attn`` ``N(0, 0.2)``, ``w_ff1`` ``N(0, 0.25)``, ``w_ff2`` ``N(0, 0.2)``, every bias ``N(0, 0.05)``,
  ``γ = 1 + N(0, 0.1)``, ``β = N(0, 0.1)``; ``config.ln_eps = 10⁻³``. Unlike TinyMind's example (zero biases,
  γ = 1, β = 0, attention weights within 0.09..0.18) every parameter of the integer stack is exercised and the
  attention is more peaked (weights up to about 0.9).
* ``stack_calibration.npz``: ``tokens`` int32 ``[16, 8]``, uniformly random (:func:`example_tokens`).
* ``stack_test.npy``: int32 ``[64, 8]``, the held-out test set: the 16 constant sequences, then 48 uniformly random
  ones, none of them a calibration sequence nor one of the sequences the ``robust`` method adds
  (:data:`~int8attn.golden.quantize.ROBUST_CALIBRATION`).

Everything is drawn from ``numpy.random.default_rng(SEED)`` in a fixed order; :func:`write_example` rewrites the three
files (``python -m int8attn.golden.stack_example``), byte for byte the same on a rerun.
"""

import io
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

from int8attn.golden.files import write_atomic

EXAMPLE_DIR = Path(__file__).resolve().parent / "examples"
FLOAT_WEIGHTS = "stack_float.npz"
CALIBRATION = "stack_calibration.npz"
TEST_TOKENS = "stack_test.npy"
SEED = 2026
VOCAB, SEQ_LEN, EMBED, FFN, BLOCKS = 16, 8, 8, 16, 2
CALIBRATION_SEQUENCES = 16
RANDOM_TEST_SEQUENCES = 48
LN_EPS = 1e-3
SIGMAS = {"emb_table": 0.5, "w_attn": 0.2, "w_ff1": 0.25, "w_ff2": 0.2, "bias": 0.05, "gamma": 0.1, "beta": 0.1}
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def example_float_weights(seed: int = SEED, *, vocab: int = VOCAB, seq_len: int = SEQ_LEN, embed: int = EMBED,
                          ffn: int = FFN, blocks: int = BLOCKS) -> dict[str, np.ndarray]:
    """The example's float-weights file content (module docstring), float32 arrays and the two config scalars; other
    sizes draw the same distributions in the same order."""
    rng = np.random.default_rng(seed)

    def normal(sigma: float, *shape: int) -> np.ndarray:
        return rng.normal(0.0, sigma, shape).astype(np.float32)

    content = {"config.seq_len": np.int32(seq_len), "config.ln_eps": np.float32(LN_EPS),
               "float.emb_table": normal(SIGMAS["emb_table"], vocab, embed)}
    for block in range(blocks):
        prefix = f"block{block}.float."
        content |= {prefix + "w_attn": normal(SIGMAS["w_attn"], 3, embed, embed),
                    prefix + "b_attn": normal(SIGMAS["bias"], 3, embed),
                    prefix + "gamma1": 1 + normal(SIGMAS["gamma"], embed),
                    prefix + "beta1": normal(SIGMAS["beta"], embed),
                    prefix + "w_ff1": normal(SIGMAS["w_ff1"], ffn, embed),
                    prefix + "b_ff1": normal(SIGMAS["bias"], ffn),
                    prefix + "w_ff2": normal(SIGMAS["w_ff2"], embed, ffn),
                    prefix + "b_ff2": normal(SIGMAS["bias"], embed),
                    prefix + "gamma2": 1 + normal(SIGMAS["gamma"], embed),
                    prefix + "beta2": normal(SIGMAS["beta"], embed)}
    return content


def calibration_tokens(rng: np.random.Generator, vocab: int = VOCAB, seq_len: int = SEQ_LEN) -> np.ndarray:
    """The example's calibration sequences, int32 ``[16, seq_len]`` uniformly random ids, drawn from ``rng``."""
    return rng.integers(0, vocab, (CALIBRATION_SEQUENCES, seq_len)).astype(np.int32)


def example_tokens(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """``(calibration, test)`` token sequences, int32 ``[16, 8]`` and ``[64, 8]`` (module docstring)."""
    from int8attn.golden.quantize import ROBUST_CALIBRATION, stack_calibration_sequences

    rng = np.random.default_rng([seed, 1])
    calibration = calibration_tokens(rng)
    seen = {row.tobytes() for row in stack_calibration_sequences(calibration, VOCAB, ROBUST_CALIBRATION).astype(
        np.int32)}
    test = [np.full(SEQ_LEN, token, dtype=np.int32) for token in range(VOCAB)]
    while len(test) < VOCAB + RANDOM_TEST_SEQUENCES:
        row = rng.integers(0, VOCAB, SEQ_LEN).astype(np.int32)
        if row.tobytes() not in seen:
            seen.add(row.tobytes())
            test.append(row)
    return calibration, np.stack(test)


def example_paths(directory: str | os.PathLike = EXAMPLE_DIR) -> dict[str, Path]:
    """The three files under ``directory``: ``weights``, ``calibration`` and ``test``."""
    directory = Path(directory)
    return {"weights": directory / FLOAT_WEIGHTS, "calibration": directory / CALIBRATION,
            "test": directory / TEST_TOKENS}


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An ``.npz`` archive of ``arrays`` (in their order) with fixed zip dates, so equal arrays give equal bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE), member.getvalue(),
                             compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    """An ``.npy`` file of ``array``."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def write_example(directory: str | os.PathLike = EXAMPLE_DIR, seed: int = SEED) -> dict[str, Path]:
    """Write the example's three files into ``directory`` (created if needed) and return their paths."""
    paths = example_paths(directory)
    Path(directory).mkdir(parents=True, exist_ok=True)
    calibration, test = example_tokens(seed)
    write_atomic(paths["weights"], npz_bytes(example_float_weights(seed)))
    write_atomic(paths["calibration"], npz_bytes({"tokens": calibration}))
    write_atomic(paths["test"], npy_bytes(test))
    return paths


if __name__ == "__main__":
    for written in write_example(*sys.argv[1:2]).values():
        print(f"wrote {written}")
