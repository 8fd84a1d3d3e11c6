"""The upsampling pipeline: prompt → fields → the family's plan (model calls) → new tags and text → new prompt.

This is where a prompt gets changed. :func:`upsample_prompts` raises on any failure (missing
model, corrupt file, out of memory); callers that must never break a generation catch it and
keep the user's prompt. A ``should_stop`` callable (the WebUI's Interrupt / Skip) is polled before
the model loads, between decode steps and prompts, and between top-up rounds: a prompt whose model
calls did not all finish comes back untouched (``stopped``), so a prompt is either upsampled whole or
not at all.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from .formats import FormatOptions, family_of
from .formats.family import Call, Family, Job, Outcome
from .formats.tipo import TIPO
from .generate.bans import expand_patterns
from .generate.base import Generation, PromptTooLongError, SamplingParams, ShouldStop
from .models.manager import ModelManager, get_manager
from .output import compose
from .prompt import extract_tags, is_clean_tag, normalize_tag, tag_names
from .settings import UpsampleSettings
from .tags import TagFields, get_tag_db, normalize_key, sort_tags


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
    nl_text: str = ""  # the natural-language text added (TIPO), as inserted
    stopped: bool = False  # the user stopped the job before this prompt was done: ``prompt`` is the original


@dataclass
class PreparedPrompt:
    """A prompt taken apart for the model (no model needed)."""

    fields: TagFields
    model_input: str
    prompt_format: str
    present: set[str]
    options: FormatOptions | None = None
    nl_prompt: str = ""  # read by TIPO only


def prepare_prompt(
    prompt: str, settings: UpsampleSettings, width: int, height: int, prompt_format: str
) -> PreparedPrompt:
    """Sort the prompt's tags and build the exact (first) model input string."""
    known = get_tag_db().known
    tags = extract_tags(prompt)
    fields = sort_tags([name for t in tags if not t.conditional for name in tag_names(t, known)])
    options = FormatOptions(
        rating=settings.rating, length=settings.length, identity=settings.identity, width=width, height=height,
        task=settings.task, nl_length=settings.nl_length,
    )
    family = family_of(prompt_format)
    nl_prompt = settings.nl_prompt if family is TIPO else ""
    model_input = family.build(prompt_format, fields, options, nl_prompt)
    present = {_tag_key(name) for t in tags for name in tag_names(t, known)}
    return PreparedPrompt(fields, model_input, prompt_format, present, options, nl_prompt)


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
    should_stop: ShouldStop | None = None,
) -> list[UpsampleResult]:
    """Upsample each prompt with its own seed, in one batched model call where the backend allows.

    With ``should_stop``, prompts not done when it turns True are returned untouched with ``stopped=True``.
    """
    if len(prompts) != len(seeds):
        raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
    if not prompts:
        return []
    stop = should_stop or _never
    if stop():
        return [_untouched(prompt, seed) for prompt, seed in zip(prompts, seeds)]
    manager = manager or get_manager()
    db = get_tag_db()
    started = time.perf_counter()
    with manager.use(settings.model, precision=settings.precision) as loaded:
        fmt = loaded.source.prompt_format
        family = family_of(fmt)
        prepared = [prepare_prompt(p, settings, width, height, fmt) for p in prompts]
        prepare_seconds = time.perf_counter() - started
        params = sampling_params(settings)
        runs = _run_plans(family, fmt, loaded.generator, prepared, params, list(seeds), stop)
        results = []
        for prompt, seed, prep, run in zip(prompts, seeds, prepared, runs):
            t0 = time.perf_counter()
            if run.stopped:
                results.append(_untouched(prompt, seed, prep.model_input))
                continue
            out = compose(prompt, run.outcome.new_tags, run.outcome.nl_text, settings.output_format,
                          settings.position, settings.nl_position, canonical=db.canonical, known=db.known)
            timings = {
                "load": loaded.seconds,
                "prepare": prepare_seconds / len(prompts),
                "generate": run.seconds,
                "topup_rounds": float(max(run.outcome.calls - 1, 0)),
                "calls": float(run.outcome.calls),
                "tokens": float(run.tokens),
            }
            timings["total"] = timings["prepare"] + timings["generate"] + (time.perf_counter() - t0)
            results.append(UpsampleResult(out.prompt, prompt, list(out.tags), prep.model_input, seed, timings,
                                          out.text))
    return results


