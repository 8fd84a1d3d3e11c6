"""From JoyTag scores to a prompt: threshold, exclude/always-add, top-k, sort, names, escaping."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields

from ..prompt.tags import is_kaomoji

SORTS = ("confidence", "alphabetical")

#: Tags that describe where an image came from, not what it shows; ``*`` is a wildcard.
DEFAULT_EXCLUDE: tuple[str, ...] = (
    "commission", "*_commission", "paid_reward", "*_reward", "official_art", "official_wallpaper",
    "promotional_art", "novel_illustration", "concept_art", "artbook", "image_sample", "resized",
    "upscaled", "cropped", "stitched", "colorized", "third-party_edit", "photo-referenced", "nude_filter",
    "photoshop_(medium)", "painttool_sai_(medium)", "paint.net_(medium)", "gimp_(medium)",
    "clip_studio_paint_(medium)",
)

#: Categories listed first, in this order, when ``identity_first`` is on.
IDENTITY_CATEGORIES = ("character", "copyright", "artist")
_CATEGORY_CODES = {0: "general", 1: "artist", 3: "copyright", 4: "character", 5: "meta"}


class OptionsError(ValueError):
    """An option has an invalid value; the message names the field."""


@dataclass(frozen=True)
class JoyTagOptions:
    """How scores become a tag list and a prompt string."""

    threshold: float = 0.4
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    always_add: tuple[str, ...] = ()
    top_k: int = 0
    replace_underscores: bool = True
    escape_brackets: bool = True
    sort: str = "confidence"
    weighted: bool = False
    identity_first: bool = False

    def __post_init__(self) -> None:
        for name in ("exclude", "always_add"):
            value = getattr(self, name)
            object.__setattr__(self, name, tuple(split_tag_list(value) if isinstance(value, str) else value))
            if not all(isinstance(item, str) for item in getattr(self, name)):
                raise OptionsError(f"JoyTagOptions.{name}: expected tag strings, got {value!r}")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int | float) \
                or not 0.0 <= self.threshold <= 1.0:
            raise OptionsError(f"JoyTagOptions.threshold: must be a number in [0, 1], got {self.threshold!r}")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise OptionsError(f"JoyTagOptions.top_k: must be an integer >= 0, got {self.top_k!r}")
        if self.sort not in SORTS:
            raise OptionsError(f"JoyTagOptions.sort: must be one of {', '.join(SORTS)}, got {self.sort!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> JoyTagOptions:
        """Options from named values (API payloads); unknown names raise :class:`OptionsError`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise OptionsError(f"JoyTagOptions: unknown field(s) {', '.join(unknown)}")
        return cls(**data)


def split_tag_list(text: str) -> list[str]:
    """Split a user's comma- or newline-separated tag list, dropping blanks."""
    return [part.strip() for part in re.split(r"[,\n]", text) if part.strip()]


def model_form(tag: str) -> str:
    """The model's spelling of a user-typed tag: unescaped brackets, spaces as underscores, lower case."""
    tag = re.sub(r"\\([()\[\]\\])", r"\1", tag.strip())
    return re.sub(r"\s+", "_", tag).lower()


def _pattern(text: str) -> re.Pattern:
    return re.compile(".*".join(re.escape(part) for part in model_form(text).split("*")))


def display_name(tag: str, options: JoyTagOptions, escape: bool | None = None) -> str:
    """A model tag as prompt text: spaces for underscores (kaomoji kept), A1111 brackets escaped."""
    if options.replace_underscores and not is_kaomoji(tag):
        tag = tag.replace("_", " ")
    if options.escape_brackets if escape is None else escape:
        tag = re.sub(r"([\\()\[\]])", r"\\\1", tag)
    return tag


def tag_category(tag: str) -> str | None:
    """The Danbooru category of a model tag ("general", "character", ...) from the tag data, or None."""
    from lib_tagger.tags import get_tag_db

    info = get_tag_db().lookup(tag.replace("_", " "))
    if info is None:
        return None
    category = info.category
    return _CATEGORY_CODES.get(category) if isinstance(category, int) else category


def select_tags(
    scores: Mapping[str, float],
    options: JoyTagOptions,
    categories: Callable[[str], str | None] | None = None,
) -> list[tuple[str, float]]:
    """The kept ``(model tag, score)`` pairs in output order; always-add tags come first with score 1.0.

    ``categories`` maps a tag to its category for ``identity_first`` (default: :func:`tag_category`).
    """
    excluded = [_pattern(item) for item in options.exclude]
    added = _unique(model_form(tag) for tag in options.always_add)
    kept = [
        (tag, float(score)) for tag, score in scores.items()
        if (options.threshold <= 0 or score > options.threshold)
        and tag not in added and not any(pattern.fullmatch(tag) for pattern in excluded)
    ]
    kept.sort(key=lambda item: (-item[1], item[0]))
    if options.top_k:
        kept = kept[: options.top_k]
    if options.sort == "alphabetical":
        kept.sort(key=lambda item: display_name(item[0], options, escape=False))
    if options.identity_first:
        category_of = categories or tag_category
        rank = {name: index for index, name in enumerate(IDENTITY_CATEGORIES)}
        kept.sort(key=lambda item: rank.get(category_of(item[0]) or "", len(rank)))  # stable sort
    return [(tag, 1.0) for tag in added] + kept


def format_tags(selected: Sequence[tuple[str, float]], options: JoyTagOptions) -> str:
    """Join selected tags as prompt text; ``weighted`` writes ``(tag:0.87)`` for model tags."""
    added = {model_form(tag) for tag in options.always_add}
    parts = []
    for tag, score in selected:
        name = display_name(tag, options)
        parts.append(f"({name}:{score:.2f})" if options.weighted and tag not in added else name)
    return ", ".join(parts)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(item for item in items if item))
