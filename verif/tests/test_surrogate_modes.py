"""The surrogate modes of the softmax configuration: their knobs and rules, their models, the ``golden`` command's
codes and the accuracy metrics that rank them."""

import math

import numpy as np
import pytest
from cli_runner import run

from int8attn.accuracy import average_ranks, evaluate, spearman_rows, surrogates
from int8attn.golden import SoftmaxConfig, SoftmaxModel
from int8attn.golden.base2 import base2_extended_softmax, base2_softmax, distance_multiplier, exponent_parts
from int8attn.golden.config import MODE_KNOBS
from int8attn.golden.hccs import HccsParams, hccs_softmax
from int8attn.golden.params import ConfigError
from int8attn.golden.stimuli import mixed_int8_rows

RNG_SEED = 9


def rows(n: int, count: int = 200) -> np.ndarray:
    return np.stack([row for _, row in mixed_int8_rows(count, n, np.random.default_rng(RNG_SEED))])


@pytest.mark.parametrize(("knobs", "rule"), [
    ({"mode": "tflite", "hccs_b": 3}, "hccs_b=3 applies to mode hccs only"),
    ({"mode": "hccs", "rom_width": 12}, "rom_width=12 applies to mode lut only"),
    ({"mode": "lut", "output_bits": 12, "base2_chunk": 4}, "base2_chunk=4 applies to mode base2 only"),
    ({"mode": "hccs", "output_bits": 12}, "output_bits=12 is not supported by mode hccs; allowed: 8, 16"),
    ({"mode": "hccs", "hccs_b": 100, "hccs_s": 10, "hccs_dmax": 11}, "B - S*Dmax >= 0"),
    ({"mode": "hccs", "n": 8, "hccs_b": 100, "hccs_s": 10, "hccs_dmax": 8}, "N*(B - S*Dmax) >= 256"),
    ({"mode": "hccs", "hccs_sum": "int16", "n": 64}, "N*B <= 32767"),
    ({"mode": "hccs", "hccs_b": 32768}, "hccs_b=32768 is out of range; allowed: integers 0..32767"),
    ({"mode": "base2", "n": 64, "lanes": 32}, "base2_chunk=16 must be a multiple of lanes=32"),
    ({"mode": "base2", "n": 20, "lanes": 4, "base2_chunk": 8}, "leaves a last chunk of 0 or at least 8 of n=20"),
    ({"mode": "base2", "base2_grid_shift": 9}, "base2_grid_shift=9 is out of range; allowed: integers 0..8"),
    ({"mode": "base2", "base2_grid_shift": 2, "base2_frac_bits": 3, "base2_chunk": 64},
     "base2_frac_bits=3 is out of range; allowed: 0..base2_grid_shift=2"),
    ({"mode": "base2", "n": 64, "base2_grid_shift": 3, "base2_frac_bits": 3},
     "allowed: base2_chunk >= n=64, got 16"),
    ({"mode": "base2", "n": 16, "base2_requantize": True, "input_scale": 1e-6},
     "input_scale=1e-06 with base2_requantize gives the distance multiplier 0 on the ln2/2.0 grid; "
     "allowed: 1..16777216"),
    ({"mode": "hccs", "base2_requantize": True}, "base2_requantize=True applies to mode base2 only"),
    ({"mode": "poly", "poly_b": 100.0}, "allowed: 1..255 LSBs"),
    ({"mode": "poly", "poly_n": 4}, "poly_n=4 is out of range; allowed: integers 1..3"),
])
def test_rules_name_the_parameter(knobs: dict, rule: str) -> None:
    with pytest.raises(ConfigError, match=rule.replace("*", r"\*").replace("(", r"\(").replace(")", r"\)")):
        SoftmaxConfig(**knobs)


def test_each_mode_keeps_only_its_knobs() -> None:
    for mode, knobs in MODE_KNOBS.items():
        parameters = SoftmaxConfig(mode=mode).as_dict()
        others = {name for names in MODE_KNOBS.values() for name in names} - set(knobs)
        assert set(knobs) <= set(parameters) and not others & set(parameters)


