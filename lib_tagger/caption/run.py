"""Caption a folder: plan (find, skip) → engine (predictions) → options (tags) → sink (files) → report."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lib_tagger.caption.engine import CaptionEngine, LocalEngine
from lib_tagger.caption.plan import make_plan
from lib_tagger.caption.sink import CaptionInterrupted, CaptionReport, SinkError, make_sink, record
from lib_tagger.interrogate.postprocess import TagOptions, describe

#: ``progress(done, total, path)`` after each image, written or failed.
ProgressCallback = Callable[[int, int, Path], None]


def caption_folder(
    folder: str | os.PathLike,
    options: TagOptions,
    tagger: Any = None,
    recursive: bool = False,
    existing: str = "skip",
    batch_size: int = 8,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    workers: int | None = None,
    output_format: str = "txt",
    output: str | os.PathLike | None = None,
    engine: CaptionEngine | None = None,
) -> CaptionReport:
    """Caption every image in ``folder`` with ``tagger`` (a loaded interrogator) or ``engine``.

    ``existing``: "skip" leaves images that have a result (so a rerun resumes), "append" adds new tags
    to a ``.txt`` caption, "overwrite" replaces it. ``output_format`` "txt" writes a caption beside each
    image; "jsonl" and "csv" write one file (``output``, default ``<folder>/captions.<format>``) with
    every score. With no ``progress`` callback a tqdm bar is shown. ``should_stop`` is polled after each
    engine chunk (a model batch, or a file that failed to load). Ctrl-C raises :class:`CaptionInterrupted`,
    which carries the report.
    """
    folder = Path(folder)
    if engine is None:
        if tagger is None:
            raise ValueError("caption_folder: give a loaded interrogator or an engine")
        engine = LocalEngine(tagger, batch_size, workers)
    elif batch_size < 1:
        raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
    started = time.perf_counter()
    if not folder.is_dir():
        raise NotADirectoryError(f"caption folder {folder} does not exist or is not a folder")
    sink = make_sink(output_format, folder, existing, output)
    try:
        plan = make_plan(folder, sink, recursive, existing)
        report = CaptionReport(folder, skipped=plan.skipped, failed=plan.failed,
                               output=getattr(sink, "output", None), total=len(plan.todo))
        if getattr(sink, "backup", None) is not None:
            report.backups.append(sink.backup)
        try:
            _run(plan.todo, engine, sink, options, report, progress, should_stop)
        except KeyboardInterrupt as exc:
            report.stopped = True
            report.seconds = time.perf_counter() - started
            raise CaptionInterrupted(report) from exc
    finally:
        sink.close()
    report.seconds = time.perf_counter() - started
    return report


def _run(todo, engine, sink, options, report, progress, should_stop) -> None:
    bar = None
    if progress is None:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), unit="img", desc="Captions")
    done = 0
    chunks = engine.run(todo)
    try:
        for chunk in chunks:
            for path, prediction in chunk:
                try:
                    if isinstance(prediction, Exception):
                        raise prediction
                    record(report, sink, path, describe(prediction, options), prediction)
                except SinkError:  # the output file itself is wrong: every image would fail the same way
                    raise
                except Exception as exc:
                    report.failed.append((path, getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"))
                done += 1
                if bar is not None:
                    bar.update(1)
                else:
                    progress(done, len(todo), path)
            if should_stop is not None and should_stop():
                report.stopped = True
                break
    finally:
        chunks.close()  # stops the engine's decoding threads now, not when the traceback is freed
        if bar is not None:
            bar.close()

