"""The add unit on the command line: every bad parameter or operand is one line naming it, exit code 2; ``golden add``
reproduces TFLite's ADD (``../shared/vectors``, skipped without it)."""

import json
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run

from int8attn.golden.add_unit import AddConfig, AddModel
from int8attn.golden.params import ConfigError

TFLITE_ADD = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "tflite_add_int8"
GRIDS = ("a_scale", "a_zero_point", "b_scale", "b_zero_point", "output_scale", "output_zero_point")
INTEGERS = ["--input-a-multiplier", "1073741824", "--input-a-shift", "0", "--input-b-multiplier", "1073741824",
            "--input-b-shift", "1", "--output-multiplier", "1073741824", "--output-shift", "19"]

BAD = {
    "lanes not dividing elements": (["--elements", "12", "--lanes", "8"], "lanes=8 does not divide elements=12"),
    "zero scale": (["--a-scale", "0"], "a_scale"),
    "scale not a number": (["--b-scale", "x"], "b-scale"),
    "zero point beyond int8": (["--output-zero-point", "128"], "output_zero_point"),
    "left shift beyond 23": (["--left-shift", "24"], "left_shift"),
    "unknown activation": (["--activation", "gelu"], "activation"),
    "clamp with an activation": (["--activation", "relu", "--act-max", "50"], "act_max"),
    "act_min above act_max": (["--act-min", "10", "--act-max", "5"], "act_min"),
    "some integer parameters only": (["--input-a-multiplier", "1073741824"], "input_a_shift"),
    "integers with input scales": ([*INTEGERS, "--a-scale", "0.1"], "a_scale"),
    "multiplier 2^31": ([*INTEGERS[:-2], "--output-shift", "19", "--input-a-multiplier", "2147483648"],
                        "input_a_multiplier"),
    "output shift beyond 31": ([*INTEGERS[:-2], "--output-shift", "32"], "output_shift"),
    "input shift beyond -31": ([*INTEGERS[:2], "--input-a-shift", "-32", *INTEGERS[4:]], "input_a_shift"),
    "scales TinyMind cannot represent": (["--output-scale", "1e-20"], "output_scale"),
    "relu6 without an output scale": ([*INTEGERS, "--activation", "relu6"], "output_scale"),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_parameter_is_one_line(name: str, tmp_path: Path) -> None:
    options, parameter = BAD[name]
    result = run("verilog", "add", *options, "-o", tmp_path / "out")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("int8attn: error: ")
    assert parameter in result.stderr and "allowed" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("a", "b", "message"), [
    ((4, 8), (4, 9), "b has shape [4, 9]; allowed: a's shape [4, 8]"),
    ((), (), "a has dtype int8 and shape []; allowed: int8 with at least 1 dimension"),
])
def test_bad_operands_fail_in_one_line(a: tuple, b: tuple, message: str, tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros(a, dtype=np.int8))
    np.save(tmp_path / "b.npy", np.zeros(b, dtype=np.int8))
    result = run("golden", "add", "--a", tmp_path / "a.npy", "--b", tmp_path / "b.npy", "--out", tmp_path / "y.npy")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr and not (tmp_path / "y.npy").exists()


def test_integer_parameters_give_the_scales_layer() -> None:
    """``from_layer`` of the layer the scales give is the same arithmetic, and rebuilds from its ``as_dict``."""
    config = AddConfig(a_scale=0.1, a_zero_point=-128, b_scale=0.07, b_zero_point=127, output_scale=0.15,
                       output_zero_point=-5)
    explicit = AddConfig.from_layer(config.layer(), elements=16)
    assert explicit.layer() == config.layer()
    assert AddConfig(**explicit.as_dict()) == explicit
    with pytest.raises(ConfigError, match="given together with integer parameters"):
        AddConfig(**explicit.as_dict() | {"b_scale": 0.5})


def tflite_cases() -> list:
    if not TFLITE_ADD.with_suffix(".json").exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"TFLite ADD vectors not found at {TFLITE_ADD}.npz "
                                                                  "(the repo's ../shared)"))]
    return [pytest.param(case, id=f"case{case['case']}")
            for case in json.loads(TFLITE_ADD.with_suffix(".json").read_text())["cases"]]


@pytest.mark.parametrize("case", tflite_cases())
def test_golden_command_reproduces_tflite_add(case: dict, tmp_path: Path) -> None:
    with np.load(TFLITE_ADD.with_suffix(".npz")) as archive:
        a, b, y = (archive[f"case{case['case']}_{name}"] for name in ("a", "b", "y"))
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    options = [item for name in (*GRIDS, "activation") for item in (f"--{name.replace('_', '-')}", str(case[name]))]
    result = run("golden", "add", "--a", tmp_path / "a.npy", "--b", tmp_path / "b.npy", "--out", tmp_path / "y.npy",
                 *options)
    assert result.returncode == 0, result.stderr
    outputs = np.load(tmp_path / "y.npy")
    assert outputs.dtype == np.int8
    np.testing.assert_array_equal(outputs, y)


def test_golden_command_matches_the_model_with_integer_parameters(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    a, b = (rng.integers(-128, 128, (3, 5, 8), dtype=np.int8) for _ in range(2))
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    result = run("golden", "add", "--a", tmp_path / "a.npy", "--b", tmp_path / "b.npy", "--out", tmp_path / "y.npy",
                 *INTEGERS, "--b-zero-point", "-7", "--act-min", "-20")
    assert result.returncode == 0, result.stderr
    config = AddConfig(elements=8, lanes=1, input_a_multiplier=1 << 30, input_a_shift=0, input_b_multiplier=1 << 30,
                       input_b_shift=1, output_multiplier=1 << 30, output_shift=19, b_zero_point=-7, act_min=-20)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), AddModel(config).instances(a, b))