@pytest.mark.parametrize("output_bits", [8, 16])
@pytest.mark.parametrize("reciprocal", ["div", "clb"])
def test_hccs_mode_is_the_reference_kernel(output_bits: int, reciprocal: str) -> None:
    config = SoftmaxConfig(n=16, mode="hccs", hccs_b=1000, hccs_s=30, hccs_dmax=20, hccs_reciprocal=reciprocal,
                           output_bits=output_bits, hccs_sum="int16")
    x = rows(16)
    params = HccsParams(b=1000, s=30, dmax=20, reciprocal=reciprocal, output_bits=output_bits)
    codes = SoftmaxModel(config)(x)
    assert codes.dtype == params.output_dtype
    np.testing.assert_array_equal(codes, hccs_softmax(x, params))


def test_hccs_wide_sum_agrees_where_aie4ml_applies_and_extends_it() -> None:
    narrow = SoftmaxConfig(n=16, mode="hccs", hccs_sum="int16")
    wide = SoftmaxConfig(n=16, mode="hccs")
    x = rows(16)
    np.testing.assert_array_equal(SoftmaxModel(narrow)(x), SoftmaxModel(wide)(x))
    long_rows = rows(1024, 20)
    params = HccsParams(b=1024, s=48, dmax=16)
    model = SoftmaxModel(SoftmaxConfig(n=1024, lanes=4, mode="hccs"))
    np.testing.assert_array_equal(model(long_rows), hccs_softmax(long_rows, params, sum_bits=model.sum_bits + 1))


@pytest.mark.parametrize(("n", "chunk", "grid_shift"), [(64, 16, 0), (64, 16, 5), (10, 16, 0), (64, 64, 3)])
def test_base2_mode_is_ita_streaming(n: int, chunk: int, grid_shift: int) -> None:
    config = SoftmaxConfig(n=n, lanes=1, mode="base2", base2_chunk=chunk, base2_grid_shift=grid_shift)
    x = rows(n)
    np.testing.assert_array_equal(SoftmaxModel(config)(x), base2_softmax(x, chunk, grid_shift))


def test_base2_mode_extension() -> None:
    """The extension through the configuration, and the tables the RTL takes: ``term = m >> i`` and the output
    weight ``m·2^(9 − i)`` of :func:`exponent_parts`, zero from ``rom_depth`` on."""
    config = SoftmaxConfig(n=64, lanes=4, input_scale=0.05, mode="base2", base2_chunk=64, base2_grid_shift=3,
                           base2_frac_bits=3, base2_requantize=True)
    model = SoftmaxModel(config)
    multiplier = distance_multiplier(0.05, 3)
    x = rows(64)
    np.testing.assert_array_equal(model(x), base2_extended_softmax(x, 3, 3, multiplier))
    assert model.constants()["distance_multiplier"] == multiplier
    whole, mantissa = exponent_parts(np.arange(256), 3, 3, multiplier)
    depth = model.rom_depth
    assert 0 < depth < 256 and whole[depth - 1] < 9 == whole[depth]
    np.testing.assert_array_equal(model.score_table, mantissa >> whole)
    np.testing.assert_array_equal(model.weight_table[:depth], mantissa[:depth] << (9 - whole[:depth]))
    assert not model.weight_table[depth:].any() and not model.score_table[depth:].any()


