"""Where an interrogator is loaded: a known name, a hub repo id or a folder → files on disk → model; one cached.

A known name (``joytag``, ``wd-vit-tagger-v3``, ...) or its hub repo is fetched into ``models_dir``
(``owner--name``) on first use. A folder is used as it is: ``top_tags.txt`` makes it JoyTag,
``selected_tags.csv`` a WD v3 tagger. Another hub repo is told apart by its ``config.json``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib_tagger.interrogate.base import Interrogator, Prediction
from lib_tagger.interrogate.specs import (
    DEFAULT_INTERROGATOR,
    FAMILY_FILES,
    FAMILY_JOYTAG,
    FAMILY_WD,
    INTERROGATORS,
    family_of_folder_files,
    find_spec,
)
from lib_tagger.models.cache import ModelCache
from lib_tagger.models.files import ModelFilesMissing, fetch_files, read_json

log = logging.getLogger(__name__)
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class InterrogatorSource:
    """Everything needed to load an interrogator anywhere (a worker process builds its own from this)."""

    model: str = DEFAULT_INTERROGATOR
    models_dir: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    precision: str = "fp32"  # on a CPU: fp32, int8 or bf16 (lib_tagger.torch_precision)

    def load(self) -> Interrogator:
        family, folder, name = locate(self.model, self.models_dir)
        if family == FAMILY_JOYTAG:
            from lib_tagger.interrogate.joytag.loader import JoyTagger

            loaded: Any = JoyTagger.load(folder, self.device, self.dtype, name=name, precision=self.precision)
        else:
            from lib_tagger.interrogate.wd import WDTagger

            loaded = WDTagger.load(folder, self.device, self.dtype, name=name, precision=self.precision)
        if getattr(loaded, "notice", ""):
            log.warning("tagger: %s: %s", name, loaded.notice)
        return loaded


def locate(model: str, models_dir: str | os.PathLike | None = None) -> tuple[str, Path, str]:
    """``(family, folder with the files, display name)`` for ``model``; downloads missing files of hub repos.

    Unknown names raise :class:`KeyError`; missing files :class:`ModelFilesMissing` naming them and the
    folder to put them in.
    """
    model = (model or "").strip() or DEFAULT_INTERROGATOR
    spec = find_spec(model)
    if spec is not None:
        return spec.family, fetch_files(spec.repo, spec.files, models_dir), spec.name
    path = Path(model).expanduser()
    if path.is_dir():
        present = {child.name for child in path.iterdir()}
        family = family_of_folder_files(present)
        if family is None and "config.json" in present:
            family = _family_of_config(read_json(path / "config.json"))
        if family is None:
            raise ModelFilesMissing(f"folder {path} holds neither top_tags.txt (JoyTag) nor selected_tags.csv "
                                    "(WD v3 tagger)")
        missing = [name for name in FAMILY_FILES[family] if name not in present]
        if missing:
            raise ModelFilesMissing(f"folder {path} lacks {', '.join(missing)}")
        return family, path, path.name
    if _looks_like_path(model):
        raise ModelFilesMissing(f"interrogator folder {path} does not exist")
    if not _REPO_ID.match(model):
        raise KeyError(f"unknown interrogator {model!r}: not one of {', '.join(INTERROGATORS)}, a folder, "
                       "or a hub repo id (owner/name)")
    family = _family_of_config(read_json(fetch_files(model, ("config.json",), models_dir) / "config.json"))
    if family is None:
        raise KeyError(f"hub repo {model}: its config.json is neither JoyTag's nor a timm model's")
    return family, fetch_files(model, FAMILY_FILES[family], models_dir), model


def _family_of_config(config: dict) -> str | None:
    """JoyTag's config says ``"class": "ViT"``; a timm model's names its ``architecture``."""
    return FAMILY_JOYTAG if config.get("class") == "ViT" else FAMILY_WD if "architecture" in config else None


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", ".", "~")) or "\\" in model or ":" in model or model.count("/") > 1


def load_interrogator(model: str = DEFAULT_INTERROGATOR, models_dir: str | os.PathLike | None = None,
                      device: str = "auto", dtype: str = "auto", precision: str = "fp32") -> Interrogator:
    """Load ``model`` (see :func:`locate`) onto ``device``."""
    folder = str(models_dir) if models_dir is not None else None
    return InterrogatorSource(model, folder, device, dtype, precision).load()


_cache = ModelCache()


def get_interrogator(model: str = DEFAULT_INTERROGATOR, models_dir: str | os.PathLike | None = None,
                     device: str = "auto", dtype: str = "auto", precision: str = "fp32") -> Interrogator:
    """The cached interrogator for these arguments, loading it (and closing another) when needed."""
    source = InterrogatorSource((model or "").strip() or DEFAULT_INTERROGATOR,
                                str(models_dir) if models_dir is not None else None, device, dtype, precision)
    return _cache.get(source, source.load, label=source.model)


def unload_interrogator() -> bool:
    """Free the cached interrogator; True when one was loaded."""
    return _cache.unload()


def loaded_interrogators() -> list[str]:
    return _cache.loaded_labels()


def predict_images(interrogator: Any, images: Sequence, batch_size: int = 8) -> list[Prediction]:
    """Predictions for PIL images, computed ``batch_size`` images at a time."""
    import torch

    step = max(1, batch_size)
    results: list[Prediction] = []
    for start in range(0, len(images), step):
        chunk = images[start : start + step]
        results.extend(interrogator.predict(torch.stack([interrogator.preprocess(image) for image in chunk])))
    return results

