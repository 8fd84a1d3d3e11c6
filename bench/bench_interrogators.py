"""Interrogators on the CPU: ours against onnxruntime on an ONNX export of the same weights, and the caption
pipeline against model-only; printed as Markdown tables.

    python bench/bench_interrogators.py [--models wd-vit-tagger-v3 wd-eva02-large-tagger-v3 joytag]
        [--threads 2] [--repeats 3] [--images 24] [--work DIR]

Needs timm and onnxruntime, so it runs in a bench environment outside the repo's test profiles, e.g.
``python3 -m venv /tmp/bench-wd && /tmp/bench-wd/bin/pip install torch==2.14.1 torchvision==0.29.1
timm==1.0.29 onnx onnxruntime safetensors huggingface_hub pillow numpy tqdm psutil``.

Models: random weights in the released shapes (448 px; WD v3: 10,861 labels, JoyTag: 5,813 tags), built
once into ``--work``, with a head bias that keeps a few dozen tags per image, as the real models do.
onnxruntime's threads do not spin between runs (they would steal the cores from the torch run that
follows). "Ours" is :meth:`predict` (model, sigmoid, scores per tag); onnxruntime runs the
``torch.onnx`` export of the very same module (what wd14-tagger users run today is onnxruntime on the
published ONNX files). Batch 1 and 8 are timed in turn, ours and onnxruntime interleaved, median of
``--repeats``. The pipeline row captions ``--images`` generated PNG/JPEG files (decode + pre-process +
model + write, batch 8) and divides by model-only images/s at batch 8 (goal >= 0.9x).
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

FAMILIES = {"wd-vit-tagger-v3": "vit", "wd-vit-large-tagger-v3": "vit-large", "wd-convnext-tagger-v3": "convnext",
            "wd-swinv2-tagger-v3": "swinv2", "wd-eva02-large-tagger-v3": "eva02"}


#: Head bias of the bench models: N(-3.4, 0.5) keeps a few dozen tags an image above 0.4, as real models
#: do (the test factories' spread keeps about a third, which would make formatting, not the model, the work).
HEAD_BIAS = (-3.4, 0.5)


def build(name: str, work: Path) -> Path:
    folder = work / name
    if (folder / ".realistic-head").is_file():
        return folder
    if name == "joytag":
        from tests.factories.joytag_model import save_joytag_checkpoint

        save_joytag_checkpoint(folder, num_blocks=12, seed=0)
    else:
        from tests.factories.wd_models import make_wd_folder

        make_wd_folder(folder, FAMILIES[name], seed=0, real=True)
    realistic_head(folder / "model.safetensors")
    (folder / ".realistic-head").write_text("")
    return folder


def realistic_head(weights: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    state = load_file(str(weights))
    generator = torch.Generator().manual_seed(1)
    for key in [key for key in state if key in ("head.bias", "head.fc.bias")]:
        state[key] = torch.randn(state[key].shape, generator=generator) * HEAD_BIAS[1] + HEAD_BIAS[0]
    save_file(state, str(weights), metadata={"format": "pt"})


def export_onnx(module, size: int, path: Path) -> Path:
    """The module as ONNX with a dynamic batch. timm's fused attention (SDPA with a traced ``is_causal``)
    does not trace, so attention is exported as its matrix products, as in the published ONNX files."""
    import torch

    if not path.is_file():
        fused = [layer for layer in module.modules() if getattr(layer, "fused_attn", False)]
        for layer in fused:
            layer.fused_attn = False
        try:
            with torch.inference_mode():
                torch.onnx.export(module, (torch.zeros(1, 3, size, size),), str(path), input_names=["pixels"],
                                  output_names=["logits"], opset_version=17, dynamo=False,
                                  dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}})
        finally:
            for layer in fused:
                layer.fused_attn = True
    return path


def median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_model(name: str, args, work: Path, images: Path) -> tuple[list, tuple | None]:
    import numpy as np
    import onnxruntime as ort
    import torch

    from lib_tagger.caption.run import caption_folder
    from lib_tagger.interrogate.loading import load_interrogator
    from lib_tagger.interrogate.postprocess import TagOptions

    folder = build(name, work)
    tagger = load_interrogator(str(folder), device="cpu")
    size = tagger.image_size
    onnx_path = export_onnx(tagger.model, size, work / f"{name}.onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    # no spinning after a run: interleaved with ours, spinning threads would take the cores from torch
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    def ort_scores(batch):
        logits = session.run(None, {"pixels": batch})[0]
        return 1.0 / (1.0 + np.exp(-logits))

    torch.manual_seed(0)
    pixels = torch.randn(8, 3, size, size)
    ours_rows = tagger.predict(pixels[:2])
    theirs = ort_scores(pixels[:2].numpy())
    names = tagger.labels.names
    ours = np.array([[{**row.scores, **row.ratings}[label] for label in names] for row in ours_rows])
    difference = float(np.abs(ours - theirs).max())

    rows = []
    for batch in (1, 8):
        chunk = pixels[:batch]
        array = chunk.numpy()
        tagger.predict(chunk)
        ort_scores(array)  # warm-up both
        ours_s, ort_s = [], []
        for _ in range(args.repeats):  # interleaved: drift of the machine hits both alike
            ours_s.append(median_seconds(lambda c=chunk: tagger.predict(c), 1))
            ort_s.append(median_seconds(lambda a=array: ort_scores(a), 1))
        ours_rate, ort_rate = batch / statistics.median(ours_s), batch / statistics.median(ort_s)
        rows.append((name, batch, ours_rate, ort_rate, ours_rate / ort_rate, difference))
    model_rate_b8 = rows[-1][2]

    pipeline = None
    if args.images:
        report = caption_folder(images, TagOptions(), tagger, batch_size=8, existing="overwrite",
                                progress=lambda *a: None)
        rate = len(report.written) / report.seconds
        kept = statistics.mean(len(path.with_suffix(".txt").read_text().split(", ")) for path in report.written)
        pipeline = (name, len(report.written), kept, rate, model_rate_b8, rate / model_rate_b8, len(report.failed))
    tagger.close()
    return rows, pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["wd-vit-tagger-v3", "wd-eva02-large-tagger-v3", "joytag"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=24, help="files captioned in the pipeline row (0: skip)")
    parser.add_argument("--work", default=None, help="where models and exports are kept between runs")
    args = parser.parse_args()

    import onnxruntime as ort
    import timm
    import torch

    from bench.bench_joytag import make_images

    torch.set_num_threads(args.threads)
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-interrogators-"))
    work.mkdir(parents=True, exist_ok=True)
    images = work / f"images-{args.images}"
    if not images.is_dir():
        images.mkdir()
        make_images(images, args.images)
    speed, pipelines = [], []
    for name in args.models:
        rows, pipeline = bench_model(name, args, work, images)
        speed += rows
        if pipeline:
            pipelines.append(pipeline)
    print(f"CPU, {args.threads} threads (torch {torch.__version__}, timm {timm.__version__}, onnxruntime "
          f"{ort.__version__}), random weights in the released shapes, median of {args.repeats}\n")
    print("| model | batch | ours img/s | onnxruntime img/s | ours / onnxruntime | max score difference |")
    print("|---|---|---|---|---|---|")
    for name, batch, ours, theirs, ratio, difference in speed:
        print(f"| {name} | {batch} | {ours:.2f} | {theirs:.2f} | {ratio:.2f}x | {difference:.1e} |")
    if pipelines:
        print("\n| model | files captioned | tags per caption | caption img/s | model-only img/s (batch 8) | "
              "caption / model-only (goal >= 0.9) | failed |")
        print("|---|---|---|---|---|---|---|")
        for name, count, kept, rate, model_rate, ratio, failed in pipelines:
            print(f"| {name} | {count} | {kept:.0f} | {rate:.2f} | {model_rate:.2f} | {ratio:.2f}x | {failed} |")


if __name__ == "__main__":
    main()
