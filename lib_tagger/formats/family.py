"""What every model family provides, and the plan protocol the pipeline drives.

A family (Dart v2, DanTagGen, TIPO) knows its prompt format names, builds the first model input
(``build``), reads tags and text out of a generation (``parse``), turns one prompt into model calls
(``plan``) and recognises a local model folder or file (``guess``).

A plan is a generator: it yields :class:`Call` objects, is sent back each call's
:class:`~lib_tagger.generate.base.Generation`, and returns an :class:`Outcome`. The pipeline drives
many plans side by side, so every image's calls of one round go to the model as one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lib_tagger.formats.options import FormatOptions
from lib_tagger.tags.sort import TagFields


@dataclass(frozen=True)
class Call:
    """One model call of a plan: the input, the seed offset (added to the image's tag seed) and a
    prefix of ``model_input`` whose evaluated state is worth keeping between calls (or None)."""

    model_input: str
    seed_offset: int = 0
    prefix: str | None = None


@dataclass
class Parsed:
    """What a generation holds: the tags of the tag field and, for TIPO, the text fields."""

    tags: list[str] = field(default_factory=list)
    text: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    """The result of a plan: new tags (filtered, in order) and the natural-language text to add."""

    new_tags: list[str]
    nl_text: str = ""
    calls: int = 0


@dataclass(frozen=True)
class Job:
    """One prompt for a plan: its sorted tags, the format options, the NL prompt, and ``accept``,
    which returns the tags of a list that are new (not in the prompt, not banned, not accepted
    before) and remembers them."""

    fields: TagFields
    options: FormatOptions
    accept: Callable[[list[str]], list[str]]
    nl_prompt: str = ""
    max_new_tokens: int = 128


Plan = Generator[Call, Any, Outcome]


class Family(Protocol):
    """A model family: format names, input builder, output parser, planner, folder guesser."""

    name: str
    formats: tuple[str, ...]
    #: Files of a safetensors checkpoint the torch backend reads, and files fetched when present.
    torch_files: tuple[str, ...]
    optional_files: tuple[str, ...]

    def build(self, prompt_format: str, fields: TagFields, options: FormatOptions, nl_prompt: str = "") -> str:
        """The first model input for a prompt's sorted tags (what ``--dry-run`` prints)."""
        ...

    def parse(self, prompt_format: str, model_input: str, text: str, pieces: list[str]) -> Parsed:
        """Tags (and text fields) of one generation; never raises on odd output."""
        ...

    def plan(self, prompt_format: str, job: Job) -> Plan:
        """The model calls for one prompt (see the module doc)."""
        ...

    def guess(self, path: Path, config: dict[str, Any] | None) -> str | None:
        """The prompt format of a local model folder/file of this family, or None when not ours."""
        ...


def cut_off(generation: Any, max_new_tokens: int) -> bool:
    """True when a generation stopped at the token limit (its last item may be incomplete)."""
    return len(getattr(generation, "token_ids", ()) or ()) >= max_new_tokens
