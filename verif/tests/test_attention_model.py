"""The attention models: TinyMind's single head against its own encoder-stack outputs and a transcription of its
causal C++; the multi-head :func:`attention` of both conventions against compositions of the unit models written
here, TFLite's BATCH_MATMUL and FULLY_CONNECTED vectors, separate single heads and the causal prefix property; the
parameter file's one-line errors."""

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from tinymind_reference import c_divide, int32, load_encoder_stack, requantizer_apply

from int8attn.golden.attention import (
    AttentionParams,
    FullyConnected,
    Grid,
    TinyMindAttentionParams,
    TinyMindMultiHeadParams,
    TinyMindRequantizer,
    attention,
    attention_output,
    load_attention_params,
    quantized_matmul,
    tinymind_attention,
)
from int8attn.golden.config import SoftmaxConfig
from int8attn.golden.dense import DenseConfig, DenseModel
from int8attn.golden.matmul import batch_matmul, matmul_multiplier
from int8attn.golden.params import ConfigError
from int8attn.golden.quantize import quantize_attention
from int8attn.golden.requant import quantize_multiplier_tinymind
from int8attn.golden.softmax import SoftmaxModel
from int8attn.golden.tinymind import exp_lut

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "vectors"
BATCH_MATMUL = SHARED / "tflite_batch_matmul_int8"
FULLY_CONNECTED = SHARED / "tflite_fully_connected_int8"
BLOCKS = (0, 1)
KEYS = ("q", "k", "v", "scores", "probs", "attn")


@pytest.fixture(scope="module")
def stack() -> dict[str, np.ndarray]:
    return load_encoder_stack()


class CausalLayer:
    """``QCausalAttentionSoftmax1D`` with its ``QSoftmaxKVCache``, read from the npz entries of one block."""

    def __init__(self, stack: dict[str, np.ndarray], block: int):
        prefix = f"block{block}.attn."
        weights = stack[prefix + "weights"]
        self.embed_dim, self.proj_dim = weights.shape[1:]
        self.flat_weights = [int(w) for w in weights.reshape(-1)]
        self.flat_biases = [int(b) for b in stack[prefix + "biases"].reshape(-1)]
        self.zero_points = {name: int(stack[f"{prefix}{name}_zero_point"]) for name in ("input", "q", "k", "v", "attn")}
        self.attn_qmin, self.attn_qmax = int(stack[prefix + "attn_qmin"]), int(stack[prefix + "attn_qmax"])
        self.requantizers = {name: {field: int(stack[f"{prefix}{name}_requantizer.{field}"])
                                    for field in ("multiplier", "shift", "zero_point", "qmin", "qmax")}
                             for name in ("q", "k", "v", "score", "output")}
        self.lut = [int(entry) for entry in stack[prefix + "softmax_exp_lut"]]

    def project(self, x_row: list[int]) -> dict[str, list[int]]:
        rows = {}
        per_projection = self.embed_dim * self.proj_dim
        for j, name in enumerate(("q", "k", "v")):
            row = []
            for p in range(self.proj_dim):
                acc = self.flat_biases[j * self.proj_dim + p]
                for e in range(self.embed_dim):
                    x = x_row[e] - self.zero_points["input"]
                    acc = int32(acc + self.flat_weights[j * per_projection + e * self.proj_dim + p] * x)
                row.append(requantizer_apply(self.requantizers[name], acc))
            rows[name] = row
        return rows

    def clamp_attn(self, value: int) -> int:
        return min(max(value, self.attn_qmin), self.attn_qmax)

    def step(self, x_row: list[int], cache_k: list[list[int]], cache_v: list[list[int]]) -> dict[str, list[int]]:
        rows = self.project(x_row)
        cache_k.append(rows["k"])
        cache_v.append(rows["v"])
        zp = self.zero_points
        scores = []
        for k_cached in cache_k:
            acc = 0
            for p in range(self.proj_dim):
                acc = int32(acc + (rows["q"][p] - zp["q"]) * (k_cached[p] - zp["k"]))
            scores.append(requantizer_apply(self.requantizers["score"], acc))
        max_q = scores[0]
        for value in scores[1:]:
            max_q = max(max_q, value)
        exps = [self.lut[min(max(score - max_q, -255), 0) + 255] for score in scores]
        total = sum(exps)
        if total <= 0:
            probs = [self.clamp_attn(zp["attn"])] * len(scores)
        else:
            probs = [self.clamp_attn(c_divide((e << 8) + (total >> 1), total) + zp["attn"]) for e in exps]
        out = []
        for p in range(self.proj_dim):
            acc = 0
            for j, v_cached in enumerate(cache_v):
                acc = int32(acc + (probs[j] - zp["attn"]) * (v_cached[p] - zp["v"]))
            out.append(requantizer_apply(self.requantizers["output"], acc))
        return {**rows, "scores": scores, "probs": probs, "attn": out}

    def forward(self, x: np.ndarray) -> list[dict[str, list[int]]]:
        """``forward``: reset the cache, then one ``step`` per token."""
        cache_k, cache_v = [], []
        return [self.step([int(value) for value in row], cache_k, cache_v) for row in x]


