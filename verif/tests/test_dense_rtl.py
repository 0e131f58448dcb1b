"""The emitted dense unit on Verilator and Icarus, checked beat by beat against the golden model with cocotb.

Four configurations cover per-tensor and per-channel scales, both conventions, every fused activation, weight and
input zero points, one and several folds and input beats, and ``pe``/``simd`` from 1 to 8; each runs ``check``
(random and directed rows under random stalls on both streams) on both simulators and ``cycle`` (exact latency, one
output beat every ``in / simd`` cycles, ``(out / pe)·(in / simd)`` cycles a row) on Verilator. The vendor targets run
one configuration with their DSP models, and TFLite's own FULLY_CONNECTED rows go through the RTL.
"""

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from engine_checks import VENDOR_ROWS, cycle_tests, vendor_tests
from test_dense_model import FULLY_CONNECTED, case_weights

from int8attn.golden.dense import DenseConfig
from int8attn.golden.params import TARGETS
from int8attn.golden.regression import DENSE_REGRESSION
from int8attn.golden.requant import ACTIVATIONS, CONVENTIONS
from int8attn.verif.runner import SIMULATORS, SimResult
from int8attn.verif.testbench import CYCLE_TEST_ROWS

Simulate = Callable[..., SimResult]

CONFIGS = DENSE_REGRESSION


def test_configs_cover_every_value() -> None:
    configs = list(CONFIGS.values())
    assert {config.tensors.activation for config in configs} == set(ACTIVATIONS)
    assert {config.convention for config in configs} == set(CONVENTIONS)
    assert {config.per_channel for config in configs} == {False, True}
    assert {config.folds > 1 for config in configs} == {False, True}
    assert {config.beats > 1 for config in configs} == {False, True}
    assert any(config.tensors.weight_zero_point for config in configs)


def check_rtl(config: DenseConfig, simulator: str, rows: int, simulate: Simulate, tests: str) -> None:
    result = simulate(config, simulator, rows=rows, test=tests)
    assert result.passed, "\n".join(result.errors)
    assert result.reports["check"]["beats"] == result.reports["check"]["rows"] * config.folds
    if "cycle" in tests:
        sidecar = json.loads((result.build_dir / "rtl" / "dense.json").read_text())
        assert result.reports["cycle"]["rows"] == max(rows, CYCLE_TEST_ROWS)
        assert result.latency_cycles == [sidecar["latency_cycles"]]
        assert sidecar["cycles_per_frame"] == config.folds * config.beats
        assert result.elements_per_cycle == pytest.approx(config.in_features / sidecar["cycles_per_frame"], rel=0.01)


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", CONFIGS)
def test_rtl_matches_model(name: str, simulator: str, rows: int, simulate: Simulate) -> None:
    check_rtl(CONFIGS[name], simulator, rows, simulate, cycle_tests(simulator))


@pytest.mark.parametrize("target", [target for target in TARGETS if target != "generic"])
def test_vendor_target_matches_model(target: str, simulate: Simulate) -> None:
    """The netlist with the target's DSP primitives, simulated with their vendor models, on every beat (16 random
    rows and the directed ones: the vendor models make Icarus slow)."""
    check_rtl(replace(CONFIGS["pe2-simd4-tensor-zero-points"], target=target), "icarus", VENDOR_ROWS, simulate,
              vendor_tests(target))


SHARED_CASES = {1: (4, 7), 6: (4, 8)}
"""Cases of the shared FULLY_CONNECTED vectors run through the RTL, with their (pe, simd)."""


@pytest.mark.parametrize("case", SHARED_CASES)
def test_rtl_reproduces_tflite_fully_connected(case: int, tmp_path: Path, simulate: Simulate) -> None:
    if not FULLY_CONNECTED.with_suffix(".json").exists():
        pytest.skip(f"TFLite FULLY_CONNECTED vectors not found at {FULLY_CONNECTED}.npz (the repo's ../shared)")
    meta = json.loads(FULLY_CONNECTED.with_suffix(".json").read_text())["cases"][case]
    with np.load(FULLY_CONNECTED.with_suffix(".npz")) as archive:
        vectors = {key: archive[key] for key in archive.files}
    pe, simd = SHARED_CASES[case]
    config = DenseConfig(weights=str(case_weights(meta, vectors, tmp_path / "w.npz")), pe=pe, simd=simd)
    np.save(tmp_path / "x.npy", vectors[f"case{case}_x"])
    result = simulate(config, "verilator", frames=tmp_path / "x.npy", directed=False, test="check")
    assert result.passed, "\n".join(result.errors)
    assert result.reports["check"]["rows"] == len(vectors[f"case{case}_y"])
