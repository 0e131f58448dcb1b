"""TinyMind's division by the row sum, done by the divide MAC as a multiply and a correction, against the model.

Every LUT entry of the configuration is divided by boundary sums (the smallest and largest reachable, every power of
two in between with its neighbours) and by random sums, through the RTL (Amaranth simulation).
"""

import numpy as np
import pytest

from int8attn.golden import SoftmaxConfig, SoftmaxModel
from int8attn.hdl.divide_mac import DivideMac
from int8attn.verif.sim import simulate, stream_get

LANES = 8


def boundary_sums(smallest: int, largest: int, random_count: int, seed: int) -> list[int]:
    sums = {smallest, largest}
    for k in range(smallest.bit_length() - 1, largest.bit_length() + 1):
        sums.update({(1 << k) - 1, 1 << k, (1 << k) + 1})
    rng = np.random.default_rng(seed)
    sums.update(int(v) for v in rng.integers(smallest, largest + 1, random_count))
    return sorted(s for s in sums if smallest <= s <= largest)


def run(dut: DivideMac, beats: list[tuple[list[int], int, int, int]]) -> list[list[int]]:
    """Drive ``(exps, scale, shift, sum)`` beats back to back; collect the output lanes."""
    results: list[list[int]] = []

    async def source(ctx):
        ctx.set(dut.valid, 1)
        for exps, scale, shift, total in beats:
            ctx.set(dut.exp, exps)
            ctx.set(dut.reciprocal, {"scale": scale, "shift": shift, "sum": total})
            await ctx.tick().until(dut.en)
        ctx.set(dut.valid, 0)

    async def sink(ctx):
        for _ in beats:
            results.append(list((await stream_get(ctx, dut.o)).data))

    simulate(dut, source, sink)
    return results


@pytest.mark.parametrize(("n", "input_scale"), [(1, 0.05), (10, 1 / 16), (64, 0.01), (1024, 0.25), (65536, 0.05)])
def test_divide_mac_is_exact_at_boundary_sums(n: int, input_scale: float):
    model = SoftmaxModel(SoftmaxConfig(n=n, lanes=1, input_scale=input_scale, mode="tinymind"))
    reciprocal_model = SoftmaxModel(SoftmaxConfig(n=n, lanes=1))
    exps = np.unique(model.exp_table)
    exps = np.concatenate([exps, np.zeros(-len(exps) % LANES, dtype=np.int64)])
    sums = np.array(boundary_sums(int(model.exp_table[0]), n * int(model.exp_table[0]), 150, n), dtype=np.int64)
    reciprocal = reciprocal_model.reciprocal(sums)
    beats = [(exps[k:k + LANES].tolist(), int(scale), int(shift), int(total))
             for total, scale, shift in zip(sums, reciprocal.scale, reciprocal.shift, strict=True)
             for k in range(0, len(exps), LANES)]
    dut = DivideMac(LANES, 31, 0, model.sum_bits, int(model.exp_table[0]).bit_length())
    got = np.array(run(dut, beats)).reshape(len(sums), -1)
    expected = model.divide(exps[None, :], sums[:, None])
    wrong = np.argwhere(got != expected)
    if len(wrong):
        first = tuple(wrong[0])
        pytest.fail(f"{len(wrong)} of {got.size} quotients differ; first: sum {sums[first[0]]}, lut entry "
                    f"{exps[first[1]]}: rtl {got[first]}, model {expected[first]}")
