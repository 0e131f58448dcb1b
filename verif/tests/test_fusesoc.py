"""``<unit>.core``: a FuseSoC CAPI2 core file beside every emission, the same bytes every time, and FuseSoC's
Verilator lint target passing on it.

The FuseSoC runs need the ``fusesoc`` package (the ``dev`` extra) and Verilator; without either they are skipped with
the install command.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import run

from int8attn.golden import SoftmaxConfig
from int8attn.hdl import emit
from int8attn.units import UNITS
from int8attn.verif.runner import SimulatorMissing, find_simulator

TIMEOUT_S = 300
EMISSIONS = {
    "softmax-stream": ("softmax", []),
    "requant-channel-axis": ("requant", ["--channels", "4", "--lanes", "2", "--weight-scales", "0.01,0.02,0.5,1",
                                         "--interface", "axis"]),
}


def emit_folder(folder: Path, unit: str, options: list[str]) -> Path:
    result = run("verilog", unit, *options, "-o", folder)
    assert result.returncode == 0, result.stderr
    return folder


def fusesoc(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    """``fusesoc *args`` in ``cwd``, with its configuration and caches there too; skips without FuseSoC or Verilator."""
    if importlib.util.find_spec("fusesoc") is None:
        pytest.skip("FuseSoC is not installed: pip install fusesoc (or pip install -e '.[dev]')")
    try:
        find_simulator("verilator")
    except SimulatorMissing as error:
        pytest.skip(str(error))
    env = os.environ | {f"XDG_{kind}_HOME": str(cwd / kind.lower()) for kind in ("CONFIG", "CACHE", "DATA")}
    return subprocess.run([sys.executable, "-m", "fusesoc.main", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=TIMEOUT_S)


@pytest.mark.parametrize("name", EMISSIONS)
def test_core_file_lists_the_emitted_files(name: str, tmp_path: Path) -> None:
    unit, options = EMISSIONS[name]
    folder = emit_folder(tmp_path / "out", unit, options)
    text = (folder / f"{unit}.core").read_text()
    assert text.startswith("CAPI=2:\n")
    assert f"\nname: int8attn:units:{unit}:" in text and f"    toplevel: {unit}\n" in text
    written = {path.name for path in folder.iterdir()} - {f"{unit}.core"}
    listed = {line.strip().removeprefix("- ") for line in text.splitlines() if line.startswith("      - ")}
    assert listed == written


def test_core_file_is_the_same_bytes_anywhere(tmp_path: Path) -> None:
    unit, options = EMISSIONS["requant-channel-axis"]
    first = emit_folder(tmp_path / "a", unit, options)
    second = emit_folder(tmp_path / "elsewhere" / "b", unit, options)
    assert (first / f"{unit}.core").read_bytes() == (second / f"{unit}.core").read_bytes()
    assert str(tmp_path) not in (first / f"{unit}.core").read_text()


VERSIONS = {"0.1.0": "0.1.0", "1.2.0.dev3+g12ab-dirty": "1.2.0.dev3.g12ab.dirty", "0+unknown": "0.unknown",
            "v2": "0.v2"}


@pytest.mark.parametrize(("version", "expected"), VERSIONS.items())
def test_vlnv_version_is_sanitised(version: str, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emit, "__version__", version)
    name = emit.vlnv(UNITS["softmax"])
    assert name == f"int8attn:units:softmax:{expected}"
    if importlib.util.find_spec("fusesoc") is not None:
        from fusesoc.vlnv import Vlnv

        parsed = Vlnv(name)
        assert (parsed.vendor, parsed.library, parsed.name, parsed.version, parsed.revision) == (
            "int8attn", "units", "softmax", expected, 0)


@pytest.mark.parametrize("name", EMISSIONS)
def test_fusesoc_lint_target_passes(name: str, tmp_path: Path) -> None:
    unit, options = EMISSIONS[name]
    folder = emit_folder(tmp_path / "cores", unit, options)
    result = fusesoc("--cores-root", folder, "run", "--target", "lint", f"int8attn:units:{unit}", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    commands = list((tmp_path / "build").glob("*/lint/*.vc"))
    assert len(commands) == 1 and "--lint-only" in commands[0].read_text().split()


def test_fusesoc_lint_target_fails_on_bad_verilog(tmp_path: Path) -> None:
    folder = tmp_path / "cores"
    emit.emit(SoftmaxConfig(n=8, lanes=2), folder)
    verilog = folder / "softmax.v"
    verilog.write_text(verilog.read_text().replace("endmodule", "  assign undeclared_net = 1'b1;\nendmodule", 1))
    result = fusesoc("--cores-root", folder, "run", "--target", "lint", "int8attn:units:softmax", cwd=tmp_path)
    assert result.returncode != 0
    assert "undeclared_net" in result.stdout + result.stderr
