"""The layernorm unit's configuration, model and integer plan, and its command line: the plan the hardware is built
from computes TinyMind's outputs exactly (one-pass variance, divisions by N as multiplications, the non-restoring square
root, the zero root), the directed rows reach the edges they name, and every bad parameter is one line, exit code 2."""

from pathlib import Path

import numpy as np
import pytest
from cli_runner import run
from tinymind_reference import TINYMIND_STACK

from int8attn.golden.layernorm import TinyMindLayerNorm, floor_isqrt
from int8attn.golden.layernorm_unit import (
    MAX_FEATURES,
    FloorDivision,
    LayerNormConfig,
    LayerNormModel,
    LayerNormPlan,
    directed_layernorm_rows,
    floor_division_constants,
    nonrestoring_isqrt,
)
from int8attn.golden.stimuli import directed_int8_rows, int8_rows


def random_layer(n: int, rng: np.random.Generator, **changes) -> TinyMindLayerNorm:
    """A layer of ``n`` features with random γ, β and output parameters; ``changes`` replace any of them."""
    values = {"gamma": rng.integers(-(1 << 15), 1 << 15, n).astype(np.int16),
              "beta": rng.integers(-300, 300, n).astype(np.int32), "epsilon_q": int(rng.integers(1, 50)),
              "output_multiplier": int(rng.integers(1 << 30, 1 << 31)), "output_shift": int(rng.integers(14, 24)),
              "output_zero_point": int(rng.integers(-128, 128)), "qmin": -128, "qmax": 127}
    return TinyMindLayerNorm(**(values | changes))


def edge_rows(n: int, rng: np.random.Generator) -> np.ndarray:
    rows = [row for _, row in directed_int8_rows(n, rng)] + [row for _, row in directed_layernorm_rows(n, rng)]
    rows += list(int8_rows("uniform", n, 40, rng)) + list(int8_rows("normal", n, 40, rng))
    rows += list(np.clip(rng.integers(-2, 3, (40, n)) + rng.integers(-128, 128, (40, 1)), -128, 127))
    return np.array(rows, dtype=np.int8)


LAYER_CHANGES = {
    "random": lambda n, rng: {},
    "epsilon 0 (zero root)": lambda n, rng: {"epsilon_q": 0},
    "negative epsilon": lambda n, rng: {"epsilon_q": -7},
    "epsilon 2^31 - 1": lambda n, rng: {"epsilon_q": (1 << 31) - 1},
    "epsilon -2^31": lambda n, rng: {"epsilon_q": -(1 << 31)},
    "left shift": lambda n, rng: {"output_shift": -3},
    "left shift capped": lambda n, rng: {"output_shift": -31},
    "no shift": lambda n, rng: {"output_shift": 0},
    "huge beta (wraps)": lambda n, rng: {"beta": rng.integers(-(1 << 31), 1 << 31, n).astype(np.int32)},
}
"""Changes to :func:`random_layer` of ``n`` features: every edge of ε, of the output shift and of β."""


@pytest.mark.parametrize("n", [1, 2, 3, 8, 10, 64, 100, 1000, 1024])
@pytest.mark.parametrize("name", LAYER_CHANGES)
def test_plan_computes_the_model(n: int, name: str) -> None:
    rng = np.random.default_rng(n)
    layer = random_layer(n, rng, **LAYER_CHANGES[name](n, rng))
    plan = LayerNormPlan(layer)
    x = edge_rows(n, rng)
    np.testing.assert_array_equal(plan.forward(x), layer(x))
    stats = plan.statistics(x)
    assert stats["variance_sum"].max() <= plan.variance_sum_max
    assert stats["variance"].max() <= plan.variance_max
    assert plan.denominator_min <= stats["denominator"].min() <= stats["denominator"].max() <= plan.denominator_max
    assert stats["root"].max() < 1 << plan.root_bits
    assert np.where(stats["root"] == 0, plan.divisor_min, stats["root"]).min() >= plan.divisor_min
    assert stats["inverse"].max() <= plan.inverse_max
    mean, inverse = layer.statistics(x)
    np.testing.assert_array_equal(stats["mean"], mean)
    np.testing.assert_array_equal(stats["inverse"], inverse)


