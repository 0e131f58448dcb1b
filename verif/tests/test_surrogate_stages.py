"""The surrogate modes' numerator and output stages (:mod:`int8attn.hdl.surrogate_stages`) against the golden models
of :mod:`int8attn.golden.surrogates` and exact Python arithmetic.

* :class:`ClippedLinearScore` and :class:`Base2Terms` read every distance 0..255 on every lane of both ports (a random
  permutation per lane and port, so the ports' addresses differ), with random cycles of ``en`` low on each port
  holding random addresses; each output must be the value of the address taken exactly :attr:`latency` enabled
  edges before. The tables are :class:`HccsModel`'s ``score_table``, :class:`PolyModel`'s for degree 1 (the clipped
  line ``b_q + δ_q − min(d, b_q)``), :class:`Base2Model`'s ``shift_table`` for every grid shift, and ``b − s·min(d,
  dmax)`` for the corners no valid configuration reaches.
* :class:`ScaleMac` and :class:`ShiftOut` get random rows of configurations of modes hccs (8- and 16-bit), poly and
  base2, scored and normalised as the golden models do, and must give the models' codes; then random and extreme
  operands, for :class:`ScaleMac` at the saturation bound, against ``min((score·inv) >> inv_shift, max)`` and ``(inv
  >> shift) mod 256``. Beats come with random bubbles and random ``last`` flags, and ``o`` stalls at random.

Everything runs in Amaranth simulation (target generic), and as Verilog on Icarus with the vendor cell models: the
output stages on ecp5, ice40 and xc7 (:class:`ScaleMac`'s DSP blocks), the score stages on ecp5.
"""

import gc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.sim import SimulatorContext
from mac_sim import run_amaranth, run_verilog, with_bubbles
from verilog_sim import build_and_run, clocked_testbench, simulator_or_skip

from int8attn.golden import SoftmaxConfig
from int8attn.golden.base2 import GRID_SHIFT_RANGE, NUMERATOR, ONE
from int8attn.golden.config import DIFF_RANGE
from int8attn.golden.hccs import INV_MAX, Q15_NUMERATOR, U8_NUMERATOR
from int8attn.golden.surrogates import Base2Model, HccsModel, PolyModel, SurrogateModel
from int8attn.hdl.surrogate_stages import Base2Terms, ClippedLinearScore, ScaleMac, ShiftOut
from int8attn.verif.sim import simulate
from int8attn.verif.vendor import simulation_library

LANES = 4
PORTS = ("sum", "out")
GAP = 0.25
BUBBLE = 0.2
STALL = 0.3
RANDOM = 120
ROWS = 12
INV_WIDTH = INV_MAX.bit_length()
VENDOR_TARGETS = ("ecp5", "ice40", "xc7")


# The score stages.

