"""Double of modules/infotext_utils.py: quoting, parsing infotext, and pasting it into fields
(``connect_paste``'s function, run directly: parse → ``infotext_pasted`` callbacks → one value per
field)."""

from __future__ import annotations

import json
import re

import gradio as gr
from modules import errors, script_callbacks, shared

re_param_code = r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)'
re_param = re.compile(re_param_code)
re_imagesize = re.compile(r"^(\d+)x(\d+)$")
type_of_gr_update = type(gr.update())


class PasteField(tuple):
    def __new__(cls, component, target, *, api=None):
        return super().__new__(cls, (component, target))

    def __init__(self, component, target, *, api=None):
        super().__init__()
        self.api = api
        self.component = component
        self.label = target if isinstance(target, str) else None
        self.function = target if callable(target) else None


def quote(text):
    if "," not in str(text) and "\n" not in str(text) and ":" not in str(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def unquote(text):
    if len(text) == 0 or text[0] != '"' or text[-1] != '"':
        return text
    try:
        return json.loads(text)
    except Exception:
        return text


def parse_generation_parameters(x: str, skip_fields: list[str] | None = None) -> dict:
    if skip_fields is None:
        skip_fields = shared.opts.infotext_skip_pasting
    res: dict = {}
    prompt = ""
    negative_prompt = ""
    done_with_prompt = False
    *lines, lastline = x.strip().split("\n")
    if len(re_param.findall(lastline)) < 3:
        lines.append(lastline)
        lastline = ""
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            done_with_prompt = True
            line = line[16:].strip()
        if done_with_prompt:
            negative_prompt += ("" if negative_prompt == "" else "\n") + line
        else:
            prompt += ("" if prompt == "" else "\n") + line
    for k, v in re_param.findall(lastline):
        if v and v[0] == '"' and v[-1] == '"':
            v = unquote(v)
        m = re_imagesize.match(v)
        if m is not None:
            res[f"{k}-1"] = m.group(1)
            res[f"{k}-2"] = m.group(2)
        else:
            res[k] = v
    if shared.opts.infotext_styles != "Ignore":
        found, prompt_no_styles, negative_no_styles = shared.prompt_styles.extract_styles_from_prompt(
            prompt, negative_prompt)
        prompt, negative_prompt = prompt_no_styles, negative_no_styles
        if found:
            res["Styles array"] = found
    if res.get("Hires prompt") == prompt:  # (:288-292) a hires prompt equal to the prompt pastes as empty
        res["Hires prompt"] = ""
    res["Prompt"] = prompt
    res["Negative prompt"] = negative_prompt
    res.setdefault("Hires prompt", "")  # (:324-325)
    for key in skip_fields:
        res.pop(key, None)
    return res


def paste(infotext: str, paste_fields: list) -> list:
    """What ``connect_paste``'s click handler returns: one update per field, in order."""
    params = parse_generation_parameters(infotext)
    script_callbacks.infotext_pasted_callback(infotext, params)
    res = []
    for output, key in paste_fields:
        if callable(key):
            try:
                v = key(params)
            except Exception:
                errors.report(f"Error executing {key}", exc_info=True)
                v = None
        else:
            v = params.get(key, None)
        if v is None:
            res.append(gr.update())
        elif isinstance(v, type_of_gr_update):
            res.append(v)
        else:
            try:
                valtype = type(output.value)
                if valtype is bool and v == "False":
                    val = False
                elif valtype is int:
                    val = float(v)
                else:
                    val = valtype(v)
                res.append(gr.update(value=val))
            except Exception:
                res.append(gr.update())
    return res
