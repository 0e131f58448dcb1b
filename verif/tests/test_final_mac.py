"""The final MAC of modes tflite and lut against exact arithmetic of the golden model's final stage,
``clamp(RDBPOT(SRDHM(scale, e), shift) − 2^(B−1))`` with :mod:`int8attn.golden.fixedpoint`.

For every output width B of mode lut (4..16) the MAC is built with the arguments the softmax top derives from a
configuration. It gets, for every reachable shift, products at the rounding ties and at the saturation bound; table
exponentials with scales of 2^30..2^31 (what the reciprocal unit produces); random operands; and the extremes. Beats
come with random bubbles and random ``last`` flags, and ``o`` stalls at random: in Amaranth simulation (generic), and
as Verilog with the vendor cell models (Icarus) for ecp5, ice40 and xc7.
"""

import gc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mac_sim import SIMULATORS, run_amaranth, run_verilog, with_bubbles
from verilog_sim import simulator_or_skip

from int8attn.golden import SoftmaxConfig, SoftmaxModel
from int8attn.golden.fixedpoint import rounding_divide_by_pot, srdhm
from int8attn.hdl.final_mac import FinalMac
from int8attn.hdl.reciprocal import SCALE_BITS

LANES = 3
RANDOM = 150
BUBBLE = 0.2
STALL = 0.3
CONFIGS = [
    SoftmaxConfig(n=1, lanes=1, mode="lut", output_bits=4),
    SoftmaxConfig(n=16, lanes=2, mode="lut", rom_depth=64, rom_width=10, reciprocal="lut", reciprocal_bits=6,
                  output_bits=5),
    SoftmaxConfig(n=4096, mode="lut", rom_width=2, input_scale=0.5, output_bits=6),
    SoftmaxConfig(n=64, mode="lut", accumulator_width=20, output_bits=7),
    SoftmaxConfig(n=65536, mode="lut", output_bits=8),
    SoftmaxConfig(n=256, mode="lut", rom_width=20, reciprocal_steps=1, output_bits=9),
    SoftmaxConfig(n=1024, mode="lut", input_scale=0.25, output_bits=10),
    SoftmaxConfig(n=8, mode="lut", rom_width=16, rom_depth=16, output_bits=11),
    SoftmaxConfig(n=65536, mode="lut", rom_width=24, output_bits=12),
    SoftmaxConfig(n=2, lanes=2, mode="lut", input_scale=0.01, output_bits=13),
    SoftmaxConfig(n=4096, mode="lut", accumulator_width=24, output_bits=14),
    SoftmaxConfig(n=32, mode="lut", rom_width=8, reciprocal="lut", output_bits=15),
    SoftmaxConfig(n=64, mode="lut", output_bits=16),
]
VERILOG_CONFIGS = [SoftmaxConfig(), CONFIGS[1]]
"""tflite's default (31-bit exponentials) and the reduced lut configuration (10-bit exponentials)."""


def mac_arguments(config: SoftmaxConfig) -> tuple[int, int, int, int, int]:
    """``exp_width, exp_shift, sum_width, min_sum_bits, output_bits`` as the softmax top derives them: the exp ROM
    stores the table without the low zero bits all its entries share."""
    model = SoftmaxModel(config)
    table = [int(value) for value in model.exp_table[:model.rom_depth]]
    combined = int(np.bitwise_or.reduce(table))
    zero_bits = (combined & -combined).bit_length() - 1 if combined else 0
    width = max(max(table).bit_length(), 1)
    return (width - zero_bits, zero_bits, model.sum_bits, int(model.accumulator_table[0]).bit_length(),
            model.output_bits)


def row_operands(dut: FinalMac, table: np.ndarray, rng: np.random.Generator) -> list[tuple[int, int, list[int]]]:
    """``(scale, shift, stored exponentials)`` of each beat, for the cases of the module docstring; lanes past the
    first take random table entries unless the case fills them."""
    exp_width, bits, lanes = len(dut.exp[0]), dut.output_bits, dut.lanes
    shifts = np.array(dut.shifts)

    def fill(exps: list[int]) -> list[int]:
        return exps + rng.choice(table, lanes - len(exps)).tolist()

    beats = []
    # A power-of-two exponential 2^t (t ≤ 30) makes P = ⌊s·e / 2^30⌋ = ⌊s / 2^(30−t)⌋ any value below 2^(t+1).
    stored_power = min(exp_width - 1, 30 - dut.exp_shift)
    t = stored_power + dut.exp_shift
    for k in dut.shifts:
        for a in (0, 1, 1 << (bits - 1), (1 << bits) - 1, 1 << bits, int(rng.integers(1 << bits))):
            for p in (a << (k + 1)) + (1 << k) - 2, (a << (k + 1)) + (1 << k) - 1:
                for low in (0, (1 << (30 - t)) - 1):
                    scale = (p << (30 - t)) + low
                    if 0 <= p and scale < 1 << SCALE_BITS:
                        beats.append((scale, k, fill([1 << stored_power])))
    for _ in range(RANDOM):
        beats.append((int(rng.integers(1 << (SCALE_BITS - 1), 1 << SCALE_BITS)), int(rng.choice(shifts)), fill([])))
        beats.append((int(rng.integers(1 << SCALE_BITS)), int(rng.choice(shifts)),
                      rng.integers(0, 1 << exp_width, lanes).tolist()))
    extremes = [0, 1, (1 << exp_width) - 1]
    beats += [(scale, k, (extremes * lanes)[:lanes]) for scale in (0, 1, (1 << SCALE_BITS) - 1)
              for k in (dut.shifts[0], dut.shifts[-1])]
    return beats


