"""The "Tagger" section of the WebUI's Settings page, and applying it to the model manager."""

from __future__ import annotations

from typing import Any

from lib_tagger.models.registry import model_names
from lib_tagger.settings import DEFAULT_MODEL, PRESETS

from . import host

SECTION = ("tagger", "Tagger")
DEVICES = ("auto", "cuda", "cpu")
#: option key → default, used before the Settings page has registered them.
DEFAULTS: dict[str, Any] = {
    "tagger_models_dir": "",
    "tagger_device": "auto",
    "tagger_gpu_offload": True,
    "tagger_keep_loaded": True,
    "tagger_default_model": DEFAULT_MODEL,
    "tagger_default_preset": "custom",
}


def value(key: str) -> Any:
    """The current value of one of our options."""
    return host.opt(key, DEFAULTS[key])


def register_options() -> None:
    """``on_ui_settings`` callback: add our options to the Settings page."""
    import gradio as gr

    def add(key: str, label: str, component: Any = None, args: Any = None, info: str = "") -> None:
        host.add_option(key, DEFAULTS[key], label, component, args, section=SECTION, info=info,
                        onchange=apply_to_manager)

    add("tagger_models_dir", "Folder for tag models", info=f"empty: {host.default_models_dir()}")
    add("tagger_device", "Device for tag models", gr.Radio, {"choices": list(DEVICES)},
        info="auto: CUDA when available (honours --use-cpu)")
    add("tagger_gpu_offload", "Offload GGUF layers to the GPU (llama.cpp)", gr.Checkbox)
    add("tagger_keep_loaded", "Keep the tag model loaded between generations", gr.Checkbox,
        info="off: unload after each use to free RAM/VRAM")
    add("tagger_default_model", "Default model", gr.Dropdown,
        {"choices": model_names(), "allow_custom_value": True}, info="needs Reload UI")
    add("tagger_default_preset", "Default sampling preset", gr.Dropdown,
        {"choices": ["custom", *PRESETS]}, info="needs Reload UI")


def manager_options() -> dict[str, Any]:
    """Keyword arguments for ``ModelManager.configure`` from the current options."""
    device = str(value("tagger_device") or "auto")
    if device == "auto" and host.host_cpu_forced():
        device = "cpu"
    return {
        "models_dir": str(value("tagger_models_dir") or "").strip() or host.default_models_dir(),
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
