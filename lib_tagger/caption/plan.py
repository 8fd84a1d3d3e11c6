"""Which images of a folder to caption: find them, skip those already captioned, catch name clashes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

EXISTING_MODES = ("skip", "append", "overwrite")
_BASE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def image_extensions() -> frozenset[str]:
    """Extensions captioned: png, jpg/jpeg, webp, bmp, gif, tif/tiff, and avif when Pillow can read it."""
    from PIL import Image

    extensions = set(_BASE_EXTENSIONS)
    if ".avif" in Image.registered_extensions():
        extensions.add(".avif")
    return frozenset(extensions)


def find_images(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` (and below when ``recursive``), sorted by path."""
    folder = Path(folder)
    extensions = image_extensions()
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(path for path in candidates if path.suffix.lower() in extensions and path.is_file())


class Destination(Protocol):
    """Where a sink puts an image's result: ``key`` must be unique per image; ``has`` says it is done."""

    def key(self, image: Path) -> object: ...

    def has(self, image: Path) -> bool: ...


@dataclass
class CaptionPlan:
    """The images to caption, those skipped (already done) and those that cannot be (image, reason)."""

    folder: Path
    todo: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def make_plan(folder: str | os.PathLike, destination: Destination, recursive: bool = False,
              existing: str = "skip") -> CaptionPlan:
    """Every image of ``folder``: "skip" leaves those ``destination`` has (so a rerun resumes)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"caption folder {folder} does not exist or is not a folder")
    return plan_images(folder, find_images(folder, recursive), destination, existing)


def plan_images(folder: Path, images: list[Path], destination: Destination, existing: str = "skip") -> CaptionPlan:
    """The plan for ``images`` (already listed; ``folder`` is where score files key them from)."""
    if existing not in EXISTING_MODES:
        raise ValueError(f"existing: must be one of {', '.join(EXISTING_MODES)}, got {existing!r}")
    plan = CaptionPlan(folder)
    claimed: dict[object, Path] = {}
    for image in images:
        key = destination.key(image)
        if key in claimed:
            plan.failed.append((image, f"caption {getattr(key, 'name', key)} already belongs to "
                                       f"{claimed[key].name}"))
        elif existing == "skip" and destination.has(image):
            plan.skipped.append(image)
        else:
            claimed[key] = image
            plan.todo.append(image)
    return plan
