"""Amaranth-simulation helpers for unit tests of single stages: stream transfers, a monitor and a one-call runner.

Testbenches are plain ``async`` functions of the simulator context, as Amaranth 0.5 runs them; the stream helpers
follow the idioms of ``amaranth.lib.stream``'s documentation (a transfer happens at the clock edge where ``valid``
and ``ready`` are both sampled high).
"""

from collections.abc import Awaitable, Callable
from typing import Any

from amaranth.lib import stream
from amaranth.sim import Simulator, SimulatorContext

Testbench = Callable[[SimulatorContext], Awaitable[None]]


async def stream_put(ctx: SimulatorContext, interface: stream.Interface, payload: Any) -> None:
    """Present ``payload`` with ``valid`` until the clock edge that transfers it, then drop ``valid``.

    Consecutive calls transfer on consecutive cycles when the sink is ready; awaiting ``ctx.tick()`` between calls
    leaves ``valid`` low for those cycles.
    """
    ctx.set(interface.valid, 1)
    ctx.set(interface.payload, payload)
    await ctx.tick().until(interface.ready)
    ctx.set(interface.valid, 0)


async def stream_get(ctx: SimulatorContext, interface: stream.Interface) -> Any:
    """Hold ``ready`` until the clock edge that transfers a payload, then drop ``ready``; return the payload."""
    ctx.set(interface.ready, 1)
    payload, = await ctx.tick().sample(interface.payload).until(interface.valid)
    ctx.set(interface.ready, 0)
    return payload


async def stream_monitor(ctx: SimulatorContext, interface: stream.Interface, transfers: list[tuple[int, Any]]) -> None:
    """Record every transfer on ``interface`` as ``(cycle, payload)`` and check the valid/ready contract.

    Cycles count clock edges from the start of the simulation, so monitors of different streams share one time
    base. Once ``valid`` is high it must stay high, with the same payload, until the transfer; an
    :class:`AssertionError` names the cycle otherwise. Run it as a background testbench (``simulate(...,
    background=...)``): it never returns.
    """
    offered = None
    cycle = 0
    while True:
        _, _, valid, ready, payload = await ctx.tick().sample(interface.valid, interface.ready, interface.payload)
        if offered is not None:
            assert valid, f"valid dropped at cycle {cycle} before the payload offered at cycle {offered[0]} was taken"
            assert payload == offered[1], f"payload changed at cycle {cycle} while waiting for ready"
        if valid and ready:
            transfers.append((cycle, payload))
            offered = None
        elif valid and offered is None:
            offered = (cycle, payload)
        cycle += 1


def simulate(dut: Any, *testbenches: Testbench, clock: float = 1e-8, deadline: float | None = None,
             background: tuple[Testbench, ...] = ()) -> None:
    """Simulate ``dut``, with a ``sync`` clock of period ``clock`` if it has that domain, until every testbench returns.

    Parameters
    ----------
    dut : Elaboratable
        The design.
    *testbenches : async callable
        Critical testbenches: the simulation runs until all of them return.
    clock : float
        Clock period in seconds.
    deadline : float or None
        Simulated seconds after which :class:`TimeoutError` is raised if a testbench is still running.
    background : tuple of async callable
        Testbenches that run alongside but do not keep the simulation going (monitors).
    """
    simulator = Simulator(dut)
    simulator.add_clock(clock, if_exists=True)
    for testbench in testbenches:
        simulator.add_testbench(testbench)
    for testbench in background:
        simulator.add_testbench(testbench, background=True)
    expired = False

    async def watchdog(ctx: SimulatorContext) -> None:
        nonlocal expired
        await ctx.delay(deadline)
        expired = True

    if deadline is not None:
        simulator.add_testbench(watchdog, background=True)
    while simulator.advance():
        if expired:
            raise TimeoutError(f"testbenches still running after {deadline} s of simulated time")
