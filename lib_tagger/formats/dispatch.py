"""One entry point per step for every prompt format (the pipeline's API)."""

from __future__ import annotations

from lib_tagger.formats import dantaggen, dart
from lib_tagger.formats.options import FormatError, FormatOptions
from lib_tagger.models.registry import (
    FORMAT_DANTAGGEN,
    FORMAT_DANTAGGEN_QUALITY,
    FORMAT_DART_BASE,
    FORMAT_DART_SFT,
)
from lib_tagger.tags.sort import TagFields

PROMPT_FORMATS = (FORMAT_DART_SFT, FORMAT_DART_BASE, FORMAT_DANTAGGEN, FORMAT_DANTAGGEN_QUALITY)
_DANTAGGEN = (FORMAT_DANTAGGEN, FORMAT_DANTAGGEN_QUALITY)
#: Dart's length buckets, as tag counts (approximate: the model card's description).
DART_TARGETS = {"very_short": 10, "short": 20, "medium": 30, "long": 40, "very_long": 50}


def _check(prompt_format: str) -> None:
    if prompt_format not in PROMPT_FORMATS:
        raise FormatError(f"prompt_format: {prompt_format!r} is not one of {', '.join(PROMPT_FORMATS)}")


def build_model_input(prompt_format: str, fields: TagFields, options: FormatOptions) -> str:
    """The text to give the model for a prompt's sorted tags."""
    _check(prompt_format)
    if prompt_format == FORMAT_DART_SFT:
        return dart.build_dart_sft(fields, options)
    if prompt_format == FORMAT_DART_BASE:
        return dart.build_dart_base(fields, options)
    return dantaggen.build_dantaggen(fields, options, with_quality=prompt_format == FORMAT_DANTAGGEN_QUALITY)


def parse_model_output(prompt_format: str, text: str, pieces: list[str]) -> list[str]:
    """The new tags of one generation: Dart reads ``pieces`` (one decoded token each),
    DanTagGen reads ``text``."""
    _check(prompt_format)
    if prompt_format in _DANTAGGEN:
        return dantaggen.parse_dantaggen_text(text)
    return dart.parse_dart_pieces(pieces)


def target_tag_count(prompt_format: str, length: str) -> int:
    """How many general tags (input + new) a length asks for. DanTagGen tops up below this
    count (medium counts as long); for Dart it is the bucket's approximate size."""
    _check(prompt_format)
    table = dantaggen.TARGETS if prompt_format in _DANTAGGEN else DART_TARGETS
    key = dantaggen.dantaggen_length(length) if prompt_format in _DANTAGGEN else length
    if key not in table:
        raise FormatError(f"length: {length!r} is not one of {', '.join(DART_TARGETS)}")
    return table[key]


def topup_input(prompt_format: str, model_input: str, found_tags: list[str]) -> str:
    """DanTagGen only: the next round's input, the tags found so far after ``<|input_end|>``."""
    _check(prompt_format)
    if prompt_format not in _DANTAGGEN:
        raise FormatError(f"prompt_format: {prompt_format!r} has no top-up rounds (DanTagGen only)")
    return dantaggen.dantaggen_topup_input(model_input, found_tags)
