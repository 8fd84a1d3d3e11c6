"""The families by prompt format name, and one entry point per step for every format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lib_tagger.formats import dantaggen, tipo
from lib_tagger.formats.dantaggen import DANTAGGEN
from lib_tagger.formats.dart import DART
from lib_tagger.formats.family import Family
from lib_tagger.formats.options import FormatError, FormatOptions
from lib_tagger.formats.tipo import TIPO
from lib_tagger.tags.sort import TagFields

#: Every family; a local model is guessed in this order (TIPO before DanTagGen: both are LLaMA).
FAMILIES: tuple[Family, ...] = (TIPO, DART, DANTAGGEN)
PROMPT_FORMATS: tuple[str, ...] = tuple(name for family in (DART, DANTAGGEN, TIPO) for name in family.formats)
_BY_FORMAT = {name: family for family in FAMILIES for name in family.formats}
#: Dart's length buckets, as tag counts (approximate: the model card's description).
DART_TARGETS = {"very_short": 10, "short": 20, "medium": 30, "long": 40, "very_long": 50}


def family_of(prompt_format: str) -> Family:
    """The family of a prompt format name; FormatError lists the known names."""
    if prompt_format not in _BY_FORMAT:
        raise FormatError(f"prompt_format: {prompt_format!r} is not one of {', '.join(PROMPT_FORMATS)}")
    return _BY_FORMAT[prompt_format]


def build_model_input(prompt_format: str, fields: TagFields, options: FormatOptions, nl_prompt: str = "") -> str:
    """The (first) text to give the model for a prompt's sorted tags."""
    return family_of(prompt_format).build(prompt_format, fields, options, nl_prompt)


def parse_model_output(prompt_format: str, text: str, pieces: list[str], model_input: str = "") -> list[str]:
    """The tags of one generation: Dart reads ``pieces`` (one decoded token each), DanTagGen
    ``text``, TIPO ``model_input + text``."""
    return family_of(prompt_format).parse(prompt_format, model_input, text, pieces).tags


def target_tag_count(prompt_format: str, length: str) -> int:
    """How many tags (input + new) a length asks for: DanTagGen's and TIPO's top-up targets
    (medium counts as long); for Dart the bucket's approximate size."""
    family = family_of(prompt_format)
    if family is TIPO:
        return tipo.TAG_TARGETS[tipo.tipo_length(length)]
    table = dantaggen.TARGETS if family is DANTAGGEN else DART_TARGETS
    key = dantaggen.dantaggen_length(length) if family is DANTAGGEN else length
    if key not in table:
        raise FormatError(f"length: {length!r} is not one of {', '.join(DART_TARGETS)}")
    return table[key]


def topup_input(prompt_format: str, model_input: str, found_tags: list[str]) -> str:
    """DanTagGen only: the next round's input, the tags found so far after ``<|input_end|>``."""
    if family_of(prompt_format) is not DANTAGGEN:
        raise FormatError(f"prompt_format: {prompt_format!r} has no top-up rounds (DanTagGen only)")
    return dantaggen.dantaggen_topup_input(model_input, found_tags)


def guess_format(path: Path, config: dict[str, Any] | None) -> str | None:
    """The prompt format of a local model folder (with its parsed config.json) or GGUF file."""
    for family in FAMILIES:
        found = family.guess(path, config)
        if found is not None:
            return found
    return None