# Non-causal: TinyMind's own outputs.

@pytest.mark.parametrize("block", BLOCKS)
def test_model_reproduces_tinymind_attention(stack, block):
    params = TinyMindAttentionParams.from_encoder_stack(stack, block)
    result = tinymind_attention(params, stack["t.ln1"][:, block])
    assert set(result) == set(KEYS)
    for key in KEYS:
        expected = stack[f"t.{key}"][:, block]
        assert result[key].dtype == np.int8, key
        np.testing.assert_array_equal(result[key], expected, err_msg=key)


@pytest.mark.parametrize("block", BLOCKS)
def test_exp_lut_is_tinymind_table_of_score_scale(stack, block):
    lut = stack[f"block{block}.attn.softmax_exp_lut"]
    params = TinyMindAttentionParams.from_encoder_stack(stack, block)
    np.testing.assert_array_equal(params.softmax_exp_lut, lut)
    np.testing.assert_array_equal(exp_lut(float(np.float32(stack[f"block{block}.scale.score"]))), lut)


def test_leading_dimensions_are_independent(stack):
    params = TinyMindAttentionParams.from_encoder_stack(stack, 0)
    x = stack["t.ln1"][:, 0]
    whole = tinymind_attention(params, x, causal=True)
    grouped = tinymind_attention(params, x.reshape(8, 8, *x.shape[1:]), causal=True)
    single = tinymind_attention(params, x[5], causal=True)
    for key in KEYS:
        np.testing.assert_array_equal(grouped[key].reshape(whole[key].shape), whole[key], err_msg=key)
        np.testing.assert_array_equal(single[key], whole[key][5], err_msg=key)


# Causal: the C++ decoder loop and the prefix property.

@pytest.mark.parametrize("block", BLOCKS)
def test_causal_model_equals_token_by_token_decoder(stack, block):
    """Row ``t`` of the causal pass is ``step`` ``t`` of the C++ loop; its last row is TinyMind's non-causal row."""
    x = stack["t.ln1"][:, block]
    seq_len = x.shape[1]
    params = TinyMindAttentionParams.from_encoder_stack(stack, block)
    causal = tinymind_attention(params, x, causal=True)
    layer = CausalLayer(stack, block)
    for sequence in range(x.shape[0]):
        steps = layer.forward(x[sequence])
        for t, step in enumerate(steps):
            for key in ("q", "k", "v", "attn"):
                assert causal[key][sequence, t].tolist() == step[key], (sequence, t, key)
            assert causal["scores"][sequence, t, :t + 1].tolist() == step["scores"], (sequence, t)
            assert causal["probs"][sequence, t].tolist() == step["probs"] + [-128] * (seq_len - t - 1), (sequence, t)
        last = steps[-1]
        for key in KEYS:
            assert stack[f"t.{key}"][sequence, block, -1].tolist() == last[key], (sequence, key)


@pytest.mark.parametrize("block", BLOCKS)
def test_causal_row_is_attention_over_the_prefix(stack, block):
    params = TinyMindAttentionParams.from_encoder_stack(stack, block)
    x = stack["t.ln1"][:, block]
    full = tinymind_attention(params, x)
    causal = tinymind_attention(params, x, causal=True)
    for key in ("q", "k", "v", "scores"):
        np.testing.assert_array_equal(causal[key], full[key], err_msg=key)
    assert not np.array_equal(causal["probs"], full["probs"])
    for t in range(x.shape[1]):
        prefix = tinymind_attention(params, x[:, :t + 1])
        np.testing.assert_array_equal(causal["probs"][:, t, :t + 1], prefix["probs"][:, t])
        assert (causal["probs"][:, t, t + 1:] == -128).all()
        np.testing.assert_array_equal(causal["attn"][:, t], prefix["attn"][:, t])


