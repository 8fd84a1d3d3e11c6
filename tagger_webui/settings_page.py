"""The "Tagger" section of the WebUI's Settings page, and applying it to the model manager."""

from __future__ import annotations

from typing import Any

from lib_tagger.models.registry import model_names
from lib_tagger.settings import DEFAULT_MODEL, PRESETS

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
    register_joytag_options()


def register_joytag_options() -> None:
    """The interrogation part of our section (read at every click, so no reload is needed).

    The tag option rows come from ``TagOptions``' fields: label, help and widget from their metadata.
    """
    import gradio as gr

    from lib_tagger.interrogate.specs import interrogator_names

    from .interrogate_service import OPTION_DEFAULTS, OPTION_PREFIX

    rows: list[tuple[str, str, Any, Any, str]] = [
        ("model", "Interrogator (the 🏷️ button, folder captions, the API)", editable_dropdown(),
         {"choices": interrogator_names()}, "JoyTag or a WD v3 tagger; also a hub repo id or a local folder"),
        ("device", "Interrogator device", gr.Radio, {"choices": list(DEVICES)}, ""),
        ("keep_loaded", "Keep the interrogator loaded after use", gr.Checkbox, None, "off: free RAM/VRAM after use"),
        ("prompt_mode", "The 🏷️ button writes the tags", gr.Radio, {"choices": ["replace", "append"]},
         "replace the prompt, or append to it"),
    ]
    rows += [tag_option_row(item) for item in _tag_option_fields()]
    rows.append(("batch_size", "Batch size for folder captioning", gr.Slider,
                 {"minimum": 1, "maximum": 64, "step": 1}, ""))
    for name, label, component, args, info in rows:
        key = f"{OPTION_PREFIX}{name}"
        host.add_option(key, OPTION_DEFAULTS[key], label, component, args, section=SECTION, category=CATEGORY,
                        info=info)


def editable_dropdown() -> Any:
    return host.editable_dropdown()


def _tag_option_fields() -> list:
    from dataclasses import fields

    from lib_tagger.interrogate.postprocess import TagOptions

    return list(fields(TagOptions))


def tag_option_row(item: Any) -> tuple[str, str, Any, Any, str]:
    """``(name, label, component, component args, info)`` of one ``TagOptions`` field, from its metadata."""
    import gradio as gr

    meta = item.metadata
    label, info = f"Interrogate: {meta['label']}", meta.get("help", "")
    if "choices" in meta and item.name == "mcut":
        return item.name, label, gr.CheckboxGroup, {"choices": list(meta["choices"])}, info
    if "choices" in meta:
        return item.name, label, gr.Radio, {"choices": list(meta["choices"])}, info
    if "maximum" in meta:
        step = 0.01 if isinstance(meta["maximum"], float) else 1
        return item.name, label, gr.Slider, {"minimum": meta["minimum"], "maximum": meta["maximum"], "step": step}, info
    if isinstance(item.default, bool):
        return item.name, label, gr.Checkbox, None, info
    return item.name, label, gr.Textbox, None, info


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
