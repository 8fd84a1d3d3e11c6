"""Gradio pages that stand in for the WebUI's img2img tab: components with the host's elem_ids, created in
the host's order, each announced to ``joytag_ui.on_after_component`` as the host's component patch does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from tagger_webui import joytag_ui

GRADIO_MAJOR = int(gr.__version__.split(".")[0])


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


#: The host's own rule for tool buttons (A1111 style.css); ``serve`` adds it to every page, with ours.
HOST_CSS = """
button.tool { max-width: 2.2em; min-width: 2.2em !important; height: 2.4em; align-self: end;
    line-height: 1em; border-radius: 0.5em; }
#img2img_tools { gap: 0.4em; }
"""


def img2img_page(
    prompt: str = "", forge_canvas: bool = False, batch_dirs_visible: bool = True
) -> Img2ImgPage:
    """A Blocks page laid out like img2img: prompt and tool row on top, six sub-tabs with their images."""
    with gr.Blocks(analytics_enabled=False, title="img2img stand-in") as demo:
        with gr.Row():
            with gr.Column(scale=6):
                prompt_box = gr.Textbox(value=prompt, label="Prompt", lines=3, elem_id="img2img_prompt")
                announce(prompt_box, elem_id="img2img_prompt")
            with gr.Column(scale=1, min_width=160):
                gr.Button("Generate", variant="primary")
                with gr.Row(elem_id="img2img_tools") as tools_row:
                    for elem_id, label in (("interrogate", "\U0001f4ce"), ("deepbooru", "\U0001f4e6")):
                        tool = gr.Button(label, elem_id=elem_id, elem_classes=["tool", "gradio-button"])
                        announce(tool, elem_id=elem_id)
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
    """A page holding only the batch caption panel, opened."""
    with gr.Blocks(analytics_enabled=False, title="JoyTag batch captions") as demo:
        panel = joytag_ui.create_batch_panel()
    demo.queue()
    return demo, panel
