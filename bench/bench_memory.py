"""Load time, peak RSS while a tag model loads and runs, and RSS after it is unloaded.

Random weights in the real shapes (dart-v2-sft, dart-v2-moe-sft as safetensors through the torch
backend; DanTagGen-delta as a Q8_0 GGUF through llama.cpp; JoyTag's ViT), loaded through the same
``ModelManager`` (or JoyTag loader) the WebUI uses, one generation of 32 tokens (one image), then
unloaded, twice. Each model runs in its own subprocess so one model's leftovers do not hide
another's. "Before" is taken once torch's thread pool runs and the backend libraries are imported,
as in a WebUI that has generated an image. "Peak" is the process's high-water mark (``VmHWM``),
which the first load sets; "loaded" is RSS right after the first use. The file is read once before
the measured loads, so the times are those of a warm page cache; "load + first use" adds the first
generation (or image), where a memory-mapped model reads its pages. Target: after unload, RSS is back
within 10% of what it was before the load. A second table loads each tag model again (torch models in
fp32 and in int8), runs batch-1 generations until RSS is steady, then a batch of 8: target, RSS after
the batch within 1.1x of the batch-1 steady state.

    python bench/bench_memory.py [--models dart-v2-sft dart-v2-moe-sft dantaggen-delta-q8_0 joytag]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CACHE = ROOT / ".cache" / "bench"
MODELS = ("dart-v2-sft", "dart-v2-moe-sft", "dantaggen-delta-q8_0", "joytag")


def build(name: str) -> Path:
    """Write (once, cached under .cache/bench) the random-weight model ``name``; return its path."""
    CACHE.mkdir(parents=True, exist_ok=True)
    if name == "joytag":
        from tests.factories.joytag_model import save_joytag_checkpoint

        folder = CACHE / "joytag"
        if not (folder / "model.safetensors").is_file():
            save_joytag_checkpoint(folder, num_blocks=12, seed=0)  # the released model's 12 blocks
        return folder
    if name.startswith("dantaggen"):
        from dataclasses import replace

        from tests.factories.gguf_models import DANTAGGEN_DELTA, write_llama_gguf

        path = CACHE / "DanTagGen-delta-Q8_0.gguf"
        if not path.is_file():
            write_llama_gguf(path, replace(DANTAGGEN_DELTA, tensor_type="q8_0"))
        return path
    from bench.bench_torch_decoder import write_model

    folder = CACHE / name
    if not (folder / "model.safetensors").is_file():
        write_model(folder, name)
    return folder


def measure(path: str) -> dict:
    """Run in a fresh process: RSS before load, peak, after first use, after unload (MiB); first load seconds."""
    import gc
    import time

    import psutil

    process = psutil.Process()
    joytag = Path(path).name == "joytag"
    for file in [Path(path)] if Path(path).is_file() else Path(path).iterdir():
        with file.open("rb") as handle:  # warm the page cache in small reads: the load times below do not
            while handle.read(1 << 24):  # depend on the disk, and the peak is not raised by it
                pass
    if joytag:
        use, unload = _joytag_cycle(path)
    else:
        use, unload = _upsample_cycle(path)
    import torch

    torch.ones(512, 512) @ torch.ones(512, 512)  # large enough to run on every thread of the pool
    if joytag:  # an image model's kernels (oneDNN convolutions, attention) set up their own pools once
        torch.nn.functional.scaled_dot_product_attention(*torch.ones(3, 1, 4, 64, 32).unbind(0))
        torch.nn.functional.conv2d(torch.ones(1, 3, 448, 448), torch.ones(64, 3, 3, 3), stride=2)
    gc.collect()
    before = process.memory_info().rss
    rss, seconds = [], []
    first_use = 0.0
    for _ in range(2):  # a second cycle shows whether anything accumulates
        started = time.perf_counter()
        seconds.append(use())
        first_use = first_use or time.perf_counter() - started
        rss.append(process.memory_info().rss)
        unload()
        gc.collect()
        rss.append(process.memory_info().rss)
    mib = 2**20
    peak = _high_water_mark()
    return {"before": before / mib, "peak": peak / mib, "loaded": rss[0] / mib, "after": rss[1] / mib,
            "after2": rss[3] / mib, "load_s": seconds[0], "first_use_s": first_use}


def _high_water_mark() -> int:
    """Bytes of this process's peak RSS (``VmHWM``; ``ru_maxrss`` would count the parent's peak before exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def _upsample_cycle(path: str):
    """(load + one generation → load seconds, unload) through the WebUI's ``ModelManager``."""
    from lib_tagger.models.manager import ModelManager
    from lib_tagger.settings import UpsampleSettings
    from lib_tagger.tags import get_tag_db
    from lib_tagger.upsample import upsample_prompts

    get_tag_db()  # the tag data stays loaded by design; count it before the model
    # What a WebUI process has before any tag model loads: torch with its thread pool started
    # (any diffusion step does that) and the libraries the backends use (imported at start by
    # the host's own text encoders, or once by our first load). They are not the model's memory.
    import llama_cpp  # noqa: F401
    import safetensors.torch  # noqa: F401
    import tokenizers  # noqa: F401

    import lib_tagger.generate.llama_cpp_backend
    import lib_tagger.generate.torch_backend  # noqa: F401

    manager = ModelManager(device="cpu")
    settings = UpsampleSettings(enabled=True, model=path, max_new_tokens=32, length="very_short")

    def use() -> float:
        result = upsample_prompts(["1girl, solo, long hair"], settings, seeds=[1], width=832, height=1216,
                                  manager=manager)
        return result[0].timings["load"]

    return use, manager.unload


