"""A loaded JoyTag model with its tag list (the Interrogator protocol); categories from our tag data."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from lib_tagger.interrogate.base import Labels, Prediction, split_predictions
from lib_tagger.interrogate.joytag.config import JoyTagConfig, read_tags

_CATEGORY_CODES = {0: "general", 1: "artist", 3: "copyright", 4: "character", 5: "meta"}


def tag_category(tag: str) -> str | None:
    """The Danbooru category of a model tag ("general", "character", ...) from our tag data, or None."""
    from lib_tagger.tags import get_tag_db

    info = get_tag_db().lookup(tag.replace("_", " "))
    if info is None:
        return None
    category = info.category
    return _CATEGORY_CODES.get(category) if isinstance(category, int) else category


class JoyTagger:
    """A loaded JoyTag model. Use :meth:`load`; :meth:`close` frees its memory."""

    def __init__(self, model, tags: list[str], device, dtype, name: str = "joytag"):
        self.model = model
        self.labels = Labels(tuple(tags), tuple(tag_category(tag) for tag in tags))
        self.device = device
        self.dtype = dtype
        self.name = name
        self.image_size = model.config.image_size
        self._lock = threading.Lock()

    @classmethod
    def load(cls, folder: str | os.PathLike, device: str = "auto", dtype: str = "auto",
             name: str = "") -> JoyTagger:
        """Load from a folder holding JoyTag's released files."""
        from lib_tagger.devices import pick_device, pick_dtype
        from lib_tagger.interrogate.joytag.model import load_joytag_model

        folder = Path(folder)
        config = JoyTagConfig.from_file(folder / "config.json")
        tags = read_tags(folder / "top_tags.txt", config.n_tags)
        torch_device = pick_device(device)
        model = load_joytag_model(config, folder / "model.safetensors", torch_device)
        return cls(model, tags, torch_device, pick_dtype(torch_device, dtype), name or folder.name)

    @property
    def loaded(self) -> bool:
        """False once :meth:`close` ran."""
        return self.model is not None

    def preprocess(self, image):
        from lib_tagger.interrogate.images import preprocess

        return preprocess(image, self.image_size)

    def predict(self, pixels) -> list[Prediction]:
        """Scores (sigmoid) of every tag for a pre-processed batch tensor (B, 3, S, S)."""
        import torch

        from lib_tagger.devices import autocast_context

        with self._lock:
            if self.model is None:
                raise RuntimeError("this JoyTagger was closed; load it again")
            with torch.inference_mode(), autocast_context(self.device, self.dtype):
                logits = self.model(pixels.to(self.device, non_blocking=True))
            probabilities = torch.sigmoid(logits.float()).cpu().tolist()
        return split_predictions(probabilities, self.labels)

    def close(self) -> None:
        """Drop the weights and release RAM / VRAM."""
        with self._lock:
            model, self.model = self.model, None
        if model is not None:
            from lib_tagger.devices import release

            release(model, self.device)

