"""The emitted embedding unit on Verilator and Icarus, checked beat by beat against the golden model with cocotb.

Random tables without and with the positional encoding (two beats a token, a vocabulary that is and one that is not a
power of two, a row in one beat) run ``check`` (random and directed token sequences under random stalls) on both
simulators and ``cycle`` (exact latency, ``lanes`` elements per cycle) on Verilator; TinyMind's example
(``../shared/vectors/tinymind_encoder_stack.npz``: ``emb.table``, ``pos.table``, ``pos.add``) runs its own 64 token
sequences through the RTL. The vendor targets run a one-lane positional unit on Icarus with their primitives'
models (``ecp5`` with ``cycle`` too). A missing simulator or ``../shared`` skips its tests with the reason.
"""

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run, verilator_lint
from engine_checks import VENDOR_ROWS, cycle_tests, vendor_tests
from tinymind_reference import TINYMIND_STACK, load_encoder_stack

from int8attn.golden.embedding_unit import EmbeddingConfig, EmbeddingModel
from int8attn.golden.params import TARGETS
from int8attn.verif.runner import SIMULATORS, SimResult
from int8attn.verif.testbench import CYCLE_TEST_ROWS

Simulate = Callable[..., SimResult]

CONFIGS = {
    "random-p4": EmbeddingConfig(seq_len=4),
    "random-positional-one-beat": EmbeddingConfig(vocab=10, embed_dim=12, lanes=12, seq_len=5, positional=True,
                                                  params_seed=3),
}
VENDOR_CONFIG = EmbeddingConfig(vocab=10, embed_dim=2, lanes=1, seq_len=5, positional=True, params_seed=3)
"""One lane: the vendor models (a DSP block model per partial product) make Icarus slow."""
VENDOR_TARGETS = tuple(target for target in TARGETS if target != "generic")


def check_rtl(config: EmbeddingConfig, simulator: str, rows: int, simulate: Simulate, tests: str) -> None:
    result = simulate(config, simulator, rows=rows, test=tests)
    assert result.passed, "\n".join(result.errors)
    assert result.reports["check"]["beats"] == result.reports["check"]["rows"] * config.seq_len * config.beats
    if "cycle" in tests:
        sidecar = json.loads((result.build_dir / "rtl" / "embedding.json").read_text())
        assert result.reports["cycle"]["rows"] == max(rows, CYCLE_TEST_ROWS)
        assert result.latency_cycles == [sidecar["latency_cycles"]]
        assert result.elements_per_cycle == pytest.approx(config.lanes / config.embed_dim, rel=0.01)


def test_configs_cover_the_structure() -> None:
    configs = CONFIGS.values()
    assert {config.positional for config in configs} == {False, True}
    assert {config.beats for config in configs} == {1, 2}
    assert {config.vocab & (config.vocab - 1) == 0 for config in configs} == {False, True}


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", CONFIGS)
def test_rtl_matches_model(name: str, simulator: str, rows: int, simulate: Simulate) -> None:
    check_rtl(CONFIGS[name], simulator, rows, simulate, cycle_tests(simulator))


@pytest.mark.parametrize("target", VENDOR_TARGETS)
def test_vendor_target_matches_model(target: str, simulate: Simulate) -> None:
    """The netlist with the target's DSP and block-RAM primitives, simulated on Icarus with their vendor models, on
    every beat; ``cycle`` (the exact latency of the deepest pipeline, with its register slice) on ECP5's."""
    check_rtl(replace(VENDOR_CONFIG, target=target), "icarus", VENDOR_ROWS, simulate, vendor_tests(target))


def test_rtl_reproduces_tinymind_embedding_and_positional_encoding(tmp_path: Path, simulate: Simulate) -> None:
    """``x0 = QPositionalEncoding1D(QEmbedding(tokens))`` on the 64 token sequences of TinyMind's example."""
    stack = load_encoder_stack()
    config = EmbeddingConfig(params=str(TINYMIND_STACK), positional=True, lanes=2)
    np.testing.assert_array_equal(EmbeddingModel(config)(stack["tokens"]), stack["t.x0"].reshape(64, -1))
    np.save(tmp_path / "tokens.npy", stack["tokens"])
    result = simulate(config, "verilator", frames=tmp_path / "tokens.npy", directed=False, test="check")
    assert result.passed, "\n".join(result.errors)
    assert result.reports["check"]["rows"] == 64


@pytest.mark.parametrize("options", [[], ["--positional", "--vocab", "10", "--embed-dim", "6", "--lanes", "3"]],
                         ids=["default", "positional"])
def test_verilator_lint_is_clean(options: list[str], tmp_path: Path) -> None:
    emitted = run("verilog", "embedding", *options, "-o", tmp_path)
    assert emitted.returncode == 0, emitted.stderr
    result = verilator_lint(tmp_path / "embedding.v")
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
