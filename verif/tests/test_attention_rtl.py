"""The emitted attention unit on Verilator and Icarus, checked beat by beat against the golden model with cocotb.

Six configurations cover both conventions, one and four heads (and two), with and without an output projection, the
softmax modes ``tflite`` and ``tinymind`` under either convention, the causal mask on and off under either
convention, and every fold at its widest (a sequence every 4 cycles, far less than the latency: the engines' banks and
the Q queue hold :attr:`~int8attn.hdl.attention.Attention.sequences_ahead` sequences); each runs ``check`` (random
and directed sequences under random stalls on the input and output streams) on both simulators (the three largest
and the full-rate one on Icarus with ``-m slow``) and ``cycle`` (back-to-back sequences: the first one's latency
exactly the sidecar's, the run at the sidecar's cycles per sequence) on Verilator (all but :data:`CHECK_ONLY`). Three
more put the surrogate softmaxes (``hccs``, ``base2``, ``poly``: 8-bit unsigned codes, their top bit flipped into
P·V) in either convention, with one and two heads, on Verilator (``cycle`` on base2's). TinyMind's own attention
outputs (the shared encoder stack) go through the RTL. The vendor netlists of the engines attention is built from run
with their DSP models in the dense, matmul and softmax tests; the whole unit's (some hundred DSP instances) takes
Verilator's C++ compiler longer than the suite's budget.
"""

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run
from tinymind_reference import load_encoder_stack

from int8attn.golden.attention import TinyMindAttentionParams, TinyMindMultiHeadParams
from int8attn.golden.attention_unit import AttentionConfig, AttentionModel
from int8attn.golden.params import ConfigError
from int8attn.verif.runner import SIMULATORS, SimResult

Simulate = Callable[..., SimResult]
CHECK_SEQUENCES = 8

MULTI_HEAD = dict(seq_len=8, embed_dim=16, heads=4, head_dim=4, proj_pe=2, proj_simd=4, score_pe=2, out_dim=8,
                  out_pe=2)
CONFIGS = {
    "tflite-h1": AttentionConfig(),
    "tinymind-h1-causal": AttentionConfig(convention="tinymind", params_seed=2, causal=True),
    "tflite-h4-projection-causal": AttentionConfig(**MULTI_HEAD, params_seed=3, causal=True),
    "tinymind-h4-projection": AttentionConfig(**MULTI_HEAD, convention="tinymind", params_seed=4),
    "tinymind-h2-tflite-softmax": AttentionConfig(seq_len=8, heads=2, head_dim=4, score_pe=4, convention="tinymind",
                                                  softmax_mode="tflite", params_seed=5),
    "tflite-h1-full-rate": AttentionConfig(seq_len=4, embed_dim=4, head_dim=4, proj_simd=4, proj_pe=4, score_pe=4,
                                           params_seed=9),
}
SURROGATE_CONFIGS = {
    "tinymind-h1-hccs": AttentionConfig(convention="tinymind", softmax_mode="hccs", params_seed=6),
    "tflite-h2-base2": AttentionConfig(heads=2, head_dim=4, score_pe=2, softmax_mode="base2", params_seed=7),
    "tinymind-h1-poly": AttentionConfig(convention="tinymind", softmax_mode="poly", params_seed=8, score_pe=2,
                                        proj_pe=2),
}


def test_configs_cover_the_matrix() -> None:
    configs = list(CONFIGS.values())
    assert {config.convention for config in configs} == {"tflite", "tinymind"}
    assert {1, 4} <= {config.heads for config in configs}
    assert {(config.convention, config.mode) for config in configs} >= {("tflite", "tflite"),
                                                                        ("tinymind", "tinymind"),
                                                                        ("tinymind", "tflite")}
    assert {config.attention_params.has_output_projection for config in configs} == {False, True}
    assert {(config.convention, config.causal) for config in configs} == {
        (convention, causal) for convention in ("tflite", "tinymind") for causal in (False, True)}


