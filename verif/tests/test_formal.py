"""Formal checks of the stream contract (:mod:`int8attn.verif.formal`, :mod:`int8attn.formal`) with SymbiYosys, ABC
and Yices: the requantizer, a small softmax, a small dense layer and the attention's handshake pass (the attention's
latency and covers with ``-m slow``), nothing wraps inside them (the attention's stages, each on its own, with
``-m slow``), and deliberately broken wrappers (and a requantizer whose left shift wraps, alone or as a stage) are
caught with a counterexample trace, on either engine of the bounded checks. Skipped, with the install command, when
the tools are missing."""

from pathlib import Path
from typing import Any

import pytest
from amaranth.hdl import Fragment

from int8attn.formal import (
    BMC_ENGINES,
    DEFAULT_FRAMED_GROUP_NAMES,
    FAULT_NAMES,
    FRAMABLE_GROUP_NAMES,
    GROUP_NAMES,
    STATUSES_PASSING,
    _run_stages,
    run_formal,
    sby_text,
)
from int8attn.golden.params import ConfigError
from int8attn.units import UNITS
from int8attn.verif.formal import (
    DEFAULT_FRAMED_GROUPS,
    FAULTS,
    FRAMABLE_GROUPS,
    GROUPS,
    Contract,
    StageHarness,
    StreamHarness,
    harness_rtlil,
    properties,
)
from int8attn.yosys_abc import abc_script, verdict

REQUANT = {"channels": 1, "lanes": 1}
DENSE = {"in_features": 4, "out_features": 2, "simd": 2, "pe": 1}
ATTENTION = {"seq_len": 2, "embed_dim": 2, "heads": 1, "head_dim": 2}
SOFTMAX_MODES = ("tflite", "tinymind", "lut", "hccs", "base2", "poly")


def component(unit: str, parameters: dict[str, Any]) -> Any:
    registered = UNITS[unit]
    return registered.make_component(registered.make_config(parameters))


def contract(unit: str, parameters: dict[str, Any]) -> Contract:
    """The contract of a unit's component, elaborated once so that Amaranth does not warn it went unused."""
    dut = component(unit, parameters)
    Fragment.get(dut, None)
    return Contract.of(dut)


def names(report: dict, group: str, key: str = "failed") -> list[str]:
    return report["groups"][group].get(key) or []


def test_contract_of_the_units() -> None:
    requant = contract("requant", {"channels": 8, "lanes": 2})
    assert (requant.latency_from, requant.beats_in, requant.beats_out, requant.has_error) == ("first", 4, 4, False)
    softmax = contract("softmax", {"n": 4, "lanes": 2})
    assert (softmax.latency_from, softmax.beats_in, softmax.has_error) == ("last", 2, True)
    assert softmax.progress_bound == softmax.latency + 2
    assert softmax.misframed_rows == "dropped" and softmax.idle_input_bound == 0
    dense = contract("dense", DENSE)
    assert (dense.beats_in, dense.beats_out, dense.cycles_per_frame, dense.misframed_rows) == (2, 2, 4, "counted")
    assert dense.idle_input_bound == 2
    assert contract("attention", ATTENTION).misframed_rows == "counted"


def test_property_lists_follow_the_unit() -> None:
    requant = contract("requant", REQUANT)
    softmax = contract("softmax", {"n": 2, "lanes": 1})
    framing = {item.name: item.kind for item in properties(requant, "framing")}
    assert framing["input_well_framed"] == "assume" and "error_sticky" not in framing
    framing = {item.name: item.kind for item in properties(softmax, "framing")}
    assert "input_well_framed" not in framing
    assert {"error_on_misframe", "error_sticky", "error_only_on_misframe"} <= set(framing)
    assert {item.name for item in properties(softmax, "cover")} >= {"back_to_back_rows", "stalled_output",
                                                                     "error_raised"}
    with pytest.raises(ValueError, match="group must be one of"):
        properties(softmax, "timing")
    dense = contract("dense", DENSE)
    framing = {item.name: item.text for item in properties(dense, "framing")}
    assert "every 2 input beats" in framing["rows_out_within_rows_in"]
    throughput = {item.name: item.text for item in properties(dense, "throughput")}
    assert "never low more than 2 cycles" in throughput["input_ready_after_startup"]
    assert [item.name for item in properties(dense, "overflow")] == ["no_wrap"]


