"""Start the host double with our extension loaded, the way the WebUI does, and run jobs.

``start_webui()`` puts the double's ``modules`` on ``sys.path``, loads ``scripts/tagger.py`` and
the X/Y/Z script with the host's loader, runs the settings callbacks (then orders the settings by
category, as the Settings page does) and the before-ui callbacks, builds both tabs
(prompt, width, height, the hidden token counter and its button, then the scripts' UI, as in
modules/ui.py and ui_toprow.py) inside ``gr.Blocks``, creates the host's ``Api`` (its routes, its
``--api-auth`` guard and the default script args, which call every script's ``ui()`` again) when
``--api`` is on, and calls ``app_started`` with the FastAPI app.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HOST_DOUBLE = Path(__file__).resolve().parent
ROOT = HOST_DOUBLE.parent.parent


def install() -> None:
    """Make ``import modules`` resolve to the double."""
    if str(HOST_DOUBLE) not in sys.path:
        sys.path.insert(0, str(HOST_DOUBLE))


@dataclass
class Tab:
    name: str
    runner: Any
    prompt: Any
    width: Any
    height: Any

    @property
    def script(self) -> Any:
        return self.runner.script("Tagger")

    def paste_fields(self) -> list:
        return [(self.prompt, "Prompt"), *self.runner.infotext_fields]

    def script_args(self, ours: list[Any] | None = None) -> list[Any]:
        """What the UI would submit: every input's current value, ours replaced by ``ours``."""
        args = [getattr(c, "value", None) for c in self.runner.inputs]
        args[0] = 0
        if ours is not None:
            script = self.script
            args[script.args_from:script.args_from + len(ours)] = ours
        return args


@dataclass
class WebUi:
    demo: Any
    app: Any
    tabs: dict[str, Tab] = field(default_factory=dict)

    def run(self, tab: str, ours: list[Any] | None = None, *, script_args: list[Any] | None = None,
            is_api: bool = False, **kwargs):
        """Run a whole job through ``processing.process_images``; returns (Processed, p).

        As the host's job wrappers do, ``state.begin()`` first clears Interrupt / Skip. ``is_api``: the job
        came from ``/sdapi/v1/txt2img`` or ``img2img`` (the host sets ``p.is_api`` there).
        """
        from modules import processing, shared

        cls = processing.StableDiffusionProcessingTxt2Img if tab == "txt2img" else \
            processing.StableDiffusionProcessingImg2Img
        p = cls(**kwargs)
        p.scripts = self.tabs[tab].runner
        p.script_args = tuple(script_args if script_args is not None else self.tabs[tab].script_args(ours))
        p.is_api = is_api
        shared.state.begin()
        return processing.process_images(p), p


def start_webui(**cmd_opts: Any) -> WebUi:
    """Start the double; ``cmd_opts`` set command-line flags first (e.g. ``api_auth="user:pass"``,
    ``api=False``) and stay set: a test that changes them restores them (``restore_cmd_opts``)."""
    install()
    import gradio as gr
    from fastapi import FastAPI
    from modules import call_queue, gradio_extensions, script_callbacks, scripts, shared
    from modules.api import api

    for name, value in cmd_opts.items():
        setattr(shared.cmd_opts, name, value)

    scripts.load_scripts([
        scripts.ScriptFile(str(ROOT), "tagger.py", str(ROOT / "scripts" / "tagger.py")),
        scripts.ScriptFile(str(HOST_DOUBLE), "xyz_grid.py", str(HOST_DOUBLE / "scripts" / "xyz_grid.py")),
    ])
    script_callbacks.ui_settings_callback()
    shared.opts.reorder()  # as modules/ui_settings.py does before it builds the Settings page
    script_callbacks.before_ui_callback()
    tabs = {}
    gradio_extensions.active = True
    try:
        with gr.Blocks() as demo:
            for name, runner in (("txt2img", scripts.scripts_txt2img), ("img2img", scripts.scripts_img2img)):
                scripts.scripts_current = runner
                runner.initialize_scripts(is_img2img=name == "img2img")
                prompt = gr.Textbox(value="", label="Prompt", elem_id=f"{name}_prompt")
                width = gr.Slider(minimum=64, maximum=2048, step=8, value=512, label="Width", elem_id=f"{name}_width")
                height = gr.Slider(minimum=64, maximum=2048, step=8, value=512, label="Height",
                                   elem_id=f"{name}_height")
                token_counter = gr.HTML(value="<span>0/75</span>", elem_id=f"{name}_token_counter",
                                        elem_classes=["token-counter"], visible=False)
                token_button = gr.Button(visible=False, elem_id=f"{name}_token_button")
                token_button.click(fn=count_tokens, inputs=[prompt], outputs=[token_counter])
                runner.setup_ui()
                tabs[name] = Tab(name, runner, prompt, width, height)
            scripts.scripts_current = None
    finally:
        gradio_extensions.active = False
    app = FastAPI()
    if shared.cmd_opts.api or shared.cmd_opts.nowebui:  # webui.py: create_api(app), then app_started
        api.Api(app, call_queue.queue_lock)
    script_callbacks.app_started_callback(demo, app)
    return WebUi(demo, app, tabs)


def restore_cmd_opts() -> None:
    """The double's default command-line flags (``--api``, nothing else)."""
    from modules import shared

    shared.cmd_opts.__dict__.update(nowebui=False, use_cpu=[], lowvram=False, medvram=False, api=True, api_auth=None)


_TOKEN = re.compile(r"[^\W_]+|[^\w\s]")


def count_tokens(prompt: str) -> str:
    """The token counter's text for ``prompt`` (the host counts CLIP tokens; words and marks stand in)."""
    return f"<span>{len(_TOKEN.findall(prompt or ''))}/75</span>"


class RecordingPipeline:
    def __init__(self, error: BaseException | None = None):
        self.calls: list[dict] = []
        self.error = error

    def __call__(self, prompts, settings, seeds, width, height, should_stop=None):
        self.calls.append({"prompts": list(prompts), "settings": settings, "seeds": list(seeds),
                           "size": (width, height)})
        if self.error is not None:
            raise self.error
        nl = settings.nl_prompt  # as TIPO's extend_tags adds the NL prompt, after the tags
        return [SimpleNamespace(prompt=f"{p}, tag_{s}" + (f", {nl}" if nl else ""), original=p, new_tags=[f"tag_{s}"],
                                nl_text=nl, model_input=f"<{p}>", seed=s, timings={"total": 0.01}, stopped=False)
                for p, s in zip(prompts, seeds)]
