"""The fast soak engine: a Verilator C++ testbench generated from a unit's sidecar, fed by numpy.

The cocotb ``soak`` test (:mod:`int8attn.verif.tb_generic`) runs a few thousand cycles a second, bound by Python; this
engine runs the same soak at the speed of the Verilated model. Python draws the rows from the unit's own random stimuli
(:func:`~int8attn.verif.tb_generic.unit_stimuli`, given a :class:`FrameSource` for the ``StreamTB`` they expect),
computes the golden outputs in large numpy batches (:meth:`~int8attn.verif.stream.Scoreboard.golden`) and packs every
beat (:meth:`~int8attn.verif.stream.PayloadLayout.frame_words`). It pipes one record per row to the engine: the beat
words of each input stream's frame, then the beat words each output stream must give, little-endian 32-bit words.

The engine (``soak_main.cpp.in`` beside this module, its port accessors generated from the sidecar's ``streams``,
built by :func:`build` with the ``verilator`` of :func:`~int8attn.verif.runner.find_simulator`) resets the unit for
:data:`~int8attn.verif.testbench.RESET_CYCLES` cycles, then drives every input stream with random idle cycles and every
output's ``ready`` low at random, the (idle, backpressure) pair changing every
:data:`~int8attn.verif.tb_generic.SOAK_BATCH` rows as the cocotb soak's does; an idle input carries random payload
bits. Every cycle it checks that no output is valid in the first cycle out of reset, that an output beat valid and not
taken stays valid with the same word, that the ``error`` output (when the unit has one) stays low, and compares every
output beat taken with the expected one word for word, ``last`` included. It stops at
:data:`~int8attn.verif.testbench.MAX_REPORTED` errors, or when no output beat comes for a frame's cycle budget at the
worst stall; after the last row it runs on for the latency, a frame and a margin, so that an extra beat is caught. Its
report, ``result.json``, counts rows, beats, cycles, mismatches (beats unlike the expected or unexpected) and
violations (contract breaches, a high ``error``, the watchdog), with the first errors.
"""

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import numpy as np

from int8attn.golden.files import write_atomic
from int8attn.hdl.emit import VERILATOR_WAIVERS
from int8attn.units import unit_named
from int8attn.verif import tb_generic
from int8attn.verif.runner import OBJCACHE, VERILATOR_ONE_FILE, find_simulator, locked
from int8attn.verif.stream import Scoreboard, StreamSpec, streams_of
from int8attn.verif.testbench import (
    CLOCKING,
    DRAIN_SLACK,
    MAX_REPORTED,
    MAX_STALL,
    RESET_CYCLES,
    STALL_MARGIN,
    STICKY_FLAG,
)

TEMPLATE = Path(__file__).with_name("soak_main.cpp.in")
OPTIMIZE = "-O2"
"""C++ optimisation of the engine and its model: a soak runs 10⁷–10⁸ cycles, worth a slower build than the tests'."""
CHUNK_ROWS = 1024
"""Rows drawn, computed and piped at a time."""
SALT = "soak"
"""Salt of the rows' generator: the cocotb ``soak`` test's name, which salts its own."""
BINARY = "soak_engine"
RESULT = "result.json"
LOG = "soak.log"


class EngineError(RuntimeError):
    """The engine could not be built or did not report; the message says why and where the log is."""


