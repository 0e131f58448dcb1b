"""Per-head calibration of the softmax surrogates: objective, search, files and their checks."""

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from int8attn.calibrate import (
    EPSILON,
    SAMPLE_PATH,
    SAMPLE_SCALE,
    add_arguments,
    benchmark,
    calibrate,
    command,
    load_head_params,
    load_logits,
    sample_logits,
    write_params,
)
from int8attn.golden import ConfigError, SoftmaxConfig, SoftmaxModel
from int8attn.golden.hccs import HccsParams, validity_errors
from int8attn.golden.surrogates import poly_grid

HCCS_SETTINGS = ("hccs_sum", "hccs_reciprocal", "hccs_inv_shift", "output_bits")


@pytest.fixture(scope="module")
def sample() -> dict[str, np.ndarray]:
    return load_logits(SAMPLE_PATH)


@pytest.fixture(scope="module")
def hccs_document(sample) -> dict:
    return calibrate(sample, "hccs", SAMPLE_SCALE)


@pytest.fixture(scope="module")
def poly_document(sample) -> dict:
    return calibrate(sample, "poly", SAMPLE_SCALE)


def expected_metrics(config: SoftmaxConfig, x: np.ndarray) -> dict[str, float]:
    """The metrics of the module docstring, element by element from the golden model's codes."""
    model = SoftmaxModel(config)
    codes = model(x)
    q = codes * model.output_scale
    z = np.exp(float(np.float32(config.input_scale)) * (x.astype(np.float64) - x.max(axis=1, keepdims=True)))
    p = z / z.sum(axis=1, keepdims=True)
    terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1) / (q + EPSILON)), 0)
    kl = terms.sum(axis=1) - 1 + (q + EPSILON).sum(axis=1)
    hits = [codes[row, np.argmax(p[row])] == codes[row].max() for row in range(len(x))]
    return {"mean_kl": kl.mean(), "max_abs_error": np.abs(q - p).max(), "argmax_agreement": np.mean(hits)}


def config_of(document: dict, record: dict | None) -> SoftmaxConfig:
    """The configuration of a head's calibrated parameters, or the default ones (``record=None``)."""
    mode = document["mode"]
    fixed = {"mode": mode, "n": document["n"], "lanes": 1, "input_scale": document["input_scale"]}
    if mode == "hccs":
        fixed.update({name: document[name] for name in HCCS_SETTINGS})
        chosen = {} if record is None else {"hccs_b": record["b"], "hccs_s": record["s"], "hccs_dmax": record["dmax"]}
    else:
        fixed["poly_n"] = document["poly_n"]
        chosen = {} if record is None else {"poly_b": record["b"], "poly_delta": record["delta"]}
    return SoftmaxConfig(**fixed, **chosen)


def assert_metrics(actual: dict, expected: dict) -> None:
    assert actual == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_sample_file_is_what_the_generator_writes(sample):
    assert SAMPLE_PATH.stat().st_size < 200_000
    generated = sample_logits()
    assert list(sample) == list(generated)
    for name, array in generated.items():
        assert sample[name].dtype == array.dtype
        np.testing.assert_array_equal(sample[name], array)


@pytest.mark.parametrize("mode", ["hccs", "poly"])
def test_calibration_beats_the_default_on_every_head(mode, sample, hccs_document, poly_document):
    document = hccs_document if mode == "hccs" else poly_document
    assert [record["name"] for record in document["heads"]] == list(sample)
    for record, x in zip(document["heads"], sample.values(), strict=True):
        assert record["after"]["mean_kl"] < record["before"]["mean_kl"]
        assert_metrics(record["after"], expected_metrics(config_of(document, record), x))
        assert_metrics(record["before"], expected_metrics(config_of(document, None), x))


