"""Sweeps: every point measured or its error recorded, outputs written, interrupted sweeps resumed from the cache."""

import csv
import json
from pathlib import Path

import pytest

from int8attn.sweep import SweepError, load_sweep, run_sweep
from int8attn.sweep_report import pareto_front

SWEEP = """
name = "t"
[base]
n = 4
lanes = 1
mode = "lut"
[grid]
rom_width = [8, 31]
lanes = [1, 2]
[[extra]]
rom_width = 99
[run]
families = ["xc7"]
rows = 30
"""


def test_every_point_is_reported_and_an_interrupted_sweep_resumes(tmp_path):
    """One test for both, as the sweep is the slow part: two tests sharing it could run it twice, on two pytest-xdist
    workers."""
    (tmp_path / "sweep.toml").write_text(SWEEP)
    paths = run_sweep(tmp_path / "sweep.toml", tmp_path / "out", jobs=2)
    rows = list(csv.DictReader(paths["csv"].open()))
    assert len(rows) == 5
    broken = [row for row in rows if row["error"]]
    assert len(broken) == 1 and "rom_width=99" in broken[0]["error"]
    for row in rows:
        if not row["error"]:
            assert int(row["xc7_luts"]) > 0 and float(row["peaked_max_err_lsb"]) >= 0
    assert len(json.loads(paths["json"].read_text())["points"]) == 5
    assert "failed: ConfigError" in paths["markdown"].read_text()
    assert paths["error_vs_luts"].stat().st_size > 0 and paths["luts_vs_lanes"].stat().st_size > 0
    assert paths["kl_vs_luts"].stat().st_size > 0

    cache = sorted((tmp_path / "out" / "cache").glob("*.json"))
    assert len(cache) == 5
    kept = {path: path.stat().st_mtime_ns for path in cache[1:]}
    cache[0].unlink()
    run_sweep(tmp_path / "sweep.toml", tmp_path / "out", jobs=1)
    assert cache[0].exists()
    assert {path: path.stat().st_mtime_ns for path in cache[1:]} == kept


def test_pareto_front_and_the_modes_sweep_file():
    assert pareto_front([(1, 5), (2, 2), (3, 3), (4, 1), (2, 6)]) == [0, 1, 3]
    sweep = load_sweep(Path(__file__).parents[2] / "sweep_modes.toml")
    modes = {parameters["mode"] for parameters in sweep["points"].values()}
    assert modes == {"tflite", "tinymind", "lut", "hccs", "base2", "poly"}


@pytest.mark.parametrize(("text", "message"), [
    ("[grid]\nfoo = [1]", "unknown keys"),
    ("[grid]\nn = []", "non-empty list"),
    ("[run]\nfamilies = ['gowin']", "families"),
    ("[grid\n", "not valid TOML"),
])
def test_bad_sweep_files(tmp_path, text: str, message: str):
    (tmp_path / "s.toml").write_text(text)
    with pytest.raises(SweepError, match=message):
        load_sweep(tmp_path / "s.toml")


REQUANT_SWEEP = """
name = "requant"
unit = "requant"
[base]
channels = 8
output_bits = 16
[grid]
activation = ["none", "relu6"]
[run]
families = []
simulate = true
rows = 20
"""


def test_a_sweep_of_another_unit_runs_without_accuracy(tmp_path):
    (tmp_path / "sweep.toml").write_text(REQUANT_SWEEP)
    paths = run_sweep(tmp_path / "sweep.toml", tmp_path / "out", jobs=1)
    rows = list(csv.DictReader(paths["csv"].open()))
    assert len(rows) == 2 and not any(row["error"] for row in rows)
    assert all(row["rtl_check_passed"] == "True" for row in rows)
    assert {row["param_activation"] for row in rows} == {"none", "relu6"}
    assert "max err" not in paths["markdown"].read_text()


def test_unknown_unit_is_refused(tmp_path):
    (tmp_path / "sweep.toml").write_text('unit = "gelu"\n')
    with pytest.raises(SweepError, match="unit 'gelu' is unknown; allowed: softmax, requant"):
        load_sweep(tmp_path / "sweep.toml")
