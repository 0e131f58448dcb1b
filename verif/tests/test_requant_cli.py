"""The requantizer on the command line: every bad parameter is one line naming it, exit code 2; the good paths."""

from pathlib import Path

import numpy as np
import pytest
from cli_runner import run

from int8attn.golden.requant import RequantConfig, RequantModel
from int8attn.golden.stimuli import int32_rows

BAD = {
    "shift too far left": (["--multipliers", "1073741824", "--shifts", "31"], "shifts"),
    "shift too far right": (["--multipliers", "1073741824", "--shifts", "-32"], "shifts"),
    "negative multiplier": (["--multipliers", "-1", "--shifts", "0"], "multipliers"),
    "multiplier 2^31": (["--multipliers", "2147483648", "--shifts", "0"], "multipliers"),
    "multiplier not an integer": (["--multipliers", "1.5", "--shifts", "0"], "multipliers"),
    "shifts without multipliers": (["--shifts", "3"], "shifts"),
    "mismatched lengths": (["--channels", "2", "--lanes", "1", "--multipliers", "1073741824,1073741824", "--shifts",
                            "1"], "shifts"),
    "per-channel length not channels": (["--channels", "16", "--weight-scales", "0.1,0.2,0.3"], "weight_scales"),
    "act_min above act_max": (["--act-min", "10", "--act-max", "5"], "act_m"),
    "zero scale": (["--output-scale", "0"], "output_scale"),
    "negative scale": (["--input-scale", "-0.5"], "input_scale"),
    "scale not a number": (["--weight-scales", "x"], "weight-scales"),
    "scales with multipliers": (["--multipliers", "1073741824", "--shifts", "0", "--input-scale", "0.1"],
                                "input_scale"),
    "output bits 12": (["--output-bits", "12"], "output_bits"),
    "zero point beyond int8": (["--output-zero-point", "128"], "output_zero_point"),
    "lanes not dividing channels": (["--channels", "16", "--lanes", "3"], "lanes"),
    "unknown activation": (["--activation", "gelu"], "activation"),
    "unknown convention": (["--convention", "gemmlowp"], "convention"),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_parameter_is_one_line(name: str, tmp_path: Path) -> None:
    options, parameter = BAD[name]
    result = run("verilog", "requant", *options, "-o", tmp_path / "out")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("int8attn: error: ")
    assert parameter in result.stderr and "allowed" in result.stderr
    assert not (tmp_path / "out").exists()


def test_golden_command_matches_the_model(tmp_path: Path) -> None:
    rows = int32_rows("dense", 8, 20, 3)
    np.save(tmp_path / "acc.npy", rows)
    options = ["--channels", "8", "--weight-scales", "0.01,0.02,0.03,0.04,0.05,0.06,0.07,0.08", "--activation", "relu",
               "--output-zero-point", "-5"]
    result = run("golden", "requant", *options, "--in", tmp_path / "acc.npy", "--out", tmp_path / "q.npy")
    assert result.returncode == 0, result.stderr
    config = RequantConfig(channels=8, lanes=1, weight_scales=tuple(0.01 * k for k in range(1, 9)), activation="relu",
                           output_zero_point=-5)
    np.testing.assert_array_equal(np.load(tmp_path / "q.npy"), RequantModel(config)(rows))


def test_golden_command_refuses_int8_rows(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((2, 16), dtype=np.int8))
    result = run("golden", "requant", "--in", tmp_path / "x.npy", "--out", tmp_path / "q.npy")
    assert result.returncode == 2 and "int32" in result.stderr
