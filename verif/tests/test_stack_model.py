"""The encoder-stack models (``golden/add.py``, ``golden/layernorm.py``, ``golden/embedding.py``, ``golden/stack.py``):
TinyMind's own tensors of all 64 sequences, TFLite's ADD vectors, directed cases and resized parameter files against
a scalar transcription of TinyMind's C++ written here on Python integers, the host-side parameter builders, and the
parameter file's one-line errors."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from tinymind_reference import (
    INT32_MAX,
    INT32_MIN,
    TINYMIND_STACK,
    c_divide,
    int32,
    load_encoder_stack,
    requantizer_apply,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)

from int8attn.golden.add import TinyMindAdd, tinymind_multiply_by_quantized_multiplier
from int8attn.golden.attention import Grid, TinyMindRequantizer
from int8attn.golden.embedding import (
    TinyMindEmbedding,
    quantize_buffer,
    quantized_positional_table,
    sinusoidal_table,
)
from int8attn.golden.layernorm import (
    TinyMindLayerNorm,
    floor_isqrt,
    inv_sqrt_q30,
    output_params,
    quantize_beta,
    quantize_epsilon,
    quantize_gamma,
)
from int8attn.golden.params import ConfigError
from int8attn.golden.requant import activation_range
from int8attn.golden.stack import BLOCK_TENSORS, StackParams, is_ignored, load_stack_params, stack_forward

SHARED = TINYMIND_STACK.parent
TFLITE_ADD = SHARED / "tflite_add_int8"
REQUANTIZER_FIELDS = ("multiplier", "shift", "zero_point", "qmin", "qmax")
ADD_FIELDS = ("input_a_zero_point", "input_b_zero_point", "left_shift", "input_a_multiplier", "input_a_shift",
              "input_b_multiplier", "input_b_shift")
LAYERNORM_FIELDS = ("epsilon_q", "output_multiplier", "output_shift", "output_zero_point", "qmin", "qmax")
TENSOR_KEYS = ("t.emb", "t.x0", *(f"t.{name}" for name in BLOCK_TENSORS), "output")


@pytest.fixture(scope="module")
def stack() -> dict[str, np.ndarray]:
    return load_encoder_stack()


@pytest.fixture(scope="module")
def params(stack) -> StackParams:
    return StackParams.from_arrays(stack, "shared")


# A scalar transcription of TinyMind's C++ (cpp/qaffine.hpp, qadd.hpp, qlayernorm.hpp, qembedding.hpp,
# qpositional.hpp, qattention_softmax.hpp, qdense.hpp, qactivations.hpp and the example's runBlockQ) on Python ints,
# flat row-major buffers as the C++ has them.

def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    """``multiplyByQuantizedMultiplier``: the left shift in 64 bits (capped at 31), saturated to int32."""
    left_shift = -shift if shift < 0 else 0
    right_shift = shift if shift > 0 else 0
    shifted = x
    if left_shift > 0:
        shifted *= 1 << min(left_shift, 31)
    shifted = min(max(shifted, INT32_MIN), INT32_MAX)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right_shift)


def qadd(layer: dict, a: list[int], b: list[int]) -> list[int]:
    """``QAdd::forward`` over two equal-length buffers."""
    out = []
    for a_value, b_value in zip(a, b, strict=True):
        shifted_a = int32((a_value - layer["input_a_zero_point"]) * int32(1 << layer["left_shift"]))
        shifted_b = int32((b_value - layer["input_b_zero_point"]) * int32(1 << layer["left_shift"]))
        scaled_a = multiply_by_quantized_multiplier(shifted_a, layer["input_a_multiplier"], layer["input_a_shift"])
        scaled_b = multiply_by_quantized_multiplier(shifted_b, layer["input_b_multiplier"], layer["input_b_shift"])
        out.append(requantizer_apply(layer["output_requantizer"], int32(scaled_a + scaled_b)))
    return out


def integer_sqrt64(x: int) -> int:
    """``qIntegerSqrt64``: Newton's iteration from ``y = x``."""
    if x < 2:
        return x
    y = x
    z = (y + x // y) >> 1
    while z < y:
        y = z
        z = (y + x // y) >> 1
    return y


def inv_sqrt_q30_scalar(x: int) -> int:
    """``qInvSqrtQ30`` of a ``uint32_t``."""
    if x == 0:
        return 0x7FFFFFFF
    s = integer_sqrt64(x << 28)
    if s == 0:
        return 0x7FFFFFFF
    return min((1 << 44) // s, 0x7FFFFFFF)


def layernorm(layer: dict, values: list[int], features: int) -> list[int]:
    """``QLayerNorm1D::forward`` over ``len(values) / features`` rows."""
    out = []
    for start in range(0, len(values), features):
        row = values[start:start + features]
        total = sum(row)
        bias = features // 2 if total >= 0 else -(features // 2)
        mean_q = int32(c_divide(total + bias, features))
        ssum = sum((value - mean_q) * (value - mean_q) for value in row)
        var_q = min(c_divide(ssum + features // 2, features), 0x7FFFFFFF)
        denom = var_q + layer["epsilon_q"]
        denom = 0 if denom < 0 else min(denom, 0xFFFFFFFF)
        inv_stddev_q30 = inv_sqrt_q30_scalar(denom)
        for i, value in enumerate(row):
            normalized_q14 = int32(((value - mean_q) * inv_stddev_q30) >> 16)
            weighted_q28 = min(max(normalized_q14 * layer["gamma"][i], INT32_MIN), INT32_MAX)
            rescaled = multiply_by_quantized_multiplier(weighted_q28, layer["output_multiplier"],
                                                        layer["output_shift"])
            with_bias = int32(int32(rescaled + layer["beta"][i]) + layer["output_zero_point"])
            out.append(min(max(with_bias, layer["qmin"]), layer["qmax"]))
    return out


def dense(layer: dict, values: list[int], in_features: int) -> list[int]:
    """``QDense::forward`` on every ``in_features``-long row of ``values``."""
    out = []
    for start in range(0, len(values), in_features):
        row = values[start:start + in_features]
        for o, bias in enumerate(layer["biases"]):
            acc = bias
            for i, value in enumerate(row):
                acc = int32(acc + layer["weights"][o * in_features + i] * (value - layer["input_zero_point"]))
            out.append(requantizer_apply(layer["requantizer"], acc))
    return out


def attention(layer: dict, x: list[int], seq_len: int, embed: int) -> dict[str, list[int]]:
    """``QAttentionSoftmax1D::forward`` with ``P = E``."""
    proj = embed
    w, b = layer["weights"], layer["biases"]
    zp = {name: layer[f"{name}_zero_point"] for name in ("input", "q", "k", "v", "attn")}
    result = {name: [] for name in ("q", "k", "v")}
    for t in range(seq_len):
        for p in range(proj):
            for j, name in enumerate(("q", "k", "v")):
                acc = b[j * proj + p]
                for e in range(embed):
                    acc = int32(acc + w[j * embed * proj + e * proj + p] * (x[t * embed + e] - zp["input"]))
                result[name].append(requantizer_apply(layer[f"{name}_requantizer"], acc))
    scores = []
    for i in range(seq_len):
        for j in range(seq_len):
            acc = 0
            for p in range(proj):
                acc = int32(acc + (result["q"][i * proj + p] - zp["q"])
                            * (result["k"][j * proj + p] - zp["k"]))
            scores.append(requantizer_apply(layer["score_requantizer"], acc))
    probs = []
    for r in range(seq_len):
        row = scores[r * seq_len:(r + 1) * seq_len]
        exps = [layer["softmax_exp_lut"][min(max(value - max(row), -255), 0) + 255] for value in row]
        total = sum(exps)
        for e in exps:
            q = zp["attn"] if total <= 0 else c_divide((e << 8) + (total >> 1), total) + zp["attn"]
            probs.append(min(max(q, layer["attn_qmin"]), layer["attn_qmax"]))
    out = []
    for t in range(seq_len):
        for p in range(proj):
            acc = 0
            for s in range(seq_len):
                acc = int32(acc + (probs[t * seq_len + s] - zp["attn"])
                            * (result["v"][s * proj + p] - zp["v"]))
            out.append(requantizer_apply(layer["output_requantizer"], acc))
    return {**result, "scores": scores, "probs": probs, "attn": out}


def layer_of(values: dict, prefix: str) -> dict:
    """Every ``{prefix}.*`` entry as Python ints (arrays flattened to lists), requantizers as nested dicts."""
    layer = {}
    for key, value in values.items():
        if not key.startswith(prefix + "."):
            continue
        name = key[len(prefix) + 1:]
        number = value.reshape(-1).tolist() if value.ndim else int(value)
        if name.endswith(REQUANTIZER_FIELDS) and "requantizer." in name:
            owner, field = name.rsplit(".", 1)
            layer.setdefault(owner, {})[field] = number
        else:
            layer[name] = number
    return layer


def reference_stack(values: dict, tokens: list[int]) -> dict[str, list[int]]:
    """The example's int8 forward pass (``qembed``, ``qpos``, ``runBlockQ`` per block) of one token sequence: every
    intermediate as a flat list, the per-block ones under ``(name, block)``."""
    embed, ffn = int(values["config.embed_dim"]), int(values["config.ffn_dim"])
    seq_len = len(tokens)
    table = values["emb.table"].tolist()
    x = [value for token in tokens for value in table[token]]
    result = {"t.emb": x}
    x = result["t.x0"] = qadd(layer_of(values, "pos.add"), x, values["pos.table"].reshape(-1).tolist())
    for block in range(int(values["config.num_blocks"])):
        prefix = f"block{block}"
        step = {"ln1": layernorm(layer_of(values, f"{prefix}.ln1"), x, embed)}
        step |= attention(layer_of(values, f"{prefix}.attn"), step["ln1"], seq_len, embed)
        step["skip1"] = qadd(layer_of(values, f"{prefix}.add1"), step["attn"], x)
        step["ln2"] = layernorm(layer_of(values, f"{prefix}.ln2"), step["skip1"], embed)
        ff1 = layer_of(values, f"{prefix}.ff1")
        step["ff1_pre_relu"] = dense(ff1, step["ln2"], embed)
        step["ff1"] = [ff1["relu_zero_point"] if value < ff1["relu_zero_point"] else value
                       for value in step["ff1_pre_relu"]]
        step["ff2"] = dense(layer_of(values, f"{prefix}.ff2"), step["ff1"], ffn)
        x = step["block_out"] = qadd(layer_of(values, f"{prefix}.add2"), step["skip1"], step["ff2"])
        result |= {(name, block): value for name, value in step.items()}
    result["output"] = x
    return result


def assert_matches_reference(model: dict[str, np.ndarray], values: dict, tokens: np.ndarray) -> None:
    """``model`` (:func:`stack_forward`'s result) is :func:`reference_stack` of every sequence of ``tokens``."""
    for sequence in range(len(tokens)):
        expected = reference_stack(values, tokens[sequence].tolist())
        for key, value in expected.items():
            if isinstance(key, tuple):
                name, block = key
                assert model[f"t.{name}"][sequence, block].reshape(-1).tolist() == value, (sequence, key)
            else:
                assert model[key][sequence].reshape(-1).tolist() == value, (sequence, key)


# (a) TinyMind's own tensors.

def test_stack_reproduces_every_tensor_of_all_sequences(stack, params):
    result = stack_forward(params, stack["tokens"])
    assert set(result) == {key for key in stack if key.startswith("t.")} | {"output"}
    for key in TENSOR_KEYS:
        assert result[key].dtype == np.int8, key
        np.testing.assert_array_equal(result[key], stack[key], err_msg=key)
    assert stack["tokens"].shape[0] == 64


def test_leading_dimensions_and_single_sequence(stack, params):
    whole = stack_forward(params, stack["tokens"])
    grouped = stack_forward(params, stack["tokens"].reshape(8, 8, -1).astype(np.uint8))
    single = stack_forward(params, stack["tokens"][9])
    for key in TENSOR_KEYS:
        np.testing.assert_array_equal(grouped[key].reshape(whole[key].shape), whole[key], err_msg=key)
        np.testing.assert_array_equal(single[key], whole[key][9], err_msg=key)


def test_scalar_transcription_reproduces_the_file(stack):
    """The transcription the resized files are checked against is itself TinyMind's, on a few sequences."""
    for sequence in (0, 1, 8, 40, 63):
        expected = reference_stack(stack, stack["tokens"][sequence].tolist())
        for key, value in expected.items():
            name, block = key if isinstance(key, tuple) else (key, None)
            tensor = stack[f"t.{name}" if block is not None else name][sequence]
            assert (tensor if block is None else tensor[block]).reshape(-1).tolist() == value, (sequence, key)


def test_arrays_are_the_file_layout_and_round_trip(stack, params):
    content = params.arrays()
    assert set(content) == {key for key in stack if not is_ignored(key)}
    for key, value in content.items():
        assert value.dtype == stack[key].dtype and value.shape == stack[key].shape, key
        np.testing.assert_array_equal(value, stack[key], err_msg=key)
    again = StackParams.from_arrays(content).arrays()
    assert set(again) == set(content)
    for key, value in again.items():
        np.testing.assert_array_equal(value, content[key], err_msg=key)
    assert (params.vocab, params.seq_len, params.embed_dim, params.ffn_dim, params.num_blocks) == (16, 8, 8, 16, 2)


def test_load_stack_params_reads_the_shared_file(stack):
    result = stack_forward(load_stack_params(TINYMIND_STACK), stack["tokens"][:4])
    np.testing.assert_array_equal(result["output"], stack["output"][:4])


def test_host_side_builders_reproduce_the_example_parameters(stack):
    """``buildQAddParams``, ``quantizeLayerNormEpsilon``, ``buildQLayerNormOutputParams``, the sinusoidal table and
    ``quantizeBuffer`` give the file's integer parameters from its scales."""
    def grid(name: str) -> Grid:
        return Grid(float(stack[f"{name}.scale"]), int(stack[f"{name}.zero_point"]))

    adds = {"pos.add": ("scale.emb", "scale.pos", "scale.x0")}
    for block in range(2):
        scale = f"block{block}.scale"
        adds[f"block{block}.add1"] = (f"{scale}.attn", f"{scale}.in", f"{scale}.skip1")
        adds[f"block{block}.add2"] = (f"{scale}.skip1", f"{scale}.ff2", f"{scale}.out")
        for name, input_grid in (("ln1", "in"), ("ln2", "skip1")):
            layer = TinyMindLayerNorm.from_mapping(stack, f"block{block}.{name}")
            assert layer.epsilon_q == quantize_epsilon(float(stack["config.ln_eps"]),
                                                       float(stack[f"{scale}.{input_grid}.scale"]))
            assert (layer.output_multiplier, layer.output_shift) == output_params(float(stack[f"{scale}.{name}.scale"]))
            np.testing.assert_array_equal(quantize_gamma(stack[f"block{block}.float.gamma{name[-1]}"]), layer.gamma)
            np.testing.assert_array_equal(quantize_beta(stack[f"block{block}.float.beta{name[-1]}"],
                                                        float(stack[f"{scale}.{name}.scale"])), layer.beta)
    for prefix, (a, b, out) in adds.items():
        built = TinyMindAdd.from_scales(grid(a), grid(b), grid(out))
        assert built == TinyMindAdd.from_mapping(stack, prefix), prefix
    table = sinusoidal_table(8, 8)
    np.testing.assert_array_equal(table, stack["float.pos_table"])
    codes, pos_grid = quantized_positional_table(8, 8)
    np.testing.assert_array_equal(codes, stack["pos.table"])
    assert pos_grid == Grid(float(stack["scale.pos.scale"]), int(stack["scale.pos.zero_point"]))
    np.testing.assert_array_equal(quantize_buffer(stack["float.emb_table"], grid("scale.emb")), stack["emb.table"])
    assert quantize_gamma(np.array([1.0, -1.0, 2.5, -3.0, 0.5 / 16384], np.float32)).tolist() == [
        16384, -16384, 32767, -32768, 1]
    assert quantize_epsilon(1e-3, 0.0) == 1 and quantize_epsilon(1e-9, 0.5) == 1


# (b) TFLite's ADD.

def test_add_reproduces_tflite_add_vectors():
    if not TFLITE_ADD.with_suffix(".npz").exists():
        pytest.skip(f"TFLite ADD vectors not found at {TFLITE_ADD}.npz (the repo's ../shared)")
    cases = json.loads(TFLITE_ADD.with_suffix(".json").read_text())["cases"]
    with np.load(TFLITE_ADD.with_suffix(".npz")) as vectors:
        for case in cases:
            index = case["case"]
            output_scale = float(np.float32(case["output_scale"]))
            qmin, qmax = activation_range(case["activation"], 8, case["output_zero_point"], output_scale)
            add = TinyMindAdd.from_scales(Grid(case["a_scale"], case["a_zero_point"]),
                                          Grid(case["b_scale"], case["b_zero_point"]),
                                          Grid(case["output_scale"], case["output_zero_point"]), qmin=qmin, qmax=qmax)
            result = add(vectors[f"case{index}_a"], vectors[f"case{index}_b"])
            assert result.dtype == np.int8
            np.testing.assert_array_equal(result, vectors[f"case{index}_y"], err_msg=f"case {index}")


# (c) Directed cases against the transcription.

def add_layer(**changes) -> dict:
    layer = {"input_a_zero_point": -9, "input_b_zero_point": 17, "left_shift": 20, "input_a_multiplier": 1546956583,
             "input_a_shift": 4, "input_b_multiplier": 1 << 30, "input_b_shift": 0,
             "output_requantizer": {"multiplier": 1075688694, "shift": 18, "zero_point": -27, "qmin": -128,
                                    "qmax": 127}}
    requantizer = changes.pop("output_requantizer", {})
    return layer | changes | {"output_requantizer": layer["output_requantizer"] | requantizer}


def add_model(layer: dict) -> TinyMindAdd:
    return TinyMindAdd(**{name: layer[name] for name in ADD_FIELDS},
                       output_requantizer=TinyMindRequantizer(**layer["output_requantizer"]))


EVERY_PAIR = (np.repeat(np.arange(-128, 128), 256).astype(np.int8), np.tile(np.arange(-128, 128), 256).astype(np.int8))


@pytest.mark.parametrize("changes", [
    {},
    {"left_shift": 0, "input_a_shift": -3, "input_b_shift": -31},
    {"left_shift": 23, "input_a_multiplier": (1 << 31) - 1, "input_b_multiplier": (1 << 31) - 1},
    {"input_a_shift": -4, "input_b_shift": 31, "output_requantizer": {"shift": -2, "zero_point": 5}},
    {"input_a_multiplier": 0, "input_b_shift": 2, "output_requantizer": {"shift": 31, "qmin": -3, "qmax": 4}},
    {"left_shift": 22, "input_a_shift": -1, "input_b_shift": -1, "input_a_zero_point": 127,
     "input_b_zero_point": -128, "output_requantizer": {"multiplier": 1 << 30, "shift": -30}},
])
def test_add_directed_cases_match_the_transcription(changes):
    layer = add_layer(**changes)
    a, b = EVERY_PAIR
    expected = qadd(layer, a.tolist(), b.tolist())
    assert add_model(layer)(a, b).tolist() == expected


def test_standalone_multiply_saturates_its_left_shift():
    values = [INT32_MIN, -(1 << 30), -5, -1, 0, 1, 7, 1 << 24, INT32_MAX]
    for shift in (-31, -20, -8, -1, 0, 1, 5, 31):
        for multiplier in (0, 1, 1 << 30, (1 << 31) - 1):
            got = tinymind_multiply_by_quantized_multiplier(np.array(values), multiplier, shift).tolist()
            assert got == [multiply_by_quantized_multiplier(x, multiplier, shift) for x in values], (shift, multiplier)


def test_floor_isqrt_and_inv_sqrt_match_newton():
    rng = np.random.default_rng(1)
    squares = [k * k + d for k in (1, 2, 3, 1 << 14, (1 << 30) - 1, 1 << 30, (1 << 31) - 1) for d in (-1, 0, 1)]
    values = [0, 1, 2, 3, 4, 5, *squares, (1 << 60) - 1, 1 << 60, (1 << 62) - 1,
              *rng.integers(0, 1 << 62, 200, dtype=np.int64).tolist()]
    assert floor_isqrt(np.array(values)).tolist() == [integer_sqrt64(v) for v in values]
    assert all(integer_sqrt64(v) == math.isqrt(v) for v in values)
    denominators = [0, 1, 2, 3, 4, 100, 65535, 1 << 20, (1 << 31) - 1, 1 << 31, 0xFFFFFFFF,
                    *rng.integers(0, 1 << 32, 200, dtype=np.int64).tolist()]
    assert inv_sqrt_q30(np.array(denominators)).tolist() == [inv_sqrt_q30_scalar(d) for d in denominators]
    with pytest.raises(ValueError, match="floor_isqrt"):
        floor_isqrt(np.array([-1]))


def layernorm_layer(features: int, rng: np.random.Generator, **changes) -> dict:
    layer = {"gamma": rng.integers(-32768, 32768, features).tolist(), "beta": rng.integers(-40, 40, features).tolist(),
             "epsilon_q": 6, "output_multiplier": 1271948446, "output_shift": 21, "output_zero_point": 34,
             "qmin": -128, "qmax": 127}
    return layer | changes


def layernorm_model(layer: dict) -> TinyMindLayerNorm:
    return TinyMindLayerNorm(gamma=np.array(layer["gamma"], np.int16), beta=np.array(layer["beta"], np.int32),
                             **{name: layer[name] for name in LAYERNORM_FIELDS})


def directed_rows(features: int, rng: np.random.Generator) -> np.ndarray:
    """Constant rows, extremes, alternating ±, sums at the ±N/2 ties of the mean, one-hot rows and random rows."""
    rows = [np.full(features, value) for value in (-128, -1, 0, 1, 127)]
    rows += [np.resize([127, -128], features), np.resize([-128, 127], features), np.resize([3, -3, 0], features)]
    for total in (features // 2, -(features // 2), features // 2 - 1, -(features // 2) + 1, 3 * features // 2,
                  -3 * features // 2):
        row = np.zeros(features, dtype=np.int64)
        row[0] = total
        rows.append(np.clip(row, -128, 127))
    hot = np.full(features, -128)
    hot[features // 3] = 127
    rows += [hot, -1 - hot]
    rows += list(rng.integers(-128, 128, (24, features)))
    rows += list(np.clip(np.round(rng.normal(5, 2, (8, features))), -128, 127))
    return np.array(rows).astype(np.int8)


@pytest.mark.parametrize("features", [1, 3, 8, 64])
@pytest.mark.parametrize("changes", [
    {},
    {"gamma": None, "beta": None},
    {"epsilon_q": 0},
    {"epsilon_q": -4000},
    {"epsilon_q": INT32_MIN},
    {"epsilon_q": INT32_MAX},
    {"output_shift": -6, "output_multiplier": (1 << 31) - 1, "qmin": -20, "qmax": 90},
    {"output_shift": 31, "output_multiplier": 1 << 30},
    {"beta": "huge", "output_zero_point": 127},
])
def test_layernorm_directed_cases_match_the_transcription(features, changes):
    rng = np.random.default_rng(features)
    changes = dict(changes)
    if changes.get("gamma", 0) is None:
        changes |= {"gamma": [1 << 14] * features, "beta": [0] * features}
    if changes.get("beta") == "huge":
        changes["beta"] = [INT32_MAX if i % 2 else INT32_MIN for i in range(features)]
    layer = layernorm_layer(features, rng, **changes)
    rows = directed_rows(features, rng)
    expected = layernorm(layer, rows.reshape(-1).tolist(), features)
    assert layernorm_model(layer)(rows).reshape(-1).tolist() == expected


def test_layernorm_saturates_the_gamma_product():
    """A 64-feature one-hot row with γ = 32767: ``n14 · γ`` leaves int32 and saturates, in the model as in the C++."""
    rng = np.random.default_rng(3)
    layer = layernorm_layer(64, rng, gamma=[32767] * 64, beta=[0] * 64, epsilon_q=1, output_shift=5)
    row = np.full((1, 64), -128, dtype=np.int8)
    row[0, 7] = 127
    expected = layernorm(layer, row.reshape(-1).tolist(), 64)
    assert layernorm_model(layer)(row).reshape(-1).tolist() == expected
    mean, inverse = layernorm_model(layer).statistics(row)
    assert (127 - int(mean[0, 0])) * int(inverse[0, 0]) >> 16 > INT32_MAX // 32767


# (d) Resized parameter files with biases, γ ≠ 1 and β ≠ 0.

def fit(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``array`` sliced or tiled (indices modulo its size) to ``shape`` on every axis."""
    return array[np.ix_(*(np.arange(size) % old for size, old in zip(shape, array.shape, strict=True)))]


def resized(stack: dict[str, np.ndarray], vocab: int, seq_len: int, embed: int, ffn: int, blocks: int,
            seed: int) -> dict[str, np.ndarray]:
    """The shared file's parameters at other sizes, block ``b`` from block ``b % 2``, with random non-zero biases,
    γ ≠ 1 and β ≠ 0; keys the stack ignores are left out."""
    rng = np.random.default_rng(seed)
    sizes = (vocab, seq_len, embed, ffn, blocks)
    values = {f"config.{name}": np.int32(size)
              for name, size in zip(("vocab", "seq_len", "embed_dim", "ffn_dim", "num_blocks"), sizes, strict=True)}
    values |= {"emb.table": fit(stack["emb.table"], (vocab, embed)),
               "pos.table": fit(stack["pos.table"], (seq_len, embed)),
               **{key: value for key, value in stack.items() if key.startswith("pos.add.")}}
    shapes = {"attn.weights": (3, embed, embed), "ff1.weights": (ffn, embed), "ff2.weights": (embed, ffn)}
    for block in range(blocks):
        for key, value in stack.items():
            source = f"block{block % 2}."
            if key.startswith(source) and not is_ignored(key):
                name = key[len(source):]
                values[f"block{block}.{name}"] = fit(value, shapes[name]) if name in shapes else value
        prefix = f"block{block}"
        values[f"{prefix}.attn.biases"] = rng.integers(-3000, 3000, (3, embed)).astype(np.int32)
        values[f"{prefix}.ff1.biases"] = rng.integers(-2000, 2000, ffn).astype(np.int32)
        values[f"{prefix}.ff2.biases"] = rng.integers(-20000, 20000, embed).astype(np.int32)
        for name in ("ln1", "ln2"):
            values[f"{prefix}.{name}.gamma"] = rng.integers(-24000, 24000, embed).astype(np.int16)
            values[f"{prefix}.{name}.beta"] = rng.integers(-30, 30, embed).astype(np.int32)
    return values


@pytest.mark.parametrize("sizes", [(5, 5, 6, 7, 1), (20, 11, 12, 24, 3), (16, 8, 8, 16, 2)])
def test_resized_files_match_the_transcription(stack, sizes, tmp_path: Path):
    vocab, seq_len = sizes[:2]
    values = resized(stack, *sizes, seed=sum(sizes))
    np.savez(tmp_path / "resized.npz", **values)
    tokens = np.random.default_rng(7).integers(0, vocab, (4, seq_len))
    result = stack_forward(load_stack_params(tmp_path / "resized.npz"), tokens)
    assert_matches_reference(result, values, tokens)
    for key in ("t.ln1", "t.skip1", "t.ff2", "output"):
        assert len(np.unique(result[key])) > 8, key
    assert result["t.scores"].shape == (4, sizes[4], seq_len, seq_len)
    assert result["t.ff1"].shape == (4, sizes[4], seq_len, sizes[3])
    content = StackParams.from_arrays(values).arrays()
    assert set(content) == set(values)
    for key, value in content.items():
        np.testing.assert_array_equal(value, values[key], err_msg=key)


# (e) Errors.

@pytest.mark.parametrize("change, message", [
    ({"config.num_blocks": None}, "config.num_blocks is missing"),
    ({"block1.ln2.gamma": None}, "block1.ln2.gamma is missing"),
    ({"block0.add2.output_requantizer.qmax": None}, "block0.add2.output_requantizer.qmax is missing"),
    ({"config.num_blocks": np.int32(3)}, "block2.ln1.gamma is missing"),
    ({"config.vocab": np.int32(0)}, "config.vocab = 0 is out of range; allowed: an integer scalar in 1.."),
    ({"config.seq_len": np.float32(8)}, "config.seq_len is float32"),
    ({"block0.extra": np.int32(1)}, "block0.extra is an unknown key"),
    ({"emb.table": np.zeros((16, 8), np.int16)}, "emb.table is int16(16, 8); allowed: int8 (vocab, embed_dim)"),
    ({"pos.table": np.zeros((7, 8), np.int8)}, "pos.table is int8(7, 8)"),
    ({"block0.ff1.weights": np.zeros((16, 7), np.int8)}, "block0.ff1.weights is int8(16, 7)"),
    ({"block1.attn.biases": np.zeros((3, 8), np.int64)}, "block1.attn.biases is int64(3, 8)"),
    ({"block0.ln1.beta": np.zeros(8, np.int16)}, "block0.ln1.beta is int16(8,)"),
    ({"block0.ln2.epsilon_q": np.float64(6)}, "block0.ln2.epsilon_q is float64"),
    ({"block0.ln2.epsilon_q": np.int64(1 << 31)}, "block0.ln2.epsilon_q=2147483648 is out of range"),
    ({"pos.add.left_shift": np.int32(24)}, "pos.add.left_shift=24 is out of range; allowed: integers 0..23"),
    ({"block0.add1.input_a_shift": np.int32(40)}, "block0.add1.input_a_shift=40 is out of range; allowed: integers "
                                                  "-31..31"),
    ({"block1.add2.input_b_multiplier": np.int64(1 << 31)}, "block1.add2.input_b_multiplier=2147483648"),
    ({"block0.add2.output_requantizer.multiplier": np.int32(-1)}, "block0.add2.output_requantizer.multiplier=-1"),
    ({"block0.ln1.qmin": np.int32(120), "block0.ln1.qmax": np.int32(100)},
     "block0.ln1.qmin=120 is out of range; allowed: at most qmax=100"),
    ({"block1.ln1.output_zero_point": np.int32(200)}, "block1.ln1.output_zero_point=200"),
    ({"block1.ln1.output_shift": np.int32(-32)}, "block1.ln1.output_shift=-32"),
    ({"block1.attn.q_requantizer.shift": np.int32(99)}, "block1.attn.q_requantizer.shift=99"),
    ({"block0.attn.input_zero_point": np.int32(128)}, "block0.attn.input_zero_point = 128 is out of range"),
    ({"block0.attn.attn_zero_point": np.int32(0)}, "block0.attn.attn_zero_point/qmin/qmax=(0, -128, 127)"),
    ({"block0.attn.softmax_exp_lut": np.zeros(256, np.int32)}, "block0.attn.softmax_exp_lut is out of range"),
    ({"block1.scale.score": np.float32(0)}, "block1.scale.score = 0.0 is out of range"),
    ({"block0.ff1.relu_zero_point": np.int32(300)}, "block0.ff1.relu_zero_point = 300 is out of range"),
    ({"block0.ff2.requantizer.zero_point": np.int32(-129)}, "block0.ff2.requantizer.zero_point=-129"),
])
def test_bad_parameters_raise_one_line_naming_the_key(stack, change, message):
    values = {key: value for key, value in {**stack, **change}.items() if value is not None}
    with pytest.raises(ConfigError) as error:
        StackParams.from_arrays(values, "bad.npz")
    text = str(error.value)
    assert text.startswith("bad.npz: ") and message in text and "\n" not in text, text


def test_ignored_keys_are_not_read(stack):
    values = {key: value for key, value in stack.items() if not is_ignored(key)}
    values |= {"t.whatever": np.zeros(3), "float.x": np.zeros(2), "block0.scale.k": "text", "meta": np.array("m")}
    StackParams.from_arrays(values)
    assert not is_ignored("block0.scale.score") and is_ignored("block3.scale.in.scale") and is_ignored("tokens")


def test_load_stack_params_errors_name_the_file(stack, tmp_path: Path):
    path = tmp_path / "stack.npz"
    np.savez(path, **{key: value for key, value in stack.items() if key != "block0.add1.left_shift"})
    with pytest.raises(ConfigError, match=f"^{path}: block0.add1.left_shift is missing"):
        load_stack_params(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_stack_params(tmp_path / "absent.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_stack_params(tmp_path / "junk.npz")
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(ConfigError, match="not an .npz archive"):
        load_stack_params(tmp_path / "one.npy")


@pytest.mark.parametrize("tokens, message", [
    (np.full((2, 8), 16), "tokens 16..16 is out of range; allowed: token ids 0..15"),
    (np.full(8, -1), "tokens -1..-1 is out of range; allowed: token ids 0..15"),
    (np.zeros((2, 7), np.int32), r"tokens int32\(2, 7\) is out of range; allowed: integers \(..., 8\)"),
    (np.zeros((2, 8), np.float32), r"tokens float32\(2, 8\) is out of range"),
])
def test_bad_tokens_raise_config_error(params, tokens, message):
    with pytest.raises(ConfigError, match=message):
        stack_forward(params, tokens)


def test_embedding_gathers_rows_and_checks_ids():
    table = np.arange(-60, 60, dtype=np.int8).reshape(15, 8)
    embedding = TinyMindEmbedding(table)
    np.testing.assert_array_equal(embedding(np.array([[3, 0], [14, 14]])), table[[[3, 0], [14, 14]]])
    with pytest.raises(ConfigError, match=r"tokens 15\.\.15 is out of range; allowed: token ids 0\.\.14"):
        embedding(np.full(3, 15))


@pytest.mark.parametrize("changes, name", [
    ({"input_a_zero_point": 128}, "input_a_zero_point"),
    ({"left_shift": -1}, "left_shift"),
    ({"input_b_multiplier": 1 << 31}, "input_b_multiplier"),
    ({"input_b_shift": 32}, "input_b_shift"),
    ({"output_requantizer": None}, "output_requantizer"),
])
def test_add_rejects_out_of_range(changes, name):
    layer = add_model(add_layer())
    fields = {field: getattr(layer, field) for field in (*ADD_FIELDS, "output_requantizer")}
    with pytest.raises(ConfigError, match=f"^{name}.*allowed: "):
        TinyMindAdd(**(fields | changes))


@pytest.mark.parametrize("changes, name", [
    ({"gamma": np.ones(4, np.int32)}, "gamma"),
    ({"beta": np.ones(3, np.int32)}, "beta"),
    ({"epsilon_q": 1 << 31}, "epsilon_q"),
    ({"output_multiplier": -1}, "output_multiplier"),
    ({"output_shift": 32}, "output_shift"),
    ({"qmin": 5, "qmax": 4}, "qmin"),
])
def test_layernorm_rejects_out_of_range(changes, name):
    layer = {"gamma": np.ones(4, np.int16), "beta": np.zeros(4, np.int32), "epsilon_q": 1, "output_multiplier": 1 << 30,
             "output_shift": 20, "output_zero_point": 0, "qmin": -128, "qmax": 127}
    with pytest.raises(ConfigError, match=f"^{name}.*allowed: "):
        TinyMindLayerNorm(**(layer | changes))


def test_layers_reject_wrong_inputs():
    norm = TinyMindLayerNorm(gamma=np.ones(4, np.int16), beta=np.zeros(4, np.int32), epsilon_q=1,
                             output_multiplier=1 << 30, output_shift=20, output_zero_point=0, qmin=-128, qmax=127)
    for x in (np.zeros((2, 4), np.int16), np.zeros((2, 5), np.int8)):
        with pytest.raises(ValueError, match="x must be int8"):
            norm(x)
    with pytest.raises(ValueError, match="b must be int8"):
        add_model(add_layer())(np.zeros(3, np.int8), np.zeros(3, np.int32))
