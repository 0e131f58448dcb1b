"""Committed golden vectors: seeded int8 rows and the model's outputs for the regression configurations.

:data:`CASES` holds the RTL regression configurations of ``verif/tests/test_softmax_rtl.py``, the default unit, a
unit whose exp ROM is cut short (β·s = 1: 16 entries), one ``tinymind`` unit and two ``lut`` units.

``int8attn golden-vectors`` (``make golden``) rewrites ``golden/vectors/softmax.npz`` and its index
``golden/vectors/softmax.json``. The archive holds ``case{i}_x`` (int8, rows × n) and ``case{i}_y`` (rows × n; int8,
or int16 past 8 output bits), as ``shared/vectors`` does; the index lists each case's :class:`SoftmaxConfig`, row
count, seed and output quantisation. A rerun on the same machine rewrites the same bytes.
"""

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from int8attn.golden.config import SoftmaxConfig
from int8attn.golden.files import write_atomic
from int8attn.golden.softmax import SoftmaxModel
from int8attn.golden.stimuli import directed_int8_rows, int8_rows

VECTORS_DIR = Path(__file__).resolve().parent / "vectors"
ARCHIVE = "softmax.npz"
INDEX = "softmax.json"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class VectorCase:
    """One configuration of the committed vectors and how its rows are drawn."""

    config: SoftmaxConfig
    rows: int
    seed: int


CASES = (
    VectorCase(SoftmaxConfig(n=1, lanes=1, input_scale=1 / 16), rows=256, seed=1),
    VectorCase(SoftmaxConfig(n=8, lanes=1, input_scale=1 / 16, beta=0.5, input_zero_point=-128), rows=256, seed=2),
    VectorCase(SoftmaxConfig(n=10, lanes=1, input_zero_point=127), rows=256, seed=3),
    VectorCase(SoftmaxConfig(n=10, lanes=2, beta=0.5, input_zero_point=5), rows=256, seed=4),
    VectorCase(SoftmaxConfig(n=64, lanes=4, input_scale=0.25), rows=256, seed=5),
    VectorCase(SoftmaxConfig(n=256, lanes=8, input_scale=0.25, beta=0.5, input_zero_point=-128), rows=256, seed=6),
    VectorCase(SoftmaxConfig(n=1024, lanes=4, input_scale=1 / 16, input_zero_point=127), rows=96, seed=7),
    VectorCase(SoftmaxConfig(), rows=256, seed=8),
    VectorCase(SoftmaxConfig(n=16, lanes=16, input_scale=1.0), rows=256, seed=9),
    VectorCase(SoftmaxConfig(n=64, lanes=4, input_scale=0.1, mode="tinymind"), rows=256, seed=10),
    VectorCase(SoftmaxConfig(n=32, lanes=4, mode="lut", rom_depth=64, rom_width=16, accumulator_width=24,
                             reciprocal="lut", reciprocal_bits=6, output_bits=12), rows=256, seed=11),
    VectorCase(SoftmaxConfig(n=32, lanes=2, mode="lut", rom_width=12, reciprocal_steps=1, output_bits=6),
               rows=256, seed=12),
)


@dataclass(frozen=True)
class Vectors:
    """Rows ``x`` and the model's outputs ``y`` for one configuration."""

    config: SoftmaxConfig
    x: np.ndarray
    y: np.ndarray


def make_rows(n: int, rows: int, seed: int) -> np.ndarray:
    """Directed rows, then ``uniform``, ``normal`` and ``narrow`` rows (:mod:`int8attn.golden.stimuli`).

    Narrow rows make the widest sums: with ``n ≥ 512`` their Q12.19 sum passes 512, the range TFLite cannot hold.
    """
    rng = np.random.default_rng(seed)
    directed = [row for _, row in directed_int8_rows(n, rng)][:rows]
    drawn = rows - len(directed)
    counts = {"uniform": drawn // 3, "normal": drawn // 3, "narrow": drawn - 2 * (drawn // 3)}
    return np.concatenate([np.stack(directed)] + [int8_rows(kind, n, count, rng) for kind, count in counts.items()])


def write_vectors(directory: Path = VECTORS_DIR, cases: tuple[VectorCase, ...] = CASES) -> tuple[Path, Path]:
    """Draw each case's rows, run the model and write the archive and its index into ``directory``.

    Returns
    -------
    tuple of Path
        The archive and the index.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    archive, index = directory / ARCHIVE, directory / INDEX
    entries = []
    content = io.BytesIO()
    with zipfile.ZipFile(content, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i, case in enumerate(cases):
            model = SoftmaxModel(case.config)
            x = make_rows(case.config.n, case.rows, case.seed)
            for name, array in ((f"case{i}_x", x), (f"case{i}_y", model(x))):
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, array, allow_pickle=False)
                zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE), buffer.getvalue(),
                            compress_type=zipfile.ZIP_DEFLATED)
            entries.append({"case": i, "config": case.config.as_dict(), "rows": case.rows, "seed": case.seed,
                            "output_scale": 2.0 ** -model.output_bits, "output_zero_point": model.output_zero_point})
    write_atomic(archive, content.getvalue())
    document = {"generator": "int8attn golden-vectors", "model": "int8attn.golden.SoftmaxModel", "archive": ARCHIVE,
                "cases": entries}
    write_atomic(index, json.dumps(document, indent=1) + "\n")
    return archive, index


def load_vectors(directory: Path = VECTORS_DIR) -> list[Vectors]:
    """Read the committed vectors back, one :class:`Vectors` per case of the index."""
    directory = Path(directory)
    document = json.loads((directory / INDEX).read_text())
    with np.load(directory / document["archive"], allow_pickle=False) as archive:
        return [Vectors(SoftmaxConfig(**case["config"]), archive[f"case{case['case']}_x"],
                        archive[f"case{case['case']}_y"]) for case in document["cases"]]