def test_framing_on_well_framed_input() -> None:
    """Named in ``framed_groups``, the framing group of a unit with an ``error`` output assumes well-framed input and
    leaves ``error`` to the group on any input; liveness and throughput assume it by default only."""
    softmax = contract("softmax", {"n": 2, "lanes": 1})
    framing = {item.name: item.kind for item in properties(softmax, "framing", framed_groups=("framing",))}
    assert framing == {"input_well_framed": "assume", "output_framing": "assert", "rows_out_within_rows_in": "assert",
                       "output_progress": "assert"}
    liveness = {item.name for item in properties(softmax, "liveness", framed_groups=())}
    assert "input_well_framed" not in liveness
    assert "input_well_framed" in {item.name for item in properties(softmax, "liveness")}
    harness = StreamHarness(component("softmax", {"n": 2, "lanes": 1}), "framing", depth=8,
                            framed_groups=("framing",))
    harness_rtlil(harness)
    assert set(harness.locations) == set(framing)


@pytest.mark.parametrize("group", GROUPS)
def test_every_property_is_stated(group: str) -> None:
    """Each listed property becomes one assertion, assumption or cover at its own line of the harness."""
    harness = StreamHarness(component("softmax", {"n": 2, "lanes": 1}), group, depth=8)
    text = harness_rtlil(harness)
    assert "$check" in text
    locations = harness.locations
    assert set(locations) == {item.name for item in harness.properties}
    assert len(set(locations.values())) == len(locations)
    assert bool(harness.wrap_checks) == (group == "overflow")


@pytest.mark.parametrize(("unit", "parameters", "listed"), [
    ("softmax", {"n": 2, "lanes": 1}, {"Accumulator.running", "FinalMac.high0_0", "FinalMac.high0_1"}),
    ("softmax", {"n": 8, "lanes": 1, "mode": "base2", "base2_chunk": 4},
     {"Accumulator.running", "ChunkedAccumulator.total"}),
    ("requant", REQUANT, {"Requantizer.zero_point0", "SaturatingRoundingDoublingHighMul.result"}),
    ("dense", DENSE, {"FoldedEngine.row_sum0", "Requantizer.zero_point0"}),
    ("attention", ATTENTION, {"FoldedEngine.row_sum0", "Accumulator.running", "FinalMac.high0_0"}),
])
def test_wrap_checks_only_for_the_harness(unit: str, parameters: dict[str, Any], listed: set[str]) -> None:
    """The overflow group's harness collects each component's narrow values; an ordinary build lists none (and
    builds none of the formal-only logic)."""
    harness = StreamHarness(component(unit, parameters), "overflow", depth=8)
    harness_rtlil(harness)
    assert listed <= {check.name for check in harness.wrap_checks}
    plain = component(unit, parameters)
    Fragment.get(plain, None)
    assert plain.wrap_checks is None


def test_attention_stages_for_overflow() -> None:
    """The attention's overflow group checks its stages one by one, each a fresh component with every input free:
    the projections, the head's score and P·V engines and its softmax, each listing its narrow values."""
    stages = component("attention", ATTENTION).formal_stages()
    assert list(stages) == ["q_projection", "k_projection", "v_projection", "score0", "output0", "softmax0"]
    for name, (stage, cycles) in stages.items():
        harness = StageHarness(stage, name)
        text = harness_rtlil(harness)
        assert harness.wrap_checks, name
        assert cycles > stage.latency and text.count("$anyseq") >= 3
    shared = component("attention", {"seq_len": 4, "embed_dim": 4, "heads": 2, "head_dim": 2})
    with pytest.raises(ValueError, match="share a reciprocal"):
        shared.formal_stages()
    Fragment.get(shared, None)


