"""X/Y/Z plot axes: model, length, temperature, TIPO task and caption length, as per-cell overrides on ``p``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lib_tagger.models.registry import model_names
from lib_tagger.settings import LENGTHS, TASKS

from . import host

AXIS_LABELS = ("[Tagger] Model", "[Tagger] Length", "[Tagger] Temperature", "[Tagger] Task",
               "[Tagger] Caption length")


def _setter(name: str) -> Callable[[Any, Any, Any], None]:
    def apply(p: Any, value: Any, values: Any) -> None:
        from .script import OVERRIDES_ATTR

        # a new dict: the plot shallow-copies p for every cell
        setattr(p, OVERRIDES_ATTR, {**(getattr(p, OVERRIDES_ATTR, None) or {}), name: value})

    return apply


def register_axes() -> bool:
    """Add our axes to the X/Y/Z plot script when it is loaded; True when they are there."""
    xyz = host.xyz_grid_module()
    if xyz is None:
        return False
    if any(getattr(option, "label", None) in AXIS_LABELS for option in xyz.axis_options):
        return True
    xyz.axis_options.extend([
        xyz.AxisOption(AXIS_LABELS[0], str, _setter("model"), choices=model_names),
        xyz.AxisOption(AXIS_LABELS[1], str, _setter("length"), choices=lambda: list(LENGTHS)),
        xyz.AxisOption(AXIS_LABELS[2], float, _setter("temperature")),
        xyz.AxisOption(AXIS_LABELS[3], str, _setter("task"), choices=lambda: list(TASKS)),
        xyz.AxisOption(AXIS_LABELS[4], str, _setter("nl_length"), choices=lambda: list(LENGTHS)),
    ])
    return True
