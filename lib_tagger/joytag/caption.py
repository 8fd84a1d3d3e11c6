"""Caption a folder of images: one ``.txt`` beside each, written as each batch finishes.

Decoding and pre-processing run on a small thread pool ahead of the model, so the model rarely
waits for the disk. A file that cannot be read fails alone and is listed in the report.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from lib_tagger.joytag.postprocess import JoyTagOptions, format_tags, select_tags

EXISTING_MODES = ("skip", "append", "overwrite")
_BASE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")

#: ``progress(done, total, path)`` after each image, written or failed.
ProgressCallback = Callable[[int, int, Path], None]


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


@dataclass
class CaptionReport:
    """What a captioning run did; ``failed`` holds (image, reason) pairs."""

    folder: Path
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0
    stopped: bool = False
    total: int = 0  # images to caption (not skipped)

    def summary(self) -> str:
        """One line for a log or a status box, plus one line per failed image."""
        head = (f"{len(self.written)} captioned, {len(self.skipped)} skipped (caption exists), "
                f"{len(self.failed)} failed in {self.seconds:.1f}s")
        head += " (stopped early)" if self.stopped else ""
        return "\n".join([head, *(f"  {path}: {reason}" for path, reason in self.failed)])


class CaptionInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`caption_folder`; ``report`` says what was done until then (every caption
    written is whole, none is half-written)."""

    def __init__(self, report: CaptionReport) -> None:
        super().__init__("captioning interrupted")
        self.report = report


def caption_path(image: Path) -> Path:
    """The caption file of ``image``: same name, ``.txt``."""
    return image.with_suffix(".txt")


def _merge(existing: str, new: str) -> str:
    old = [part.strip() for part in existing.split(",") if part.strip()]
    seen = set(old)
    return ", ".join(old + [part for part in new.split(", ") if part and part not in seen])


def _write_caption(image: Path, text: str, existing: str) -> None:
    target = caption_path(image)
    if existing == "append" and target.is_file():
        text = _merge(target.read_text(encoding="utf-8", errors="replace"), text)
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        temporary.write_text(text + "\n", encoding="utf-8")
        os.replace(temporary, target)  # a crash never leaves a half-written caption that "skip" would trust
    except BaseException:  # Ctrl-C or a full disk: no temporary file left behind either
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def _decoded(paths: list[Path], image_size: int, workers: int, ahead: int) -> Iterator[tuple[Path, object]]:
    """(path, tensor or exception) in order, decoded on ``workers`` threads up to ``ahead`` images ahead."""
    from lib_tagger.joytag.preprocess import preprocess_file

    def load(path: Path):
        try:
            return preprocess_file(path, image_size)
        except Exception as exc:  # every failure of one file stays with that file
            return exc

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="joytag-load") as pool:
        pending: deque[tuple[Path, Future]] = deque()
        remaining = iter(paths)
        try:
            for path in remaining:
                pending.append((path, pool.submit(load, path)))
                if len(pending) >= ahead:
                    break
            while pending:
                path, future = pending.popleft()
                following = next(remaining, None)
                if following is not None:
                    pending.append((following, pool.submit(load, following)))
                yield path, future.result()
        finally:
            for _, future in pending:
                future.cancel()


def caption_folder(
    folder: str | os.PathLike,
    options: JoyTagOptions,
    tagger,
    recursive: bool = False,
    existing: str = "skip",
    batch_size: int = 8,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    workers: int | None = None,
) -> CaptionReport:
    """Write a caption beside every image in ``folder`` with ``tagger`` (a :class:`JoyTagger`).

    ``existing``: "skip" leaves images that have a caption alone (so a rerun resumes),
    "append" adds new tags to the caption, "overwrite" replaces it. With no ``progress``
    callback a tqdm bar is shown. ``should_stop`` is polled between batches. Ctrl-C raises
    :class:`CaptionInterrupted`, which carries the report.
    """
    import torch

    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"caption folder {folder} does not exist or is not a folder")
    if existing not in EXISTING_MODES:
        raise ValueError(f"existing: must be one of {', '.join(EXISTING_MODES)}, got {existing!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
    started = time.perf_counter()
    report = CaptionReport(folder)
    todo, claimed = [], {}
    for image in find_images(folder, recursive):
        target = caption_path(image)
        if target in claimed:
            report.failed.append((image, f"caption {target.name} already belongs to {claimed[target].name}"))
        elif existing == "skip" and target.is_file():
            report.skipped.append(image)
        else:
            claimed[target] = image
            todo.append(image)

    report.total = len(todo)
    bar = None
    if progress is None:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), unit="img", desc="JoyTag captions")
    done = 0

    def finished(path: Path) -> None:
        nonlocal done
        done += 1
        if bar is not None:
            bar.update(1)
        else:
            progress(done, len(todo), path)

    def flush(batch: list[tuple[Path, object]]) -> None:
        try:
            all_scores = tagger.predict(torch.stack([tensor for _, tensor in batch]))
        except Exception as exc:  # e.g. out of memory: these images fail, the run goes on
            all_scores = [exc] * len(batch)
        for (path, _), scores in zip(batch, all_scores):
            try:
                if isinstance(scores, Exception):
                    raise scores
                _write_caption(path, format_tags(select_tags(scores, options), options), existing)
                report.written.append(path)
            except Exception as exc:
                report.failed.append((path, f"{type(exc).__name__}: {exc}"))
            finished(path)

    workers = workers or max(1, min(4, (os.cpu_count() or 2) - 1))
    batch: list[tuple[Path, object]] = []
    decoded = _decoded(todo, tagger.image_size, workers, ahead=2 * batch_size + workers)
    try:
        for path, result in decoded:
            if isinstance(result, Exception):
                reason = getattr(result, "reason", None) or f"{type(result).__name__}: {result}"
                report.failed.append((path, reason))
                finished(path)
                continue
            batch.append((path, result))
            if len(batch) == batch_size:
                flush(batch)
                batch = []
                if should_stop is not None and should_stop():
                    report.stopped = True
                    break
        if batch and not report.stopped:
            flush(batch)
    except KeyboardInterrupt as exc:
        report.stopped = True
        report.seconds = time.perf_counter() - started
        raise CaptionInterrupted(report) from exc
    finally:
        decoded.close()  # stops the decoding threads now, not when the traceback is freed
        if bar is not None:
            bar.close()
    report.seconds = time.perf_counter() - started
    return report
