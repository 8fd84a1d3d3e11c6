"""One upsampled prompt on a TIPO-500M-shaped F16 GGUF: our pipeline against KGen's own
``tipo_runner`` (what z-tipo runs), same file, same llama-cpp-python, same sampling, interleaved.

    chrt -f 50 /work/benchenv-tipo/bin/python bench/bench_tipo_kgen.py [--runs 3] [--end-bias 7.95]
        [--tasks extend_tags add_caption]

Run it in a bench environment outside the repo, with ``tipo-kgen`` (and its torch/transformers)
installed: the test profiles never install KGen. The model (hidden 1280, 20 layers, FFN 3840,
32,013 tokens: the TIPO-500M shape, ~1 GB F16) is written once into .cache/bench/ with a trained
SentencePiece vocabulary padded to the real size and steered random weights, so that both sides
get tag lists that end and captions of short sentences. ``--end-bias`` sets how soon a list ends:
7.95 gives ~35 tags a pass (within TIPO's maximum of 54 for "long"), 7.6 ~80 (beyond it, where
KGen's truncation bug cuts the new tags to 8 minus the input's and then retries up to 10 times).

Both sides: temperature 0.35, top-p 0.95, top-k 60, min-p 0.05 (KGen's GGUF path passes no min-p,
so llama-cpp-python's default 0.05 applies), repetition penalty 1.0 (KGen's default is 1.17; set
to 1.0 on both), at most 512 new tokens a call, n_ctx as each side sets it, llama.cpp's default
thread count. KGen's request: ``parse_tipo_request`` with tags only, expand, tags first, and the
extra NL step only for "tags → tags + caption"; the first model inputs of both sides are checked
equal before timing. Wall time covers the whole request (all steps and retries), model loaded.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lib_tagger.models.manager import ModelManager  # noqa: E402
from lib_tagger.prompt import extract_tags  # noqa: E402
from lib_tagger.settings import UpsampleSettings  # noqa: E402
from lib_tagger.upsample import prepare_prompt, upsample_prompts  # noqa: E402
from tests.factories.tipo_models import TIPO_500M, write_steered_tipo_gguf  # noqa: E402

CACHE = ROOT / ".cache" / "bench"
PROMPT = "1girl, hatsune miku, vocaloid, aqua hair, twintails, smile, masterpiece, best quality, highres"
WIDTH, HEIGHT = 832, 1216
#: Tags the steered model writes: whole-piece words of its vocabulary (the prompt's and the format's
#: own words left out), so that a pass can reach TIPO's targets once duplicates are dropped.
SKIP = {"tag", "meta", "rating", "artist", "characters", "copyrights", "quality", "aspect", "target", "long",
        "short", "She", "sits", "The", "Two", "and", "the", "with"}
SAMPLING = {"temperature": 0.35, "top_p": 0.95, "top_k": 60, "min_p": 0.05}
MAX_NEW = 512
TASKS = {"extend_tags": "tags → more tags", "add_caption": "tags → tags + caption"}


def steer_tags() -> list[str]:
    from tests.factories.tipo_models import _processor, train_sentencepiece

    processor = _processor(train_sentencepiece())
    pieces = [processor.IdToPiece(i) for i in range(processor.GetPieceSize())]
    words = [p[1:] for p in pieces if p.startswith("▁") and p[1:].isalpha() and len(p) >= 4]
    prompt = {word for t in extract_tags(PROMPT) for word in t.tag.split()}
    return [w for w in words if w not in SKIP and w not in prompt]


def transitions(end_bias: float) -> dict[str, dict[str, float]]:
    tags = steer_tags()
    table: dict[str, dict[str, float]] = {",": {f"▁{t}": 7.0 for t in tags}}
    for t in [*tags, "smile", "highres"]:
        table[f"▁{t}"] = {",": 7.0, "</s>": end_bias}
    table[":"] = {"▁She": 9.0}
    table.update({"▁She": {"▁sits": 9.0}, "▁sits": {".": 9.0}, ".": {"▁She": 7.0, "</s>": 6.6}})
    return table


def model_file(end_bias: float) -> Path:
    path = CACHE / f"TIPO-500M-shape-random-end{end_bias:g}-F16.gguf"
    if not path.exists():
        print(f"writing {path} (once) ...", file=sys.stderr)
        CACHE.mkdir(parents=True, exist_ok=True)
        part = path.with_name(path.name + ".part")
        write_steered_tipo_gguf(part, TIPO_500M, {",": 2.0}, transitions(end_bias))
        part.replace(path)
    return path


def kgen_request(task: str):
    """KGen's own request for the prompt (its tag sorting, its operations), as z-tipo builds it."""
    from kgen.executor.tipo import parse_tipo_request
    from kgen.formatter import seperate_tags

    tags = [t.tag for t in extract_tags(PROMPT)]
    meta, operations, general, nl_prompt = parse_tipo_request(
        seperate_tags(tags), "", tag_length_target="long", nl_length_target="long",
        generate_extra_nl_prompt=task == "add_caption")
    meta["aspect_ratio"] = f"{WIDTH / HEIGHT:.1f}"
    return meta, operations, general, nl_prompt


