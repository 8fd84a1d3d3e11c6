"""The accordion shown in txt2img and img2img: one component per setting, in ``FIELD_ORDER``, and its
buttons: "Upsample now" (a preview), "Apply to prompt" (the preview into the prompt box, the accordion
unticked so the tags are not added twice) and, in the accordion's header once applied, its undo."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from lib_tagger.models.registry import FORMAT_DART_SFT, FORMAT_TIPO, model_names
from lib_tagger.models.resolve import prompt_format_of
from lib_tagger.settings import (
    FIELD_ORDER,
    IDENTITIES,
    LENGTHS,
    NL_POSITIONS,
    OUTPUT_FORMATS,
    POSITIONS,
    PRECISIONS,
    PRESETS,
    RATINGS,
    SEED_MODES,
    TASKS,
    TIMINGS,
    UpsampleSettings,
)

from . import host
from .infotext import infotext_fields, paste_field_names


@dataclass
class TaggerUi:
    """What one tab's accordion is made of."""

    controls: list[Any]  # the script args, in FIELD_ORDER
    by_name: dict[str, Any]
    preview_button: Any
    preview: Any
    last_result: Any
    refresh_button: Any
    tipo_group: Any = None
    apply_button: Any = None
    undo_button: Any = None  # in the accordion's header: visible while it is closed
    previewed_from: Any = None  # state: the prompt the preview was made from
    applied_over: Any = None  # state: the prompt "Apply to prompt" replaced
    infotext_fields: list[tuple[Any, Any]] = field(default_factory=list)
    paste_field_names: list[str] = field(default_factory=list)


def shown_for(model: str) -> tuple[bool, bool]:
    """(TIPO controls shown, identity shown) for a model name or path: each only for its family;
    both when the model's family is not known yet (a path still being typed)."""
    prompt_format = prompt_format_of(model or "")
    if prompt_format is None:
        return True, True
    return prompt_format == FORMAT_TIPO, prompt_format == FORMAT_DART_SFT


def build(tab: str, defaults: UpsampleSettings) -> TaggerUi:
    """Create the accordion for ``tab`` ("txt2img" or "img2img") inside the current Blocks context."""

    def eid(name: str) -> str:
        return f"tagger_{tab}_{name}"

    c: dict[str, Any] = {}
    show_tipo, show_identity = shown_for(defaults.model)
    with host.input_accordion(False, label="Tagger: prompt upsampling", elem_id=eid("enabled")) as accordion:
        c["enabled"] = accordion
        with host.accordion_extra(accordion):
            undo_button = host.tool_button(UNDO_LABEL, elem_id=eid("undo_apply"), visible=False)
        with gr.Row():
            c["model"] = gr.Dropdown(label="Model", choices=model_names(), value=defaults.model,
                                     allow_custom_value=True, elem_id=eid("model"))
            c["length"] = gr.Dropdown(label="Length", choices=list(LENGTHS), value=defaults.length,
                                      elem_id=eid("length"))
            c["rating"] = gr.Dropdown(label="Rating", choices=list(RATINGS), value=defaults.rating,
                                      elem_id=eid("rating"))
        with gr.Group(visible=show_tipo, elem_id=eid("tipo")) as tipo_group:
            c["nl_prompt"] = gr.Textbox(label="Natural-language prompt (TIPO)", value=defaults.nl_prompt, lines=2,
                                        placeholder="A sentence or two about the picture; tags stay in the prompt",
                                        elem_id=eid("nl_prompt"))
            with gr.Row():
                c["task"] = gr.Dropdown(label="Task", choices=list(TASKS), value=defaults.task, elem_id=eid("task"))
                c["nl_length"] = gr.Dropdown(label="Caption length", choices=list(LENGTHS), value=defaults.nl_length,
                                             elem_id=eid("nl_length"))
                c["nl_position"] = gr.Radio(label="Insert caption", choices=list(NL_POSITIONS),
                                            value=defaults.nl_position, elem_id=eid("nl_position"))
        with gr.Row():
            c["identity"] = gr.Radio(label="Identity (Dart v2 SFT)", choices=list(IDENTITIES),
                                     value=defaults.identity, visible=show_identity, elem_id=eid("identity"))
            c["preset"] = gr.Dropdown(label="Sampling preset", choices=["custom", *PRESETS],
                                      value=defaults.preset, elem_id=eid("preset"))
        with gr.Row():
            c["temperature"] = gr.Slider(label="Temperature", minimum=0.0, maximum=3.0, step=0.05,
                                         value=defaults.temperature, elem_id=eid("temperature"))
            c["top_p"] = gr.Slider(label="Top p", minimum=0.0, maximum=1.0, step=0.01, value=defaults.top_p,
                                   elem_id=eid("top_p"))
            c["top_k"] = gr.Slider(label="Top k", minimum=0, maximum=1000, step=1, value=defaults.top_k,
                                   elem_id=eid("top_k"))
            c["min_p"] = gr.Slider(label="Min p", minimum=0.0, maximum=1.0, step=0.01, value=defaults.min_p,
                                   elem_id=eid("min_p"))
        c["ban_tags"] = gr.Textbox(label="Ban tags (comma separated, * wildcards, /regex/)",
                                   value=defaults.ban_tags, lines=1, elem_id=eid("ban_tags"))
        with gr.Row():
            c["position"] = gr.Radio(label="Insert new tags", choices=list(POSITIONS), value=defaults.position,
                                     elem_id=eid("position"))
            c["timing"] = gr.Radio(label="When", choices=list(TIMINGS), value=defaults.timing,
                                   elem_id=eid("timing"))
            c["output_format"] = gr.Dropdown(label="Output (templates rebuild the prompt)",
                                             choices=list(OUTPUT_FORMATS), value=defaults.output_format,
                                             elem_id=eid("output_format"))
        with gr.Row():
            c["seed_mode"] = gr.Radio(label="Tag seed", choices=list(SEED_MODES), value=defaults.seed_mode,
                                      elem_id=eid("seed_mode"))
            c["seed"] = gr.Number(label="Fixed seed (-1: random)", value=defaults.seed, precision=0,
                                  elem_id=eid("seed"))
            c["max_new_tokens"] = gr.Slider(label="Max new tokens", minimum=1, maximum=1024, step=1,
                                            value=defaults.max_new_tokens, elem_id=eid("max_new_tokens"))
            c["precision"] = gr.Radio(label="Precision (torch models)", choices=list(PRECISIONS),
                                      value=defaults.precision, elem_id=eid("precision"))
        with gr.Row():
            preview_button = gr.Button("Upsample now", elem_id=eid("preview_button"))
            apply_button = gr.Button("Apply to prompt", elem_id=eid("apply_button"))
            refresh_button = host.tool_button("\U0001f504", elem_id=eid("refresh"))
        preview = gr.Textbox(label="Upsampled prompt (not generated)", interactive=False, lines=3,
                             elem_id=eid("preview"))
        last_result = gr.Textbox(label="Last result", interactive=False, lines=3, elem_id=eid("last_result"))
        previewed_from, applied_over = gr.State(None), gr.State(None)
    controls = [c[name] for name in FIELD_ORDER]
    return TaggerUi(controls, c, preview_button, preview, last_result, refresh_button, tipo_group=tipo_group,
                    apply_button=apply_button, undo_button=undo_button, previewed_from=previewed_from,
                    applied_over=applied_over, infotext_fields=infotext_fields(c),
                    paste_field_names=paste_field_names())