SLOW_RUNS = {("tinymind-h4-projection", "icarus"), ("tinymind-h2-tflite-softmax", "icarus"),
             ("tflite-h4-projection-causal", "icarus"), ("tflite-h1-full-rate", "icarus")}
"""Icarus runs left to ``-m slow``: their Verilator runs stay in ``make test``."""
CHECK_ONLY = {"tinymind-h2-tflite-softmax"}
"""Verilator runs without ``cycle``: the same engines' latency is checked in the other configurations."""


@pytest.mark.parametrize(("name", "simulator"), [
    pytest.param(name, simulator, marks=pytest.mark.slow) if (name, simulator) in SLOW_RUNS else (name, simulator)
    for name in CONFIGS for simulator in SIMULATORS])
def test_rtl_matches_model(name: str, simulator: str, simulate: Simulate) -> None:
    config = CONFIGS[name]
    tests = "check,cycle" if simulator == "verilator" and name not in CHECK_ONLY else "check"
    result = simulate(config, simulator, rows=CHECK_SEQUENCES, test=tests)
    assert result.passed, "\n".join(result.errors)
    sidecar = json.loads((result.build_dir / "rtl" / "attention.json").read_text())
    out_beats = sidecar["streams"]["o"]["beats_per_frame"]
    assert result.reports["check"]["beats"] == result.reports["check"]["rows"] * out_beats
    if "cycle" in tests:
        assert result.latency_cycles == [sidecar["latency_cycles"]]


@pytest.mark.parametrize("name", SURROGATE_CONFIGS)
def test_surrogate_softmax_rtl_matches_model(name: str, simulate: Simulate) -> None:
    config = SURROGATE_CONFIGS[name]
    cycle = config.mode == "base2"
    result = simulate(config, "verilator", rows=CHECK_SEQUENCES, test="check,cycle" if cycle else "check")
    assert result.passed, "\n".join(result.errors)
    if cycle:
        sidecar = json.loads((result.build_dir / "rtl" / "attention.json").read_text())
        assert result.latency_cycles == [sidecar["latency_cycles"]]


def test_surrogate_probabilities_enter_p_v_on_their_grid() -> None:
    """The surrogate's codes reach P·V as they are: ``base2``'s scale is 1/255, so its requantizer is rescaled by
    256/255, and the model's probabilities are the mode's unsigned codes."""
    exact = AttentionConfig(convention="tinymind", params_seed=6)
    surrogate = AttentionConfig(convention="tinymind", softmax_mode="base2", params_seed=6)
    exact_head, surrogate_head = exact.plan().heads[0], surrogate.plan().heads[0]
    assert surrogate_head.softmax.mode == "base2" and surrogate_head.probability_zero_point == -128
    real = [head.output.multipliers[0] * 2.0 ** (-31 - head.output.shifts[0]) for head in (exact_head, surrogate_head)]
    assert real[1] / real[0] == pytest.approx(256 / 255, rel=1e-6)
    sequences = np.random.default_rng(0).integers(-128, 128, (4, *surrogate.frame_shape)).astype(np.int8)
    probs = AttentionModel(surrogate).intermediates(sequences)["probs"]
    assert probs.dtype == np.uint8 and probs.max() > 127


def test_causal_takes_the_exact_modes_only() -> None:
    with pytest.raises(ConfigError, match="softmax_mode=base2 with causal is out of range"):
        AttentionConfig(softmax_mode="base2", causal=True)


