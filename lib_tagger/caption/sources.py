"""What ``caption SRC`` names: a folder, a text file listing image paths, or a glob (no torch, no Ray).

Each gives a root folder (score files default to ``<root>/captions.<format>`` and key images by their
path below it) and the image files, sorted, without duplicates.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

from lib_tagger.caption.plan import find_images, image_extensions

_GLOB_CHARACTERS = frozenset("*?[")


class SourceError(ValueError):
    """SRC names nothing to caption: a missing folder or list, or a glob that matches no image."""


def is_glob(source: str) -> bool:
    return any(character in _GLOB_CHARACTERS for character in source)


def _glob_root(pattern: str) -> Path:
    """The deepest folder of ``pattern`` before its first wildcard."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if is_glob(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _listed(list_file: Path) -> list[Path]:
    """The paths of a list file, one a line; blank lines and ``#`` comments are skipped, relative paths
    are relative to the list's folder. Missing files stay in (they fail alone, named, in the report)."""
    images = []
    for line in list_file.read_text(encoding="utf-8-sig").splitlines():
        entry = line.strip()
        if entry and not entry.startswith("#"):
            path = Path(entry).expanduser()
            images.append(path if path.is_absolute() else list_file.parent / path)
    return images


def list_source(source: str | os.PathLike, recursive: bool = False) -> tuple[Path, list[Path]]:
    """``(root, images)`` of SRC: a folder's images (below it too when ``recursive``), a list file's
    entries, a glob's image files (``**`` matches sub-folders), or one image."""
    text = str(source)
    path = Path(text).expanduser()
    if path.is_dir():
        return path, find_images(path, recursive)
    if path.is_file():
        if path.suffix.lower() in image_extensions():
            return path.parent, [path]
        return path.parent, sorted(set(_listed(path)))
    if is_glob(text):
        extensions = image_extensions()
        matches = {Path(match) for match in glob.glob(str(path), recursive=True)}
        images = sorted(match for match in matches if match.suffix.lower() in extensions and match.is_file())
        if not images:
            raise SourceError(f"{text}: the pattern matches no image file")
        return _glob_root(str(path)), images
    raise SourceError(f"{text} is neither a folder, a file listing images, nor a glob pattern")