def port_plan(dut: Any, rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per port, ``(en, addr)`` of each cycle: every distance once per lane at an enabled edge, with random cycles of
    ``en`` low (random addresses) between them, then :attr:`latency` enabled edges to flush; the ports padded to the
    same length with ``en`` low."""
    plans = {}
    for name in PORTS:
        taken = np.stack([rng.permutation(DIFF_RANGE) for _ in range(dut.lanes)], axis=1)
        taken = np.concatenate([taken, rng.integers(DIFF_RANGE, size=(dut.latency, dut.lanes))])
        enables, addresses = [], []
        for row in taken:
            while rng.random() < GAP:
                enables.append(False)
                addresses.append(rng.integers(DIFF_RANGE, size=dut.lanes))
            enables.append(True)
            addresses.append(row)
        plans[name] = np.array(enables), np.array(addresses)
    cycles = max(len(en) for en, _ in plans.values())
    return {name: (np.concatenate([en, np.zeros(cycles - len(en), dtype=bool)]),
                   np.concatenate([addr, rng.integers(DIFF_RANGE, size=(cycles - len(en), dut.lanes))]))
            for name, (en, addr) in plans.items()}


def run_ports_amaranth(dut: Any, plan: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per port, ``data`` after each cycle's clock edge, in Amaranth simulation."""
    data = {name: [] for name in PORTS}

    async def bench(ctx: SimulatorContext):
        for cycle in range(len(plan["sum"][0])):
            for name in PORTS:
                en, addr = plan[name]
                ctx.set(getattr(dut, name).en, bool(en[cycle]))
                ctx.set(getattr(dut, name).addr, addr[cycle].tolist())
            await ctx.tick()
            for name in PORTS:
                data[name].append(list(ctx.get(getattr(dut, name).data)))

    simulate(dut, bench)
    return {name: np.array(values) for name, values in data.items()}


def run_ports_verilog(dut: Any, plan: dict[str, tuple[np.ndarray, np.ndarray]], target: str,
                      folder: Path) -> dict[str, np.ndarray]:
    """Per port, ``data`` after each cycle's clock edge, simulating the Verilog of ``dut`` on Icarus with the cell
    models of ``target``."""
    cycles = len(plan["sum"][0])
    address_bits = 8 * dut.lanes
    widths = {name: len(getattr(dut, name).data.as_value()) for name in PORTS}
    declarations = [f"    reg rst = 0;\n    integer out;\n    reg [{2 * address_bits + 1}:0] words [0:{cycles}];\n"
                    f"    reg [{2 * address_bits + 1}:0] word;\n"]
    declarations += [f"    wire [{widths[name] - 1}:0] {name}_data;\n" for name in PORTS]
    fields = []
    for k, name in enumerate(PORTS):
        low = k * (address_bits + 1)
        fields.append(f".{name}__en(word[{low}]), .{name}__addr(word[{low + address_bits}:{low + 1}]), "
                      f".{name}__data({name}_data)")
    declarations.append(f"    unit dut (.clk(clk), .rst(rst), {', '.join(fields)});\n")
    words = []
    for cycle in range(cycles):
        word = 0
        for k, name in enumerate(PORTS):
            en, addr = plan[name]
            packed = sum(int(value) << (8 * lane) for lane, value in enumerate(addr[cycle]))
            word |= (int(en[cycle]) | packed << 1) << (k * (address_bits + 1))
        words.append(word)
    words.append(0)
    (folder / "words.hex").write_text("".join(f"{word:x}\n" for word in words))
    (folder / "unit.v").write_text(verilog.convert(dut, name="unit", emit_src=False))
    testbench = clocked_testbench(cycles + 1, declarations,
                                  ['        $readmemh("words.hex", words);\n        out = $fopen("o.hex", "w");\n'],
                                  ["            word = words[cycle];\n"],
                                  ['            $fwrite(out, "%h %h\\n", sum_data, out_data);\n'])
    (folder / "tb.v").write_text(testbench)
    library = simulation_library(target)
    build_and_run("icarus", [folder / "tb.v", folder / "unit.v", *library.models], "tb", folder, library.defines,
                  library.includes)
    lines = (folder / "o.hex").read_text().splitlines()[1:]
    assert len(lines) == cycles
    data = {}
    for k, name in enumerate(PORTS):
        width = widths[name] // dut.lanes
        words = [int(line.split()[k], 16) for line in lines]
        data[name] = np.array([[word >> (width * lane) & ((1 << width) - 1) for lane in range(dut.lanes)]
                               for word in words])
    return data


def check_ports(dut: Any, plan: dict[str, tuple[np.ndarray, np.ndarray]], data: dict[str, np.ndarray],
                tables: dict[str, np.ndarray]) -> None:
    """After each edge, ``data`` is the table entry of the address taken :attr:`latency` enabled edges before, and
    every distance was read on every lane of both ports."""
    for name in PORTS:
        en, addr = plan[name]
        taken = addr[en]
        assert all(set(taken[:, lane]) == set(range(DIFF_RANGE)) for lane in range(dut.lanes))
        edges = np.cumsum(en)
        filled = edges >= dut.latency
        want = tables[name][taken[edges[filled] - dut.latency]]
        got = data[name][filled]
        wrong = np.argwhere(got != want)
        if len(wrong):
            cycle, lane = wrong[0]
            source = taken[edges[filled][cycle] - dut.latency, lane]
            pytest.fail(f"{len(wrong)} wrong {name} reads; first: lane {lane}, d = {source}: rtl {got[cycle, lane]}, "
                        f"expected {want[cycle, lane]}")


def clipped_line(b: int, s: int, dmax: int) -> np.ndarray:
    return b - s * np.minimum(np.arange(DIFF_RANGE), dmax)


HCCS_CONFIGS = [
    SoftmaxConfig(mode="hccs"),
    SoftmaxConfig(mode="hccs", hccs_b=32767, hccs_s=127, hccs_dmax=127),
    SoftmaxConfig(mode="hccs", n=256, hccs_b=255, hccs_s=2, hccs_dmax=127),
    SoftmaxConfig(mode="hccs", hccs_b=777, hccs_s=0, hccs_dmax=5),
    SoftmaxConfig(mode="hccs", hccs_b=4096, hccs_s=64, hccs_dmax=50, output_bits=16),
    SoftmaxConfig(mode="hccs", hccs_b=500, hccs_s=100, hccs_dmax=0),
]
CORNERS = [(0, 0, 0), (1, 1, 1), (127 * 127, 127, 127), (32767, 0, 127), (16383, 127, 64)]
"""``(b, s, dmax)`` outside valid configurations: zero scores, one-bit scores, a zero floor."""


def score_cases() -> list:
    cases = [pytest.param((config.hccs_b, config.hccs_s, config.hccs_dmax), HccsModel(config).score_table,
                          id=f"hccs-{config.hccs_b}-{config.hccs_s}-{config.hccs_dmax}") for config in HCCS_CONFIGS]
    poly = PolyModel(SoftmaxConfig(mode="poly", poly_n=1, poly_delta=0.1))
    cases.append(pytest.param((poly.offset + poly.floor, 1, poly.offset), poly.score_table, id="poly1"))
    cases += [pytest.param(corner, clipped_line(*corner), id="exact-{}-{}-{}".format(*corner)) for corner in CORNERS]
    return cases


@pytest.mark.parametrize(("arguments", "table"), score_cases())
def test_clipped_linear_score(arguments: tuple[int, int, int], table: np.ndarray):
    dut = ClippedLinearScore(LANES, *arguments)
    assert dut.sum_width == dut.out_width == max(int(table.max()).bit_length(), 1)
    assert dut.sum_zero_bits == dut.out_zero_bits == 0
    plan = port_plan(dut, np.random.default_rng(sum(arguments)))
    check_ports(dut, plan, run_ports_amaranth(dut, plan), {"sum": table, "out": table})


def base2_shifts(grid_shift: int, input_scale: float | None = None) -> np.ndarray:
    """ITA's shifts on the ``ln 2 / 2^g`` grid, or those of distances requantized from ``input_scale``."""
    knobs = {"base2_requantize": True, "input_scale": input_scale, "base2_chunk": 64} if input_scale else {}
    return Base2Model(SoftmaxConfig(mode="base2", base2_grid_shift=grid_shift, **knobs)).shift_table


BASE2_SHIFTS = [(grid_shift, None) for grid_shift in range(GRID_SHIFT_RANGE[0], GRID_SHIFT_RANGE[1] + 1)] + [
    (0, 3.0), (3, 0.05), (5, 0.011)]
"""ITA's grid shifts, then requantized distances: shifts that skip values (3 LSBs of ln 2 each), and finer ones."""


@pytest.mark.parametrize(("grid_shift", "input_scale"), BASE2_SHIFTS)
def test_base2_terms(grid_shift: int, input_scale: float | None):
    shifts = base2_shifts(grid_shift, input_scale)
    dut = Base2Terms(LANES, shifts)
    assert (dut.sum_width, dut.out_width, dut.sum_zero_bits, dut.out_zero_bits) == (9, 4, 0, 0)
    plan = port_plan(dut, np.random.default_rng(grid_shift))
    check_ports(dut, plan, run_ports_amaranth(dut, plan), {"sum": ONE >> shifts, "out": shifts})


def test_score_stages_verilog(tmp_path: Path):
    """Both score stages as Verilog (target ecp5) on Icarus."""
    simulator_or_skip("icarus")
    rng = np.random.default_rng(5)
    config = HCCS_CONFIGS[1]
    for name, dut, tables in (
            ("hccs", ClippedLinearScore(3, config.hccs_b, config.hccs_s, config.hccs_dmax, "ecp5"),
             dict.fromkeys(PORTS, HccsModel(config).score_table)),
            ("base2", Base2Terms(3, base2_shifts(5), "ecp5"), {"sum": ONE >> base2_shifts(5), "out": base2_shifts(5)}),
    ):
        folder = tmp_path / name
        folder.mkdir()
        plan = port_plan(dut, rng)
        check_ports(dut, plan, run_ports_verilog(dut, plan, "ecp5", folder), tables)


# The output stages.

def check_outputs(dut: Any, beats: list[dict], outputs: list[tuple[int, Any]], want: np.ndarray) -> None:
    """The outputs are ``want`` (the codes of the valid beats, in order), with their ``last`` flags, the first
    :attr:`latency` cycles after the first beat."""
    taken = [beat for beat in beats if beat["valid"]]
    assert outputs[0][0] == dut.latency
    assert [payload.last for _, payload in outputs] == [beat["last"] for beat in taken]
    got = np.array([list(payload.data) for _, payload in outputs]).ravel()
    exps = np.array([beat["exp"] for beat in taken]).ravel()
    invs = np.repeat([beat["reciprocal"] for beat in taken], dut.lanes)
    wrong = np.flatnonzero(got != want)
    if len(wrong):
        k = wrong[0]
        pytest.fail(f"{len(wrong)} of {got.size} codes differ; first: exp {exps[k]}, inv {invs[k]}: rtl {got[k]}, "
                    f"expected {want[k]}")


def model_rows(model: SurrogateModel, rng: np.random.Generator) -> np.ndarray:
    """Random int8 rows: uniform ones, ones within a few LSBs of their maximum, and a constant row."""
    n = model.config.n
    uniform = rng.integers(-128, 128, size=(ROWS, n))
    near = rng.integers(-128, 100, size=(ROWS, 1)) + rng.integers(0, 28, size=(ROWS, n))
    return np.concatenate([uniform, near, np.full((1, n), 7)]).astype(np.int8)


def row_beats(model: SurrogateModel, lanes: int, exps: np.ndarray, invs: np.ndarray,
              rng: np.random.Generator) -> list[dict]:
    """The beats of rows of per-element operands ``exps`` and per-row ``invs``, ``last`` on each row's final beat,
    with bubbles."""
    beats = [{"valid": 1, "last": int(start + lanes == model.config.n), "exp": row[start:start + lanes].tolist(),
              "reciprocal": int(inv)}
             for row, inv in zip(exps, invs, strict=True) for start in range(0, model.config.n, lanes)]
    return with_bubbles(beats, BUBBLE, rng)


def scale_case(config: SoftmaxConfig, target: str, lanes: int,
               rng: np.random.Generator) -> tuple[ScaleMac, list[dict], np.ndarray]:
    """The ScaleMac of a mode hccs or poly configuration, as the top would build it, beats of random rows scored and
    normalised as the golden model does (its ``div`` reciprocal), and the model's codes."""
    if config.mode == "hccs":
        model = HccsModel(config)
        inv_shift = config.hccs_inv_shift if config.output_bits == 8 else 0
        numerator = U8_NUMERATOR << inv_shift if config.output_bits == 8 else Q15_NUMERATOR
    else:
        model = PolyModel(config)
        inv_shift = model.inv_shift
        numerator = U8_NUMERATOR << inv_shift
    table = model.score_table
    dut = ScaleMac(lanes, int(table.max()).bit_length(), INV_WIDTH, inv_shift, model.output_bits, target)
    x = model_rows(model, rng)
    scores = table[model.diffs(x)]
    invs = numerator // scores.sum(axis=1)
    return dut, row_beats(model, lanes, scores, invs, rng), model(x).ravel()


SCALE_CONFIGS = [
    SoftmaxConfig(mode="hccs", n=16),
    SoftmaxConfig(mode="hccs", n=16, hccs_b=32767, hccs_s=127, hccs_dmax=127, hccs_inv_shift=20),
    SoftmaxConfig(mode="hccs", n=16, hccs_b=2000, hccs_s=30, hccs_dmax=60, output_bits=16),
    SoftmaxConfig(mode="poly", n=16, poly_n=2),
    SoftmaxConfig(mode="poly", n=16, poly_n=3, poly_b=6.0, poly_delta=0.5),
]


@pytest.mark.parametrize("config", SCALE_CONFIGS, ids=lambda config: f"{config.mode}-{config.output_bits}")
def test_scale_mac_matches_the_golden_models(config: SoftmaxConfig):
    rng = np.random.default_rng(config.output_bits + config.n)
    dut, beats, want = scale_case(config, "generic", LANES, rng)
    check_outputs(dut, beats, run_amaranth(dut, beats, STALL, rng), want)


def scale_operands(dut: ScaleMac, rng: np.random.Generator) -> list[dict]:
    """Beats of random operands, of every pair of extremes, and of scores at the saturation bound of random
    reciprocals, with random ``last`` flags and bubbles."""
    top_score, top_inv = (1 << dut.score_width) - 1, (1 << dut.inv_width) - 1
    pairs = [(int(rng.integers(top_score + 1)), int(rng.integers(top_inv + 1))) for _ in range(RANDOM * dut.lanes)]
    pairs += [(score, inv) for score in (0, 1, top_score) for inv in (0, 1, top_inv)]
    bound = (1 << dut.code_bits) << dut.inv_shift
    for inv in rng.integers(1, top_inv + 1, size=RANDOM):
        first = -(-bound // int(inv))
        pairs += [(score, int(inv)) for score in (first - 1, first) if 0 <= score <= top_score]
    beats = []
    for start in range(0, len(pairs), dut.lanes):
        group = (pairs[start:start + dut.lanes] * dut.lanes)[:dut.lanes]
        for inv in dict.fromkeys(inv for _, inv in group):
            beats.append({"valid": 1, "last": int(rng.integers(2)), "reciprocal": inv,
                          "exp": [score for score, _ in group]})
    return with_bubbles(beats, BUBBLE, rng)


def scale_want(dut: ScaleMac, beats: list[dict]) -> np.ndarray:
    return np.array([min(score * beat["reciprocal"] >> dut.inv_shift, (1 << dut.code_bits) - 1)
                     for beat in beats if beat["valid"] for score in beat["exp"]])


SCALE_SHAPES = [(15, 15, 15, 8), (25, 15, 20, 8), (15, 15, 0, 16), (33, 15, 24, 8), (3, 2, 0, 8), (36, 36, 40, 16),
                (12, 9, 30, 8)]
"""``(score_width, inv_width, inv_shift, output_bits)``: HCCS's 8- and 16-bit stages, poly's wide scores, products too
narrow to saturate or to reach the code bits, the widest operands."""


@pytest.mark.parametrize("shape", SCALE_SHAPES, ids=lambda shape: "-".join(map(str, shape)))
def test_scale_mac_exact(shape: tuple[int, int, int, int]):
    rng = np.random.default_rng(sum(shape))
    dut = ScaleMac(LANES, *shape)
    beats = scale_operands(dut, rng)
    check_outputs(dut, beats, run_amaranth(dut, beats, STALL, rng), scale_want(dut, beats))


@pytest.mark.parametrize("target", VENDOR_TARGETS)
def test_scale_mac_verilog_with_vendor_models(target: str, tmp_path: Path):
    """Two lanes: a poly configuration (scores of two DSP parts on ecp5) and extreme operands of the Q15 stage."""
    simulator = simulator_or_skip("icarus")
    rng = np.random.default_rng(11)
    dut, beats, want = scale_case(SCALE_CONFIGS[4], target, 2, rng)
    (tmp_path / "rows").mkdir()
    check_outputs(dut, beats, run_verilog(dut, beats, STALL, rng, target, simulator, tmp_path / "rows"), want)
    dut = ScaleMac(2, 15, 15, 0, 16, target)
    beats = scale_operands(dut, rng)
    (tmp_path / "operands").mkdir()
    check_outputs(dut, beats, run_verilog(dut, beats, STALL, rng, target, simulator, tmp_path / "operands"),
                  scale_want(dut, beats))


def shift_case(grid_shift: int, target: str, rng: np.random.Generator) -> tuple[ShiftOut, list[dict], np.ndarray]:
    """A ShiftOut, beats of random rows of a one-chunk base2 configuration with the model's shifts and
    ``inv = 65280 // Σ (256 >> shift)``, and the model's codes."""
    model = Base2Model(SoftmaxConfig(mode="base2", n=16, base2_chunk=16, base2_grid_shift=grid_shift))
    x = model_rows(model, rng)
    shifts = model.shift_table[model.diffs(x)]
    invs = NUMERATOR // (ONE >> shifts).sum(axis=1)
    dut = ShiftOut(LANES, int(invs.max()).bit_length(), target)
    return dut, row_beats(model, LANES, shifts, invs, rng), model(x).ravel()


@pytest.mark.parametrize("grid_shift", [0, 2, 5])
def test_shift_out_matches_the_golden_model(grid_shift: int):
    rng = np.random.default_rng(grid_shift)
    dut, beats, want = shift_case(grid_shift, "generic", rng)
    check_outputs(dut, beats, run_amaranth(dut, beats, STALL, rng), want)


def shift_operands(dut: ShiftOut, rng: np.random.Generator) -> list[dict]:
    """Every shift 0..15 with random and extreme reciprocals, with random ``last`` flags and bubbles."""
    top = (1 << dut.inv_width) - 1
    invs = [0, 1, top, *rng.integers(top + 1, size=RANDOM).tolist()]
    beats = [{"valid": 1, "last": int(rng.integers(2)), "reciprocal": int(inv),
              "exp": rng.integers(16, size=dut.lanes).tolist()} for inv in invs for _ in range(2)]
    beats += [{"valid": 1, "last": 1, "reciprocal": int(inv), "exp": [shift] * dut.lanes}
              for inv in invs[:4] for shift in range(16)]
    return with_bubbles(beats, BUBBLE, rng)


def shift_want(dut: ShiftOut, beats: list[dict]) -> np.ndarray:
    return np.array([beat["reciprocal"] >> shift & 255 for beat in beats if beat["valid"] for shift in beat["exp"]])


@pytest.mark.parametrize("inv_width", [8, 11])
def test_shift_out_exact(inv_width: int):
    rng = np.random.default_rng(inv_width)
    dut = ShiftOut(LANES, inv_width)
    beats = shift_operands(dut, rng)
    check_outputs(dut, beats, run_amaranth(dut, beats, STALL, rng), shift_want(dut, beats))


def test_shift_out_verilog(tmp_path: Path):
    simulator = simulator_or_skip("icarus")
    rng = np.random.default_rng(3)
    dut, beats, want = shift_case(5, "ecp5", rng)
    check_outputs(dut, beats, run_verilog(dut, beats, STALL, rng, "ecp5", simulator, tmp_path), want)


def test_output_payloads():
    """uint8 lanes but for the Q15 stage's int16 ones."""
    for dut, bits, signed in ((ScaleMac(2, 15, 15, 15, 8), 8, False), (ScaleMac(2, 15, 15, 0, 16), 16, True),
                              (ShiftOut(2, 8), 8, False)):
        payload = dut.o.payload.shape()
        assert (payload.lanes, payload.bits, payload.signed) == (2, bits, signed)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize(("build", "message"), [
    (lambda: ClippedLinearScore(0, 1024, 48, 16), "lanes must be at least 1"),
    (lambda: ClippedLinearScore(4, 32768, 48, 16), "b must be in 0..32767"),
    (lambda: ClippedLinearScore(4, 1024, 128, 1), "s must be in 0..127"),
    (lambda: ClippedLinearScore(4, 1024, 48, -1), "dmax must be in 0..127"),
    (lambda: ClippedLinearScore(4, 1024, 48, 22), "b - s\\*dmax must be at least 0"),
    (lambda: ClippedLinearScore(4, 1024, 48, 16, "xc6"), "target must be one of"),
    *((lambda table=table: Base2Terms(4, table), "shift_table must hold 256 non-decreasing shifts from 0, at most 9")
      for table in ([1] * 256, [0] * 255 + [10], [*range(9), *[3] * 247], [0] * 10)),
    (lambda: Base2Terms(0, [0] * 256), "lanes must be at least 1"),
    (lambda: ScaleMac(0, 15, 15, 15, 8), "lanes must be at least 1"),
    (lambda: ScaleMac(4, 37, 15, 15, 8), "score_width must be in 1..36"),
    (lambda: ScaleMac(4, 15, 0, 15, 8), "inv_width must be in 1..36"),
    (lambda: ScaleMac(4, 15, 15, -1, 8), "inv_shift must be at least 0"),
    (lambda: ScaleMac(4, 15, 15, 15, 12), "output_bits must be one of 8, 16"),
    (lambda: ScaleMac(4, 15, 15, 15, 8, "xc6"), "target must be one of"),
    (lambda: ShiftOut(4, 0), "inv_width must be in 1..36"),
])
def test_bad_arguments(build: Any, message: str):
    with pytest.raises(ValueError, match=message):
        build()
    gc.collect()
