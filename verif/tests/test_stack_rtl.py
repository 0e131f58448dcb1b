"""The emitted encoder stack on Verilator and Icarus, checked beat by beat against the golden model with cocotb, and
the unit on the command line.

Three configurations, one build each per simulator: the bundled example's parameters (non-zero biases, γ ≠ 1, β ≠ 0) at
eight lanes with folded feed-forward engines; TinyMind's own parameters (``../shared/vectors/
tinymind_encoder_stack.npz``, skipped without it) at two lanes, where every link gathers or splits; and seeded weights
of other sizes (V = 10, S = 6, E = 12, F = 24, one block) whose lanes need both a split and a gather. Each runs
``check`` (200 random token sequences and the directed ones under random stalls) on Verilator and Icarus (16 on Icarus
in ``make test``, the 200 with ``-m slow``) and ``cycle`` (back-to-back sequences: the first one's latency exactly the
sidecar's, the run within the sidecar's cycles a sequence) on Verilator; TinyMind's own 64 sequences go through the RTL
too; each surrogate softmax runs in the one-block stack; the vendor targets' netlists run a one-block stack of four
features on Icarus with their primitives' models (``ecp5`` with ``cycle`` too). The vendor runs, the surrogate stacks,
the bundled example's and TinyMind's stack are ``slow`` (:data:`SLOW_RUNS`). A missing simulator or ``../shared`` skips
its tests with the reason.
"""

import gc
import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run, verilator_lint
from engine_checks import VENDOR_ROWS, vendor_tests
from tinymind_reference import TINYMIND_STACK, load_encoder_stack

from int8attn.golden.attention import TinyMindMultiHeadParams
from int8attn.golden.attention_unit import AttentionConfig
from int8attn.golden.params import TARGETS
from int8attn.golden.stack import stack_forward
from int8attn.golden.stack_unit import StackConfig, StackModel
from int8attn.hdl.emit import emit
from int8attn.hdl.stack import EncoderStack
from int8attn.verif.runner import SIMULATORS, SimResult

Simulate = Callable[..., SimResult]
VENDOR_TARGETS = tuple(target for target in TARGETS if target != "generic")
SEQUENCES = 200
ICARUS_SEQUENCES = 16
"""Icarus takes a second or more per sequence: ``make test`` runs 16 there, :func:`test_icarus_runs_200_sequences`
(slow) the 200."""

CONFIGS = {
    "bundled-p8": dict(lanes=8, proj_simd=8, proj_pe=8, score_pe=1, ff1_simd=8, ff1_pe=4, ff2_simd=16, ff2_pe=2),
    "tinymind-p2": dict(params=str(TINYMIND_STACK), lanes=2, proj_simd=2, proj_pe=4, score_pe=2, ff1_simd=4,
                        ff1_pe=4, ff2_simd=8, ff2_pe=2),
    "seeded-e12": dict(vocab=10, seq_len=6, embed_dim=12, ffn_dim=24, num_blocks=1, lanes=4, proj_simd=6, proj_pe=3,
                       score_pe=2, ff1_simd=3, ff1_pe=8, ff2_simd=6, ff2_pe=6),
}


def config_named(name: str) -> StackConfig:
    if "params" in CONFIGS[name]:
        load_encoder_stack()
    return StackConfig(**CONFIGS[name])


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_configs_cover_the_structure() -> None:
    """Between them the configurations split, gather, split then gather (through the lanes' gcd), queue before and
    after a converter, and have one and two blocks (the structure is the sizes', the file's parameters or not)."""
    stacks = [EncoderStack(StackConfig(**{key: value for key, value in parameters.items() if key != "params"}))
              for parameters in CONFIGS.values()]
    links = [link for stack in stacks for block in stack.blocks for link in block.links.values()]
    kinds = {(link.converter.split is not None, link.converter.gather is not None) for link in links}
    assert kinds == {(False, False), (True, False), (False, True), (True, True)}
    assert {name for link in links for name in link.queues} == {"before", "after"}
    assert {stack.config.num_blocks for stack in stacks} == {1, 2}
    del stacks, links
    gc.collect()
    bundled = StackConfig(**CONFIGS["bundled-p8"]).stack_params.blocks[0]
    assert bundled.attention.biases.any() and bundled.ff1.biases.any()
    assert (bundled.ln1.gamma != 1 << 14).any() and bundled.ln1.beta.any()