@dataclass
class _Run:
    """One prompt's plan while it runs: its next call, its seed, and what its calls took."""

    plan: object
    call: Call | None
    seed: int
    outcome: Outcome | None = None
    seconds: float = 0.0
    tokens: int = 0
    stopped: bool = False  # the user stopped the job before this prompt's calls were all done
    #: Every call so far: its model input and the token ids it generated (what a prefix-keeping
    #: backend rebuilds its context from, so a call evaluates only what is new).
    history: list[tuple[str, list[int]]] = field(default_factory=list)


def _never() -> bool:
    return False


def _untouched(prompt: str, seed: int, model_input: str = "") -> UpsampleResult:
    return UpsampleResult(prompt, prompt, [], model_input, seed, {"total": 0.0}, stopped=True)


def _run_plans(family: Family, fmt: str, generator, prepared: list[PreparedPrompt], params: SamplingParams,
               seeds: list[int], stop: ShouldStop) -> list[_Run]:
    """Drive every prompt's plan. A batching backend gets each round's calls together (one batch),
    so batch results equal single runs; a backend that keeps an evaluated prefix (llama.cpp, one
    prompt at a time anyway) runs each prompt's calls in a row, so a call can reuse the last one's.
    ``stop`` is polled before every round (and by the generator between decode steps): the runs it
    catches unfinished are marked ``stopped`` and their plans closed."""
    runs = []
    for prep, seed in zip(prepared, seeds):
        job = Job(prep.fields, prep.options or FormatOptions(), _acceptor(prep.present, params), prep.nl_prompt,
                  params.max_new_tokens)
        plan = family.plan(fmt, job)
        runs.append(_Run(plan, next(plan), seed))
    groups = [[run] for run in runs] if getattr(generator, "reuses_prefix", False) else [runs]
    for group in groups:
        first = True
        while active := [run for run in group if run.call is not None]:
            if stop():
                _stop(active)
                break
            answers = _generate(generator, active, params, first, stop)
            first = False
            for run, answer in zip(active, answers):
                if isinstance(answer, Generation) and answer.stopped:
                    _stop([run])
                    continue
                if isinstance(answer, Generation):
                    run.seconds += answer.seconds
                    run.tokens += len(answer.token_ids)
                    run.history.append((run.call.model_input, list(answer.token_ids)))
                try:
                    run.call = run.plan.throw(answer) if isinstance(answer, BaseException) else run.plan.send(answer)
                except StopIteration as done:
                    run.call, run.outcome = None, done.value
    return runs


def _stop(runs: list[_Run]) -> None:
    for run in runs:
        run.plan.close()
        run.call, run.stopped = None, True


def _generate(generator, runs: list[_Run], params: SamplingParams, first: bool,
              stop: ShouldStop) -> list[Generation | PromptTooLongError]:
    """One round of the runs' next calls. A too-long first input fails the upsampling; a later one is
    handed to its plan (which then stops with what it has). A call that names a prefix gets, on a
    prefix-keeping backend, its run's earlier calls (inputs and generated ids)."""
    calls = [run.call for run in runs]
    call_seeds = [run.seed + call.seed_offset for call, run in zip(calls, runs)]
    reuse = getattr(generator, "reuses_prefix", False)
    if first or not reuse:
        try:
            return generator.generate([call.model_input for call in calls], params, call_seeds, should_stop=stop)
        except PromptTooLongError:
            if first:
                raise
    answers: list[Generation | PromptTooLongError] = []
    for call, seed, run in zip(calls, call_seeds, runs):
        extra = {"prefix": list(run.history) or call.prefix} if reuse and call.prefix else {}
        if stop():
            answers.append(Generation("", stopped=True))
            continue
        try:
            answers.append(generator.generate([call.model_input], params, [seed], should_stop=stop, **extra)[0])
        except PromptTooLongError as exc:
            answers.append(exc)
    return answers


def _acceptor(present: set[str], params: SamplingParams):
    """``Job.accept`` for one prompt: the new tags of a list, remembered for later calls."""

    seen = set(present)

    def accept(tags: list[str]) -> list[str]:
        return _filter(tags, seen, params)

    return accept


def _filter(tags: list[str], seen: set[str], params: SamplingParams) -> list[str]:
    """Drop unprintable output, banned tags and tags in ``seen`` (the prompt's and earlier output);
    keep order; the kept tags join ``seen``."""
    banned = set(expand_patterns(params.banned_tags, tags)) if params.banned_tags else set()
    kept = []
    for tag in tags:
        key = _tag_key(tag)
        if not key or not is_clean_tag(tag) or key in seen or normalize_key(tag) in banned or key in banned:
            continue
        seen.add(key)
        kept.append(tag)
    return kept
