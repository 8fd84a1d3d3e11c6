"""Captioning a folder: the local engine against ``--engine ray`` on this machine; a Markdown table.

    python bench/bench_caption_ray.py [--model wd-vit-tagger-v3] [--images 32] [--repeats 2]
        [--threads 2] [--batch-size 8] [--device cpu|cuda] [--work DIR]

Needs the forge profile (timm for WD, requirements/ray.txt). Each run captions the same ``--images``
generated PNG/JPEG files of assorted sizes from scratch (``existing=overwrite``), a ``.txt`` each, and is
timed whole, model load included: the local engine (``caption_folder`` in this process, ``--threads``
torch threads, its loader threads beside them) and the Ray engine on a local cluster started once, with
one CPU actor of ``--threads`` threads and with ``--threads`` actors of one thread (the decode tasks get
one more logical CPU). With ``--device cuda``: the local engine on the GPU against one GPU actor. The
runs are interleaved (machine drift hits all alike); the median of ``--repeats`` is shown, with the
ratio to the local engine (goal: Ray's overhead <= 10%, i.e. >= 0.90x) and the seconds until the first
batch's captions are written (Ray starts its actors and loads the model in them).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class Clock:
    """Times a run: start, the first batch's results, the last result."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.started = time.perf_counter()
        self.stamps: list[float] = []

    def __call__(self, *_) -> None:
        self.stamps.append(time.perf_counter())

    def figures(self) -> tuple[float, float]:
        """(whole run s, s to the first batch's results)."""
        first = self.stamps[min(self.batch_size, len(self.stamps)) - 1]
        return self.stamps[-1] - self.started, first - self.started


def run_local(folder: Path, model: Path, args) -> tuple[Clock, int]:
    from lib_tagger.caption.run import caption_folder
    from lib_tagger.interrogate.loading import load_interrogator
    from lib_tagger.interrogate.postprocess import TagOptions

    clock = Clock(args.batch_size)
    tagger = load_interrogator(str(model), device=args.device)
    try:
        report = caption_folder(folder, TagOptions(), tagger, batch_size=args.batch_size, existing="overwrite",
                                progress=clock)
    finally:
        tagger.close()
    return clock, len(report.written)


def run_ray(folder: Path, model: Path, args, workers: int, cpus: int) -> tuple[Clock, int]:
    from lib_tagger.caption.ray_run import caption_with_ray
    from lib_tagger.interrogate.loading import InterrogatorSource
    from lib_tagger.interrogate.postprocess import TagOptions

    clock = Clock(args.batch_size)
    report = caption_with_ray(folder, TagOptions(), InterrogatorSource(str(model), None, args.device),
                              existing="overwrite", batch_size=args.batch_size, workers=workers,
                              cpus_per_worker=cpus, progress=clock)
    return clock, len(report.written)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="wd-vit-tagger-v3", help="a bench model name of bench_interrogators")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--work", default=None, help="where the model and the images are kept between runs")
    args = parser.parse_args()

    import ray
    import torch

    from bench.bench_interrogators import build
    from bench.bench_joytag import make_images

    torch.set_num_threads(args.threads)
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-caption-ray-"))
    work.mkdir(parents=True, exist_ok=True)
    model = build(args.model, work)
    folder = work / f"images-{args.images}"
    if not folder.is_dir():
        folder.mkdir()
        make_images(folder, args.images)
    ray.init(num_cpus=args.threads + 1, object_store_memory=1 << 30, include_dashboard=False,
             logging_level="WARNING", runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    if args.device == "cuda":
        engines = {"local engine (GPU)": lambda: run_local(folder, model, args),
                   "ray, 1 GPU actor": lambda: run_ray(folder, model, args, 1, 1)}
    else:
        engines = {f"local engine ({args.threads} threads)": lambda: run_local(folder, model, args),
                   f"ray, 1 CPU actor x {args.threads} threads": lambda: run_ray(folder, model, args, 1, args.threads),
                   f"ray, {args.threads} CPU actors x 1 thread": lambda: run_ray(folder, model, args, args.threads, 1)}
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in engines}
    for _ in range(args.repeats):
        for name, run in engines.items():
            clock, written = run()
            if written != args.images:
                raise SystemExit(f"{name}: wrote {written} of {args.images} captions")
            figures[name].append(clock.figures())
    ray.shutdown()

    print(f"{args.model}, random weights in the released shapes, {args.images} files (a .txt each), batch "
          f"{args.batch_size}, device {args.device}; torch {torch.__version__}, ray {ray.__version__}; whole "
          f"run timed (model load included), median of {args.repeats}\n")
    print("| engine | whole run s | img/s | vs local engine (goal >= 0.90x) | s to the first batch's captions |")
    print("|---|---|---|---|---|")
    local = None
    for name, runs in figures.items():
        whole, first = (statistics.median(column) for column in zip(*runs))
        rate = args.images / whole
        local = local or rate
        print(f"| {name} | {whole:.1f} | {rate:.2f} | {rate / local:.2f}x | {first:.1f} |")


if __name__ == "__main__":
    main()
