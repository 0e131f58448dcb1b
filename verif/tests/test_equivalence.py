"""The vendor targets' :class:`~int8attn.hdl.multiplier.Multiplier` proven equivalent to the exact product by ABC
(:mod:`int8attn.verif.equivalence`): 8×8 signed and unsigned×signed on each target, an 18×18 ``MULT18X18D``, a 25×18
DSP48E1 product, a 20×12 product over two ``MULT18X18D`` blocks, an addend and ``fabric_register``; with ``-m slow``
addends that take 10–30 s and the ``SB_MAC16`` at 9×9 (about a minute: SAT on its four 8×8 sub-products against one
multiplier grows steeply; 10×10 did not finish in 400 s). A reference broken on purpose (its low bit, one operand
pair, its latency) is refuted on each target with a counterexample from power-up, replayed here. Skipped, with the
install command, without Yosys."""

import gc
from pathlib import Path

import pytest
from amaranth import Shape, signed, unsigned

from int8attn.hdl.multiplier import Multiplier, shape_bounds
from int8attn.verif.equivalence import FAULTS, MultiplierMiter, prove_equivalence

EQUIVALENT = [
    ("xc7", signed(8), signed(8), {}),
    ("xc7", unsigned(8), signed(8), {}),
    ("ecp5", signed(8), signed(8), {}),
    ("ecp5", unsigned(8), signed(8), {}),
    ("ice40", signed(8), signed(8), {}),
    ("ice40", unsigned(8), signed(8), {}),
    ("ecp5", signed(18), signed(18), {}),
    ("xc7", signed(25), signed(18), {}),
    ("ecp5", signed(20), signed(12), {}),
    ("ecp5", signed(8), signed(8), {"addend_shape": signed(12), "addend_shift": 4}),
    ("xc7", signed(8), signed(8), {"addend_shape": signed(12), "addend_shift": 4}),
    ("ecp5", signed(8), signed(8), {"fabric_register": True}),
    ("ice40", unsigned(8), signed(8), {"fabric_register": True}),
    pytest.param("ice40", unsigned(8), signed(8), {"addend_shape": signed(16)}, marks=pytest.mark.slow),
    pytest.param("ecp5", signed(20), signed(12), {"addend_shape": signed(24), "addend_shift": 6},
                 marks=pytest.mark.slow),
    pytest.param("ice40", signed(9), signed(9), {}, marks=pytest.mark.slow),
]


def _id(value: object) -> str | None:
    if isinstance(value, Shape):
        return f"{'s' if value.signed else 'u'}{value.width}"
    if isinstance(value, dict):
        return ",".join(f"{key}={_id(option) or option}" for key, option in value.items()) or "plain"
    return None


@pytest.mark.parametrize(("target", "a_shape", "b_shape", "options"), EQUIVALENT, ids=_id)
def test_multiplier_is_the_exact_product(tools: dict[str, str], tmp_path: Path, target: str, a_shape: Shape,
                                         b_shape: Shape, options: dict):
    result = prove_equivalence(Multiplier(a_shape, b_shape, target, **options), tmp_path)
    assert result["equivalent"], result
    assert result["counterexample"] is None
    assert "&cec" in result["commands"]


def _exact(dut: Multiplier, counterexample: dict, cycle: int) -> int:
    """What ``dut`` outputs in ``cycle`` of ``counterexample`` (registers power up at 0)."""
    def taken(name: str, at: int) -> int:
        return counterexample[name][at] if at >= 0 else 0

    product = taken("a", cycle - dut.latency) * taken("b", cycle - dut.latency)
    return product + (taken("c", cycle - dut.addend_latency) << dut.addend_shift)


@pytest.mark.parametrize("target", ["xc7", "ecp5", "ice40"])
@pytest.mark.parametrize("fault", FAULTS)
def test_broken_reference_is_refuted(tools: dict[str, str], tmp_path: Path, target: str, fault: str):
    """The counterexample holds: the broken reference, replayed on its operands, differs from the exact value."""
    dut = Multiplier(unsigned(8), signed(8), target, addend_shape=signed(12), addend_shift=4)
    result = prove_equivalence(dut, tmp_path, fault=fault)
    assert not result["equivalent"]
    assert "bmc3" in result["commands"]
    counterexample = result["counterexample"]
    cycle = counterexample["cycle"]
    assert cycle >= dut.latency
    assert len(counterexample["a"]) == len(counterexample["b"]) == len(counterexample["c"]) == cycle + 1
    exact = _exact(dut, counterexample, cycle)
    operands = counterexample["a"][cycle - dut.latency], counterexample["b"][cycle - dut.latency]
    lowest = shape_bounds(dut.a_shape)[0], shape_bounds(dut.b_shape)[0]
    broken = {"low_bit": exact ^ 1, "corner": exact ^ (operands == lowest),
              "late": _exact(dut, counterexample, cycle - 1)}[fault]
    assert broken != exact


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_unknown_fault_is_rejected():
    with pytest.raises(ValueError, match="fault must be one of"):
        MultiplierMiter(Multiplier(signed(8), signed(8), "ecp5"), "sign")
    gc.collect()
