"""Double of the part of modules/ui_settings.py (v1.10.1) that draws one setting: ``create_setting_component``.

As in the host: the component is the option's own, else a Textbox / Number / Checkbox by the default's
type; ``component_args`` may be a function; the value is the stored one (else the default); the elem_id
is ``setting_<key>``; the option's ``comment_after`` (its info) is drawn after it as HTML.
"""

from __future__ import annotations

import gradio as gr
from modules import shared


def create_setting_component(key: str):
    info = shared.opts.data_labels[key]
    value = shared.opts.data.get(key, info.default)
    kind = type(info.default)
    args = info.component_args() if callable(info.component_args) else info.component_args
    if info.component is not None:
        component = info.component
    elif kind is str:
        component = gr.Textbox
    elif kind is int:
        component = gr.Number
    elif kind is bool:
        component = gr.Checkbox
    else:
        raise Exception(f"bad options item type: {kind} for key {key}")
    with gr.Row():
        result = component(label=info.label, value=value, elem_id=f"setting_{key}", **(args or {}))
    if info.comment_after:
        gr.HTML(info.comment_after, elem_classes=["settings-comment"])
    return result
