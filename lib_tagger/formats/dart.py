"""Dart v2 (p1atdev/dart-v2-*): model input and output parsing.

SFT input, one string with no separators::

    <|bos|><copyright>{copyrights}</copyright><character>{characters}</character>
    <|rating:R|><|aspect_ratio:A|><|length:L|><general>{special, general}<|identity:I|><|input_end|>

The base models' input ends at ``<general>{special, general}``. Dart has no field for artists,
quality or meta tags: they are left out of the input (they stay in the user's prompt). The
people-count tags lead ``general``, as in the training data. With rating "auto" and no rating
word in the prompt, the rating is "general" (the author's default in dartrs).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lib_tagger.formats.family import Call, Job, Outcome, Parsed, Plan
from lib_tagger.formats.options import FormatError, FormatOptions
from lib_tagger.tags.sort import TagFields, rating_from_fields

FORMAT_SFT = "dart-sft"
FORMAT_BASE = "dart-base"
DEFAULT_RATING = "general"
END_PIECES = frozenset({"</general>", "<|eos|>"})
_SPECIAL_PIECE = re.compile(r"<\|.*\|>|</?[a-z_]+>")


def aspect_ratio_bucket(width: int, height: int) -> str:
    """Dart's aspect ratio word for ``width/height`` (exact integer comparisons)."""
    if 2 * width <= height:
        return "ultra_tall"
    if 9 * width <= 8 * height:
        return "tall"
    if 8 * width < 9 * height:
        return "square"
    if width < 2 * height:
        return "wide"
    return "ultra_wide"


def dart_rating(fields: TagFields, option: str) -> str:
    """The rating word: the option, or with "auto" the prompt's rating, else "general"."""
    if option != "auto":
        return option
    return rating_from_fields(fields) or DEFAULT_RATING


def _head(fields: TagFields, options: FormatOptions) -> str:
    return (
        f"<|bos|><copyright>{', '.join(fields.copyright)}</copyright>"
        f"<character>{', '.join(fields.character)}</character>"
        f"<|rating:{dart_rating(fields, options.rating)}|>"
        f"<|aspect_ratio:{aspect_ratio_bucket(options.width, options.height)}|>"
        f"<|length:{options.length}|>"
        f"<general>{', '.join(fields.special + fields.general)}"
    )


def build_dart_sft(fields: TagFields, options: FormatOptions) -> str:
    """The input of the SFT models (dart-v2-sft, dart-v2-moe-sft)."""
    return f"{_head(fields, options)}<|identity:{options.identity}|><|input_end|>"


def build_dart_base(fields: TagFields, options: FormatOptions) -> str:
    """The input of the base models: it ends inside ``<general>`` for plain continuation."""
    return _head(fields, options)


def parse_dart_pieces(pieces: list[str]) -> list[str]:
    """New tags from the generated tokens, each decoded alone (Dart: one tag per token).

    Stops at ``</general>`` or ``<|eos|>``; drops empty and special pieces; keeps the first of
    duplicates.
    """
    tags: list[str] = []
    for piece in pieces:
        tag = piece.strip()
        if tag in END_PIECES:
            break
        if tag and not _SPECIAL_PIECE.fullmatch(tag) and tag not in tags:
            tags.append(tag)
    return tags


class DartFamily:
    """Dart v2: one model call, tags read from the pieces (one tag per token)."""

    name = "dart"
    formats = (FORMAT_SFT, FORMAT_BASE)
    torch_files = ("config.json", "model.safetensors", "tokenizer.json")
    optional_files = ("generation_config.json", "tokenizer_config.json", "special_tokens_map.json")

    def build(self, prompt_format: str, fields: TagFields, options: FormatOptions, nl_prompt: str = "") -> str:
        if prompt_format == FORMAT_SFT:
            return build_dart_sft(fields, options)
        if prompt_format == FORMAT_BASE:
            return build_dart_base(fields, options)
        raise FormatError(f"prompt_format: {prompt_format!r} is not one of {', '.join(self.formats)}")

    def parse(self, prompt_format: str, model_input: str, text: str, pieces: list[str]) -> Parsed:
        return Parsed(tags=parse_dart_pieces(pieces))

    def plan(self, prompt_format: str, job: Job) -> Plan:
        generation = yield Call(self.build(prompt_format, job.fields, job.options))
        tags = self.parse(prompt_format, "", generation.text, generation.pieces).tags
        return Outcome(job.accept(tags), calls=1)

    def guess(self, path: Path, config: dict[str, Any] | None) -> str | None:
        model_type = str((config or {}).get("model_type", "")).lower()
        if model_type not in ("mistral", "mixtral"):
            return None
        return FORMAT_BASE if "base" in path.name.lower() else FORMAT_SFT


DART = DartFamily()
