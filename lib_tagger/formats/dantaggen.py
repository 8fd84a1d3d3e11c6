"""DanTagGen (KBlueLeaf/DanTagGen-*): model input, output parsing and the top-up rounds.

Input, one field per line (``quality`` only for delta and delta-rev2)::

    quality: {quality tags, default "masterpiece"}
    rating: {rating or <|empty|>}
    artist: {artists or <|empty|>}
    characters: {characters or <|empty|>}
    copyrights: {copyrights or <|empty|>}
    aspect ratio: {width/height, one decimal}
    target: <|very_short|> | <|short|> | <|long|> | <|very_long|>
    general: {special, general}<|input_end|>

Decisions (reference: KGen ``apply_dtg_prompt`` / ``tag_gen``):

- Length "medium" (Dart only) becomes ``<|long|>``.
- Ratings map to DanTagGen's words: general and sfw → safe, sensitive → sensitive,
  questionable and nsfw → nsfw, explicit → "nsfw, explicit"; "auto" without a rating word
  gives ``<|empty|>`` (no rating tendency).
- Meta tags (highres, absurdres, ...) are left out, as KGen does; they stay in the prompt.
- ``general`` joins the special and general tags with ", " and nothing else (KGen writes
  ``{special}, {general}``, which leaves a stray ", " when one side is empty).
- Top-up (:meth:`DanTagGenFamily.plan`): while input + new tags are fewer than the length's
  target, up to :data:`MAX_TOPUP_ROUNDS` more rounds run with seed + round; the next round's
  input is the input up to ``<|input_end|>`` followed by the tags found so far (KGen shuffles
  them; the caller may, this module keeps the given order).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lib_tagger.formats.family import Call, Job, Outcome, Parsed, Plan
from lib_tagger.formats.options import FormatError, FormatOptions
from lib_tagger.tags.sort import TagFields, rating_from_fields

FORMAT_PLAIN = "dantaggen"
FORMAT_QUALITY = "dantaggen-quality"
#: Extra generation rounds when a generation returned fewer tags than the target.
MAX_TOPUP_ROUNDS = 3
EMPTY = "<|empty|>"
INPUT_END = "<|input_end|>"
DEFAULT_QUALITY = "masterpiece"
#: Minimum tag count (input general + new) per length; below it the generation is topped up.
TARGETS = {"very_short": 8, "short": 16, "long": 32, "very_long": 48}
RATING_WORDS = {
    "general": "safe",
    "sfw": "safe",
    "sensitive": "sensitive",
    "nsfw": "nsfw",
    "questionable": "nsfw",
    "explicit": "nsfw, explicit",
}
_DROP = frozenset({"<s>", "</s>"})


def dantaggen_aspect_ratio(width: int, height: int) -> str:
    """``width/height`` with one decimal, e.g. 832x1216 → "0.7"."""
    return f"{width / height:.1f}"


def dantaggen_length(length: str) -> str:
    """The target word of a length; "medium" has no DanTagGen token and becomes "long"."""
    return "long" if length == "medium" else length


def dantaggen_rating(fields: TagFields, option: str) -> str:
    """The rating line's value (see the module doc for the mapping)."""
    rating = rating_from_fields(fields) if option == "auto" else option
    return RATING_WORDS[rating] if rating else EMPTY


def build_dantaggen(fields: TagFields, options: FormatOptions, with_quality: bool) -> str:
    """The model input; ``with_quality`` adds the quality line (delta, delta-rev2)."""
    lines = []
    if with_quality:
        quality = (options.quality or "").strip() or ", ".join(fields.quality) or DEFAULT_QUALITY
        lines.append(f"quality: {quality}")
    lines += [
        f"rating: {dantaggen_rating(fields, options.rating)}",
        f"artist: {', '.join(fields.artist) or EMPTY}",
        f"characters: {', '.join(fields.character) or EMPTY}",
        f"copyrights: {', '.join(fields.copyright) or EMPTY}",
        f"aspect ratio: {dantaggen_aspect_ratio(options.width, options.height)}",
        f"target: <|{dantaggen_length(options.length)}|>",
        f"general: {', '.join(fields.special + fields.general)}{INPUT_END}",
    ]
    return "\n".join(lines)


