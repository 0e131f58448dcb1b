"""cocotb testbench of the emitted attention unit: every output bit against the golden model.

Run through :func:`int8attn.verif.runner.run`. The tests are ``check`` (random and directed sequences under random
idle input cycles and output backpressure) and ``cycle`` (back-to-back sequences, no stalls: the first sequence's
latency exactly the sidecar's, the run within ``cycles_per_frame`` a sequence).
"""

from collections.abc import Iterator

import cocotb
import numpy as np
from cocotb.handle import HierarchyObject
from cocotb.triggers import RisingEdge

from int8attn.golden.stimuli import directed_int8_rows, mixed_int8_rows
from int8attn.verif.runner import TBSettings
from int8attn.verif.testbench import StreamTB, check_test

CYCLE_TEST_SEQUENCES = 100


def random_sequences(tb: StreamTB, count: int) -> Iterator[tuple[str, np.ndarray]]:
    return mixed_int8_rows(count, tb.inputs["i"].elements, tb.rng)


def directed_sequences(tb: StreamTB) -> Iterator[tuple[str, np.ndarray]]:
    return directed_int8_rows(tb.inputs["i"].elements, tb.rng)


@cocotb.test()
async def check(dut: HierarchyObject) -> None:
    """Random and directed sequences, random idle input cycles and output backpressure; every bit checked."""
    await check_test(dut, random_sequences, directed_sequences)


@cocotb.test()
async def cycle(dut: HierarchyObject) -> None:
    """No stalls, back-to-back sequences (the larger of ``INT8ATTN_ROWS`` and 100): the first sequence's first output
    beat exactly ``latency_cycles`` after its last input beat, and the run within ``cycles_per_frame`` a sequence (one
    more for the first sequence's input and the last one's output, each spread over a sequence's cycles, and the
    latency)."""
    settings = TBSettings.from_env()
    tb = StreamTB(dut, settings, "cycle", idle=0, backpressure=0)
    await tb.reset()
    count = max(CYCLE_TEST_SEQUENCES, settings.rows)
    for label, frame in random_sequences(tb, count):
        tb.send(frame, label)
    await tb.drain(0)
    tb.error_is_low()
    inputs, outputs = tb.monitors["i"].beats, tb.monitors["o"].beats
    measured = {}
    if inputs and outputs:
        last_input = inputs[tb.inputs["i"].beats_per_frame - 1].cycle
        latency = outputs[0].cycle - last_input
        if latency != tb.latency:
            tb.errors.append(f"sequence 0: first output beat {latency} cycles after its last input beat, expected "
                             f"{tb.latency}")
        span = outputs[-1].cycle - inputs[0].cycle + 1
        bound = (count + 1) * tb.sidecar["cycles_per_frame"] + tb.latency
        if span > bound:
            tb.errors.append(f"{count} sequences took {span} cycles from first input to last output, more than "
                             f"{bound} at {tb.sidecar['cycles_per_frame']} cycles a sequence")
        measured = {"elements_per_cycle": tb.sustained_rate(), "latency_cycles": [latency], "span_cycles": span,
                    "elements": count * tb.first_input.elements}
    await RisingEdge(tb.clk)
    tb.finish(**measured)