# Validation.

def small_params() -> TinyMindAttentionParams:
    rng = np.random.default_rng(0)
    requantizer = TinyMindRequantizer(multiplier=1 << 30, shift=8, zero_point=0, qmin=-128, qmax=127)
    return TinyMindAttentionParams(
        weights=rng.integers(-128, 128, (3, 4, 2), dtype=np.int8), biases=np.zeros((3, 2), dtype=np.int32),
        input_zero_point=3, q_zero_point=0, k_zero_point=0, v_zero_point=0, q_requantizer=requantizer,
        k_requantizer=requantizer, v_requantizer=requantizer, score_requantizer=requantizer,
        output_requantizer=replace(requantizer, zero_point=-128), score_scale=0.05)


@pytest.mark.parametrize("changes, name", [
    ({"weights": np.zeros((3, 4, 2), dtype=np.int16)}, "weights"),
    ({"weights": np.zeros((2, 4, 2), dtype=np.int8)}, "weights"),
    ({"biases": np.zeros((3, 2), dtype=np.int64)}, "biases"),
    ({"biases": np.zeros((3, 4), dtype=np.int32)}, "biases"),
    ({"input_zero_point": 128}, "input_zero_point"),
    ({"v_zero_point": 1.5}, "v_zero_point"),
    ({"score_requantizer": None}, "score_requantizer"),
    ({"score_scale": 0.0}, "score_scale"),
    ({"heads": 2}, "heads"),
])
def test_params_reject_out_of_range(changes, name):
    with pytest.raises(ConfigError, match=name):
        replace(small_params(), **changes)


@pytest.mark.parametrize("changes, name", [
    ({"multiplier": 1 << 31}, "multiplier"),
    ({"shift": -31}, "shift"),
    ({"shift": 32}, "shift"),
    ({"zero_point": -129}, "zero_point"),
    ({"qmin": 10, "qmax": 9}, "qmin"),
])
def test_requantizer_rejects_out_of_range(changes, name):
    with pytest.raises(ConfigError, match=name):
        replace(small_params().q_requantizer, **changes)


def test_attention_rejects_wrong_input():
    params = small_params()
    for x in (np.zeros((5, 4), dtype=np.int16), np.zeros((5, 3), dtype=np.int8), np.zeros(4, dtype=np.int8)):
        with pytest.raises(ValueError, match="x must be int8"):
            tinymind_attention(params, x)


def test_from_encoder_stack_rejects_bad_block_and_tables(stack):
    with pytest.raises(ConfigError, match="block"):
        TinyMindAttentionParams.from_encoder_stack(stack, 2)
    lut = stack["block0.attn.softmax_exp_lut"].copy()
    lut[100] += 1
    with pytest.raises(ConfigError, match="softmax_exp_lut"):
        TinyMindAttentionParams.from_encoder_stack({**stack, "block0.attn.softmax_exp_lut": lut}, 0)
    with pytest.raises(ConfigError, match="attn_zero_point"):
        TinyMindAttentionParams.from_encoder_stack({**stack, "block0.attn.attn_zero_point": np.int32(0)}, 0)


# Multi-head attention: H = 4 heads of d = 4 over E = 16 features, S = 8, an output projection to 12 features.

HEADS, HEAD_DIM, EMBED, SEQ, OUT = 4, 4, 16, 8, 12
ALL_KEYS = (*KEYS, "out")


def float_weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
    width = HEADS * HEAD_DIM
    shapes = {"wq": (EMBED, width), "wk": (EMBED, width), "wv": (EMBED, width), "bq": (width,), "bk": (width,),
              "bv": (width,), "wo": (width, OUT), "bo": (OUT,)}
    return {key: rng.normal(0, 0.3 if key[0] == "w" else 0.1, shape).astype(np.float32)
            for key, shape in shapes.items()}


