"""JoyTag image interrogation: model, pre/post-processing, batch captioning.

Names are re-exported lazily: importing this package does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "JoyTagger": "loader",
    "get_joytagger": "loader",
    "unload_joytagger": "loader",
    "DEFAULT_SOURCE": "loader",
    "JoyTagOptions": "postprocess",
    "OptionsError": "postprocess",
    "DEFAULT_EXCLUDE": "postprocess",
    "select_tags": "postprocess",
    "format_tags": "postprocess",
    "split_tag_list": "postprocess",
    "caption_folder": "caption",
    "CaptionReport": "caption",
    "find_images": "caption",
    "JoyTagModelError": "config",
    "ImageLoadError": "preprocess",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