@pytest.mark.parametrize("n", [4, 8, 64, 1024])
def test_directed_rows_reach_their_edges(n: int) -> None:
    layer = random_layer(n, np.random.default_rng(0), epsilon_q=0)
    plan = LayerNormPlan(layer)
    labelled = dict(directed_layernorm_rows(n, np.random.default_rng(1)))
    stats = plan.statistics(np.array(list(labelled.values())))
    by_label = {label: {key: int(value[index, 0]) for key, value in stats.items()}
                for index, label in enumerate(labelled)}
    assert by_label["constant 0"]["denominator"] == 0 and by_label["constant 0"]["inverse"] == (1 << 31) - 1
    assert by_label["half -128, half 127 (largest variance)"]["variance_sum"] == plan.variance_sum_max
    assert by_label["half -128, half 127 (largest variance)"]["variance"] == plan.variance_max
    off = by_label["constant 5 but one element off by 1"]
    assert off["variance"] == 0 and off["variance_sum"] > 0
    assert by_label["sum 0·N + N/2 (a tie of the mean for even N)"]["mean"] == 1
    assert by_label["sum 0·N - N/2 (a tie of the mean for even N)"]["mean"] == -1


def test_floor_division_constants_are_exact() -> None:
    for divisor in list(range(1, 130)) + [255, 1000, 1023, 1024]:
        division = FloorDivision(divisor, 128 * divisor + divisor // 2)
        dividends = np.arange(division.dividend_max + 1)
        np.testing.assert_array_equal(division(dividends), dividends // divisor)
    for divisor in (3, 10, 100, 1000):
        division = FloorDivision(divisor, 16257 * divisor)
        dividends = np.concatenate([np.arange(1 << 16), division.dividend_max - np.arange(1 << 16),
                                    np.random.default_rng(divisor).integers(0, division.dividend_max, 1 << 16)])
        dividends = dividends[dividends >= 0]
        np.testing.assert_array_equal(division(dividends), dividends // divisor)
    assert floor_division_constants(64, 20) == (1, 6)


def test_nonrestoring_isqrt_is_floor_isqrt() -> None:
    roots = np.arange(1 << 12, dtype=np.int64)
    values = np.concatenate([roots * roots + delta for delta in (-1, 0, 1)] + [np.arange(1 << 12)])
    values = values[values >= 0]
    large = np.random.default_rng(0).integers(0, 1 << 60, 5000)
    for batch, bits in ((values, 13), (large, 30), (np.array([(1 << 60) - 1, 1 << 58, 0]), 30)):
        np.testing.assert_array_equal(nonrestoring_isqrt(batch, bits), floor_isqrt(batch))


def test_shared_parameters_load() -> None:
    if not TINYMIND_STACK.exists():
        pytest.skip(f"TinyMind encoder-stack vectors not found at {TINYMIND_STACK} (the repo's ../shared)")
    config = LayerNormConfig(params=str(TINYMIND_STACK), lanes=2, block=1, which="ln2")
    with np.load(TINYMIND_STACK) as archive:
        expected = TinyMindLayerNorm.from_mapping(dict(archive), "block1.ln2")
        x = archive["t.skip1"][:, 1].reshape(-1, config.features)
        np.testing.assert_array_equal(LayerNormModel(config)(x), archive["t.ln2"][:, 1].reshape(x.shape))
        first = LayerNormConfig(params=str(TINYMIND_STACK))
        x = archive["t.x0"].reshape(-1, first.features)
        np.testing.assert_array_equal(LayerNormModel(first)(x), archive["t.ln1"][:, 0].reshape(x.shape))
        np.testing.assert_array_equal(first.plan.forward(x), archive["t.ln1"][:, 0].reshape(x.shape))
    assert config.features == expected.features and config.integer_parameters()["epsilon_q"] == expected.epsilon_q
    assert LayerNormConfig(**config.as_dict()) == config


def test_real_values_quantise_through_the_host_helpers() -> None:
    config = LayerNormConfig(features=4, lanes=2, gamma=(0.5, -1.0, 2.0, 1.0), beta=(0.1,), epsilon=1e-5,
                             input_scale=0.02, output_scale=0.05, output_zero_point=-3)
    parameters = config.integer_parameters()
    assert parameters["gamma"] == [8192, -16384, 32767, 16384]
    assert parameters["beta"] == [2] * 4 and parameters["epsilon_q"] == 1 and parameters["output_zero_point"] == -3
    assert LayerNormConfig(**config.as_dict()) == config


def write_layer(path: Path, layer: TinyMindLayerNorm, prefix: str = "block0.ln1") -> Path:
    np.savez(path, **layer.arrays(prefix))
    return path


BAD = {
    "features 0": (["--features", "0"], "features"),
    "features too many": (["--features", str(MAX_FEATURES + 1)], "features"),
    "lanes not dividing": (["--features", "10", "--lanes", "4"], "lanes"),
    "gamma count": (["--features", "8", "--gamma", "1,2,3"], "gamma"),
    "gamma not finite": (["--gamma", "nan"], "gamma"),
    "gamma not a number": (["--gamma", "x"], "gamma"),
    "beta too large": (["--beta", "1e9", "--output-scale", "0.001"], "beta"),
    "epsilon negative": (["--epsilon", "-1"], "epsilon"),
    "epsilon too large": (["--epsilon", "1e6", "--input-scale", "1e-4"], "epsilon"),
    "output scale too large": (["--output-scale", "100"], "output_scale"),
    "zero point beyond int8": (["--output-zero-point", "128"], "output_zero_point"),
    "qmin above qmax": (["--qmin", "5", "--qmax", "4"], "qmin"),
    "block without params": (["--block", "1"], "block"),
    "which unknown": (["--which", "ln3"], "which"),
    "params missing": (["--params", "absent.npz"], "absent.npz"),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_parameter_is_one_line(name: str, tmp_path: Path) -> None:
    options, parameter = BAD[name]
    result = run("verilog", "layernorm", *options, "-o", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("int8attn: error: "), result.stderr
    assert parameter in result.stderr and "allowed" in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


def test_bad_parameter_files_are_one_line(tmp_path: Path) -> None:
    layer = random_layer(8, np.random.default_rng(0))
    good = write_layer(tmp_path / "good.npz", layer)
    arrays = layer.arrays("block0.ln1")
    np.savez(tmp_path / "gamma32.npz", **(arrays | {"block0.ln1.gamma": layer.gamma.astype(np.int32)}))
    np.savez(tmp_path / "shift.npz", **(arrays | {"block0.ln1.output_shift": np.int32(40)}))
    np.savez(tmp_path / "vector.npz", **(arrays | {"block0.ln1.qmin": np.zeros(2, np.int32)}))
    cases = [(["--params", good, "--block", "1"], "block1.ln1.gamma is missing"),
             (["--params", good, "--which", "ln2"], "block0.ln2.gamma is missing"),
             (["--params", good, "--features", "16"], "features=16"),
             (["--params", good, "--gamma", "1.5"], "gamma=(1.5,) is given together with params"),
             (["--params", tmp_path / "gamma32.npz"], "block0.ln1.gamma int32(8,) is out of range"),
             (["--params", tmp_path / "shift.npz"], "block0.ln1.output_shift=40 is out of range"),
             (["--params", tmp_path / "vector.npz"], "block0.ln1.qmin = int32(2,) is out of range")]
    for options, message in cases:
        result = run("verilog", "layernorm", *options, "-o", tmp_path / "out")
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert message in result.stderr and "allowed" in result.stderr, result.stderr
    result = run("verilog", "layernorm", "--params", good, "--lanes", "2", "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr


def test_golden_command_matches_the_model(tmp_path: Path) -> None:
    rows = int8_rows("normal", 12, 20, 3)
    np.save(tmp_path / "x.npy", rows)
    options = ["--features", "12", "--gamma=" + ",".join(f"{0.25 * k - 1:g}" for k in range(12)),
               "--beta=" + ",".join(["-0.5", "0.25"] * 6), "--output-zero-point", "-5"]
    result = run("golden", "layernorm", *options, "--in", tmp_path / "x.npy", "--out", tmp_path / "y.npy")
    assert result.returncode == 0, result.stderr
    config = LayerNormConfig(features=12, lanes=1, gamma=tuple(0.25 * k - 1 for k in range(12)),
                             beta=(-0.5, 0.25) * 6, output_zero_point=-5)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), LayerNormModel(config)(rows))