SLOW_RUNS = {("bundled-p8", "verilator"), ("bundled-p8", "icarus"), ("tinymind-p2", "verilator"),
             ("tinymind-p2", "icarus")}
"""Runs left to ``-m slow``: ``make test`` keeps the one-block stack on both simulators (and TinyMind's 64 sequences
through its own stack, :func:`test_rtl_reproduces_tinymind_stack`)."""


@pytest.mark.parametrize(("name", "simulator"), [
    pytest.param(name, simulator, marks=pytest.mark.slow) if (name, simulator) in SLOW_RUNS else (name, simulator)
    for name in CONFIGS for simulator in SIMULATORS])
def test_rtl_matches_model(name: str, simulator: str, simulate: Simulate) -> None:
    config = config_named(name)
    rows = SEQUENCES if simulator == "verilator" else ICARUS_SEQUENCES
    tests = "check,cycle" if simulator == "verilator" else "check"
    result = simulate(config, simulator, rows=rows, test=tests)
    assert result.passed, "\n".join(result.errors)
    check = result.reports["check"]
    assert check["rows"] >= rows and check["beats"] == check["rows"] * config.seq_len * config.beats
    if simulator == "verilator":
        sidecar = json.loads((result.build_dir / "rtl" / "stack.json").read_text())
        assert result.latency_cycles == [sidecar["latency_cycles"]]
        assert result.elements_per_cycle >= 0.97 * config.seq_len / sidecar["cycles_per_frame"]


@pytest.mark.slow
def test_icarus_runs_200_sequences(simulate: Simulate) -> None:
    """The one-block stack's 200 random sequences (and the directed ones) on Icarus, as on Verilator."""
    result = simulate(config_named("seeded-e12"), "icarus", rows=SEQUENCES, test="check")
    assert result.passed, "\n".join(result.errors)
    assert result.reports["check"]["rows"] >= SEQUENCES


SURROGATE_SEQUENCES = 40


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["hccs", "base2", "poly"])
def test_surrogate_softmax_stack_matches_model(mode: str, simulate: Simulate) -> None:
    """A surrogate in every block's attention (``--softmax-mode``): the RTL is the model of
    ``stack_forward(..., softmaxes)`` with the attention's softmax configuration, on every output element."""
    config = StackConfig(**CONFIGS["seeded-e12"], softmax_mode=mode)
    result = simulate(config, "verilator", rows=SURROGATE_SEQUENCES, test="check")
    assert result.passed, "\n".join(result.errors)
    tokens = np.random.default_rng(1).integers(0, config.vocab, (4, config.seq_len))
    softmaxes = [block.attention.plan().heads[0].softmax for block in config.plan]
    assert {softmax.mode for softmax in softmaxes} == {mode}
    exact = stack_forward(config.stack_params, tokens)["output"]
    replaced = StackModel(config)(tokens).reshape(exact.shape)
    np.testing.assert_array_equal(replaced, stack_forward(config.stack_params, tokens, softmaxes)["output"])
    assert (replaced != exact).any()

VENDOR_CONFIG = dict(vocab=8, seq_len=4, embed_dim=4, ffn_dim=8, num_blocks=1, proj_pe=2, ff1_pe=2)
"""One block of four features: the vendor models (a DSP block model per partial product) make Icarus slow."""


@pytest.mark.slow
@pytest.mark.parametrize("target", VENDOR_TARGETS)
def test_vendor_target_matches_model(target: str, simulate: Simulate) -> None:
    """The netlist with the target's DSP and block-RAM primitives, simulated on Icarus with their vendor models, on
    every beat; ``cycle`` (the exact latency of the deepest pipelines) on ECP5's."""
    config = StackConfig(**VENDOR_CONFIG, target=target)
    result = simulate(config, "icarus", rows=VENDOR_ROWS, test=vendor_tests(target))
    assert result.passed, "\n".join(result.errors)
    if target == "ecp5":
        sidecar = json.loads((result.build_dir / "rtl" / "stack.json").read_text())
        assert result.latency_cycles == [sidecar["latency_cycles"]]


