"""``--interface axis``: the AXI4-Stream top of every unit, its ports against the Verilog, and the same cocotb checks.

The softmax (int8 lanes, and 12-bit output lanes padded to 16) and a per-channel requantizer with int16 outputs run
``check`` and ``cycle`` (and the softmax ``framing``) on Icarus through ``aclk``/``aresetn`` and the
``s_axis``/``m_axis`` ports; the padded softmax runs on Verilator too.
"""

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from amaranth import Module
from amaranth.back import verilog
from amaranth.hdl import Fragment
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from cli_runner import run, verilator_lint
from test_units import top_module_ports

from int8attn.golden import SoftmaxConfig
from int8attn.golden.requant import RequantConfig
from int8attn.hdl.axis import AxisWrapper, tdata_lane_bits
from int8attn.hdl.streams import LaneBeat
from int8attn.units import UNITS
from int8attn.verif.runner import SimResult
from int8attn.verif.stream import PayloadLayout, port_names, streams_of
from int8attn.verif.testbench import CYCLE_TEST_ROWS

AXIS = {"interface": "axis"}
CONFIGS = {
    "softmax-n8-p2": (SoftmaxConfig(n=8, lanes=2, **AXIS), "check,cycle,framing"),
    "softmax-lut-int12": (SoftmaxConfig(n=8, lanes=2, mode="lut", rom_depth=64, output_bits=12, **AXIS),
                          "check,cycle,framing"),
    "requant-channel-int16": (RequantConfig(channels=8, lanes=2, input_scale=0.5,
                                            weight_scales=tuple(float(s) for s in np.geomspace(1e-3, 1.0, 8)),
                                            output_scale=0.01, output_bits=16, output_zero_point=-300, **AXIS),
                              "check,cycle"),
}
ON_VERILATOR = "softmax-lut-int12"
CASES = [(name, "icarus") for name in CONFIGS] + [(ON_VERILATOR, "verilator")]

Simulate = Callable[..., SimResult]


@pytest.fixture(scope="module", params=list(UNITS))
def emitted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """Each unit emitted on its defaults with ``--interface axis``, through the command line."""
    folder = tmp_path_factory.mktemp(f"{request.param}-axis")
    result = run("verilog", request.param, "--interface", "axis", "-o", folder)
    assert result.returncode == 0, result.stderr
    return request.param, folder


def sidecar_of(emitted: tuple[str, Path]) -> dict:
    name, folder = emitted
    return json.loads((folder / f"{name}.json").read_text())


def test_sidecar_ports_match_the_verilog_module(emitted: tuple[str, Path]) -> None:
    name, folder = emitted
    sidecar = sidecar_of(emitted)
    declared = top_module_ports((folder / f"{name}.v").read_text(), name)
    described = {port["name"]: (port["direction"], port["width"]) for port in sidecar["ports"]}
    assert described == declared
    assert len(sidecar["ports"]) == len(described)
    assert all(port["description"] for port in sidecar["ports"])
    assert {"aclk", "aresetn"} <= set(described) and not {"clk", "rst"} & set(described)
    assert (sidecar["clock"], sidecar["reset"], sidecar["reset_active"]) == ("aclk", "aresetn", "low")


def test_sidecar_streams_name_the_axis_ports(emitted: tuple[str, Path]) -> None:
    sidecar = sidecar_of(emitted)
    directions = {port["name"]: port["direction"] for port in sidecar["ports"]}
    specs = streams_of(sidecar)
    prefixes = [spec.port_prefix for spec in specs.values()]
    inputs = [name for name, entry in sidecar["streams"].items() if entry["direction"] == "input"]
    expected_inputs = ["s_axis"] if len(inputs) == 1 else [f"s_axis_{name}" for name in inputs]
    assert prefixes == [*expected_inputs, "m_axis"]
    for name, entry in sidecar["streams"].items():
        assert entry["protocol"] == "axis"
        assert entry["tdata_lane_bits"] == tdata_lane_bits(entry["lane_bits"]) and entry["tdata_lane_bits"] % 8 == 0
        assert entry["tdata_bits"] == entry["lanes"] * entry["tdata_lane_bits"]
        ports = specs[name].ports
        assert ports == port_names(entry["prefix"], "axis")
        assert {directions[ports[role]] for role in ("data", "valid", "last")} == {entry["direction"]}
        assert directions[ports["ready"]] != entry["direction"]


