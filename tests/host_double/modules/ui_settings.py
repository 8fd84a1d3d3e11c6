"""Double of modules/ui_settings.py: one Settings component per option (``create_setting_component``, :22)
and a section's page: a tab holding a compact column of its options (``UiSettings.create_ui``, :135-163)."""

from __future__ import annotations

import gradio as gr
from modules.shared import opts


def create_setting_component(key):
    info = opts.data_labels[key]
    value = opts.data.get(key, info.default)
    args = info.component_args() if callable(info.component_args) else info.component_args
    comp = info.component
    if comp is None:
        comp = {str: gr.Textbox, int: gr.Number, bool: gr.Checkbox}.get(type(info.default))
        if comp is None:
            raise Exception(f"bad options item type: {type(info.default)} for key {key}")
    return comp(label=info.label, value=value, elem_id=f"setting_{key}", **(args or {}))


def section_page(section_id: str) -> tuple[gr.Blocks, dict]:
    """The Settings page as the host builds it, as far as one section goes: a Blocks of its own rendered
    in the "Settings" tab after "txt2img" (modules/ui.py), holding a tab per section (another one first),
    the section's a compact column of its options. Returns (demo, key → component)."""
    components = {}
    items = [(k, item) for k, item in opts.data_labels.items() if item.section[0] == section_id]
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
