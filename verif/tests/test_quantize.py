"""``quantize_attention`` against TinyMind's own calibration: the example's integer parameters reproduced from its
float model and calibration sequences; the calibration rules transcribed here from ``qcalibration.hpp`` and the
example; the quantised model against the float forward pass; one-line errors on bad input."""

import math

import numpy as np
import pytest
from tinymind_reference import load_encoder_stack

from int8attn.golden.attention import AttentionParams, attention, load_attention_params
from int8attn.golden.params import ConfigError
from int8attn.golden.quantize import float_attention, quantize_attention, quantize_attention_files
from int8attn.golden.requant import quantize_multiplier_tinymind

BLOCKS = (0, 1)
F32 = np.float32
HEADS, HEAD_DIM, EMBED, SEQ, OUT = 4, 4, 16, 8, 12


@pytest.fixture(scope="module")
def stack() -> dict[str, np.ndarray]:
    return load_encoder_stack()


# The example's float model (transformer_encoder_stack_softmax_int8.cpp), float32 operation for operation.

def float_layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: np.float32) -> np.ndarray:
    """``floatLayerNorm``: mean and variance summed in order, ``gamma·(x − m)·inv + beta``."""
    width = x.shape[-1]
    mean = np.zeros(x.shape[:-1], dtype=F32)
    for index in range(width):
        mean = mean + x[..., index]
    mean = mean / F32(width)
    variance = np.zeros(x.shape[:-1], dtype=F32)
    for index in range(width):
        deviation = x[..., index] - mean
        variance = variance + deviation * deviation
    inverse = F32(1) / np.sqrt(variance / F32(width) + eps)
    return gamma * (x - mean[..., None]) * inverse[..., None] + beta


