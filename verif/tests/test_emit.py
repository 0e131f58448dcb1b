"""Emitted Verilog: the same bytes for the same parameters wherever it runs, a header, and a clean Verilator lint."""


import pytest
from cli_runner import options_of, run, run_process, verilator_lint

from int8attn import __version__
from int8attn.golden import SoftmaxConfig

CONFIGS = {
    "default": SoftmaxConfig(),
    "one-element": SoftmaxConfig(n=1, lanes=1),
    "wide-sum": SoftmaxConfig(n=4096, lanes=64, input_scale=0.25),
    "tinymind": SoftmaxConfig(n=10, lanes=2, mode="tinymind"),
    "lut": SoftmaxConfig(n=16, lanes=4, mode="lut", rom_depth=48, rom_width=9, reciprocal="lut", output_bits=12,
                         accumulator_width=22),
    "hccs": SoftmaxConfig(n=64, lanes=4, mode="hccs", hccs_reciprocal="clb", output_bits=16),
    "base2": SoftmaxConfig(n=256, lanes=8, mode="base2", base2_grid_shift=5),
    "poly": SoftmaxConfig(n=10, lanes=2, mode="poly", poly_n=3),
    "base2-fraction": SoftmaxConfig(n=16, lanes=2, mode="base2", base2_grid_shift=4, base2_frac_bits=4,
                                    base2_requantize=True),
}
ROM_FILES = {"hccs": set(), "base2": set(), "poly": {"score_rom.hex"}, "base2-fraction": {"weight_rom.hex"}}
"""The table files beside the Verilog: the exp ROM's, the poly score ROM's, base2's output weights with fraction
bits, none for the computed scores."""


# The config emitted by two separate processes (string hashes, so set orders, differ between processes); the others are
# emitted in the test process.
SEPARATE_PROCESSES = "lut"


def emit_in(folder, config: SoftmaxConfig, *, process: bool = False) -> dict[str, bytes]:
    folder.mkdir()
    result = (run_process if process else run)("verilog", "softmax", *options_of(config.as_dict()), "-o", "out",
                                               cwd=folder)
    assert result.returncode == 0, result.stderr
    return {path.name: path.read_bytes() for path in sorted((folder / "out").iterdir())}


@pytest.mark.parametrize("name", CONFIGS)
def test_same_bytes_from_different_folders(name: str, tmp_path):
    first = emit_in(tmp_path / "a", CONFIGS[name], process=name == SEPARATE_PROCESSES)
    second = emit_in(tmp_path / "elsewhere", CONFIGS[name], process=name == SEPARATE_PROCESSES)
    assert set(first) == {"softmax.v", "softmax.json", "softmax.core"} | ROM_FILES.get(name, {"exp_rom.hex"})
    assert first == second
    header = first["softmax.v"].decode().splitlines()[0]
    assert f"int8attn {__version__}" in header
    for key, value in CONFIGS[name].as_dict().items():
        assert f"{key}={value}" in header
    assert str(tmp_path).encode() not in first["softmax.v"] + first["softmax.json"]


@pytest.mark.parametrize("name", CONFIGS)
def test_verilator_lint_is_clean(name: str, tmp_path):
    emit_in(tmp_path / "emit", CONFIGS[name])
    result = verilator_lint(tmp_path / "emit" / "out" / "softmax.v")
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
