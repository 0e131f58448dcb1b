"""Reset anywhere: the generic ``reset_anywhere`` test (:mod:`int8attn.verif.tb_generic`) on softmax (``tflite`` and
a surrogate), the requantizer and dense, on Verilator and Icarus.

Each configuration is one the unit's own RTL tests simulate too, so the build is shared. A unit whose output queue
survives reset must fail it (and pass ``check``, which resets only at the start).
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_softmax_rtl import SURROGATES, emit_with_change

from int8attn.golden import SoftmaxConfig
from int8attn.golden.regression import DENSE_REGRESSION, REQUANT_REGRESSION, SOFTMAX_REGRESSION, softmax_label
from int8attn.units import UNITS
from int8attn.verif import tb_generic
from int8attn.verif.runner import GENERIC_TESTBENCH, GENERIC_TESTS, SIMULATORS, SimResult, cocotb_modules, run

TEST = "reset_anywhere"
SHAPE = (10, 2)
CONFIGS = {
    "softmax-tflite": next(config for config in SOFTMAX_REGRESSION if (config.n, config.lanes) == SHAPE),
    "softmax-hccs": next(config for config in SURROGATES
                         if config.mode == "hccs" and (config.n, config.lanes) == SHAPE),
    "requant": REQUANT_REGRESSION["p4-tensor-tinymind-none-int8"],
    "dense": DENSE_REGRESSION["pe2-simd4-tensor-zero-points"],
}
SCENARIOS = ("reset mid input frame", "reset mid output frame", "reset while the output is stalled",
             "back-to-back resets", *(f"random reset {index + 1}" for index in range(tb_generic.RANDOM_RESETS)))

Simulate = Callable[..., SimResult]


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", CONFIGS)
def test_reset_anywhere(name: str, simulator: str, simulate: Simulate) -> None:
    result = simulate(CONFIGS[name], simulator, test=TEST)
    assert result.passed, "\n".join(result.errors)
    report = result.reports[TEST]
    assert [scenario.split(" (")[0] for scenario in report["scenarios"]] == list(SCENARIOS)
    assert not report["skipped"]
    assert report["resets"] == len(SCENARIOS) + len(tb_generic.BACK_TO_BACK_GAPS)
    assert report["rows"] >= len(SCENARIOS) * tb_generic.FRESH_FRAMES


def surviving_output_queue(text: str) -> str:
    """The softmax Verilog with its output queue no longer reset."""
    start = text.index("module \\softmax.output_queue")
    end = text.index("endmodule", start)
    body, count = text[start:end].replace("if (rst) begin", "if (1'h0) begin"), text[start:end].count("if (rst)")
    assert count, "the output queue has no `if (rst)` block left to mutate"
    return text[:start] + body + text[end:]


def test_a_queue_that_survives_reset_is_caught(monkeypatch: pytest.MonkeyPatch, quick_simulator: str,
                                               tmp_path: Path) -> None:
    emit_with_change(monkeypatch, verilog=surviving_output_queue)
    config = SoftmaxConfig(n=8, lanes=2, input_scale=0.05, beta=1.0)
    result = run(config, quick_simulator, test=f"check,{TEST}", rows=4, build_dir=tmp_path)
    assert result.reports["check"]["passed"], result.errors
    assert not result.reports[TEST]["passed"]
    assert any("unexpected output beat" in error for error in result.errors), result.errors


def test_generic_tests_are_offered_to_every_unit() -> None:
    for name in GENERIC_TESTS:
        assert hasattr(tb_generic, name), name
        assert all(name not in unit.tests for unit in UNITS.values())
    assert cocotb_modules("int8attn.verif.tb_softmax", ("check",)) == "int8attn.verif.tb_softmax"
    assert cocotb_modules("int8attn.verif.tb_dense", ("check", TEST)) == f"int8attn.verif.tb_dense,{GENERIC_TESTBENCH}"
    with pytest.raises(ValueError, match="unknown test"):
        run(SOFTMAX_REGRESSION[0], "icarus", test="reset")


def test_stimuli_come_from_the_unit_testbench() -> None:
    class Bench:
        sidecar = {"unit": "matmul"}

    bench: Any = Bench()
    assert tb_generic.unit_stimuli(bench).__module__ == UNITS["matmul"].testbench
    assert softmax_label(CONFIGS["softmax-tflite"]) == "tflite-n10-p2-s0.05-b0.5-zp5"