@dataclass
class FrameSource:
    """The rows of a soak: the unit's random stimuli and their golden outputs, outside a simulation.

    It has what the stimuli read of a :class:`~int8attn.verif.testbench.StreamTB` (``sidecar``, ``streams``,
    ``inputs``, ``outputs``, ``model``, ``rng``), seeded as the cocotb ``soak`` test's generator is.

    Parameters
    ----------
    sidecar : dict
        The unit's sidecar.
    seed : int
        Seed of the rows.
    """

    sidecar: dict[str, Any]
    seed: int
    streams: dict[str, StreamSpec] = field(init=False)
    inputs: dict[str, StreamSpec] = field(init=False)
    outputs: dict[str, StreamSpec] = field(init=False)
    model: Any = field(init=False)
    rng: np.random.Generator = field(init=False)

    def __post_init__(self):
        self.streams = streams_of(self.sidecar)
        self.inputs = {key: spec for key, spec in self.streams.items() if spec.direction == "input"}
        self.outputs = {key: spec for key, spec in self.streams.items() if spec.direction == "output"}
        unit = unit_named(self.sidecar["unit"])
        self.model = unit.make_model(unit.make_config(self.sidecar["parameters"]))
        self.rng = np.random.default_rng([self.seed, zlib.crc32(SALT.encode())])
        self._stimuli = tb_generic.unit_stimuli(self)
        self._scoreboard = Scoreboard(self.model, self.inputs, self.outputs)

    @property
    def frame_beats(self) -> int:
        """Beats of a frame on the longest stream."""
        return max(spec.beats_per_frame for spec in self.streams.values())

    @property
    def latency(self) -> int:
        return self.sidecar["latency_cycles"]

    def records(self, count: int) -> np.ndarray:
        """The next ``count`` rows as the engine reads them: ``count × words`` ``uint32``, each row the beat words of
        every input stream's frame, then those of every output stream's, in the sidecar's order."""
        frames = [frame for _, frame in self._stimuli(self, count)]
        stacked = ({key: np.stack([frame[key] for frame in frames]) for key in self.inputs}
                   if isinstance(frames[0], Mapping) else np.stack(frames))
        shaped = self._scoreboard.frames_of(stacked)
        golden = self._scoreboard.golden(shaped)
        words = [self.inputs[key].layout.frame_words(rows) for key, rows in shaped.items()]
        words += [self.outputs[key].layout.frame_words(rows) for key, rows in golden.items()]
        return np.concatenate([block.reshape(count, -1) for block in words], axis=1)


def cpp_name(port: str) -> str:
    """The member of the Verilated model of Verilog port ``port``: Verilator encodes each ``__`` as ``___05F``."""
    return port.replace("__", "___05F")


def _accessors(spec: StreamSpec, index: int) -> dict[str, str]:
    """C++ ``case`` lines of the port accessors of one stream (see ``soak_main.cpp.in``)."""
    ports = {role: cpp_name(port) for role, port in spec.ports.items()}
    case = f"\n    case {index}:"
    if spec.protocol == "axis":
        data, last, bit = f"top->{ports['data']}", f"top->{ports['last']}", spec.layout.last_bit
        write = f"put_axis({data}, {last}, words, {bit});"
        read = f"get_axis({data}, {last}, words, {bit});"
    else:
        write, read = f"put(top->{ports['payload']}, words);", f"get(top->{ports['payload']}, words);"
    valid, ready = f"top->{ports['valid']}", f"top->{ports['ready']}"
    if spec.direction == "input":
        return {"drive_input": f"{case} {valid} = valid; {write} break;",
                "input_ready": f"{case} return {ready};"}
    return {"drive_ready": f"{case} {ready} = ready; break;", "output_valid": f"{case} return {valid};",
            "output_word": f"{case} {read} break;"}


def cpp_source(sidecar: dict[str, Any]) -> str:
    """The engine's C++ for the unit of ``sidecar``."""
    streams = streams_of(sidecar)
    clocking = CLOCKING | {key: sidecar[key] for key in CLOCKING if key in sidecar}
    sticky = any(port["name"] == STICKY_FLAG and port["direction"] == "output" and port["width"] == 1
                 for port in sidecar["ports"])
    cases = dict.fromkeys(("drive_input", "input_ready", "drive_ready", "output_valid", "output_word"), "")
    tables: dict[str, list[str]] = {"input": [], "output": []}
    for direction in tables:
        chosen = [spec for spec in streams.values() if spec.direction == direction]
        for index, spec in enumerate(chosen):
            tables[direction].append(f'{{"{spec.name}", {spec.beats_per_frame}, {spec.layout.words}, '
                                     f'{spec.layout.width}}}')
            for key, line in _accessors(spec, index).items():
                cases[key] += line
    return Template(TEMPLATE.read_text()).substitute(
        top=sidecar["top"], reset_cycles=RESET_CYCLES, max_errors=MAX_REPORTED,
        max_words=max(spec.layout.words for spec in streams.values()),
        inputs=", ".join(tables["input"]), outputs=", ".join(tables["output"]), clock=cpp_name(clocking["clock"]),
        reset=cpp_name(clocking["reset"]), reset_level="true" if clocking["reset_active"] == "high" else "false",
        error_high=f"top->{STICKY_FLAG}" if sticky else "false", **cases)


def _log_tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.is_file() else f"(no log {log})"