@pytest.mark.slow  # a build of its own (TinyMind's stack at two lanes); the model is tied to TinyMind's outputs fast
def test_rtl_reproduces_tinymind_stack(tmp_path: Path, simulate: Simulate) -> None:
    """TinyMind's own output of its 64 token sequences (the shared file's ``output``) through the RTL (the
    scoreboard's model, which the first assertion ties to TinyMind's outputs)."""
    stack = load_encoder_stack()
    config = config_named("tinymind-p2")
    np.testing.assert_array_equal(StackModel(config)(stack["tokens"]), stack["output"].reshape(64, -1))
    np.save(tmp_path / "tokens.npy", stack["tokens"].astype(np.int32))
    result = simulate(config, "verilator", frames=tmp_path / "tokens.npy", directed=False, test="check")
    assert result.passed, "\n".join(result.errors)
    assert result.reports["check"]["rows"] == 64


def test_relu_folds_into_the_clamp() -> None:
    """``max(clamp(y, qmin, qmax), r)`` is ``clamp(y, max(qmin, r), max(qmax, r))`` for every zero point ``r``, and the
    FFN1 stage's clamp is that."""
    config = StackConfig(**CONFIGS["seeded-e12"])
    y = np.arange(-300, 300)
    for low, high, relu in ((-128, 127, -128), (-128, 127, -5), (-20, 30, 40), (-20, 30, -128)):
        folded_low, folded_high = max(low, relu), max(high, relu)
        np.testing.assert_array_equal(np.maximum(np.clip(y, low, high), relu), np.clip(y, folded_low, folded_high))
    block = config.stack_params.blocks[0]
    requant = config.plan[0].ff1.requant
    relu = block.ff1_relu_zero_point
    assert (requant.act_min, requant.act_max) == (max(block.ff1.requantizer.qmin, relu),
                                                  max(block.ff1.requantizer.qmax, relu))


def test_seeded_default_is_the_bundled_example() -> None:
    """Without a file the parameters are ``quantize stack``'s of the bundled example (its default method)."""
    from int8attn.golden.quantize import quantize_stack_files
    from int8attn.golden.stack import StackParams
    from int8attn.golden.stack_example import example_paths

    paths = example_paths()
    expected = StackParams.from_arrays(quantize_stack_files(paths["weights"], paths["calibration"]))
    tokens = np.load(paths["test"])
    np.testing.assert_array_equal(StackModel(StackConfig())(tokens).reshape(-1, 8, 8),
                                  stack_forward(expected, tokens)["output"])


def test_attention_from_params_emits_the_file_configs_verilog(tmp_path: Path) -> None:
    """``AttentionConfig.from_params`` (the stack's blocks) gives the Verilog of the same parameters from a file."""
    config = StackConfig(**CONFIGS["seeded-e12"])
    params = TinyMindMultiHeadParams((config.stack_params.blocks[0].attention,))
    np.savez(tmp_path / "attention.npz", **params.arrays())
    folds = dict(seq_len=config.seq_len, proj_simd=2, proj_pe=3, score_pe=2)
    texts = []
    for index, attention in enumerate((AttentionConfig(params=str(tmp_path / "attention.npz"), **folds),
                                       AttentionConfig.from_params(params, **folds))):
        result = emit(attention, tmp_path / str(index))
        texts.append(result.verilog.read_text().split("\n", 2)[2])
    assert texts[0] == texts[1]
    assert replace(AttentionConfig.from_params(params, **folds), proj_pe=1).params is None


