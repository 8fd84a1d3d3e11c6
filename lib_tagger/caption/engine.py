"""Caption engines: turn a list of image files into predictions, batch by batch.

An engine yields ``[(path, Prediction or Exception), ...]`` chunks in the order of the paths: a file
that cannot be read yields its exception alone, and a model batch yields one chunk. The driver
(:mod:`lib_tagger.caption.run`) formats and writes each result and may stop between chunks.
:class:`LocalEngine` runs in this process with the interrogator already loaded; an engine for other
processes builds its own from an :class:`~lib_tagger.interrogate.loading.InterrogatorSource`.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

#: One engine step: each path with its prediction, or the exception it failed with.
Chunk = list[tuple[Path, Any]]


class CaptionEngine(Protocol):
    """What the caption driver needs from an engine."""

    def run(self, paths: Sequence[Path]) -> Iterator[Chunk]: ...


def _decoded(paths: Sequence[Path], transform, workers: int, ahead: int) -> Iterator[tuple[Path, object]]:
    """(path, tensor or exception) in order, decoded on ``workers`` threads up to ``ahead`` images ahead."""
    from lib_tagger.interrogate.images import preprocess_file

    def load(path: Path):
        try:
            return preprocess_file(path, transform)
        except Exception as exc:  # every failure of one file stays with that file
            return exc

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tagger-load") as pool:
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


class LocalEngine:
    """Decodes and pre-processes on a small thread pool ahead of the model, so it rarely waits for the disk."""

    def __init__(self, interrogator: Any, batch_size: int = 8, workers: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
        self.interrogator = interrogator
        self.batch_size = batch_size
        self.workers = workers or max(1, min(4, (os.cpu_count() or 2) - 1))

    def _predict(self, batch: list[tuple[Path, Any]]) -> Chunk:
        import torch

        try:
            predictions = self.interrogator.predict(torch.stack([tensor for _, tensor in batch]))
        except Exception as exc:  # e.g. out of memory: these images fail, the run goes on
            predictions = [exc] * len(batch)
        return [(path, prediction) for (path, _), prediction in zip(batch, predictions)]

    def run(self, paths: Sequence[Path]) -> Iterator[Chunk]:
        batch: list[tuple[Path, Any]] = []
        ahead = 2 * self.batch_size + self.workers
        for path, result in _decoded(paths, self.interrogator.preprocess, self.workers, ahead):
            if isinstance(result, Exception):
                yield [(path, result)]
                continue
            batch.append((path, result))
            if len(batch) == self.batch_size:
                yield self._predict(batch)
                batch = []
        if batch:
            yield self._predict(batch)
