"""Double of the script-argument part of modules/api/api.py (v1.10.1 :300-361).

Default args come from calling every script's ``ui()`` again under a throw-away ``gr.Blocks``;
``alwayson_scripts`` entries are matched by title, case-insensitively, and their ``args`` are
copied positionally (a shorter list keeps the defaults)."""

from __future__ import annotations

import gradio as gr
from fastapi import HTTPException


def script_name_to_index(name, scripts):
    try:
        return [script.title().lower() for script in scripts].index(name.lower())
    except Exception as e:
        raise HTTPException(status_code=422, detail=f"Script '{name}' not found") from e


def get_script(script_name, script_runner):
    if not script_name:
        return None
    return script_runner.scripts[script_name_to_index(script_name, script_runner.scripts)]


def init_default_script_args(script_runner) -> list:
    last_arg_index = 1
    for script in script_runner.scripts:
        last_arg_index = max(last_arg_index, script.args_to)
    script_args = [None] * last_arg_index
    script_args[0] = 0
    with gr.Blocks():
        for script in script_runner.scripts:
            if script.ui(script.is_img2img):
                ui_default_values = [elem.value for elem in script.ui(script.is_img2img)]
                script_args[script.args_from:script.args_to] = ui_default_values
    return script_args


def init_script_args(alwayson_scripts: dict | None, default_script_args: list, script_runner) -> list:
    script_args = default_script_args.copy()
    for name, entry in (alwayson_scripts or {}).items():
        script = get_script(name, script_runner)
        if script is None:
            raise HTTPException(status_code=422, detail=f"always on script {name} not found")
        if script.alwayson is False:
            raise HTTPException(status_code=422,
                                detail="Cannot have a selectable script in the always on scripts params")
        if "args" in entry:
            for idx in range(0, min(script.args_to - script.args_from, len(entry["args"]))):
                script_args[script.args_from + idx] = entry["args"][idx]
    return script_args
