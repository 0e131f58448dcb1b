"""The encoder stack with another softmax in place of TinyMind's (``stack_forward(..., softmaxes)``) and the
``int8attn accuracy stack`` report: TinyMind's softmax through the multi-head path is the stack itself, every mode
runs, the report ranks the calibrated surrogates near the reference, and misuse ends in one line."""

import json
from dataclasses import replace

import numpy as np
import pytest
from cli_runner import run

from int8attn.golden.stack import stack_forward
from int8attn.golden.stack_example import example_paths
from int8attn.golden.stack_unit import StackConfig
from int8attn.stack_accuracy import MODES, block_softmaxes


@pytest.fixture(scope="module")
def example() -> tuple[StackConfig, np.ndarray, np.ndarray]:
    paths = example_paths()
    with np.load(paths["calibration"]) as archive:
        calibration = archive["tokens"]
    return StackConfig(), calibration, np.load(paths["test"])


def test_tinymind_softmax_through_the_multi_head_path_is_the_stack(example):
    config, _, tokens = example
    params = config.stack_params
    exact = [block.attention.softmax_model(params.seq_len).config for block in params.blocks]
    direct, generic = stack_forward(params, tokens), stack_forward(params, tokens, exact)
    for name, value in direct.items():
        np.testing.assert_array_equal(generic[name], value, err_msg=name)


def test_every_mode_replaces_the_softmax_and_changes_the_probabilities(example):
    config, calibration, tokens = example
    params = config.stack_params
    exact = stack_forward(params, tokens)
    choices = block_softmaxes(config, calibration)
    assert list(choices) == list(MODES)
    ran = []
    for label, choice in choices.items():
        if isinstance(choice, str) or label == "tinymind":
            continue
        result = stack_forward(params, tokens, choice)
        assert result["output"].dtype == np.int8 and result["output"].shape == exact["output"].shape
        assert not np.array_equal(result["t.probs"], exact["t.probs"]), label
        ran.append(label)
    assert {"hccs calibrated", "base2 rq", "base2 rq F", "poly calibrated"} <= set(ran)


def test_a_softmax_per_block_is_required(example):
    config, _, tokens = example
    params = config.stack_params
    softmax = params.blocks[0].attention.softmax_model(params.seq_len).config
    with pytest.raises(ValueError, match="one per block"):
        stack_forward(params, tokens, [softmax])
    with pytest.raises(ValueError, match="one per block"):
        stack_forward(params, tokens, [replace(softmax, mode="hccs")] * (params.num_blocks + 1))


def test_accuracy_stack_writes_the_report(tmp_path):
    result = run("accuracy", "stack", "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    records = json.loads((tmp_path / "stack_softmax.json").read_text())
    assert [record["mode"] for record in records] == list(MODES)
    reference = records[0]
    assert reference["mode"] == "tinymind" and reference["changed"] == 0
    fitted = {record["mode"]: record for record in records if record["fits"]}
    for label in ("hccs calibrated", "poly calibrated"):
        assert fitted[label]["mean_abs_error"] < fitted[label.split()[0]]["mean_abs_error"] if label.split()[0] \
            in fitted else fitted[label]["mean_abs_error"] < 2 * reference["mean_abs_error"]
    assert (tmp_path / "stack_softmax.md").read_text() in result.stdout


@pytest.mark.parametrize(("options", "message"), [
    (["--weights", "w.npz"], "--weights is out of range without --params"),
    (["--params", "{params}"], "--weights is missing"),
    (["--seq-len", "4"], "--tokens is missing"),
    (["--tokens", "missing.npy"], "missing.npy"),
])
def test_accuracy_stack_misuse_is_one_line(tmp_path, options, message):
    params = tmp_path / "p.npz"
    assert run("quantize", "stack", "-o", params).returncode == 0
    result = run("accuracy", "stack", "-o", tmp_path, *[item.format(params=params) for item in options])
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
