"""Load JoyTag from the hub or a folder, tag PIL images in batches, and keep one loaded copy cached."""

from __future__ import annotations

import gc
import logging
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path

from lib_tagger.joytag.config import JoyTagConfig, read_tags
from lib_tagger.joytag.postprocess import JoyTagOptions, format_tags, select_tags
from lib_tagger.models.files import ModelFilesMissing, fetch_files

DEFAULT_SOURCE = "fancyfeast/joytag"
MODEL_FILES = ("config.json", "model.safetensors", "top_tags.txt")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
log = logging.getLogger(__name__)


def resolve_model_folder(source: str, models_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding JoyTag's files: ``source`` itself when it is a folder, else a hub download."""
    path = Path(source).expanduser()
    if path.is_dir():
        missing = [name for name in MODEL_FILES if not (path / name).is_file()]
        if missing:
            raise ModelFilesMissing(f"JoyTag folder {path} lacks {', '.join(missing)}")
        return path
    if not _REPO_ID.match(source):
        raise ModelFilesMissing(f"JoyTag model {source!r} is neither a folder nor a hub repo id (owner/name)")
    return fetch_files(source, MODEL_FILES, models_dir)


class JoyTagger:
    """A loaded JoyTag model with its tag list. Use :meth:`load`; :meth:`close` frees its memory."""

    def __init__(self, model, tags: list[str], device, dtype, source: str = "", prepared=None):
        self.model = model
        self.tags = tags
        self.device = device
        self.dtype = dtype
        self.source = source
        #: On a CPU, the faster precision the model runs in (see lib_tagger.torch_precision), and
        #: why it is not the one asked for ("" when it is).
        self.precision = prepared.precision if prepared is not None else "fp32"
        self.notice = prepared.notice if prepared is not None else ""
        self._autocast = prepared.autocast if prepared is not None else None
        self.image_size = model.config.image_size
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        source: str = DEFAULT_SOURCE,
        models_dir: str | os.PathLike | None = None,
        device: str = "auto",
        dtype: str = "auto",
        precision: str = "fp32",
    ) -> JoyTagger:
        """Load from a hub repo id (downloaded on first use) or a local folder with the released files.

        ``precision`` (CPU): fp32, int8 or bf16 (:mod:`lib_tagger.torch_precision`; falls back to
        fp32 with a notice where it cannot run). A GPU runs in ``dtype`` whatever it says.
        """
        from lib_tagger.devices import pick_device, pick_dtype
        from lib_tagger.joytag.model import load_joytag_model

        folder = resolve_model_folder(source, models_dir)
        config = JoyTagConfig.from_file(folder / "config.json")
        tags = read_tags(folder / "top_tags.txt", config.n_tags)
        torch_device = pick_device(device)
        model = load_joytag_model(config, folder / "model.safetensors").to(torch_device)
        prepared = None
        if torch_device.type == "cpu":
            from lib_tagger.torch_precision import prepare

            prepared = prepare(model, precision, torch_device)
        return cls(model, tags, torch_device, pick_dtype(torch_device, dtype), source, prepared)

    @property
    def loaded(self) -> bool:
        """False once :meth:`close` ran."""
        return self.model is not None

    def predict(self, pixels) -> list[dict[str, float]]:
        """Scores (sigmoid) of every tag for a pre-processed batch tensor (B, 3, S, S)."""
        import torch

        from lib_tagger.joytag.model import autocast_context

        with self._lock:
            if self.model is None:
                raise RuntimeError("this JoyTagger was closed; load it again")
            autocast = self._autocast() if self._autocast else autocast_context(self.device, self.dtype)
            with torch.inference_mode(), autocast:
                logits = self.model(pixels.to(self.device, non_blocking=True))
            probabilities = torch.sigmoid(logits.float()).cpu().tolist()
        return [dict(zip(self.tags, row)) for row in probabilities]

    def tag_images(self, images: Sequence, batch_size: int = 8) -> list[dict[str, float]]:
        """Scores of all tags for each PIL image, computed ``batch_size`` images at a time."""
        import torch

        from lib_tagger.joytag.preprocess import preprocess

        results: list[dict[str, float]] = []
        for start in range(0, len(images), max(1, batch_size)):
            chunk = images[start : start + max(1, batch_size)]
            results.extend(self.predict(torch.stack([preprocess(image, self.image_size) for image in chunk])))
        return results

    def interrogate(self, image, options: JoyTagOptions | None = None) -> str:
        """The prompt text for one PIL image under ``options`` (defaults when None)."""
        options = options or JoyTagOptions()
        return format_tags(select_tags(self.tag_images([image])[0], options), options)

    def close(self) -> None:
        """Drop the weights and release RAM / VRAM."""
        with self._lock:
            model, self.model = self.model, None
            if model is None:
                return
            on_cuda = self.device.type == "cuda"
            del model
        gc.collect()
        if on_cuda:
            import torch

            torch.cuda.empty_cache()


_cache_lock = threading.Lock()
_cached: tuple[tuple, JoyTagger] | None = None


def get_joytagger(
    source: str = DEFAULT_SOURCE,
    models_dir: str | os.PathLike | None = None,
    device: str = "auto",
    precision: str = "fp32",
) -> JoyTagger:
    """The cached tagger for these arguments, loading it (and unloading another) when needed."""
    global _cached
    key = (source, str(models_dir) if models_dir is not None else None, device, precision)
    with _cache_lock:
        if _cached is not None and _cached[0] == key and _cached[1].loaded:
            return _cached[1]
        if _cached is not None:
            _cached[1].close()
            _cached = None
        tagger = JoyTagger.load(source, models_dir, device, precision=precision)
        if tagger.notice:
            log.warning("tagger: JoyTag: %s", tagger.notice)
        _cached = (key, tagger)
        return tagger


def unload_joytagger() -> bool:
    """Free the cached tagger; True when one was loaded."""
    global _cached
    with _cache_lock:
        if _cached is None:
            return False
        _cached[1].close()
        _cached = None
        return True
