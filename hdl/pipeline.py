"""Pipeline alignment: delay lines whose length comes from the stages' ``latency`` properties."""

from amaranth import Module, Signal, Value

from int8attn.golden.params import TARGETS


def check_target(target: str) -> str:
    """``target`` itself; ``ValueError`` naming the argument and the allowed values when it is not in ``TARGETS``."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    return target


def delay(m: Module, value: Value, cycles: int, *, enable: Value | None = None, name: str = "delayed") -> Value:
    """``value`` delayed by ``cycles`` registers, each advancing only while ``enable`` is high (always without it).

    ``cycles = 0`` returns ``value`` itself, so a stage whose latency drops to zero re-times its users for free.
    """
    return delay_line(m, value, cycles, enable=enable, name=name)[-1]


def event_counter(m: Module, event: Value, width: int, name: str) -> Signal:
    """A ``width``-bit count of the cycles with ``event``; the increment is computed ahead, so ``event`` only selects
    between two registers."""
    count = Signal(width, name=name)
    following = Signal(width, init=1, name=f"{name}_next")
    with m.If(event):
        m.d.sync += [count.eq(following), following.eq(following + 1)]
    return count


def delay_line(m: Module, value: Value, cycles: int, *, enable: Value | None = None,
               name: str = "delayed") -> list[Value]:
    """``value`` followed by its ``cycles`` registered copies: element ``k`` is ``value`` delayed by ``k``."""
    if cycles < 0:
        raise ValueError(f"cycles must be ≥ 0, not {cycles}")
    line = [value]
    for stage in range(1, cycles + 1):
        register = Signal.like(line[-1], name=f"{name}_d{stage}")
        if enable is None:
            m.d.sync += register.eq(line[-1])
        else:
            with m.If(enable):
                m.d.sync += register.eq(line[-1])
        line.append(register)
    return line
