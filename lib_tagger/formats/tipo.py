"""TIPO (KBlueLeaf/TIPO-*): model inputs, output parsing and the steps of each task.

One step's input (facts from KGen 0.3.1 ``apply_tipo_prompt`` and z-tipo's ``aspect_ratio``)::

    meta: {meta tags}                      every meta line only when it has a value, in this order
    rating: {rating}
    artist: {artists}
    characters: {characters}
    copyrights: {copyrights}
    quality: {quality tags}
    aspect_ratio: {width/height, one decimal}
    target: <|{length}|>[ <|{mode}|>]
    {content fields in the mode's order, e.g. tag: ... / long: ...}

A mode such as ``short_to_tag`` names the content fields in order (``tag`` alone without a mode).
``tag`` holds the special tags then the general ones; the NL prompt goes under ``short`` when the
mode has ``short``, else under ``long``. A field with content is written ``key: content``, an
empty one that is not last ``key: ``. Expanding steps end right after the last field's content
(the text is stripped), so the model continues it; the others end with ``{last key}:``, so the
model writes that field from scratch.

Decisions:

- Lengths: TIPO has very_short, short, long and very_long. "medium" (Dart's middle bucket, ~30
  tags) becomes ``long`` (TIPO's long aims at 36 tags, its short at 18), as for DanTagGen.
- Rating: "auto" writes the prompt's own rating words (``rating:s`` forms as their word), as KGen
  does; a chosen rating is written as that word.
- The four tasks and their steps (tags T / NL prompt N present or not), following KGen's
  ``parse_tipo_request``: see :func:`plan_steps`.
- Every call after the first reads what earlier calls produced. A step is retried (seed + 1 for
  each model call of the plan) until it has the target count of tags (very_short 6, short 18,
  long 36, very_long 54) or sentences (1 / 2 / 4 / 8), at most :data:`MAX_RETRIES` times, and
  stops early when two calls in a row add nothing. A retry continues the field the step fills.
- The user's tags are kept, new tags are cut to the length's maximum total (18 / 36 / 54 / 72
  tags; KGen cuts tags with the sentence maximum by mistake), sentences to 2 / 4 / 8 / unlimited.
- Parsing keeps the first occurrence of each known key; only known keys start a field, so a
  colon inside a sentence stays text. ``<s>``/``</s>`` and ``<|...|>`` pieces are dropped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib_tagger.formats.family import Call, Job, Outcome, Parsed, Plan, cut_off
from lib_tagger.formats.options import FormatError, FormatOptions
from lib_tagger.settings import TASKS
from lib_tagger.tags.sort import TagFields, rating_key

FORMAT = "tipo"
LENGTHS = ("very_short", "short", "long", "very_long")
TAG_TARGETS = {"very_short": 6, "short": 18, "long": 36, "very_long": 54}
TAG_MAXIMA = {"very_short": 18, "short": 36, "long": 54, "very_long": 72}
SENTENCE_TARGETS = {"very_short": 1, "short": 2, "long": 4, "very_long": 8}
SENTENCE_MAXIMA: dict[str, int | None] = {"very_short": 2, "short": 4, "long": 8, "very_long": None}
#: Extra calls a step may take to reach its target, and how many calls in a row may add nothing.
MAX_RETRIES = 3
MAX_IDLE = 2
#: The added tokens of the TIPO vocabulary; each must stay one token.
ADDED_TOKENS = (
    "<|empty|>", "<|very_short|>", "<|short|>", "<|long|>", "<|very_long|>", "<|tag_to_long|>",
    "<|long_to_tag|>", "<|short_to_tag|>", "<|short_to_long|>", "<|tag_to_short_to_long|>",
    "<|short_to_tag_to_long|>", "<|short_to_long_to_tag|>", "<|gen_meta|>",
)
META_KEYS = ("meta", "rating", "artist", "characters", "copyrights", "quality", "aspect_ratio")
CONTENT_KEYS = ("tag", "short", "long")
_KEYS = (*META_KEYS, "target", *CONTENT_KEYS, "general", "generated", "extended")
_FIELD_START = re.compile(rf"^[ \t]*({'|'.join(_KEYS)}):", re.MULTILINE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_RATING_FORMS = {"rating:g": "general", "rating:general": "general", "rating:safe": "safe",
                 "rating:s": "sensitive", "rating:sensitive": "sensitive", "rating:q": "questionable",
                 "rating:questionable": "questionable", "rating:e": "explicit", "rating:explicit": "explicit"}


def tipo_length(length: str) -> str:
    """TIPO's word for a length: "medium" becomes "long" (see the module doc)."""
    if length == "medium":
        return "long"
    if length not in LENGTHS:
        raise FormatError(f"length: {length!r} is not one of {', '.join(LENGTHS)} (or medium)")
    return length


