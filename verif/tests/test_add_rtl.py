"""The emitted add unit on Verilator and Icarus, checked beat by beat against the golden model with cocotb.

Two configurations cover the scales and the integer parameters, one and four lanes, zero points at both ends, a fused
activation and an explicit clamp, right-shifted input terms and left-shifted ones that saturate both ways, a wrapping
left shift in the output requantizer and a multiplier of 2^30 (a shift, no DSP block); each runs ``check`` (random
and directed operands under random stalls) on both simulators and ``cycle`` (exact latency, ``lanes`` elements per
cycle) on Verilator. Two TFLite ADD cases (``../shared/vectors``: every int8 pair with zero points at both ends, and
scales 1000:1) and TinyMind's first residual add (``block0.add1`` on the example's own tensors) run through the RTL;
the vendor targets run one configuration on Icarus with their primitives' models (``ecp5`` with ``cycle`` too). A
missing simulator or ``../shared`` skips its tests with the reason.
"""

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run, verilator_lint
from engine_checks import VENDOR_ROWS, cycle_tests, vendor_tests
from tinymind_reference import load_encoder_stack

from int8attn.golden.add import TinyMindAdd
from int8attn.golden.add_unit import AddConfig, AddModel
from int8attn.golden.params import TARGETS
from int8attn.verif.runner import SIMULATORS, SimResult
from int8attn.verif.testbench import CYCLE_TEST_ROWS

TFLITE_ADD = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "tflite_add_int8"
GRIDS = ("a_scale", "a_zero_point", "b_scale", "b_zero_point", "output_scale", "output_zero_point", "activation")
Simulate = Callable[..., SimResult]

CONFIGS = {
    "p4-scales-relu": AddConfig(elements=16, lanes=4, a_scale=0.02, a_zero_point=10, b_scale=0.03, b_zero_point=-10,
                                output_scale=0.04, output_zero_point=-100, activation="relu"),
    "p1-integers-saturating": AddConfig(elements=8, lanes=1, a_zero_point=0, b_zero_point=127, output_zero_point=5,
                                        left_shift=23, input_a_multiplier=1546956583, input_a_shift=-8,
                                        input_b_multiplier=1 << 30, input_b_shift=-1, output_multiplier=1 << 30,
                                        output_shift=-2, act_min=-100, act_max=90),
}
VENDOR_CONFIG = "p4-scales-relu"
VENDOR_TARGETS = tuple(target for target in TARGETS if target != "generic")


def check_rtl(config: AddConfig, simulator: str, rows: int, simulate: Simulate, tests: str) -> SimResult:
    result = simulate(config, simulator, rows=rows, test=tests)
    assert result.passed, "\n".join(result.errors)
    assert result.reports["check"]["beats"] == result.reports["check"]["rows"] * config.beats
    if "cycle" in tests:
        sidecar = json.loads((result.build_dir / "rtl" / "add.json").read_text())
        assert result.reports["cycle"]["rows"] == max(rows, CYCLE_TEST_ROWS)
        assert result.latency_cycles == [sidecar["latency_cycles"]]
        assert result.elements_per_cycle == pytest.approx(config.lanes, rel=0.01)
    return result


def test_configs_cover_the_arithmetic() -> None:
    layers = [config.layer() for config in CONFIGS.values()]
    shifts = [shift for layer in layers for shift in (layer.input_a_shift, layer.input_b_shift)]
    assert min(shifts) < 0 < max(shifts)
    assert any(layer.output_requantizer.shift < 0 for layer in layers)
    assert {1 << 30} < {m for layer in layers for m in (layer.input_a_multiplier, layer.input_b_multiplier)}
    assert {config.lanes for config in CONFIGS.values()} == {1, 4}


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", CONFIGS)
def test_rtl_matches_model(name: str, simulator: str, rows: int, simulate: Simulate) -> None:
    check_rtl(CONFIGS[name], simulator, rows, simulate, cycle_tests(simulator))


@pytest.mark.parametrize("target", VENDOR_TARGETS)
def test_vendor_target_matches_model(target: str, simulate: Simulate) -> None:
    """The netlist with the target's DSP primitives, simulated on Icarus with their vendor models, on every beat;
    ``cycle`` (the exact latency of the deepest pipeline) on ECP5's."""
    check_rtl(replace(CONFIGS[VENDOR_CONFIG], target=target), "icarus", VENDOR_ROWS, simulate, vendor_tests(target))


def tflite_cases() -> dict:
    if not TFLITE_ADD.with_suffix(".json").exists():
        return {}
    return {case["case"]: case for case in json.loads(TFLITE_ADD.with_suffix(".json").read_text())["cases"]}


SHARED_CASES = {1: (16, "verilator", None), 4: (17, "icarus", 200)}
"""TFLite ADD cases run through the RTL, with their lanes, simulator and rows (``None``: all): every int8 pair with
zero points −128 and 127, and scales 1000:1 (a right-shifted term of a multiplier that is not a power of two) in rows
of 17."""


@pytest.mark.parametrize("case", SHARED_CASES)
def test_rtl_reproduces_tflite_add(case: int, tmp_path: Path, simulate: Simulate) -> None:
    cases = tflite_cases()
    if not cases:
        pytest.skip(f"TFLite ADD vectors not found at {TFLITE_ADD}.npz (the repo's ../shared)")
    lanes, simulator, rows = SHARED_CASES[case]
    with np.load(TFLITE_ADD.with_suffix(".npz")) as archive:
        a, b, y = (archive[f"case{case}_{name}"][:rows] for name in ("a", "b", "y"))
    config = AddConfig.from_operands(a, b, lanes=lanes, **{name: cases[case][name] for name in GRIDS})
    np.testing.assert_array_equal(AddModel(config).instances(a, b), y)
    np.savez(tmp_path / "frames.npz", a=a, b=b)
    result = simulate(config, simulator, frames=tmp_path / "frames.npz", directed=False, test="check")
    assert result.passed, "\n".join(result.errors)
    assert result.reports["check"]["rows"] == len(y)


def test_rtl_reproduces_tinymind_residual_add(tmp_path: Path, simulate: Simulate) -> None:
    """``skip1 = QAdd(attn, x)`` of block 0 on the 64 sequences of TinyMind's example, a sequence a frame."""
    stack = load_encoder_stack()
    layer = TinyMindAdd.from_mapping(stack, "block0.add1")
    a, b = stack["t.attn"][:, 0].reshape(64, -1), stack["t.x0"].reshape(64, -1)
    config = AddConfig.from_layer(layer, elements=a.shape[1], lanes=8)
    np.testing.assert_array_equal(AddModel(config)({"a": a, "b": b}), stack["t.skip1"][:, 0].reshape(64, -1))
    np.savez(tmp_path / "frames.npz", a=a, b=b)
    result = simulate(config, "icarus", frames=tmp_path / "frames.npz", directed=False, test="check")
    assert result.passed, "\n".join(result.errors)
    assert result.reports["check"]["rows"] == 64


@pytest.mark.parametrize("name", CONFIGS)
def test_verilator_lint_is_clean(name: str, tmp_path: Path) -> None:
    options = [item for key, value in CONFIGS[name].as_dict().items() if value is not None
               for item in (f"--{key.replace('_', '-')}", str(value))]
    emitted = run("verilog", "add", *options, "-o", tmp_path)
    assert emitted.returncode == 0, emitted.stderr
    result = verilator_lint(tmp_path / "add.v")
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