def test_hccs_parameters_are_valid_and_a_local_minimum(sample, hccs_document):
    """The search rows are every row here (512 <= search_rows): no legal neighbour of the result is better."""
    name, x = next(iter(sample.items()))
    record = hccs_document["heads"][0]
    params = HccsParams(b=record["b"], s=record["s"], dmax=record["dmax"])
    assert validity_errors(params, x.shape[1], aie4ml_compatible=False) == []
    assert record["b"] != 1024 or record["s"] != 48 or record["dmax"] != 16
    for axis in ("b", "s", "dmax"):
        for step in (1, -1):
            moved = dict(record, **{axis: record[axis] + step})
            neighbour = HccsParams(b=moved["b"], s=moved["s"], dmax=moved["dmax"])
            if validity_errors(neighbour, x.shape[1], aie4ml_compatible=False):
                continue
            kl = expected_metrics(config_of(hccs_document, moved), x)["mean_kl"]
            assert kl >= record["after"]["mean_kl"] - 1e-12, (name, axis, step)


def test_poly_parameters_round_onto_the_grid_they_were_chosen_on(poly_document):
    for record in poly_document["heads"]:
        config = config_of(poly_document, record)
        assert poly_grid(config) == (record["b_lsb"], record["delta_grid"])
        assert record["b"] == pytest.approx(record["b_lsb"] * float(np.float32(SAMPLE_SCALE)), rel=1e-12)


@pytest.mark.parametrize("settings", [
    {"hccs_sum": "int16"},
    {"hccs_reciprocal": "clb", "hccs_inv_shift": 12},
    {"output_bits": 16},
    {"hccs_sum": "int16", "hccs_reciprocal": "clb", "output_bits": 16},
])
def test_hccs_settings_are_respected(settings, sample):
    heads = {name: x[:96] for name, x in list(sample.items())[1:3]}
    document = calibrate(heads, "hccs", SAMPLE_SCALE, settings)
    compatible = document["hccs_sum"] == "int16"
    default = HccsParams(b=1024, s=48, dmax=16, reciprocal=document["hccs_reciprocal"],
                         inv_shift=document["hccs_inv_shift"], output_bits=document["output_bits"])
    default_errors = validity_errors(default, 64, aie4ml_compatible=compatible)
    assert ("error" in document["default"]) == bool(default_errors)
    for record, x in zip(document["heads"], heads.values(), strict=True):
        params = HccsParams(b=record["b"], s=record["s"], dmax=record["dmax"], reciprocal=document["hccs_reciprocal"],
                            inv_shift=document["hccs_inv_shift"], output_bits=document["output_bits"])
        assert validity_errors(params, 64, aie4ml_compatible=compatible) == []
        assert_metrics(record["after"], expected_metrics(config_of(document, record), x))
        if default_errors:
            assert record["before"] is None
        else:
            assert record["after"]["mean_kl"] < record["before"]["mean_kl"]


@pytest.mark.parametrize("degree", [1, 3])
def test_poly_degrees(degree, sample):
    heads = {name: x[:96] for name, x in list(sample.items())[:2]}
    document = calibrate(heads, "poly", SAMPLE_SCALE, {"poly_n": degree})
    for record, x in zip(document["heads"], heads.values(), strict=True):
        assert_metrics(record["after"], expected_metrics(config_of(document, record), x))
        assert record["after"]["mean_kl"] < record["before"]["mean_kl"]


def test_search_rows_subsample_and_metrics_use_every_row(sample):
    heads = {"only": sample["head1"]}
    document = calibrate(heads, "hccs", SAMPLE_SCALE, search_rows=64, seed=3)
    record = document["heads"][0]
    assert record["rows"] == 512
    assert_metrics(record["after"], expected_metrics(config_of(document, record), sample["head1"]))
    assert calibrate(heads, "hccs", SAMPLE_SCALE, search_rows=64, seed=3) == document


def run_command(tmp_path: Path, *options: str) -> tuple[int, Path]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    output = tmp_path / "out" / "params.json"
    args = parser.parse_args(["--logits", str(SAMPLE_PATH), "--input-scale", str(SAMPLE_SCALE), "-o", str(output),
                              *options])
    return command(args), output