def aspect_ratio(width: int, height: int) -> str:
    """``width/height`` with one decimal, e.g. 832x1216 → "0.7"."""
    return f"{width / height:.1f}"


def rating_value(fields: TagFields, option: str) -> str:
    """The rating line's value: the prompt's rating words ("auto") or the chosen rating."""
    if option != "auto":
        return option
    words = [_RATING_FORMS.get(rating_key(tag), tag) for tag in fields.rating]
    return ", ".join(dict.fromkeys(words))


def meta_lines(fields: TagFields, options: FormatOptions) -> dict[str, str]:
    """The meta lines of every step, in order (empty values are left out when written)."""
    return {
        "meta": ", ".join(fields.meta),
        "rating": rating_value(fields, options.rating),
        "artist": ", ".join(fields.artist),
        "characters": ", ".join(fields.character),
        "copyrights": ", ".join(fields.copyright),
        "quality": ", ".join(fields.quality),
        "aspect_ratio": aspect_ratio(options.width, options.height),
    }


def step_input(meta: dict[str, str], content: dict[str, str], mode: str | None, length: str,
               expand: bool) -> str:
    """The model input of one step (see the module doc)."""
    text = "".join(f"{key}: {value}\n" for key, value in meta.items() if value)
    target = f"<|{length}|>" + (f" <|{mode}|>" if mode else "")
    text += f"target: {target}\n"
    order = mode.split("_to_") if mode else ["tag"]
    for n, key in enumerate(order):
        value = content.get(key, "")
        if value.strip():
            text += f"{key}: {value}\n"
        elif n < len(order) - 1:
            text += f"{key}: \n"
    return text.strip() if expand else f"{text}{order[-1]}:"


# ---------------------------------------------------------------- parsing

def parse_fields(text: str) -> tuple[dict[str, str], str | None]:
    """``key → value`` of every known key in ``text`` (first occurrence wins; values stripped,
    ``<s>``/``</s>`` removed), and the key of the last field written."""
    text = text.replace("<s>", "").replace("</s>", "")
    found: dict[str, str] = {}
    starts = list(_FIELD_START.finditer(text))
    for n, match in enumerate(starts):
        end = starts[n + 1].start() if n + 1 < len(starts) else len(text)
        found.setdefault(match.group(1), text[match.end():end].strip())
    return found, starts[-1].group(1) if starts else None


def split_tags(value: str) -> list[str]:
    """Tags of a ``tag`` field: comma separated, stripped; empty and ``<|...|>`` pieces dropped."""
    tags = []
    for part in value.replace("\n", ",").split(","):
        tag = " ".join(part.split())
        if tag and not (tag.startswith("<|") and tag.endswith("|>")) and tag not in tags:
            tags.append(tag)
    return tags