def _joytag_cycle(path: str):
    """(load + one image → load seconds, close) through JoyTag's loader."""
    import time

    from PIL import Image

    import lib_tagger.interrogate.joytag.model  # noqa: F401
    from lib_tagger.interrogate.joytag.loader import JoyTagger
    from lib_tagger.interrogate.loading import predict_images

    image = Image.new("RGB", (640, 480), (200, 120, 40))
    held = []

    def use() -> float:
        started = time.perf_counter()
        held.append(JoyTagger.load(path, device="cpu"))
        seconds = time.perf_counter() - started
        predict_images(held[0], [image])
        return seconds

    def unload() -> None:
        held.pop().close()

    return use, unload


def measure_batch(path: str, precision: str) -> dict:
    """Run in a fresh process: RSS once batch-1 generations are steady, after a batch of 8, after batch 1 again."""
    import gc

    import psutil

    from lib_tagger.models.manager import ModelManager
    from lib_tagger.settings import UpsampleSettings
    from lib_tagger.upsample import upsample_prompts

    process = psutil.Process()
    manager = ModelManager(device="cpu")
    settings = UpsampleSettings(enabled=True, model=path, max_new_tokens=32, length="very_short", precision=precision)

    def run(batch: int) -> float:
        upsample_prompts(["1girl, solo, long hair"] * batch, settings, seeds=list(range(batch)), width=832,
                         height=1216, manager=manager)
        gc.collect()
        return process.memory_info().rss / 2**20

    run(1)
    steady = run(1)
    with manager.use(path, precision=precision) as loaded:
        ran = getattr(loaded.generator, "precision", "") or "gguf"
    return {"steady": steady, "batch": run(8), "again": run(1), "ran": ran}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--batch-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child)))
        return
    if args.batch_child:
        print(json.dumps(measure_batch(*args.batch_child)))
        return
    rows = []
    for name in args.models:
        path = build(name)
        with tempfile.TemporaryDirectory():
            out = subprocess.run([sys.executable, __file__, "--child", str(path)], capture_output=True, text=True,
                                 check=True, cwd=ROOT)
        data = json.loads(out.stdout.strip().splitlines()[-1])
        size = sum(f.stat().st_size for f in ([path] if path.is_file() else path.iterdir())) / 2**20
        back = (data["after"] - data["before"]) / data["before"] * 100
        rows.append(f"| {name} | {size:.0f} | {data['load_s']:.2f} | {data['first_use_s']:.2f} | "
                    f"{data['before']:.0f} | {data['peak']:.0f} | "
                    f"{data['loaded']:.0f} | {data['after']:.0f} | {data['after2']:.0f} | {back:+.1f}% | "
                    f"{'yes' if abs(back) <= 10 else 'no'} |")
    print("| model | files MiB | load s | load + first use s | RSS before MiB | peak MiB | loaded MiB | "
          "after unload MiB | after 2nd cycle MiB | after vs before | within 10% |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    batch_rows = []
    for name in (name for name in args.models if name != "joytag"):
        path = build(name)
        for precision in (("fp32", "int8") if not name.startswith("dantaggen") else ("auto",)):
            out = subprocess.run([sys.executable, __file__, "--batch-child", str(path), precision],
                                 capture_output=True, text=True, check=True, cwd=ROOT)
            data = json.loads(out.stdout.strip().splitlines()[-1])
            ratio = data["batch"] / data["steady"]
            batch_rows.append(f"| {name} | {data['ran']} | {data['steady']:.0f} | {data['batch']:.0f} | "
                              f"{data['again']:.0f} | {ratio:.2f}x | {'yes' if ratio <= 1.1 else 'no'} |")
    print("\nBatches (goal: RSS after a batch <= 1.1x the batch-1 steady state)\n")
    print("| model | weights | RSS batch-1 steady MiB | after a batch of 8 MiB | after batch 1 again MiB "
          "| after batch / steady | within 1.1x |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(batch_rows))


if __name__ == "__main__":
    main()
