"""The emitted requantizer on Verilator and Icarus, checked beat by beat against the golden model with cocotb.

Four configurations together cover per-tensor and per-channel multipliers, both conventions, ``lanes`` 1, 4 and
16, every fused activation, both output widths, and left and right shifts (per-channel tables with both, and with
right shifts only, the common case); each runs ``check`` (random and directed int32 rows under random
stalls) and ``cycle`` (exact latency, ``lanes`` elements per cycle) on both simulators. A missing simulator skips its
tests with the install command.
"""

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run, verilator_lint

from int8attn.golden.params import TARGETS
from int8attn.golden.regression import REQUANT_REGRESSION
from int8attn.golden.requant import ACTIVATIONS, CONVENTIONS, OUTPUT_BITS, RequantConfig
from int8attn.golden.stimuli import directed_int32_rows
from int8attn.verif.runner import SIMULATORS, SimResult
from int8attn.verif.testbench import CYCLE_TEST_ROWS

LANES = (1, 4, 16)
CONFIGS = REQUANT_REGRESSION

Simulate = Callable[..., SimResult]


def test_configs_cover_every_value() -> None:
    configs = CONFIGS.values()
    assert {config.lanes for config in configs} == set(LANES)
    assert {config.convention for config in configs} == set(CONVENTIONS)
    assert {config.activation for config in configs} == set(ACTIVATIONS)
    assert {config.output_bits for config in configs} == set(OUTPUT_BITS)
    assert {config.per_channel for config in configs} == {False, True}
    assert {(config.per_channel, config.convention) for config in configs} == {
        (per_channel, convention) for per_channel in (False, True) for convention in CONVENTIONS}
    tables = [set(config.channel_multipliers()[1]) for config in configs if config.per_channel and config.beats > 1]
    assert any(min(shifts) < 0 < max(shifts) for shifts in tables)
    assert any(max(shifts) <= 0 for shifts in tables)


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", CONFIGS)
def test_rtl_matches_model(name: str, simulator: str, rows: int, simulate: Simulate) -> None:
    check_rtl(CONFIGS[name], simulator, rows, simulate)


VENDOR_TARGETS = tuple(target for target in TARGETS if target != "generic")
VENDOR_CASES = [(name, target, "icarus") for name in CONFIGS for target in VENDOR_TARGETS] + [
    pytest.param("p4-channel-tinymind-int16", target, "verilator", marks=pytest.mark.slow)
    for target in VENDOR_TARGETS]


@pytest.mark.parametrize(("name", "target", "simulator"), VENDOR_CASES)
def test_vendor_target_matches_model(name: str, target: str, simulator: str, rows: int, simulate: Simulate) -> None:
    """The netlist with the target's DSP primitives, simulated with their vendor models, on every beat."""
    check_rtl(replace(CONFIGS[name], target=target), simulator, rows, simulate)


def check_rtl(config: RequantConfig, simulator: str, rows: int, simulate: Simulate) -> None:
    result = simulate(config, simulator, rows=rows, test="check,cycle")
    assert result.passed, "\n".join(result.errors)
    directed = sum(1 for _ in directed_int32_rows(config.channels, np.random.default_rng(0)))
    assert result.reports["check"]["rows"] == rows + directed
    assert result.reports["check"]["beats"] == (rows + directed) * config.beats
    sidecar = json.loads((result.build_dir / "rtl" / "requant.json").read_text())
    assert result.reports["cycle"]["rows"] == max(rows, CYCLE_TEST_ROWS)
    assert result.latency_cycles == [sidecar["latency_cycles"]]
    assert result.elements_per_cycle == config.lanes


LINTED = {
    "per-channel-right-shifts": ["--channels", "32", "--lanes", "16", "--weight-scales",
                                 ",".join(f"{0.001 * (k + 1):g}" for k in range(32)), "--activation", "relu6"],
    "per-channel-left-shifts-int16": ["--channels", "2", "--lanes", "1", "--multipliers", "1073741824,1518500250",
                                      "--shifts", "3,-2", "--output-bits", "16", "--output-zero-point", "-300"],
}


@pytest.mark.parametrize("name", LINTED)
def test_verilator_lint_is_clean(name: str, tmp_path: Path) -> None:
    """Tables whose shift fields are all zero on one side are left out, not emitted zero-wide."""
    emitted = run("verilog", "requant", *LINTED[name], "-o", tmp_path)
    assert emitted.returncode == 0, emitted.stderr
    result = verilator_lint(tmp_path / "requant.v")
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
