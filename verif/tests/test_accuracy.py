"""The accuracy report: metrics against float64 softmax and tflite, the knob grid, the command."""

import json
from dataclasses import replace

import numpy as np
import pytest
from cli_runner import run

from int8attn.accuracy import ROW_SETS, evaluate, float_softmax, write_report
from int8attn.golden import SoftmaxConfig, SoftmaxModel
from int8attn.golden.presets import KNOB_SETTINGS, knob_grid
from int8attn.golden.stimuli import int8_rows

BASE = SoftmaxConfig(n=64, lanes=4, input_scale=0.05)


@pytest.mark.parametrize("kind", ROW_SETS)
def test_exact_modes_round_float_softmax_to_within_one_lsb(kind: str):
    rows = int8_rows(kind, BASE.n, 300, 1)
    for config in (BASE, replace(BASE, mode="tinymind")):
        metrics = evaluate(config, rows)
        assert metrics.max_abs_error_lsb < 1
        assert metrics.argmax_agreement == 1.0
        assert metrics.kl_divergence >= 0
    assert evaluate(BASE, rows).bit_identical_to_tflite == 1.0


def test_metrics_follow_their_definitions():
    rows = int8_rows("peaked", BASE.n, 200, 2)
    config = replace(BASE, mode="lut", rom_depth=32, output_bits=12)
    metrics = evaluate(config, rows)
    levels = SoftmaxModel(config)(rows).astype(np.int64) + 2048
    p = float_softmax(rows, config)
    assert metrics.max_abs_error_lsb == pytest.approx(np.abs(levels - 4096 * p).max())
    assert metrics.max_sum_error == pytest.approx(np.abs(levels.sum(axis=1) / 4096 - 1).max())
    assert metrics.rows == 200


def test_fewer_rom_entries_cost_accuracy():
    rows = int8_rows("normal", BASE.n, 300, 3)
    errors = [evaluate(replace(BASE, mode="lut", rom_depth=depth), rows).mean_abs_error_lsb for depth in (16, 64, 256)]
    assert errors[0] > errors[1] > errors[2]


def test_knob_grid_spans_every_knob():
    grid = knob_grid(BASE)
    assert len(grid) >= 12
    for knob, least in (("rom_depth", 3), ("rom_width", 2), ("output_bits", 2)):
        assert len({getattr(c, knob) for c in grid.values()}) >= least, knob
    assert {(c.reciprocal, c.reciprocal_steps if c.reciprocal == "newton" else c.reciprocal_bits)
            for c in grid.values()} >= {("newton", 3), ("newton", 1), ("lut", 8)}
    assert set(grid) == set(KNOB_SETTINGS)


def test_report_files(tmp_path):
    user = tmp_path / "mine.npy"
    np.save(user, int8_rows("uniform", 16, 20, 4))
    result = run("accuracy", "softmax", "--n", "16", "--lanes", "1", "--grid", "--rows", "50", "--rows-file", user,
                 "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "out" / "accuracy.json").read_text())
    sets = {record["row_set"] for record in document["results"]}
    assert sets == {*ROW_SETS, "mine"}
    configs = {record["config"] for record in document["results"]}
    assert {"tflite", "tinymind", *KNOB_SETTINGS} <= configs
    assert (tmp_path / "out" / "accuracy_rom.png").stat().st_size > 10_000
    assert "| tflite |" in (tmp_path / "out" / "accuracy.md").read_text()


def test_report_api_without_plot(tmp_path):
    paths = write_report(BASE, tmp_path, rows=20, configs={"only": BASE}, plot=False)
    assert set(paths) == {"json", "markdown"}
