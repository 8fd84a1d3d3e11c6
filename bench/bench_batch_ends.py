"""A batch whose rows end at different steps: rows that ended leave the batch.

Real prompts end at different lengths (Dart stops at ``</general>``). Random weights never pick
an end token on their own, so here every 90th token id ends a row, which makes the 8 rows of a
batch end somewhere between a few and 128 tokens. Columns: the time of that batch (ended rows
leave it, as :class:`~lib_tagger.generate.torch_backend.TorchGenerator` does), and the time of
the same 8 rows all decoded to the longest row's length (the work done when ended rows stay
until the last one ends). Best of ``--repeats``, Markdown table.

``python bench/bench_batch_ends.py [--threads N] [--repeats N]``
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_torch_decoder import write_model  # noqa: E402
from lib_tagger.generate.base import SamplingParams  # noqa: E402
from lib_tagger.generate.torch_backend import TorchGenerator  # noqa: E402
from tests.factories import torch_models as tm  # noqa: E402

BATCH = 8


def timed(gen: TorchGenerator, params: SamplingParams, repeats: int) -> tuple[float, list[int]]:
    prompts = [tm.dart_prompt("1girl, solo, long hair")] * BATCH
    best, lengths = float("inf"), []
    for _ in range(repeats):
        start = time.perf_counter()
        outs = gen.generate(prompts, params, list(range(BATCH)))
        best = min(best, time.perf_counter() - start)
        lengths = [len(o.token_ids) for o in outs]
    return best, lengths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["dart-v2-sft", "dart-v2-moe-sft"])
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch default)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    lines = []
    for name in args.models:
        with tempfile.TemporaryDirectory() as tmp:
            write_model(Path(tmp), name)
            gen = TorchGenerator.from_pretrained(tmp, device="cpu", dtype="fp32")
            ends = frozenset(range(100, gen.decoder.config.vocab_size, 90))
            params = SamplingParams(temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=128)
            gen.generate([tm.dart_prompt()] * 2, SamplingParams(max_new_tokens=4), [0, 1])  # warm-up, packs
            gen.stop_ids = ends
            leave, lengths = timed(gen, params, args.repeats)
            gen.stop_ids = frozenset()
            stay, _ = timed(gen, dataclasses.replace(params, max_new_tokens=max(lengths)), args.repeats)
            lines.append(f"| {name} | {', '.join(map(str, lengths))} | {leave:.2f} s | {stay:.2f} s "
                         f"| {stay / leave:.2f}x |")
            gen.close()
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, fp32 CPU, batch {BATCH}\n")
    print("| model | tokens per row | ended rows leave | all rows to the end | speed-up |")
    print("|---|---|---|---|---|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
