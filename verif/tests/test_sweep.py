"""Sweeps: every point measured or its error recorded (also a killed worker, a hung tool, a crashed simulator), outputs
written, interrupted sweeps resumed from the cache, corrupt cache entries recomputed, malformed sweep files refused."""

import csv
import json
import multiprocessing
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from int8attn.sweep import CHECKSUM, WORKER_DIED, SweepError, load_sweep, point_hash, read_cached, run_sweep
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


@pytest.mark.slow  # a minute and a half of synthesis; test_a_sweep_of_another_unit_runs_without_accuracy stays fast
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


FAKE_SWEEP = """
name = "fake"
unit = "requant"
[grid]
channels = [4, 8, 16]
[run]
families = ["xc7"]
timeout = {timeout}
"""
"""Points of a sweep whose synthesis is faked: channels 4 is measured, 8 kills its worker process, 16 hangs in a
tool until the point's timeout kills it."""
FAKE_REPORT = {"resources": {"luts": 7, "ffs": 3, "carry": 0, "dsp": 0, "bram": 0, "cells": {}}, "fmax_mhz": None,
               "elements_per_s": None, "latency_cycles": 4}


def fake_synthesize(calls: Path, behaviour: dict[int, str]):
    """A stand-in for :func:`int8attn.synth.synthesize` that records each call in ``calls`` and, by the point's
    channel count, returns a report, kills its own process, or waits in a tool (``sleep``) whose pid it appends to
    ``tool.pids``."""
    def synthesize(config, family, out_dir, **options):
        with calls.open("a") as log:
            log.write(f"{config.channels}\n")
        action = behaviour.get(config.channels, "report")
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if action == "hang":
            subprocess.run(["sh", "-c", f"echo $$ >> {calls.parent / 'tool.pids'}; exec sleep 60"], check=False)
        return json.loads(json.dumps(FAKE_REPORT))
    return synthesize


@pytest.fixture
def forked(monkeypatch):
    """The process pools fork, so their workers see what the test monkeypatched."""
    if multiprocessing.get_start_method() != "fork":
        pytest.skip("needs the fork start method to fake the tools in the sweep's worker processes")
    return monkeypatch


@pytest.mark.slow  # timing-dependent: failed once in a fresh-clone make test (a tool still alive when checked)
def test_a_killed_worker_and_a_hung_tool_fail_only_their_points(forked, tmp_path):
    from int8attn import synth

    calls = tmp_path / "calls.txt"
    forked.setattr(synth, "synthesize", fake_synthesize(calls, {8: "kill", 16: "hang"}))
    (tmp_path / "sweep.toml").write_text(FAKE_SWEEP.format(timeout=2))
    started = time.monotonic()
    paths = run_sweep(tmp_path / "sweep.toml", tmp_path / "out", jobs=2)
    assert time.monotonic() - started < 30
    rows = {row["point"]: row for row in csv.DictReader(paths["csv"].open())}
    assert rows["channels=4"]["error"] == "" and rows["channels=4"]["xc7_luts"] == "7"
    assert rows["channels=8"]["error"] == WORKER_DIED
    assert rows["channels=16"]["error"] == "PointTimeout: timed out after 2 s"
    deadline = time.monotonic() + 10
    for tool in map(int, (tmp_path / "tool.pids").read_text().split()):
        while _alive(tool) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(tool), f"tool process {tool} outlived its sweep"
    assert sorted(calls.read_text().split()).count("8") == 2, "the killed point runs again alone, then fails"


def test_a_failed_simulation_fails_its_point(forked, tmp_path):
    from int8attn import synth
    from int8attn.verif import runner

    def crashed(config, simulator, **options):
        return runner.SimResult(simulator, ("check",), 0, 0, ["verilator simulation failed (Command failed with "
                                                              "return code: -9); log sim.log:\n..."], 0, None, [],
                                False)

    forked.setattr(synth, "synthesize", fake_synthesize(tmp_path / "calls.txt", {}))
    forked.setattr(runner, "run", crashed)
    (tmp_path / "sweep.toml").write_text(FAKE_SWEEP.format(timeout=60).replace("[run]", "[run]\nsimulate = true"))
    rows = list(csv.DictReader(run_sweep(tmp_path / "sweep.toml", tmp_path / "out", jobs=2)["csv"].open()))
    assert {row["error"] for row in rows} == {"RTL check failed: verilator simulation failed (Command failed with "
                                              "return code: -9); log sim.log:"}
    assert {row["rtl_check_passed"] for row in rows} == {"False"}


