"""JoyTag throughput and memory with the released architecture (random weights), printed as a Markdown table.

    chrt -f 50 python bench/bench_joytag.py [--images 64] [--blocks 12] [--device auto] [--threads N]

Rows: model-only images/s at batch 1 and 8 (pre-processed tensors), batch captioning of generated
PNG/JPEG files of varied sizes (decode + pre-process + model + write) against model-only at the same
batch size (goal: >= 0.9x), and process RSS before loading, loaded, after a pass, after unload. Then,
on a CPU, the precisions side by side (fp32, int8, bf16; goals for the opt-in faster path: >= 1.4x fp32
at batch 1, >= 1.2x at batch 8, scores within 0.03 of fp32).
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def make_images(folder: Path, count: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    sizes = [(512, 768), (1024, 1024), (768, 512), (1216, 832), (300, 400), (2048, 1536)]
    for index in range(count):
        width, height = sizes[index % len(sizes)]
        small = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((width, height), Image.BILINEAR)  # smooth, compressible
        image.save(folder / f"{index:03d}.{'png' if index % 2 else 'jpg'}", quality=92)


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def compare_precisions(model_dir: Path, images: Path, repeats: int) -> list[str]:
    """Markdown rows: img/s at batch 1 and 8 per CPU precision (interleaved repeats, median and range),
    the speed-up over fp32 and the largest |score difference| to fp32 over every tag of 16 images."""
    import statistics

    import torch
    from PIL import Image

    from lib_tagger.interrogate.images import preprocess
    from lib_tagger.interrogate.joytag.loader import JoyTagger

    taggers = {p: JoyTagger.load(str(model_dir), device="cpu", precision=p) for p in ("fp32", "int8", "bf16")}
    files = sorted(f for f in images.iterdir() if f.suffix in (".png", ".jpg"))[:16]
    pixels = torch.stack([preprocess(Image.open(f).convert("RGB"), 448) for f in files])
    scores = {p: [pred.scores for pred in t.predict(pixels[:8]) + t.predict(pixels[8:])] for p, t in taggers.items()}
    rates: dict[tuple[str, int], list[float]] = {}
    order = [(p, b) for b in (1, 8) for p in taggers]
    for repeat in range(repeats):
        for precision, batch in order[repeat % len(order):] + order[:repeat % len(order)]:
            calls = 8 // batch
            seconds = timed(lambda t=taggers[precision], b=batch, n=calls: [t.predict(pixels[:b]) for _ in range(n)])
            rates.setdefault((precision, batch), []).append(calls * batch / seconds)
    rows = []
    for precision, tagger in taggers.items():
        diff = max(abs(a[tag] - b[tag]) for a, b in zip(scores["fp32"], scores[precision]) for tag in a)
        cells = []
        for batch in (1, 8):
            values, base = rates[(precision, batch)], rates[("fp32", batch)]
            ratios = sorted(v / f for v, f in zip(values, base))
            cells.append(f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f}) | "
                         f"{statistics.median(ratios):.2f}x ({ratios[0]:.2f}–{ratios[-1]:.2f})")
        ran = tagger.precision + (f" ({tagger.notice})" if tagger.notice else "")
        rows.append(f"| {precision} | {ran} | {cells[0]} | {cells[1]} | {diff:.4f} |")
        tagger.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch default)")
    parser.add_argument("--precision-repeats", type=int, default=3,
                        help="interleaved repeats of the CPU precision comparison (0: skip it)")
    args = parser.parse_args()

    import torch

    from lib_tagger.caption import caption_folder
    from lib_tagger.interrogate import TagOptions, get_interrogator, unload_interrogator
    from tests.factories.joytag_model import save_joytag_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir = save_joytag_checkpoint(tmp / "model", num_blocks=args.blocks, seed=0)
        images = tmp / "images"
        images.mkdir()
        make_images(images, args.images)
        gc.collect()
        rss_start = rss_mib()
        tagger = get_interrogator(str(model_dir), device=args.device)
        rss_loaded = rss_mib()

        torch.manual_seed(0)
        pixels = torch.randn(8, 3, 448, 448)
        tagger.predict(pixels[:1])  # warm-up
        for batch in (1, 8):
            calls = max(1, min(args.images, 16) // batch)
            seconds = timed(lambda b=batch, n=calls: [tagger.predict(pixels[:b]) for _ in range(n)])
            rows.append((f"model only, batch {batch}", f"{calls * batch / seconds:.2f} img/s"))
        model_rate = float(rows[-1][1].split()[0])

        report = caption_folder(images, TagOptions(), tagger, batch_size=8, progress=lambda *a: None)
        caption_rate = len(report.written) / report.seconds
        rows.append((f"caption {args.images} PNG/JPEG files, batch 8", f"{caption_rate:.2f} img/s"))
        rows.append(("caption / model-only (goal >= 0.9)", f"{caption_rate / model_rate:.2f}x"))
        if report.failed:
            rows.append(("caption failures", str(len(report.failed))))
        rss_used = rss_mib()
        unload_interrogator()  # closes the tagger: its weights are dropped
        gc.collect()
        rss_unloaded = rss_mib()
        precision_rows = compare_precisions(model_dir, images, args.precision_repeats) if (
            args.precision_repeats and args.device != "cuda") else []

    rows += [("RSS before load", f"{rss_start:.0f} MiB"),
             ("RSS loaded (weights mmapped, paged in on first use)", f"{rss_loaded:.0f} MiB"),
             ("RSS after captioning", f"{rss_used:.0f} MiB"), ("RSS after unload", f"{rss_unloaded:.0f} MiB")]
    device = "cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu"
    threads = f"{torch.get_num_threads()} torch threads" + (" (set)" if args.threads else " (default)")
    print(f"JoyTag bench: {args.blocks} blocks, d_model 768, 448 px, random weights, {device}, {threads}\n")
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    if precision_rows:
        print(f"\nCPU precisions, model only, {args.precision_repeats} interleaved repeats, median (range); score "
              "difference: the largest over all 5,813 tags of 16 of the generated images\n")
        print("| precision | runs as | batch 1 img/s | vs fp32 | batch 8 img/s | vs fp32 | max abs score diff |")
        print("|---|---|---|---|---|---|---|")
        print("\n".join(precision_rows))


if __name__ == "__main__":
    main()
