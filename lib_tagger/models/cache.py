"""The one cache policy for loaded models: one lock, one model at a time, closed when replaced or unloaded."""

from __future__ import annotations

import gc
import logging
import sys
import threading
from collections.abc import Callable, Hashable
from typing import Any

from lib_tagger.memory import return_freed_memory

log = logging.getLogger(__name__)


class ModelCache:
    """Holds at most one loaded model (anything with ``close()``) under a key.

    ``get(key, load)`` returns the cached model for ``key`` or closes the one held and calls ``load()``.
    ``before_load`` runs before each load (the WebUI frees VRAM there). The lock is re-entrant, so a
    caller may hold :attr:`lock` across a ``get`` and its use.
    """

    def __init__(self, before_load: Callable[[], None] | None = None) -> None:
        self.lock = threading.RLock()
        self.before_load = before_load
        self._key: Hashable | None = None
        self._label = ""
        self._model: Any = None

    def get(self, key: Hashable, load: Callable[[], Any], label: str = "") -> Any:
        with self.lock:
            if self._model is not None and self._key == key and getattr(self._model, "loaded", True):
                return self._model
            self.unload()
            if self.before_load is not None:
                self.before_load()
            model = load()
            self._key, self._label, self._model = key, label or str(key), model
            return model

    def loaded_labels(self) -> list[str]:
        with self.lock:
            return [self._label] if self._model is not None else []

    def unload(self) -> bool:
        """Close the held model and hand its memory back; True when one was held."""
        with self.lock:
            model, self._model, self._key = self._model, None, None
            if model is None:
                return False
            try:
                model.close()
            except Exception as exc:  # closing must never raise into a generation or a request
                log.warning("tagger: closing %s failed: %s", self._label, exc)
            del model
            gc.collect()
            empty_cuda_cache()
            return_freed_memory()
            return True


def empty_cuda_cache() -> None:
    torch = sys.modules.get("torch")  # never import torch just to free memory
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
