"""Time the CPU-only steps before a tag model runs: tag extraction, sorting, model input building.

Generates 1,000 real-looking prompts from the shipped tag data (fixed seed): quality words,
people-count tags, a character and a copyright, sometimes an artist, 15-40 general tags, some
emphasis, LoRAs and BREAKs. Prints a Markdown table of per-prompt times (one Python thread;
no torch involved) and the one-time tag data load.

Usage: ``python bench/bench_prompt_building.py [--prompts N] [--seed S]``
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib_tagger.formats import PROMPT_FORMATS, FormatOptions, build_model_input
from lib_tagger.prompt import escape_tag, extract_tags
from lib_tagger.tags import (
    ARTIST,
    CHARACTER,
    COPYRIGHT,
    DATA_FILE,
    GENERAL,
    SPECIAL_TAGS,
    TagDB,
    get_tag_db,
    sort_tags,
)

QUALITY = ["masterpiece", "best quality", "amazing quality", "very aesthetic", "newest", "year 2023"]
RATING = ["general", "sensitive", "nsfw", "explicit", "safe"]
SIZES = [(832, 1216), (1024, 1024), (1216, 832), (768, 1344)]


def make_prompts(db: TagDB, count: int, seed: int) -> list[str]:
    """Prompts in A1111 syntax built from real tags, deterministic for a seed."""
    rng = random.Random(seed)
    special = set(SPECIAL_TAGS)
    general = [t.name for t in db.top(GENERAL, 3000) if t.name not in special]
    artists = [t.name for t in db.top(ARTIST, 500)]
    characters = [t.name for t in db.top(CHARACTER, 500)]
    copyrights = [t.name for t in db.top(COPYRIGHT, 300)]
    prompts = []
    for _ in range(count):
        parts = rng.sample(QUALITY, rng.randint(1, 3))
        parts += rng.sample(SPECIAL_TAGS[:3] + SPECIAL_TAGS[7:9], rng.randint(0, 2))
        if rng.random() < 0.8:
            parts += [rng.choice(characters), rng.choice(copyrights)]
        if rng.random() < 0.4:
            parts.append(rng.choice(artists))
        tags = [escape_tag(t) for t in rng.sample(general, rng.randint(15, 40))]
        for i in rng.sample(range(len(tags)), rng.randint(0, 4)):
            tags[i] = f"({tags[i]}:{rng.choice((0.8, 1.1, 1.2, 1.3))})"
        if rng.random() < 0.3:
            tags.insert(rng.randrange(len(tags)), "BREAK")
        text = ", ".join([escape_tag(p) for p in parts] + tags)
        text = text.replace(", BREAK,", " BREAK")
        if rng.random() < 0.5:
            text += f", <lora:style_{rng.randint(1, 9)}:{rng.choice((0.6, 0.8, 1.0))}>"
        if rng.random() < 0.5:
            text += f", {rng.choice(RATING)}"
        prompts.append(text)
    return prompts


def _stats(seconds: list[float]) -> str:
    micro = sorted(s * 1e6 for s in seconds)
    p95 = micro[min(len(micro) - 1, int(0.95 * len(micro)))]
    return f"{statistics.fmean(micro):.1f} | {statistics.median(micro):.1f} | {p95:.1f} | {micro[-1]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()

    loads, load_cpu = [], []
    for _ in range(3):
        start, cpu = time.perf_counter(), time.process_time()
        TagDB.from_file(DATA_FILE)
        loads.append(time.perf_counter() - start)
        load_cpu.append(time.process_time() - cpu)
    db = get_tag_db()
    prompts = make_prompts(db, args.prompts, args.seed)

    extract, sort, build, total = [], [], [], []
    for index, prompt in enumerate(prompts):
        width, height = SIZES[index % len(SIZES)]
        options = FormatOptions(width=width, height=height)
        t0 = time.perf_counter()
        tags = [t.tag for t in extract_tags(prompt) if not t.conditional]
        t1 = time.perf_counter()
        fields = sort_tags(tags, db)
        t2 = time.perf_counter()
        for prompt_format in PROMPT_FORMATS:
            build_model_input(prompt_format, fields, options)
        t3 = time.perf_counter()
        extract.append(t1 - t0)
        sort.append(t2 - t1)
        build.append((t3 - t2) / len(PROMPT_FORMATS))
        total.append(t3 - t0)

    tag_counts = [len(extract_tags(p)) for p in prompts]
    print(f"Prompt building, {len(prompts)} prompts (seed {args.seed}), {min(tag_counts)}-{max(tag_counts)} "
          f"tags each; Python {platform.python_version()}, one thread, {platform.processor() or 'cpu'}\n")
    print("| step | mean µs | p50 µs | p95 µs | max µs |")
    print("|---|---|---|---|---|")
    print(f"| extract_tags (prompt string → tags) | {_stats(extract)} |")
    print(f"| sort_tags (aliases, categories) | {_stats(sort)} |")
    print(f"| build_model_input (per format, mean of 4) | {_stats(build)} |")
    print(f"| all: extract + sort + 4 builds | {_stats(total)} |")
    print(f"\nOne-time tag data load ({len(db):,} tags, {DATA_FILE.stat().st_size / 1e6:.2f} MB gzip): "
          f"wall min {min(loads) * 1e3:.0f} ms / mean {statistics.fmean(loads) * 1e3:.0f} ms, "
          f"CPU mean {statistics.fmean(load_cpu) * 1e3:.0f} ms over 3 loads; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
