"""What a request over HTTP may name as its model, and what its error messages may tell.

Over HTTP (our routes, and ``alwayson_scripts`` of ``/sdapi/v1/txt2img`` / ``img2img``) the ``model`` field
takes a registry name, or a folder / ``.gguf`` file inside the models folder (a relative path is read from
there). Any other path is refused with one message, whether it exists or not, so a client learns nothing
about the server's disk; the setting ``tagger_api_any_model_path`` lifts the rule. Error details name the
models folder as ``<models folder>`` and never carry the WebUI's or the user's home folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from lib_tagger.models.registry import MODELS
from lib_tagger.settings import SettingsError

from . import settings_page
from .infotext import error_text

MODELS_FOLDER = "<models folder>"


class ModelNotAllowed(SettingsError):
    """A request named a path outside the models folder (HTTP 403)."""


class ModelNotFound(FileNotFoundError):
    """A request named neither a known model nor something inside the models folder (HTTP 404)."""


def check_model(model: str) -> None:
    """Raise :class:`ModelNotAllowed` or :class:`ModelNotFound` unless a request over HTTP may load ``model``:
    a registry name, or something inside the models folder (where the loader looks for a relative path)."""
    text = model.strip()
    if text.lower() in MODELS or settings_page.value("tagger_api_any_model_path"):
        return
    _inside_models_folder(text, f"is not a known model ({', '.join(MODELS)}) and not a folder or .gguf file "
                                "in the models folder")


def check_interrogator(model: str) -> str:
    """What a request over HTTP may name as its interrogator: a known one (name or hub repo), or a folder
    inside the models folder (returned as its full path, since the loader reads paths from the current
    folder); otherwise :class:`ModelNotAllowed` / :class:`ModelNotFound`, as :func:`check_model`."""
    from lib_tagger.interrogate.specs import INTERROGATORS, find_spec

    text = model.strip()
    if find_spec(text) is not None or settings_page.value("tagger_api_any_model_path"):
        return text
    known = ", ".join(INTERROGATORS)
    if not any(mark in text for mark in ("/", "\\", ":", "~")) and not text.startswith("."):  # a plain name
        inside = os.path.join(os.path.abspath(settings_page.models_dir()), text)
        if _present(inside):
            return inside
        raise ModelNotFound(f"unknown interrogator {_shown(text)}: not one of {known}, nor a folder in the "
                            "models folder")
    return _inside_models_folder(text, f"is not a known interrogator ({known}) and not a folder in the models "
                                       "folder")


def _present(path: str) -> bool:
    try:
        return Path(path).exists()
    except (OSError, ValueError):  # a name too long or with a NUL byte: nothing by that name
        return False


def _inside_models_folder(text: str, not_found: str) -> str:
    """The full path of ``text`` read from the models folder, if it is inside it and exists."""
    root = os.path.normpath(os.path.abspath(settings_page.models_dir()))
    candidate = os.path.normpath(os.path.join(root, text))
    inside, top = os.path.normcase(candidate), os.path.normcase(root)  # Windows: case does not count
    if inside != top and not inside.startswith(top.rstrip(os.sep) + os.sep):
        raise ModelNotAllowed(
            "model: over the HTTP API, name a known model or a folder / .gguf file inside the models folder "
            "(Settings → Tagger → 'HTTP API: accept any model path' allows others)")
    if not _present(candidate):
        raise ModelNotFound(f"model {_shown(text)} {not_found}")
    return candidate


def public_detail(exc: BaseException) -> str:
    """The one-line error for an HTTP client: :func:`~tagger_webui.infotext.error_text`, with the models folder
    shown as ``<models folder>`` and the WebUI's and home folders left out."""
    text = error_text(exc, limit=None)
    for folder, shown in _private_folders():  # whole folder names only: /home/ann, not /home/anna
        text = re.sub(re.escape(folder) + r"(?![^\\/\s'\",:;)\]])", lambda _, shown=shown: shown, text)
    return text


def _private_folders() -> list[tuple[str, str]]:
    """(absolute folder, what to show instead), longest first so that a folder inside another goes first."""
    folders: dict[str, str] = {}
    try:
        from modules import paths_internal

        models = settings_page.models_dir()
        roots = [paths_internal.script_path, paths_internal.data_path]
    except (ImportError, AttributeError):  # routes mounted without the WebUI (tests, other apps)
        models, roots = None, []
    for path in {os.path.abspath(models), os.path.realpath(models)} if models else ():
        folders[path] = MODELS_FOLDER
    for path in [*roots, os.path.expanduser("~")]:
        if path and len(path) > 1:
            folders.setdefault(os.path.abspath(path), "<server folder>")
    return sorted(folders.items(), key=lambda item: -len(item[0]))


def _shown(text: str, limit: int = 80) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."