@pytest.mark.parametrize("mode", ["hccs", "poly"])
def test_parameters_file_round_trips(mode, tmp_path, capsys, hccs_document, poly_document):
    code, output = run_command(tmp_path, "--mode", mode, "--n", "64")
    assert code == 0
    assert capsys.readouterr().out.endswith(f"wrote {output}\n")
    assert [path.name for path in output.parent.iterdir()] == ["params.json"]
    document = json.loads(output.read_text())
    expected = hccs_document if mode == "hccs" else poly_document
    assert document == dict(expected, logits=str(SAMPLE_PATH))
    for record in document["heads"]:
        loaded = load_head_params(output, record["head"], mode)
        calibrated = config_of(document, record)
        assert loaded == {name: getattr(calibrated, name) for name in loaded}
        assert set(loaded) == ({"hccs_b", "hccs_s", "hccs_dmax"} if mode == "hccs"
                               else {"poly_b", "poly_delta", "poly_n"})


def test_write_params_replaces_a_file_atomically(tmp_path):
    path = tmp_path / "params.json"
    path.write_text("old")
    write_params({"mode": "hccs", "heads": []}, path)
    assert json.loads(path.read_text()) == {"mode": "hccs", "heads": []}
    assert [item.name for item in tmp_path.iterdir()] == ["params.json"]


def save_npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def rows(shape: tuple[int, ...], dtype: type = np.int8) -> np.ndarray:
    return np.arange(int(np.prod(shape))).reshape(shape).astype(dtype)


def test_logits_layouts(tmp_path):
    stacked = load_logits(save_npz(tmp_path / "stacked.npz", logits=rows((3, 5, 8))))
    assert list(stacked) == ["logits[0]", "logits[1]", "logits[2]"]
    np.testing.assert_array_equal(stacked["logits[2]"], rows((3, 5, 8))[2])
    named = load_logits(save_npz(tmp_path / "named.npz", b=rows((2, 8)), a=rows((4, 8))), n=8)
    assert list(named) == ["a", "b"]


