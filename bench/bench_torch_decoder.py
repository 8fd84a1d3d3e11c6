"""Decode speed of the plain-torch decoder, float32 and 8-bit, vs transformers ``generate()``.

Random weights in the real shapes of dart-v2-sft (Mistral), dart-v2-moe-sft (Mixtral) and,
with ``--models ... dantaggen-delta``, DanTagGen-delta (LLaMA, mish). Every run writes ``--new-tokens``
tokens (end tokens ignored) with the same sampling settings (temperature 1, top-k 100), from the
same prompt (batch 8: that prompt 8 times, seeds 0-7). Per model and repeat the runs (ours
fp32 / ours int8 / transformers, batch 1 and batch 8) are interleaved, their order rotated; the
table shows the median tok/s (total over the batch) and the range, and the ratios asked of them:
int8 / fp32 at batch 1 (goal >= 2.5x) and batch 8 (goal > 1), fp32 / transformers at batch 1
(>= 1.3x) and batch 8 (>= 1.5x). Batch 1 in fp32 runs on plain weights (a session that never
batches), batch 8 on MKL-packed ones (the re-layout the first batch of a session does, timed on its
own in "packed in"). "bound" is the copy bandwidth over the weight bytes one fp32 token reads (MoE:
shared weights plus ``experts_per_tok`` experts). "products only": a batch-1 step's matrix products
alone, back to back, int8 against fp32: what 8 bits would give a step that did nothing else.
"q8_0": precision q8_0, the other 8-bit route: the same weights converted once to a Q8_0 GGUF and run
by llama-cpp-python with our tokenizer's ids, one prompt at a time (needs llama-cpp-python and gguf, as
the test profiles have).

``chrt -f 50 python bench/bench_torch_decoder.py [--threads N] [--new-tokens N] [--repeats N]``
(transformers is the bench environment's or the profile's: the forge profile has Mistral/Mixtral.)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib_tagger.generate.base import SamplingParams  # noqa: E402
from lib_tagger.generate.torch_backend import TorchGenerator  # noqa: E402
from tests.factories import torch_models as tm  # noqa: E402

MODELS = {
    "dart-v2-sft": ("mistral", dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=8,
                                    num_attention_heads=8, num_key_value_heads=1, vocab_size=30649,
                                    max_position_embeddings=1024, rope_theta=1000.0, sliding_window=None)),
    "dart-v2-moe-sft": ("mixtral", dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=4,
                                        num_attention_heads=8, num_key_value_heads=1, vocab_size=30649,
                                        max_position_embeddings=1024, rope_theta=1000.0, sliding_window=None,
                                        num_local_experts=4, num_experts_per_tok=2)),
    "dantaggen-delta": ("llama", dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=24,
                                      num_attention_heads=16, num_key_value_heads=16, vocab_size=32006,
                                      max_position_embeddings=2048, rope_theta=10000.0, hidden_act="mish")),
}


def write_model(folder: Path, name: str, favour: dict[int, float] | None = None) -> None:
    """Config + random weights + a word-level tokenizer padded to the real vocabulary size; ``favour``:
    token id -> logit bias (tests/factories/torch_models.py)."""
    model_type, shape = MODELS[name]
    vocab = shape["vocab_size"]
    fillers = tuple(f"tag {i}" for i in range(vocab - len(tm.DART_SPECIALS) - len(tm.DART_TAGS)))
    tm.write_dart_tokenizer(folder, (*tm.DART_TAGS, *fillers))
    config = tm.tiny_config(model_type, vocab, bos_token_id=0, eos_token_id=1, pad_token_id=2,
                            initializer_range=0.02, **{k: v for k, v in shape.items() if k != "vocab_size"})
    tm.write_decoder_folder(folder, config, seed=0, favour=favour)


def memory_bandwidth(torch, megabytes: int = 512, repeats: int = 5) -> float:
    """Bytes/s of the best of ``repeats`` large copies (read + write counted)."""
    src = torch.ones(megabytes * 2**20 // 4)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.numel() * 4 / best


def ours(generator: TorchGenerator, batch: int, params: SamplingParams) -> float:
    prompts = [tm.dart_prompt("1girl, solo, long hair")] * batch
    start = time.perf_counter()
    outs = generator.generate(prompts, params, list(range(batch)))
    seconds = time.perf_counter() - start
    assert all(len(o.token_ids) == params.max_new_tokens for o in outs)
    return batch * params.max_new_tokens / seconds


def products_only(decoder, torch, steps: int = 32):
    """A function () -> "steps"/s of a batch-1 decode step's matrix products alone, back to back (the
    experts a token uses: the first ``experts_per_tok``): the speed a step with no other work would have."""
    chosen = decoder.config.experts_per_token
    products = [lin for layer in decoder.layers for lin in (
        [layer["qkv"], layer["o"]] + ([lin for pair in layer["experts"][:chosen] for lin in pair]
                                      if "experts" in layer else [layer["gate_up"], layer["down"]]))]
    products.append(decoder.lm_head)
    inputs = {lin.in_features: torch.randn(1, 1, lin.in_features) for lin in products}

    def run() -> float:
        with torch.inference_mode():
            start = time.perf_counter()
            for _ in range(steps):
                for lin in products:
                    lin(inputs[lin.in_features])
            return steps / (time.perf_counter() - start)

    run()
    return run


def transformers_runner(folder: Path, generator: TorchGenerator, params: SamplingParams, torch):
    """A function (batch) -> tok/s through transformers' generate(), or None without the model class."""
    try:
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained(str(folder), torch_dtype=torch.float32).eval()
    except Exception:  # no class for this model_type in this transformers
        return None
    ids = torch.tensor([generator.tokenizer.encode_prompt(tm.dart_prompt("1girl, solo, long hair"))])
    kwargs = dict(do_sample=True, temperature=1.0, top_k=params.top_k, top_p=1.0, pad_token_id=2,
                  max_new_tokens=params.max_new_tokens, min_new_tokens=params.max_new_tokens)

    def run(batch: int) -> float:
        rows = ids.expand(batch, -1)
        torch.manual_seed(0)
        with torch.inference_mode():
            start = time.perf_counter()
            out = model.generate(rows, attention_mask=torch.ones_like(rows), **kwargs)
            return batch * (out.shape[1] - ids.shape[1]) / (time.perf_counter() - start)

    with torch.inference_mode():
        model.generate(ids, attention_mask=torch.ones_like(ids), **{**kwargs, "max_new_tokens": 4,
                                                                      "min_new_tokens": 4})
    return run


