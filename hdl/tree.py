"""Registered reduction trees: as many operator levels per register stage as the target's clock allows."""

from collections.abc import Callable, Sequence

from amaranth import Module, Signal, Value
from amaranth.hdl import ShapeLike

from int8attn.hdl.pipeline import check_target

LEVELS_PER_STAGE = {"generic": 2, "ice40": 2, "ecp5": 1, "xc7": 2}
"""Operator levels between two registers of a tree, per target: one on ECP5, whose 200 MHz clock leaves room for
one carry chain (an 8-bit compare and its multiplexer, or one adder) and its routing per cycle."""


def tree_levels(width: int) -> int:
    return (width - 1).bit_length()


def tree_stages(width: int, target: str = "generic") -> int:
    """Register stages of a reduction over ``width`` operands on ``target``."""
    return -(-tree_levels(width) // LEVELS_PER_STAGE[check_target(target)])


def reduce_tree(m: Module, operands: Sequence[Value], op: Callable[[Value, Value], Value], shape: ShapeLike,
                carry: Sequence[Value] = (), enable: Value | None = None,
                target: str = "generic") -> tuple[Value, list[Value]]:
    """Reduce ``operands`` with ``op`` in :func:`tree_stages` register stages of ``target``.

    ``carry`` signals are delayed alongside so they stay aligned with the result. With ``enable`` the stages
    advance only when it is high. Returns the result and the delayed ``carry`` signals.
    """
    levels_per_stage = LEVELS_PER_STAGE[check_target(target)]
    level = list(operands)
    carried = list(carry)
    depth = 0
    while len(level) > 1:
        level = [op(level[k], level[k + 1]) if k + 1 < len(level) else level[k]
                 for k in range(0, len(level), 2)]
        depth += 1
        if depth % levels_per_stage == 0 or len(level) == 1:
            registered = [Signal(shape, name=f"tree_s{depth}_{k}") for k in range(len(level))]
            delayed = [Signal.like(value, name=f"tree_carry_s{depth}_{k}") for k, value in enumerate(carried)]
            updates = [r.eq(v) for r, v in zip(registered, level, strict=True)]
            updates += [r.eq(v) for r, v in zip(delayed, carried, strict=True)]
            if enable is None:
                m.d.sync += updates
            else:
                with m.If(enable):
                    m.d.sync += updates
            level, carried = registered, delayed
    return level[0], carried
