"""The embedding unit on the command line: every bad parameter, parameter file or token is one line naming it, exit
code 2; ``golden embedding`` reproduces TinyMind's ``t.emb`` and ``t.x0`` from the shared encoder-stack file (skipped
without ``../shared``); the tables and the random parameters."""

from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Fragment
from cli_runner import run
from tinymind_reference import TINYMIND_STACK, load_encoder_stack

from int8attn.golden.add import TinyMindAdd
from int8attn.golden.attention import Grid
from int8attn.golden.embedding_unit import EmbeddingConfig, EmbeddingModel
from int8attn.hdl.embedding import Embedding, table_words


@pytest.fixture(scope="module")
def stack() -> dict[str, np.ndarray]:
    return load_encoder_stack()


def write(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def one_line_error(result, *names: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("int8attn: error: ")
    assert all(name in result.stderr for name in names) and "allowed" in result.stderr, result.stderr


BAD = {
    "lanes not dividing embed_dim": (["--embed-dim", "6", "--lanes", "4"], ("lanes=4 does not divide embed_dim=6",)),
    "seq_len beyond 4096": (["--seq-len", "4097"], ("seq_len",)),
    "vocab 0": (["--vocab", "0"], ("vocab",)),
    "missing file": (["--params", "missing.npz"], ("missing.npz", "does not exist")),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_parameter_is_one_line(name: str, tmp_path: Path) -> None:
    options, names = BAD[name]
    result = run("verilog", "embedding", *options, "-o", tmp_path / "out", cwd=tmp_path)
    one_line_error(result, *names)
    assert not (tmp_path / "out").exists()


def bad_files(folder: Path) -> dict[str, tuple[Path, list[str], tuple[str, ...]]]:
    table = np.zeros((10, 8), dtype=np.int8)
    adder = TinyMindAdd.from_scales(Grid(0.05, 3), Grid(0.01, -1), Grid(0.06, 0)).arrays("pos.add")
    return {
        "no emb.table": (write(folder / "a.npz", other=table), [], ("emb.table", "is missing")),
        "emb.table int16": (write(folder / "b.npz", **{"emb.table": table.astype(np.int16)}), [],
                            ("emb.table", "int16")),
        "unknown emb key": (write(folder / "c.npz", **{"emb.table": table, "emb.tabel": table}), [],
                            ("emb.tabel", "unknown key")),
        "positional without pos.table": (write(folder / "d.npz", **{"emb.table": table}), ["--positional"],
                                         ("pos.table", "is missing")),
        "pos.table of another E": (write(folder / "e.npz", **{"emb.table": table, "pos.table": table[:, :4]},
                                         **adder), ["--positional"], ("pos.table", "(S, E) = (S, 8)")),
        "vocab other than the file's": (write(folder / "f.npz", **{"emb.table": table}), ["--vocab", "12"],
                                        ("vocab=12", "10, the parameter file's")),
        "seq_len other than pos.table's": (write(folder / "g.npz", **{"emb.table": table, "pos.table": table},
                                                 **adder), ["--positional", "--seq-len", "8"],
                                           ("seq_len=8", "10, the parameter file's")),
        "a QAdd key out of range": (write(folder / "h.npz", **{"emb.table": table, "pos.table": table},
                                          **adder | {"pos.add.left_shift": np.int32(40)}), ["--positional"],
                                    ("pos.add.", "left_shift")),
    }


def test_bad_parameter_files_are_one_line(tmp_path: Path) -> None:
    for name, (path, options, names) in bad_files(tmp_path).items():
        result = run("verilog", "embedding", "--params", path, *options, "-o", tmp_path / "out")
        one_line_error(result, str(path), *names)
        assert not (tmp_path / "out").exists(), name


@pytest.mark.parametrize(("positional", "tensor"), [(False, "t.emb"), (True, "t.x0")])
def test_golden_command_reproduces_tinymind(positional: bool, tensor: str, stack: dict, tmp_path: Path) -> None:
    np.save(tmp_path / "tokens.npy", stack["tokens"])
    result = run("golden", "embedding", "--params", TINYMIND_STACK, *(["--positional"] if positional else []),
                 "--in", tmp_path / "tokens.npy", "--out", tmp_path / "x.npy")
    assert result.returncode == 0, result.stderr
    outputs = np.load(tmp_path / "x.npy")
    assert outputs.dtype == np.int8 and outputs.shape == (64, 8, 8)
    np.testing.assert_array_equal(outputs, stack[tensor])


@pytest.mark.parametrize(("tokens", "names"), [
    (np.array([[0, 1, 2, 3, 4, 5, 6, 16]], dtype=np.int32), ("tokens 0..16", "token ids 0..15")),
    (np.array([[0, 1, 2, -1, 4, 5, 6, 7]], dtype=np.int32), ("tokens -1..7", "token ids 0..15")),
    (np.zeros((2, 8), dtype=np.int64), ("int64", "int32")),
    (np.zeros((2, 7), dtype=np.int32), ("(2, 7)",)),
])
def test_bad_tokens_are_one_line(tokens: np.ndarray, names: tuple[str, ...], tmp_path: Path) -> None:
    np.save(tmp_path / "tokens.npy", tokens)
    result = run("golden", "embedding", "--positional", "--in", tmp_path / "tokens.npy", "--out", tmp_path / "x.npy")
    one_line_error(result, *names)
    assert not (tmp_path / "x.npy").exists()
    one_line_error(run("sim", "embedding", "--positional", "--in", tmp_path / "tokens.npy"), *names)


def test_random_tables_are_reproducible_and_consistent() -> None:
    config = EmbeddingConfig(vocab=20, embed_dim=6, seq_len=5, positional=True, params_seed=9, lanes=3)
    again = EmbeddingConfig(**config.as_dict())
    assert again == config
    np.testing.assert_array_equal(again.layers.embedding.table, config.layers.embedding.table)
    tokens = np.random.default_rng(1).integers(0, 20, (30, 5))
    outputs = EmbeddingModel(config)(tokens)
    assert outputs.shape == (30, 30) and len(np.unique(outputs)) > 50
    other = EmbeddingModel(EmbeddingConfig(vocab=20, embed_dim=6, seq_len=5, positional=True, lanes=3))(tokens)
    assert not np.array_equal(outputs, other)


def test_rom_words_and_table_file() -> None:
    config = EmbeddingConfig(vocab=3, embed_dim=4, lanes=2, seq_len=2)
    table = config.layers.embedding.table
    words = table_words(table, 2)
    assert words == [(int(table[r, 2 * b]) & 0xFF) | (int(table[r, 2 * b + 1]) & 0xFF) << 8
                     for r in range(3) for b in range(2)]
    dut = Embedding(config)
    Fragment.get(dut, None)
    artefacts = dut.artefacts()
    assert artefacts == {"embedding_table.hex": "".join(f"{word:04x}\n" for word in words)}