def test_corrupt_cache_entries_are_recomputed(forked, tmp_path, capsys):
    from int8attn import synth

    calls = tmp_path / "calls.txt"
    forked.setattr(synth, "synthesize", fake_synthesize(calls, {}))
    (tmp_path / "sweep.toml").write_text(FAKE_SWEEP.format(timeout=60))
    run_sweep(tmp_path / "sweep.toml", tmp_path / "out", jobs=2)
    sweep = load_sweep(tmp_path / "sweep.toml")
    entries = {label: tmp_path / "out" / "cache" / f"{point_hash('requant', parameters, sweep['run'])}.json"
               for label, parameters in sweep["points"].items()}
    records = {label: json.loads(path.read_text()) for label, path in entries.items()}
    entries["channels=4"].write_text(entries["channels=4"].read_text()[:40])
    entries["channels=8"].write_text(json.dumps(records["channels=8"] | {"xc7": {"fits": False}}))
    entries["channels=16"].write_text(json.dumps(records["channels=4"]))
    calls.unlink()
    paths = run_sweep(tmp_path / "sweep.toml", tmp_path / "out", jobs=2)
    assert sorted(calls.read_text().split(), key=int) == ["4", "8", "16"]
    problems = capsys.readouterr().err
    assert "cannot be read" in problems and "checksum does not match" in problems
    assert "is not a record of point 'channels=16'" in problems
    rows = {row["point"]: row for row in csv.DictReader(paths["csv"].open())}
    assert all(row["error"] == "" and row["xc7_luts"] == "7" for row in rows.values())
    assert {label: read_cached(path, label) for label, path in entries.items()} == {
        label: {key: value for key, value in record.items() if key != CHECKSUM} for label, record in records.items()}
    calls.unlink()
    run_sweep(tmp_path / "sweep.toml", tmp_path / "out", jobs=2)
    assert not calls.exists(), "a sound cache is not recomputed"


@pytest.mark.parametrize(("text", "message"), [
    (b"\xff\xfe[grid]", "not UTF-8"),
    (b"extra = 5", r"\[\[extra\]\] must be an array of tables"),
    (b"extra = [1]", r"\[\[extra\]\] must be an array of tables"),
    (b"base = 3", r"\[base\] must be a table"),
    (b"run = 'x'", r"\[run\] must be a table"),
    (b"grid = [1]", r"\[grid\] must be a table"),
    (b"[run]\nrows = 0", "rows = 0; allowed: an integer >= 1"),
    (b"[run]\nrows = 'x'", "rows = 'x'"),
    (b"[run]\nseed = true", "seed = True"),
    (b"[run]\nsimulate = 1", "simulate = 1"),
    (b"[run]\ntimeout = -1", "timeout = -1"),
    (b"[run]\ntimeout = nan", "timeout = nan"),
    (b"[run]\nfamilies = 'ecp5'", "families = 'ecp5'"),
    (b"[base]\nn = 1979-05-27", "n = datetime.date"),
    (b"[grid]\nn = [{a = 1}]", r"\[grid\] n"),
    (b"name = 5", "name = 5"),
    (b"name = '../x'", "name = '../x'"),
    (b"unit = 5", "unit 5 is unknown"),
    (b"[bse]\nn = 4", r"unknown keys \['bse'\]"),
])
def test_malformed_sweep_files(tmp_path, text: bytes, message: str):
    (tmp_path / "s.toml").write_bytes(text)
    with pytest.raises(SweepError, match=message):
        load_sweep(tmp_path / "s.toml")


def test_a_folder_is_not_a_sweep_file(tmp_path):
    with pytest.raises(SweepError, match="cannot read sweep file"):
        load_sweep(tmp_path)


def _alive(pid: int) -> bool:
    """Process ``pid`` exists and is not a zombie (killed processes are reaped by init a moment later)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not status.exists() or status.read_text().split(")")[-1].split()[0] != "Z"
