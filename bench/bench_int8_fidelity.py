"""How far 8-bit weights move the decoder's next-token distribution from float32, step by step.

For each model the float32 decoder writes ``--steps`` tokens (temperature 1, top-k 100, seed 0);
then both decoders read that same sequence one token at a time (each with its own KV cache) and
every step's next-token distributions are compared: KL(fp32 || int8) in nats, and how many of
fp32's 10 most likely tokens are among int8's 10. Models, all in the real shapes:

- dart-v2-sft / dart-v2-moe-sft with random weights (logits of little structure);
- the same two with ``favour`` (tests/factories/torch_models.py): 64 tags get logit biases 2-8
  through the embedding, so a few tokens dominate every step as in a trained model.

Also: of ``--steps`` tokens sampled with the same seed, how many int8 picks equal fp32's.
``--reduce-range`` measures what CPUs without VNNI run (7-bit inputs instead of 8); ``--precision q8_0``
compares precision q8_0 instead (the Q8_0 GGUF converted from the same weights, in llama.cpp).

    chrt -f 50 .venvs/forge/bin/python bench/bench_int8_fidelity.py [--steps 128] [--reduce-range] [--precision q8_0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_torch_decoder import MODELS  # noqa: E402
from bench.bench_torch_decoder import write_model as write_decoder_model  # noqa: E402
from lib_tagger.generate.base import SamplingParams  # noqa: E402
from lib_tagger.generate.torch_backend import TorchGenerator  # noqa: E402
from tests.factories import torch_models as tm  # noqa: E402

FAVOURED = 64


def write_model(folder: Path, name: str, favour: bool) -> None:
    """The bench's model of ``name`` (bench_torch_decoder), with ``favour``: 64 tags biased 2-8."""
    import random

    rng = random.Random(1)
    vocab = MODELS[name][1]["vocab_size"]
    bias = {token: rng.uniform(2.0, 8.0) for token in rng.sample(range(100, vocab), FAVOURED)} if favour else None
    write_decoder_model(folder, name, bias)


def torch_steps(generator: TorchGenerator, sequence: list[int], start: int, steps: int) -> list:
    """Next-token log-probabilities after each of ``sequence``'s first ``start + i`` tokens (i < steps), read
    one token at a time after the prompt, as decoding does."""
    import torch

    out = []
    with torch.inference_mode():
        cache = generator.decoder.new_cache(1, start + steps)
        logits = generator.decoder.forward(torch.tensor([sequence[:start]]), cache)
        for token in sequence[start:start + steps]:
            out.append(torch.log_softmax(logits[0].float(), -1))
            logits = generator.decoder.forward(torch.tensor([[token]]), cache)
    return out


def llama_steps(path: Path, sequence: list[int], start: int, steps: int) -> list:
    """The same from llama.cpp on the converted Q8_0 file (one evaluation, logits of every position)."""
    import llama_cpp
    import torch

    llm = llama_cpp.Llama(model_path=str(path), n_ctx=start + steps + 1, n_batch=start + steps + 1,
                          logits_all=True, use_mmap=False, verbose=False)
    llm.eval(sequence[:start + steps])
    scores = [torch.log_softmax(torch.from_numpy(llm.scores[i].copy()).float(), -1)
              for i in range(start - 1, start - 1 + steps)]
    llm.close()
    return scores


def compare(folder: Path, steps: int, precision: str) -> dict[str, float]:
    from lib_tagger.generate.gguf_convert import q8_0_file
    from lib_tagger.generate.llama_cpp_backend import LlamaCppGenerator

    fp32 = TorchGenerator.from_pretrained(folder, device="cpu", precision="fp32")
    if precision == "int8":
        other = TorchGenerator.from_pretrained(folder, device="cpu", precision="int8")
        assert other.precision == "int8", other.notice
    else:
        converted = q8_0_file(folder)
        other = LlamaCppGenerator.load(converted, n_gpu_layers=0, tokenizer=fp32.tokenizer)
    for gen in (fp32, other):
        gen.stop_ids = frozenset()
    prompt = tm.dart_prompt("1girl, solo, long hair")
    params = SamplingParams(temperature=1.0, top_k=100, top_p=1.0, max_new_tokens=steps)
    [reference] = fp32.generate([prompt], params, [0])
    [sampled] = other.generate([prompt], params, [0])
    ids = fp32.tokenizer.encode_prompt(prompt)
    sequence = ids + reference.token_ids
    expected = torch_steps(fp32, sequence, len(ids), steps)
    got = torch_steps(other, sequence, len(ids), steps) if precision == "int8" else \
        llama_steps(converted, sequence, len(ids), steps)
    kls, overlaps = [], []
    for p, q in zip(expected, got):
        kls.append(float((p.exp() * (p - q)).sum()))
        overlaps.append(len(set(p.topk(10).indices.tolist()) & set(q.topk(10).indices.tolist())) / 10)
    same = sum(a == b for a, b in zip(reference.token_ids, sampled.token_ids))
    fp32.close()
    other.close()
    kls.sort()
    return {"kl_mean": statistics.fmean(kls), "kl_p95": kls[int(0.95 * (len(kls) - 1))], "kl_max": kls[-1],
            "top10_mean": statistics.fmean(overlaps), "top10_min": min(overlaps), "same": same / steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--models", nargs="+", default=["dart-v2-sft", "dart-v2-moe-sft"], choices=list(MODELS))
    parser.add_argument("--reduce-range", action="store_true", help="7-bit inputs, as on CPUs without VNNI")
    parser.add_argument("--precision", choices=("int8", "q8_0"), default="int8",
                        help="int8 (torch) or q8_0 (the Q8_0 GGUF in llama.cpp; needs llama-cpp-python and gguf)")
    args = parser.parse_args()
    if args.reduce_range:
        from lib_tagger.generate import linear

        linear._has_vnni = lambda: False
    rows = []
    for name in args.models:
        for favour in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                write_model(Path(tmp), name, favour)
                rows.append((name, favour, compare(Path(tmp), args.steps, args.precision)))
                print(f"{name} favour={favour}: {rows[-1][2]}", file=sys.stderr, flush=True)
    inputs = "7-bit inputs (--reduce-range, CPUs without VNNI)" if args.reduce_range else "8-bit inputs (VNNI)"
    if args.precision == "q8_0":
        inputs = "llama.cpp on the Q8_0 GGUF converted from the same weights"
    print(f"\n{args.precision} vs fp32 next-token distributions over {args.steps} decode steps (real shapes, random "
          f"weights; {inputs})\n")
    print("| model | logits | KL mean | KL p95 | KL max | top-10 overlap mean | top-10 overlap min "
          "| same sampled tokens |")
    print("|---|---|---|---|---|---|---|---|")
    for name, favour, r in rows:
        kind = f"favour ({FAVOURED} tags biased 2-8)" if favour else "random"
        print(f"| {name} | {kind} | {r['kl_mean']:.5f} | {r['kl_p95']:.5f} | {r['kl_max']:.5f} | "
              f"{r['top10_mean']:.1%} | {r['top10_min']:.0%} | {r['same']:.0%} |")


if __name__ == "__main__":
    main()