def test_verilator_lint_is_clean(emitted: tuple[str, Path]) -> None:
    name, folder = emitted
    result = verilator_lint(folder / f"{name}.v")
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_softmax_error_is_its_own_port() -> None:
    dut = AxisWrapper(UNITS["softmax"].make_component(SoftmaxConfig(n=8, lanes=2, mode="lut", output_bits=12, **AXIS)))
    descriptions = dut.port_descriptions()
    assert "aresetn" in descriptions["error"] and "rst" not in descriptions["error"].split()
    assert "sign-extended to 16 bits" in descriptions["m_axis_tdata"]
    assert (dut.latency, dut.latency_from, dut.frame_beats) == (dut.core.latency, "last", {"i": 4, "o": 4})
    Fragment.get(dut, None)


class TwoInputs(wiring.Component):
    """Two input streams and one output, to name: ``o = a`` and ``b`` only taken."""

    latency = 0

    def __init__(self):
        super().__init__({"a": In(stream.Signature(LaneBeat(2))), "b": In(stream.Signature(LaneBeat(1, 12))),
                          "o": Out(stream.Signature(LaneBeat(2)))})

    def elaborate(self, platform) -> Module:
        m = Module()
        wiring.connect(m, wiring.flipped(self.a), wiring.flipped(self.o))
        m.d.comb += self.b.ready.eq(1)
        return m


def test_several_streams_are_named_by_stream() -> None:
    dut = AxisWrapper(TwoInputs())
    assert {name: spec.prefix for name, spec in dut.axis_streams.items()} == {
        "a": "s_axis_a", "b": "s_axis_b", "o": "m_axis"}
    ports = top_module_ports(verilog.convert(dut, name="two", emit_src=False), "two")
    assert ports["s_axis_b_tdata"] == ("input", 16) and ports["s_axis_a_tdata"] == ("input", 16)
    assert ports["m_axis_tready"] == ("input", 1) and ports["aresetn"] == ("input", 1)
    assert "clk" not in ports and "rst" not in ports


def test_padded_lanes_are_sign_extended() -> None:
    layout = PayloadLayout(lanes=2, lane_bits=12, stride=16)
    word = layout.pack(np.array([-2048, 2047]), last=True)
    assert word == 0x07FF_F800 | 1 << 32
    values, last = layout.unpack(word)
    assert values.tolist() == [-2048, 2047] and last
    zero_extended, _ = layout.unpack(0x07FF_0800)
    assert zero_extended.tolist() == [2048, 2047], "a lane reads as its whole stride"
    with pytest.raises(ValueError, match="stride"):
        PayloadLayout(lanes=1, lane_bits=12, stride=8)


@pytest.mark.parametrize(("name", "simulator"), CASES, ids=[f"{name}-{sim}" for name, sim in CASES])
def test_rtl_matches_model_through_axis(name: str, simulator: str, rows: int,
                                        simulate: Simulate) -> None:
    config, tests = CONFIGS[name]
    result = simulate(config, simulator, rows=rows, test=tests)
    assert result.passed, "\n".join(result.errors)
    sidecar = json.loads((result.build_dir / "rtl" / f"{name.split('-')[0]}.json").read_text())
    assert result.reports["cycle"]["rows"] == max(rows, CYCLE_TEST_ROWS)
    assert result.latency_cycles == [sidecar["latency_cycles"]]
    assert result.elements_per_cycle == config.lanes
