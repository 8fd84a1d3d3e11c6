"""Where tag models are loaded: locate or download the files, build the backend, cache it.

Loaded models are cached by (model, backend, device, dtype, precision) in a :class:`~lib_tagger.models.cache.ModelCache`
(the same policy interrogators use: one lock, one model at a time), so concurrent requests (UI, API,
batch images) share one copy. ``keep_loaded=False`` unloads after each use.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..generate.base import Generator, ModelLoadError
from .cache import ModelCache
from .files import fetch_files
from .resolve import ModelSource, llama_cpp_available, require_llama_cpp, required_files, resolve_model

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A ready generator and what it was loaded from."""

    source: ModelSource
    generator: Generator
    seconds: float

    def close(self) -> None:
        self.generator.close()


class ModelManager:
    """Loads tag models on demand and keeps (or frees) them."""

    def __init__(
        self,
        models_dir: str | None = None,
        device: str = "auto",
        gpu_offload: bool = True,
        keep_loaded: bool = True,
        backend: str = "auto",
        quant: str = "q8_0",
        dtype: str = "auto",
    ) -> None:
        self._cache = ModelCache()
        self._lock = self._cache.lock
        self.models_dir = models_dir
        self.device = device
        self.gpu_offload = gpu_offload
        self.keep_loaded = keep_loaded
        self.backend = backend
        self.quant = quant
        self.dtype = dtype
        #: Called before a model is loaded with the bytes it will put on the GPU (0: none); the WebUI
        #: makes room there.
        self.before_load = None

    def configure(self, **options) -> None:
        """Update options (same keywords as the constructor); a changed device/backend unloads."""
        with self._lock:
            unknown = set(options) - {"models_dir", "device", "gpu_offload", "keep_loaded", "backend",
                                      "quant", "dtype", "before_load"}
            if unknown:
                raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
            reload_keys = ("device", "gpu_offload", "backend", "quant", "dtype", "models_dir")
            if any(key in options and options[key] != getattr(self, key) for key in reload_keys):
                self.unload()
            for key, value in options.items():
                setattr(self, key, value)

    def resolve(self, model: str, prompt_format: str | None = None) -> ModelSource:
        """How ``model`` would be loaded with the current options (no files touched)."""
        return resolve_model(model, backend=self.backend, quant=self.quant, prompt_format=prompt_format,
                             models_dir=self.models_dir)

    @contextmanager
    def use(self, model: str, prompt_format: str | None = None, precision: str = "auto") -> Iterator[LoadedModel]:
        """Load (or reuse) ``model`` for the duration of the block; unloads afterwards unless kept.

        ``precision`` (auto, fp32, int8, q8_0: see :data:`lib_tagger.settings.PRECISIONS`) decides the
        weights of a torch model (q8_0: converted once to a Q8_0 GGUF and run by llama.cpp; torch's 8 bits
        with a notice where that cannot be); a GGUF model runs in its file's quantisation.
        """
        with self._lock:
            loaded = self._get(model, prompt_format, precision)
            try:
                yield loaded
            finally:
                if not self.keep_loaded:
                    self.unload()

    def loaded_names(self) -> list[str]:
        return self._cache.loaded_labels()

    def unload(self) -> None:
        """Free every loaded model (RAM and VRAM)."""
        self._cache.unload()

    # ------------------------------------------------------------------ internals
    def _get(self, model: str, prompt_format: str | None, precision: str = "auto") -> LoadedModel:
        source = self.resolve(model, prompt_format)
        if source.backend == "llama-cpp":
            precision = "auto"  # the file's quantisation: one load serves every request
        key = (source.label, source.backend, source.filename, self.device, self.dtype, self.gpu_offload, precision)

        def load() -> LoadedModel:
            started = time.perf_counter()
            path = self._files(source)
            if self.before_load is not None:
                self.before_load(self._gpu_bytes(source, path))
            generator = self._load(source, path, precision)
            loaded = LoadedModel(source, generator, time.perf_counter() - started)
            log.info("tagger: loaded %s (%s%s) in %.2fs", source.label, source.backend,
                     f", {generator.precision}" if getattr(generator, "precision", "") else "", loaded.seconds)
            if getattr(generator, "notice", ""):
                log.warning("tagger: %s: %s", source.label, generator.notice)
            return loaded

        return self._cache.get(key, load, label=source.label)
    def _files(self, source: ModelSource) -> Path:
        """The model's file or folder on disk, downloaded first when needed."""
        require_llama_cpp(source)  # before any download
        if source.note:
            log.warning("tagger: %s", source.note)
        if source.path is not None:
            return source.path
        required, optional = required_files(source)
        assert source.repo is not None
        folder = fetch_files(source.repo, required, self.models_dir, optional=optional)
        return folder / source.filename if source.filename else folder

    def _gpu_bytes(self, source: ModelSource, path: Path) -> int:
        """About how many bytes of weights the model may put on a GPU: its file size; 0 when it stays on the
        CPU ("auto" counts as a GPU: the host knows whether it has one)."""
        if self.device == "cpu" or (source.backend == "llama-cpp" and not self.gpu_offload):
            return 0
        weights = path if path.is_file() else path / "model.safetensors"
        try:
            return weights.stat().st_size
        except OSError:
            return 0

    def _load(self, source: ModelSource, path: Path, precision: str = "auto") -> Generator:
        from ..tags import get_tag_db

        candidates = get_tag_db().names()  # wildcard and regex bans expand against known tags
        if source.backend == "llama-cpp":
            from ..generate.llama_cpp_backend import LlamaCppGenerator

            return LlamaCppGenerator.load(path, n_gpu_layers=self._gpu_layers(), ban_candidates=candidates)
        from ..generate.torch_backend import TorchGenerator

        problem = ""
        if precision == "q8_0":
            try:
                return self._load_q8_0(path, candidates)
            except ModelLoadError as exc:  # run in torch's 8 bits instead, and say why
                problem = str(exc)
        generator = TorchGenerator.from_pretrained(path, device=self.device, dtype=self.dtype,
                                                   precision="int8" if problem else precision,
                                                   ban_candidates=candidates)
        if problem:
            generator.notice = f"q8_0 was asked for, but {problem}: running in {generator.precision}"
        return generator

    def _load_q8_0(self, folder: Path, candidates) -> Generator:
        """``folder``'s checkpoint converted once to a Q8_0 GGUF beside it, in llama.cpp with our tokenizer."""
        from ..generate.gguf_convert import q8_0_file
        from ..generate.llama_cpp_backend import LlamaCppGenerator
        from ..generate.tokenizer import load_tokenizer

        if not llama_cpp_available():  # before converting for nothing
            raise ModelLoadError("llama-cpp-python is not installed")
        tokenizer = load_tokenizer(folder)
        generator = LlamaCppGenerator.load(q8_0_file(folder), n_gpu_layers=self._gpu_layers(), name=folder.name,
                                           ban_candidates=candidates, tokenizer=tokenizer)
        generator.precision = "q8_0"
        return generator

    def _gpu_layers(self) -> int:
        if self.device == "cpu" or not self.gpu_offload:
            return 0
        return -1


_manager: ModelManager | None = None
_manager_lock = threading.Lock()


def get_manager() -> ModelManager:
    """The process-wide model manager."""
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = ModelManager()
        return _manager
