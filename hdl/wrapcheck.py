"""Formal-only hooks on the values a unit keeps in fewer bits than their exact arithmetic needs.

A component of :class:`WrapChecked` lists, while it elaborates, each such value (an accumulator, a sum, a shift
result) with the exact value it stands for, computed wide enough for any operands: a :class:`WrapCheck`. It does so
only when the formal harness (:class:`~int8attn.verif.formal.StreamHarness`, group ``overflow``) has set its
``wrap_checks`` to a list before elaboration; otherwise (every ordinary build) it adds nothing, so the emitted
Verilog does not change. The harness asserts that each narrow value equals its exact one on the cycles it is used:
the widened bits are redundant, nothing wraps.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from amaranth import Value


@dataclass(frozen=True)
class WrapCheck:
    """One narrow value and its exact counterpart.

    Members
    -------
    name : str
        ``<component>.<value>``, with the lane where there are several.
    when : Value
        High on the cycles the narrow value is used.
    narrow : Value
        The value as the hardware keeps it.
    exact : Value
        The value computed without loss; compared with ``narrow`` sign- or zero-extended.
    """

    name: str
    when: Value
    narrow: Value
    exact: Value

    def holds(self) -> Value:
        """High unless the value is used while its narrow form differs from the exact one."""
        return ~self.when | (self.narrow == self.exact)


class WrapChecked:
    """Mixin of a component that lists its :class:`WrapCheck` s for the formal harness.

    Members
    -------
    wrap_checks : list of WrapCheck or None
        ``None`` (the class default: no formal hooks) or the list elaboration appends to, shared with the
        components it passes on to (:meth:`share_wrap_checks`).
    """

    wrap_checks: list[WrapCheck] | None = None

    @property
    def checking_wraps(self) -> bool:
        """The harness asked for the checks: build whatever formal-only logic they need."""
        return self.wrap_checks is not None

    def check_wrap(self, name: str, when: Value, exact: Value, width: int, narrow: Value | None = None) -> None:
        """List ``exact`` as kept in ``width`` bits (its low bits, signed like it), or as ``narrow`` when given."""
        if self.wrap_checks is None:
            return
        exact = Value.cast(exact)
        if narrow is None:
            narrow = exact[:width].as_signed() if exact.shape().signed else exact[:width]
        self.wrap_checks.append(WrapCheck(f"{type(self).__name__}.{name}", Value.cast(when), narrow, exact))

    def share_wrap_checks(self, children: Iterable[object]) -> None:
        """Let the :class:`WrapChecked` ones of ``children`` list their checks in the same list (call in
        ``elaborate``, before they elaborate)."""
        if self.wrap_checks is None:
            return
        for child in children:
            if isinstance(child, WrapChecked):
                child.wrap_checks = self.wrap_checks
