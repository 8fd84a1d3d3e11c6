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
from lib_tagger.settings import DEFAULT_MODEL, PRESETS, SettingsError, UpsampleSettings

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


def _checks() -> dict[str, Check]:
    """The check of every option we read (ours and JoyTag's)."""
    from lib_tagger.joytag.postprocess import SORTS

    from .joytag_ui import PROMPT_MODES

    return {
        "tagger_models_dir": text(),
        "tagger_device": choice(DEVICES),
        "tagger_gpu_offload": flag,
        "tagger_keep_loaded": flag,
        "tagger_default_model": text(empty=False),
        "tagger_default_preset": choice(["custom", *PRESETS]),
        "tagger_api_any_model_path": flag,
        "tagger_joytag_model": text(empty=False),
        "tagger_joytag_device": choice(DEVICES),
        "tagger_joytag_keep_loaded": flag,
        "tagger_joytag_prompt_mode": choice(PROMPT_MODES),
        "tagger_joytag_threshold": number(0.0, 1.0),
        "tagger_joytag_exclude": text(),
        "tagger_joytag_always_add": text(),
        "tagger_joytag_top_k": number(0, 100_000, integer=True),
        "tagger_joytag_sort": choice(SORTS),
        "tagger_joytag_replace_underscores": flag,
        "tagger_joytag_escape_brackets": flag,
        "tagger_joytag_weighted": flag,
        "tagger_joytag_batch_size": number(1, 256, integer=True),
    }


_CHECKS: dict[str, Check] = {}
_warned: set[tuple[str, str]] = set()


def default(key: str) -> Any:
    """The default of one of our options (ours or JoyTag's)."""
    if key in DEFAULTS:
        return DEFAULTS[key]
    from .joytag_ui import OPTION_DEFAULTS

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
    """The accordion's starting values (default model and preset); never raises."""
    try:
        return UpsampleSettings(model=value("tagger_default_model"), preset=value("tagger_default_preset"))
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
        info="auto: CUDA when available (honours --use-cpu)")
    add("tagger_gpu_offload", "Offload GGUF layers to the GPU (llama.cpp)", gr.Checkbox)
    add("tagger_keep_loaded", "Keep the tag model loaded between generations", gr.Checkbox,
        info="off: unload after each use to free RAM/VRAM")
    add("tagger_default_model", "Default model", host.editable_dropdown(), {"choices": model_names()},
        info="needs Reload UI")
    add("tagger_default_preset", "Default sampling preset", gr.Dropdown,
        {"choices": ["custom", *PRESETS]}, info="needs Reload UI")
    add("tagger_api_any_model_path", "HTTP API: accept any model path on this computer", gr.Checkbox,
        info="off: API requests may name a registry model or a path inside the models folder only")
    register_joytag_options()


def register_joytag_options() -> None:
    """The JoyTag part of our section (read by ``joytag_ui`` at every click, so no reload is needed)."""
    import gradio as gr

    from .joytag_ui import OPTION_DEFAULTS

    rows = (
        ("model", "JoyTag model: hub repo or local folder", None, None, ""),
        ("device", "JoyTag device", gr.Radio, {"choices": list(DEVICES)}, ""),
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
                        info=info, restrict_api=key in API_RESTRICTED)


def manager_options() -> dict[str, Any]:
    """Keyword arguments for ``ModelManager.configure`` from the current options."""
    device = value("tagger_device")
    if device == "auto" and host.host_cpu_forced():
        device = "cpu"
    return {
        "models_dir": models_dir(),
        "device": device,
        "gpu_offload": value("tagger_gpu_offload"),
        "keep_loaded": value("tagger_keep_loaded"),
        "before_load": host.free_vram,
    }


def apply_to_manager() -> Any:
    """Configure the process-wide model manager from the options; returns it."""
    from lib_tagger.models.manager import get_manager

    manager = get_manager()
    manager.configure(**manager_options())
    return manager
