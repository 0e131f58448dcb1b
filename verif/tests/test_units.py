"""The unit registry and the generic layers built on it: every unit emits on defaults, with ports from metadata."""

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from amaranth.hdl import Fragment
from cli_runner import run, verilator_lint

from int8attn.golden.params import TARGETS, ConfigError, Implementation, params
from int8attn.units import UNITS, unit_named, unit_of

VERILOG_PORT = re.compile(r"^\s*(input|output)\s+(?:signed\s+)?(?:\[(\d+):(\d+)\]\s+)?(\w+);", re.MULTILINE)


def top_module_ports(verilog: str, top: str) -> dict[str, tuple[str, int]]:
    """``name → (direction, width)`` of the ports declared in module ``top`` of Amaranth's Verilog."""
    start = verilog.index(f"module {top}(")
    body = verilog[start:verilog.index("endmodule", start)]
    return {name: ("input" if direction == "input" else "output", int(high) - int(low) + 1 if high else 1)
            for direction, high, low, name in VERILOG_PORT.findall(body)}


@pytest.fixture(scope="module", params=list(UNITS))
def emitted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, str]:
    """Each unit emitted with no option beyond its name, through the command line."""
    folder = tmp_path_factory.mktemp(request.param)
    result = run("verilog", request.param, "-o", folder)
    assert result.returncode == 0, result.stderr
    return request.param, folder, result.stdout


def test_every_unit_emits_on_defaults(emitted: tuple[str, Path, str]) -> None:
    name, folder, out = emitted
    sidecar = json.loads((folder / f"{name}.json").read_text())
    written = {folder / line.removeprefix("wrote ") for line in out.splitlines() if line.startswith("wrote ")}
    expected = {folder / f"{name}.v", folder / f"{name}.json", *(folder / item for item in sidecar["artefacts"])}
    assert written == expected
    assert all(path.stat().st_size > 0 for path in expected)
    assert sidecar["unit"] == sidecar["top"] == name
    assert sidecar["parameters"] == unit_named(name).config_type().as_dict()


def test_sidecar_ports_match_the_verilog_module(emitted: tuple[str, Path, str]) -> None:
    name, folder, _ = emitted
    sidecar = json.loads((folder / f"{name}.json").read_text())
    declared = top_module_ports((folder / f"{name}.v").read_text(), name)
    described = {port["name"]: (port["direction"], port["width"]) for port in sidecar["ports"]}
    assert described == declared
    assert len(sidecar["ports"]) == len(described)
    assert all(port["description"] for port in sidecar["ports"])


def test_sidecar_streams_agree_with_the_ports(emitted: tuple[str, Path, str]) -> None:
    name, folder, _ = emitted
    sidecar = json.loads((folder / f"{name}.json").read_text())
    widths = {port["name"]: port["width"] for port in sidecar["ports"]}
    directions = {port["name"]: port["direction"] for port in sidecar["ports"]}
    assert sidecar["streams"]
    for stream, layout in sidecar["streams"].items():
        assert widths[f"{stream}__payload"] == layout["width"] == layout["lanes"] * layout["lane_bits"] + 1
        assert layout["last_bit"] == layout["lanes"] * layout["lane_bits"]
        assert directions[f"{stream}__payload"] == directions[f"{stream}__valid"] == layout["direction"]
        assert directions[f"{stream}__ready"] != layout["direction"]
        assert layout["beats_per_frame"] * layout["lanes"] >= 1


def test_sidecar_names_each_quantity_once(emitted: tuple[str, Path, str]) -> None:
    """No key of the unit's own sections repeats a parameter name or a generic key."""
    name, folder, _ = emitted
    sidecar = json.loads((folder / f"{name}.json").read_text())
    generic = {"generator", "unit", "top", "parameters", "ports", "streams", "latency_cycles", "latency_from",
               "elements_per_cycle",
               "artefacts"}
    sections = {key: value for key, value in sidecar.items() if key not in generic}
    nested = [key for value in sections.values() if isinstance(value, dict) for key in value]
    assert not set(nested) & set(sidecar["parameters"]), "a sidecar section repeats a parameter"
    assert len(nested) == len(set(nested)), "two sidecar sections use the same name"


