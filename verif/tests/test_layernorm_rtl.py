"""The emitted layernorm RTL on Verilator and Icarus, checked beat by beat against the golden model with cocotb.

Each configuration runs ``check`` (random rows and the directed ones: constant rows, the largest variance, ties of
the mean, variance sums below ``N/2``; random idle input cycles and output backpressure) and ``cycle`` (1000
back-to-back rows: the measured latency equals the sidecar's, ``lanes`` elements per cycle). The configurations
cover the shared encoder stack's ``block0.ln1`` (skipped without ``../shared``), real γ ≠ 1 and β ≠ 0 at N = 1, 8 and 64
with P = 1, 2 and 4 (N = 64, P = 1 with the iterative square root and divider), a parameter file at the edges
(ε < 0, so ``d = 0`` and the zero root; a left shift; γ at the int16 extremes; β that wraps; N = 12, whose
divisions are multiplications), and the ECP5 netlist on Icarus with its primitives' models.
"""

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Fragment
from cli_runner import run, verilator_lint
from tinymind_reference import TINYMIND_STACK

from int8attn.golden.layernorm import TinyMindLayerNorm
from int8attn.golden.layernorm_unit import LayerNormConfig, directed_layernorm_rows
from int8attn.golden.stimuli import directed_int8_rows
from int8attn.hdl.layernorm import LayerNorm
from int8attn.verif.runner import SIMULATORS, SimResult
from int8attn.verif.testbench import CYCLE_TEST_ROWS

Simulate = Callable[..., SimResult]
ICARUS_CYCLE_TEST_MAX_BEATS = 8
"""Icarus runs the cycle test (256 rows) on rows of up to 8 beats; Verilator on every row."""


def reals(n: int, seed: int) -> dict[str, tuple[float, ...]]:
    """Real γ (around 1, some negative) and β (around 0) of ``n`` features."""
    rng = np.random.default_rng(seed)
    return {"gamma": tuple(float(value) for value in rng.normal(1.0, 0.6, n).round(3)),
            "beta": tuple(float(value) for value in rng.normal(0.0, 0.5, n).round(3))}


GENERATED = {
    "n1-p1": LayerNormConfig(features=1, lanes=1, gamma=(1.7,), beta=(-0.3,), output_zero_point=9),
    "n8-p4": LayerNormConfig(features=8, lanes=4, output_zero_point=-7, input_scale=0.02, output_scale=0.05,
                             **reals(8, 1)),
    "n64-p1": LayerNormConfig(features=64, lanes=1, epsilon=0.05, qmin=-100, qmax=90, **reals(64, 2)),
}


def edge_layer(n: int) -> TinyMindLayerNorm:
    """A layer at the edges the real values never reach: ε < 0 (``d = 0``: the zero root and the saturated
    inverse), a left shift of the output multiplier, γ at the int16 extremes and β that wraps int32."""
    rng = np.random.default_rng(n)
    gamma = rng.integers(-(1 << 15), 1 << 15, n).astype(np.int16)
    gamma[:3] = (-(1 << 15), (1 << 15) - 1, 0)
    beta = rng.integers(-200, 200, n).astype(np.int32)
    beta[0] = (1 << 31) - 1
    return TinyMindLayerNorm(gamma=gamma, beta=beta, epsilon_q=-4, output_multiplier=1518500250, output_shift=-2,
                             output_zero_point=3, qmin=-120, qmax=125)


