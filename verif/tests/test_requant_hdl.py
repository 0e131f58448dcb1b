"""The requantizer component against :class:`~int8attn.golden.requant.RequantModel` (Amaranth simulation).

Per-tensor and per-channel tables, both conventions, 1, 4 and 16 lanes, int8 and int16 outputs; random stalls on
both streams (the output's valid/ready contract is checked on every cycle), the measured latency and full rate
without stalls, and the beat counter's restart after an early ``last``.
"""

import numpy as np
import pytest
from amaranth.back import verilog

from int8attn.golden.requant import RequantConfig, RequantModel
from int8attn.golden.stimuli import INT32_MAX, INT32_MIN, directed_int32_rows, int32_rows
from int8attn.hdl.emit import ports
from int8attn.hdl.fixedpoint import SaturatingRoundingDoublingHighMul
from int8attn.hdl.requant import TABLE_FILE, Requantizer
from int8attn.verif.sim import simulate, stream_get, stream_monitor, stream_put

RNG = np.random.default_rng(2024)
PER_CHANNEL_SHIFTS = (-31, -12, -7, -1, 0, 1, 3, 30)

CONFIGS = {
    "per_tensor_tflite_p1": RequantConfig(channels=8, lanes=1, output_zero_point=-3),
    "per_tensor_tflite_p4_relu_int16": RequantConfig(channels=16, lanes=4, output_bits=16, activation="relu",
                                                     output_zero_point=100, output_scale=0.001),
    "per_tensor_tinymind_p16": RequantConfig(channels=32, lanes=16, multipliers=(1 << 30,), shifts=(5,),
                                             convention="tinymind", output_zero_point=7),
    "per_channel_tflite_p4": RequantConfig(
        channels=32, lanes=4, output_zero_point=-128,
        multipliers=tuple(int(v) for v in np.concatenate([[0, 1, 1 << 30, (1 << 31) - 1] * 2,
                                                          RNG.integers(1 << 30, 1 << 31, 24)])),
        shifts=tuple(int(v) for v in RNG.choice(PER_CHANNEL_SHIFTS, 32))),
    "per_channel_tflite_p1": RequantConfig(channels=8, lanes=1, weight_scales=tuple(np.geomspace(1e-4, 3.0, 8)),
                                           output_scale=0.02),
    "per_channel_tinymind_p16_relu6_int16": RequantConfig(
        channels=64, lanes=16, convention="tinymind", weight_scales=tuple(np.geomspace(1e-5, 0.5, 64)),
        output_scale=0.0005, output_bits=16, activation="relu6", output_zero_point=-300),
    "per_channel_single_beat": RequantConfig(channels=4, lanes=4, multipliers=(1 << 30, 1 << 29, 1234567890, 7),
                                             shifts=(-1, 2, -20, 0)),
}

SRDHM_LATENCY = SaturatingRoundingDoublingHighMul().latency
LATENCIES = {  # table + left_shift + srdhm + rounding_divide + output
    "per_tensor_tflite_p1": 0 + 0 + SRDHM_LATENCY + 1 + 1,
    "per_tensor_tflite_p4_relu_int16": 0 + 0 + SRDHM_LATENCY + 0 + 1,
    "per_tensor_tinymind_p16": 0 + 0 + SRDHM_LATENCY + 1 + 1,
    "per_channel_tflite_p4": 1 + 1 + SRDHM_LATENCY + 1 + 1,
    "per_channel_tflite_p1": 1 + 1 + SRDHM_LATENCY + 1 + 1,
    "per_channel_tinymind_p16_relu6_int16": 1 + 1 + SRDHM_LATENCY + 1 + 1,
    "per_channel_single_beat": 0 + 0 + SRDHM_LATENCY + 1 + 1,
}


def in_range_rows(model: RequantModel, rows: int, rng: np.random.Generator) -> np.ndarray:
    """Accumulators that land around the clamp range, so that the rounding, not the clamp, decides the output."""
    real = model.multipliers * np.exp2(model.shifts.astype(np.float64) - 31)
    targets = rng.uniform(model.act_min - 4, model.act_max + 4, (rows, len(real))) - model.output_zero_point
    acc = np.where(real > 0, targets / np.where(real > 0, real, 1), targets)
    return np.clip(np.rint(acc), INT32_MIN, INT32_MAX).astype(np.int32)