def build(verilog: Path, sidecar: dict[str, Any], folder: Path) -> Path:
    """Build the engine of ``verilog`` (whose sidecar is ``sidecar``) in ``folder``, unless it holds that build; the
    engine's path. ``folder`` is locked meanwhile.

    Raises
    ------
    EngineError
        Verilator or the C++ build failed.
    int8attn.verif.runner.SimulatorMissing
        Verilator is missing.
    """
    find_simulator("verilator")
    folder = Path(folder).resolve()
    source = cpp_source(sidecar)
    command = ["verilator", "--cc", "--exe", "--build", "--build-jobs", "1", "--top-module", sidecar["top"],
               "--Mdir", "obj", "-o", f"../{BINARY}", "--x-assign", "unique", "--x-initial", "unique",
               *VERILATOR_WAIVERS, *VERILATOR_ONE_FILE, str(Path(verilog).resolve()), "soak_main.cpp"]
    stamp = hashlib.sha256("\0".join([*command, OPTIMIZE, source]).encode() + Path(verilog).read_bytes()).hexdigest()
    binary, stamp_file, log = folder / BINARY, folder / "engine.sha256", folder / "build.log"
    with locked(folder):
        if binary.is_file() and stamp_file.is_file() and stamp_file.read_text() == stamp:
            return binary
        stamp_file.unlink(missing_ok=True)
        shutil.rmtree(folder / "obj", ignore_errors=True)
        write_atomic(folder / "soak_main.cpp", source)
        environment = os.environ | {"MAKEFLAGS": f"OPT_FAST={OPTIMIZE} OPT_SLOW={OPTIMIZE} OPT_GLOBAL={OPTIMIZE}"}
        environment |= {"OBJCACHE": OBJCACHE} if shutil.which(OBJCACHE) else {}
        with open(log, "w") as handle:
            status = subprocess.run(command, cwd=folder, env=environment, stdout=handle, stderr=subprocess.STDOUT,
                                    check=False).returncode
        if status or not binary.is_file():
            raise EngineError(f"the soak engine's build failed (exit {status}); log {log}:\n{_log_tail(log)}")
        write_atomic(stamp_file, stamp)
    return binary


def stall_pairs(idle: float, backpressure: float) -> list[tuple[float, float]]:
    """The (idle, backpressure) of successive batches: :data:`~int8attn.verif.tb_generic.SOAK_STALLS`, ``None``
    standing for ``(idle, backpressure)``."""
    return [pair or (idle, backpressure) for pair in tb_generic.SOAK_STALLS]


def watchdog_cycles(source: FrameSource, stalls: list[tuple[float, float]]) -> int:
    """Cycles without an output beat that end a run: a frame's budget at the worst stall probability, as the cocotb
    ``soak`` test allows."""
    stall = min(max(max(pair) for pair in stalls), MAX_STALL)
    frame_cycles = max(source.frame_beats, source.sidecar.get("cycles_per_frame", 0))
    return STALL_MARGIN * int(frame_cycles / (1 - stall) ** 2) + 2 * source.latency + DRAIN_SLACK


def run(binary: Path, sidecar: dict[str, Any], rows: int, *, seed: int, stalls: list[tuple[float, float]],
        folder: Path) -> dict[str, Any]:
    """Soak ``rows`` random rows through the engine ``binary`` of the unit of ``sidecar``; the engine's report
    (module docstring) with ``exit_status`` and ``log``. Its ``seconds`` include the rows' generation, which runs
    alongside the simulation.

    Raises
    ------
    EngineError
        The engine wrote no report (it crashed, or was given bad arguments).
    """
    source = FrameSource(sidecar, seed)
    folder = Path(folder).resolve()
    result, log = folder / RESULT, folder / LOG
    result.unlink(missing_ok=True)
    arguments = {"rows": rows, "seed": seed, "batch": tb_generic.SOAK_BATCH,
                 "stalls": ",".join(f"{idle}:{backpressure}" for idle, backpressure in stalls),
                 "watchdog": watchdog_cycles(source, stalls),
                 "drain": source.latency + source.frame_beats + DRAIN_SLACK, "result": result}
    with open(log, "w") as handle, subprocess.Popen(
            [str(binary), *(f"{key}={value}" for key, value in arguments.items())], stdin=subprocess.PIPE,
            stdout=handle, stderr=subprocess.STDOUT) as process:
        try:
            for start in range(0, rows, CHUNK_ROWS):
                process.stdin.write(source.records(min(CHUNK_ROWS, rows - start)).tobytes())
        except BrokenPipeError:
            pass  # the engine stopped early, at its error limit: its report says why
        finally:
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
        status = process.wait()
    if not result.is_file():
        raise EngineError(f"the soak engine {binary} exited with {status} and no report; log {log}:\n"
                          f"{_log_tail(log)}")
    return json.loads(result.read_text()) | {"exit_status": status, "log": str(log)}