def parse_dantaggen_text(text: str) -> list[str]:
    """Tags from generated text: the part after the last ``<|input_end|>`` (when present), up
    to the first line break, split on commas; empty, ``<s>``/``</s>`` and special pieces are
    dropped and the first of duplicates kept."""
    tail = text.rsplit(INPUT_END, 1)[-1].strip()
    tail = tail.split("\n", 1)[0]
    tags: list[str] = []
    for part in tail.replace("</s>", ",").replace("<s>", ",").split(","):
        tag = part.strip()
        if tag and tag not in _DROP and not (tag.startswith("<|") and tag.endswith("|>")) and tag not in tags:
            tags.append(tag)
    return tags


def dantaggen_topup_input(model_input: str, found_tags: list[str]) -> str:
    """The next round's input: ``model_input`` up to ``<|input_end|>`` + the tags found so far.

    The model may extend the last tag, so parse ``topup input + continuation`` (the parser reads
    after the last ``<|input_end|>``) to get every tag found so far.
    """
    if INPUT_END not in model_input:
        raise FormatError(f"model_input: no {INPUT_END} in {model_input[-80:]!r}")
    head = model_input.split(INPUT_END, 1)[0]
    return f"{head}{INPUT_END}{', '.join(found_tags)}"


class DanTagGenFamily:
    """DanTagGen: one call, then top-up rounds until the length's target count is reached."""

    name = "dantaggen"
    formats = (FORMAT_PLAIN, FORMAT_QUALITY)
    torch_files = ("config.json", "model.safetensors", "tokenizer.json")
    optional_files = ("generation_config.json", "tokenizer_config.json", "special_tokens_map.json")

    def build(self, prompt_format: str, fields: TagFields, options: FormatOptions, nl_prompt: str = "") -> str:
        if prompt_format not in self.formats:
            raise FormatError(f"prompt_format: {prompt_format!r} is not one of {', '.join(self.formats)}")
        return build_dantaggen(fields, options, with_quality=prompt_format == FORMAT_QUALITY)

    def parse(self, prompt_format: str, model_input: str, text: str, pieces: list[str]) -> Parsed:
        return Parsed(tags=parse_dantaggen_text(text))

    def plan(self, prompt_format: str, job: Job) -> Plan:
        """The first call, then top-up rounds; each round's input begins with the first one's, so a
        generator that keeps an evaluated prefix evaluates only the tags found so far."""
        from lib_tagger.generate.base import PromptTooLongError  # here: the UI imports formats at start

        first = self.build(prompt_format, job.fields, job.options)
        generation = yield Call(first)
        new_tags = job.accept(self.parse(prompt_format, first, generation.text, generation.pieces).tags)
        target = TARGETS[dantaggen_length(job.options.length)]
        have = len(job.fields.general) + len(job.fields.special)
        rounds = 0
        while have + len(new_tags) < target and rounds < MAX_TOPUP_ROUNDS:
            rounds += 1
            try:
                generation = yield Call(dantaggen_topup_input(first, new_tags), seed_offset=rounds, prefix=first)
            except PromptTooLongError:  # the tags found so far fill the context: enough
                break
            more = job.accept(self.parse(prompt_format, first, generation.text, generation.pieces).tags)
            if not more:
                break
            new_tags.extend(more)
        return Outcome(new_tags, calls=rounds + 1)

    def guess(self, path: Path, config: dict[str, Any] | None) -> str | None:
        if config is not None and str(config.get("model_type", "")).lower() != "llama":
            return None
        return FORMAT_QUALITY if "delta" in str(path).lower() else FORMAT_PLAIN


DANTAGGEN = DanTagGenFamily()