def stimulus(model: RequantModel, beats: int, rng: np.random.Generator) -> np.ndarray:
    """About ``beats`` beats of rows: directed extremes, every int32 kind, and rows in the output range."""
    channels = model.config.channels
    rows = max(6, beats * model.config.lanes // channels)
    directed = [row for _, row in directed_int32_rows(channels, rng)][:rows // 3]
    parts = [np.array(directed, dtype=np.int32).reshape(-1, channels)]
    parts += [int32_rows(kind, channels, max(1, rows // 6), rng) for kind in ("uniform", "dense", "small")]
    parts.append(in_range_rows(model, rows - sum(len(p) for p in parts), rng))
    return np.concatenate(parts)


def run(dut: Requantizer, beats: list[tuple[np.ndarray, bool]], *, seed: int = 0, input_idle: float = 0.0,
        output_idle: float = 0.0) -> tuple[np.ndarray, list, list]:
    """Send ``(lanes, last)`` beats with random idle cycles on either side.

    Returns the output lanes (beats × lanes), and the ``(cycle, payload)`` transfers on ``i`` and ``o``.
    """
    rng = np.random.default_rng(seed)
    inputs: list = []
    outputs: list = []

    async def idle(ctx, probability: float) -> None:
        if probability and rng.random() < probability:
            await ctx.tick().repeat(int(rng.integers(1, 4)))

    async def source(ctx):
        for lanes, last in beats:
            await idle(ctx, input_idle)
            await stream_put(ctx, dut.i, {"data": lanes.tolist(), "last": last})

    async def sink(ctx):
        for _ in beats:
            await idle(ctx, output_idle)
            await stream_get(ctx, dut.o)

    async def watch_i(ctx):
        await stream_monitor(ctx, dut.i, inputs)

    async def watch_o(ctx):
        await stream_monitor(ctx, dut.o, outputs)

    simulate(dut, source, sink, background=(watch_i, watch_o), deadline=1e-8 * (8 * len(beats) + 100))
    assert len(outputs) == len(beats)
    for (_, sent), (_, got) in zip(inputs, outputs, strict=True):
        assert got.last == sent.last, "last is not aligned with its beat"
    return np.array([list(payload.data) for _, payload in outputs], dtype=np.int64), inputs, outputs


def row_beats(rows: np.ndarray, lanes: int) -> list[tuple[np.ndarray, bool]]:
    beats = rows.shape[1] // lanes
    return [(row[b * lanes:(b + 1) * lanes], b == beats - 1) for row in rows for b in range(beats)]


def assert_matches_model(dut: Requantizer, rows: np.ndarray, got: np.ndarray) -> None:
    expected = dut.model(rows)
    got = got.reshape(rows.shape)
    wrong = np.argwhere(got != expected)
    if len(wrong):
        row, channel = wrong[0]
        pytest.fail(f"{len(wrong)} of {got.size} outputs differ; first: row {row} channel {channel}, accumulator "
                    f"{rows[row, channel]}, multiplier {dut.model.multipliers[channel]}, shift "
                    f"{dut.model.shifts[channel]}: rtl {got[row, channel]}, model {expected[row, channel]}")


@pytest.mark.parametrize("name", CONFIGS)
def test_matches_model_with_random_stalls(name: str):
    config = CONFIGS[name]
    dut = Requantizer(config)
    rows = stimulus(dut.model, 400, np.random.default_rng(len(name)))
    got, _, _ = run(dut, row_beats(rows, config.lanes), seed=len(name), input_idle=0.3, output_idle=0.3)
    assert_matches_model(dut, rows, got)


@pytest.mark.parametrize("name", CONFIGS)
def test_latency_and_full_rate_without_stalls(name: str):
    config = CONFIGS[name]
    dut = Requantizer(config)
    assert dut.latency == sum(dut.stages.values()) == LATENCIES[name]
    rows = in_range_rows(dut.model, max(2, 24 // config.beats), np.random.default_rng(1))
    got, inputs, outputs = run(dut, row_beats(rows, config.lanes))
    assert_matches_model(dut, rows, got)
    in_cycles = [cycle for cycle, _ in inputs]
    out_cycles = [cycle for cycle, _ in outputs]
    assert in_cycles == list(range(in_cycles[0], in_cycles[0] + len(in_cycles))), "input not accepted every cycle"
    assert out_cycles == [cycle + dut.latency for cycle in in_cycles]


def test_beat_counter_restarts_after_an_early_last():
    config = CONFIGS["per_channel_tflite_p4"]
    dut = Requantizer(config)
    rows = stimulus(dut.model, 24, np.random.default_rng(3))[:3]
    short = [(rows[0][:4], False), (rows[0][4:8], True)]
    got, _, _ = run(dut, short + row_beats(rows[1:], config.lanes), input_idle=0.2, output_idle=0.2)
    assert (got[:2].ravel() == dut.model(rows[:1])[0, :8]).all()
    assert_matches_model(dut, rows[1:], got[2:])


def test_output_holds_while_the_sink_stalls():
    config = CONFIGS["per_channel_tflite_p4"]
    dut = Requantizer(config)
    rows = stimulus(dut.model, 40, np.random.default_rng(4))
    got, _, _ = run(dut, row_beats(rows, config.lanes), seed=4, output_idle=0.8)
    assert_matches_model(dut, rows, got)


def test_contract_metadata():
    per_channel = Requantizer(CONFIGS["per_channel_tflite_p4"])
    per_tensor = Requantizer(RequantConfig(channels=2, lanes=1, multipliers=(1 << 30,), shifts=(5,),
                                           convention="tinymind"))
    assert per_tensor.artefacts() == {}
    lines = per_channel.artefacts()[TABLE_FILE].splitlines()
    assert len(lines) == 32
    for line, multiplier, shift in zip(lines, per_channel.model.multipliers, per_channel.model.shifts, strict=True):
        word_m, word_s = (int(word, 16) for word in line.split())
        assert (word_m, word_s - (word_s >> 31 << 32)) == (multiplier, shift)
    assert per_channel.frame_beats == {"i": 8, "o": 8}
    assert per_channel.describe()["structure"] == {
        "table": "rom", "table_depth": 8, "table_width": 4 * (31 + 5 + 5),
        "pipeline_stages": {"table": 1, "left_shift": 1, "srdhm": SRDHM_LATENCY, "rounding_divide": 1, "zero_point": 0,
                            "saturate": 0, "output": 1},
        "dsp_blocks": 0}
    quantisation = per_tensor.describe()["quantisation"]
    assert (quantisation["channel_multipliers"], quantisation["channel_shifts"]) == ([1 << 30], [-5])
    assert per_tensor.describe()["structure"]["table"] == "constant"
    names = [port["name"] for port in ports(per_channel)]
    assert names == ["clk", "rst", "i__payload", "i__valid", "i__ready", "o__payload", "o__valid", "o__ready"]
    for dut in (per_channel, per_tensor):
        assert "module top" in verilog.convert(dut, emit_src=False)
