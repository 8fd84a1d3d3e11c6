"""Interrogation in the WebUI: the img2img 🏷️ button and the batch caption panel (gradio only).

The work is done by :mod:`tagger_webui.interrogate_service` (shared with the HTTP API). Registration
(``tagger_webui._joytag_ui`` and ``register_callbacks``)::

    interrogate_service.configure(options=settings_page.value, models_dir=settings_page.models_dir,
                                  free_memory=host.free_vram, gpu_lock=host.gpu_lock,
                                  device=settings_page.resolve_device)
    script_callbacks.on_after_component(joytag_ui.on_after_component)

``on_after_component`` watches the host build img2img: it adds our button right after the built-in
DeepBooru button, captures the prompt box and the image of every sub-tab (gr.Image on A1111, the
``logical_image_background`` of a ForgeCanvas on Forge), wires the button once all are there, and adds
the batch caption panel under img2img's batch directories. Gradio is imported only inside functions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib_tagger.caption.plan import EXISTING_MODES
from lib_tagger.caption.sink import FORMATS
from lib_tagger.errors import is_user_error
from lib_tagger.interrogate.specs import interrogator_names

from .interrogate_service import (
    OPTION_DEFAULTS,
    PROMPT_MODES,
    InterrogateService,
    InterrogateUiError,
    display_model,
    get_service,
)

log = logging.getLogger(__name__)

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
#: A hidden element holding the interrogator's name; javascript/tagger.js puts it into the button's title.
MODEL_NAME_ELEM_ID = "tagger_interrogator_name"
BUTTON_LABEL = "\U0001f3f7\ufe0f"  # label emoji, beside the host's paperclip (CLIP) and box (DeepBooru)
#: javascript/tagger.js: puts the selected img2img sub-tab index into the first argument.
JS_ARGS_FUNCTION = "tagger_joytag_args"


# ---------------------------------------------------------------------------- the img2img button
def pick_image(tab_index: Any, images: Sequence[Any]) -> Any:
    """The PIL image of img2img sub-tab ``tab_index`` out of the values of :data:`IMAGE_ELEM_IDS`."""
    from PIL import Image

    try:
        index = int(tab_index)
    except (TypeError, ValueError):
        raise InterrogateUiError(f"Interrogate: unknown img2img tab {tab_index!r}") from None
    if index == len(IMAGE_ELEM_IDS):
        raise InterrogateUiError(
            "Interrogate: the Batch tab has no single image; use 'Caption a folder' in its "
            "'From directory' tab"
        )
    if not 0 <= index < len(images):
        raise InterrogateUiError(f"Interrogate: unknown img2img tab {tab_index!r}")
    value = images[index]
    if isinstance(value, dict):  # A1111's inpaint tab: {"image": ..., "mask": ...}
        value = value.get("image")
    if value is not None and not isinstance(value, Image.Image):
        import numpy as np

        value = Image.fromarray(np.asarray(value)) if hasattr(value, "shape") else None
    if value is None:
        raise InterrogateUiError(f"Interrogate: there is no image in the '{TAB_NAMES[index]}' tab; add one first")
    return value


def merge_prompt(prompt: str, tags: str, mode: str) -> str:
    """The prompt box after interrogation: ``tags`` alone ("replace") or after the prompt ("append"),
    then without the tags the prompt already has (aliases and unescaped qualifiers such as
    ``ganyu_(genshin_impact)`` count; the prompt is left as it was when every tag is there)."""
    if mode not in PROMPT_MODES:
        raise InterrogateUiError(f"tagger_joytag_prompt_mode: must be one of {', '.join(PROMPT_MODES)}, got {mode!r}")
    head = (prompt or "").rstrip().rstrip(",").rstrip()
    if mode == "replace" or not head:
        return tags
    new = tags_not_in(head, tags)
    return f"{head}, {new}" if new else prompt


def tags_not_in(prompt: str, tags: str) -> str:
    """The ", "-joined ``tags`` (as JoyTag writes them: escaped, maybe weighted) that ``prompt`` lacks."""
    from lib_tagger.prompt.insert import present_keys
    from lib_tagger.tags import get_tag_db

    db = get_tag_db()
    seen = present_keys(prompt, db.canonical, db.known)
    kept = [piece for piece in tags.split(", ") if not present_keys(piece, db.canonical, db.known) <= seen]
    return ", ".join(kept)


def _reason(exc: BaseException) -> str:
    """The exception's message (a KeyError's without the quotes ``str()`` adds)."""
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


def _notify(message: str, error: BaseException | None = None) -> None:
    """Show ``message`` as a gradio warning toast and in the console."""
    import gradio as gr

    if error is not None and not is_user_error(error):
        log.error("%s", message, exc_info=error)
    else:
        log.warning("%s", message)
    gr.Warning(message)


def interrogate_to_prompt(
    tab_index: Any, prompt: str, *images: Any, service: InterrogateService | None = None
) -> Any:
    """Click handler: the new prompt text, or ``gr.update()`` (prompt untouched) after a warning."""
    import gradio as gr

    service = service or get_service()
    name = "the interrogator"
    try:
        image = pick_image(tab_index, images)
        settings = service.settings()
        name = settings.model_label
        result = service.tag(image)
    except Exception as exc:  # any failure: the user's prompt stays, the reason is shown
        _notify(exc.args[0] if isinstance(exc, InterrogateUiError) else f"Interrogate ({name}) failed: {_reason(exc)}",
                exc)
        return gr.update()
    if not result.tags:
        _notify(f"{name}: no tag scored above the threshold {settings.options.threshold}; prompt unchanged")
        return gr.update()
    merged = merge_prompt(prompt, result.caption, settings.prompt_mode)
    if settings.prompt_mode == "append" and merged == prompt:
        _notify(f"{name}: the prompt already has every tag it found; prompt unchanged")
        return gr.update()
    return merged


def model_marker(service: InterrogateService | None = None) -> str:
    """The hidden textbox's value: the name of the interrogator the settings choose (for the button's title)."""
    try:
        return (service or get_service()).settings().model_label
    except Exception:  # a bad setting: the click reports it; the title just stays generic
        return "the interrogator"


def _gradio_major() -> int:
    import gradio as gr

    return int(gr.__version__.split(".")[0])


def create_button() -> tuple[Any, Any, Any]:
    """Our tool button (the host's ``ToolButton``), its hidden tab-index input and the hidden model-name
    element, in the open Blocks context."""
    import gradio as gr

    from . import host

    button = host.tool_button(BUTTON_LABEL, elem_id=BUTTON_ELEM_ID, elem_classes=["tagger_tool"])
    tab_index = gr.Number(value=0, visible=False, elem_id=TAB_INDEX_ELEM_ID)
    marker = gr.Textbox(value=model_marker, visible=False, elem_id=MODEL_NAME_ELEM_ID)
    return button, tab_index, marker


def wire(
    button: Any, tab_index: Any, prompt: Any, images: Sequence[Any], service: InterrogateService | None = None,
    marker: Any = None,
) -> None:
    """Connect ``button`` so a click tags the image of the selected img2img sub-tab into ``prompt``.

    ``images`` are the image components in :data:`IMAGE_ELEM_IDS` order; ``tab_index`` is a hidden
    input whose value the JS helper replaces with the selected tab's index. After each click ``marker``
    (the hidden model-name element) is refreshed, so the title follows a changed setting.
    """
    if len(images) != len(IMAGE_ELEM_IDS):
        raise ValueError(f"wire: expected {len(IMAGE_ELEM_IDS)} image components, got {len(images)}")
    from .ui import prompt_written

    js = {"js" if _gradio_major() >= 4 else "_js": JS_ARGS_FUNCTION}

    def handler(*args: Any) -> Any:
        return interrogate_to_prompt(*args, service=service)

    event = button.click(
        fn=handler, inputs=[tab_index, prompt, *images], outputs=[prompt], show_progress="minimal", **js
    )
    event.then(fn=None, **prompt_written(PROMPT_ELEM_ID))  # the host's token counter follows
    if marker is not None:
        event.then(fn=lambda: model_marker(service), inputs=None, outputs=[marker])


class _Img2ImgCapture:
    """Collects img2img's components as the host creates them, then wires our button once."""

    def __init__(self) -> None:
        self.prompt: Any = None
        self.button: Any = None
        self.tab_index: Any = None
        self.marker: Any = None
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
            self.button, self.tab_index, self.marker = create_button()
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
        wire(self.button, self.tab_index, self.prompt, [self.images[key] for key in IMAGE_ELEM_IDS],
             marker=self.marker)
        self.wired = True
        return True


def _is_image_input(component: Any) -> bool:
    import gradio as gr

    return isinstance(component, gr.Image)


_capture = _Img2ImgCapture()


def on_after_component(component: Any, **kwargs: Any) -> None:
    """``script_callbacks.on_after_component`` callback: builds and wires our img2img UI."""
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
    model: Any = None
    output_format: Any = None


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
    if getattr(report, "output", None) is not None:
        lines.append(f"Scores written to {name(report.output)}")
    if report.backups:
        lines.append(f"{len(report.backups)} previous captions were kept beside them as .bak files "
                     f"(e.g. {name(report.backups[0])})")
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
    service: InterrogateService | None = None,
    model: str | None = None,
    output_format: str = "txt",
) -> str:
    """Batch button handler: runs the captioning and returns the report text (errors included)."""
    service = service or get_service()
    if not (folder or "").strip():
        return "Enter the folder that holds the images."
    name = display_model((model or "").strip() or service.settings().model)

    def tick(done: int, total: int, path: Path) -> None:
        if progress is not None:
            progress((done, total), desc=f"{name} {done}/{total}: {path.name}")

    try:
        report = service.caption(
            folder.strip(),
            recursive=bool(recursive),
            existing=existing,
            threshold=float(threshold),
            progress=tick,
            model=(model or "").strip() or None,
            output_format=output_format or "txt",
        )
    except Exception as exc:  # the panel shows the reason; the console gets the traceback
        failed = f"Captioning with {name} failed: {_reason(exc)}"
        message = exc.args[0] if isinstance(exc, InterrogateUiError) else failed
        _notify(message, exc)
        return message
    return format_report(report)