@pytest.fixture(scope="module")
def edge_params(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("layernorm") / "edge.npz"
    np.savez(path, **edge_layer(12).arrays("block0.ln1"))
    return path


def shared_config() -> LayerNormConfig:
    if not TINYMIND_STACK.exists():
        pytest.skip(f"TinyMind encoder-stack vectors not found at {TINYMIND_STACK} (the repo's ../shared)")
    return LayerNormConfig(params=str(TINYMIND_STACK), block=0, which="ln1", lanes=2)


def check_rtl(config: LayerNormConfig, simulator: str, rows: int, simulate: Simulate, *, cycle: bool = True,
              frames: Path | None = None) -> None:
    """``check`` (and ``cycle``) passed and compared every row: ``rows`` random ones, or those of ``frames``, and the
    directed ones."""
    tests = "check,cycle" if cycle else "check"
    result = simulate(config, simulator, rows=rows, test=tests, frames=frames)
    checked = rows if frames is None else len(np.load(frames))
    assert result.passed, "\n".join(result.errors)
    rng = np.random.default_rng(0)
    directed = (sum(1 for _ in directed_int8_rows(config.features, rng))
                + sum(1 for _ in directed_layernorm_rows(config.features, rng)))
    assert result.reports["check"]["rows"] == checked + directed
    assert result.reports["check"]["beats"] == (checked + directed) * config.beats
    if cycle:
        sidecar = json.loads((result.build_dir / "rtl" / "layernorm.json").read_text())
        assert result.reports["cycle"]["rows"] == max(rows, CYCLE_TEST_ROWS)
        assert result.latency_cycles == [sidecar["latency_cycles"]]
        assert result.elements_per_cycle == config.lanes


def with_cycle(config: LayerNormConfig, simulator: str) -> bool:
    return simulator == "verilator" or config.beats <= ICARUS_CYCLE_TEST_MAX_BEATS


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_shared_block0_ln1_matches_model(simulator: str, rows: int, simulate: Simulate, tmp_path: Path) -> None:
    """Random rows on Verilator; on Icarus the example's own inputs of block 0 (its 64 sequences of 8 tokens), whose
    outputs are TinyMind's ``t.ln1`` (``test_layernorm_unit.py`` checks the model against them)."""
    config = shared_config()
    frames = None
    if simulator == "icarus":
        frames = tmp_path / "x0.npy"
        with np.load(TINYMIND_STACK) as archive:
            np.save(frames, archive["t.x0"].reshape(-1, config.features))
    check_rtl(config, simulator, rows, simulate, cycle=with_cycle(config, simulator), frames=frames)


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", GENERATED)
def test_generated_parameters_match_model(name: str, simulator: str, rows: int, simulate: Simulate) -> None:
    config = GENERATED[name]
    check_rtl(config, simulator, rows, simulate, cycle=with_cycle(config, simulator))


def test_edge_parameters_match_model(edge_params: Path, rows: int, simulate: Simulate) -> None:
    config = LayerNormConfig(params=str(edge_params), lanes=2)
    assert config.plan.zero_root and config.plan.left_shift == 2
    check_rtl(config, "icarus", rows, simulate)


def test_ecp5_netlist_matches_model(rows: int, simulate: Simulate) -> None:
    """The ECP5 Verilog (MULT18X18D and DP16KD with our models of them), on Icarus."""
    config = replace(GENERATED["n8-p4"], target="ecp5")
    check_rtl(config, "icarus", rows, simulate)


def test_configs_cover_the_brief() -> None:
    configs = GENERATED.values()
    assert {config.features for config in configs} == {1, 8, 64}
    assert {config.lanes for config in configs} | {2} == {1, 2, 4}
    assert all(config.layer.beta.any() and (config.layer.gamma != 1 << 14).any() for config in configs)
    iterative, pipelined = LayerNorm(GENERATED["n64-p1"]), LayerNorm(GENERATED["n8-p4"])
    for unit in (iterative, pipelined):
        Fragment.get(unit, None)
    assert not iterative.isqrt.pipelined and not iterative.reciprocal.pipelined
    assert pipelined.isqrt.pipelined and pipelined.reciprocal.pipelined


def test_edge_parameters_lint(edge_params: Path, tmp_path: Path) -> None:
    """Per-feature tables, multiplications by 1/N, the zero root and a left shift: Verilator's lint is clean."""
    emitted = run("verilog", "layernorm", "--params", edge_params, "--lanes", "2", "-o", tmp_path)
    assert emitted.returncode == 0, emitted.stderr
    result = verilator_lint(tmp_path / "layernorm.v")
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
