"""Double of modules/styles.py: merge styles into prompts and find them again (host semantics)."""

from __future__ import annotations

from typing import NamedTuple


class PromptStyle(NamedTuple):
    name: str
    prompt: str | None
    negative_prompt: str | None
    path: str | None = None


def merge_prompts(style_prompt: str, prompt: str) -> str:
    if "{prompt}" in style_prompt:
        return style_prompt.replace("{prompt}", prompt)
    return ", ".join(filter(None, (prompt.strip(), style_prompt.strip())))


def extract_style_text_from_prompt(style_text: str, prompt: str) -> tuple[bool, str]:
    stripped_prompt = prompt.strip()
    stripped_style = style_text.strip()
    if "{prompt}" in stripped_style:
        left, _, right = stripped_style.partition("{prompt}")
        if stripped_prompt.startswith(left) and stripped_prompt.endswith(right):
            return True, stripped_prompt[len(left):len(stripped_prompt) - len(right)]
    elif stripped_prompt.endswith(stripped_style):
        prompt = stripped_prompt[:len(stripped_prompt) - len(stripped_style)]
        if prompt.endswith(", "):
            prompt = prompt[:-2]
        return True, prompt
    return False, prompt


class StyleDatabase:
    def __init__(self) -> None:
        self.styles: dict[str, PromptStyle] = {}

    def apply_styles_to_prompt(self, prompt: str, styles: list[str]) -> str:
        for name in styles:
            style = self.styles.get(name)
            if style is not None and style.prompt:
                prompt = merge_prompts(style.prompt, prompt)
        return prompt

    def apply_negative_styles_to_prompt(self, prompt: str, styles: list[str]) -> str:
        for name in styles:
            style = self.styles.get(name)
            if style is not None and style.negative_prompt:
                prompt = merge_prompts(style.negative_prompt, prompt)
        return prompt

    def extract_styles_from_prompt(self, prompt: str, negative_prompt: str):
        extracted = []
        applicable = list(self.styles.values())
        while True:
            found = None
            for style in applicable:
                if not style.prompt and not style.negative_prompt:
                    continue
                ok_pos, new_prompt = extract_style_text_from_prompt(style.prompt or "", prompt)
                ok_neg, new_negative = extract_style_text_from_prompt(style.negative_prompt or "", negative_prompt)
                if ok_pos and ok_neg:
                    found, prompt, negative_prompt = style, new_prompt, new_negative
                    break
            if found is None:
                break
            applicable.remove(found)
            extracted.append(found.name)
        return list(reversed(extracted)), prompt, negative_prompt