@pytest.fixture(scope="module")
def layer() -> dict:
    """Float weights and calibration sequences, their int8 parameter files in both conventions and int8 inputs."""
    rng = np.random.default_rng(10)
    weights = float_weights(rng)
    calibration = rng.normal(0, 1, (16, SEQ, EMBED)).astype(np.float32)
    arrays = {convention: quantize_attention(weights, calibration, convention=convention, heads=HEADS)
              for convention in ("tflite", "tinymind")}
    return {"arrays": arrays, "x": rng.integers(-128, 128, (6, SEQ, EMBED)).astype(np.int8)}


def per_channel(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The tflite file with per-channel scales on ``q_weight`` and ``o_weight``."""
    rng = np.random.default_rng(3)
    result = dict(arrays)
    for key, channels in (("q_weight_scale", HEADS * HEAD_DIM), ("o_weight_scale", OUT)):
        result[key] = (arrays[key] * rng.uniform(0.5, 1.5, channels)).astype(np.float32)
    return result


def dense_model(arrays: dict[str, np.ndarray], prefix: str, input_grid: str, output_grid: str,
                path: Path) -> DenseModel:
    """The file's ``{prefix}_weight`` as a DenseModel of a dense weights file (convention tflite)."""
    np.savez(path, weight=arrays[f"{prefix}_weight"], bias=arrays[f"{prefix}_bias"],
             weight_scale=arrays[f"{prefix}_weight_scale"], input_scale=arrays[f"{input_grid}_scale"],
             input_zero_point=arrays[f"{input_grid}_zero_point"], output_scale=arrays[f"{output_grid}_scale"],
             output_zero_point=arrays[f"{output_grid}_zero_point"])
    return DenseModel(DenseConfig(weights=str(path)))


def tflite_graph(arrays: dict[str, np.ndarray], x: np.ndarray, tmp_path: Path) -> dict[str, np.ndarray]:
    """The TFLite graph composed here, head by head, from DenseModel, batch_matmul and SoftmaxModel."""
    sequences, seq_len, _ = x.shape
    heads = int(arrays["heads"])
    scale = {name: float(arrays[f"{name}_scale"]) for name in ("q", "k", "v", "score", "attn")}
    zero = {name: int(arrays[f"{name}_zero_point"]) for name in ("q", "k", "v", "score", "attn")}
    result = {name: dense_model(arrays, name, "input", name, tmp_path / f"{name}.npz")(x.reshape(-1, x.shape[-1]))
              .reshape(sequences, seq_len, -1) for name in ("q", "k", "v")}
    head_dim = result["q"].shape[-1] // heads
    softmax = SoftmaxModel(SoftmaxConfig(n=seq_len, lanes=1, input_scale=scale["score"],
                                         beta=float(arrays["softmax_beta"]), mode="tflite"))
    score_multiplier = matmul_multiplier(scale["q"], scale["k"], scale["score"])
    output_multiplier = matmul_multiplier(1 / 256, scale["v"], scale["attn"])
    result["scores"] = np.zeros((sequences, heads, seq_len, seq_len), dtype=np.int8)
    result["probs"] = np.zeros_like(result["scores"])
    result["attn"] = np.zeros_like(result["q"])
    for head in range(heads):
        columns = slice(head * head_dim, (head + 1) * head_dim)
        result["scores"][:, head] = batch_matmul(
            result["q"][..., columns], result["k"][..., columns], lhs_zero_point=zero["q"], rhs_zero_point=zero["k"],
            multiplier=score_multiplier[0], shift=score_multiplier[1], output_zero_point=zero["score"], adj_y=True)
        result["probs"][:, head] = softmax(result["scores"][:, head].reshape(-1, seq_len)).reshape(
            sequences, seq_len, seq_len)
        result["attn"][..., columns] = batch_matmul(
            result["probs"][:, head], result["v"][..., columns], lhs_zero_point=-128, rhs_zero_point=zero["v"],
            multiplier=output_multiplier[0], shift=output_multiplier[1], output_zero_point=zero["attn"])
    output = dense_model(arrays, "o", "attn", "output", tmp_path / "o.npz")
    result["out"] = output(result["attn"].reshape(-1, heads * head_dim)).reshape(sequences, seq_len, -1)
    return result


@pytest.mark.parametrize("scales", ["per-tensor", "per-channel"])
def test_tflite_convention_is_the_graph_of_tflite_ops(layer, scales, tmp_path):
    arrays = layer["arrays"]["tflite"] if scales == "per-tensor" else per_channel(layer["arrays"]["tflite"])
    params = load_attention_params(save(tmp_path / "params.npz", arrays))
    assert (params.convention, params.heads, params.embed_dim, params.head_dim, params.out_dim) == (
        "tflite", HEADS, EMBED, HEAD_DIM, OUT)
    assert params.has_output_projection
    result = attention(params, layer["x"])
    expected = tflite_graph(arrays, layer["x"], tmp_path)
    assert set(result) == set(ALL_KEYS)
    for key in ALL_KEYS:
        assert result[key].dtype == np.int8, key
        np.testing.assert_array_equal(result[key], expected[key], err_msg=key)
    assert len(np.unique(result["probs"])) > 20 and len(np.unique(result["out"])) > 50


def tflite_cases(path: Path, indices: tuple[int, ...]) -> list:
    if not path.with_suffix(".json").exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"TFLite vectors not found at {path}.npz (the "
                                                                  "repo's ../shared)"))]
    cases = json.loads(path.with_suffix(".json").read_text())["cases"]
    return [pytest.param(cases[index], id=f"case{index}") for index in indices]


