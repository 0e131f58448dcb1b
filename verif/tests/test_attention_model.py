"""The TinyMind attention model against TinyMind's own encoder-stack outputs and a transcription of its causal C++."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from tinymind_reference import c_divide, int32, requantizer_apply

from int8attn.golden.attention import (
    TinyMindAttentionParams,
    TinyMindRequantizer,
    tinymind_attention,
)
from int8attn.golden.params import ConfigError
from int8attn.golden.tinymind import exp_lut

TINYMIND_STACK = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "tinymind_encoder_stack.npz"
BLOCKS = (0, 1)
KEYS = ("q", "k", "v", "scores", "probs", "attn")


@pytest.fixture(scope="module")
def stack() -> dict[str, np.ndarray]:
    if not TINYMIND_STACK.exists():
        pytest.skip(f"TinyMind encoder vectors not found at {TINYMIND_STACK} (the repo's ../shared)")
    with np.load(TINYMIND_STACK) as archive:
        return {key: archive[key] for key in archive.files}


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
