"""Find a model's files on disk, or download them from the Hugging Face hub on first use.

``models_dir`` is the folder the caller chooses (the WebUI passes ``models/<our folder>``);
files of hub repo ``owner/name`` then live in ``models_dir/owner--name/``. With no
``models_dir`` the Hugging Face cache is used. Offline with files missing raises
:class:`ModelFilesMissing`, whose message names the files and the folder to put them in, and writes
nothing; a download that fails leaves no folder behind that it created and filled with nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path


class ModelFilesMissing(FileNotFoundError):
    """Model files are not on disk and could not be downloaded."""


def read_json(path: Path, error: type[Exception] = ValueError) -> dict:
    """The JSON object in ``path``; ``error`` (naming the file) when it is unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise error(f"{path} does not hold a JSON object")
    return data


def repo_folder(models_dir: str | os.PathLike, repo: str) -> Path:
    """The folder under ``models_dir`` that holds the files of hub repo ``repo``."""
    return Path(models_dir) / repo.replace("/", "--")


def is_offline() -> bool:
    """True when the user asked huggingface_hub to stay offline."""
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def fetch_files(
    repo: str,
    filenames: Sequence[str],
    models_dir: str | os.PathLike | None = None,
    optional: Sequence[str] = (),
    endpoint: str | None = None,
) -> Path:
    """Make sure ``filenames`` of hub repo ``repo`` are on disk; return the folder that holds them.

    Files already on disk are used as they are (no network). Missing ones are downloaded with
    huggingface_hub (with its progress bar). ``optional`` files are fetched when the repo has
    them and silently skipped otherwise. ``endpoint`` is a hub mirror (default: ``HF_ENDPOINT``).
    """
    if models_dir is not None:
        folder = repo_folder(models_dir, repo)
        missing = [name for name in filenames if not (folder / name).is_file()]
        if not missing:
            return folder
        if is_offline():  # huggingface_hub would create the folder and its lock files before it looks
            raise ModelFilesMissing(_missing_message(repo, missing, folder, "offline: HF_HUB_OFFLINE is set"))
    else:
        folder = None
        missing = list(filenames)

    try:
        from huggingface_hub import hf_hub_download
    except ImportError as exc:  # pragma: no cover - both hosts ship huggingface_hub
        reason = f"huggingface_hub is missing: {exc}"
        raise ModelFilesMissing(_missing_message(repo, missing, folder, reason)) from None

    where: dict = {"local_dir": str(folder)} if folder is not None else {}
    if endpoint:
        where["endpoint"] = endpoint
    created = None
    if folder is not None:
        created = _first_missing(folder)
        folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for n, name in enumerate(missing):
        try:
            paths.append(Path(hf_hub_download(repo, name, local_files_only=is_offline(), **where)))
        except Exception as exc:  # network errors, 404s, offline mode: all end the same way
            if created is not None and not _holds_files(created):
                shutil.rmtree(created, ignore_errors=True)  # only huggingface_hub's own bookkeeping is in it
            raise ModelFilesMissing(_missing_message(repo, missing[n:], folder, _short(exc))) from exc
    for name in optional:
        if folder is not None and (folder / name).is_file():
            continue
        with contextlib.suppress(Exception):  # optional: absent from some repos
            hf_hub_download(repo, name, local_files_only=is_offline(), **where)
    if folder is not None:
        return folder
    if paths:
        return paths[0].parent
    raise ModelFilesMissing(_missing_message(repo, list(filenames), None, "no files were asked for"))


def _first_missing(folder: Path) -> Path | None:
    """The outermost folder of ``folder``'s ancestry (itself included) that does not exist yet."""
    missing = None
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            break
        missing = candidate
    return missing


def _holds_files(folder: Path) -> bool:
    """True when ``folder`` holds a file outside huggingface_hub's ``.cache`` bookkeeping."""
    return any(path.is_file() and ".cache" not in path.relative_to(folder).parts for path in folder.rglob("*"))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _missing_message(repo: str, names: Sequence[str], folder: Path | None, reason: str) -> str:
    place = str(folder) if folder is not None else "the Hugging Face cache (or pass a local folder)"
    return (
        f"model files {', '.join(names)} of {repo} are not on disk and could not be downloaded "
        f"({reason}). Download them from https://huggingface.co/{repo} and put them in {place}."
    )
