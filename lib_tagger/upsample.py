"""The upsampling pipeline: prompt → fields → model input → generation → new tags → new prompt.

This is where a prompt gets changed. :func:`upsample_prompts` raises on any failure (missing
model, corrupt file, out of memory); callers that must never break a generation catch it and
keep the user's prompt.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from .formats import FormatOptions, build_model_input, parse_model_output, target_tag_count, topup_input
from .generate.bans import expand_patterns
from .generate.base import Generation, PromptTooLongError, SamplingParams
from .models.manager import ModelManager, get_manager
from .models.registry import FORMAT_DANTAGGEN, FORMAT_DANTAGGEN_QUALITY
from .prompt import extract_tags, insert_tags, is_clean_tag, normalize_tag
from .settings import UpsampleSettings
from .tags import TagFields, get_tag_db, normalize_key, sort_tags

#: Extra generation rounds DanTagGen may take when it returned fewer tags than the target.
MAX_TOPUP_ROUNDS = 3


class UpsampleError(RuntimeError):
    """Upsampling failed; the prompt was not changed."""


@dataclass
class UpsampleResult:
    """One upsampled prompt."""

    prompt: str
    original: str
    new_tags: list[str]
    model_input: str
    seed: int
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class PreparedPrompt:
    """A prompt taken apart for the model (no model needed)."""

    fields: TagFields
    model_input: str
    prompt_format: str
    present: set[str]


def prepare_prompt(
    prompt: str, settings: UpsampleSettings, width: int, height: int, prompt_format: str
) -> PreparedPrompt:
    """Sort the prompt's tags and build the exact model input string."""
    tags = extract_tags(prompt)
    fields = sort_tags([t.tag for t in tags if not t.conditional])
    options = FormatOptions(
        rating=settings.rating, length=settings.length, identity=settings.identity, width=width, height=height
    )
    model_input = build_model_input(prompt_format, fields, options)
    return PreparedPrompt(fields, model_input, prompt_format, {_tag_key(t.tag) for t in tags})


def _tag_key(tag: str) -> str:
    """What two tags must share to be the same tag: normalized spelling, aliases resolved."""
    return get_tag_db().canonical(normalize_tag(tag))


def sampling_params(settings: UpsampleSettings) -> SamplingParams:
    temperature, top_p, top_k, min_p = settings.sampling()
    return SamplingParams(
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        min_p=min_p,
        max_new_tokens=settings.max_new_tokens,
        banned_tags=settings.banned(),
    )


def upsample_prompts(
    prompts: Sequence[str],
    settings: UpsampleSettings,
    *,
    seeds: Sequence[int],
    width: int,
    height: int,
    manager: ModelManager | None = None,
) -> list[UpsampleResult]:
    """Upsample each prompt with its own seed, in one batched model call where the backend allows."""
    if len(prompts) != len(seeds):
        raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
    if not prompts:
        return []
    manager = manager or get_manager()
    db = get_tag_db()
    started = time.perf_counter()
    with manager.use(settings.model, precision=settings.precision) as loaded:
        fmt = loaded.source.prompt_format
        prepared = [prepare_prompt(p, settings, width, height, fmt) for p in prompts]
        prepare_seconds = time.perf_counter() - started
        params = sampling_params(settings)
        generator = loaded.generator
        # A generator that keeps an evaluated prefix runs prompt by prompt, each prompt's top-up
        # rounds right after its first round (whose evaluated input they reuse).
        one_by_one = getattr(generator, "reuses_prefix", False)
        generations = [None] * len(prepared) if one_by_one else generator.generate(
            [p.model_input for p in prepared], params, list(seeds))
        results = []
        for prompt, seed, prep, generation in zip(prompts, seeds, prepared, generations):
            t0 = time.perf_counter()
            if generation is None:
                generation = generator.generate([prep.model_input], params, [seed])[0]
                t0 = time.perf_counter()
            new_tags = _filter(parse_model_output(fmt, generation.text, generation.pieces), prep.present, params)
            rounds, topup_seconds = _top_up(generator, prep, params, seed, settings.length, new_tags,
                                            generation.token_ids)
            inserted = insert_tags(prompt, new_tags, settings.position, canonical=db.canonical)
            timings = {
                "load": loaded.seconds,
                "prepare": prepare_seconds / len(prompts),
                "generate": generation.seconds + topup_seconds,
                "topup_rounds": float(rounds),
                "tokens": float(len(generation.token_ids)),
            }
            timings["total"] = timings["prepare"] + timings["generate"] + (time.perf_counter() - t0)
            results.append(
                UpsampleResult(inserted.prompt, prompt, inserted.inserted, prep.model_input, seed, timings)
            )
    return results


def _filter(tags: list[str], present: set[str], params: SamplingParams) -> list[str]:
    """Drop unprintable output, banned tags and tags the prompt (or earlier output) already has; keep order."""
    banned = set(expand_patterns(params.banned_tags, tags)) if params.banned_tags else set()
    seen = set(present)
    kept = []
    for tag in tags:
        key = _tag_key(tag)
        if not key or not is_clean_tag(tag) or key in seen or normalize_key(tag) in banned or key in banned:
            continue
        seen.add(key)
        kept.append(tag)
    return kept


def _top_up(generator, prep: PreparedPrompt, params: SamplingParams, seed: int, length: str,
            new_tags: list[str], first_tokens: Sequence[int] = ()) -> tuple[int, float]:
    """DanTagGen: re-prompt with the tags found so far until the target count (bounded rounds).

    Each round's input begins with the one before it and goes on with the tags that round
    generated; a generator that can keep an evaluated prefix (``reuses_prefix``) is given the
    earlier rounds (inputs and generated ``token_ids``, the first round's: ``first_tokens``) and
    evaluates only what is new.
    """
    if prep.prompt_format not in (FORMAT_DANTAGGEN, FORMAT_DANTAGGEN_QUALITY):
        return 0, 0.0
    target = target_tag_count(prep.prompt_format, length)
    have = len(prep.fields.general) + len(prep.fields.special)
    reuses = getattr(generator, "reuses_prefix", False)
    earlier = [(prep.model_input, list(first_tokens))]  # every round so far: input, generated ids
    seconds = 0.0
    rounds = 0
    while have + len(new_tags) < target and rounds < MAX_TOPUP_ROUNDS:
        rounds += 1
        model_input = topup_input(prep.prompt_format, prep.model_input, new_tags)
        try:
            reuse = {"prefix": list(earlier)} if reuses else {}
            generation: Generation = generator.generate([model_input], params, [seed + rounds], **reuse)[0]
        except PromptTooLongError:  # the tags found so far fill the context: enough
            break
        seconds += generation.seconds
        earlier.append((model_input, generation.token_ids))
        more = _filter(parse_model_output(prep.prompt_format, generation.text, generation.pieces),
                       prep.present | {_tag_key(t) for t in new_tags}, params)
        if not more:
            break
        new_tags.extend(more)
    return rounds, seconds