def beats_of(rows: list[tuple[int, int, list[int]]], rng: np.random.Generator) -> list[dict]:
    """The port values of each row's beat, with random ``last`` flags, and bubbles."""
    return with_bubbles([{"valid": 1, "last": int(rng.integers(2)), "exp": exps,
                          "reciprocal": {"scale": scale, "shift": shift}} for scale, shift, exps in rows], BUBBLE, rng)


def check(dut: FinalMac, model: SoftmaxModel, beats: list[dict], outputs: list[tuple[int, Any]]) -> None:
    """The outputs are the golden final stage of the valid beats, in order, the first :attr:`latency` cycles after
    the first beat."""
    taken = [beat for beat in beats if beat["valid"]]
    scales, shifts = (np.repeat([beat["reciprocal"][name] for beat in taken], dut.lanes) for name in ("scale", "shift"))
    exps = np.array([beat["exp"] for beat in taken], dtype=np.int64).ravel()
    want = model.clamp(rounding_divide_by_pot(srdhm(scales, exps << dut.exp_shift), shifts))
    got = np.array([list(payload.data) for _, payload in outputs]).ravel()
    assert outputs[0][0] == dut.latency
    assert [payload.last for _, payload in outputs] == [beat["last"] for beat in taken]
    wrong = np.flatnonzero(got != want)
    if len(wrong):
        k = wrong[0]
        pytest.fail(f"{len(wrong)} of {got.size} outputs differ; first: scale {scales[k]}, exp {exps[k]} "
                    f"(<< {dut.exp_shift}), shift {shifts[k]}: rtl {got[k]}, golden {want[k]}")


def case_set(config: SoftmaxConfig, target: str, lanes: int, seed: int) -> tuple:
    """The golden model, the MAC and the beats of ``config``."""
    model = SoftmaxModel(config)
    dut = FinalMac(lanes, *mac_arguments(config), target=target)
    rng = np.random.default_rng(seed)
    table = model.exp_table[:model.rom_depth] >> dut.exp_shift
    return model, dut, beats_of(row_operands(dut, table, rng), rng), rng


@pytest.mark.parametrize("config", CONFIGS, ids=lambda config: f"B{config.output_bits}")
def test_final_mac_matches_the_golden_final_stage(config: SoftmaxConfig):
    model, dut, beats, rng = case_set(config, "generic", LANES, config.output_bits)
    check(dut, model, beats, run_amaranth(dut, beats, STALL, rng))


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("target", ["ecp5", "ice40", "xc7"])
@pytest.mark.parametrize("config", VERILOG_CONFIGS, ids=lambda config: config.mode)
def test_final_mac_verilog_with_vendor_models(config: SoftmaxConfig, target: str, simulator: str, tmp_path: Path):
    """Two lanes: 8 DSP blocks on every target."""
    model, dut, beats, rng = case_set(config, target, 2, 7)
    check(dut, model, beats, run_verilog(dut, beats, STALL, rng, target, simulator_or_skip(simulator), tmp_path))


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize(("arguments", "message"), [
    ((4, 31, 0, 26, 20, 8, "xc6"), "target must be one of generic, ice40, ecp5, xc7"),
    ((0, 31, 0, 26, 20, 8), "lanes must be at least 1"),
    ((4, 31, -1, 26, 20, 8), "exp_shift must be at least 0"),
    ((4, 31, 0, 26, 27, 8), "min_sum_bits must be in 1..26"),
    ((4, 31, 0, 26, 5, 16), "min_sum_bits must be at least 6 for 16-bit outputs"),
])
def test_bad_arguments(arguments: tuple, message: str):
    with pytest.raises(ValueError, match=message):
        FinalMac(*arguments)
    gc.collect()
