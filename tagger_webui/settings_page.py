"""The "Tagger" section of the WebUI's Settings page, reading its values, and applying them to the model manager.

Every value is checked when it is read (:func:`value`): ``config.json`` and ``POST /sdapi/v1/options`` can hold
anything, of any type. A value that does not fit falls back to the default, with one warning line per key and
value, so that no stored setting of ours stops the WebUI from starting or a panel from being built.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from lib_tagger.models.registry import model_names
from lib_tagger.settings import DEFAULT_MODEL, PRECISIONS, PRESETS, SettingsError, UpsampleSettings

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
    "tagger_api_any_model_path": False,
    "tagger_default_precision": "auto",
}
#: Options that only the Settings page may change, not ``POST /sdapi/v1/options`` (they decide which files a
#: request may load).
API_RESTRICTED = ("tagger_models_dir", "tagger_api_any_model_path", "tagger_joytag_model")
#: Longest text value taken (a model name, a folder, a tag list).
MAX_TEXT = 4096

Check = Callable[[Any], Any]


def text(*, empty: bool = True) -> Check:
    """A string (stripped); ``empty=False``: not blank."""

    def check(raw: Any) -> str:
        if not isinstance(raw, str):
            raise ValueError(f"expected text, got {type(raw).__name__}")
        if len(raw) > MAX_TEXT:
            raise ValueError(f"longer than {MAX_TEXT} characters")
        if not empty and not raw.strip():
            raise ValueError("must not be empty")
        return raw.strip()

    return check


def choice(options: Sequence[str]) -> Check:
    def check(raw: Any) -> str:
        if not isinstance(raw, str) or raw not in options:
            raise ValueError(f"not one of {', '.join(options)}")
        return raw

    return check


def flag(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    raise ValueError(f"expected true or false, got {type(raw).__name__}")


def number(low: float, high: float, *, integer: bool = False) -> Check:
    """A number in ``[low, high]`` (sliders store floats: ``8.0`` is the integer 8)."""

    def check(raw: Any) -> float | int:
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            raise ValueError(f"expected a number, got {type(raw).__name__}")
        if not low <= raw <= high:
            raise ValueError(f"outside [{low:g}, {high:g}]")
        if integer:
            if raw != int(raw):
                raise ValueError("expected a whole number")
            return int(raw)
        return float(raw)

    return check


def tag_option(name: str, stored: type) -> Check:
    """A value of the ``TagOptions`` field ``name`` in the form the Settings page stores (``stored``: text, or a
    list for choices), checked by ``TagOptions`` itself."""
    from lib_tagger.interrogate.postprocess import TagOptions

    def check(raw: Any) -> Any:
        if type(raw) is not stored:
            raise ValueError(f"expected {'text' if stored is str else stored.__name__}, got {type(raw).__name__}")
        if isinstance(raw, str) and len(raw) > MAX_TEXT:
            raise ValueError(f"longer than {MAX_TEXT} characters")
        try:
            TagOptions(**{name: raw})
        except (TypeError, ValueError) as exc:  # OptionsError is a ValueError
            raise ValueError(str(exc)) from None
        return raw

    return check


def _checks() -> dict[str, Check]:
    """The check of every option we read (ours and the interrogators')."""
    from dataclasses import fields

    from lib_tagger.devices import VISION_PRECISIONS
    from lib_tagger.interrogate.postprocess import SORTS, TagOptions

    from .interrogate_service import OPTION_DEFAULTS, OPTION_PREFIX, PROMPT_MODES

    checks: dict[str, Check] = {
        "tagger_models_dir": text(),
        "tagger_device": choice(DEVICES),
        "tagger_gpu_offload": flag,
        "tagger_keep_loaded": flag,
        "tagger_default_model": text(empty=False),
        "tagger_default_preset": choice(["custom", *PRESETS]),
        "tagger_default_precision": choice(PRECISIONS),
        "tagger_api_any_model_path": flag,
        f"{OPTION_PREFIX}model": text(empty=False),
        f"{OPTION_PREFIX}device": choice(DEVICES),
        f"{OPTION_PREFIX}precision": choice(VISION_PRECISIONS),
        f"{OPTION_PREFIX}keep_loaded": flag,
        f"{OPTION_PREFIX}prompt_mode": choice(PROMPT_MODES),
        f"{OPTION_PREFIX}batch_size": number(1, 256, integer=True),
    }
    special: dict[str, Check] = {"threshold": number(0.0, 1.0), "top_k": number(0, 100_000, integer=True),
                                 "sort": choice(SORTS)}
    for item in fields(TagOptions):
        key = f"{OPTION_PREFIX}{item.name}"
        stored = type(OPTION_DEFAULTS[key])
        checks[key] = special.get(item.name) or (flag if stored is bool else tag_option(item.name, stored))
    return checks


_CHECKS: dict[str, Check] = {}
_warned: set[tuple[str, str]] = set()


def default(key: str) -> Any:
    """The default of one of our options (ours or JoyTag's)."""
    if key in DEFAULTS:
        return DEFAULTS[key]
    from .interrogate_service import OPTION_DEFAULTS

    return OPTION_DEFAULTS[key]


def value(key: str, fallback: Any = None) -> Any:
    """The current value of one of our options, checked; its default (one warning) when it does not fit.

    ``fallback`` is accepted for the ``get(key, default)`` form callers use, and ignored: the default is ours.
    """
    if not _CHECKS:
        _CHECKS.update(_checks())
    raw = host.opt(key, default(key))
    try:
        return _CHECKS[key](raw)
    except ValueError as exc:
        shown = repr(raw)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        if (key, shown) not in _warned:
            _warned.add((key, shown))
            host.warn(f"Tagger: setting {key} = {shown} is not usable ({exc}); using the default "
                      f"{default(key)!r}. Change it in Settings → Tagger.")
        return default(key)


def default_settings() -> UpsampleSettings:
    """The accordion's starting values (default model, preset and precision); never raises."""
    try:
        return UpsampleSettings(model=value("tagger_default_model"), preset=value("tagger_default_preset"),
                                precision=value("tagger_default_precision"))
    except SettingsError as exc:  # a value the checks let through but the settings refuse
        host.warn(f"Tagger: default settings are not usable ({exc}); using the built-in defaults")
        return UpsampleSettings()


def models_dir() -> str:
    """The folder for tag models now: the setting, or ``<models>/tagger`` when it is empty."""
    return value("tagger_models_dir") or host.default_models_dir()


def register_options() -> None:
    """``on_ui_settings`` callback: add our options to the Settings page."""
    import gradio as gr

    def add(key: str, label: str, component: Any = None, args: Any = None, info: str = "") -> None:
        host.add_option(key, DEFAULTS[key], label, component, args, section=SECTION, category=CATEGORY,
                        info=info, onchange=apply_to_manager, restrict_api=key in API_RESTRICTED)

    add("tagger_models_dir", "Folder for tag models", info=f"empty: {host.default_models_dir()}")
    add("tagger_device", "Device for tag models", gr.Radio, {"choices": list(DEVICES)},
        info="auto: CUDA when available (honours --use-cpu; on Forge, also its own device choice)")
    add("tagger_gpu_offload", "Offload GGUF layers to the GPU (llama.cpp)", gr.Checkbox)
    add("tagger_keep_loaded", "Keep the tag model loaded between generations", gr.Checkbox,
        info="off: unload after each use to free RAM/VRAM")
    add("tagger_default_model", "Default model", host.editable_dropdown(), {"choices": model_names()},
        info="needs Reload UI")
    add("tagger_default_preset", "Default sampling preset", gr.Dropdown,
        {"choices": ["custom", *PRESETS]}, info="needs Reload UI")
    add("tagger_api_any_model_path", "HTTP API: accept any model path on this computer", gr.Checkbox,
        info="off: API requests may name a registry model or a path inside the models folder only")
    add("tagger_default_precision", "Default precision of torch tag models (Dart v2)", gr.Radio,
        {"choices": list(PRECISIONS)}, info="auto: 8-bit on a CPU that runs it; needs Reload UI")
    register_joytag_options()


def register_joytag_options() -> None:
    """The interrogation part of our section (read at every click, so no reload is needed).

    The tag option rows come from ``TagOptions``' fields: label, help and widget from their metadata.
    """
    import gradio as gr

    from lib_tagger.devices import VISION_PRECISIONS
    from lib_tagger.interrogate.specs import interrogator_names

    from .interrogate_service import OPTION_DEFAULTS, OPTION_PREFIX

    rows: list[tuple[str, str, Any, Any, str]] = [
        ("model", "Interrogator (the 🏷️ button, folder captions, the API)", editable_dropdown(),
         {"choices": interrogator_names()}, "JoyTag or a WD v3 tagger; also a hub repo id or a local folder"),
        ("device", "Interrogator device", gr.Radio, {"choices": list(DEVICES)}, ""),
        ("precision", "Interrogator precision on a CPU", gr.Radio, {"choices": list(VISION_PRECISIONS)},
         "int8: ~1.3x faster at batch 1, scores within 0.03; bf16: ~2x on CPUs with native bf16 (README, Benchmarks)"),
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
                        info=info, restrict_api=key in API_RESTRICTED)


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
    if item.name == "exclude":  # the host sizes a text box while the Settings page is hidden, so a one-line box
        return item.name, label, gr.Textbox, {"lines": 4}, info  # would cut the default list after its first line
    return item.name, label, gr.Textbox, None, info


def resolve_device(device: str) -> str:
    """``device`` ("auto", "cuda", "cpu"), with "auto" made "cpu" where the host runs us on the CPU."""
    device = str(device or "auto")
    return "cpu" if device == "auto" and host.host_cpu_forced() else device


def manager_options() -> dict[str, Any]:
    """Keyword arguments for ``ModelManager.configure`` from the current options."""
    return {
        "models_dir": models_dir(),
        "device": resolve_device(value("tagger_device")),
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