@pytest.mark.parametrize("case", tflite_cases(BATCH_MATMUL, (2, 7)))
def test_score_and_output_matmuls_reproduce_tflite_batch_matmul(case):
    """Case 2 is the ``Q·Kᵀ`` form (``adj_y``), case 7 the ``P·V`` form (LHS at 1/256, zero point −128)."""
    with np.load(BATCH_MATMUL.with_suffix(".npz")) as archive:
        index = case["case"]
        lhs, rhs, expected = (archive[f"case{index}_{name}"] for name in ("lhs", "rhs", "y"))
    grids = [Grid(case[f"{name}_scale"], case[f"{name}_zero_point"]) for name in ("lhs", "rhs", "output")]
    np.testing.assert_array_equal(quantized_matmul(lhs, rhs, *grids, adj_y=case["adj_y"]), expected)


@pytest.mark.parametrize("case", tflite_cases(FULLY_CONNECTED, (0, 3, 4, 6)))
def test_projections_reproduce_tflite_fully_connected(case):
    """The FULLY_CONNECTED cases without activation: per-tensor (case 4 needs the float32 product of the scales),
    without bias and per-channel."""
    index = case["case"]
    with np.load(FULLY_CONNECTED.with_suffix(".npz")) as archive:
        vectors = {key: archive[key] for key in archive.files if key.startswith(f"case{index}_")}
    layer = FullyConnected(weight=vectors[f"case{index}_w"], bias=vectors.get(f"case{index}_bias"),
                           weight_scale=tuple(np.atleast_1d(np.float32(case["weight_scale"])).tolist()),
                           input=Grid(case["input_scale"], case["input_zero_point"]),
                           output=Grid(case["output_scale"], case["output_zero_point"]))
    np.testing.assert_array_equal(layer(vectors[f"case{index}_x"]), vectors[f"case{index}_y"])


def test_tflite_heads_are_separate_single_heads(layer):
    arrays = per_channel(layer["arrays"]["tflite"])
    whole = attention(load_params(arrays), layer["x"])
    for head in range(HEADS):
        rows = slice(head * HEAD_DIM, (head + 1) * HEAD_DIM)
        single = {key: value for key, value in arrays.items() if not key.startswith("o")}
        single["heads"] = np.int32(1)
        for name in ("q", "k", "v"):
            single[f"{name}_weight"] = arrays[f"{name}_weight"][rows]
            single[f"{name}_bias"] = arrays[f"{name}_bias"][rows]
            if arrays[f"{name}_weight_scale"].ndim:
                single[f"{name}_weight_scale"] = arrays[f"{name}_weight_scale"][rows]
        alone = attention(load_params(single), layer["x"])
        for key in ("q", "k", "v", "attn"):
            np.testing.assert_array_equal(whole[key][..., rows], alone[key], err_msg=key)
        for key in ("scores", "probs"):
            np.testing.assert_array_equal(whole[key][:, head], alone[key][:, 0], err_msg=key)


