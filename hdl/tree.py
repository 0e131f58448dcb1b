"""Registered reduction trees: two operator levels per register stage."""

from collections.abc import Callable, Sequence

from amaranth import Module, Signal, Value
from amaranth.hdl import ShapeLike

LEVELS_PER_STAGE = 2


def tree_levels(width: int) -> int:
    return (width - 1).bit_length()


def tree_stages(width: int) -> int:
    """Register stages of a reduction over ``width`` operands."""
    return -(-tree_levels(width) // LEVELS_PER_STAGE)


def reduce_tree(m: Module, operands: Sequence[Value], op: Callable[[Value, Value], Value], shape: ShapeLike,
                carry: Sequence[Value] = (), enable: Value | None = None) -> tuple[Value, list[Value]]:
    """Reduce ``operands`` with ``op`` in :func:`tree_stages` register stages.

    ``carry`` signals are delayed alongside so they stay aligned with the result. With ``enable`` the stages
    advance only when it is high. Returns the result and the delayed ``carry`` signals.
    """
    level = list(operands)
    carried = list(carry)
    depth = 0
    while len(level) > 1:
        level = [op(level[k], level[k + 1]) if k + 1 < len(level) else level[k]
                 for k in range(0, len(level), 2)]
        depth += 1
        if depth % LEVELS_PER_STAGE == 0 or len(level) == 1:
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
