"""Double of modules/script_callbacks.py: the callback registries the extension uses, and the
host's runners for them (each callback wrapped in try/except + report, like the host)."""

from __future__ import annotations

import dataclasses
import inspect
import os
from typing import Any

from modules import errors


@dataclasses.dataclass
class ScriptCallback:
    script: str
    callback: Any
    name: str = "unnamed"


callback_map: dict[str, list[ScriptCallback]] = {
    "callbacks_app_started": [],
    "callbacks_ui_settings": [],
    "callbacks_infotext_pasted": [],
    "callbacks_before_ui": [],
    "callbacks_after_component": [],
    "callbacks_script_unloaded": [],
    "callbacks_ui_tabs": [],
}


def clear_callbacks() -> None:
    for callbacks in callback_map.values():
        callbacks.clear()


def add_callback(callbacks, fun, *, name=None, category="unknown", filename=None):
    """As the host's: without ``filename`` the registering file is found by walking the call stack."""
    if filename is None:
        stack = [x for x in inspect.stack() if x.filename != __file__]
        filename = stack[0].filename if stack else "unknown file"
    callback_name = f"{os.path.basename(filename)}/{category}" + (f"/{name}" if name is not None else "")
    callbacks.append(ScriptCallback(filename, fun, callback_name))


def _add(category: str, callback, name=None) -> None:
    add_callback(callback_map[f"callbacks_{category}"], callback, name=name, category=category)


def _run(category: str, *args) -> None:
    for c in callback_map[f"callbacks_{category}"]:
        try:
            c.callback(*args)
        except Exception:
            errors.report(f"Error executing callback {c.name} for {category}", exc_info=True)


def on_app_started(callback, *, name=None):
    _add("app_started", callback, name)


def on_ui_settings(callback, *, name=None):
    _add("ui_settings", callback, name)


def on_infotext_pasted(callback, *, name=None):
    _add("infotext_pasted", callback, name)


def on_before_ui(callback, *, name=None):
    _add("before_ui", callback, name)


def on_after_component(callback, *, name=None):
    _add("after_component", callback, name)


def on_script_unloaded(callback, *, name=None):
    _add("script_unloaded", callback, name)


def on_ui_tabs(callback, *, name=None):
    _add("ui_tabs", callback, name)


def app_started_callback(demo, app) -> None:
    _run("app_started", demo, app)


def ui_settings_callback() -> None:
    _run("ui_settings")


def infotext_pasted_callback(infotext: str, params: dict[str, Any]) -> None:
    _run("infotext_pasted", infotext, params)


def before_ui_callback() -> None:
    for c in reversed(callback_map["callbacks_before_ui"]):
        try:
            c.callback()
        except Exception:
            errors.report(f"Error executing callback {c.name} for before_ui", exc_info=True)


def after_component_callback(component, **kwargs) -> None:
    for c in callback_map["callbacks_after_component"]:
        try:
            c.callback(component, **kwargs)
        except Exception:
            errors.report(f"Error executing callback {c.name} for after_component", exc_info=True)


def script_unloaded_callback() -> None:
    _run("script_unloaded")