def test_tinymind_heads_are_tinymind_single_heads(layer):
    params = load_params(layer["arrays"]["tinymind"])
    assert isinstance(params, TinyMindMultiHeadParams)
    assert (params.heads, params.embed_dim, params.head_dim, params.out_dim) == (HEADS, EMBED, HEAD_DIM, OUT)
    for causal in (False, True):
        whole = attention(params, layer["x"], causal=causal)
        for head, head_params in enumerate(params.head_params):
            alone = tinymind_attention(head_params, layer["x"], causal=causal)
            columns = slice(head * HEAD_DIM, (head + 1) * HEAD_DIM)
            for key in ("q", "k", "v", "attn"):
                np.testing.assert_array_equal(whole[key][..., columns], alone[key], err_msg=key)
            for key in ("scores", "probs"):
                np.testing.assert_array_equal(whole[key][:, head], alone[key], err_msg=key)
        dense = params.output_projection
        expected = [qdense(dense, row) for row in whole["attn"].reshape(-1, HEADS * HEAD_DIM)]
        assert whole["out"].reshape(-1, OUT).tolist() == expected


def qdense(dense, row: np.ndarray) -> list[int]:
    """``QDense::forward`` of one row, from the layer's integers."""
    requantizer = {name: getattr(dense.requantizer, name) for name in ("multiplier", "shift", "zero_point", "qmin",
                                                                        "qmax")}
    outputs = []
    for weights, bias in zip(dense.weights.tolist(), dense.biases.tolist(), strict=True):
        acc = bias
        for weight, value in zip(weights, row.tolist(), strict=True):
            acc = int32(acc + weight * (value - dense.input_zero_point))
        outputs.append(requantizer_apply(requantizer, acc))
    return outputs


@pytest.mark.parametrize("block", BLOCKS)
def test_multi_head_path_reproduces_tinymind_through_a_file(stack, block, tmp_path):
    head = TinyMindAttentionParams.from_encoder_stack(stack, block)
    params = load_attention_params(save(tmp_path / "block.npz", TinyMindMultiHeadParams((head,)).arrays()))
    x = stack["t.ln1"][:, block]
    result = attention(params, x)
    for key in KEYS:
        expected = stack[f"t.{key}"][:, block]
        np.testing.assert_array_equal(result[key][:, 0] if key in ("scores", "probs") else result[key], expected,
                                      err_msg=key)
    np.testing.assert_array_equal(result["out"], result["attn"])
    causal = attention(params, x, causal=True)
    for key, value in tinymind_attention(head, x, causal=True).items():
        np.testing.assert_array_equal(causal[key][:, 0] if key in ("scores", "probs") else causal[key], value)


@pytest.mark.parametrize("convention, mode", [("tflite", None), ("tflite", "base2"), ("tinymind", None),
                                              ("tinymind", "hccs"), ("tinymind", "lut")])
def test_causal_row_is_attention_over_the_prefix_multi_head(layer, convention, mode):
    params = load_params(layer["arrays"][convention])
    x = layer["x"]
    full = attention(params, x, softmax_mode=mode)
    causal = attention(params, x, causal=True, softmax_mode=mode)
    for key in ("q", "k", "v", "scores"):
        np.testing.assert_array_equal(causal[key], full[key], err_msg=key)
    zero_code = {None: -128, "lut": -128, "hccs": 0, "base2": 0}[mode]
    for t in range(SEQ):
        prefix = attention(params, x[:, :t + 1], softmax_mode=mode)
        np.testing.assert_array_equal(causal["probs"][:, :, t, :t + 1], prefix["probs"][:, :, t])
        assert (causal["probs"][:, :, t, t + 1:] == zero_code).all()
        for key in ("attn", "out"):
            np.testing.assert_array_equal(causal[key][:, t], prefix[key][:, t], err_msg=key)


def test_leading_dimensions_are_independent_multi_head(layer):
    params = load_params(layer["arrays"]["tflite"])
    x = layer["x"]
    whole = attention(params, x, causal=True)
    grouped = attention(params, x.reshape(2, 3, SEQ, EMBED), causal=True)
    single = attention(params, x[4], causal=True)
    for key in ALL_KEYS:
        np.testing.assert_array_equal(grouped[key].reshape(whole[key].shape), whole[key], err_msg=key)
        np.testing.assert_array_equal(single[key], whole[key][4], err_msg=key)


