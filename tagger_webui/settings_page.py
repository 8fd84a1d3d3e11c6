"""The "Tagger" section of the WebUI's Settings page, and applying it to the model manager."""

from __future__ import annotations

from typing import Any

from lib_tagger.models.registry import model_names
from lib_tagger.settings import DEFAULT_MODEL, PRECISIONS, PRESETS

from . import host

SECTION = ("tagger", "Tagger")
#: Our own Settings category (A1111 1.7+ and Forge list sections under category headings; the built-in
#: "Interrogate" section has none, so without one ours would sit under "Uncategorized").
CATEGORY = ("tagger", "Tagger")
DEVICES = ("auto", "cuda", "cpu")
#: option key → default, used before the Settings page has registered them.
DEFAULTS: dict[str, Any] = {
    "tagger_models_dir": "",
    "tagger_device": "auto",
    "tagger_gpu_offload": True,
    "tagger_keep_loaded": True,
    "tagger_default_model": DEFAULT_MODEL,
    "tagger_default_preset": "custom",
    "tagger_default_precision": "auto",
}


def value(key: str) -> Any:
    """The current value of one of our options."""
    return host.opt(key, DEFAULTS[key])


def models_dir() -> str:
    """The folder for tag models now: the setting, or ``<models>/tagger`` when it is empty."""
    return str(value("tagger_models_dir") or "").strip() or host.default_models_dir()


def register_options() -> None:
    """``on_ui_settings`` callback: add our options to the Settings page."""
    import gradio as gr

    def add(key: str, label: str, component: Any = None, args: Any = None, info: str = "") -> None:
        host.add_option(key, DEFAULTS[key], label, component, args, section=SECTION, category=CATEGORY,
                        info=info, onchange=apply_to_manager)

    add("tagger_models_dir", "Folder for tag models", info=f"empty: {host.default_models_dir()}")
    add("tagger_device", "Device for tag models", gr.Radio, {"choices": list(DEVICES)},
        info="auto: CUDA when available (honours --use-cpu)")
    add("tagger_gpu_offload", "Offload GGUF layers to the GPU (llama.cpp)", gr.Checkbox)
    add("tagger_keep_loaded", "Keep the tag model loaded between generations", gr.Checkbox,
        info="off: unload after each use to free RAM/VRAM")
    add("tagger_default_model", "Default model", host.editable_dropdown(), {"choices": model_names()},
        info="needs Reload UI")
    add("tagger_default_preset", "Default sampling preset", gr.Dropdown,
        {"choices": ["custom", *PRESETS]}, info="needs Reload UI")
    add("tagger_default_precision", "Default precision of torch tag models (Dart v2)", gr.Radio,
        {"choices": list(PRECISIONS)}, info="auto: 8-bit on a CPU that runs it; needs Reload UI")
    register_joytag_options()


def register_joytag_options() -> None:
    """The JoyTag part of our section (read by ``joytag_ui`` at every click, so no reload is needed)."""
    import gradio as gr

    from lib_tagger.devices import VISION_PRECISIONS

    from .joytag_ui import OPTION_DEFAULTS

    rows = (
        ("model", "JoyTag model: hub repo or local folder", None, None, ""),
        ("device", "JoyTag device", gr.Radio, {"choices": list(DEVICES)}, ""),
        ("precision", "JoyTag precision on a CPU", gr.Radio, {"choices": list(VISION_PRECISIONS)},
         "int8: ~1.5x faster, scores within 0.03; bf16: ~2x on CPUs with native bf16 (README, Benchmarks)"),
        ("keep_loaded", "Keep JoyTag loaded after interrogating", gr.Checkbox, None, "off: free RAM/VRAM after use"),
        ("prompt_mode", "Interrogate with JoyTag writes the tags", gr.Radio, {"choices": ["replace", "append"]},
         "replace the prompt, or append to it"),
        ("threshold", "JoyTag threshold", gr.Slider, {"minimum": 0.0, "maximum": 1.0, "step": 0.01},
         "0.4 is the author's operating point"),
        ("exclude", "JoyTag: tags never written", gr.Textbox, None, "comma separated, * wildcards"),
        ("always_add", "JoyTag: tags always written first", gr.Textbox, None, "comma separated"),
        ("top_k", "JoyTag: at most this many tags", gr.Slider, {"minimum": 0, "maximum": 200, "step": 1},
         "0: no limit"),
        ("sort", "JoyTag tag order", gr.Radio, {"choices": ["confidence", "alphabetical"]}, ""),
        ("replace_underscores", "JoyTag: spaces instead of underscores (emoticons kept)", gr.Checkbox, None, ""),
        ("escape_brackets", "JoyTag: escape brackets for the prompt, e.g. kamina \\(ttgl\\)", gr.Checkbox, None,
         ""),
        ("weighted", "JoyTag: write weights, e.g. (smile:0.87)", gr.Checkbox, None, ""),
        ("batch_size", "JoyTag batch size for folder captioning", gr.Slider, {"minimum": 1, "maximum": 64, "step": 1},
         ""),
    )
    for name, label, component, args, info in rows:
        key = f"tagger_joytag_{name}"
        host.add_option(key, OPTION_DEFAULTS[key], label, component, args, section=SECTION, category=CATEGORY,
                        info=info)


def manager_options() -> dict[str, Any]:
    """Keyword arguments for ``ModelManager.configure`` from the current options."""
    device = str(value("tagger_device") or "auto")
    if device == "auto" and host.host_cpu_forced():
        device = "cpu"
    return {
        "models_dir": models_dir(),
        "device": device,
        "gpu_offload": bool(value("tagger_gpu_offload")),
        "keep_loaded": bool(value("tagger_keep_loaded")),
        "before_load": host.free_vram,
    }


def apply_to_manager() -> Any:
    """Configure the process-wide model manager from the options; returns it."""
    from lib_tagger.models.manager import get_manager

    manager = get_manager()
    manager.configure(**manager_options())
    return manager