def nl_value(value: str) -> str:
    """An NL field's text: ``<|empty|>`` and other ``<|...|>`` pieces removed, blanks collapsed."""
    return " ".join(re.sub(r"<\|[^|<>]*\|>", " ", value).split())


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` (split after ``.``, ``!`` or ``?`` followed by a blank)."""
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def parse_tipo_text(text: str, cut: bool = False) -> Parsed:
    """Tags and NL fields of a model input + its continuation. ``cut``: the generation stopped at
    the token limit, so the last tag or sentence written may be incomplete and is dropped."""
    found, last_key = parse_fields(text)
    tags = split_tags(found.get("tag", ""))
    fields = {key: nl_value(found[key]) for key in ("short", "long") if key in found}
    if cut and last_key == "tag" and tags and not found["tag"].endswith(","):
        tags = tags[:-1]
    elif cut and last_key in fields:
        fields[last_key] = _drop_last_sentence(fields[last_key])
    return Parsed(tags=tags, text={k: v for k, v in fields.items() if v})


def _drop_last_sentence(text: str) -> str:
    parts = sentences(text)
    if parts and not parts[-1].endswith((".", "!", "?")):
        parts = parts[:-1]
    return " ".join(parts)


# ---------------------------------------------------------------- steps

@dataclass(frozen=True)
class Step:
    """One step: the mode (None: tags only), whose length it uses, whether it expands, and whether
    the NL text it writes is kept (a tags step that continues the caption on its way is not)."""

    mode: str | None
    length_of: str  # "tag" or "nl"
    expand: bool
    keep_text: bool = False

    @property
    def target(self) -> str:
        """The field this step fills: the mode's last key."""
        return self.mode.split("_to_")[-1] if self.mode else "tag"


def plan_steps(task: str, has_tags: bool, has_nl: bool) -> tuple[Step, ...]:
    """The steps of a task (KGen's operations for the matching request).

    ``extend_tags`` (default): T → (None), T+N → (short_to_tag), N → (long_to_tag), all expanding,
    as KGen's default request starts. ``add_caption``: the tags step, then a caption from them
    (tag_to_long, or short_to_tag_to_long beside an NL prompt, written from scratch).
    ``caption_to_tags``: N → (long_to_tag) written from scratch, T+N → (short_to_tag); without an
    NL prompt it extends the tags. ``extend_both``: T+N → (short_to_tag) then (tag_to_long), both
    expanding (KGen's "both, tag first"); N → (long_to_tag, expanding the NL); T → as add_caption.
    """
    if task not in TASKS:
        raise FormatError(f"task: {task!r} is not one of {', '.join(TASKS)}")
    if has_nl and has_tags:
        tags_step = Step("short_to_tag", "tag", True)
    elif has_nl:
        tags_step = Step("long_to_tag", "tag", task != "caption_to_tags", keep_text=task == "extend_both")
    else:
        tags_step = Step(None, "tag", True)
    if task in ("extend_tags", "caption_to_tags"):
        return (tags_step,)
    if task == "extend_both" and has_nl:
        return (tags_step,) if not has_tags else (tags_step, Step("tag_to_long", "nl", True, keep_text=True))
    caption = Step("short_to_tag_to_long" if has_nl else "tag_to_long", "nl", False, keep_text=True)
    return (tags_step, caption)


@dataclass
class _State:
    tags: list[str]  # the user's special + general tags, then the accepted new ones
    new_tags: list[str]
    caption: str  # the user's NL prompt, extended when a step continues it
    generated: str  # a caption written from the tags


def _merge(old: str, new: str) -> str:
    """``old`` followed by what ``new`` adds to it (``new`` usually starts with ``old``)."""
    if not old:
        return new
    if new.startswith(old):
        return old + new[len(old):]
    known = set(sentences(old))
    extra = [s for s in sentences(new) if s not in known]
    return " ".join([old, *extra]) if extra else old


def _limit_sentences(text: str, keep: str, maximum: int | None) -> str:
    """``text`` (which begins with ``keep``) cut to ``maximum`` sentences, never inside ``keep``."""
    if maximum is None:
        return text
    parts = sentences(text)
    if len(parts) <= maximum:
        return text
    kept = max(maximum, len(sentences(keep)))
    return " ".join(parts[:kept]) if not keep else _merge(keep, " ".join(parts[:kept]))


def _long_holds(step: Step, state: _State) -> str:
    """What the ``long`` field of a step holds: the caption (continued), or a generated caption."""
    return "caption" if step.mode and "short" not in step.mode and state.caption else "generated"


class TipoFamily:
    """TIPO: KGen-style steps, each read from the previous one's tags and text."""

    name = "tipo"
    formats = (FORMAT,)
    torch_files = ("config.json", "model.safetensors", "tokenizer.model", "added_tokens.json")
    optional_files = ("generation_config.json", "tokenizer_config.json", "special_tokens_map.json")

    def build(self, prompt_format: str, fields: TagFields, options: FormatOptions, nl_prompt: str = "") -> str:
        """The first step's input for the task in ``options``."""
        self._check(prompt_format)
        tags = [*fields.special, *fields.general]
        state = _State(tags, [], " ".join(nl_prompt.split()), "")
        step = plan_steps(options.task, bool(tags), bool(state.caption))[0]
        return self._input(step, state, meta_lines(fields, options), options, step.expand)

    def parse(self, prompt_format: str, model_input: str, text: str, pieces: list[str]) -> Parsed:
        return parse_tipo_text(model_input + text)

    def plan(self, prompt_format: str, job: Job) -> Plan:
        from lib_tagger.generate.base import PromptTooLongError  # here: the UI imports formats at start

        self._check(prompt_format)
        fields, options = job.fields, job.options
        user_tags = [*fields.special, *fields.general]
        state = _State(list(user_tags), [], " ".join(job.nl_prompt.split()), "")
        meta = meta_lines(fields, options)
        steps = plan_steps(options.task, bool(user_tags), bool(state.caption))
        calls = 0
        for step in steps:
            long_holds = _long_holds(step, state)
            step_first = None  # a retry's input extends the step's first one: its evaluated state is kept
            idle = 0  # calls in a row that added nothing
            for attempt in range(MAX_RETRIES + 1):
                expand = step.expand if attempt == 0 or not self._filled(step, state, long_holds) else True
                model_input = self._input(step, state, meta, options, expand)
                prefix = step_first if step_first and model_input.startswith(step_first) else None
                step_first = step_first or model_input
                try:
                    generation = yield Call(model_input, seed_offset=calls, prefix=prefix)
                except PromptTooLongError:  # what was found so far fills the context: enough
                    break
                calls += 1
                parsed = parse_tipo_text(model_input + generation.text, cut_off(generation, job.max_new_tokens))
                idle = 0 if self._take(parsed, step, state, long_holds, job) else idle + 1
                if self._reached(step, state, options, long_holds) or idle >= MAX_IDLE:
                    break
        new_tags = state.new_tags[: max(TAG_MAXIMA[tipo_length(options.length)] - len(user_tags), 0)]
        return Outcome(new_tags, self._nl_text(job.nl_prompt, state, options), calls)

    def guess(self, path: Path, config: dict[str, Any] | None) -> str | None:
        if path.is_file():
            return FORMAT if "tipo" in path.name.lower() else None
        added = path / "added_tokens.json"
        if not added.is_file():
            return None
        try:
            names = json.loads(added.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return FORMAT if isinstance(names, dict) and "<|tag_to_long|>" in names else None

    # ------------------------------------------------------------ internals
    def _check(self, prompt_format: str) -> None:
        if prompt_format != FORMAT:
            raise FormatError(f"prompt_format: {prompt_format!r} is not {FORMAT!r}")

    def _length(self, step: Step, options: FormatOptions) -> str:
        return tipo_length(options.length if step.length_of == "tag" else options.nl_length)

    def _input(self, step: Step, state: _State, meta: dict[str, str], options: FormatOptions, expand: bool) -> str:
        long_text = state.caption if _long_holds(step, state) == "caption" else state.generated
        content = {"tag": ", ".join(state.tags), "short": state.caption, "long": long_text}
        return step_input(meta, content, step.mode, self._length(step, options), expand)

    def _filled(self, step: Step, state: _State, long_holds: str) -> bool:
        if step.target == "tag":
            return bool(state.tags)
        if step.target == "long":
            return bool(state.caption if long_holds == "caption" else state.generated)
        return bool(state.caption)

    def _take(self, parsed: Parsed, step: Step, state: _State, long_holds: str, job: Job) -> bool:
        """Fold a parsed generation into the state; True when it added tags or text."""
        before = (len(state.new_tags), state.caption, state.generated)
        order = step.mode.split("_to_") if step.mode else ["tag"]
        if "tag" in order:
            fresh = job.accept(parsed.tags)
            state.new_tags += fresh
            state.tags += fresh
        if not step.keep_text:
            return (len(state.new_tags), state.caption, state.generated) != before
        if "long" in order and "long" in parsed.text:
            if long_holds == "caption":
                state.caption = _merge(state.caption, parsed.text["long"])
            else:
                state.generated = _merge(state.generated, parsed.text["long"])
        if "short" in order and "short" in parsed.text and step.target == "short":
            state.caption = _merge(state.caption, parsed.text["short"])
        return (len(state.new_tags), state.caption, state.generated) != before

    def _reached(self, step: Step, state: _State, options: FormatOptions, long_holds: str) -> bool:
        length = self._length(step, options)
        if step.target == "tag":
            return len(state.tags) >= TAG_TARGETS[length]
        text = state.caption if step.target == "short" or long_holds == "caption" else state.generated
        return len(sentences(text)) >= SENTENCE_TARGETS[length]

    def _nl_text(self, nl_prompt: str, state: _State, options: FormatOptions) -> str:
        """The text to add to the prompt: the caption (the user's, extended when a step did) and a
        generated caption, each cut to the caption length's maximum of sentences."""
        maximum = SENTENCE_MAXIMA[tipo_length(options.nl_length)]
        user = " ".join(nl_prompt.split())
        caption = _limit_sentences(state.caption, user, maximum)
        generated = _limit_sentences(state.generated, "", maximum)
        return " ".join(part for part in (caption, generated) if part)


TIPO = TipoFamily()

