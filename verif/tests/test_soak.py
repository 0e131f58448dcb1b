"""Soak: the generic ``soak`` test (every row and every handshake checked under changing stalls), the Verilator C++
soak engine and ``int8attn soak``.

``make test`` runs the test on a few hundred rows, a broken design through it, and the command on stand-in runs; the
engine on a few hundred rows, with an expected beat corrupted (through the command) and on a unit wrapped so that a
stalled output beat changes (a protocol violation). The ``slow`` and ``soak`` test runs 10⁵ rows of every
configuration of the matrix (``$INT8ATTN_SOAK_ROWS`` to change it), as ``make soak`` does through the command.
"""

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_runner import run
from test_softmax_rtl import QUICK_CONFIG, emit_with_change

from int8attn import soak
from int8attn.golden.regression import REQUANT_REGRESSION, SOAK_MATRIX
from int8attn.hdl import emit
from int8attn.verif import runner as sim_runner
from int8attn.verif import soak_engine, tb_generic

ROWS = tb_generic.SOAK_BATCH + 44
ENGINE_LABEL = "requant/p4-tensor-tinymind-none-int8"
CORRUPT_ROW = 5


def test_soak_streams_every_row_in_batches(simulate: Any) -> None:
    config = REQUANT_REGRESSION["p4-tensor-tinymind-none-int8"]
    result = simulate(config, "verilator", test="soak", rows=ROWS)
    assert result.passed, "\n".join(result.errors)
    report = result.reports["soak"]
    assert report["rows"] == ROWS and report["beats"] == ROWS * config.beats
    assert report["mismatches"] == 0 and report["violations"] == 0 and report["batches"] == 2
    assert report["stalls"][0] == [0.0, 0.0] and report["stalls"][1] == [0.2, 0.2]


def test_soak_reports_mismatches(monkeypatch: pytest.MonkeyPatch, quick_simulator: str, tmp_path: Path) -> None:
    emit_with_change(monkeypatch, sidecar=lambda facts: facts["parameters"].update(beta=0.5))
    result = sim_runner.run(QUICK_CONFIG, quick_simulator, test="soak", rows=20, build_dir=tmp_path)
    assert not result.passed
    assert result.reports["soak"]["mismatches"] > 0 and result.reports["soak"]["violations"] == 0


def fake_simulation(failing: str | None):
    """A stand-in for the runner in :func:`int8attn.soak.soak_one`: a soak report without simulating, with a mismatch
    for the unit named ``failing``."""
    def simulated(config: Any, simulator: str, *, test: str, rows: int, **options: Any) -> sim_runner.SimResult:
        bad = type(config).__name__.lower().startswith(failing or "-")
        errors = ["soak: row 3: got 1, expected 2"] if bad else []
        report = {"rows": rows, "beats": 2 * rows, "cycles": 3 * rows, "errors": errors, "mismatches": int(bad),
                  "violations": 0}
        return sim_runner.SimResult(simulator, (test,), rows, 2 * rows, errors, 3 * rows, None, [], not bad,
                                    {test: report}, Path("build"), Path("soak.log"))
    return simulated


