"""The matmul unit: TFLite's BATCH_MATMUL outputs (shared vectors) through ``int8attn golden matmul`` and through the
RTL, the RTL against the model on both simulators and the vendor targets, and one-line errors for bad operands and
fold factors."""

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run
from engine_checks import VENDOR_ROWS, cycle_tests

from int8attn.golden.matmul import MatmulConfig
from int8attn.golden.params import TARGETS, ConfigError
from int8attn.golden.regression import MATMUL_REGRESSION
from int8attn.verif.runner import SIMULATORS, SimResult
from int8attn.verif.testbench import CYCLE_TEST_ROWS

BATCH_MATMUL = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "tflite_batch_matmul_int8"
QUANTISATION = ("lhs_scale", "lhs_zero_point", "rhs_scale", "rhs_zero_point", "output_scale", "output_zero_point")
Simulate = Callable[..., SimResult]


def batch_matmul_cases() -> list:
    if not BATCH_MATMUL.with_suffix(".json").exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"TFLite BATCH_MATMUL vectors not found at "
                                                                  f"{BATCH_MATMUL}.npz (the repo's ../shared)"))]
    cases = json.loads(BATCH_MATMUL.with_suffix(".json").read_text())["cases"]
    return [pytest.param(case, id=f"case{case['case']}") for case in cases]


def case_vectors(index: int) -> dict[str, np.ndarray]:
    with np.load(BATCH_MATMUL.with_suffix(".npz")) as archive:
        return {name: archive[f"case{index}_{name}"] for name in ("lhs", "rhs", "y")}


def case_options(case: dict) -> list[str]:
    options = [item for name in QUANTISATION for item in (f"--{name.replace('_', '-')}", str(case[name]))]
    return options + (["--adj-y"] if case["adj_y"] else [])


@pytest.mark.parametrize("case", batch_matmul_cases())
def test_golden_command_reproduces_tflite_batch_matmul(case: dict, tmp_path: Path) -> None:
    vectors = case_vectors(case["case"])
    np.save(tmp_path / "a.npy", vectors["lhs"])
    np.save(tmp_path / "b.npy", vectors["rhs"])
    result = run("golden", "matmul", "--lhs", tmp_path / "a.npy", "--rhs", tmp_path / "b.npy", "--out",
                 tmp_path / "y.npy", *case_options(case))
    assert result.returncode == 0, result.stderr
    outputs = np.load(tmp_path / "y.npy")
    assert outputs.dtype == np.int8
    np.testing.assert_array_equal(outputs, vectors["y"])


@pytest.mark.parametrize(("lhs", "rhs", "options", "message"), [
    ((2, 4, 8), (2, 8, 3), ("--adj-y",), "rhs has shape [2, 8, 3]; allowed: [.., N, 8]"),
    ((2, 4, 8), (3, 8, 3), (), "rhs has shape [3, 8, 3]; allowed: [.., 8, N] with lhs's leading dimensions [2]"),
    ((8,), (8, 3), (), "lhs has dtype int8 and shape [8]; allowed: int8 with at least 2 dimensions"),
])
def test_bad_operands_fail_in_one_line(lhs: tuple, rhs: tuple, options: tuple, message: str, tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros(lhs, dtype=np.int8))
    np.save(tmp_path / "b.npy", np.zeros(rhs, dtype=np.int8))
    result = run("golden", "matmul", "--lhs", tmp_path / "a.npy", "--rhs", tmp_path / "b.npy", "--out",
                 tmp_path / "y.npy", *options)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr and not (tmp_path / "y.npy").exists()


@pytest.mark.parametrize(("parameters", "message"), [
    ({"n": 6, "pe": 4}, "pe=4 does not divide n=6; allowed: 1, 2, 3, 6"),
    ({"k": 6, "simd": 4}, "simd=4 does not divide k=6; allowed: 1, 2, 3, 6"),
    ({"m": 2, "n": 4, "pe": 4, "adj_y": True}, "pe=4 is out of range with adj_y=True; allowed: at most m=2"),
    ({"m": 2, "k": 4, "simd": 4}, "simd=4 is out of range with adj_y=False; allowed: at most m=2"),
])
def test_bad_fold_factors_are_refused(parameters: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        MatmulConfig(**parameters)


CONFIGS = MATMUL_REGRESSION


def check_rtl(config: MatmulConfig, simulator: str, rows: int, simulate: Simulate, tests: str) -> None:
    result = simulate(config, simulator, rows=rows, test=tests)
    assert result.passed, "\n".join(result.errors)
    assert result.reports["check"]["beats"] == result.reports["check"]["rows"] * config.m * config.folds
    if "cycle" in tests:
        sidecar = json.loads((result.build_dir / "rtl" / "matmul.json").read_text())
        assert result.reports["cycle"]["rows"] == max(rows, CYCLE_TEST_ROWS)
        assert result.latency_cycles == [sidecar["latency_cycles"]]
        assert sidecar["cycles_per_frame"] == config.m * config.folds * config.beats


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", CONFIGS)
def test_rtl_matches_model(name: str, simulator: str, rows: int, simulate: Simulate) -> None:
    check_rtl(CONFIGS[name], simulator, rows, simulate, cycle_tests(simulator))


@pytest.mark.parametrize("target", [target for target in TARGETS if target != "generic"])
def test_vendor_target_matches_model(target: str, simulate: Simulate) -> None:
    """The netlist with the target's DSP and block-RAM primitives, simulated with their vendor models, on every beat
    (16 random rows and the directed ones: the vendor models make Icarus slow). The ECP5 pipeline's exact latency and
    full rate are the dense unit's cycle test on ECP5's netlist: the same engine."""
    check_rtl(replace(CONFIGS["pe3-simd4-adj-y"], target=target), "icarus", VENDOR_ROWS, simulate, "check")


SHARED_CASES = {2: (3, 4), 7: (5, 6)}
"""Cases of the shared BATCH_MATMUL vectors run through the RTL (the Q·Kᵀ and P·V forms), with their (pe, simd)."""


@pytest.mark.parametrize("case", SHARED_CASES)
def test_rtl_reproduces_tflite_batch_matmul(case: int, tmp_path: Path, simulate: Simulate) -> None:
    if not BATCH_MATMUL.with_suffix(".json").exists():
        pytest.skip(f"TFLite BATCH_MATMUL vectors not found at {BATCH_MATMUL}.npz (the repo's ../shared)")
    meta = json.loads(BATCH_MATMUL.with_suffix(".json").read_text())["cases"][case]
    vectors = case_vectors(case)
    pe, simd = SHARED_CASES[case]
    config = MatmulConfig.from_operands(vectors["lhs"], vectors["rhs"], adj_y=meta["adj_y"], pe=pe, simd=simd,
                                        **{name: meta[name] for name in QUANTISATION})
    np.savez(tmp_path / "frames.npz", lhs=vectors["lhs"], rhs=vectors["rhs"])
    result = simulate(config, "verilator", frames=tmp_path / "frames.npz", directed=False, test="check")
    assert result.passed, "\n".join(result.errors)
    assert result.reports["check"]["rows"] == len(vectors["y"])
