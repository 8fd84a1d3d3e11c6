"""The always-visible Script: builds the accordion and rewrites prompts during a generation.

Timing "per_image" (default) runs in ``process()``, after styles and wildcards: every image gets
its own tags from its own seed (``p.all_seeds[i]``; in "fixed" seed mode ``seed + i``, with a
random ``seed`` drawn once per job when it is -1). Timing "before_styles" runs once in
``before_process()`` and rewrites ``p.prompt`` before the host applies styles. Negative prompts are
never touched. Any failure leaves every prompt exactly as it was: the error is printed (one line
and a traceback), recorded in the infotext as ``Tagger error`` and shown in the last-result box.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import modules.scripts as scripts

from lib_tagger.settings import FIELD_ORDER, SettingsError, UpsampleSettings

from . import host, infotext, settings_page

TITLE = "Tagger"
#: ``p`` attribute holding per-cell overrides set by X/Y/Z plot axes.
OVERRIDES_ATTR = "tagger_overrides"
_SEED_LIMIT = 2**32 - 1

_last_results: dict[str, str] = {}
_last_lock = threading.Lock()


def last_result(tab: str) -> str:
    """The summary (or error) of the last upsampling in ``tab``."""
    with _last_lock:
        return _last_results.get(tab, "")


def _set_last(tab: str, text: str) -> None:
    with _last_lock:
        _last_results[tab] = text


def settings_from_script_args(args: Sequence[Any]) -> UpsampleSettings:
    """Settings from the script args: positional in FIELD_ORDER, or ONE dict of named settings
    (the API form; a dict without "enabled" means enabled)."""
    if args and isinstance(args[0], Mapping):
        return UpsampleSettings.from_dict({"enabled": True, **args[0]})
    return UpsampleSettings.from_args(*args[: len(FIELD_ORDER)])


def apply_overrides(settings: UpsampleSettings, overrides: Mapping[str, Any]) -> UpsampleSettings:
    """Settings with X/Y/Z overrides applied; an overridden sampling value leaves the preset for
    "custom", keeping the preset's other values."""
    if not overrides:
        return settings
    changes = {"enabled": True, **overrides}
    sampling_keys = {"temperature", "top_p", "top_k", "min_p"}
    if sampling_keys & set(overrides) and settings.preset != "custom":
        temperature, top_p, top_k, min_p = settings.sampling()
        base = {"temperature": temperature, "top_p": top_p, "top_k": top_k, "min_p": min_p, "preset": "custom"}
        changes = {**base, **changes}
    return settings.replace(**changes)


def tag_seeds(settings: UpsampleSettings, image_seeds: Sequence[int]) -> list[int]:
    """The seed of each image's tags: the image's own seed, or the fixed seed + i."""
    if settings.seed_mode == "image":
        return [int(s) for s in image_seeds]
    base = settings.seed if settings.seed >= 0 else random.randrange(_SEED_LIMIT)
    return [base + i for i in range(len(image_seeds))]


def upsample(prompts: Sequence[str], settings: UpsampleSettings, seeds: Sequence[int], width: int,
             height: int) -> list[Any]:
    """Run the core pipeline with the manager configured from the Settings page."""
    from lib_tagger.upsample import upsample_prompts

    manager = settings_page.apply_to_manager()
    return upsample_prompts(list(prompts), settings, seeds=list(seeds), width=int(width), height=int(height),
                            manager=manager)


def insert_same_tags(prompt: str, new_tags: list[str], position: str) -> str:
    """``prompt`` with tags another prompt received (a separate hires prompt)."""
    from lib_tagger.prompt import insert_tags
    from lib_tagger.tags import get_tag_db

    return insert_tags(prompt, new_tags, position, canonical=get_tag_db().canonical).prompt


def summary(results: Sequence[Any], seeds: Sequence[int]) -> str:
    """The last-result text: each image's seed, new tags and time."""
    lines = []
    for i, (result, seed) in enumerate(zip(results, seeds)):
        seconds = result.timings.get("total", 0.0)
        lines.append(f"#{i} seed {seed} ({seconds:.2f}s): {', '.join(result.new_tags) or '(no new tags)'}")
    return "\n".join(lines)