UNDO_LABEL = "\u21a9\ufe0f"  # leftwards arrow with hook


def prompt_written(elem_id: str) -> dict[str, str]:
    """Keyword for a ``.then()`` after writing into the prompt box ``elem_id``: javascript/tagger.js sends
    the input event the host's token counter listens to (``_js`` on gradio 3, ``js`` on 4)."""
    key = "js" if int(gr.__version__.split(".")[0]) >= 4 else "_js"
    return {key: f"() => tagger_prompt_written({elem_id!r})"}


def apply_preview(prompt: str, preview: str, previewed_from: str | None) -> tuple[Any, Any, Any, Any]:
    """"Apply to prompt": (prompt box, accordion ticked, prompt replaced, undo button) after the click."""
    unchanged = (gr.update(), gr.update(), gr.update(), gr.update())
    if not preview or previewed_from is None or preview.startswith("Tagger error"):
        gr.Warning("Tagger: nothing to apply yet: press 'Upsample now' first")
        return unchanged
    if (prompt or "") != previewed_from:
        gr.Warning("Tagger: the prompt changed after 'Upsample now': press it again, then apply")
        return unchanged
    return preview, False, prompt, gr.update(visible=True)


def undo_apply(applied_over: str | None) -> tuple[Any, Any, Any, Any]:
    """The undo button: the prompt as it was before "Apply to prompt", the accordion ticked again."""
    if applied_over is None:
        return gr.update(), gr.update(), None, gr.update(visible=False)
    return applied_over, True, None, gr.update(visible=False)


def wire(parts: TaggerUi, host_inputs: list[Any], preview_fn: Callable[..., tuple[str, str]],
         last_fn: Callable[[], str]) -> None:
    """Connect the buttons. ``host_inputs`` are the tab's prompt, width and height components."""
    prompt = host_inputs[0]

    def preview(prompt_text: str, *values: Any) -> tuple[str, str, str]:
        return (*preview_fn(prompt_text, *values), prompt_text or "")

    parts.preview_button.click(fn=preview, inputs=[*host_inputs, *parts.controls],
                               outputs=[parts.preview, parts.last_result, parts.previewed_from], show_progress=True)
    parts.refresh_button.click(fn=last_fn, inputs=[], outputs=[parts.last_result], show_progress=False)
    written = prompt_written(prompt.elem_id)
    outputs = [prompt, parts.by_name["enabled"], parts.applied_over, parts.undo_button]
    parts.apply_button.click(fn=apply_preview, inputs=[prompt, parts.preview, parts.previewed_from],
                             outputs=outputs, show_progress=False).then(fn=None, **written)
    parts.undo_button.click(fn=undo_apply, inputs=[parts.applied_over], outputs=outputs,
                            show_progress=False).then(fn=None, **written)


def wire_visibility(parts: TaggerUi) -> None:
    """Show the TIPO controls only for TIPO models and the identity control only for Dart SFT."""

    def update(model: str) -> tuple[Any, Any]:
        show_tipo, show_identity = shown_for(model)
        return gr.update(visible=show_tipo), gr.update(visible=show_identity)

    parts.by_name["model"].change(fn=update, inputs=[parts.by_name["model"]],
                                  outputs=[parts.tipo_group, parts.by_name["identity"]], show_progress=False)