def test_command_line_names_match_the_harness() -> None:
    """The command line's copies of the group and fault names, kept free of Amaranth, are the harness's."""
    assert GROUP_NAMES == GROUPS and FAULT_NAMES == FAULTS
    assert FRAMABLE_GROUP_NAMES == FRAMABLE_GROUPS and DEFAULT_FRAMED_GROUP_NAMES == DEFAULT_FRAMED_GROUPS


def test_sby_file() -> None:
    text = sby_text("framing.il", "prove", 12, 60, abstract=True)
    assert "mode prove\ndepth 12\ntimeout 60\n" in text
    assert "smtbmc yices" in text and "cutpoint t:$mul" in text and "memory_map" in text
    assert "cutpoint" not in sby_text("cover.il", "cover", 12, None, abstract=False)
    assert "[engines]\nabc bmc3\n" in sby_text("framing.il", "bmc", 12, None, abstract=True, engine="abc")
    assert "[engines]\nsmtbmc yices\n" in sby_text("framing.il", "bmc", 12, None, abstract=True, engine="smtbmc")
    assert "mode prove\n" in (pdr := sby_text("framing.il", "prove", 12, 60, abstract=True, engine="pdr"))
    assert "[engines]\nabc pdr\n" in pdr


def test_abc_commands_and_verdicts() -> None:
    """SymbiYosys's ABC commands become one ``abc -script +...`` argument ending in ``write_status``; ABC's status
    becomes the line SymbiYosys reads: a pass only when ``bmc3`` went through every frame it was asked for."""
    commands = "read_aiger model/design_aiger.aig; fold; strash; bmc3 -F 9 -v; write_cex -a engine_0/trace.aiw"
    assert abc_script(commands, "s/status.txt") == ("+read_aiger,model/design_aiger.aig;fold;strash;bmc3,-F,9,-v;"
                                                   "write_cex,-a,engine_0/trace.aiw;write_status,s/status.txt")
    with pytest.raises(ValueError, match="commas"):
        abc_script("pdr -v, -l", "status.txt")
    assert verdict("snl_UNK 8 unknown\nNULL\n", commands) == ["No output asserted in 9 frames."]
    assert verdict("snl_UNK 5 unknown\nNULL\n", commands)[0].startswith("ABC status: snl_UNK 5")
    assert verdict("snl_SAT 8 unknown 0 9\n00\n", commands) == ['Output 0 of miter "design" was asserted in frame 9.']
    assert verdict("snl_UNSAT 3 unknown\n", "pdr -v -l") == ["Property proved."]


def test_unsupported_configurations_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="target=generic"):
        run_formal("requant", REQUANT | {"target": "ecp5"}, tmp_path)
    with pytest.raises(ConfigError, match="mode"):
        run_formal("requant", REQUANT, tmp_path, mode="exhaustive")
    with pytest.raises(ConfigError, match="fault"):
        run_formal("requant", REQUANT, tmp_path, fault="late")
    with pytest.raises(ConfigError, match="framed group.*handshake.*allowed: framing, liveness, throughput"):
        run_formal("requant", REQUANT, tmp_path, framed_groups=("handshake",))


def test_requantizer_contract(tools: dict[str, str], tmp_path: Path) -> None:
    """1 lane, 1 channel: the handshake, liveness and throughput groups close by k-induction, framing holds to the
    bounded depth, every cover is reached."""
    report = run_formal("requant", REQUANT, tmp_path)
    assert report["result"] == "PASS", report["groups"]
    statuses = {group: result["status"] for group, result in report["groups"].items()}
    assert statuses["handshake"] == statuses["liveness"] == statuses["throughput"] == "PROVEN"
    assert statuses["framing"] in ("PROVEN", "BOUNDED") and statuses["cover"] == "REACHED"
    assert Path(report["folder"], "report.json").is_file()
    assert {item["name"] for item in report["properties"]} >= {"output_payload_stable", "latency_exact"}


