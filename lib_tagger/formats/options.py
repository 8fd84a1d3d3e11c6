"""The per-call options of a model input, validated."""

from __future__ import annotations

from dataclasses import dataclass

from lib_tagger.settings import IDENTITIES, LENGTHS, RATINGS, TASKS


class FormatError(ValueError):
    """An option or a model input is invalid; the message names the field."""


@dataclass(frozen=True)
class FormatOptions:
    """How to build a model input.

    ``rating``: "auto" (from the prompt's rating words) or one of sfw, general, sensitive, nsfw,
    questionable, explicit. ``length``: very_short, short, medium, long, very_long. ``identity``:
    none, lax, strict (Dart SFT only). ``width``/``height``: the image size in pixels.
    ``quality``: DanTagGen quality line override (None: the prompt's quality tags).
    ``task`` and ``nl_length`` (caption length): TIPO only.
    """

    rating: str = "auto"
    length: str = "long"
    identity: str = "none"
    width: int = 1024
    height: int = 1024
    quality: str | None = None
    task: str = "extend_tags"
    nl_length: str = "long"

    def __post_init__(self) -> None:
        for name, allowed in (("rating", RATINGS), ("length", LENGTHS), ("identity", IDENTITIES),
                              ("task", TASKS), ("nl_length", LENGTHS)):
            value = getattr(self, name)
            if value not in allowed:
                raise FormatError(f"{name}: {value!r} is not one of {', '.join(allowed)}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise FormatError(f"{name}: {value!r} is not a positive whole number of pixels")
        if self.quality is not None and not isinstance(self.quality, str):
            raise FormatError(f"quality: {self.quality!r} is not text")