class TaggerScript(scripts.Script):
    """Prompt upsampling with Danbooru-tag language models."""

    def __init__(self) -> None:
        self._host_components: dict[str, Any] = {}
        for tab in ("txt2img", "img2img"):
            for part in ("prompt", "width", "height"):
                self.on_after_component(self._capture(part), elem_id=f"{tab}_{part}")

    def _capture(self, part: str):
        def store(event: Any) -> None:
            self._host_components[part] = event.component

        return store

    def title(self) -> str:
        return TITLE

    def show(self, is_img2img: bool) -> Any:
        return scripts.AlwaysVisible

    def ui(self, is_img2img: bool) -> list[Any]:
        from . import ui as tagger_ui

        tab = "img2img" if is_img2img else "txt2img"
        defaults = UpsampleSettings(model=str(settings_page.value("tagger_default_model")),
                                    preset=str(settings_page.value("tagger_default_preset")),
                                    precision=str(settings_page.value("tagger_default_precision")))
        parts = tagger_ui.build(tab, defaults)
        host_inputs = [self._host_components.get(part) for part in ("prompt", "width", "height")]
        if all(component is not None for component in host_inputs):
            tagger_ui.wire(parts, host_inputs, self._preview_fn(tab), lambda: last_result(tab))
        self.infotext_fields = parts.infotext_fields
        self.paste_field_names = parts.paste_field_names
        return parts.controls

    def _preview_fn(self, tab: str):
        def preview(prompt: str, width: float, height: float, *values: Any) -> tuple[str, str]:
            return preview_prompt(tab, prompt, width, height, values)

        return preview

    def before_process(self, p: Any, *args: Any) -> None:
        settings = self._settings(p, args, report=False)  # process() reports invalid settings
        if settings is None or not settings.enabled or settings.timing != "before_styles":
            return
        upsample_before_styles(p, settings, self._tab())

    def process(self, p: Any, *args: Any) -> None:
        settings = self._settings(p, args, report=True)
        if settings is None or not settings.enabled or settings.timing != "per_image":
            return
        upsample_per_image(p, settings, self._tab())

    def _tab(self) -> str:
        return "img2img" if self.is_img2img else "txt2img"

    def _settings(self, p: Any, args: Sequence[Any], *, report: bool) -> UpsampleSettings | None:
        """The job's settings; None when the tagger is off or (reported when asked) invalid."""
        overrides = getattr(p, OVERRIDES_ATTR, None) or {}
        if not overrides and (not args or (not isinstance(args[0], Mapping) and not args[0])):
            return None  # accordion closed: nothing to validate
        try:
            return apply_overrides(settings_from_script_args(args), overrides)
        except SettingsError as exc:
            if report:
                _fail(p, exc, self._tab(), "invalid settings")
            return None


def _fail(p: Any, exc: BaseException, tab: str, what: str = "upsampling failed") -> None:
    host.report(f"Tagger: {what}, prompts left unchanged: {infotext.error_text(exc)}")
    if p is not None:
        p.extra_generation_params.update(infotext.error_params(exc))
    _set_last(tab, f"Tagger error: {infotext.error_text(exc)}")


def upsample_per_image(p: Any, settings: UpsampleSettings, tab: str) -> None:
    """Rewrite ``p.all_prompts`` (and hires prompts) image by image; on failure change nothing."""
    originals = list(p.all_prompts)
    hires = list(p.all_hr_prompts) if getattr(p, "enable_hr", False) and getattr(p, "all_hr_prompts", None) else None
    try:
        seeds = tag_seeds(settings, p.all_seeds)
        results = upsample(originals, settings, seeds, p.width, p.height)
        new_hires = None
        if hires is not None:
            new_hires = [result.prompt if hr == original else insert_same_tags(hr, result.new_tags, settings.position)
                         for hr, original, result in zip(hires, originals, results)]
    except Exception as exc:
        _fail(p, exc, tab)
        return
    p.all_prompts = [result.prompt for result in results]
    p.main_prompt = p.all_prompts[0]
    if getattr(p, "prompt_for_display", None) is None and isinstance(p.prompt, str):
        p.prompt_for_display = p.prompt
    separate_hires = hires is not None and hires != originals
    if new_hires is not None:
        p.all_hr_prompts = new_hires
    p.extra_generation_params.update(
        infotext.generation_params(settings, originals, seeds, hires if separate_hires else None))
    _set_last(tab, summary(results, seeds))


def upsample_before_styles(p: Any, settings: UpsampleSettings, tab: str) -> None:
    """Rewrite ``p.prompt`` once, before the host applies styles; on failure change nothing."""
    prompts = list(p.prompt) if isinstance(p.prompt, list) else [p.prompt]
    hr_prompt = getattr(p, "hr_prompt", "")
    separate_hires = bool(getattr(p, "enable_hr", False)) and isinstance(hr_prompt, str) and hr_prompt not in (
        "", prompts[0])
    try:
        host.fix_seed(p)
        first_seed = p.seed[0] if isinstance(p.seed, list) else p.seed
        seeds = tag_seeds(settings, [int(first_seed) + i for i in range(len(prompts))])
        results = upsample(prompts, settings, seeds, p.width, p.height)
        new_hr = insert_same_tags(hr_prompt, results[0].new_tags, settings.position) if separate_hires else None
    except Exception as exc:
        _fail(p, exc, tab)
        return
    new_prompts = [result.prompt for result in results]
    p.prompt = new_prompts if isinstance(p.prompt, list) else new_prompts[0]
    p.prompt_for_display = new_prompts[0]
    if new_hr is not None:
        p.hr_prompt = new_hr
    originals: list[str] | str = prompts if len(prompts) > 1 else prompts[0]
    p.extra_generation_params.update(infotext.generation_params(
        settings, originals, seeds if len(seeds) > 1 else seeds[0], hr_prompt if separate_hires else None))
    _set_last(tab, summary(results, seeds))


def preview_prompt(tab: str, prompt: str, width: float, height: float, values: Sequence[Any]) -> tuple[str, str]:
    """"Upsample now": (new prompt, details) for the tab's prompt box, without generating."""
    try:
        settings = settings_from_script_args(values).replace(enabled=True)
        seed = settings.seed if settings.seed_mode == "fixed" and settings.seed >= 0 else random.randrange(_SEED_LIMIT)
        with host.gpu_lock():
            result = upsample([prompt or ""], settings, [seed], int(width or 1024), int(height or 1024))[0]
    except Exception as exc:
        host.report(f"Tagger: preview failed: {infotext.error_text(exc)}")
        text = f"Tagger error: {infotext.error_text(exc)}"
        _set_last(tab, text)
        return text, text
    details = f"{summary([result], [seed])}\nmodel input: {result.model_input}"
    _set_last(tab, details)
    return result.prompt, details
