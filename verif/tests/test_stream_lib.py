"""The stream library on its own: layouts, pause patterns and a multi-stream scoreboard, then a two-input unit.

:class:`SaturatingAdd` (lane-wise saturating ``o = a + b``) is defined here, converted to Verilog and run through the
generic :class:`~int8attn.verif.testbench.StreamTB` with a model that maps input frames by stream name to output
frames by stream name. This module is also the cocotb test module of that simulation: its ``check``, ``cycle`` and
``recv`` tests.
"""

import itertools
import json
import random
from collections.abc import Iterator
from pathlib import Path

import cocotb
import numpy as np
import pytest
from amaranth import Module, Mux
from amaranth.back import verilog
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from cocotb.handle import HierarchyObject

from int8attn.hdl import emit
from int8attn.hdl.streams import LaneBeat
from int8attn.verif.runner import TBSettings, simulate
from int8attn.verif.stream import Beat, PayloadLayout, Scoreboard, StreamSpec, bursts, random_pauses, streams_of
from int8attn.verif.testbench import CYCLE_TEST_ROWS, StreamTB, check_test, cycle_test

LANES, FRAME = 2, 8
LOW, HIGH = -128, 127
SIM_TESTS = ("check", "cycle", "recv")


class SaturatingAdd(wiring.Component):
    """``o = clamp(a + b)`` lane by lane through one output register; ``last`` follows ``a``.

    Members
    -------
    a, b : In(stream.Signature(LaneBeat(lanes)))
    o : Out(stream.Signature(LaneBeat(lanes)))
    """

    latency = 1
    latency_from = "first"

    def __init__(self, lanes: int):
        self.lanes = lanes
        beat = stream.Signature(LaneBeat(lanes))
        super().__init__({"a": In(beat), "b": In(beat), "o": Out(beat)})

    @property
    def frame_beats(self) -> dict[str, int]:
        return dict.fromkeys("abo", FRAME // self.lanes)

    def port_descriptions(self) -> dict[str, str]:
        return {f"{name}__{port}": f"{name} {port}" for name in "abo" for port in ("valid", "ready", "payload")}

    def elaborate(self, platform) -> Module:
        m = Module()
        take = self.a.valid & self.b.valid & (~self.o.valid | self.o.ready)
        m.d.comb += [self.a.ready.eq(take), self.b.ready.eq(take)]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(take):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.last.eq(self.a.payload.last)]
            for lane in range(self.lanes):
                total = self.a.payload.data[lane] + self.b.payload.data[lane]
                m.d.sync += self.o.payload.data[lane].eq(Mux(total > HIGH, HIGH, Mux(total < LOW, LOW, total)))
        return m