def create_batch_panel(service: InterrogateService | None = None) -> BatchPanel:
    """Build the "Caption a folder" accordion in the open Blocks context and wire it.

    The threshold starts at the one in Settings as it is when the page loads (a callable value: gradio
    calls it at every page load), so a changed setting shows without rebuilding the UI.
    """
    import gradio as gr

    settings = (service or get_service()).settings()

    def threshold_setting() -> float:
        try:
            return float((service or get_service()).settings().options.threshold)
        except Exception as exc:  # a bad stored setting: the panel still loads, the click will say why
            log.warning("tagger: the threshold setting cannot be read (%s); the panel shows 0.4", exc)
            return float(OPTION_DEFAULTS["tagger_joytag_threshold"])
    with gr.Accordion("Caption a folder (JoyTag, WD v3)", open=False, elem_id="tagger_caption_panel"):
        with gr.Row(elem_id="tagger_caption_source"):
            folder = gr.Textbox(
                label="Image folder",
                placeholder="Folder with images; a .txt caption is written beside each",
                max_lines=1,
                scale=3,
                elem_id="tagger_caption_folder",
            )
            model = gr.Dropdown(
                choices=interrogator_names(), value=settings.model, label="Interrogator",
                allow_custom_value=True, scale=1, elem_id="tagger_caption_model",
            )
        with gr.Row(elem_id="tagger_caption_options"):
            existing = gr.Radio(
                list(EXISTING_MODES),
                value="skip",
                label="Existing captions",
                info="append and overwrite keep the previous caption as name.txt.bak",
                elem_id="tagger_caption_existing",
            )
            output_format = gr.Radio(
                list(FORMATS), value="txt", label="Write", elem_id="tagger_caption_format",
                info="jsonl / csv: one file with every score",
            )
        with gr.Row(elem_id="tagger_caption_limits"):
            recursive = gr.Checkbox(
                label="Include subfolders", value=False, elem_id="tagger_caption_recursive"
            )
            threshold = gr.Slider(
                minimum=0.0,
                maximum=1.0,
                step=0.01,
                value=threshold_setting,
                label="Threshold",
                elem_id="tagger_caption_threshold",
            )
        run = gr.Button("Caption folder", variant="primary", elem_id="tagger_caption_run")
        report = gr.Textbox(
            label="Report", lines=4, max_lines=20, interactive=False, elem_id="tagger_caption_report"
        )

    def handler(folder_value, recursive_value, existing_value, threshold_value, model_value, format_value,
                progress=gr.Progress()):  # noqa: B008
        return caption_to_report(folder_value, recursive_value, existing_value, threshold_value, progress,
                                 service, model_value, format_value)

    run.click(fn=handler, inputs=[folder, recursive, existing, threshold, model, output_format], outputs=[report])
    return BatchPanel(folder, recursive, existing, threshold, run, report, model, output_format)
