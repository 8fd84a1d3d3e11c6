"""Gradio pages that stand in for the WebUI's img2img tab: components with the host's elem_ids, created in
the host's order, each announced to ``joytag_ui.on_after_component`` as the host's component patch does.
The tool row's buttons are the host double's ``ToolButton`` (A1111's class on gradio 3, Forge's on 4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from tagger_webui import joytag_ui
from tests.host_double.harness import install

GRADIO_MAJOR = int(gr.__version__.split(".")[0])
#: The host's tool buttons in img2img's tool row, in order: (elem_id, label, visible).
TOOLS = (
    ("paste", "\u2199\ufe0f", True),
    ("img2img_clear_prompt", "\U0001f5d1\ufe0f", True),
    ("interrogate", "\U0001f4ce", True),
    ("deepbooru", "\U0001f4e6", True),
    ("img2img_restore_progress", "\U0001f300", False),
)

install()  # the host double's ``modules``: its ToolButton is the host's, per gradio profile


def announce(component: Any, **kwargs: Any) -> Any:
    """What the host's patched component constructor does after building ``component``."""
    joytag_ui.on_after_component(component, **kwargs)
    return component


@dataclass
class Img2ImgPage:
    """The stand-in img2img tab and the components a test talks to."""

    demo: Any
    prompt: Any
    tools_row: Any
    images: list[Any]


def _image(elem_id: str, sketch: bool) -> Any:
    kwargs: dict[str, Any] = {"type": "pil", "elem_id": elem_id, "show_label": False, "height": 220}
    if GRADIO_MAJOR < 4:
        kwargs.update(source="upload", tool="sketch" if sketch else "editor")
    return announce(gr.Image(**kwargs), **kwargs)


def _forge_canvas(elem_id: str) -> Any:
    """Forge's ForgeCanvas: a gr.HTML with the slot's elem_id, then hidden fore- and background images."""
    announce(gr.HTML("<div>canvas</div>", elem_id=elem_id), elem_id=elem_id)
    announce(
        gr.Textbox(visible=False, elem_classes=["logical_image_foreground"]),
        elem_classes=["logical_image_foreground"],
    )
    background = gr.Textbox(visible=False, elem_classes=["logical_image_background"])
    return announce(background, elem_classes=["logical_image_background"])


#: Page test: img2img's token counter (the first element with its id; gradio 3 repeats it inside) shows ``html``.
COUNTER_IS = ("html => document.querySelector('#img2img_token_counter').textContent.trim() === "
              "new DOMParser().parseFromString(html, 'text/html').body.textContent")

#: The host's own rule for tool buttons (A1111 style.css); ``serve`` adds it to every page, with ours.
HOST_CSS = """
button.tool { max-width: 2.2em; min-width: 2.2em !important; height: 2.4em; align-self: end;
    line-height: 1em; border-radius: 0.5em; }
#img2img_tools { gap: 0.4em; }
.block.token-counter { position: absolute; display: inline-block; right: 1em; min-width: 0 !important;
    width: auto; z-index: 100; top: -0.75em; }
.block.token-counter-visible { display: block !important; }
.block.token-counter div { display: inline; }
.block.token-counter-visible { left: auto !important; width: fit-content !important; top: 0.4em !important; }
.block.token-counter span { background: white; padding: 0.1em 0.75em; border: 2px solid #ccc; border-radius: 0.4em; }
.input-accordion-extra { flex: 0 0 auto !important; margin: 0 0.5em 0 auto; }
input[type="checkbox"].input-accordion-checkbox { vertical-align: sub; margin-right: 0.5em; }
"""


def _tools_row(prompt: Any) -> None:
    """The host's img2img tool row (modules/ui_toprow.py): its ToolButtons, the built-in interrogate buttons
    among them, then the hidden token counter and the button its javascript clicks to update it."""
    from modules.ui_components import ToolButton

    from tests.host_double.harness import count_tokens

    for elem_id, label, visible in TOOLS:
        announce(ToolButton(value=label, elem_id=elem_id, visible=visible), elem_id=elem_id, visible=visible)
    counter = gr.HTML(value="<span>0/75</span>", elem_id="img2img_token_counter", elem_classes=["token-counter"],
                      visible=False)
    gr.Button(visible=False, elem_id="img2img_token_button").click(fn=count_tokens, inputs=[prompt],
                                                                   outputs=[counter])


def img2img_page(
    prompt: str = "", forge_canvas: bool = False, batch_dirs_visible: bool = True
) -> Img2ImgPage:
    """A Blocks page laid out like img2img: prompt and tool row on top, six sub-tabs with their images."""
    with gr.Blocks(analytics_enabled=False, title="img2img stand-in") as demo:
        with gr.Row():
            with gr.Column(scale=6):
                prompt_box = gr.Textbox(value=prompt, label="Prompt", lines=3, elem_id="img2img_prompt")
                announce(prompt_box, elem_id="img2img_prompt")
            with gr.Column(scale=1, min_width=280):
                gr.Button("Generate", variant="primary")
                with gr.Row(elem_id="img2img_tools") as tools_row:
                    _tools_row(prompt_box)
        images = []
        with gr.Tabs(elem_id="mode_img2img"):
            for name, elem_id in zip(joytag_ui.TAB_NAMES, joytag_ui.IMAGE_ELEM_IDS):
                with gr.Tab(name):
                    if forge_canvas and elem_id != "img_inpaint_base":
                        images.append(_forge_canvas(elem_id))
                    else:
                        images.append(_image(elem_id, sketch=elem_id == "img2maskimg"))
            with gr.Tab("Batch"):
                for elem_id in (
                    "img2img_batch_input_dir",
                    "img2img_batch_output_dir",
                    "img2img_batch_inpaint_mask_dir",
                ):
                    box = gr.Textbox(label=elem_id, elem_id=elem_id, visible=batch_dirs_visible)
                    announce(box, elem_id=elem_id, visible=batch_dirs_visible)
    demo.queue()
    return Img2ImgPage(demo, prompt_box, tools_row, images)


def batch_panel_page() -> tuple[Any, joytag_ui.BatchPanel]:
    """A page holding only the batch caption panel. As in the WebUI, the tab that holds it is a Blocks of
    its own, rendered into the page's Blocks (modules/ui.py: ``interface.render()`` in a tab)."""
    with gr.Blocks(analytics_enabled=False) as img2img_interface:
        panel = joytag_ui.create_batch_panel()
    with gr.Blocks(analytics_enabled=False, title="JoyTag batch captions") as demo, gr.Tab("img2img"):
        img2img_interface.render()
    demo.queue()
    return demo, panel


def settings_section_page(section_id: str = "tagger") -> Any:
    """The Settings page's section ``section_id`` as the host draws it, after our options registered."""
    from modules import shared, ui_settings

    from tagger_webui import settings_page

    if not any(info.section and info.section[0] == section_id for info in shared.opts.data_labels.values()):
        settings_page.register_options()
    keys = [key for key, info in shared.opts.data_labels.items() if info.section and info.section[0] == section_id]
    with gr.Blocks(analytics_enabled=False, title="Settings") as demo:
        apply = gr.Button("Apply settings", elem_id="settings_submit")
        with gr.Column(elem_id=f"settings_{section_id}"):
            components = [ui_settings.create_setting_component(key) for key in keys]
        # the host's "Apply settings" takes every setting as an input, which makes them interactive
        apply.click(fn=lambda *values: None, inputs=components, outputs=[])
    demo.queue()
    return demo
