"""The generator interface shared by the llama.cpp and torch backends."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol


class ModelLoadError(RuntimeError):
    """A model file is missing, truncated or corrupt. The message names the file."""


class PromptTooLongError(ValueError):
    """The model input does not fit the model's context."""


@dataclass(frozen=True)
class SamplingParams:
    """How to pick the next token. ``banned_tags`` are tag patterns (``*`` wildcards, ``/regex/``)."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 100
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    max_new_tokens: int = 128
    banned_tags: tuple[str, ...] = ()


@dataclass
class Generation:
    """One generated continuation.

    ``pieces`` holds each generated token decoded on its own (special tokens as their text,
    e.g. ``<|eos|>``), which word-level tokenizers (Dart) need; ``text`` is the continuation
    decoded as a whole (LLaMA tokenizers). The stop token is included in neither.
    """

    text: str
    pieces: list[str] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)
    prompt_tokens: int = 0
    seconds: float = 0.0
    stopped: bool = False  # cut short (or never started) because ``should_stop`` said so: not a result


#: ``should_stop()``: True once the user asked to stop (the WebUI's Interrupt / Skip); polled between steps.
ShouldStop = Callable[[], bool]


class Generator(Protocol):
    """A loaded tag model that continues prompts."""

    name: str

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, seeds: Sequence[int], *,
        should_stop: ShouldStop | None = None,
    ) -> list[Generation]:
        """Continue each prompt (one seed each) until an end token or ``max_new_tokens``.

        ``should_stop`` is polled between decode steps (and prompts): once it is True the generation ends, and
        every continuation not finished by then comes back with ``stopped=True``.
        """
        ...

    def close(self) -> None:
        """Free the weights (RAM and VRAM)."""
        ...