def float_dense(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``floatDense`` with zero bias: ``a = 0; a += w[o, i]·x[i]`` in order; ``weight`` ``[out, in]``."""
    acc = np.zeros((*x.shape[:-1], weight.shape[0]), dtype=F32)
    for index in range(weight.shape[1]):
        acc = acc + weight[:, index] * x[..., index, None]
    return acc


def attention_weights(stack: dict[str, np.ndarray], block: int) -> dict[str, np.ndarray]:
    w_attn = stack[f"block{block}.float.w_attn"]
    return {"wq": w_attn[0], "wk": w_attn[1], "wv": w_attn[2]}


def example_calibration(stack: dict[str, np.ndarray], block: int) -> np.ndarray:
    """The float LN1 outputs of block ``block`` on the example's calibration sequences (``floatBlock``)."""
    eps = F32(stack["config.ln_eps"])
    tokens = stack["tokens"][:int(stack["config.num_calibration_sequences"])]
    x = stack["float.emb_table"][tokens] + stack["float.pos_table"]
    for index in range(block + 1):
        prefix = f"block{index}.float."
        ln1 = float_layer_norm(x, stack[prefix + "gamma1"], stack[prefix + "beta1"], eps)
        if index == block:
            return ln1
        skip = float_attention(attention_weights(stack, index), ln1, 1)["attn"] + x
        ln2 = float_layer_norm(skip, stack[prefix + "gamma2"], stack[prefix + "beta2"], eps)
        hidden = np.maximum(float_dense(ln2, stack[prefix + "w_ff1"]), F32(0))
        x = skip + float_dense(hidden, stack[prefix + "w_ff2"])
    raise AssertionError("unreachable")


@pytest.mark.parametrize("block", BLOCKS)
def test_tinymind_quantization_reproduces_the_example(stack, block):
    arrays = quantize_attention(attention_weights(stack, block), example_calibration(stack, block),
                                convention="tinymind", heads=1)
    assert str(arrays["convention"]) == "tinymind" and int(arrays["heads"]) == 1
    for key, value in arrays.items():
        if key.startswith("head0."):
            name = key.removeprefix("head0.")
            expected = stack[f"block{block}.scale.score" if name == "score_scale" else f"block{block}.attn.{name}"]
            np.testing.assert_array_equal(value, expected, err_msg=key)
    assert {key for key in arrays if key.startswith("head0.")} == {
        "head0." + key.removeprefix(f"block{block}.attn.") for key in stack if key.startswith(f"block{block}.attn.")
        and not key.endswith(("attn_zero_point", "attn_qmin", "attn_qmax", "softmax_exp_lut"))} | {"head0.score_scale"}


def test_quantized_example_runs_as_tinymind(stack, tmp_path):
    """Weights and calibration file in, parameter file out: the int8 model is TinyMind's on all 64 sequences."""
    np.savez(tmp_path / "float.npz", **attention_weights(stack, 0))
    np.save(tmp_path / "calibration.npy", example_calibration(stack, 0))
    arrays = quantize_attention_files(tmp_path / "float.npz", tmp_path / "calibration.npy", convention="tinymind",
                                      heads=1)
    np.savez(tmp_path / "params.npz", **arrays)
    result = attention(load_attention_params(tmp_path / "params.npz"), stack["t.ln1"][:, 0])
    for key in ("q", "k", "v", "attn"):
        np.testing.assert_array_equal(result[key], stack[f"t.{key}"][:, 0], err_msg=key)
    np.testing.assert_array_equal(result["probs"][:, 0], stack["t.probs"][:, 0])


# Multi-head layers from random float weights.

@pytest.fixture(scope="module")
def layer() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(4)
    width = HEADS * HEAD_DIM
    shapes = {"wq": (EMBED, width), "wk": (EMBED, width), "wv": (EMBED, width), "bq": (width,), "bk": (width,),
              "bv": (width,), "wo": (width, OUT), "bo": (OUT,)}
    weights = {key: rng.normal(0, 0.3 if key[0] == "w" else 0.1, shape).astype(F32) for key, shape in shapes.items()}
    return {"weights": weights, "calibration": rng.normal(0.3, 1, (24, SEQ, EMBED)).astype(F32)}


def affine_asymmetric(values: np.ndarray) -> tuple[float, int]:
    """``computeAffineParamsAsymmetric(min, max, −128, 127)``."""
    low, high = min(F32(values.min()), F32(0)), max(F32(values.max()), F32(0))
    scale = F32(high - low) / F32(255)
    zero_point = -128 - float(low) / float(scale)
    rounded = math.floor(abs(zero_point) + 0.5) * (1 if zero_point >= 0 else -1)
    return float(scale), min(max(rounded, -128), 127)


def sym_scale(values: np.ndarray) -> float:
    """The example's ``symScale`` of the tensor's absolute maximum."""
    absmax = F32(np.abs(values).max())
    return float((absmax if absmax > F32(1e-6) else F32(1e-6)) / F32(127))


def weight_levels(weight: np.ndarray) -> tuple[np.ndarray, float]:
    """``quantizeSymToI8`` with ``absmaxBuf / 127``."""
    scale = F32(np.abs(weight).max()) / F32(127)
    ratio = weight.astype(np.float64) / np.float64(scale)
    rounded = np.sign(ratio) * np.floor(np.abs(ratio) + 0.5)
    return np.clip(rounded, -127, 127).astype(np.int8), float(scale)


def bias_levels(bias: np.ndarray, input_scale: float, weight_scale: float) -> np.ndarray:
    ratio = bias.astype(np.float64) / (np.float64(input_scale) * np.float64(weight_scale))
    return (np.sign(ratio) * np.floor(np.abs(ratio) + 0.5)).astype(np.int32)


def test_tflite_quantization_follows_the_rules(layer):
    weights, calibration = layer["weights"], layer["calibration"]
    arrays = quantize_attention(weights, calibration, convention="tflite", heads=HEADS)
    trace = float_attention(weights, calibration, HEADS)
    grids = {"input": affine_asymmetric(calibration), "attn": affine_asymmetric(trace["attn"]),
             "output": affine_asymmetric(trace["out"]), "score": (sym_scale(trace["raw"]), 0),
             **{name: (sym_scale(trace[name]), 0) for name in ("q", "k", "v")}}
    for name, (scale, zero_point) in grids.items():
        assert (float(arrays[f"{name}_scale"]), int(arrays[f"{name}_zero_point"])) == (scale, zero_point), name
    for name, input_grid in (("q", "input"), ("k", "input"), ("v", "input"), ("o", "attn")):
        levels, scale = weight_levels(weights[f"w{name}"].T)
        np.testing.assert_array_equal(arrays[f"{name}_weight"], levels, err_msg=name)
        assert arrays[f"{name}_weight_scale"].shape == () and float(arrays[f"{name}_weight_scale"]) == scale
        assert np.abs(levels).max() == 127
        np.testing.assert_array_equal(arrays[f"{name}_bias"], bias_levels(weights[f"b{name}"],
                                                                          grids[input_grid][0], scale))
    assert float(arrays["softmax_beta"]) == float(F32(1 / math.sqrt(HEAD_DIM)))
    assert int(arrays["heads"]) == HEADS and str(arrays["convention"]) == "tflite"


def test_tinymind_heads_are_calibrated_on_their_own(layer):
    """Each head of a multi-head file is the single-head calibration of its columns, but for the output grid,
    which all heads share."""
    weights, calibration = layer["weights"], layer["calibration"]
    arrays = quantize_attention(weights, calibration, convention="tinymind", heads=HEADS)
    attn_scale, attn_zero_point = affine_asymmetric(float_attention(weights, calibration, HEADS)["attn"])
    for head in range(HEADS):
        columns = slice(head * HEAD_DIM, (head + 1) * HEAD_DIM)
        single = quantize_attention({key: weights[key][..., columns] for key in ("wq", "wk", "wv", "bq", "bk", "bv")},
                                    calibration, convention="tinymind", heads=1)
        for key, value in single.items():
            if key.startswith("head0.") and "output_requantizer" not in key:
                np.testing.assert_array_equal(arrays[key.replace("head0.", f"head{head}.")], value, err_msg=key)
        v_scale = sym_scale(float_attention(weights, calibration, HEADS)["v"][..., columns])
        multiplier, shift = quantize_multiplier_tinymind(float(F32(1 / 256)) * v_scale / attn_scale)
        prefix = f"head{head}.output_requantizer."
        assert [int(arrays[prefix + name]) for name in ("multiplier", "shift", "zero_point")] == [
            multiplier, shift, attn_zero_point]
    assert int(arrays["o.input_zero_point"]) == attn_zero_point
    np.testing.assert_array_equal(arrays["o.weights"], weight_levels(weights["wo"].T)[0])


@pytest.mark.parametrize("convention", ["tflite", "tinymind"])
def test_quantized_model_is_close_to_the_float_model(layer, convention):
    weights, calibration = layer["weights"], layer["calibration"]
    params = AttentionParams.from_arrays(quantize_attention(weights, calibration, convention=convention,
                                                            heads=HEADS))
    scale, zero_point = affine_asymmetric(calibration)
    x = np.clip(np.round(calibration / scale) + zero_point, -128, 127).astype(np.int8)
    expected = float_attention(weights, calibration, HEADS)["out"]
    out_scale, out_zero_point = affine_asymmetric(expected)
    result = (attention(params, x)["out"].astype(np.float64) - out_zero_point) * out_scale
    assert np.abs(result - expected).max() < 0.03 * (expected.max() - expected.min())


# Errors.

@pytest.mark.parametrize("change, kwargs, name", [
    ({"wx": np.zeros((16, 16))}, {}, "wx is an unknown key"),
    ({"wq": None}, {}, "wq is missing"),
    ({"wo": None}, {}, "wo is missing"),
    ({"wk": np.zeros((16, 15))}, {}, "wk"),
    ({"wv": np.zeros((16, 16), dtype=np.int8)}, {}, "wv"),
    ({"bq": np.full(16, np.nan)}, {}, "bq"),
    ({"bo": np.zeros(11)}, {}, "bo"),
    ({"wq": np.zeros((16, 16))}, {}, "all zero"),
    ({}, {"heads": 3}, "heads"),
    ({}, {"heads": 0}, "heads"),
    ({}, {"convention": "onnx"}, "convention"),
])
def test_bad_float_weights_raise_one_line(layer, change, kwargs, name):
    weights = {key: value for key, value in {**layer["weights"], **change}.items() if value is not None}
    options = {"convention": "tflite", "heads": HEADS, **kwargs}
    with pytest.raises(ConfigError, match=name) as error:
        quantize_attention(weights, layer["calibration"], **options)
    assert "\n" not in str(error.value)


def test_bad_calibration_and_files_raise_one_line(layer, tmp_path):
    weights = layer["weights"]
    for calibration in (np.zeros((4, SEQ, EMBED - 1)), np.zeros((4, SEQ, EMBED), dtype=np.int8),
                        np.full((4, SEQ, EMBED), np.inf), np.zeros((0, SEQ, EMBED))):
        with pytest.raises(ConfigError, match="calibration"):
            quantize_attention(weights, calibration, convention="tinymind", heads=HEADS)
    np.savez(tmp_path / "float.npz", **weights)
    np.savez(tmp_path / "two.npz", a=layer["calibration"], b=layer["calibration"])
    np.save(tmp_path / "weights.npy", weights["wq"])
    for paths, message in (((tmp_path / "absent.npz", tmp_path / "two.npz"), "does not exist"),
                           ((tmp_path / "float.npz", tmp_path / "two.npz"), "holds 2 arrays"),
                           ((tmp_path / "weights.npy", tmp_path / "two.npz"), "not an .npz")):
        with pytest.raises(ConfigError, match=message) as error:
            quantize_attention_files(*paths, convention="tflite", heads=HEADS)
        assert "\n" not in str(error.value)
    np.savez(tmp_path / "one.npz", sequences=layer["calibration"])
    from_files = quantize_attention_files(tmp_path / "float.npz", tmp_path / "one.npz", convention="tflite",
                                          heads=HEADS)
    direct = quantize_attention(weights, layer["calibration"], convention="tflite", heads=HEADS)
    assert set(from_files) == set(direct)
    for key, value in direct.items():
        np.testing.assert_array_equal(from_files[key], value, err_msg=key)