def add_model(frames: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The golden model: frames by input stream name to frames by output stream name."""
    total = frames["a"].astype(np.int64) + frames["b"]
    return {"o": np.clip(total, LOW, HIGH).astype(np.int8)}


def add_frames(tb: StreamTB, count: int) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    for index in range(count):
        yield f"random {index}", {name: tb.rng.integers(LOW, HIGH + 1, FRAME).astype(np.int8) for name in "ab"}


def directed_add_frames(tb: StreamTB) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    yield "saturate high", {"a": np.full(FRAME, HIGH, np.int8), "b": np.full(FRAME, HIGH, np.int8)}
    yield "saturate low", {"a": np.full(FRAME, LOW, np.int8), "b": np.full(FRAME, LOW, np.int8)}


@cocotb.test()
async def check(dut: HierarchyObject) -> None:
    await check_test(dut, add_frames, directed_add_frames, model=add_model)


@cocotb.test()
async def cycle(dut: HierarchyObject) -> None:
    await cycle_test(dut, add_frames, model=add_model)


@cocotb.test()
async def recv(dut: HierarchyObject) -> None:
    """Frame-level ``recv`` under directed burst patterns on both sources and the sink."""
    tb = StreamTB(dut, TBSettings.from_env(), "recv", idle=0, backpressure=0, model=add_model)
    tb.sources["a"].set_pause_generator(bursts(3, 2))
    tb.sources["b"].set_pause_generator(bursts(1, 1, offset=1))
    tb.sink.set_pause_generator(bursts(2, 3))
    await tb.reset()
    frames = dict(add_frames(tb, 6))
    for label, frame in frames.items():
        tb.send(frame, label)
    for label, frame in frames.items():
        received = await tb.sink.recv()
        if received.tolist() != add_model({name: values[None] for name, values in frame.items()})["o"][0].tolist():
            tb.errors.append(f"{label}: recv() returned {received}")
    await tb.sources["a"].wait()
    await tb.drain(0.6)
    tb.finish()


def test_layout_from_stream_entry_is_checked() -> None:
    entry = {"direction": "input", "lanes": 4, "lane_bits": 32, "signed": True, "last_bit": 128, "width": 129,
             "beats_per_frame": 2}
    layout = PayloadLayout.from_stream(entry)
    assert (layout.width, layout.dtype) == (129, np.dtype(np.int32))
    words = layout.frame_beats(np.arange(-4, 4, dtype=np.int32))
    assert [layout.unpack(word)[1] for word in words] == [False, True]
    with pytest.raises(ValueError, match="last_bit=128"):
        PayloadLayout.from_stream(entry | {"last_bit": 127})
    with pytest.raises(ValueError, match="do not fit"):
        PayloadLayout(2, 8).fit(np.array([0, 128]))


def test_pause_patterns() -> None:
    assert list(itertools.islice(bursts(2, 3), 7)) == [False, False, True, True, True, False, False]
    assert list(itertools.islice(bursts(1, 1, offset=1), 3)) == [True, False, True]
    pauses = list(itertools.islice(random_pauses(0.25, random.Random(1)), 4000))
    assert 0.2 < sum(pauses) / len(pauses) < 0.3


def test_scoreboard_checks_each_output_stream_of_a_dict_model() -> None:
    layout = PayloadLayout(2)
    spec = {name: StreamSpec(name, direction, layout, 2)
            for name, direction in (("a", "input"), ("b", "input"), ("sum", "output"), ("diff", "output"))}
    inputs, outputs = {k: spec[k] for k in "ab"}, {k: spec[k] for k in ("sum", "diff")}
    board = Scoreboard(lambda f: {"sum": f["a"] + f["b"], "diff": f["a"] - f["b"]}, inputs, outputs)
    a, b = np.array([1, 2, 3, 4], np.int8), np.array([10, 20, 30, 40], np.int8)
    board.expect({"a": a, "b": b}, "one")
    with pytest.raises(ValueError, match="pass a mapping"):
        board.expect(a, "no names")
    for cycle, word in enumerate(layout.frame_beats(a + b)):
        board.receiver("sum")(Beat(word, cycle))
    assert board.errors == [] and board.frames_done == 0 and board.outstanding == 1
    wrong = layout.frame_beats(a - b)
    board.receiver("diff")(Beat(wrong[0] ^ 1, 7))
    board.receiver("diff")(Beat(wrong[1] & ~(1 << layout.last_bit), 8))
    assert board.frames_done == 1 and board.beats_checked == 4
    assert "diff stream, row 0 (one), beat 0/2, cycle 7, lane 0 (element 0): got -10, expected -9" in board.errors[0]
    assert board.errors[1].endswith("last=0, expected 1")


@pytest.fixture(scope="module")
def add_unit() -> tuple[str, dict]:
    """The Verilog of :class:`SaturatingAdd` and its sidecar, made as the emitter makes a unit's."""
    dut = SaturatingAdd(LANES)
    facts = {"unit": "add", "top": "add", "parameters": {"lanes": LANES}, "ports": emit.ports(dut),
             "streams": emit.streams(dut), "latency_cycles": dut.latency, "latency_from": dut.latency_from,
             "elements_per_cycle": LANES, "cycles_per_frame": dut.frame_beats["o"]}
    return verilog.convert(dut, name="add", emit_src=False), facts


def test_sidecar_streams_are_checked_against_ports(add_unit: tuple[str, dict]) -> None:
    sidecar = dict(add_unit[1])
    assert list(streams_of(sidecar)) == ["a", "b", "o"]
    sidecar["ports"] = [port | {"width": 3} if port["name"] == "o__payload" else port for port in sidecar["ports"]]
    with pytest.raises(ValueError, match="o__payload is 3 bits"):
        streams_of(sidecar)


def test_two_input_unit_on_the_generic_testbench(add_unit: tuple[str, dict], quick_simulator: str,
                                                 tmp_path: Path) -> None:
    text, facts = add_unit
    source = tmp_path / "add.v"
    source.write_text(text)
    sidecar = tmp_path / "add.json"
    sidecar.write_text(json.dumps(facts))
    result = simulate([source], sidecar, toplevel="add", test_module=__name__, tests=SIM_TESTS,
                      simulator=quick_simulator, build_dir=tmp_path, rows=32)
    assert result.passed, "\n".join(result.errors)
    assert result.reports["check"]["rows"] == 32 + 2
    assert result.reports["recv"]["rows"] == 6
    assert result.reports["cycle"]["rows"] == CYCLE_TEST_ROWS
    assert result.latency_cycles == [SaturatingAdd.latency]
    assert result.elements_per_cycle == LANES
