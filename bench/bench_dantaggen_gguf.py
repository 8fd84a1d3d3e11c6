"""Tokens/s of a DanTagGen-delta-sized GGUF (random weights): llama-cpp-python called directly
versus our LlamaCppGenerator (and the upsampling pipeline when it is importable), per file type.

    .venvs/a1111/bin/python bench/bench_dantaggen_gguf.py [--kinds q8_0 f16] [--tokens 128] [--runs 3]

(One whole upsampled prompt against KGen's own pipeline: bench_dantaggen_pipeline.py.)

The model files are written once into .cache/bench/ (about 420 MB Q8_0, 790 MB f16). Eos is
biased away in the file, so every run generates exactly --tokens tokens. Runs of the methods
are interleaved (order rotated per run) and the median is shown. The memory bound is the bytes of weights one token
reads (every tensor but the embedding table, plus one of its rows) divided by the bandwidth of a
large numpy copy measured in the same run (one thread, so llama.cpp may beat it with several).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lib_tagger.generate.base import SamplingParams  # noqa: E402
from lib_tagger.generate.llama_cpp_backend import LlamaCppGenerator  # noqa: E402
from tests.factories.gguf_models import DANTAGGEN_DELTA, dantaggen_prompt, write_llama_gguf  # noqa: E402

CACHE = ROOT / ".cache" / "bench"
PROMPT = dantaggen_prompt("1girl, solo, long hair, blue eyes, smile, looking at viewer", "<|long|>")
SEED = 1234


def model_file(kind: str) -> Path:
    """The cached real-size model file of tensor type ``kind``, written on first use."""
    path = CACHE / f"dantaggen-delta-random-{kind}.gguf"
    if not path.exists():
        print(f"writing {path} (once) ...", file=sys.stderr)
        part = path.with_name(path.name + ".part")
        spec = dataclasses.replace(DANTAGGEN_DELTA, tensor_type=kind, token_bias={"</s>": -50.0})
        write_llama_gguf(part, spec)
        part.replace(path)
    return path


def weight_bytes_per_token(path: Path) -> int:
    """Bytes of weights one decoding step reads: all tensors, of the embedding table one row."""
    from gguf import GGUFReader

    total = 0
    for tensor in GGUFReader(str(path)).tensors:
        if tensor.name == "token_embd.weight":
            total += int(tensor.n_bytes) // int(tensor.shape[-1])  # one row of (n_vocab, hidden)
        else:
            total += int(tensor.n_bytes)
    return total


def copy_bandwidth(n_bytes: int = 512 * 2**20, repeats: int = 5) -> float:
    """Bytes/s of a large numpy copy (bytes read + bytes written), best of ``repeats``."""
    import numpy as np

    src = np.ones(n_bytes // 4, np.float32)
    dst = np.empty_like(src)
    best = min(_timed(lambda: np.copyto(dst, src))[1] for _ in range(repeats))
    return 2 * n_bytes / best


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def direct_completion(llm, params: SamplingParams) -> int:
    """llama-cpp-python's usual entry point, as other extensions call it; from an empty context, as
    our first round (otherwise it finds this same prompt still evaluated and skips it)."""
    llm.reset()
    out = llm.create_completion(PROMPT, max_tokens=params.max_new_tokens, temperature=params.temperature,
                                top_p=params.top_p, top_k=params.top_k, min_p=params.min_p,
                                repeat_penalty=params.repetition_penalty, seed=SEED)
    return int(out["usage"]["completion_tokens"])


def direct_generate(llm, params: SamplingParams) -> int:
    """The lowest public loop: tokenize, generate token ids, detokenize."""
    ids = llm.tokenize(PROMPT.encode(), add_bos=True, special=True)
    llm.reset()
    llm.set_seed(SEED)
    out = []
    for token in llm.generate(ids, top_k=params.top_k, top_p=params.top_p, min_p=params.min_p,
                              temp=params.temperature, repeat_penalty=params.repetition_penalty):
        if token == llm.token_eos():
            break
        out.append(token)
        if len(out) >= params.max_new_tokens:
            break
    llm.detokenize(out)
    return len(out)


def ours(gen: LlamaCppGenerator, params: SamplingParams) -> int:
    return len(gen.generate([PROMPT], params, [SEED])[0].token_ids)


def pipeline_runner(path: Path, params: SamplingParams):
    """A runner through lib_tagger.upsample, or the reason there is none."""
    try:
        from lib_tagger.models.manager import ModelManager
        from lib_tagger.settings import UpsampleSettings
        from lib_tagger.upsample import upsample_prompts
    except ImportError as exc:
        return None, f"pipeline not importable yet ({exc})"
    manager = ModelManager(device="cpu", keep_loaded=True)
    settings = UpsampleSettings(model=str(path), temperature=params.temperature, top_p=params.top_p,
                                top_k=params.top_k, max_new_tokens=params.max_new_tokens)
    counted: list[int] = []
    model_seconds: list[float] = []

    def run() -> int:
        counted.clear()
        model_seconds.clear()
        with manager.use(settings.model) as loaded:
            generator = loaded.generator
            if not getattr(generator, "_bench_wrapped", False):
                inner = generator.generate

                def counting(prompts, p, seeds, *args, **kwargs):
                    start = time.perf_counter()
                    result = inner(prompts, p, seeds, *args, **kwargs)
                    model_seconds.append(time.perf_counter() - start)
                    counted.extend(len(g.token_ids) for g in result)
                    return result

                generator.generate = counting
                generator._bench_wrapped = True
        start = time.perf_counter()
        upsample_prompts(["1girl, solo, long hair, blue eyes"], settings, seeds=[SEED],
                         width=832, height=1216, manager=manager)
        total = time.perf_counter() - start
        OUTSIDE_MODEL.append(100 * (total - sum(model_seconds)) / sum(model_seconds))
        return sum(counted)

    return (run, manager.unload), ""


#: Per pipeline run: time spent outside the generator's calls, in % of the time inside them.
OUTSIDE_MODEL: list[float] = []


def bench_kind(kind: str, params: SamplingParams, runs: int, threads: int) -> list[tuple[str, float, str]]:
    import llama_cpp

    path = model_file(kind)
    (llm, direct_load) = _timed(lambda: llama_cpp.Llama(str(path), n_ctx=1024, n_threads=threads, verbose=False))
    gen, ours_load = _timed(lambda: LlamaCppGenerator.load(path, n_gpu_layers=0, n_threads=threads))
    banned = dataclasses.replace(params, banned_tags=("solo", "long hair", "blue eyes"))
    methods = {
        "llama-cpp direct: create_completion": lambda: direct_completion(llm, params),
        "llama-cpp direct: generate() loop": lambda: direct_generate(llm, params),
        "LlamaCppGenerator": lambda: ours(gen, params),
        "LlamaCppGenerator + 3 banned tags": lambda: ours(gen, banned),
    }
    pipeline, why_not = pipeline_runner(path, params)
    if pipeline is not None:
        methods["upsample pipeline (parse, top-up rounds)"] = pipeline[0]
    warm = dataclasses.replace(params, max_new_tokens=4)
    direct_generate(llm, warm)
    ours(gen, warm)
    rates: dict[str, list[float]] = {name: [] for name in methods}
    for run in range(runs):
        order = list(methods.items())
        for name, fn in order[run % len(order):] + order[:run % len(order)]:  # rotate: no order bias
            if name not in methods:
                continue
            try:
                tokens, seconds = _timed(fn)
            except Exception as exc:  # the pipeline is someone else's work in progress
                methods.pop(name)
                rates.pop(name)
                why_not = f"{name} failed: {type(exc).__name__}: {str(exc)[:80]}"
                continue
            rates[name].append(tokens / seconds)
    rows = [(name, statistics.median(values), "") for name, values in rates.items()]
    if OUTSIDE_MODEL:
        rows.append(("pipeline: time outside model calls (sort, build, parse, insert)",
                     statistics.median(OUTSIDE_MODEL), "%"))
        OUTSIDE_MODEL.clear()
    rows.append(("load: llama_cpp.Llama()", direct_load, "s"))
    rows.append(("load: LlamaCppGenerator.load()", ours_load, "s"))
    if why_not:
        rows.append((why_not, float("nan"), "-"))
    llm.close()
    gen.close()
    if pipeline is not None:
        pipeline[1]()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", nargs="+", default=["q8_0", "f16"], choices=["q8_0", "f16", "f32"])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    params = SamplingParams(temperature=1.0, top_p=0.95, top_k=100, min_p=0.0, max_new_tokens=args.tokens)
    bandwidth = copy_bandwidth()
    print(f"\nDanTagGen-delta shape (hidden 1024, 24 layers, vocab 32006), random weights; "
          f"{args.tokens} new tokens after a {len(PROMPT)}-character prompt; median of {args.runs} runs; "
          f"n_threads={args.threads} of {os.cpu_count()} CPUs; "
          f"numpy copy bandwidth {bandwidth / 1e9:.1f} GB/s\n", flush=True)
    print("| file | method | tok/s | time/token vs create_completion | share of memory bound |")
    print("|---|---|---:|---:|---:|")
    for kind in args.kinds:
        path = model_file(kind)
        per_token = weight_bytes_per_token(path)
        bound = bandwidth / per_token
        rows = bench_kind(kind, params, args.runs, args.threads)
        base = {name: rate for name, rate, unit in rows if not unit}["llama-cpp direct: create_completion"]
        for name, value, unit in rows:
            if unit == "s":
                print(f"| {kind} | {name} | {value:.2f} s | | |")
            elif unit == "%":
                print(f"| {kind} | {name} | {value:.3f}% of model time | | |")
            elif unit == "-":
                print(f"| {kind} | {name} | - | | |")
            else:
                overhead = f"{(base / value - 1) * 100:+.1f}% time/token"
                print(f"| {kind} | {name} | {value:.1f} | {overhead} | {value / bound:.0%} |")
        print(f"| {kind} | memory bound: {per_token / 1e6:.0f} MB weights/token | {bound:.1f} | | 100% |",
              flush=True)


if __name__ == "__main__":
    main()
