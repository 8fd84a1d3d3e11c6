"""JoyTag in the WebUI: the img2img "Interrogate with JoyTag" button, the batch caption panel, and the
service both (and the HTTP API) run JoyTag through.

Registration (``tagger_webui._joytag_ui`` and ``register_callbacks``)::

    joytag_ui.configure(options=host.opt, models_dir=settings_page.models_dir,
                        free_memory=host.free_vram, gpu_lock=host.gpu_lock)
    script_callbacks.on_after_component(joytag_ui.on_after_component)

``on_after_component`` watches the host build img2img: it adds our button right after the built-in
DeepBooru button, captures the prompt box and the image of every sub-tab (gr.Image on A1111, the
``logical_image_background`` of a ForgeCanvas on Forge), wires the button once all are there, and adds
the batch caption panel under img2img's batch directories. Gradio is imported only inside functions.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lib_tagger.joytag.loader import DEFAULT_SOURCE
from lib_tagger.joytag.postprocess import DEFAULT_EXCLUDE, JoyTagOptions

log = logging.getLogger(__name__)

PROMPT_MODES = ("replace", "append")
EXISTING_MODES = ("skip", "append", "overwrite")

PROMPT_ELEM_ID = "img2img_prompt"
ANCHOR_ELEM_ID = "deepbooru"
BATCH_ANCHOR_ELEM_ID = "img2img_batch_inpaint_mask_dir"
#: img2img's image components; the position is the sub-tab index that JS reports.
IMAGE_ELEM_IDS = ("img2img_image", "img2img_sketch", "img2maskimg", "inpaint_sketch", "img_inpaint_base")
TAB_NAMES = ("img2img", "Sketch", "Inpaint", "Inpaint sketch", "Inpaint upload", "Batch")
#: On Forge an image slot's elem_id names a gr.HTML canvas; its image is the next component with this class.
FORGE_BACKGROUND_CLASS = "logical_image_background"

BUTTON_ELEM_ID = "tagger_joytag_button"
TAB_INDEX_ELEM_ID = "tagger_joytag_tab_index"
BUTTON_LABEL = "\U0001f3f7\ufe0f"  # label emoji, beside the host's paperclip (CLIP) and box (DeepBooru)
#: javascript/tagger.js: puts the selected img2img sub-tab index into the first argument.
JS_ARGS_FUNCTION = "tagger_joytag_args"

#: WebUI option keys JoyTag reads (the settings page registers them) and their defaults.
OPTION_DEFAULTS: dict[str, Any] = {
    "tagger_joytag_model": DEFAULT_SOURCE,
    "tagger_joytag_device": "auto",
    "tagger_joytag_precision": "fp32",
    "tagger_joytag_keep_loaded": True,
    "tagger_joytag_prompt_mode": "replace",
    "tagger_joytag_threshold": 0.4,
    "tagger_joytag_exclude": ", ".join(DEFAULT_EXCLUDE),
    "tagger_joytag_always_add": "",
    "tagger_joytag_top_k": 0,
    "tagger_joytag_sort": "confidence",
    "tagger_joytag_replace_underscores": True,
    "tagger_joytag_escape_brackets": True,
    "tagger_joytag_weighted": False,
    "tagger_joytag_batch_size": 8,
}


class JoyTagUiError(ValueError):
    """A user-facing problem (no image, bad setting); the message says what to do."""


@dataclass(frozen=True)
class JoyTagSettings:
    """What the WebUI settings decide for JoyTag, read at each use."""

    source: str = DEFAULT_SOURCE
    models_dir: str | None = None
    device: str = "auto"
    precision: str = "fp32"  # on a CPU: fp32, int8 or bf16 (lib_tagger.torch_precision)
    keep_loaded: bool = True
    prompt_mode: str = "replace"
    batch_size: int = 8
    options: JoyTagOptions = field(default_factory=JoyTagOptions)

    def __post_init__(self) -> None:
        _check_prompt_mode(self.prompt_mode)
        _check_precision(self.precision)
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise JoyTagUiError(f"tagger_joytag_batch_size: must be an integer >= 1, got {self.batch_size!r}")


def settings_from_options(get: Callable[[str, Any], Any], models_dir: str | None = None) -> JoyTagSettings:
    """Build :class:`JoyTagSettings` from WebUI options; ``get(key, default)`` reads one option."""

    def value(key: str) -> Any:
        return get(key, OPTION_DEFAULTS[key])

    options = JoyTagOptions(
        threshold=float(value("tagger_joytag_threshold")),
        exclude=value("tagger_joytag_exclude"),
        always_add=value("tagger_joytag_always_add"),
        top_k=int(value("tagger_joytag_top_k")),
        sort=value("tagger_joytag_sort"),
        replace_underscores=bool(value("tagger_joytag_replace_underscores")),
        escape_brackets=bool(value("tagger_joytag_escape_brackets")),
        weighted=bool(value("tagger_joytag_weighted")),
    )
    return JoyTagSettings(
        source=str(value("tagger_joytag_model")).strip() or DEFAULT_SOURCE,
        models_dir=models_dir,
        device=value("tagger_joytag_device"),
        precision=str(value("tagger_joytag_precision")),
        keep_loaded=bool(value("tagger_joytag_keep_loaded")),
        prompt_mode=value("tagger_joytag_prompt_mode"),
        batch_size=int(value("tagger_joytag_batch_size")),
        options=options,
    )


def _no_op() -> None:
    return None


class JoyTagService:
    """Runs JoyTag for the button, the batch panel and the API.

    Each run holds ``gpu_lock()`` (a context manager factory: the host's queue lock, default a private
    lock), calls ``free_memory`` (the host frees VRAM) first, and unloads JoyTag afterwards unless the
    settings keep it loaded.
    """

    def __init__(
        self,
        settings: Callable[[], JoyTagSettings] = JoyTagSettings,
        free_memory: Callable[[], None] | None = None,
        gpu_lock: Callable[[], AbstractContextManager] | None = None,
    ) -> None:
        self._settings = settings
        self._free_memory = free_memory or _no_op
        private = threading.Lock()
        self._gpu_lock = gpu_lock or (lambda: private)

    def settings(self) -> JoyTagSettings:
        """The current settings (re-read on every call)."""
        return self._settings()

    @contextmanager
    def _tagger(self, settings: JoyTagSettings) -> Iterator[Any]:
        from lib_tagger.joytag.loader import get_joytagger, unload_joytagger

        with self._gpu_lock():
            self._free_memory()
            try:
                yield get_joytagger(settings.source, settings.models_dir, settings.device, settings.precision)
            finally:
                if not settings.keep_loaded:
                    unload_joytagger()

    def tag(self, image: Any, options: JoyTagOptions | None = None,
            precision: str | None = None) -> tuple[list[tuple[str, float]], str]:
        """``(kept (tag, score) pairs, prompt text)`` for one PIL image (``options``, ``precision``:
        the settings' unless given)."""
        from lib_tagger.joytag.postprocess import format_tags, select_tags

        settings = self.settings()
        if precision is not None:
            settings = replace(settings, precision=precision)
        options = options or settings.options
        with self._tagger(settings) as tagger:
            scores = tagger.tag_images([image], batch_size=1)[0]
        selected = select_tags(scores, options)
        return selected, format_tags(selected, options)

    def caption(
        self,
        folder: str | Path,
        *,
        recursive: bool = False,
        existing: str = "skip",
        threshold: float | None = None,
        progress: Callable[[int, int, Path], None] | None = None,
    ) -> Any:
        """Caption every image in ``folder`` (one ``.txt`` each); returns the core's ``CaptionReport``."""
        from lib_tagger.joytag.caption import caption_folder

        settings = self.settings()
        options = settings.options if threshold is None else replace(settings.options, threshold=threshold)
        folder = Path(folder).expanduser()
        if not folder.is_dir():  # checked before the model loads, so a typo costs nothing
            raise JoyTagUiError(f"Folder {folder} does not exist or is not a folder")
        with self._tagger(settings) as tagger:
            return caption_folder(
                folder,
                options,
                tagger,
                recursive=recursive,
                existing=existing,
                batch_size=settings.batch_size,
                progress=progress or _quiet_progress,
            )

    def unload(self) -> list[str]:
        """Free JoyTag and every loaded tag model; returns what was loaded."""
        from lib_tagger.joytag.loader import unload_joytagger
        from lib_tagger.models.manager import get_manager

        unloaded = ["joytag"] if unload_joytagger() else []
        manager = get_manager()
        unloaded += manager.loaded_names()
        manager.unload()
        return unloaded


def _quiet_progress(done: int, total: int, path: Path) -> None:
    log.debug("JoyTag caption %d/%d: %s", done, total, path)


_service = JoyTagService()


def configure(
    options: Callable[[str, Any], Any] | None = None,
    *,
    models_dir: str | Callable[[], str | None] | None = None,
    free_memory: Callable[[], None] | None = None,
    gpu_lock: Callable[[], AbstractContextManager] | None = None,
) -> JoyTagService:
    """Set up the process-wide service from WebUI options (``options(key, default)``) and host hooks.

    ``models_dir`` is the folder for hub downloads, or a function returning it: then it is read at each
    use, like the options, so a changed setting applies at the next click without a restart.
    """
    global _service
    folder: Callable[[], str | None] = models_dir if callable(models_dir) else lambda: models_dir
    if options is None:
        settings: Callable[[], JoyTagSettings] = lambda: JoyTagSettings(models_dir=folder())  # noqa: E731
    else:
        settings = lambda: settings_from_options(options, folder())  # noqa: E731
    _service = JoyTagService(settings, free_memory, gpu_lock)
    return _service


def get_service() -> JoyTagService:
    """The process-wide service the UI and the API use."""
    return _service


# ---------------------------------------------------------------------------- the img2img button
def pick_image(tab_index: Any, images: Sequence[Any]) -> Any:
    """The PIL image of img2img sub-tab ``tab_index`` out of the values of :data:`IMAGE_ELEM_IDS`."""
    from PIL import Image

    try:
        index = int(tab_index)
    except (TypeError, ValueError):
        raise JoyTagUiError(f"JoyTag: unknown img2img tab {tab_index!r}") from None
    if index == len(IMAGE_ELEM_IDS):
        raise JoyTagUiError(
            "JoyTag: the Batch tab has no single image; use 'Caption a folder with JoyTag' in its "
            "'From directory' tab"
        )
    if not 0 <= index < len(images):
        raise JoyTagUiError(f"JoyTag: unknown img2img tab {tab_index!r}")
    value = images[index]
    if isinstance(value, dict):  # A1111's inpaint tab: {"image": ..., "mask": ...}
        value = value.get("image")
    if value is not None and not isinstance(value, Image.Image):
        import numpy as np

        value = Image.fromarray(np.asarray(value)) if hasattr(value, "shape") else None
    if value is None:
        raise JoyTagUiError(f"JoyTag: there is no image in the '{TAB_NAMES[index]}' tab; add one first")
    return value


def _check_prompt_mode(mode: str) -> None:
    if mode not in PROMPT_MODES:
        choices = ", ".join(PROMPT_MODES)
        raise JoyTagUiError(f"tagger_joytag_prompt_mode: must be one of {choices}, got {mode!r}")


def _check_precision(precision: str) -> None:
    from lib_tagger.devices import VISION_PRECISIONS

    if precision not in VISION_PRECISIONS:
        choices = ", ".join(VISION_PRECISIONS)
        raise JoyTagUiError(f"tagger_joytag_precision: must be one of {choices}, got {precision!r}")


def merge_prompt(prompt: str, tags: str, mode: str) -> str:
    """The prompt box after interrogation: ``tags`` alone ("replace") or after the prompt ("append")."""
    _check_prompt_mode(mode)
    head = (prompt or "").rstrip().rstrip(",").rstrip()
    if mode == "replace" or not head:
        return tags
    return f"{head}, {tags}"


def _notify(message: str, error: BaseException | None = None) -> None:
    """Show ``message`` as a gradio warning toast and in the console."""
    import gradio as gr

    if error is not None and not isinstance(error, JoyTagUiError):
        log.error("%s", message, exc_info=error)
    else:
        log.warning("%s", message)
    gr.Warning(message)


def interrogate_to_prompt(
    tab_index: Any, prompt: str, *images: Any, service: JoyTagService | None = None
) -> Any:
    """Click handler: the new prompt text, or ``gr.update()`` (prompt untouched) after a warning."""
    import gradio as gr

    service = service or get_service()
    try:
        image = pick_image(tab_index, images)
        settings = service.settings()
        selected, text = service.tag(image)
    except Exception as exc:  # any failure: the user's prompt stays, the reason is shown
        _notify(exc.args[0] if isinstance(exc, JoyTagUiError) else f"JoyTag failed: {exc}", exc)
        return gr.update()
    if not selected:
        _notify(f"JoyTag: no tag scored above the threshold {settings.options.threshold}; prompt unchanged")
        return gr.update()
    return merge_prompt(prompt, text, settings.prompt_mode)


def _gradio_major() -> int:
    import gradio as gr

    return int(gr.__version__.split(".")[0])


def create_button() -> tuple[Any, Any]:
    """Our tool button (the host's ``ToolButton``) and its hidden tab-index input, in the open Blocks context."""
    import gradio as gr

    from . import host

    button = host.tool_button(BUTTON_LABEL, elem_id=BUTTON_ELEM_ID, elem_classes=["tagger_tool"])
    tab_index = gr.Number(value=0, visible=False, elem_id=TAB_INDEX_ELEM_ID)
    return button, tab_index


def wire(
    button: Any, tab_index: Any, prompt: Any, images: Sequence[Any], service: JoyTagService | None = None
) -> None:
    """Connect ``button`` so a click tags the image of the selected img2img sub-tab into ``prompt``.

    ``images`` are the image components in :data:`IMAGE_ELEM_IDS` order; ``tab_index`` is a hidden
    input whose value the JS helper replaces with the selected tab's index.
    """
    if len(images) != len(IMAGE_ELEM_IDS):
        raise ValueError(f"wire: expected {len(IMAGE_ELEM_IDS)} image components, got {len(images)}")
    js = {"js" if _gradio_major() >= 4 else "_js": JS_ARGS_FUNCTION}

    def handler(*args: Any) -> Any:
        return interrogate_to_prompt(*args, service=service)

    button.click(
        fn=handler, inputs=[tab_index, prompt, *images], outputs=[prompt], show_progress="minimal", **js
    )


class _Img2ImgCapture:
    """Collects img2img's components as the host creates them, then wires our button once."""

    def __init__(self) -> None:
        self.prompt: Any = None
        self.button: Any = None
        self.tab_index: Any = None
        self.images: dict[str, Any] = {}
        self.pending_canvas: str | None = None
        self.wired = False

    def holds(self, elem_id: str | None) -> bool:
        """True when the slot ``elem_id`` names is already filled."""
        if elem_id == PROMPT_ELEM_ID:
            return self.prompt is not None
        if elem_id == ANCHOR_ELEM_ID:
            return self.button is not None
        return elem_id in self.images or (elem_id is not None and elem_id == self.pending_canvas)

    def add(self, component: Any, elem_id: str | None, elem_classes: Sequence[str], visible: bool) -> bool:
        """Take ``component`` if it is one we need; True once the button is wired by this call."""
        if elem_id == PROMPT_ELEM_ID:
            self.prompt = component
        elif elem_id == ANCHOR_ELEM_ID:
            self.button, self.tab_index = create_button()
        elif elem_id in IMAGE_ELEM_IDS:
            if _is_image_input(component):
                self.images[elem_id] = component
            else:  # Forge: a gr.HTML canvas; its hidden image component follows
                self.pending_canvas = elem_id
        elif self.pending_canvas and FORGE_BACKGROUND_CLASS in elem_classes:
            self.images[self.pending_canvas] = component
            self.pending_canvas = None
        elif elem_id == BATCH_ANCHOR_ELEM_ID and visible:
            create_batch_panel()
        else:
            return False
        if self.wired or self.prompt is None or self.button is None or len(self.images) < len(IMAGE_ELEM_IDS):
            return False
        wire(self.button, self.tab_index, self.prompt, [self.images[key] for key in IMAGE_ELEM_IDS])
        self.wired = True
        return True


def _is_image_input(component: Any) -> bool:
    import gradio as gr

    return isinstance(component, gr.Image)


_capture = _Img2ImgCapture()


def on_after_component(component: Any, **kwargs: Any) -> None:
    """``script_callbacks.on_after_component`` callback: builds and wires JoyTag's img2img UI."""
    global _capture
    elem_id = kwargs.get("elem_id") or getattr(component, "elem_id", None)
    classes = kwargs.get("elem_classes") or getattr(component, "elem_classes", None) or []
    classes = [classes] if isinstance(classes, str) else list(classes)
    if _capture.holds(elem_id):
        _capture = _Img2ImgCapture()  # a slot seen twice: the host builds its UI again (UI reload)
    _capture.add(component, elem_id, classes, bool(kwargs.get("visible", True)))


# ---------------------------------------------------------------------------- the batch caption panel
@dataclass
class BatchPanel:
    """The components of the batch caption panel."""

    folder: Any
    recursive: Any
    existing: Any
    threshold: Any
    run: Any
    report: Any


def format_report(report: Any, listed: int = 20) -> str:
    """The report box text: counts, each failed image with its reason, the first captioned images.

    Paths are shown relative to the captioned folder.
    """

    def name(path: Path) -> str:
        try:
            return str(path.relative_to(report.folder))
        except ValueError:
            return str(path)

    head = (
        f"{len(report.written)} captioned, {len(report.skipped)} skipped (caption exists), "
        f"{len(report.failed)} failed in {report.seconds:.1f}s" + (" (stopped early)" if report.stopped else "")
    )
    lines = [f"Folder: {report.folder}", head]
    lines += [f"Failed {name(path)}: {reason}" for path, reason in report.failed]
    if report.written:
        more = len(report.written) - listed
        shown = ", ".join(name(path) for path in report.written[:listed])
        lines.append(f"Captioned: {shown}" + (f" and {more} more" if more > 0 else ""))
    return "\n".join(lines)


def caption_to_report(
    folder: str,
    recursive: bool,
    existing: str,
    threshold: float,
    progress: Callable[..., Any] | None = None,
    service: JoyTagService | None = None,
) -> str:
    """Batch button handler: runs the captioning and returns the report text (errors included)."""
    service = service or get_service()
    if not (folder or "").strip():
        return "Enter the folder that holds the images."

    def tick(done: int, total: int, path: Path) -> None:
        if progress is not None:
            progress((done, total), desc=f"JoyTag {done}/{total}: {path.name}")

    try:
        report = service.caption(
            folder.strip(),
            recursive=bool(recursive),
            existing=existing,
            threshold=float(threshold),
            progress=tick,
        )
    except Exception as exc:  # the panel shows the reason; the console gets the traceback
        message = exc.args[0] if isinstance(exc, JoyTagUiError) else f"JoyTag captioning failed: {exc}"
        _notify(message, exc)
        return message
    return format_report(report)


def create_batch_panel(service: JoyTagService | None = None) -> BatchPanel:
    """Build the "Caption a folder with JoyTag" accordion in the open Blocks context and wire it."""
    import gradio as gr

    threshold_default = (service or get_service()).settings().options.threshold
    with gr.Accordion("Caption a folder with JoyTag", open=False, elem_id="tagger_caption_panel"):
        folder = gr.Textbox(
            label="Image folder",
            placeholder="Folder with images; a .txt caption is written beside each",
            max_lines=1,
            elem_id="tagger_caption_folder",
        )
        with gr.Row(elem_id="tagger_caption_options"):
            recursive = gr.Checkbox(
                label="Include subfolders", value=False, elem_id="tagger_caption_recursive"
            )
            existing = gr.Radio(
                list(EXISTING_MODES),
                value="skip",
                label="Existing captions",
                elem_id="tagger_caption_existing",
            )
            threshold = gr.Slider(
                minimum=0.0,
                maximum=1.0,
                step=0.01,
                value=threshold_default,
                label="Threshold",
                elem_id="tagger_caption_threshold",
            )
        run = gr.Button("Caption folder", variant="primary", elem_id="tagger_caption_run")
        report = gr.Textbox(
            label="Report", lines=4, max_lines=20, interactive=False, elem_id="tagger_caption_report"
        )

    def handler(folder_value, recursive_value, existing_value, threshold_value, progress=gr.Progress()):  # noqa: B008
        return caption_to_report(
            folder_value, recursive_value, existing_value, threshold_value, progress, service
        )

    run.click(fn=handler, inputs=[folder, recursive, existing, threshold], outputs=[report])
    return BatchPanel(folder, recursive, existing, threshold, run, report)