@pytest.mark.parametrize(("make", "n", "problem"), [
    (lambda folder: folder / "missing.npz", None, "does not exist"),
    (lambda folder: folder, None, "does not exist"),
    (lambda folder: (folder / "x.npy", np.save(folder / "x.npy", rows((2, 8))))[0], None, "not an .npz archive"),
    (lambda folder: (folder / "t.npz", (folder / "t.npz").write_text("text"))[0], None, "cannot read"),
    (lambda folder: (folder / "z.npz", (folder / "z.npz").write_bytes(b"PK\x03\x04broken"))[0], None, "cannot read"),
    (lambda folder: save_npz(folder / "e.npz"), None, "holds no arrays"),
    (lambda folder: save_npz(folder / "f.npz", h=rows((2, 8), np.float32)), None, "dtype float32"),
    (lambda folder: save_npz(folder / "u.npz", h=rows((2, 8), np.uint8)), None, "dtype uint8"),
    (lambda folder: save_npz(folder / "d.npz", h=rows((8,))), None, "shape (8,)"),
    (lambda folder: save_npz(folder / "s.npz", a=rows((2, 2, 8)), b=rows((2, 8))), None, "shape (2, 2, 8)"),
    (lambda folder: save_npz(folder / "h.npz", a=rows((0, 2, 8))), None, "shape (0, 2, 8), no head"),
    (lambda folder: save_npz(folder / "o.npz", a=rows((0, 0, 0))), None, "shape (0, 0, 0), no head"),
    (lambda folder: save_npz(folder / "m.npz", a=rows((2, 8)), b=rows((2, 9))), None, "N=9 but 'a' has N=8"),
    (lambda folder: save_npz(folder / "n.npz", a=rows((2, 8))), 16, "N=8, not n=16"),
    (lambda folder: save_npz(folder / "r.npz", a=rows((0, 8))), None, "is empty"),
    (lambda folder: save_npz(folder / "c.npz", a=rows((2, 0))), None, "is empty"),
])
def test_bad_logits_files_name_the_problem(make, n, problem, tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_logits(make(tmp_path), n)
    message = str(raised.value)
    assert problem in message and "\n" not in message


@pytest.mark.parametrize(("scale", "problem"), [(0.0, "input_scale=0.0"), (-1.0, "input_scale=-1.0"),
                                                (float("nan"), "input_scale=nan"), (float("inf"), "input_scale=inf"),
                                                (1e-40, "beta·input_scale=.* is too small")])
def test_bad_input_scale(scale, problem, sample):
    with pytest.raises(ConfigError, match=problem):
        calibrate({"h": sample["head0"][:8]}, "hccs", scale)


@pytest.mark.parametrize(("mode", "settings", "problem"), [
    ("base2", {}, "mode='base2' cannot be calibrated"),
    ("hccs", {"hccs_sum": "int32"}, "hccs_sum='int32' is unknown"),
    ("hccs", {"output_bits": 12}, "output_bits=12 is not supported by mode hccs"),
    ("hccs", {"hccs_inv_shift": 0}, "hccs_inv_shift=0 is out of range"),
    ("hccs", {"poly_n": 2}, "poly_n is not a setting of mode hccs"),
    ("poly", {"poly_n": 4}, "poly_n=4 is out of range"),
    ("poly", {"output_bits": 8}, "output_bits is not a setting of mode poly"),
])
def test_bad_settings(mode, settings, problem, sample):
    with pytest.raises(ConfigError, match=problem):
        calibrate({"h": sample["head0"][:8]}, mode, SAMPLE_SCALE, settings)


def test_command_refuses_options_of_the_other_mode(tmp_path):
    with pytest.raises(ConfigError, match="--hccs-sum applies to --mode hccs only"):
        run_command(tmp_path, "--mode", "poly", "--hccs-sum", "int16")
    with pytest.raises(ConfigError, match="--poly-n applies to --mode poly only"):
        run_command(tmp_path, "--mode", "hccs", "--poly-n", "3")


def write_json(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(("document", "head", "mode", "problem"), [
    (None, 0, "hccs", "does not exist"),
    ("{not json", 0, "hccs", "is not JSON"),
    ([], 0, "hccs", "has no list 'heads'"),
    ({"mode": "poly", "heads": []}, 0, "hccs", "holds parameters of mode 'poly'; allowed: mode hccs"),
    ({"mode": "hccs", "heads": [{"head": 0, "b": 600, "s": 10, "dmax": 40}]}, 1, "hccs", "has no head 1; allowed: 0"),
    ({"mode": "hccs", "heads": [{"head": 0, "b": 600, "s": 10}]}, 0, "hccs", "head 0 lacks dmax"),
    ({"mode": "hccs", "heads": [{"head": 0, "b": 600, "s": 200, "dmax": 4}]}, 0, "hccs", "head 0: HCCS parameter s"),
    ({"mode": "hccs", "heads": [{"head": 0, "b": 6.5, "s": 2, "dmax": 4}]}, 0, "hccs", "HCCS parameter b"),
    ({"mode": "poly", "poly_n": 2, "heads": [{"head": 0, "b": -1.0, "delta": 0.1}]}, 0, "poly", "poly_b=-1.0"),
    ({"mode": "poly", "heads": [{"head": 0, "b": 1.0, "delta": 0.1}]}, 0, "poly", "poly_n=None is out of range"),
    ({"mode": "hccs", "heads": []}, 0, "base2", "mode='base2' has no calibrated parameters"),
])
def test_bad_parameters_files_name_the_problem(document, head, mode, problem, tmp_path):
    path = tmp_path / "params.json"
    if isinstance(document, str):
        path.write_text(document)
    elif document is not None:
        write_json(path, document)
    with pytest.raises(ConfigError) as raised:
        load_head_params(path, head, mode)
    message = str(raised.value)
    assert problem in message and "\n" not in message


def test_benchmark_runs():
    seconds = benchmark(heads=1, rows=20, n=8)
    assert set(seconds) == {"hccs", "poly"} and all(value > 0 for value in seconds.values())
