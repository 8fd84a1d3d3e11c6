"""Captioning as Ray Data stages: image paths → decode + pre-process (CPU tasks) → the model (an actor pool).

Only ``caption --engine ray`` imports this module (it imports ray). Every stage keeps one row per image
with its ``error`` (empty when fine), so a file that fails fails alone and the driver reports it. The
stages call the local engine's own code: :func:`~lib_tagger.interrogate.images.preprocess_file` with the
interrogator's pre-processing, ``predict`` and :func:`~lib_tagger.interrogate.postprocess.describe`; the
driver (:mod:`lib_tagger.caption.ray_run`) writes through the local sinks, so captions are the same bytes.
"""

from __future__ import annotations

import math
import pickle
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ray.data

#: How often Ray restarts a model actor that died (out of memory, a lost node) and retries its batch.
ACTOR_RESTARTS = 3
#: The most blocks the listing is cut into: one model batch a block (a decode task each, so the model
#: starts after one batch is decoded and actors share the work) up to this many, then larger blocks.
MAX_BLOCKS = 10_000


@dataclass(frozen=True)
class JoyTagPixels:
    """JoyTag's pre-processing without the model (what ``JoyTagger.preprocess`` does), picklable."""

    size: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return (3, self.size, self.size)

    def __call__(self, image):
        from lib_tagger.interrogate.images import preprocess

        return preprocess(image, self.size)


@dataclass(frozen=True)
class WDPixels:
    """A WD v3 tagger's pre-processing without the model (what ``WDTagger.preprocess`` does), picklable."""

    spec: Any  # lib_tagger.interrogate.wd.WDInput

    @property
    def shape(self) -> tuple[int, int, int]:
        return (3, self.spec.size, self.spec.size)

    def __call__(self, image):
        from lib_tagger.interrogate.wd import prepare_image, to_tensor

        return to_tensor(prepare_image(image, self.spec), self.spec)


def pixels_of(model: str, models_dir: str | None = None) -> JoyTagPixels | WDPixels:
    """The pre-processing of ``model`` from its ``config.json`` (fetched if needed; no weights loaded)."""
    from lib_tagger.interrogate.loading import locate
    from lib_tagger.interrogate.specs import FAMILY_JOYTAG

    family, folder, _ = locate(model, models_dir)
    if family == FAMILY_JOYTAG:
        from lib_tagger.interrogate.joytag.config import JoyTagConfig

        return JoyTagPixels(JoyTagConfig.from_file(folder / "config.json").image_size)
    from lib_tagger.interrogate.wd import WDConfig

    return WDPixels(WDConfig.from_file(folder / "config.json").input)


def failure_reason(exc: BaseException) -> str:
    """The report's reason for one image (as the local driver words it)."""
    return getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"


def decode_batch(batch: dict[str, np.ndarray], pixels: JoyTagPixels | WDPixels) -> dict[str, np.ndarray]:
    """Read and pre-process each ``path``; a file that fails keeps zero pixels and its ``error``."""
    from lib_tagger.interrogate.images import preprocess_file

    paths = batch["path"]
    stack = np.zeros((len(paths), *pixels.shape), dtype=np.float32)
    errors = []
    for row, path in enumerate(paths):
        try:
            stack[row] = preprocess_file(path, pixels).numpy()
            errors.append("")
        except Exception as exc:  # every failure of one file stays with that file
            errors.append(failure_reason(exc))
    return {"path": paths, "error": np.array(errors, dtype=object), "pixels": stack}


class TagWorker:
    """One loaded model in a Ray actor: predicts a batch and selects each image's tags.

    ``result`` holds the pickled ``(TagResult, Prediction or None)``: the prediction (every score) only
    when the output is a score file. A batch the model fails on (e.g. out of memory) fails its images.
    """

    def __init__(self, source: Any, options: Any, keep_predictions: bool, threads: int = 0) -> None:
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.interrogator = source.load()
        self.options = options
        self.keep_predictions = keep_predictions

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        from lib_tagger.interrogate.postprocess import describe

        errors = [str(error) for error in batch["error"]]
        results = [b""] * len(errors)
        good = [row for row, error in enumerate(errors) if not error]
        predictions: list[Any] = []
        if good:
            try:
                predictions = self.interrogator.predict(torch.from_numpy(np.ascontiguousarray(batch["pixels"][good])))
            except Exception as exc:
                errors = [failure_reason(exc) if row in good else error for row, error in enumerate(errors)]
        for row, prediction in zip(good, predictions):
            try:
                result = describe(prediction, self.options)
            except Exception as exc:
                errors[row] = failure_reason(exc)
                continue
            results[row] = pickle.dumps((result, prediction if self.keep_predictions else None),
                                        protocol=pickle.HIGHEST_PROTOCOL)
        return {"path": batch["path"], "error": np.array(errors, dtype=object),
                "result": np.array(results, dtype=object)}


@dataclass(frozen=True)
class Resources:
    """Model actors: ``workers`` of them, each with ``cpus`` CPU cores (its torch threads) and ``gpus``."""

    workers: int = 1
    cpus: float = 1.0
    gpus: float = 0.0

    @property
    def threads(self) -> int:
        return 0 if self.gpus else max(1, math.ceil(self.cpus))


def caption_dataset(paths: Sequence[Path], pixels: JoyTagPixels | WDPixels, source: Any, options: Any,
                    batch_size: int, resources: Resources, keep_predictions: bool,
                    worker_class: type = TagWorker):
    """The lazy Ray Dataset of rows ``path, error, result``, one per image of ``paths``."""
    rows = [{"path": str(path)} for path in paths]
    blocks = min(MAX_BLOCKS, max(1, math.ceil(len(rows) / batch_size)))
    dataset = ray.data.from_items(rows, override_num_blocks=blocks)
    dataset = dataset.map_batches(decode_batch, fn_kwargs={"pixels": pixels}, batch_size=batch_size,
                                  batch_format="numpy", num_cpus=1)
    with warnings.catch_warnings():  # Ray 2.60 takes actor restarts only among the deprecated remote args
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
        return _model_stage(dataset, worker_class, source, options, batch_size, resources, keep_predictions)


def _model_stage(dataset, worker_class, source, options, batch_size, resources, keep_predictions):
    return dataset.map_batches(
        worker_class,
        fn_constructor_kwargs={"source": source, "options": options, "keep_predictions": keep_predictions,
                               "threads": resources.threads},
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=resources.workers),
        num_cpus=resources.cpus,
        num_gpus=resources.gpus or None,
        max_restarts=ACTOR_RESTARTS,
        max_task_retries=ACTOR_RESTARTS,
    )


def results_of(dataset) -> Any:
    """Each image's ``(path, error, result)`` as the job produces them (completion order)."""
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        for path, error, result in zip(batch["path"], batch["error"], batch["result"]):
            yield Path(str(path)), str(error), (pickle.loads(result) if not error else None)
