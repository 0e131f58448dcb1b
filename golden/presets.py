"""Named configurations: the knob grid that the RTL regression and the accuracy report share."""

from dataclasses import replace

from int8attn.golden.config import SoftmaxConfig

KNOB_SETTINGS: dict[str, dict] = {
    "tflite-equivalent": {},
    "d128-w16": {"rom_depth": 128, "rom_width": 16},
    "d64-w16": {"rom_depth": 64, "rom_width": 16},
    "d32-w12": {"rom_depth": 32, "rom_width": 12},
    "d128-w12-nr2": {"rom_depth": 128, "rom_width": 12, "reciprocal_steps": 2},
    "d128-w16-nr1": {"rom_depth": 128, "rom_width": 16, "reciprocal_steps": 1},
    "d128-w16-rlut8": {"rom_depth": 128, "rom_width": 16, "reciprocal": "lut", "reciprocal_bits": 8},
    "d64-w12-rlut6": {"rom_depth": 64, "rom_width": 12, "reciprocal": "lut", "reciprocal_bits": 6},
    "d128-w16-b12": {"rom_depth": 128, "rom_width": 16, "output_bits": 12},
    "d64-w10-rlut8-b4": {"rom_depth": 64, "rom_width": 10, "reciprocal": "lut", "reciprocal_bits": 8, "output_bits": 4},
    "d256-w20-b16": {"rom_width": 20, "output_bits": 16},
    "d96-w14-rlut10-b12-a24": {"rom_depth": 96, "rom_width": 14, "reciprocal": "lut", "reciprocal_bits": 10,
                               "output_bits": 12, "accumulator_width": 24},
    "d64-w8-nr1-b6": {"rom_depth": 64, "rom_width": 8, "reciprocal_steps": 1, "output_bits": 6},
}
"""Knob settings of mode ``lut``: ROM depth and width, reciprocal method and precision, output and sum widths."""


def knob_grid(base: SoftmaxConfig) -> dict[str, SoftmaxConfig]:
    """Every :data:`KNOB_SETTINGS` entry applied to ``base`` (its row length, lanes and quantisation)."""
    return {name: replace(base, mode="lut", **knobs) for name, knobs in KNOB_SETTINGS.items()}
