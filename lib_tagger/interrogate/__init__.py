"""JoyTag image interrogation: model, pre/post-processing, batch captioning.

Names are re-exported lazily: importing this package does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "JoyTagger": "joytag.loader",
    "get_joytagger": "joytag.loader",
    "unload_joytagger": "joytag.loader",
    "DEFAULT_SOURCE": "joytag.loader",
    "JoyTagOptions": "postprocess",
    "OptionsError": "postprocess",
    "DEFAULT_EXCLUDE": "postprocess",
    "select_tags": "postprocess",
    "format_tags": "postprocess",
    "split_tag_list": "postprocess",
    "caption_folder": "lib_tagger.caption.engine",
    "CaptionReport": "lib_tagger.caption.engine",
    "find_images": "lib_tagger.caption.engine",
    "JoyTagModelError": "joytag.config",
    "ImageLoadError": "images",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    path = module if module.startswith("lib_tagger.") else f"{__name__}.{module}"
    value = getattr(importlib.import_module(path), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