def test_soak_command_writes_its_report(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The command on stand-in simulations (the process pool forks, so its workers see them)."""
    monkeypatch.setattr(sim_runner, "run", fake_simulation(None))
    result = run("soak", "--configs", "requant/*,attention/*", "--rows", "10", "--jobs", "2", "--engine", "cocotb",
                 "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "soak.json").read_text())
    records = document["configurations"]
    assert [record["configuration"] for record in records] == [
        label for label in SOAK_MATRIX if label.startswith(("requant/", "attention/"))]
    assert all(record["passed"] and record["rows"] == 10 and record["cycles"] == 30 and record["engine"] == "cocotb"
               for record in records)
    table = (tmp_path / "soak.md").read_text()
    assert "| requant/p1-tensor-tflite-relu-int8 | 10 | 20 | 30 | 0 | 0 |" in table
    assert f"{len(records)} configurations on verilator (cocotb engine), {10 * len(records)} rows in" in table

    monkeypatch.setattr(sim_runner, "run", fake_simulation("attention"))
    result = run("soak", "--configs", "attention/tflite-h1-s8-e8,requant/p1*", "--rows", "10", "--engine", "cocotb",
                 "-o", tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == "attention/tflite-h1-s8-e8: soak: row 3: got 1, expected 2"
    assert "| FAIL |" in (tmp_path / "soak.md").read_text()


def test_engine_soaks_every_row(sim_build_root: Path) -> None:
    try:
        record = soak.soak_one(ENGINE_LABEL, SOAK_MATRIX[ENGINE_LABEL], ROWS, 1, "verilator", sim_build_root)
    except sim_runner.SimulatorMissing as error:
        pytest.skip(str(error))
    assert record["passed"], record
    assert record["engine"] == "verilator-cpp" and record["rows"] == ROWS and record["beats"] == 2 * ROWS
    assert record["mismatches"] == 0 and record["violations"] == 0 and record["batches"] == 2
    assert record["cycles"] > 2 * ROWS


def test_engine_reports_a_corrupted_beat(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """One bit of one expected beat flipped: one mismatch, at that row, and the command fails."""
    records = soak_engine.FrameSource.records

    def corrupted(source: soak_engine.FrameSource, count: int) -> np.ndarray:
        words = records(source, count)
        words[CORRUPT_ROW, -1] ^= 1
        return words

    monkeypatch.setattr(soak_engine.FrameSource, "records", corrupted)
    try:
        sim_runner.find_simulator("verilator")
    except sim_runner.SimulatorMissing as error:
        pytest.skip(str(error))
    result = run("soak", "--configs", ENGINE_LABEL, "--rows", str(ROWS), "-o", tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    [record] = json.loads((tmp_path / "soak.json").read_text())["configurations"]
    assert record["mismatches"] == 1 and record["violations"] == 0 and not record["passed"]
    assert record["errors"][0].startswith(f"o stream, row {CORRUPT_ROW}, beat 1/2, cycle ")
    assert result.stdout.splitlines()[-1].startswith(f"{ENGINE_LABEL}: o stream, row {CORRUPT_ROW}, ")


def unstable_output(emitted: emit.EmitResult, sidecar: dict[str, Any]) -> Path:
    """The Verilog of ``emitted`` wrapped so that bit 0 of the output payload flips in every cycle that follows one
    with the output valid and not taken: a stalled beat changes."""
    top = sidecar["top"]
    ports = sidecar["ports"]
    declarations = "\n".join(f"  {port['direction']} [{port['width'] - 1}:0] {port['name']};" for port in ports)
    connections = ", ".join(f".{port['name']}({'inner_payload' if port['name'] == 'o__payload' else port['name']})"
                            for port in ports)
    width = next(port["width"] for port in ports if port["name"] == "o__payload")
    wrapper = (f"module {top}({', '.join(port['name'] for port in ports)});\n{declarations}\n"
               f"  wire [{width - 1}:0] inner_payload;\n  reg flip = 1'b0;\n"
               "  always @(posedge clk) flip <= rst ? 1'b0 : o__valid & ~o__ready;\n"
               f"  {top}_inner inner({connections});\n"
               f"  assign o__payload = inner_payload ^ {width}'d1 & {{{width}{{flip}}}};\nendmodule\n")
    verilog = emitted.verilog.with_name("unstable.v")
    verilog.write_text(emitted.verilog.read_text().replace(f"module {top}(", f"module {top}_inner(", 1) + wrapper)
    return verilog


def test_engine_catches_a_changing_stalled_beat(tmp_path: Path) -> None:
    emitted = emit.emit(SOAK_MATRIX[ENGINE_LABEL], tmp_path / "rtl")
    sidecar = json.loads(emitted.sidecar.read_text())
    try:
        binary = soak_engine.build(unstable_output(emitted, sidecar), sidecar, tmp_path)
    except sim_runner.SimulatorMissing as error:
        pytest.skip(str(error))
    report = soak_engine.run(binary, sidecar, ROWS, seed=1, stalls=soak_engine.stall_pairs(0.2, 0.2),
                             folder=tmp_path)
    assert report["exit_status"] == 1 and not report["passed"] and report["violations"] > 0
    assert any(" while valid && !ready" in error and error.startswith("o stream, cycle ")
               for error in report["errors"]), report["errors"]


@pytest.mark.slow
@pytest.mark.soak
@pytest.mark.parametrize("label", SOAK_MATRIX)
def test_soak(label: str, tmp_path: Path) -> None:
    """10⁵ random rows (``$INT8ATTN_SOAK_ROWS``) of one configuration: 0 mismatches, 0 protocol violations."""
    rows = int(os.environ.get("INT8ATTN_SOAK_ROWS", soak.SOAK_ROWS))
    try:
        record = soak.soak_one(label, SOAK_MATRIX[label], rows, 1, "verilator", soak.BUILDS)
    except sim_runner.SimulatorMissing as error:
        pytest.skip(str(error))
    assert record["passed"], record
    assert record["rows"] == rows and record["mismatches"] == 0 and record["violations"] == 0