# Softmax modes: the probabilities are the mode's codes and P·V takes their scale and zero point.

@pytest.mark.parametrize("mode, knobs", [("tflite", {}), ("lut", {"rom_width": 12, "reciprocal": "lut"}),
                                         ("hccs", {}), ("base2", {}), ("poly", {"poly_b": 0.5})])
def test_tflite_convention_takes_the_modes_codes(layer, mode, knobs):
    arrays = layer["arrays"]["tflite"]
    params = load_params(arrays)
    result = attention(params, layer["x"], softmax_mode=mode, **knobs)
    model = SoftmaxModel(SoftmaxConfig(n=SEQ, lanes=1, input_scale=float(arrays["score_scale"]),
                                       beta=float(arrays["softmax_beta"]), mode=mode, **knobs))
    np.testing.assert_array_equal(result["probs"], model(result["scores"].reshape(-1, SEQ)).reshape(
        result["probs"].shape))
    multiplier, shift = matmul_multiplier(model.output_scale, float(arrays["v_scale"]), float(arrays["attn_scale"]))
    v = np.moveaxis(result["v"].reshape(-1, SEQ, HEADS, HEAD_DIM), 2, 1)
    heads = batch_matmul(result["probs"], v, lhs_zero_point=model.output_zero_point,
                         rhs_zero_point=int(arrays["v_zero_point"]), multiplier=multiplier, shift=shift,
                         output_zero_point=int(arrays["attn_zero_point"]))
    np.testing.assert_array_equal(result["attn"], np.moveaxis(heads, 1, 2).reshape(result["attn"].shape))


@pytest.mark.parametrize("mode", ["tflite", "base2"])
def test_tinymind_convention_rescales_the_output_requantizer(stack, mode):
    """P·V takes the codes at the mode's zero point and the stored requantizer's real multiplier times
    ``256 · output_scale``: unchanged at 1/256."""
    head = TinyMindAttentionParams.from_encoder_stack(stack, 0)
    x = stack["t.ln1"][:, 0]
    result = attention(TinyMindMultiHeadParams((head,)), x, softmax_mode=mode)
    model = SoftmaxModel(SoftmaxConfig(n=x.shape[1], lanes=1, input_scale=head.score_scale, mode=mode))
    np.testing.assert_array_equal(result["probs"][:, 0], model(result["scores"][:, 0].reshape(-1, x.shape[1]))
                                  .reshape(result["probs"][:, 0].shape))
    stored = head.output_requantizer
    multiplier, shift = quantize_multiplier_tinymind(stored.multiplier * 2.0 ** (-31 - stored.shift)
                                                     * model.output_scale * 256)
    if model.output_scale == 1 / 256:
        assert (multiplier, shift) == (stored.multiplier, stored.shift)
    requantizer = replace(stored, multiplier=multiplier, shift=shift)
    np.testing.assert_array_equal(result["attn"], attention_output(result["probs"][:, 0], result["v"],
                                                                   model.output_zero_point, head.v_zero_point,
                                                                   requantizer))


def test_attention_rejects_bad_softmax_choices(layer):
    params = load_params(layer["arrays"]["tflite"])
    x = layer["x"]
    for kwargs, name in (({"softmax_mode": "exact"}, "mode"), ({"rom_widht": 12}, "rom_widht"),
                         ({"softmax_mode": "tinymind"}, "beta"), ({"hccs_b": 100}, "hccs_b")):
        with pytest.raises(ConfigError, match=name):
            attention(params, x, **kwargs)
    long = np.zeros((1, 129, EMBED), dtype=np.int8)
    with pytest.raises(ConfigError, match="output_bits=16"):
        attention(params, long, softmax_mode="lut", output_bits=16)
    with pytest.raises(ValueError, match="x must be int8"):
        attention(params, x[..., :-1])


# The parameter file.

