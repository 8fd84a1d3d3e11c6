"""Our part of the infotext: what a generation records, and how pasting it restores the settings
and the user's own prompt (so regenerating does not add tags twice)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lib_tagger.settings import FIELD_ORDER, INFOTEXT_PREFIX, SettingsError, UpsampleSettings, infotext_key

MODEL_KEY = f"{INFOTEXT_PREFIX} model"
ORIGINAL_KEY = f"{INFOTEXT_PREFIX} original prompt"
ORIGINAL_HIRES_KEY = f"{INFOTEXT_PREFIX} original hires prompt"
ERROR_KEY = f"{INFOTEXT_PREFIX} error"
SEED_KEY = infotext_key("seed")


def generation_params(settings: UpsampleSettings, originals: list[str] | str, tag_seeds: list[int] | int,
                      original_hires: list[str] | str | None = None) -> dict[str, Any]:
    """``extra_generation_params`` for a successful upsampling.

    Lists hold one value per image (the host picks the image's entry). With a fixed tag seed
    the seed actually used by each image is recorded, so pasting one image reproduces it.
    """
    params: dict[str, Any] = dict(settings.to_infotext())
    params[ORIGINAL_KEY] = originals
    if settings.seed_mode == "fixed":
        params[SEED_KEY] = [str(s) for s in tag_seeds] if isinstance(tag_seeds, list) else str(tag_seeds)
    if original_hires is not None:
        params[ORIGINAL_HIRES_KEY] = original_hires
    return params


def error_params(exc: BaseException) -> dict[str, str]:
    """``extra_generation_params`` when upsampling failed (prompts were left as they were)."""
    return {ERROR_KEY: error_text(exc)}


def error_text(exc: BaseException, limit: int | None = 300) -> str:
    """One line naming the error, cut at ``limit`` characters (None: whole)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:limit]


def settings_from_params(params: dict[str, Any]) -> UpsampleSettings | None:
    """Our settings in pasted infotext, or None when it has none."""
    return UpsampleSettings.from_infotext(params)


def _field_getter(name: str) -> Callable[[dict[str, Any]], Any]:
    def get(params: dict[str, Any]) -> Any:
        if MODEL_KEY not in params:
            return None  # not ours: leave the component as it is
        settings = settings_from_params(params)
        return None if settings is None else getattr(settings, name)

    return get


def infotext_fields(components: dict[str, Any]) -> list[tuple[Any, Any]]:
    """``Script.infotext_fields``: (component, function of the pasted params) for every setting.

    Settings missing from the infotext (they were at their defaults) are restored to the default;
    the accordion opens exactly when the infotext has our settings.
    """
    fields: list[tuple[Any, Any]] = [(components["enabled"], lambda params: MODEL_KEY in params)]
    fields += [(components[name], _field_getter(name)) for name in FIELD_ORDER if name != "enabled"]
    return fields


def paste_field_names() -> list[str]:
    """``Script.paste_field_names``: our keys, sent along by the "Send to" buttons."""
    return [infotext_key(name) for name in FIELD_ORDER if name != "enabled"] + [ORIGINAL_KEY, ORIGINAL_HIRES_KEY]


def on_infotext_pasted(infotext: str, params: dict[str, Any]) -> None:
    """``on_infotext_pasted`` callback: put the user's own prompt back in place of the upsampled one.

    With per-image timing the recorded original already contains the style text, so styles the
    host found are dropped from the pasted styles (their negative text goes back into the negative
    prompt) instead of being applied twice.
    """
    from . import host

    original = params.get(ORIGINAL_KEY)
    if original is None:
        return
    try:
        settings = settings_from_params(params)
    except SettingsError:
        settings = None
    styles = params.get("Styles array")
    if isinstance(styles, list) and styles and (settings is None or settings.timing == "per_image"):
        params["Negative prompt"] = host.apply_negative_styles(params.get("Negative prompt", ""), styles)
        del params["Styles array"]
    params["Prompt"] = original
    if ORIGINAL_HIRES_KEY in params:
        params["Hires prompt"] = params[ORIGINAL_HIRES_KEY]