@pytest.mark.parametrize("block", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_rtl_reproduces_tinymind_attention(block: int, tmp_path: Path, simulate: Simulate) -> None:
    """TinyMind's own attention outputs ``t.attn`` of the shared encoder stack, from its ``t.ln1``, through the RTL
    (the scoreboard's model, which the last assertion ties to TinyMind's outputs)."""
    stack = load_encoder_stack()
    params = TinyMindMultiHeadParams((TinyMindAttentionParams.from_encoder_stack(stack, block),))
    np.savez(tmp_path / "params.npz", **params.arrays())
    sequences = stack["t.ln1"][:, block]
    config = AttentionConfig(params=str(tmp_path / "params.npz"), seq_len=sequences.shape[1], proj_pe=2,
                             proj_simd=2, score_pe=2)
    np.testing.assert_array_equal(config.attention_params.head_params[0].weights,
                                  stack[f"block{block}.attn.weights"])
    np.save(tmp_path / "x.npy", sequences.reshape(len(sequences), -1))
    result = simulate(config, "icarus", frames=tmp_path / "x.npy", directed=False, test="check")
    assert result.passed, "\n".join(result.errors)
    assert result.reports["check"]["rows"] == len(sequences)
    np.testing.assert_array_equal(AttentionModel(config)(sequences.reshape(len(sequences), -1)),
                                  stack["t.attn"][:, block].reshape(len(sequences), -1))


def test_golden_and_verilog_commands_take_causal(tmp_path: Path) -> None:
    x = np.random.default_rng(0).integers(-128, 128, (3, 8, 8)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    outputs = []
    for causal in ((), ("--causal",)):
        result = run("golden", "attention", "--in", tmp_path / "x.npy", "--out", tmp_path / "y.npy", *causal)
        assert result.returncode == 0, result.stderr
        outputs.append(np.load(tmp_path / "y.npy"))
        assert outputs[-1].shape == (3, 8, 8)
        result = run("verilog", "attention", *causal, "-o", tmp_path / "rtl")
        assert result.returncode == 0, result.stderr
        assert json.loads((tmp_path / "rtl" / "attention.json").read_text())["parameters"]["causal"] == bool(causal)
    np.testing.assert_array_equal(outputs[0][:, -1], outputs[1][:, -1])
    assert not np.array_equal(outputs[0][:, 0], outputs[1][:, 0])


def test_quantize_command_writes_a_parameter_file_the_unit_takes(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "float.npz", **{f"w{name}": rng.normal(0, 0.3, (16, 8)).astype(np.float32) for name in "qkv"},
             wo=rng.normal(0, 0.3, (8, 4)).astype(np.float32))
    np.save(tmp_path / "calibration.npy", rng.normal(0, 1, (4, 8, 16)).astype(np.float32))
    result = run("quantize", "attention", "--weights", tmp_path / "float.npz", "--calibration",
                 tmp_path / "calibration.npy", "--convention", "tinymind", "--heads", "2", "-o", tmp_path / "p.npz")
    assert result.returncode == 0, result.stderr
    config = AttentionConfig(params=str(tmp_path / "p.npz"))
    assert (config.heads, config.head_dim, config.embed_dim, config.out_dim) == (2, 4, 16, 4)
    refused = run("quantize", "attention", "--weights", tmp_path / "float.npz", "--calibration",
                  tmp_path / "calibration.npy", "--heads", "3", "-o", tmp_path / "q.npz")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "heads=3" in refused.stderr


@pytest.mark.parametrize(("options", "message"), [
    (("--proj-pe", "3"), "proj_pe=3 does not divide head_dim=8; allowed: 1, 2, 4, 8"),
    (("--score-pe", "16"), "score_pe=16 does not divide seq_len=8; allowed: 1, 2, 4, 8"),
    (("--softmax-mode", "exp"), "is not a choice; allowed: tflite, tinymind, lut, hccs, base2, poly"),
    (("--softmax-mode", "hccs", "--causal"), "softmax_mode=hccs with causal is out of range"),
    (("--params", "missing.npz"), "missing.npz"),
])
def test_bad_options_fail_in_one_line(options: tuple[str, ...], message: str, tmp_path: Path) -> None:
    result = run("verilog", "attention", *options, "-o", tmp_path / "rtl", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