def test_softmax_contract(tools: dict[str, str], tmp_path: Path) -> None:
    """n = 2, 1 lane, mode tflite: the handshake proven by k-induction, framing (the sticky error included) bounded to
    34 cycles (the first rows out at 28), covers reached; liveness and throughput are in the slow tests."""
    report = run_formal("softmax", {"n": 2, "lanes": 1}, tmp_path, depth=34, groups=("handshake", "framing", "cover"))
    assert report["result"] == "PASS", report["groups"]
    assert report["groups"]["handshake"]["status"] == "PROVEN"
    assert set(names(report, "cover", "reached")) == {"row_out", "back_to_back_rows", "stalled_output",
                                                      "error_raised"}


def test_requantizer_no_wrap(tools: dict[str, str], tmp_path: Path) -> None:
    """The requantizer's left shift, products and zero point do not wrap for any accumulator (bounded)."""
    report = run_formal("requant", REQUANT, tmp_path, groups=("overflow",))
    result = report["groups"]["overflow"]
    assert report["result"] == "PASS" and result["status"] in ("PROVEN", "BOUNDED"), result
    assert result["abstract"] is False and "Requantizer.zero_point0" in result["wrap_checks"]


def test_softmax_no_wrap(tools: dict[str, str], tmp_path: Path) -> None:
    """n = 2, mode tflite: the exp-sum accumulator and the final MAC's rounding sums do not wrap, to the first rows'
    probabilities (bounded to 30 cycles; ``make formal`` goes to 35)."""
    report = run_formal("softmax", {"n": 2, "lanes": 1}, tmp_path, depth=30, mode="bmc", groups=("overflow",))
    result = report["groups"]["overflow"]
    assert report["result"] == "PASS", result
    assert {"Accumulator.running", "FinalMac.high0_0"} <= set(result["wrap_checks"])


def test_wrapping_left_shift_is_caught(tools: dict[str, str], tmp_path: Path) -> None:
    """An output scale 500 times finer than the input's gives a left shift of 3, which wraps for accumulators of
    2^28 and more (int32 arithmetic, as TFLite's): the overflow group catches it with a trace."""
    report = run_formal("requant", REQUANT | {"output_scale": 0.0001}, tmp_path, groups=("overflow",))
    result = report["groups"]["overflow"]
    assert report["result"] == "FAIL" and result["failed"] == ["no_wrap"]
    assert result["trace"] is not None and Path(result["trace"]).is_file()


class _Stages:
    """A unit of two requantizer stages, the second with a left shift that wraps."""

    def formal_stages(self) -> dict[str, tuple[Any, int]]:
        return {"fine": (component("requant", REQUANT), 6),
                "wrapping": (component("requant", REQUANT | {"output_scale": 0.0001}), 6)}


def test_a_wrapping_stage_fails_the_staged_group(tools: dict[str, str], tmp_path: Path) -> None:
    """Stage by stage, the group takes the verdict of the stage that wraps, with its trace, and keeps each stage's."""
    result, _ = _run_stages(tools, tmp_path, _Stages(), "auto", None, "auto")
    assert result["status"] == "FAIL" and result["failed"] == ["no_wrap"]
    assert Path(result["trace"]).is_file() and "/overflow-wrapping_" in result["trace"]
    assert result["stages"]["fine"]["status"] in ("PROVEN", "BOUNDED")
    assert result["stages"]["wrapping"]["status"] == "FAIL" and result["depth"] == 10


