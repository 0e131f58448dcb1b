"""The ``int8attn`` command, run as a user would: one-line errors with exit code 2, and the good paths."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cli_runner import options_of, run, run_process

from int8attn.golden import SoftmaxConfig, SoftmaxModel


def assert_one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("int8attn: error: ")
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inputs")
    paths = {name: folder / f"{name}.npy" for name in ("good", "float", "cols", "cube", "pickled")}
    rng = np.random.default_rng(0)
    np.save(paths["good"], rng.integers(-128, 128, (5, 64), dtype=np.int8))
    np.save(paths["float"], np.zeros((5, 64), dtype=np.float32))
    np.save(paths["cols"], np.zeros((5, 63), dtype=np.int8))
    np.save(paths["cube"], np.zeros((2, 5, 64), dtype=np.int8))
    np.save(paths["pickled"], np.array([{"a": 1}], dtype=object), allow_pickle=True)
    paths["text"] = folder / "rows.txt"
    paths["text"].write_text("1 2 3\n")
    paths["empty"] = folder / "empty.npy"
    paths["empty"].write_bytes(b"")
    paths["npz"] = folder / "rows.npz"
    np.savez(paths["npz"], x=np.zeros((5, 64), dtype=np.int8))
    paths["file"] = folder / "a_file"
    paths["file"].write_text("")
    paths["folder"] = folder
    return paths


UNIT = ["--n", "64", "--lanes", "4"]
BAD_UNIT_OPTIONS = [
    ["--n", "abc"], ["--n", "0"], ["--n", "65537"], ["--n", "1.5"], ["--lanes", "3"], ["--lanes", "0"],
    ["--lanes", "128", "--n", "128"], ["--beta", "nan"], ["--beta", "inf"], ["--beta", "-1"], ["--beta", "0"],
    ["--beta", "x"], ["--input-scale", "-0.5"], ["--input-scale", "1e-50"], ["--input-scale", "1e-6", "--beta", "1e-6"],
    ["--input-zero-point", "128"], ["--input-zero-point", "-129"], ["--input-zero-point", "z"], ["--frob"],
    ["--mode", "float"], ["--mode", "tinymind", "--beta", "2"], ["--rom-width", "12"],
    ["--mode", "lut", "--rom-depth", "0"], ["--mode", "lut", "--rom-width", "32"],
    ["--mode", "lut", "--output-bits", "3"], ["--mode", "lut", "--reciprocal", "table"],
    ["--mode", "lut", "--reciprocal-steps", "4"], ["--mode", "lut", "--accumulator-width", "x"],
    ["--mode", "lut", "--accumulator-width", "19"], ["--mode", "lut", "--reciprocal-bits", "13"],
    ["--mode", "lut", "--output-bits", "17"], ["--mode", "lut", "--rom-width", "1"],
    ["--mode", "tinymind", "--rom-depth", "64"], ["--mode", "tflite", "--reciprocal", "lut"],
]


SOME_BAD_UNIT_OPTIONS = [["--n", "abc"], ["--n", "0"], ["--beta", "nan"], ["--input-scale", "-0.5"], ["--frob"]]


@pytest.mark.parametrize("options", BAD_UNIT_OPTIONS, ids=" ".join)
def test_verilog_bad_unit_options(options, tmp_path):
    assert_one_line_error(run("verilog", "softmax", *options, "-o", tmp_path / "out"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("options", SOME_BAD_UNIT_OPTIONS + [["--lanes", "3"]], ids=" ".join)
def test_sim_bad_unit_options(options):
    assert_one_line_error(run("sim", "softmax", *options, "--rows", "1"))


@pytest.mark.parametrize("options", SOME_BAD_UNIT_OPTIONS, ids=" ".join)
def test_golden_bad_unit_options(options, files, tmp_path):
    assert_one_line_error(run("golden", "softmax", *options, "--in", files["good"], "--out", tmp_path / "y.npy"))


def test_config_errors_name_parameter_and_range(tmp_path):
    line = assert_one_line_error(run("verilog", "softmax", "--lanes", "3", "-o", tmp_path))
    assert "lanes" in line and "allowed" in line
    line = assert_one_line_error(run("verilog", "softmax", "--n", "abc", "-o", tmp_path))
    assert "--n" in line and "allowed" in line


@pytest.mark.parametrize("args", [
    [], ["frob"], ["verilog"], ["verilog", "frob"], ["golden", "softmax"], ["golden", "softmax", "--in", "x.npy"],
    ["sim", "softmax", "--simulator", "modelsim"], ["sim", "softmax", "--rows", "0"], ["sim", "softmax", "--rows", "x"],
    ["sim", "softmax", "--seed", "-1"], ["bench", "--frob"], ["golden-vectors", "--frob"],
    ["synth", "softmax"], ["synth", "softmax", "--family", "virtex2"],
    ["synth", "softmax", "--family", "xc7", "--n", "0"], ["synth", "softmax", "--family", "ecp5", "--freq-mhz", "-5"],
    ["synth", "softmax", "--family", "ecp5", "--seed", "x"],
], ids=lambda args: " ".join(args) or "nothing")
def test_usage_errors(args):
    assert_one_line_error(run(*args))


def test_help_exits_zero():
    result = run("--help")
    assert result.returncode == 0 and "verilog" in result.stdout and result.stderr == ""


def test_entry_point_as_a_process(tmp_path):
    """The other tests call ``main`` in the test process; here ``python -m int8attn.cli`` runs on its own."""
    result = run_process("--help")
    assert result.returncode == 0 and "verilog" in result.stdout and result.stderr == ""
    assert "--n" in assert_one_line_error(run_process("verilog", "softmax", "--n", "abc", "-o", tmp_path / "out"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["missing", "text", "empty", "npz", "pickled", "float", "cols", "cube", "folder"])
def test_golden_bad_input(name, files, tmp_path):
    source = files["folder"] / "absent.npy" if name == "missing" else files[name]
    assert_one_line_error(run("golden", "softmax", *UNIT[:2], "--in", source, "--out", tmp_path / "y.npy"))
    assert not (tmp_path / "y.npy").exists()


@pytest.mark.parametrize("target", ["proc", "folder", "missing_parent"])
def test_golden_unwritable_output(target, files):
    output = {"proc": Path("/proc/int8attn.npy"), "folder": files["folder"],
              "missing_parent": files["folder"] / "absent" / "y.npy"}[target]
    assert_one_line_error(run("golden", "softmax", "--in", files["good"], "--out", output))


def test_golden_round_trip(files, tmp_path):
    output = tmp_path / "probs"
    result = run("golden", "softmax", "--n", "64", "--input-scale", "0.1", "--beta", "1.5", "--in", files["good"],
                 "--out", output)
    assert result.returncode == 0, result.stderr
    x = np.load(files["good"])
    expected = SoftmaxModel(SoftmaxConfig(n=64, lanes=1, input_scale=0.1, beta=1.5))(x)
    np.testing.assert_array_equal(np.load(output), expected)


@pytest.mark.parametrize("parameters", [
    {"mode": "tinymind"},
    {"mode": "lut", "rom_depth": 64, "rom_width": 12, "reciprocal": "lut", "reciprocal_bits": 6, "output_bits": 12},
], ids=lambda parameters: parameters["mode"])
def test_golden_modes(parameters, files, tmp_path):
    result = run("golden", "softmax", "--n", "64", *options_of(parameters), "--in", files["good"], "--out",
                 tmp_path / "p.npy")
    assert result.returncode == 0, result.stderr
    model = SoftmaxModel(SoftmaxConfig(n=64, lanes=1, **parameters))
    probabilities = np.load(tmp_path / "p.npy")
    assert probabilities.dtype == model.output_dtype
    np.testing.assert_array_equal(probabilities, model(np.load(files["good"])))


def test_golden_accepts_one_row(tmp_path):
    row = np.random.default_rng(1).integers(-128, 128, 10, dtype=np.int8)
    np.save(tmp_path / "row.npy", row)
    result = run("golden", "softmax", "--n", "10", "--in", tmp_path / "row.npy", "--out", tmp_path / "p.npy")
    assert result.returncode == 0, result.stderr
    probabilities = np.load(tmp_path / "p.npy")
    assert probabilities.shape == (10,)
    np.testing.assert_array_equal(probabilities, SoftmaxModel(SoftmaxConfig(n=10, lanes=1))(row[None])[0])


def test_golden_vectors_command(tmp_path):
    result = run("golden-vectors", "--out-dir", tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "softmax.npz").stat().st_size > 0
    assert json.loads((tmp_path / "softmax.json").read_text())["cases"]


@pytest.mark.parametrize("command", [["verilog", "softmax", "-o"], ["golden-vectors", "--out-dir"]])
@pytest.mark.parametrize("target", ["proc", "file", "under_file"])
def test_unwritable_output_folder(command, target, files):
    folder = {"proc": Path("/proc/int8attn"), "file": files["file"], "under_file": files["file"] / "sub"}[target]
    assert_one_line_error(run(*command, folder))


def test_read_only_output_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    if os.access(locked, os.W_OK):
        pytest.skip("this user can write into a read-only folder (root)")
    assert_one_line_error(run("verilog", "softmax", "-o", locked / "out"))
    assert_one_line_error(run("verilog", "softmax", "-o", locked))


def test_bench_without_readme_block(tmp_path):
    (tmp_path / "README.md").write_text("# no benchmark block\n")
    line = assert_one_line_error(run("bench", "--quick", "--update-readme", cwd=tmp_path))
    assert "bench:start" in line
    assert not (tmp_path / "build").exists()


@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_sim_missing_simulator(simulator, tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}
    line = assert_one_line_error(run("sim", "softmax", "--n", "8", "--lanes", "2", "--simulator", simulator,
                                     cwd=tmp_path, env=env))
    assert "install" in line


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs iverilog: apt-get install -y iverilog")
def test_sim_passes_and_writes_waves(tmp_path):
    result = run("sim", "softmax", "--n", "8", "--lanes", "2", "--simulator", "icarus", "--rows", "4", "--waves",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("PASS n=8 lanes=2")
    waves = [Path(line.removeprefix("waves ")) for line in result.stdout.splitlines() if line.startswith("waves ")]
    assert waves and all(path.is_file() and path.is_relative_to(tmp_path) for path in waves)


def test_verilog_writes_files(tmp_path):
    result = run("verilog", "softmax", "--n", "16", "--lanes", "4", "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    for name in ("softmax.v", "softmax.json", "exp_rom.hex"):
        assert (tmp_path / "out" / name).stat().st_size > 0
        assert name in result.stdout
    sidecar = json.loads((tmp_path / "out" / "softmax.json").read_text())
    assert str(sidecar["latency_cycles"]) in result.stdout


def test_verilog_default_folder(tmp_path):
    result = run("verilog", "softmax", "--n", "8", "--lanes", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "build" / "softmax_n8_p2" / "softmax.v").exists()


@pytest.mark.slow
def test_synth_xc7_reports_resources(tmp_path):
    result = run("synth", "softmax", "--family", "xc7", "--n", "8", "--lanes", "1", "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "report_xc7.json").read_text())
    assert report["resources"]["luts"] > 0
    assert f"luts={report['resources']['luts']}" in result.stdout
