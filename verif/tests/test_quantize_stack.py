"""The encoder stack's float model and calibration (``golden/float_stack.py``, ``quantize_stack`` in
``golden/quantize.py``), the bundled example (``golden/stack_example.py``) and their commands: the float model
reproduces TinyMind's ``float.output`` bit for bit, TinyMind's calibration reproduces every integer parameter of the
shared file, the robust calibration beats it on sequences never calibrated on, ``quantize stack`` → ``golden stack``
is ``stack_forward``, ``plot stack`` and ``golden-stack`` write their files, and bad input ends in one line."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run
from tinymind_reference import TINYMIND_STACK, load_encoder_stack

from int8attn.golden.float_stack import FloatStackWeights, float_stack_forward, glibc_expf, load_float_weights
from int8attn.golden.params import ConfigError
from int8attn.golden.quantize import (
    ROBUST_CALIBRATION,
    STACK_METHODS,
    StackCalibration,
    quantize_stack,
    stack_calibration_sequences,
    stack_parity,
)
from int8attn.golden.stack import StackParams, load_stack_params, stack_forward
from int8attn.golden.stack_example import example_float_weights, example_paths, example_tokens

EXAMPLE = example_paths()
NOT_PARAMETERS = ("t.", "float.", "block0.float.", "block1.float.", "error.")
TARGET = {"example": 0.02, "shared": 0.025}
"""Largest relative error (max |int8 − float| / output range) of the robust method on held-out sequences: the
target, 2 %, on the bundled example (1.51 %; 1.2–1.5 % over other seeds of its extra sequences); TinyMind's own
weights sit near 2 % whatever the grids (1.97 %; 1.75–2.24 % over other seeds), the floor of five requantisations in
a row on the residual stream."""


@pytest.fixture(scope="module")
def shared() -> dict[str, np.ndarray]:
    return load_encoder_stack()


@pytest.fixture(scope="module")
def example() -> dict[str, np.ndarray]:
    with np.load(EXAMPLE["weights"]) as archive:
        weights = {key: archive[key] for key in archive.files}
    with np.load(EXAMPLE["calibration"]) as archive:
        calibration = archive["tokens"]
    return {"weights": weights, "calibration": calibration, "test": np.load(EXAMPLE["test"])}


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("int8attn: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# The float model.

def test_float_model_reproduces_tinymind_float_output(shared):
    weights = load_float_weights(TINYMIND_STACK)
    result = float_stack_forward(weights, shared["tokens"])
    assert result["output"].dtype == np.float32
    np.testing.assert_array_equal(result["output"], shared["float.output"])
    np.testing.assert_array_equal(weights.pos_table, shared["float.pos_table"])
    assert result["t.ff1"].shape == (64, 2, 8, 16) and result["t.probs"].shape == (64, 2, 8, 8)
    wide = float_stack_forward(weights, shared["tokens"], dtype=np.float64)["output"]
    assert wide.dtype == np.float64 and 0 < np.abs(wide - shared["float.output"]).max() < 1e-5


def test_glibc_expf_is_not_the_rounded_exponential(shared):
    """glibc's ``expf`` differs from the float32 rounding of ``exp`` on some arguments, and ``float.output`` needs
    it: with the rounded exponential 33 of its elements move by one ulp."""
    x = np.random.default_rng(0).uniform(-20, 0, 200_000).astype(np.float32)
    exact = np.exp(x.astype(np.float64))
    ours, rounded = glibc_expf(x), exact.astype(np.float32)
    differ = ours != rounded
    assert 0 < differ.sum() < 1e-2 * x.size
    assert np.all(np.abs(ours.astype(np.float64) - exact) <= np.spacing(rounded.astype(np.float32)))
    assert glibc_expf(np.array([0.0, -200.0, 100.0], np.float32)).tolist() == [1.0, 0.0, np.inf]
    import int8attn.golden.float_stack as module

    original = module._exp
    try:
        module._exp = lambda values: (np.exp(values.astype(np.float64)).astype(values.dtype))
        weights = FloatStackWeights.from_arrays(shared)
        moved = float_stack_forward(weights, shared["tokens"])["output"] != shared["float.output"]
    finally:
        module._exp = original
    assert moved.sum() == 33


def test_float_weights_round_trip_and_defaults(example):
    weights = FloatStackWeights.from_arrays(example["weights"])
    assert (weights.vocab, weights.seq_len, weights.embed_dim, weights.ffn_dim, weights.num_blocks) == (16, 8, 8, 16, 2)
    again = FloatStackWeights.from_arrays(weights.arrays())
    for key, value in weights.arrays().items():
        np.testing.assert_array_equal(again.arrays()[key], value, err_msg=key)
    no_biases = {key: value for key, value in example["weights"].items() if ".b_" not in key}
    stripped = FloatStackWeights.from_arrays(no_biases)
    assert not stripped.blocks[1].b_attn.any() and stripped.blocks[0].b_ff2.shape == (8,)
    assert FloatStackWeights.from_arrays({**example["weights"], "tokens": np.zeros(3), "meta": np.array("m")})


@pytest.mark.parametrize("change, message", [
    ({"float.emb_table": None}, "float.emb_table is missing"),
    ({"block1.float.w_ff1": None}, "block1.float.w_ff1 is missing"),
    ({"block0.float.w_atn": np.zeros((3, 8, 8), np.float32)}, "block0.float.w_atn is an unknown key"),
    ({"float.pos": np.zeros((8, 8), np.float32)}, "float.pos is an unknown key"),
    ({"config.seq_len": None}, "float.pos_table is missing and so is config.seq_len"),
    ({"config.seq_len": np.int32(0)}, "config.seq_len = 0 is out of range"),
    ({"float.pos_table": np.zeros((8, 7), np.float32)}, "float.pos_table is float32(8, 7)"),
    ({"block0.float.w_attn": np.zeros((3, 8, 7), np.float32)}, "block0.float.w_attn is float32(3, 8, 7)"),
    ({"block0.float.w_attn": np.zeros((3, 8, 8), np.int8)}, "block0.float.w_attn is int8(3, 8, 8)"),
    ({"block1.float.w_ff2": np.zeros((8, 15), np.float32)}, "block1.float.w_ff2 is float32(8, 15)"),
    ({"block0.float.gamma2": np.full(8, np.inf, np.float32)}, "block0.float.gamma2 holds NaN or infinity"),
    ({"block1.float.b_ff1": np.full(16, np.nan)}, "block1.float.b_ff1 holds NaN or infinity"),
    ({"config.ln_eps": np.float32(0)}, "config.ln_eps = 0.0 is out of range"),
    ({"config.vocab": np.int32(17)}, "config.vocab = 17 disagrees with the weights; allowed: 16"),
    ({"block3.float.w_attn": np.zeros((3, 8, 8), np.float32)}, "block2.float.w_attn is missing"),
])
def test_bad_float_weights_raise_one_line(example, change, message):
    values = {key: value for key, value in {**example["weights"], **change}.items() if value is not None}
    with pytest.raises(ConfigError) as error:
        FloatStackWeights.from_arrays(values, "w.npz")
    assert str(error.value).startswith("w.npz: ") and message in str(error.value) and "\n" not in str(error.value)


# TinyMind's calibration.

def test_tinymind_method_reproduces_every_parameter_of_the_shared_file(shared):
    arrays = quantize_stack(shared, shared["tokens"][:int(shared["config.num_calibration_sequences"])])
    expected = {key: value for key, value in shared.items()
                if not key.startswith(NOT_PARAMETERS) and key not in ("tokens", "output", "meta")}
    assert len(expected) == 261 and set(arrays) == set(expected) | {"meta"}
    for key, value in expected.items():
        assert arrays[key].dtype == value.dtype, key
        np.testing.assert_array_equal(arrays[key], value, err_msg=key)
    assert json.loads(str(arrays["meta"]))["method"] == "tinymind"
    params = StackParams.from_arrays(arrays)
    np.testing.assert_array_equal(stack_forward(params, shared["tokens"])["output"], shared["output"])


def test_tinymind_method_has_tinymind_errors(shared):
    """The example's own figures: 0.0299 on its calibration sequences, 0.242 on the others (7.8 % of its output
    range 3.087, which it measures on the calibration sequences)."""
    arrays = quantize_stack(shared, shared["tokens"][:8], method="tinymind")
    calibration, extra = stack_parity(arrays, shared, shared["tokens"][:8]), stack_parity(arrays, shared,
                                                                                          shared["tokens"][8:])
    assert calibration.max_abs_error == float(shared["error.worst_max_abs_calibration_set"])
    assert extra.max_abs_error == float(shared["error.worst_max_abs_extra"])
    assert calibration.output_range == float(shared["error.output_range"])
    assert extra.max_abs_error / calibration.output_range == pytest.approx(0.0785, abs=5e-4)


# The robust calibration.

def test_robust_beats_tinymind_on_held_out_sequences(shared, example):
    """Rows 8–63 of the shared file and the bundled test set were never calibrated on."""
    cases = {"shared": (shared, shared["tokens"][:8], shared["tokens"][8:]),
             "example": (example["weights"], example["calibration"], example["test"])}
    for name, (weights, calibration, held_out) in cases.items():
        errors = {method: stack_parity(quantize_stack(weights, calibration, method=method), weights,
                                       held_out).relative_error for method in STACK_METHODS}
        assert errors["robust"] <= TARGET[name], (name, errors)
        assert errors["robust"] < errors["tinymind"] / 3, (name, errors)
        seen = {row.tobytes() for row in stack_calibration_sequences(
            np.asarray(calibration, np.int64), 16, ROBUST_CALIBRATION)}
        assert not seen & {row.tobytes() for row in np.asarray(held_out, np.int64)}, name


@pytest.mark.parametrize("options", [
    StackCalibration(extra_sequences=64, estimator="percentile", percentile=99.9, headroom=0.1),
    StackCalibration(extra_sequences=64, estimator="mse", whole_tables=True, varied=True, seed=3),
])
def test_other_estimators_build_valid_files(example, options):
    arrays = quantize_stack(example["weights"], example["calibration"], calibration=options)
    assert json.loads(str(arrays["meta"]))["method"] == "custom"
    assert int(arrays["config.num_calibration_sequences"]) == 16 + 64
    assert stack_parity(arrays, example["weights"], example["test"]).relative_error < 0.1


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "best"}, "method='best' is unknown; allowed: tinymind, robust"),
    ({"calibration": "tokens16"}, "calibration tokens 16..16 is out of range; allowed: token ids 0..15"),
    ({"calibration": "tokens7"}, "calibration tokens int64(2, 7) is out of range"),
    ({"calibration": "empty"}, "calibration tokens int64(0, 8) is out of range"),
])
def test_quantize_stack_errors(example, kwargs, message):
    tokens = {"tokens16": np.full((2, 8), 16), "tokens7": np.zeros((2, 7), np.int64),
              "empty": np.zeros((0, 8), np.int64)}.get(kwargs.pop("calibration", None), example["calibration"])
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        quantize_stack(example["weights"], tokens, **kwargs)


@pytest.mark.parametrize("change, name", [
    ({"extra_sequences": -1}, "extra_sequences"), ({"estimator": "kl"}, "estimator"),
    ({"percentile": 50}, "percentile"), ({"headroom": -0.1}, "headroom"), ({"seed": -2}, "seed"),
])
def test_calibration_settings_are_checked(change, name):
    with pytest.raises(ConfigError, match=f"^{name}=.*allowed: "):
        StackCalibration(**change)


def test_quantize_stack_rejects_an_all_zero_weight(example):
    weights = {**example["weights"], "block1.float.w_ff1": np.zeros((16, 8), np.float32)}
    with pytest.raises(ConfigError, match="block1.float.w_ff1 is all zero"):
        quantize_stack(weights, example["calibration"])


# The bundled example.

def test_bundled_example_is_its_generator_output(example):
    for key, value in example_float_weights().items():
        np.testing.assert_array_equal(example["weights"][key], value, err_msg=key)
    assert set(example["weights"]) == set(example_float_weights())
    calibration, test = example_tokens()
    np.testing.assert_array_equal(example["calibration"], calibration)
    np.testing.assert_array_equal(example["test"], test)
    assert example["test"].dtype == np.int32 and example["test"].shape == (64, 8)
    assert sorted(np.unique(example["test"][:16, 0]).tolist()) == list(range(16))


# The commands.

def test_quantize_then_golden_stack_is_stack_forward(example, tmp_path):
    params_path, output_path = tmp_path / "out" / "stack.npz", tmp_path / "y.npy"
    result = run("quantize", "stack", "--method", "robust", "-o", params_path)
    assert result.returncode == 0 and f"wrote {params_path}" in result.stdout, result.stderr
    assert run("golden", "stack", "--params", params_path, "--tokens", EXAMPLE["test"], "--out",
               output_path).returncode == 0
    expected = stack_forward(StackParams.from_arrays(quantize_stack(example["weights"], example["calibration"],
                                                                    method="robust")), example["test"])["output"]
    output = np.load(output_path)
    assert output.dtype == np.int8 and output.shape == (64, 8, 8)
    np.testing.assert_array_equal(output, expected)
    assert [path.name for path in tmp_path.rglob(".*")] == []


def test_commands_reproduce_the_shared_file(shared, tmp_path):
    path = TINYMIND_STACK
    assert run("quantize", "stack", "--weights", path, "--calibration", path, "-o", tmp_path / "p.npz").returncode == 0
    np.save(tmp_path / "tokens.npy", shared["tokens"].astype(np.int32))
    np.save(tmp_path / "one.npy", shared["tokens"][5].astype(np.int16))
    for tokens, expected in (("tokens.npy", shared["output"]), ("one.npy", shared["output"][5])):
        result = run("golden", "stack", "--params", tmp_path / "p.npz", "--tokens", tmp_path / tokens, "--out",
                     tmp_path / "y.npy")
        assert result.returncode == 0, result.stderr
        np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected)
    with np.load(tmp_path / "p.npz") as archive:
        assert int(archive["block1.ff2.requantizer.multiplier"]) == int(shared["block1.ff2.requantizer.multiplier"])


def test_plot_and_golden_stack_write_their_files(example, tmp_path):
    params = tmp_path / "p.npz"
    assert run("quantize", "stack", "-o", params).returncode == 0
    result = run("plot", "stack", "--params", params, "-o", tmp_path / "fig.png")
    assert result.returncode == 0 and "% of the output range" in result.stdout, result.stderr
    assert (tmp_path / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = run("golden-stack", "--method", "tinymind", "-o", tmp_path / "golden")
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "golden"
    codes = np.load(folder / "stack_tinymind.npy")
    assert codes.shape == (64, 8, 8) and codes.dtype == np.int8
    assert (folder / "stack_tinymind.bin").read_bytes() == codes.tobytes()
    lines = (folder / "stack_tinymind.golden").read_text().splitlines()
    assert lines[1] == "# blocks=2 samples=64 cells=64" and len(lines) == 66
    assert [int(value) for value in lines[2].split(":")[1].split()] == codes[0].reshape(-1).tolist()
    np.testing.assert_array_equal(np.load(folder / "stack_test_tokens.npy"), example["test"])
    expected = stack_forward(load_stack_params(folder / "stack_tinymind_params.npz"), example["test"])["output"]
    np.testing.assert_array_equal(codes, expected)
    report = json.loads((folder / "stack_tinymind.json").read_text())
    assert report["relative_error"] > 0.1 and not list(folder.glob(".*"))


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, example) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    weights = example["weights"]
    variants = {
        "nan": {**weights, "block1.float.w_ff2": np.where(np.eye(8, 16, dtype=bool), np.nan, weights[
            "block1.float.w_ff2"]).astype(np.float32)},
        "missing": {key: value for key, value in weights.items() if key != "block0.float.gamma2"},
        "dtype": {**weights, "block0.float.w_attn": weights["block0.float.w_attn"].astype(np.int32)},
        "vocab20": {**weights, "float.emb_table": np.ones((20, 8), np.float32)},
    }
    paths = {}
    for name, arrays in variants.items():
        paths[name] = folder / f"{name}.npz"
        np.savez(paths[name], **arrays)
    arrays = {"tokens16": np.full((3, 8), 16, np.int32), "tokens7": np.zeros((3, 7), np.int32),
              "tokensf": np.zeros((3, 8), np.float32)}
    for name, array in arrays.items():
        paths[name] = folder / f"{name}.npy"
        np.save(paths[name], array)
    paths["cal16"] = folder / "cal16.npz"
    np.savez(paths["cal16"], tokens=np.full((3, 8), 16, np.int32))
    paths["cal_two"] = folder / "cal_two.npz"
    np.savez(paths["cal_two"], a=np.zeros((3, 8), np.int32), b=np.zeros((3, 8), np.int32))
    paths["params"] = folder / "params.npz"
    arrays = quantize_stack(weights, example["calibration"])
    np.savez(paths["params"], **arrays)
    paths["no_grid"] = folder / "no_grid.npz"
    np.savez(paths["no_grid"], **{key: value for key, value in arrays.items() if not key.startswith("block1.scale.o")})
    paths["folder"] = folder
    return paths


@pytest.mark.parametrize("command, needles", [
    ("quantize stack --weights {nan}", ["nan.npz: block1.float.w_ff2 holds NaN or infinity; allowed: finite floats"]),
    ("quantize stack --weights {missing}", ["missing.npz: block0.float.gamma2 is missing"]),
    ("quantize stack --weights {dtype}", ["dtype.npz: block0.float.w_attn is int32(3, 8, 8)"]),
    ("quantize stack --weights {folder}/absent.npz", ["absent.npz: does not exist"]),
    ("quantize stack --calibration {cal16}", ["cal16.npz: calibration tokens 16..16 is out of range", "0..15"]),
    ("quantize stack --calibration {tokens7}", ["tokens7.npy: calibration tokens int32(3, 7)", "(..., 8)"]),
    ("quantize stack --calibration {cal_two}", ["cal_two.npz: holds 2 arrays and no `tokens`"]),
    ("quantize stack --method best", ["--method", "allowed: tinymind, robust"]),
    ("golden stack --params {params} --tokens {tokens16} --out {out}", ["--tokens", "16..16 is out of range",
                                                                        "token ids 0..15"]),
    ("golden stack --params {params} --tokens {tokens7} --out {out}", ["tokens int32(3, 7) is out of range"]),
    ("golden stack --params {params} --tokens {tokensf} --out {out}", ["tokensf.npy is float32[3, 8]"]),
    ("golden stack --params {nan} --tokens {tokens16} --out {out}", ["nan.npz: config.vocab is missing"]),
    ("golden stack --params {params} --tokens {params} --out {out}", ["is an .npz archive"]),
    ("golden stack --params {params} --tokens {tokens16}", ["--out"]),
    ("plot stack --params {params} --weights {vocab20} -o {out}.png", ["(V, S, E, F, B) = (16, 8, 8, 16, 2)",
                                                                      "(20, 8, 8, 16, 2)"]),
    ("plot stack --params {no_grid} -o {out}.png", ["block1.scale.out.scale is missing"]),
    ("plot stack --params {params} -o {out}.jpg", ["unknown image format", ".png"]),
    ("plot stack --params {params} --tokens {tokens16} -o {out}.png", ["16..16 is out of range"]),
])
def test_bad_input_ends_in_one_line(bad_files, tmp_path, command, needles):
    out = tmp_path / "result"
    argv = command.format(**bad_files, out=out).split()
    assert_one_line_error(run(*argv), *needles)
    assert list(tmp_path.iterdir()) == []


def test_output_path_that_is_a_folder_is_refused(bad_files, tmp_path):
    assert_one_line_error(run("golden", "stack", "--params", bad_files["params"], "--tokens", EXAMPLE["test"],
                              "--out", tmp_path), f"output {tmp_path} is a folder")


def test_failed_write_leaves_no_file(monkeypatch, tmp_path):
    def refuse(source, target):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    assert_one_line_error(run("quantize", "stack", "-o", tmp_path / "p.npz"), "cannot write", "Permission denied")
    assert list(tmp_path.iterdir()) == []
