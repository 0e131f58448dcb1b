"""TinyMind's division by the row sum, done by the divide MAC as a multiply and a correction, against the model.

Every LUT entry of the configuration is divided by boundary sums (the smallest and largest reachable, every power of
two in between with its neighbours) and by random sums, with the reciprocal the reciprocal unit gives each sum,
through the RTL in Amaranth simulation (generic) with random input bubbles and output stalls. The Verilog of the
ecp5, ice40 and xc7 MACs runs the same way on Icarus with the vendor cell models, for fewer sums.
"""

import gc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mac_sim import SIMULATORS, run_amaranth, run_verilog, with_bubbles
from verilog_sim import simulator_or_skip

from int8attn.golden import SoftmaxConfig, SoftmaxModel
from int8attn.hdl.divide_mac import DivideMac

LANES = 8
BUBBLE = 0.1
STALL = 0.2


def boundary_sums(smallest: int, largest: int, random_count: int, seed: int) -> list[int]:
    sums = {smallest, largest}
    for k in range(smallest.bit_length() - 1, largest.bit_length() + 1):
        sums.update({(1 << k) - 1, 1 << k, (1 << k) + 1})
    rng = np.random.default_rng(seed)
    sums.update(int(v) for v in rng.integers(smallest, largest + 1, random_count))
    return sorted(s for s in sums if smallest <= s <= largest)


def case_set(n: int, input_scale: float, lanes: int, random_sums: int, target: str) -> tuple:
    """The model, the MAC, the sums, the LUT entries (padded to whole beats) and the beats: every entry with every
    sum, ``last`` on each sum's final beat, with bubbles."""
    model = SoftmaxModel(SoftmaxConfig(n=n, lanes=1, input_scale=input_scale, mode="tinymind"))
    reciprocal_model = SoftmaxModel(SoftmaxConfig(n=n, lanes=1))
    exps = np.unique(model.exp_table)
    exps = np.concatenate([exps, np.zeros(-len(exps) % lanes, dtype=np.int64)])
    sums = np.array(boundary_sums(int(model.exp_table[0]), n * int(model.exp_table[0]), random_sums, n),
                    dtype=np.int64)
    reciprocal = reciprocal_model.reciprocal(sums)
    dut = DivideMac(lanes, 31, 0, model.sum_bits, int(model.exp_table[0]).bit_length(), target=target)
    beats = [{"valid": 1, "last": int(k + lanes == len(exps)), "exp": exps[k:k + lanes].tolist(),
              "reciprocal": {"scale": int(scale), "shift": int(shift), "sum": int(total)}}
             for total, scale, shift in zip(sums, reciprocal.scale, reciprocal.shift, strict=True)
             for k in range(0, len(exps), lanes)]
    return model, dut, sums, exps, with_bubbles(beats, BUBBLE, np.random.default_rng(n))


def check(model: SoftmaxModel, dut: DivideMac, sums: np.ndarray, exps: np.ndarray, beats: list[dict],
          outputs: list[tuple[int, Any]]) -> None:
    """Every quotient is the model's, ``last`` follows its beat, the first comes :attr:`latency` cycles after the
    first beat."""
    assert outputs[0][0] == dut.latency
    assert [payload.last for _, payload in outputs] == [beat["last"] for beat in beats if beat["valid"]]
    got = np.array([list(payload.data) for _, payload in outputs]).reshape(len(sums), -1)
    expected = model.divide(exps[None, :], sums[:, None])
    wrong = np.argwhere(got != expected)
    if len(wrong):
        first = tuple(wrong[0])
        pytest.fail(f"{len(wrong)} of {got.size} quotients differ; first: sum {sums[first[0]]}, lut entry "
                    f"{exps[first[1]]}: rtl {got[first]}, model {expected[first]}")


@pytest.mark.parametrize(("n", "input_scale"), [(1, 0.05), (10, 1 / 16), (64, 0.01), (1024, 0.25), (65536, 0.05)])
def test_divide_mac_is_exact_at_boundary_sums(n: int, input_scale: float):
    model, dut, sums, exps, beats = case_set(n, input_scale, LANES, 150, "generic")
    check(model, dut, sums, exps, beats, run_amaranth(dut, beats, STALL, np.random.default_rng(n)))


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("target", ["ecp5", "ice40", "xc7"])
@pytest.mark.parametrize(("n", "input_scale"), [(10, 1 / 16), (64, 0.01), (65536, 0.05)])
def test_divide_mac_verilog_with_vendor_models(n: int, input_scale: float, target: str, simulator: str,
                                               tmp_path: Path):
    """Two lanes: 8 to 10 DSP blocks; sums of 35 bits (one product for the correction), 37 and 47 bits (two)."""
    model, dut, sums, exps, beats = case_set(n, input_scale, 2, 4, target)
    rng = np.random.default_rng(n)
    got = run_verilog(dut, beats, STALL, rng, target, simulator_or_skip(simulator), tmp_path)
    check(model, dut, sums, exps, beats, got)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize(("arguments", "message"), [
    ((4, 31, 0, 37, 31, "xc6"), "target must be one of generic, ice40, ecp5, xc7"),
    ((0, 31, 0, 37, 31), "lanes must be at least 1"),
    ((4, 31, -1, 37, 31), "exp_shift must be at least 0"),
    ((4, 31, 0, 37, 11), "min_sum_bits must be in 12..37"),
    ((4, 31, 0, 73, 31), "sum_width must be at most 72"),
])
def test_bad_arguments(arguments: tuple, message: str):
    with pytest.raises(ValueError, match=message):
        DivideMac(*arguments)
    gc.collect()
