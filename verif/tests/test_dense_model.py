"""The dense model: TFLite's FULLY_CONNECTED outputs (shared vectors) through ``int8attn golden dense``, TinyMind's
``QDense`` formulas on directed boundary cases, and one-line errors for bad weights files and fold factors."""

import json
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run
from tinymind_reference import int32, requantizer_apply

from int8attn.golden.dense import DenseConfig, DenseModel
from int8attn.golden.params import ConfigError
from int8attn.golden.requant import quantize_multiplier_tinymind

FULLY_CONNECTED = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "tflite_fully_connected_int8"


def fully_connected_cases() -> list:
    if not FULLY_CONNECTED.with_suffix(".json").exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"TFLite FULLY_CONNECTED vectors not found at "
                                                                  f"{FULLY_CONNECTED}.npz (the repo's ../shared)"))]
    cases = json.loads(FULLY_CONNECTED.with_suffix(".json").read_text())["cases"]
    return [pytest.param(case, id=f"case{case['case']}") for case in cases]


def weights_file(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def case_weights(case: dict, vectors: dict, path: Path) -> Path:
    """The weights file of a shared case, in the documented layout (scales as float32, as TFLite stores them)."""
    index = case["case"]
    arrays = {"weight": vectors[f"case{index}_w"], "weight_scale": np.array(case["weight_scale"], dtype=np.float32),
              "weight_zero_point": np.int32(case["weight_zero_point"]),
              "input_scale": np.float32(case["input_scale"]), "input_zero_point": np.int32(case["input_zero_point"]),
              "output_scale": np.float32(case["output_scale"]),
              "output_zero_point": np.int32(case["output_zero_point"]), "activation": np.array(case["activation"])}
    if case["bias"]:
        arrays["bias"] = vectors[f"case{index}_bias"]
    return weights_file(path, **arrays)


@pytest.mark.parametrize("case", fully_connected_cases())
def test_golden_command_reproduces_tflite_fully_connected(case: dict, tmp_path: Path) -> None:
    with np.load(FULLY_CONNECTED.with_suffix(".npz")) as archive:
        vectors = {key: archive[key] for key in archive.files}
    index = case["case"]
    weights = case_weights(case, vectors, tmp_path / "w.npz")
    np.save(tmp_path / "x.npy", vectors[f"case{index}_x"])
    result = run("golden", "dense", "--weights", weights, "--in", tmp_path / "x.npy", "--out", tmp_path / "y.npy")
    assert result.returncode == 0, result.stderr
    outputs = np.load(tmp_path / "y.npy")
    assert outputs.dtype == np.int8
    np.testing.assert_array_equal(outputs, vectors[f"case{index}_y"])
    assert DenseConfig(weights=str(weights)).per_channel == case["per_channel"]


def qdense_forward(weight: np.ndarray, bias: np.ndarray, input_zero_point: int, requantizer: dict,
                   row: np.ndarray) -> list[int]:
    """``QDense::forward``: ``acc = bias[o] + Σ w[o, i]·(x[i] − zp)`` in int32, then ``Requantizer::apply``."""
    outputs = []
    for channel in range(weight.shape[0]):
        acc = int(bias[channel])
        for value, x in zip(weight[channel].tolist(), row.tolist(), strict=True):
            acc = int32(acc + value * (x - input_zero_point))
        outputs.append(requantizer_apply(requantizer, acc))
    return outputs


TINYMIND_CASES = {
    # scales whose ratio is a power of two: every odd accumulator lands on a rounding tie
    "ties": dict(input_scale=0.5, weight_scale=0.25, output_scale=4.0, output_zero_point=3, activation="none"),
    # a large multiplier: most outputs saturate at -128 or 127
    "saturation": dict(input_scale=0.5, weight_scale=0.5, output_scale=0.01, output_zero_point=-5,
                       activation="none"),
    # fused ReLU: qmin = the output zero point
    "relu at the zero point": dict(input_scale=0.05, weight_scale=0.02, output_scale=0.3, output_zero_point=-20,
                                   activation="relu"),
}


@pytest.mark.parametrize("name", list(TINYMIND_CASES))
def test_tinymind_convention_follows_qdense(name: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(len(name))
    quantisation = TINYMIND_CASES[name]
    weight = rng.integers(-128, 128, (6, 10)).astype(np.int8)
    bias = rng.integers(-3000, 3000, 6).astype(np.int32)
    path = weights_file(tmp_path / "w.npz", weight=weight, bias=bias, input_zero_point=np.int32(7),
                        **{key: np.float32(value) if isinstance(value, float) else np.array(value)
                           for key, value in quantisation.items()})
    config = DenseConfig(weights=str(path), convention="tinymind")
    rows = np.concatenate([rng.integers(-128, 128, (200, 10)), np.full((1, 10), 7), np.full((1, 10), -128),
                           np.full((1, 10), 127)]).astype(np.int8)
    real = float(np.float32(quantisation["input_scale"])) * float(np.float32(quantisation["weight_scale"])) / float(
        np.float32(quantisation["output_scale"]))
    multiplier, shift = quantize_multiplier_tinymind(real)
    zero_point = quantisation["output_zero_point"]
    requantizer = {"multiplier": multiplier, "shift": shift, "zero_point": zero_point,
                   "qmin": zero_point if quantisation["activation"] == "relu" else -128, "qmax": 127}
    expected = np.array([qdense_forward(weight, bias, 7, requantizer, row) for row in rows])
    outputs = DenseModel(config)(rows)
    np.testing.assert_array_equal(outputs, expected)
    if name == "ties":
        accumulators = DenseModel(config).accumulators(rows)
        assert np.count_nonzero(accumulators % 2) > 100
    if name == "saturation":
        assert np.count_nonzero(np.abs(outputs.astype(int)) >= 127) > 500
    if name == "relu at the zero point":
        assert outputs.min() == zero_point and np.count_nonzero(outputs == zero_point) > 100


BAD_FILES = {
    "missing key": ({"weight_scale": None}, "lacks key(s) weight_scale"),
    "unknown key": ({"gamma": np.float32(1)}, "unknown key(s) gamma"),
    "weight dtype": ({"weight": np.zeros((4, 8), dtype=np.int16)}, "not int8 [out, in]"),
    "bias shape": ({"bias": np.zeros(5, dtype=np.int32)}, "not int32 [4]"),
    "bias dtype": ({"bias": np.zeros(4, dtype=np.int64)}, "not int32 [4]"),
    "scale <= 0": ({"output_scale": np.float32(0)}, "has output_scale=0.0, not a finite float > 0"),
    "scale not finite": ({"input_scale": np.float32(np.inf)}, "not a finite float > 0"),
    "per-channel scale count": ({"weight_scale": np.ones(3, dtype=np.float32)}, "not finite floats > 0 of shape"),
    "zero point range": ({"input_zero_point": np.int32(200)}, "not an integer in -128..127"),
    "activation": ({"activation": np.array("gelu")}, "not one of none, relu, relu6"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_weights_files_fail_in_one_line(name: str, tmp_path: Path) -> None:
    change, message = BAD_FILES[name]
    arrays = {"weight": np.ones((4, 8), dtype=np.int8), "weight_scale": np.float32(0.01),
              "input_scale": np.float32(0.05), "input_zero_point": np.int32(0), "output_scale": np.float32(0.1),
              "output_zero_point": np.int32(0)} | change
    path = weights_file(tmp_path / "w.npz", **{key: value for key, value in arrays.items() if value is not None})
    result = run("verilog", "dense", "--weights", path, "-o", tmp_path / "out")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("int8attn: error: weights=") and message in result.stderr
    assert "allowed:" in result.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize(("options", "message"), [
    (("--pe", "3"), "pe=3 does not divide out_features=16; allowed: 1, 2, 4, 8, 16"),
    (("--simd", "5", "--in-features", "18"), "simd=5 does not divide in_features=18; allowed: 1, 2, 3, 6, 9, 18"),
    (("--weight-scale", "0.1,0.2"), "weight_scale has 2 values and is out of range; allowed: 1 (per-tensor) or "
                                    "out_features=16"),
    (("--weight-scale", ",".join(["0.1"] * 16), "--convention", "tinymind"), "allowed: one with convention tinymind"),
    (("--weight-zero-point", "3", "--weight-scale", ",".join(["0.1"] * 16)), "allowed: 0 with per-channel"),
    (("--weights", "missing.npz"), "does not exist"),
])
def test_bad_options_fail_in_one_line(options: tuple[str, ...], message: str, tmp_path: Path) -> None:
    result = run("verilog", "dense", *options, "-o", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr and "allowed:" in result.stderr


def test_options_override_the_file_and_shapes_must_agree(tmp_path: Path) -> None:
    path = weights_file(tmp_path / "w.npz", weight=np.ones((4, 8), dtype=np.int8), weight_scale=np.float32(0.01),
                        input_scale=np.float32(0.05), input_zero_point=np.int32(2), output_scale=np.float32(0.1),
                        output_zero_point=np.int32(0), activation=np.array("relu"))
    config = DenseConfig(weights=str(path), input_zero_point=-3, activation="relu6")
    assert (config.tensors.input_zero_point, config.tensors.activation) == (-3, "relu6")
    assert (config.in_features, config.out_features) == (8, 4)
    assert DenseConfig(**config.as_dict()) == config
    with pytest.raises(ConfigError, match="in_features=6 is out of range; allowed: 8, the weights file's"):
        DenseConfig(weights=str(path), in_features=6)


def test_random_weights_are_reproducible_and_spread_the_outputs() -> None:
    config = DenseConfig(in_features=64, out_features=32, weights_seed=5)
    assert DenseConfig(in_features=64, out_features=32, weights_seed=5).tensors.digest == config.tensors.digest
    rows = np.random.default_rng(0).integers(-128, 128, (500, 64)).astype(np.int8)
    outputs = DenseModel(config)(rows).astype(float)
    assert 25 < outputs.std() < 60 and np.mean(np.abs(outputs) == 127) < 0.05