def save(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez(path, **arrays)
    return path


def load_params(arrays: dict[str, np.ndarray]) -> AttentionParams:
    return AttentionParams.from_arrays(arrays)


def changed(arrays: dict[str, np.ndarray], **changes) -> dict[str, np.ndarray]:
    """``arrays`` with keys replaced (``None`` removes one); ``__`` in a name stands for ``.``."""
    result = dict(arrays)
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            del result[key]
        else:
            result[key] = value
    return result


TFLITE_BAD = [
    ({"score_scale": None}, "score_scale is missing"),
    ({"extra": np.int32(0)}, "extra is an unknown key"),
    ({"convention": np.array("onnx")}, "convention"),
    ({"heads": np.int32(3)}, "heads"),
    ({"heads": np.float32(4)}, "heads"),
    ({"q_weight": np.zeros((16, 16), dtype=np.int16)}, "q_weight"),
    ({"k_weight": np.zeros((16, 15), dtype=np.int8)}, "k_weight"),
    ({"v_bias": np.zeros(16, dtype=np.int64)}, "v_bias"),
    ({"q_weight_scale": np.ones(15, dtype=np.float32)}, "q_weight_scale"),
    ({"k_weight_scale": np.float32(-0.1)}, "k_weight_scale"),
    ({"attn_scale": np.float32(0)}, "attn_scale"),
    ({"input_scale": np.float32(np.nan)}, "input_scale"),
    ({"score_scale": np.float64(1e-30)}, "score_scale"),
    ({"input_zero_point": np.int32(200)}, "input_zero_point"),
    ({"softmax_beta": np.float32(np.inf)}, "softmax_beta"),
    ({"o_weight": np.zeros((12, 15), dtype=np.int8)}, "o_weight"),
    ({"output_scale": None}, "output_scale is missing"),
    ({"o_weight": None, "o_weight_scale": None, "o_bias": None}, "o_weight is missing"),
]
TINYMIND_BAD = [
    ({"heads": np.int32(5)}, "head4.weights is missing"),
    ({"heads": np.int32(3)}, "head3.biases is an unknown key"),
    ({"head1__weights": np.zeros((3, 16, 5), dtype=np.int8)}, "head1.weights"),
    ({"head0__weights": np.zeros((3, 16), dtype=np.int8)}, "head0.weights"),
    ({"head2__biases": np.zeros((3, 4), dtype=np.float32)}, "head2.biases"),
    ({"head0__q_requantizer__shift": np.int32(40)}, "head0.q_requantizer.shift"),
    ({"head3__output_requantizer__multiplier": np.float32(1.0)}, "head3.output_requantizer.multiplier"),
    ({"head0__score_scale": np.float32(-1)}, "head0.score_scale"),
    ({"head1__k_zero_point": np.int32(-129)}, "head1.k_zero_point"),
    ({"o__weights": np.zeros((12, 8), dtype=np.int8)}, "o.weights"),
    ({"o__input_zero_point": np.int32(5)}, "o.input_zero_point"),
    ({"o__requantizer__qmin": None}, "o.requantizer.qmin is missing"),
]


@pytest.mark.parametrize("convention, changes, message", [("tflite", *case) for case in TFLITE_BAD]
                         + [("tinymind", *case) for case in TINYMIND_BAD])
def test_bad_parameter_files_raise_one_line(layer, tmp_path, convention, changes, message):
    path = save(tmp_path / "params.npz", changed(layer["arrays"][convention], **changes))
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")) as error:
        load_attention_params(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_unreadable_parameter_files_raise_one_line(tmp_path):
    for path, message in ((tmp_path / "absent.npz", "does not exist"), (tmp_path / "x.npy", "not an .npz"),
                          (tmp_path / "junk.npz", "cannot be read")):
        if path.suffix == ".npy":
            np.save(path, np.zeros(3))
        elif path.name == "junk.npz":
            path.write_bytes(b"not a zip")
        with pytest.raises(ConfigError, match=message) as error:
            load_attention_params(path)
        assert "\n" not in str(error.value)


def test_parameter_files_round_trip(layer):
    for arrays in (*layer["arrays"].values(), per_channel(layer["arrays"]["tflite"])):
        again = load_params(arrays).arrays()
        assert set(again) == set(arrays)
        for key, value in arrays.items():
            assert np.asarray(again[key]).dtype.kind == np.asarray(value).dtype.kind, key
            np.testing.assert_array_equal(again[key], value, err_msg=key)
    assert math.isclose(float(layer["arrays"]["tflite"]["softmax_beta"]), 1 / math.sqrt(HEAD_DIM))