def llama_cpp_generator(folder: Path, generator: TorchGenerator, threads: int):
    """Precision q8_0 as the manager loads it: the checkpoint converted once to a Q8_0 GGUF, run by
    llama-cpp-python with our tokenizer's ids; None without llama-cpp-python or gguf."""
    try:
        import gguf  # noqa: F401
        import llama_cpp  # noqa: F401
    except ImportError:
        return None
    from lib_tagger.generate.gguf_convert import q8_0_file
    from lib_tagger.generate.llama_cpp_backend import LlamaCppGenerator

    llama = LlamaCppGenerator.load(q8_0_file(folder), n_gpu_layers=0, n_threads=threads or None,
                                   tokenizer=generator.tokenizer)
    llama.stop_ids = frozenset()  # always write --new-tokens tokens
    return llama


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def ratio(a: list[float], b: list[float]) -> str:
    """Median and range of the per-repeat ratios a/b (runs of one repeat sat side by side)."""
    ratios = [x / y for x, y in zip(a, b)]
    return f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}–{max(ratios):.2f})"


def bench_model(name: str, params: SamplingParams, repeats: int, torch, threads: int = 0) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_model(folder, name)
        # fp32 at batch 1 as a session that never batches has it (plain weights), at batch 8 as the first
        # batch leaves it (packed)
        single = TorchGenerator.from_pretrained(folder, device="cpu", precision="fp32")
        fp32 = TorchGenerator.from_pretrained(folder, device="cpu", precision="fp32")
        int8 = TorchGenerator.from_pretrained(folder, device="cpu", precision="int8")
        hf = transformers_runner(folder, fp32, params, torch)
        for gen in (single, fp32, int8):
            gen.stop_ids = frozenset()  # always write --new-tokens tokens
            ours(gen, 1, SamplingParams(max_new_tokens=4))  # warm-up
        started = time.perf_counter()
        fp32.decoder.pack()  # what the first batch of 2+ prompts does (x86 CPU, fp32)
        pack_s = time.perf_counter() - started if fp32.decoder.packed else None
        runs = {
            "fp32 b1": lambda: ours(single, 1, params), "int8 b1": lambda: ours(int8, 1, params),
            "fp32 b8": lambda: ours(fp32, 8, params), "int8 b8": lambda: ours(int8, 8, params),
            "fp32 products": products_only(single.decoder, torch), "int8 products": products_only(int8.decoder, torch),
        }
        if hf is not None:
            runs.update({"hf b1": lambda: hf(1), "hf b8": lambda: hf(8)})
        llama = llama_cpp_generator(folder, single, threads)
        if llama is not None:
            ours(llama, 1, SamplingParams(max_new_tokens=4))  # warm-up
            runs["q8_0 b1"] = lambda: ours(llama, 1, params)
        rates: dict[str, list[float]] = {key: [] for key in runs}
        order = list(runs.items())
        for repeat in range(repeats):
            for key, run in order[repeat % len(order):] + order[:repeat % len(order)]:
                rates[key].append(run())
            print(f"{name} repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in rates.items()),
                  file=sys.stderr, flush=True)
        result = {"rates": rates, "pack_s": pack_s, "decode_bytes": fp32.decoder.decode_bytes()}
        for gen in (single, fp32, int8, llama):
            if gen is not None:
                gen.close()
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["dart-v2-sft", "dart-v2-moe-sft"],
                        choices=list(MODELS))
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch default)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats of every run")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    params = SamplingParams(temperature=1.0, top_k=100, top_p=1.0, max_new_tokens=args.new_tokens)
    bandwidth = memory_bandwidth(torch)
    results = {name: bench_model(name, params, args.repeats, torch, args.threads) for name in args.models}
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, CPU, {args.new_tokens} new tokens, "
          f"{args.repeats} interleaved repeats, median (range); copy bandwidth {bandwidth / 1e9:.1f} GB/s\n")
    print("| model | fp32 b1 tok/s | int8 b1 | transformers b1 | int8/fp32 b1 | fp32/transformers b1 "
          "| fp32 b8 tok/s | int8 b8 | transformers b8 | int8/fp32 b8 | fp32/transformers b8 "
          "| fp32 bound b1 | packed in | products only: int8/fp32 | q8_0 b1 | q8_0/fp32 b1 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, result in results.items():
        r = result["rates"]
        hf1 = (spread(r["hf b1"]), ratio(r["fp32 b1"], r["hf b1"])) if "hf b1" in r else ("n/a", "n/a")
        hf8 = (spread(r["hf b8"]), ratio(r["fp32 b8"], r["hf b8"])) if "hf b8" in r else ("n/a", "n/a")
        pack = f"{result['pack_s']:.2f} s" if result["pack_s"] is not None else "not packed"
        print(f"| {name} | {spread(r['fp32 b1'])} | {spread(r['int8 b1'])} | {hf1[0]} | "
              f"{ratio(r['int8 b1'], r['fp32 b1'])} | {hf1[1]} | {spread(r['fp32 b8'])} | {spread(r['int8 b8'])} | "
              f"{hf8[0]} | {ratio(r['int8 b8'], r['fp32 b8'])} | {hf8[1]} | "
              f"{bandwidth / result['decode_bytes']:.1f} | {pack} | "
              f"{ratio(r['int8 products'], r['fp32 products'])} | "
              + (f"{spread(r['q8_0 b1'])} | {ratio(r['q8_0 b1'], r['fp32 b1'])} |" if "q8_0 b1" in r
                 else "n/a | n/a |"))


if __name__ == "__main__":
    main()
