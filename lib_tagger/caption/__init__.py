"""Batch captioning of image folders: plan (find, skip) → engine (predictions) → sink (files).

Names are re-exported lazily: importing this package does not import torch.
"""

from __future__ import annotations

from lib_tagger.lazy import lazy_exports

_EXPORTS = {
    "caption_folder": "run",
    "CaptionReport": "sink",
    "FORMATS": "sink",
    "find_images": "plan",
    "EXISTING_MODES": "plan",
    "LocalEngine": "engine",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
