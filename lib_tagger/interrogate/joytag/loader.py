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

    def __init__(self, model, tags: list[str], device, dtype, name: str = "joytag", prepared=None):
        self.model = model
        self.labels = Labels(tuple(tags), tuple(tag_category(tag) for tag in tags))
        self.device = device
        self.dtype = dtype
        self.name = name
        #: On a CPU, the precision the model runs in (lib_tagger.torch_precision), and why it is not the
        #: one asked for ("" when it is).
        self.precision = prepared.precision if prepared is not None else "fp32"
        self.notice = prepared.notice if prepared is not None else ""
        self._autocast = prepared.autocast if prepared is not None else None
        self.image_size = model.config.image_size
        self._lock = threading.Lock()

    @classmethod
    def load(cls, folder: str | os.PathLike, device: str = "auto", dtype: str = "auto",
             name: str = "", precision: str = "fp32") -> JoyTagger:
        """Load from a folder holding JoyTag's released files. ``precision`` (CPU): fp32, int8 or bf16
        (:mod:`lib_tagger.torch_precision`; fp32 with a notice where it cannot run); a GPU runs in ``dtype``."""
        from lib_tagger.devices import pick_device, pick_dtype
        from lib_tagger.interrogate.joytag.model import load_joytag_model

        folder = Path(folder)
        config = JoyTagConfig.from_file(folder / "config.json")
        tags = read_tags(folder / "top_tags.txt", config.n_tags)
        torch_device = pick_device(device)
        model = load_joytag_model(config, folder / "model.safetensors", torch_device)
        from lib_tagger.torch_precision import prepare_on_cpu

        prepared = prepare_on_cpu(model, precision, torch_device)
        return cls(model, tags, torch_device, pick_dtype(torch_device, dtype), name or folder.name, prepared)

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
            autocast = self._autocast() if self._autocast else autocast_context(self.device, self.dtype)
            with torch.inference_mode(), autocast:
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

