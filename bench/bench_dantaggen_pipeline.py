"""One upsampled DanTagGen prompt through llama.cpp: ours against KGen's own pipeline, in one run.

    # the peers live in a bench environment outside the repo:
    python3 -m venv ../benchenv && ../benchenv/bin/pip install torch tipo-kgen transformers llama-cpp-python
    chrt -f 50 ../benchenv/bin/python bench/bench_dantaggen_pipeline.py [--runs 5] [--tokens 128]

Both sides get the same GGUF (the DanTagGen-delta shape, random weights, Q8_0, written once into
.cache/bench/), the same model input, length ("long", target 32 tags), sampling and at most four
rounds of ``--tokens`` new tokens each. The file is steered to write what DanTagGen writes, a
list of tags: a space after ``<|input_end|>`` and after each comma, a comma every few tokens (tags
of random characters), no eos. Each side stops early where its own count reaches the target; the
table gives the rounds each ran:

- **ours**: ``lib_tagger.upsample.upsample_prompts`` (first round + top-up rounds, each round
  evaluating only the tags new since the round before);
- **KGen**: ``kgen.executor.dtg.tag_gen`` on ``llama_cpp.Llama(path, n_ctx=2048)`` as
  ``kgen.models.load_model`` builds it (its ``create_completion`` keeps the last context and
  re-evaluates from the first token that differs), ``max_retry=3`` (four rounds), its own
  ``len_target`` set to ours; and the same with ``n_threads`` set to one per physical core.

Also per token, prompt evaluation left out: our generator against ``create_completion`` on the
same ``Llama`` object (same threads). Runs are interleaved (order rotated) and repeated; the table
shows the median and the range.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.factories.gguf_models import DANTAGGEN_DELTA, write_llama_gguf  # noqa: E402

CACHE = ROOT / ".cache" / "bench"
PROMPT = "1girl, solo, long hair, blue eyes"
SEED = 1234
SAMPLING = dict(temperature=1.0, top_p=0.95, top_k=100)
#: ``--comma-bias``: 2.5 writes several tags a round (each side stops where its own count reaches the target);
#: 1.0 a comma every ~20 tokens, so few tags a round and both sides run all four rounds (equal rounds).
COMMA_BIAS = 2.5
# after a comma a space, never two commas in a row
AFTER = {"<|input_end|>": {"▁": 14.0}, ",": {"▁": 14.0, ",": -30.0}, "▁": {",": -30.0}}


def token_bias(comma: float) -> dict[str, float]:
    return {"</s>": -50.0, ",": comma, "▁,": -50.0}


def model_file(comma: float = COMMA_BIAS) -> Path:
    path = CACHE / f"dantaggen-delta-random-q8_0-taglist-comma{comma:g}.gguf"
    if not path.exists():
        print(f"writing {path} (once) ...", file=sys.stderr)
        part = path.with_name(path.name + ".part")
        spec = dataclasses.replace(DANTAGGEN_DELTA, tensor_type="q8_0", token_bias=token_bias(comma),
                                   transitions=AFTER,
                                   block_out_std=1e-4)  # 24 layers: tiny blocks, so the steering shows
        write_llama_gguf(part, spec)
        part.replace(path)
    return path


class EvalLog:
    """Every ``llama_cpp.Llama.eval`` call: (tokens, seconds); prompts are the calls of 2+ tokens."""

    def __init__(self) -> None:
        import llama_cpp

        self.calls: list[tuple[int, float]] = []
        original = llama_cpp.Llama.eval

        def timed(llm, tokens):
            start = time.perf_counter()
            result = original(llm, tokens)
            self.calls.append((len(tokens), time.perf_counter() - start))
            return result

        llama_cpp.Llama.eval = timed

    def measure(self, run) -> dict[str, float]:
        self.calls.clear()
        start = time.perf_counter()
        rounds = run()
        wall = time.perf_counter() - start
        prompt = [(n, s) for n, s in self.calls if n > 1]
        decoded = sum(1 for n, _ in self.calls if n == 1) + len(prompt)  # a prompt's eval yields a token
        prompt_s = sum(s for _, s in prompt)
        return {"wall": wall, "rounds": rounds, "prompt_tokens": sum(n for n, _ in prompt),
                "prompt_s": prompt_s, "generated": decoded, "ms_per_token": 1000 * (wall - prompt_s) / decoded}


def ours_runner(path: Path, tokens: int):
    from lib_tagger.models.manager import ModelManager
    from lib_tagger.settings import UpsampleSettings
    from lib_tagger.upsample import upsample_prompts

    manager = ModelManager(device="cpu", keep_loaded=True)
    settings = UpsampleSettings(model=str(path), length="long", max_new_tokens=tokens, top_k=SAMPLING["top_k"],
                                temperature=SAMPLING["temperature"], top_p=SAMPLING["top_p"])

    def run() -> int:
        [result] = upsample_prompts([PROMPT], settings, seeds=[SEED], width=832, height=1216, manager=manager)
        return 1 + int(result.timings["topup_rounds"])

    with manager.use(settings.model) as loaded:
        generator = loaded.generator
    return run, generator, manager


def kgen_runner(path: Path, tokens: int, model_input: str, threads: int | None):
    import llama_cpp
    from kgen.executor.dtg import tag_gen

    from lib_tagger.formats import target_tag_count
    from lib_tagger.models.registry import FORMAT_DANTAGGEN_QUALITY

    extra = {"n_threads": threads} if threads else {}
    llm = llama_cpp.Llama(str(path), n_ctx=2048, n_gpu_layers=0, verbose=False, **extra)  # as kgen.models.load_model
    target = target_tag_count(FORMAT_DANTAGGEN_QUALITY, "long")
    tags = [t.strip() for t in PROMPT.split(",")]

    def run() -> int:
        steps = list(tag_gen(llm, None, model_input, tags, target, [], max_new_tokens=tokens,
                             max_retry=3, seed=SEED, **SAMPLING))
        return steps[-1][2]  # (text, tags, rounds so far)

    return run, llm


def per_token(generator, tokens: int, log: EvalLog) -> tuple[float, float]:
    """ms per generated token (prompt evaluation left out): our generator, then create_completion
    on the same Llama object."""
    from lib_tagger.generate.base import SamplingParams
    from tests.factories.gguf_models import dantaggen_prompt

    prompt = dantaggen_prompt(PROMPT, "<|long|>")
    params = SamplingParams(max_new_tokens=tokens, min_p=0.0, **SAMPLING)
    ours = log.measure(lambda: generator.generate([prompt], params, [SEED]) and 1)["ms_per_token"]
    llm = generator._llm
    llm.reset()
    theirs = log.measure(lambda: llm.create_completion(prompt, max_tokens=tokens, min_p=0.0, seed=SEED,
                                                       **SAMPLING) and 1)["ms_per_token"]
    return ours, theirs


def fmt_range(values: list[float], digits: int = 2) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--comma-bias", type=float, default=COMMA_BIAS,
                        help="logit bias of ',': 2.5 several tags a round, 1.0 few (both sides run every round)")
    args = parser.parse_args()
    try:
        import kgen.executor.dtg
        import llama_cpp  # noqa: F401
    except ImportError as exc:
        sys.exit(f"this bench needs the peers in its environment ({exc}); see the install line in {__file__}")
    from lib_tagger.devices import cpu_threads
    from lib_tagger.models.registry import FORMAT_DANTAGGEN_QUALITY
    from lib_tagger.settings import UpsampleSettings
    from lib_tagger.upsample import prepare_prompt

    path = model_file(args.comma_bias)
    log = EvalLog()
    cores, logical = cpu_threads()
    settings = UpsampleSettings(length="long")
    model_input = prepare_prompt(PROMPT, settings, 832, 1216, FORMAT_DANTAGGEN_QUALITY).model_input
    ours, generator, manager = ours_runner(path, args.tokens)
    kgen, kgen_llm = kgen_runner(path, args.tokens, model_input, None)
    kgen_cores, kgen_cores_llm = kgen_runner(path, args.tokens, model_input, cores)
    sides = {
        "ours (upsample_prompts)": ours,
        f"KGen tag_gen, Llama(n_ctx=2048) defaults (n_threads={kgen_llm.n_threads})": kgen,
        f"KGen tag_gen, Llama(n_ctx=2048, n_threads={cores})": kgen_cores,
    }
    for run in sides.values():  # warm-up: page the weights in
        run()
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    tokens_ms: dict[str, list[float]] = {"ours": [], "cc": []}
    order = list(sides.items())
    for index in range(args.runs):
        for name, run in order[index % len(order):] + order[:index % len(order)]:
            samples[name].append(log.measure(run))
        ours_ms, cc_ms = per_token(generator, args.tokens, log)
        tokens_ms["ours"].append(ours_ms)
        tokens_ms["cc"].append(cc_ms)
        print(f"run {index + 1}: " + ", ".join(f"{n.split(' (')[0].split(',')[0]} {s[-1]['wall']:.2f}s"
                                             for n, s in samples.items()), file=sys.stderr, flush=True)
    ours_walls = [s["wall"] for s in samples["ours (upsample_prompts)"]]
    print(f"\nDanTagGen-delta shape, Q8_0, random weights; one prompt, length long, up to 4 rounds of "
          f"{args.tokens} new tokens; {args.runs} interleaved runs, median (range); our threads: "
          f"{generator._llm.n_threads} decoding / {generator._llm.n_threads_batch} prompt "
          f"({cores} physical cores, {logical} logical CPUs)\n")
    print("| pipeline | rounds | prompt tokens evaluated | prompt eval s | ms per generated token | wall s "
          "| ours / it (time) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, values in samples.items():
        walls = [v["wall"] for v in values]
        ratios = [o / w for o, w in zip(ours_walls, walls)]
        print(f"| {name} | {fmt_range([v['rounds'] for v in values], 0)} | "
              f"{fmt_range([v['prompt_tokens'] for v in values], 0)} | {fmt_range([v['prompt_s'] for v in values])} | "
              f"{fmt_range([v['ms_per_token'] for v in values], 1)} | {fmt_range(walls)} | {fmt_range(ratios)} |")
    ratio = [o / c for o, c in zip(tokens_ms["ours"], tokens_ms["cc"])]
    print(f"\nPer generated token on the same `Llama` (prompt evaluation left out): ours "
          f"{fmt_range(tokens_ms['ours'], 1)} ms, `create_completion` {fmt_range(tokens_ms['cc'], 1)} ms; "
          f"ours / create_completion {fmt_range(ratio)} (time)")
    manager.unload()
    kgen_llm.close()
    kgen_cores_llm.close()


if __name__ == "__main__":
    main()
