"""What the dense and matmul RTL tests run where, to keep CI fast."""

VENDOR_ROWS = 16
"""Random rows of a vendor netlist's check (with the directed ones): the vendor models make Icarus slow."""


def cycle_tests(simulator: str) -> str:
    """``check`` on both simulators, ``cycle`` (256 back-to-back frames) on Verilator only."""
    return "check,cycle" if simulator == "verilator" else "check"


def vendor_tests(target: str) -> str:
    """``check`` on every vendor netlist; ``cycle`` (its latency and throughput) on ECP5's, the deepest pipeline."""
    return "check,cycle" if target == "ecp5" else "check"
