"""The interrogation service the 🏷️ button, the batch caption panel and the HTTP API share: settings read
at each use, the host's queue lock and VRAM hook, one cached interrogator (JoyTag or a WD v3 tagger).

No gradio here: :mod:`tagger_webui.joytag_ui` builds the UI on top and :mod:`tagger_webui.joytag_api`
the routes. The option keys are built from :class:`~lib_tagger.interrogate.postprocess.TagOptions`, so
the settings page, the API and the command line cannot drift apart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from lib_tagger.errors import UserError
from lib_tagger.interrogate.postprocess import TagOptions
from lib_tagger.interrogate.specs import DEFAULT_INTERROGATOR, INTERROGATORS, find_spec

log = logging.getLogger(__name__)

PROMPT_MODES = ("replace", "append")
#: The option keys keep their first name (``tagger_joytag_*``) so existing WebUI settings carry over;
#: ``tagger_joytag_model`` is the interrogator, JoyTag or a WD v3 tagger.
OPTION_PREFIX = "tagger_joytag_"
#: Service settings (not tag options) and their defaults.
SERVICE_DEFAULTS: dict[str, Any] = {
    "model": DEFAULT_INTERROGATOR,
    "device": "auto",
    "precision": "fp32",
    "keep_loaded": True,
    "prompt_mode": "replace",
}
#: Read by the batch panel only.
BATCH_DEFAULTS: dict[str, Any] = {"batch_size": 8}


def _setting_default(value: Any) -> Any:
    """A TagOptions default as the WebUI stores it: tag lists as text, category pairs as ``a=0.5`` text."""
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        return ", ".join(f"{name}={number}" for name, number in value)
    if isinstance(value, tuple):
        return ", ".join(value)
    return value


def _option_defaults() -> dict[str, Any]:
    defaults = {f"{OPTION_PREFIX}{name}": value for name, value in SERVICE_DEFAULTS.items()}
    options = TagOptions()
    for item in fields(TagOptions):
        value = getattr(options, item.name)
        defaults[f"{OPTION_PREFIX}{item.name}"] = list(value) if item.name == "mcut" else _setting_default(value)
    defaults.update({f"{OPTION_PREFIX}{name}": value for name, value in BATCH_DEFAULTS.items()})
    return defaults


#: WebUI option keys interrogation reads (the settings page registers them) and their defaults.
OPTION_DEFAULTS: dict[str, Any] = _option_defaults()


class InterrogateUiError(UserError, ValueError):
    """A user-facing problem (no image, bad setting); the message says what to do."""


def _check_precision(precision: str) -> None:
    from lib_tagger.devices import VISION_PRECISIONS

    if precision not in VISION_PRECISIONS:
        choices = ", ".join(VISION_PRECISIONS)
        raise InterrogateUiError(f"{OPTION_PREFIX}precision: must be one of {choices}, got {precision!r}")


def _check_prompt_mode(mode: str) -> None:
    if mode not in PROMPT_MODES:
        choices = ", ".join(PROMPT_MODES)
        raise InterrogateUiError(f"{OPTION_PREFIX}prompt_mode: must be one of {choices}, got {mode!r}")


@dataclass(frozen=True)
class InterrogateSettings:
    """What the WebUI settings decide for interrogation, read at each use."""

    model: str = DEFAULT_INTERROGATOR
    models_dir: str | None = None
    device: str = "auto"
    keep_loaded: bool = True
    prompt_mode: str = "replace"
    batch_size: int = 8
    options: TagOptions = field(default_factory=TagOptions)
    precision: str = "fp32"  # on a CPU: fp32, int8 or bf16 (lib_tagger.torch_precision)

    def __post_init__(self) -> None:
        _check_prompt_mode(self.prompt_mode)
        _check_precision(self.precision)
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise InterrogateUiError(f"{OPTION_PREFIX}batch_size: must be an integer >= 1, got {self.batch_size!r}")

    @property
    def model_label(self) -> str:
        """The interrogator's name as the UI shows it."""
        return display_model(self.model)


def display_model(model: str) -> str:
    """``wd-vit-tagger-v3`` for a known name or repo, a folder's name for a folder, else the repo id."""
    model = (model or "").strip() or DEFAULT_INTERROGATOR
    spec = find_spec(model)
    if spec is not None:
        return spec.name
    return Path(model).name if model.count("/") != 1 or model.startswith(("/", ".", "~")) else model


def settings_from_options(get: Callable[[str, Any], Any], models_dir: str | None = None) -> InterrogateSettings:
    """Build :class:`InterrogateSettings` from WebUI options; ``get(key, default)`` reads one option."""

    def value(name: str) -> Any:
        key = f"{OPTION_PREFIX}{name}"
        return get(key, OPTION_DEFAULTS[key])

    converters: dict[str, Callable[[Any], Any]] = {"threshold": float, "top_k": int}
    values = {}
    for item in fields(TagOptions):
        raw = value(item.name)
        convert = converters.get(item.name, bool if isinstance(item.default, bool) else None)
        values[item.name] = convert(raw) if convert is not None else raw
    options = TagOptions(**values)
    return InterrogateSettings(
        model=str(value("model") or "").strip() or DEFAULT_INTERROGATOR,
        models_dir=models_dir,
        device=value("device"),
        keep_loaded=bool(value("keep_loaded")),
        prompt_mode=value("prompt_mode"),
        batch_size=int(value("batch_size")),
        options=options,
        precision=str(value("precision")),
    )


def _no_op() -> None:
    return None


def _quiet_progress(done: int, total: int, path: Path) -> None:
    log.debug("tagger caption %d/%d: %s", done, total, path)