def test_dense_contract(tools: dict[str, str], tmp_path: Path) -> None:
    """4 inputs in 2 beats, 2 outputs in 2 folds: the handshake proven by k-induction, framing (rows counted by their
    beats, the sticky error), the exact latency and the folded input rate bounded, covers reached."""
    groups = ("handshake", "framing", "liveness", "throughput", "cover")
    report = run_formal("dense", DENSE, tmp_path, groups=groups)
    assert report["result"] == "PASS", report["groups"]
    assert report["groups"]["handshake"]["status"] == "PROVEN"
    assert set(names(report, "cover", "reached")) == {"row_out", "back_to_back_rows", "stalled_output",
                                                      "error_raised"}


def test_dense_row_sum_does_not_wrap(tools: dict[str, str], tmp_path: Path) -> None:
    """Each output channel's row sum and bias, accumulated exactly beside the wrapping running sum, equals what the
    requantizer gets, to the first row's output (depth 12; ``make formal`` goes to 21)."""
    report = run_formal("dense", DENSE, tmp_path, depth=12, mode="bmc", groups=("overflow",))
    assert report["result"] == "PASS", report["groups"]


@pytest.mark.parametrize(("fault", "group", "caught_by"), [
    ("valid_dropped", "handshake", "output_valid_held"),
    ("ready_ignored", "framing", "error_on_misframe"),
])
def test_broken_dense_is_caught(tools: dict[str, str], tmp_path: Path, fault: str, group: str,
                                caught_by: str) -> None:
    """The dense unit with a broken handshake fails, with a VCD counterexample on the unabstracted design; a beat
    taken while the unit is not ready (in a later fold) is lost to it, so its rows no longer line up with the input's
    and its error flag does not follow the input's framing."""
    report = run_formal("dense", DENSE, tmp_path, groups=(group,), fault=fault)
    result = report["groups"][group]
    assert report["result"] == "FAIL" and caught_by in result["failed"], result
    assert result["trace"] is not None and Path(result["trace"]).is_file() and result["abstract"] is False


def test_attention_handshake(tools: dict[str, str], tmp_path: Path) -> None:
    """S = 2, E = 2, one head of 2: the handshake closes by k-induction (the other groups need bounded checks past
    the first output, 76 cycles: :func:`test_attention_output_side` and ``make formal``)."""
    report = run_formal("attention", ATTENTION, tmp_path, groups=("handshake",))
    assert report["groups"]["handshake"]["status"] == "PROVEN", report["groups"]


@pytest.mark.parametrize("bmc_engine", BMC_ENGINES)
@pytest.mark.parametrize(("fault", "group", "caught_by"), [
    ("ready_ignored", "framing", "output_progress"),
    ("payload_while_stalled", "handshake", "output_payload_stable"),
])
def test_broken_wrapper_is_caught(tools: dict[str, str], tmp_path: Path, fault: str, group: str,
                                  caught_by: str, bmc_engine: str) -> None:
    """The same properties fail on a requantizer with a broken handshake, with a VCD counterexample that the
    unabstracted design confirms, on either engine of the bounded checks."""
    report = run_formal("requant", REQUANT, tmp_path, depth=16, groups=(group,), fault=fault, bmc_engine=bmc_engine)
    result = report["groups"][group]
    assert report["result"] == "FAIL" and result["status"] == "FAIL"
    assert caught_by in result["failed"]
    assert result["trace"] is not None and Path(result["trace"]).suffix == ".vcd" and Path(result["trace"]).is_file()
    assert result["abstract"] is False


def test_requantizer_proven_by_pdr(tools: dict[str, str], tmp_path: Path) -> None:
    """ABC's pdr proves every assertion group of the 1-lane requantizer, framing and overflow too, for traces of any
    length; the same mode still catches a broken wrapper, with a trace."""
    report = run_formal("requant", REQUANT, tmp_path, mode="pdr")
    assert report["result"] == "PASS", report["groups"]
    for group in ("handshake", "framing", "liveness", "throughput", "overflow"):
        assert report["groups"][group]["status"] == "PROVEN" and report["groups"][group]["engine"] == "abc pdr"
    broken = run_formal("requant", REQUANT, tmp_path, depth=16, mode="pdr", groups=("framing",),
                        fault="ready_ignored")
    assert broken["result"] == "FAIL" and "output_progress" in broken["groups"]["framing"]["failed"]
    assert Path(broken["groups"]["framing"]["trace"]).is_file()


