"""Double of modules/api/api.py (v1.10.1): the ``Api`` object's start-up, its ``--api-auth`` guard,
a few of its routes, and the script-argument part (:300-361).

``Api(app, queue_lock)`` (created by webui.py before the ``app_started`` callbacks run) parses
``--api-auth`` (``user:pass,user2:pass2``, split on ``:`` as the host does), adds every route through
``add_api_route``, which puts ``Depends(self.auth)`` (HTTP Basic, 401 otherwise) on it when the flag is
set (:274-285), and computes both tabs' default script args at once (:258-271): calling every script's
``ui()`` again under a throw-away ``gr.Blocks``, outside any try/except, so a ``ui()`` that raises stops
the WebUI from starting. ``alwayson_scripts`` entries are matched by title, case-insensitively, and their
``args`` are copied positionally (a shorter list keeps the defaults)."""

from __future__ import annotations

from secrets import compare_digest
from typing import Any

import gradio as gr
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from modules import scripts, shared


class Api:
    def __init__(self, app: FastAPI, queue_lock) -> None:
        if shared.cmd_opts.api_auth:
            self.credentials = {}
            for auth in shared.cmd_opts.api_auth.split(","):
                user, password = auth.split(":")
                self.credentials[user] = password
        self.app = app
        self.queue_lock = queue_lock
        self.add_api_route("/sdapi/v1/progress", self.progressapi, methods=["GET"])
        self.add_api_route("/sdapi/v1/interrupt", self.interruptapi, methods=["POST"])
        self.add_api_route("/sdapi/v1/skip", self.skip, methods=["POST"])
        self.add_api_route("/sdapi/v1/options", self.get_config, methods=["GET"])
        self.add_api_route("/sdapi/v1/options", self.set_config, methods=["POST"])
        self.default_script_arg_txt2img = init_default_script_args(scripts.scripts_txt2img)
        self.default_script_arg_img2img = init_default_script_args(scripts.scripts_img2img)

    def add_api_route(self, path: str, endpoint, **kwargs):
        if shared.cmd_opts.api_auth:
            return self.app.add_api_route(path, endpoint, dependencies=[Depends(self.auth)], **kwargs)
        return self.app.add_api_route(path, endpoint, **kwargs)

    def auth(self, credentials: HTTPBasicCredentials = Depends(HTTPBasic())):  # noqa: B008
        if credentials.username in self.credentials and compare_digest(
                credentials.password, self.credentials[credentials.username]):
            return True
        raise HTTPException(status_code=401, detail="Incorrect username or password",
                            headers={"WWW-Authenticate": "Basic"})

    def progressapi(self):
        return {"progress": 0, "state": {"interrupted": shared.state.interrupted, "skipped": shared.state.skipped}}

    def interruptapi(self):
        shared.state.interrupt()
        return {}

    def skip(self):
        shared.state.skip()

    def get_config(self):
        return {key: shared.opts.data.get(key, info.default) for key, info in shared.opts.data_labels.items()}

    def set_config(self, req: dict[str, Any]):
        for k, v in req.items():
            shared.opts.set(k, v, is_api=True)
        return


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