class InterrogateService:
    """Runs interrogation for the button, the batch panel and the API.

    Each run holds ``gpu_lock()`` (a context manager factory: the host's queue lock, default a private
    lock), calls ``free_memory`` (the host frees VRAM) first, and unloads the interrogator afterwards
    unless the settings keep it loaded.
    """

    def __init__(
        self,
        settings: Callable[[], InterrogateSettings] = InterrogateSettings,
        free_memory: Callable[[], None] | None = None,
        gpu_lock: Callable[[], AbstractContextManager] | None = None,
    ) -> None:
        self._settings = settings
        self._free_memory = free_memory or _no_op
        private = threading.Lock()
        self._gpu_lock = gpu_lock or (lambda: private)

    def settings(self) -> InterrogateSettings:
        """The current settings (re-read on every call)."""
        return self._settings()

    @contextmanager
    def _interrogator(self, settings: InterrogateSettings, model: str | None) -> Iterator[Any]:
        from lib_tagger.interrogate.loading import get_interrogator, unload_interrogator

        with self._gpu_lock():
            self._free_memory()
            try:
                yield get_interrogator(model or settings.model, settings.models_dir, settings.device,
                                       precision=settings.precision)
            finally:
                if not settings.keep_loaded:
                    unload_interrogator()

    def tag(self, image: Any, options: TagOptions | None = None, model: str | None = None,
            precision: str | None = None) -> Any:
        """The :class:`~lib_tagger.interrogate.postprocess.TagResult` of one PIL image.

        ``options`` default to the settings'; ``model`` (a name, repo or folder) to the settings' interrogator;
        ``precision`` (on a CPU) to the settings'.
        """
        from lib_tagger.interrogate.loading import predict_images
        from lib_tagger.interrogate.postprocess import describe

        settings = self.settings()
        if precision is not None:
            settings = replace(settings, precision=precision)
        with self._interrogator(settings, model) as interrogator:
            prediction = predict_images(interrogator, [image], batch_size=1)[0]
        return describe(prediction, options or settings.options)

    def caption(
        self,
        folder: str | Path,
        *,
        recursive: bool = False,
        existing: str = "skip",
        threshold: float | None = None,
        progress: Callable[[int, int, Path], None] | None = None,
        model: str | None = None,
        output_format: str = "txt",
    ) -> Any:
        """Caption every image in ``folder``; returns the core's ``CaptionReport``."""
        from lib_tagger.caption.run import caption_folder

        settings = self.settings()
        options = settings.options if threshold is None else replace(settings.options, threshold=threshold)
        folder = Path(folder).expanduser()
        if not folder.is_dir():  # checked before the model loads, so a typo costs nothing
            raise InterrogateUiError(f"Folder {folder} does not exist or is not a folder")
        with self._interrogator(settings, model) as interrogator:
            return caption_folder(folder, options, interrogator, recursive=recursive, existing=existing,
                                  batch_size=settings.batch_size, progress=progress or _quiet_progress,
                                  output_format=output_format)

    def interrogators(self) -> list[dict[str, Any]]:
        """The known interrogators, which one the settings choose, and which is loaded."""
        from lib_tagger.interrogate.loading import loaded_interrogators

        selected = self.settings().model_label
        loaded = {display_model(label) for label in loaded_interrogators()}
        rows = [{"name": spec.name, "repo": spec.repo, "family": spec.family, "architecture": spec.architecture,
                 "description": spec.description, "selected": spec.name == selected, "loaded": spec.name in loaded}
                for spec in INTERROGATORS.values()]
        if selected not in INTERROGATORS:  # a folder or another hub repo chosen in the settings
            rows.append({"name": selected, "repo": "", "family": "", "architecture": "", "description": "",
                         "selected": True, "loaded": selected in loaded})
        return rows

    def unload(self) -> list[str]:
        """Free the interrogator and every loaded tag model; returns what was loaded. Waits for a running
        interrogation (the same lock), so that it never closes a model under it."""
        from lib_tagger.interrogate.loading import loaded_interrogators, unload_interrogator
        from lib_tagger.models.manager import get_manager

        with self._gpu_lock():
            unloaded = [display_model(label) for label in loaded_interrogators()]
            unload_interrogator()
            manager = get_manager()
            unloaded += manager.loaded_names()
            manager.unload()
        return unloaded


_service = InterrogateService()


def configure(
    options: Callable[[str, Any], Any] | None = None,
    *,
    models_dir: str | Callable[[], str | None] | None = None,
    free_memory: Callable[[], None] | None = None,
    gpu_lock: Callable[[], AbstractContextManager] | None = None,
    device: Callable[[str], str] | None = None,
) -> InterrogateService:
    """Set up the process-wide service from WebUI options (``options(key, default)``) and host hooks.

    ``models_dir`` is the folder for hub downloads, or a function returning it: then it is read at each
    use, like the options, so a changed setting applies at the next click without a restart. ``device``
    maps the device setting to the one to use (the host's choice for "auto").
    """
    global _service
    folder: Callable[[], str | None] = models_dir if callable(models_dir) else lambda: models_dir
    if options is None:
        read: Callable[[], InterrogateSettings] = lambda: InterrogateSettings(models_dir=folder())  # noqa: E731
    else:
        read = lambda: settings_from_options(options, folder())  # noqa: E731

    def settings() -> InterrogateSettings:
        current = read()
        return current if device is None else replace(current, device=device(current.device))

    _service = InterrogateService(settings, free_memory, gpu_lock)
    return _service


def get_service() -> InterrogateService:
    """The process-wide service the UI and the API use."""
    return _service
