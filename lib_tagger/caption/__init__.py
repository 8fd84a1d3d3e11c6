"""Batch captioning of image folders: plan (find, skip) → engine (predictions) → sink (files).

Names are re-exported lazily: importing this package does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "caption_folder": "run",
    "CaptionReport": "sink",
    "FORMATS": "sink",
    "find_images": "plan",
    "EXISTING_MODES": "plan",
    "LocalEngine": "engine",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
