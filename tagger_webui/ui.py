"""The accordion shown in txt2img and img2img: one component per setting, in ``FIELD_ORDER``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from lib_tagger.models.registry import model_names
from lib_tagger.settings import (
    FIELD_ORDER,
    IDENTITIES,
    LENGTHS,
    POSITIONS,
    PRECISIONS,
    PRESETS,
    RATINGS,
    SEED_MODES,
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
    infotext_fields: list[tuple[Any, Any]] = field(default_factory=list)
    paste_field_names: list[str] = field(default_factory=list)


def build(tab: str, defaults: UpsampleSettings) -> TaggerUi:
    """Create the accordion for ``tab`` ("txt2img" or "img2img") inside the current Blocks context."""

    def eid(name: str) -> str:
        return f"tagger_{tab}_{name}"

    c: dict[str, Any] = {}
    with host.input_accordion(False, label="Tagger: prompt upsampling", elem_id=eid("enabled")) as accordion:
        c["enabled"] = accordion
        with gr.Row():
            c["model"] = gr.Dropdown(label="Model", choices=model_names(), value=defaults.model,
                                     allow_custom_value=True, elem_id=eid("model"))
            c["length"] = gr.Dropdown(label="Length", choices=list(LENGTHS), value=defaults.length,
                                      elem_id=eid("length"))
            c["rating"] = gr.Dropdown(label="Rating", choices=list(RATINGS), value=defaults.rating,
                                      elem_id=eid("rating"))
        with gr.Row():
            c["identity"] = gr.Radio(label="Identity", choices=list(IDENTITIES), value=defaults.identity,
                                     elem_id=eid("identity"))
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
            refresh_button = host.tool_button("\U0001f504", elem_id=eid("refresh"))
        preview = gr.Textbox(label="Upsampled prompt (not generated)", interactive=False, lines=3,
                             elem_id=eid("preview"))
        last_result = gr.Textbox(label="Last result", interactive=False, lines=3, elem_id=eid("last_result"))
    controls = [c[name] for name in FIELD_ORDER]
    return TaggerUi(controls, c, preview_button, preview, last_result, refresh_button,
                    infotext_fields(c), paste_field_names())


def wire(parts: TaggerUi, host_inputs: list[Any], preview_fn: Callable[..., tuple[str, str]],
         last_fn: Callable[[], str]) -> None:
    """Connect the buttons. ``host_inputs`` are the tab's prompt, width and height components."""
    parts.preview_button.click(fn=preview_fn, inputs=[*host_inputs, *parts.controls],
                               outputs=[parts.preview, parts.last_result], show_progress=True)
    parts.refresh_button.click(fn=last_fn, inputs=[], outputs=[parts.last_result], show_progress=False)