@pytest.mark.parametrize("degree", [1, 2, 3])
@pytest.mark.parametrize("delta", [1e-3, 0.5])
def test_poly_mode_follows_its_definition(degree: int, delta: float) -> None:
    """Element by element in Python integers, from the formulas of :mod:`int8attn.golden.surrogates`."""
    scale = 0.05
    config = SoftmaxConfig(n=10, lanes=1, input_scale=scale, mode="poly", poly_n=degree, poly_b=3.0,
                           poly_delta=delta)
    model = SoftmaxModel(config)
    s32 = float(np.float32(scale))
    offset = round(float(np.float32(3.0)) / s32)
    floor = round(float(np.float32(delta)) / s32 ** degree)
    smallest = offset ** degree + floor + 9 * floor
    shift = max(f for f in range(31) if (255 << f) // smallest <= 32767)
    for row in rows(10, 60):
        top = max(int(v) for v in row)
        scores = [max(offset - (top - int(v)), 0) ** degree + floor for v in row]
        inv = (255 << shift) // sum(scores)
        expected = [min(score * inv >> shift, 255) for score in scores]
        assert model(row[None, :])[0].tolist() == expected


def test_surrogate_sidecar_facts() -> None:
    hccs = SoftmaxModel(SoftmaxConfig(mode="hccs", output_bits=16))
    assert (hccs.output_scale, hccs.output_zero_point, hccs.output_dtype) == (2.0 ** -15, 0, np.int16)
    base2 = SoftmaxModel(SoftmaxConfig(mode="base2"))
    assert (base2.output_scale, base2.output_zero_point, base2.output_dtype) == (1 / 255, 0, np.uint8)


@pytest.mark.parametrize(("options", "dtype"), [
    (["--mode", "hccs"], np.uint8),
    (["--mode", "hccs", "--output-bits", "16", "--hccs-reciprocal", "clb"], np.int16),
    (["--mode", "base2", "--base2-grid-shift", "5"], np.uint8),
    (["--mode", "poly", "--poly-n", "3"], np.uint8),
])
def test_golden_command_writes_the_codes(options: list[str], dtype: type, tmp_path) -> None:
    x = rows(64, 30)
    np.save(tmp_path / "x.npy", x)
    result = run("golden", "softmax", "--n", "64", *options, "--in", tmp_path / "x.npy", "--out", tmp_path / "y.npy")
    assert result.returncode == 0, result.stderr
    written = np.load(tmp_path / "y.npy")
    flags = dict(zip(options[::2], options[1::2], strict=True))
    config = SoftmaxConfig(n=64, lanes=1, **{key[2:].replace("-", "_"): int(value) if value.isdigit() else value
                                             for key, value in flags.items()})
    assert written.dtype == dtype
    np.testing.assert_array_equal(written, SoftmaxModel(config)(x))


def test_golden_command_rejects_a_broken_rule(tmp_path) -> None:
    np.save(tmp_path / "x.npy", rows(8, 2))
    result = run("golden", "softmax", "--n", "8", "--mode", "hccs", "--hccs-b", "100", "--hccs-s", "10",
                 "--hccs-dmax", "8", "--in", tmp_path / "x.npy", "--out", tmp_path / "y.npy")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "N*(B - S*Dmax) >= 256" in result.stderr


def test_average_ranks_share_ties() -> None:
    values = np.array([[3, 1, 1, 2, 5], [0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(average_ranks(values), [[3, 0.5, 0.5, 2, 4], [2, 2, 2, 2, 2]])


def test_spearman_matches_the_rank_formula() -> None:
    rng = np.random.default_rng(3)
    a = rng.permutation(np.tile(np.arange(12), (40, 1)).T).T
    b = rng.permutation(np.tile(np.arange(12), (40, 1)).T).T
    d = (a - b).astype(np.float64)
    np.testing.assert_allclose(spearman_rows(a, b), 1 - 6 * (d * d).sum(axis=1) / (12 * (12 ** 2 - 1)))
    assert spearman_rows(np.zeros((1, 4)), np.zeros((1, 4)))[0] == 1
    assert spearman_rows(np.zeros((1, 4)), np.arange(4)[None, :])[0] == 0


def test_accuracy_reports_every_surrogate() -> None:
    base = SoftmaxConfig(n=64, input_scale=0.05)
    configs = surrogates(base)
    assert {config.mode for config in configs.values()} == {"hccs", "base2", "poly"}
    base2 = next(config for config in configs.values() if config.mode == "base2")
    assert math.isclose(base2.input_scale, math.log(2) / 2 ** base2.base2_grid_shift)
    x = rows(64, 100)
    for config in configs.values():
        metrics = evaluate(config, x)
        assert metrics.bit_identical_to_tflite is None
        assert 0 < metrics.rank_correlation <= 1 and metrics.argmax_agreement > 0.5