def test_sidecar_lists_every_layer_and_unique_artefacts(tmp_path: Path) -> None:
    result = run("verilog", "stack", "--lanes", "4", "--ff1-pe", "2", "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    sidecar = json.loads((tmp_path / "stack.json").read_text())
    layers = [entry["layer"] for entry in sidecar["layers"]]
    assert layers == ["embedding"] + [f"block{b}.{name}" for b in (0, 1)
                                      for name in ("ln1", "attention", "add1", "ln2", "ff1", "ff2", "add2")]
    assert all(entry["latency_cycles"] > 0 and entry["structure"] for entry in sidecar["layers"])
    assert len(sidecar["skip_queues"]) == 4 and all(queue["beats"] >= 2 * 8 * 2 for queue in sidecar["skip_queues"])
    assert sidecar["cycles_per_frame"] == max(entry["cycles_per_sequence"] for entry in sidecar["layers"]
                                              + sidecar["links"])
    artefacts = sidecar["artefacts"]
    assert len(set(artefacts)) == len(artefacts) and all((tmp_path / name).is_file() for name in artefacts)
    assert {"embedding_table.hex", "embedding_positional_table.hex", "block0_attention_exp_rom.hex",
            "block1_ff1_dense_weights_pe1.hex", "block1_ff2_dense_weights_pe0.hex"} <= set(artefacts)
    assert "stack: slowest_stage=block0.ff2 beats_per_token=2" in result.stdout


def test_verilator_lint_is_clean(tmp_path: Path) -> None:
    emitted = run("verilog", "stack", "--lanes", "2", "--proj-pe", "2", "--ff2-simd", "4", "-o", tmp_path)
    assert emitted.returncode == 0, emitted.stderr
    result = verilator_lint(tmp_path / "stack.v")
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def one_line_error(result, *needles: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("int8attn: error: "), result.stderr
    assert all(needle in result.stderr for needle in needles), result.stderr


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    arrays = StackConfig().stack_params.arrays()
    files = {"missing_key": {key: value for key, value in arrays.items() if key != "block1.ff2.biases"},
             "bad_dtype": arrays | {"emb.table": arrays["emb.table"].astype(np.int16)}}
    paths = {}
    for name, content in files.items():
        paths[name] = folder / f"{name}.npz"
        np.savez(paths[name], **content)
    (folder / "text.npz").write_text("not an archive")
    paths["text"] = folder / "text.npz"
    for name, tokens in {"id16": np.full((3, 8), 16, np.int32), "s7": np.zeros((3, 7), np.int32),
                         "float": np.zeros((3, 8), np.float32)}.items():
        paths[name] = folder / f"{name}.npy"
        np.save(paths[name], tokens)
    return paths


@pytest.mark.parametrize(("command", "needles"), [
    ("verilog stack --params {folder}/absent.npz", ["absent.npz", "does not exist"]),
    ("verilog stack --params {missing_key}", ["missing_key.npz", "block1.ff2.biases", "is missing"]),
    ("verilog stack --params {bad_dtype}", ["bad_dtype.npz", "emb.table", "int16"]),
    ("verilog stack --params {text}", ["text.npz"]),
    ("verilog stack --lanes 3", ["lanes=3 does not divide embed_dim=8", "allowed: 1, 2, 4, 8"]),
    ("verilog stack --ff1-pe 3", ["ff1_pe=3 does not divide ffn_dim=16"]),
    ("verilog stack --score-pe 16", ["score_pe=16 does not divide seq_len=8"]),
    ("verilog stack --params {missing_key} --embed-dim 12", ["missing_key.npz"]),
    ("sim stack --in {id16}", ["id16.npy", "16..16 is out of range", "token ids 0..15"]),
    ("sim stack --in {s7}", ["s7.npy", "shape (3, 7)"]),
    ("sim stack --in {float}", ["float.npy", "dtype float32"]),
    ("golden stack --params {missing_key} --tokens {s7} --out {folder}/y.npy", ["block1.ff2.biases"]),
])
def test_bad_input_ends_in_one_line(command: str, needles: list[str], bad_files: dict[str, Path],
                                    tmp_path: Path) -> None:
    argv = command.format(folder=bad_files["text"].parent, **bad_files).split()
    one_line_error(run(*argv, *(["-o", tmp_path / "out"] if argv[0] == "verilog" else [])), *needles)
    assert not (tmp_path / "out").exists()


def test_shape_options_must_match_the_file(tmp_path: Path) -> None:
    np.savez(tmp_path / "p.npz", **StackConfig().stack_params.arrays())
    one_line_error(run("verilog", "stack", "--params", tmp_path / "p.npz", "--embed-dim", "12", "-o", tmp_path / "o"),
                   "embed_dim=12 is out of range; allowed: 8, the parameter file's")
    result = run("verilog", "stack", "--params", tmp_path / "p.npz", "--embed-dim", "8", "-o", tmp_path / "o")
    assert result.returncode == 0, result.stderr
    assert re.search(r"latency \d+ cycles", result.stdout)
