"""``caption --engine ray``: plan on the driver, run the Ray Data stages, write through the local sinks.

The driver lists SRC and skips what is done (so a rerun resumes), starts or joins a Ray cluster, and
writes each image's result as it arrives, with the sink the local engine uses: the same bytes, each
``.txt`` replaced atomically, one writer per score file. An image is written once per run even if Ray
hands a result over twice (a retried task); a model actor that dies is restarted by Ray and its batch
retried, so nothing is lost. This module imports ray: the CLI imports it only for ``--engine ray``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import ray

from lib_tagger.caption.plan import plan_images
from lib_tagger.caption.ray_engine import Resources, TagWorker, caption_dataset, failure_reason, pixels_of, results_of
from lib_tagger.caption.sink import CaptionReport, SinkError, make_sink, record
from lib_tagger.caption.sources import list_source
from lib_tagger.interrogate.loading import InterrogatorSource

#: ``progress(done, total, path)`` after each image, written or failed.
ProgressCallback = Callable[[int, int, Path], None]


class RayJobError(RuntimeError):
    """The Ray job failed as a whole (a lost cluster, an actor that kept dying); ``report`` holds what
    was written before it, so a rerun resumes from there."""

    def __init__(self, message: str, report: CaptionReport) -> None:
        super().__init__(message)
        self.report = report


def connect(address: str | None = None) -> bool:
    """Join the cluster at ``address`` ("auto": the one this machine belongs to) or start a local one;
    True when this call started Ray (the caller shuts it down). A cluster gets our package shipped."""
    if ray.is_initialized():
        return False
    runtime_env = None
    if address:
        runtime_env = {"py_modules": [str(Path(__file__).resolve().parent.parent)]}
    ray.init(address=address, runtime_env=runtime_env, logging_level=logging.WARNING, include_dashboard=False)
    return True


def cluster_resources(device: str, workers: int | None, cpus_per_worker: float | None) -> Resources:
    """One model actor per GPU of the cluster (unless ``device`` is "cpu"), else ``workers`` CPU actors
    (default 1) sharing the CPUs, leaving one core per actor for decoding."""
    resources = ray.cluster_resources()
    gpus, total = int(resources.get("GPU", 0)), float(resources.get("CPU", 0))
    if device != "cpu" and gpus:
        chosen = Resources(workers or gpus, cpus_per_worker or 1.0, 1.0)
        if chosen.workers > gpus:
            raise ValueError(f"--workers {chosen.workers}: the Ray cluster has {gpus} GPUs")
    elif device.startswith("cuda"):
        raise ValueError(f"--device {device}: the Ray cluster has no GPU")
    else:
        count = workers or 1
        chosen = Resources(count, cpus_per_worker or max(1.0, float(int(total) // count - 1)), 0.0)
    if chosen.workers * chosen.cpus >= total:  # the decode tasks would never get a CPU
        raise ValueError(f"{chosen.workers} model actors of {chosen.cpus:g} CPUs leave none of the Ray cluster's "
                         f"{total:g} CPUs for decoding; lower --workers or --cpus-per-worker")
    return chosen


def caption_with_ray(
    source: str | os.PathLike,
    options: Any,
    interrogator: InterrogatorSource,
    recursive: bool = False,
    existing: str = "skip",
    batch_size: int = 8,
    output_format: str = "txt",
    output: str | os.PathLike | None = None,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float | None = None,
    progress: ProgressCallback | None = None,
    worker_class: type = TagWorker,
) -> CaptionReport:
    """Caption every image of ``source`` (a folder, a list file or a glob) on a Ray cluster.

    Options, ``existing`` modes and formats are those of :func:`~lib_tagger.caption.run.caption_folder`,
    and "parquet" (a folder of part files, :mod:`~lib_tagger.caption.parquet_sink`);
    ``address`` joins a running cluster (default: start one on this machine, shut down at the end).
    ``worker_class`` holds the model in each actor (tests pass one that dies once).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
    started = time.perf_counter()
    root, images = list_source(source, recursive)
    pixels = pixels_of(interrogator.model, interrogator.models_dir)  # an unknown model fails before any file
    sink = _sink(output_format, root, existing, output)
    try:
        plan = plan_images(root, images, sink, existing)
        report = CaptionReport(root, skipped=plan.skipped, failed=plan.failed, output=getattr(sink, "output", None),
                               total=len(plan.todo))
        if getattr(sink, "backup", None) is not None:
            report.backups.append(sink.backup)
        if plan.todo:
            started_ray = connect(address)
            try:
                resources = cluster_resources(interrogator.device, workers, cpus_per_worker)
                device = "cuda" if resources.gpus else "cpu"  # Ray gives each GPU actor its own cuda:0
                actor_source = InterrogatorSource(interrogator.model, interrogator.models_dir, device,
                                                  interrogator.dtype, interrogator.precision)
                dataset = caption_dataset(plan.todo, pixels, actor_source, options, batch_size, resources,
                                          keep_predictions=output_format != "txt", worker_class=worker_class)
                _write(results_of(dataset), sink, report, len(plan.todo), progress)
            finally:
                if started_ray:
                    ray.shutdown()
    finally:
        sink.close()
    report.seconds = time.perf_counter() - started
    return report


def _sink(output_format: str, root: Path, existing: str, output: str | os.PathLike | None):
    """The local engine's sinks, and a Parquet folder (``<root>/captions.parquet`` by default)."""
    if output_format != "parquet":
        return make_sink(output_format, root, existing, output)
    from lib_tagger.caption.parquet_sink import ParquetSink

    return ParquetSink(root, Path(output) if output is not None else root / "captions.parquet", existing)


def _write(results: Iterable[tuple[Path, str, Any]], sink, report: CaptionReport, total: int,
           progress: ProgressCallback | None) -> None:
    """Write each result through ``sink`` once; Ctrl-C stops (what is written stays), a job failure raises."""
    bar = None
    if progress is None:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="img", desc="Captions")
    seen: set[Path] = set()
    try:
        for path, error, payload in results:
            if path in seen:  # a retried task handed this image over again: it is written already
                continue
            seen.add(path)
            if error:
                report.failed.append((path, error))
            else:
                result, prediction = payload
                try:
                    record(report, sink, path, result, prediction)
                except SinkError:  # the output file itself is wrong: every image would fail the same way
                    raise
                except Exception as exc:
                    report.failed.append((path, failure_reason(exc)))
            if bar is not None:
                bar.update(1)
            else:
                progress(len(seen), total, path)
    except KeyboardInterrupt:
        report.stopped = True
    except SinkError:
        raise
    except Exception as exc:
        raise RayJobError(f"the Ray job failed after {len(seen)} of {total} images "
                          f"({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''})",
                          report) from exc
    finally:
        if bar is not None:
            bar.close()
