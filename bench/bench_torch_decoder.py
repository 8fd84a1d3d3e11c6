"""Decode speed of the plain-torch decoder vs transformers ``generate()``, and vs the memory bound.

Random weights in the real shapes of dart-v2-sft (Mistral), dart-v2-moe-sft (Mixtral) and,
with ``--models ... dantaggen-delta``, DanTagGen-delta (LLaMA, mish). Every run writes ``--new-tokens``
tokens (end tokens ignored) with the same sampling settings (temperature 1, top-k 100). Columns:

- ours b1 / hf b1: tokens/s of one prompt (transformers only where it has the model class);
- b8 speed-up: tokens/s of one batch-8 call over tokens/s of 8 sequential batch-1 calls; batch 1
  runs on plain weights, batch 8 on MKL-packed ones (the re-layout the first batch of a session
  does, timed on its own in "weights packed in");
- bound: memory bandwidth (a large tensor copy, read + write) / weight bytes read per token
  (MoE: shared weights plus ``experts_per_tok`` experts), and our share of it.

Prints a Markdown table (best of ``--repeats`` runs per figure).
``python bench/bench_torch_decoder.py [--threads N] [--new-tokens N] [--repeats N]``
"""

from __future__ import annotations

import argparse
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


def write_model(folder: Path, name: str) -> None:
    """Config + random weights + a word-level tokenizer padded to the real vocabulary size."""
    model_type, shape = MODELS[name]
    vocab = shape["vocab_size"]
    fillers = tuple(f"tag {i}" for i in range(vocab - len(tm.DART_SPECIALS) - len(tm.DART_TAGS)))
    tm.write_dart_tokenizer(folder, (*tm.DART_TAGS, *fillers))
    config = tm.tiny_config(model_type, vocab, bos_token_id=0, eos_token_id=1, pad_token_id=2,
                            initializer_range=0.02, **{k: v for k, v in shape.items() if k != "vocab_size"})
    tm.write_decoder_folder(folder, config, seed=0)


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


def transformers_b1(folder: Path, generator: TorchGenerator, params: SamplingParams, torch,
                    repeats: int) -> float | None:
    try:
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained(str(folder), torch_dtype=torch.float32).eval()
    except Exception:  # no class for this model_type in this transformers
        return None
    ids = torch.tensor([generator.tokenizer.encode_prompt(tm.dart_prompt("1girl, solo, long hair"))])
    kwargs = dict(do_sample=True, temperature=1.0, top_k=params.top_k, top_p=1.0, pad_token_id=2,
                  max_new_tokens=params.max_new_tokens, min_new_tokens=params.max_new_tokens)
    torch.manual_seed(0)
    with torch.inference_mode():
        model.generate(ids, attention_mask=torch.ones_like(ids), **{**kwargs, "max_new_tokens": 4,
                                                                      "min_new_tokens": 4})
        best = 0.0
        for _ in range(repeats):
            start = time.perf_counter()
            out = model.generate(ids, attention_mask=torch.ones_like(ids), **kwargs)
            best = max(best, (out.shape[1] - ids.shape[1]) / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["dart-v2-sft", "dart-v2-moe-sft"],
                        choices=list(MODELS))
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch default)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per figure; the best is shown")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    params = SamplingParams(temperature=1.0, top_k=100, top_p=1.0, max_new_tokens=args.new_tokens)
    bandwidth = memory_bandwidth(torch)
    rows = []
    for name in args.models:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write_model(folder, name)
            gen = TorchGenerator.from_pretrained(folder, device="cpu", dtype="fp32")
            gen.stop_ids = frozenset()  # always write --new-tokens tokens
            ours(gen, 1, SamplingParams(max_new_tokens=4))  # warm-up
            b1 = max(ours(gen, 1, params) for _ in range(args.repeats))
            hf = transformers_b1(folder, gen, params, torch, args.repeats)
            started = time.perf_counter()
            gen.decoder.pack()  # what the first batch of 2+ prompts does (x86 CPU, fp32)
            pack_s = time.perf_counter() - started if gen.decoder.packed else None
            b8 = max(ours(gen, 8, params) for _ in range(args.repeats))
            bound = bandwidth / gen.decoder.decode_bytes()  # bytes one token reads
            rows.append((name, b1, hf, b8, bound, pack_s))
            gen.close()
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, fp32 CPU, "
          f"{args.new_tokens} new tokens, copy bandwidth {bandwidth / 1e9:.1f} GB/s\n")
    print("| model | ours b1 tok/s | hf b1 tok/s | ours/hf | bound tok/s | share | weights packed in "
          "| ours b8 tok/s | b8 vs 8x b1 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, b1, hf, b8, bound, pack_s in rows:
        hf_text, ratio = (f"{hf:.1f}", f"{b1 / hf:.2f}x") if hf else ("n/a", "n/a")
        pack_text = f"{pack_s:.2f} s" if pack_s is not None else "not packed"
        print(f"| {name} | {b1:.1f} | {hf_text} | {ratio} | {bound:.1f} | {b1 / bound:.0%} | {pack_text} "
              f"| {b8:.1f} | {b8 / b1:.2f}x |")


if __name__ == "__main__":
    main()