@pytest.mark.parametrize("command", ["verilog", "golden", "sim", "synth"])
def test_help_lists_every_unit(command: str) -> None:
    result = run(command, "--help")
    assert result.returncode == 0
    for name in UNITS:
        assert name in result.stdout


def test_top_level_help_lists_the_units() -> None:
    result = run("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for name, unit in UNITS.items():
        assert name in text and unit.summary in text


def test_unknown_unit_is_one_line_error() -> None:
    result = run("verilog", "frob")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("int8attn: error: ")
    assert "softmax" in result.stderr


@pytest.mark.parametrize("name", list(UNITS))
def test_every_parameter_has_an_option_with_its_range(name: str) -> None:
    unit = unit_named(name)
    result = run("verilog", name, "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for field_name, spec in params(unit.config_type).items():
        assert f"--{field_name.replace('_', '-')}" in text
        if spec.kind in ("int", "ints"):
            assert f"{spec.low}..{spec.high}" in text, field_name


@pytest.mark.parametrize("name", list(UNITS))
def test_out_of_range_parameter_names_itself(name: str, tmp_path: Path) -> None:
    unit = unit_named(name)
    integer = next(field_name for field_name, spec in params(unit.config_type).items() if spec.kind == "int")
    spec = params(unit.config_type)[integer]
    result = run("verilog", name, f"--{integer.replace('_', '-')}", str(spec.high + 1), "-o", tmp_path / "x")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert integer in result.stderr and "allowed" in result.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("name", list(UNITS))
def test_registry_records_resolve(name: str) -> None:
    unit = unit_named(name)
    config = unit.config_type()
    assert unit_of(config) is unit
    assert unit.make_config(config.as_dict()) == config
    assert unit.frame_elements(config) >= 1
    model = unit.make_model(config)
    assert model.output_description and model.input_dtype
    component = unit.make_component(config)
    Fragment.get(component, None)
    assert component.latency >= 1
    assert component.elements_per_cycle == unit.frame_elements(config) / component.cycles_per_frame
    assert set(component.frame_beats) == {member for member in component.signature.members
                                          if member not in ("error",)}


def test_unknown_parameters_are_refused() -> None:
    with pytest.raises(ConfigError, match="bogus"):
        unit_named("softmax").make_config({"bogus": 1})
    with pytest.raises(ConfigError, match="allowed: softmax"):
        unit_named("frob")



def test_verilator_lint_is_clean_on_defaults(emitted: tuple[str, Path, str]) -> None:
    name, folder, _ = emitted
    result = verilator_lint(folder / f"{name}.v")
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


@pytest.mark.parametrize("name", list(UNITS))
def test_unknown_targets_are_refused_in_one_line(name: str, tmp_path: Path) -> None:
    result = run("verilog", name, "--target", "virtex", "-o", tmp_path / "virtex")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "target" in result.stderr and f"allowed: {', '.join(TARGETS)}" in result.stderr
    assert not (tmp_path / "virtex").exists()


def test_a_target_the_unit_lacks_is_refused_naming_those_it_has() -> None:
    @dataclass(frozen=True, kw_only=True)
    class GenericOnly(Implementation):
        pass

    with pytest.raises(ConfigError, match="target='ecp5' is not implemented for GenericOnly yet; allowed: generic$"):
        GenericOnly(target="ecp5")


SMALL_OPTIONS = {"stack": ("--num-blocks", "1", "--seq-len", "4", "--embed-dim", "4", "--ffn-dim", "8")}
"""Options that make a unit's default quicker to emit, four times over."""


@pytest.mark.parametrize("name", [name for name, unit in UNITS.items() if len(unit.targets) > 1])
def test_every_target_emits_and_records_itself(name: str, tmp_path: Path) -> None:
    latencies = {}
    for target in unit_named(name).targets:
        result = run("verilog", name, "--target", target, *SMALL_OPTIONS.get(name, ()), "-o", tmp_path / target)
        assert result.returncode == 0, result.stderr
        sidecar = json.loads((tmp_path / target / f"{name}.json").read_text())
        assert sidecar["parameters"]["target"] == target
        latencies[target] = sidecar["latency_cycles"]
    assert latencies["generic"] < max(latencies.values()), "vendor DSP registers add latency the sidecar must show"