def run_kgen(task: str, seed: int, fixed: bool = False) -> tuple[float, int, int, str]:
    """KGen's request; ``fixed``: with its truncation bug patched out for the run (the tag cut reads
    the sentence maxima table, so that table holds the tag maxima meanwhile; tags → tags only)."""
    import kgen.executor.tipo as kgen_tipo
    from kgen.executor.tipo import apply_tipo_prompt, tipo_runner
    from kgen.metainfo import TARGET_TIPO_MAX

    meta, operations, general, nl_prompt = kgen_request(task)
    saved = kgen_tipo.TARGET_TIPO_NL_MAX
    if fixed:
        kgen_tipo.TARGET_TIPO_NL_MAX = TARGET_TIPO_MAX
    start = time.perf_counter()
    try:
        parsed, timing = tipo_runner(meta, operations, general, nl_prompt, seed=seed, max_new_tokens=MAX_NEW,
                                     repetition_penalty=1.0, **{k: v for k, v in SAMPLING.items() if k != "min_p"})
    finally:
        kgen_tipo.TARGET_TIPO_NL_MAX = saved
    seconds = time.perf_counter() - start
    first = apply_tipo_prompt(meta, general, nl_prompt, *operations[0])
    return seconds, int(timing.get("generated_tokens", 0)), int(timing.get("generate_pass", 0)), first


def run_ours(manager: ModelManager, model: Path, task: str, seed: int) -> tuple[float, int, int, str]:
    settings = UpsampleSettings(enabled=True, model=str(model), task=task, max_new_tokens=MAX_NEW, **SAMPLING)
    start = time.perf_counter()
    result = upsample_prompts([PROMPT], settings, seeds=[seed], width=WIDTH, height=HEIGHT, manager=manager)[0]
    seconds = time.perf_counter() - start
    return seconds, int(result.timings["tokens"]), int(result.timings["calls"]), result.model_input


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--end-bias", type=float, default=7.95, help="logit bias of </s> after a tag (see above)")
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--kgen-fixed", action="store_true",
                        help="also time KGen with its tag truncation bug patched out (tags → tags only)")
    args = parser.parse_args()

    import kgen.models as kgen_models

    model = model_file(args.end_bias)
    kgen_models.model_dir = model.parent
    kgen_models.load_model(model.name, gguf=True, device="cpu")
    manager = ModelManager(device="cpu", backend="llama-cpp")
    print(f"model: {model.name} ({model.stat().st_size / 2**30:.2f} GiB), prompt: {PROMPT}", file=sys.stderr)

    rows = []
    for task in args.tasks:
        ours_input = prepare_prompt(PROMPT, UpsampleSettings(task=task), WIDTH, HEIGHT, "tipo").model_input
        run_ours(manager, model, task, 1)  # load and warm up both
        _, _, _, kgen_input = run_kgen(task, 1)
        if ours_input != kgen_input:
            raise SystemExit(f"the first model inputs differ:\n{ours_input!r}\n{kgen_input!r}")
        sides = ["ours", "kgen"] + (["kgen_fixed"] if args.kgen_fixed and task == "extend_tags" else [])
        samples: dict[str, list[tuple[float, int, int]]] = {side: [] for side in sides}
        seeds = random.Random(7).sample(range(1, 2**31), args.runs)
        for n, seed in enumerate(seeds):
            order = sides[n % len(sides):] + sides[:n % len(sides)]
            for side in order:
                out = (run_ours(manager, model, task, seed) if side == "ours"
                       else run_kgen(task, seed, fixed=side == "kgen_fixed"))
                samples[side].append(out[:3])
                print(f"{task} seed {seed} {side}: {out[0]:.2f} s, {out[1]} tokens, {out[2]} calls", file=sys.stderr)
        rows.append((task, samples))
    manager.unload()

    print("| request | side | median wall s | median new tokens | calls | ms per new token | ours / each KGen |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for task, samples in rows:
        wall = {side: statistics.median(s[0] for s in runs) for side, runs in samples.items()}
        names = {"ours": "ours", "kgen": "KGen tipo_runner", "kgen_fixed": "KGen, truncation bug patched out"}
        for side, runs in samples.items():
            tokens = statistics.median(s[1] for s in runs)
            per_token = 1000 * sum(s[0] for s in runs) / max(sum(s[1] for s in runs), 1)
            others = [k for k in samples if k != "ours"]
            ratio = " / ".join(f"{wall['ours'] / wall[k]:.2f}x" for k in others) if side == "ours" else ""
            print(f"| {TASKS[task]} | {names[side]} | {wall[side]:.2f} | {tokens:.0f} | "
                  f"{statistics.median(s[2] for s in runs):.0f} | {per_token:.1f} | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
