"""Double of modules/ui_settings.py (v1.10.1): one Settings component per option (``create_setting_component``,
:22) and a section's page: a tab holding a compact column of its options (``UiSettings.create_ui``, :135-163).

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


def section_page(section_id: str) -> tuple[gr.Blocks, dict]:
    """The Settings page as the host builds it, as far as one section goes: a Blocks of its own rendered
    in the "Settings" tab after "txt2img" (modules/ui.py), holding a tab per section (another one first),
    the section's a compact column of its options. Returns (demo, key → component)."""
    components = {}
    items = [(k, item) for k, item in shared.opts.data_labels.items() if item.section[0] == section_id]
    with gr.Blocks(analytics_enabled=False) as settings_interface, gr.Tabs(elem_id="settings"):
        with gr.TabItem(elem_id="settings_saving-images", label="Saving images/grids"):
            gr.Checkbox(label="Always save all generated images", value=True)
        with gr.TabItem(elem_id=f"settings_{section_id}", label=items[0][1].section[1]), \
                gr.Column(elem_id=f"column_settings_{section_id}", variant="compact"):
            for key, _ in items:
                components[key] = create_setting_component(key)
    with gr.Blocks(analytics_enabled=False) as demo, gr.Tabs(elem_id="tabs"):
        with gr.TabItem("txt2img", elem_id="tab_txt2img"):
            gr.Textbox(label="Prompt", elem_id="txt2img_prompt")
        with gr.TabItem("Settings", elem_id="tab_settings"):
            settings_interface.render()
    return demo, components
