"""Image interrogation: JoyTag and WD v3 taggers behind one protocol, one cache, one set of options.

Names are re-exported lazily: importing this package does not import torch.
"""

from __future__ import annotations

from lib_tagger.lazy import lazy_exports

_EXPORTS = {
    "Interrogator": "base",
    "InterrogatorError": "base",
    "Labels": "base",
    "Prediction": "base",
    "INTERROGATORS": "specs",
    "DEFAULT_INTERROGATOR": "specs",
    "InterrogatorSource": "loading",
    "get_interrogator": "loading",
    "load_interrogator": "loading",
    "unload_interrogator": "loading",
    "TagOptions": "postprocess",
    "OptionsError": "postprocess",
    "DEFAULT_EXCLUDE": "postprocess",
    "select_tags": "postprocess",
    "format_tags": "postprocess",
    "describe": "postprocess",
    "split_tag_list": "postprocess",
    "ImageLoadError": "images",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