@pytest.mark.slow
@pytest.mark.parametrize(("fault", "caught_by"), [("payload_while_stalled", "output_payload_stable"),
                                                  ("valid_dropped", "output_valid_held")])
def test_output_faults_are_caught_on_the_softmax(tools: dict[str, str], tmp_path: Path, fault: str,
                                                 caught_by: str) -> None:
    """The softmax's input is not ready before its row buffer fills, far past these depths: only the output faults."""
    report = run_formal("softmax", {"n": 2, "lanes": 1}, tmp_path, groups=("handshake",), fault=fault)
    assert report["result"] == "FAIL" and caught_by in report["groups"]["handshake"]["failed"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", SOFTMAX_MODES)
def test_softmax_modes(tools: dict[str, str], tmp_path: Path, mode: str) -> None:
    """Every softmax mode at n = 2, 1 lane, all groups at the default depth."""
    report = run_formal("softmax", {"n": 2, "lanes": 1, "mode": mode}, tmp_path)
    assert report["result"] == "PASS", report["groups"]
    assert report["groups"]["handshake"]["status"] == "PROVEN"


@pytest.mark.slow
def test_attention_no_wrap(tools: dict[str, str], tmp_path: Path) -> None:
    """S = 2, E = 2, one head of 2: no stage of the attention wraps, each checked on its own for any input (``make
    formal`` runs the same)."""
    report = run_formal("attention", ATTENTION, tmp_path, groups=("overflow",))
    result = report["groups"]["overflow"]
    assert report["result"] == "PASS", result
    assert set(result["stages"]) == {"q_projection", "k_projection", "v_projection", "score0", "output0", "softmax0"}
    assert "softmax0: FinalMac.high0_0" in result["wrap_checks"]


@pytest.mark.slow
def test_attention_output_side(tools: dict[str, str], tmp_path: Path) -> None:
    """S = 2, E = 2, one head of 2, at the default depth, past the second output sequence (``make formal`` runs the
    same): every output sequence's first beat exactly ``latency`` cycles after its last input beat and no sequence
    starting at any other time, on ABC's bounded check; on well-framed input under a stalling sink, output sequences
    framed, never more out than in, and moving while the sink takes them; back-to-back sequences, a stalled beat and
    ``error`` reached."""
    report = run_formal("attention", ATTENTION, tmp_path, groups=("framing", "liveness", "cover"),
                        framed_groups=("framing", "liveness"))
    assert report["result"] == "PASS", report["groups"]
    assert report["groups"]["liveness"]["engine"] == report["groups"]["framing"]["engine"] == "abc bmc3"
    assert {"input_well_framed", "output_framing", "rows_out_within_rows_in",
            "output_progress"} <= set(report["groups"]["framing"]["properties"])
    assert set(report["groups"]["cover"]["reached"]) == {"row_out", "back_to_back_rows", "stalled_output",
                                                         "error_raised"}


@pytest.mark.slow
def test_requantizer_wider(tools: dict[str, str], tmp_path: Path) -> None:
    """Per-channel table (a ROM), 2 lanes, 4 beats a row: the stream contract holds; the left shifts of channels 3
    and 6 wrap for large accumulators (int32 arithmetic, as TFLite's), which the overflow group reports."""
    parameters = {"channels": 8, "lanes": 2, "multipliers": tuple(range(1 << 20, (1 << 20) + 8)),
                  "shifts": (-3, -1, 0, 1, -5, -2, 2, -7)}
    report = run_formal("requant", parameters, tmp_path)
    assert {group for group, result in report["groups"].items() if result["status"] not in STATUSES_PASSING} == {
        "overflow"}, report["groups"]
    assert report["groups"]["overflow"]["failed"] == ["no_wrap"]
