"""From scores to a prompt, the same for every interrogator: thresholds per category or MCut,
exclude/always-add, rating tag, top-k, sort, names, escaping.

:class:`TagOptions` is the one list of options: the WebUI settings, the API, and the command line
are built from its fields and their ``metadata`` (label and help).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from lib_tagger.interrogate.base import CATEGORIES, Prediction
from lib_tagger.prompt.tags import is_kaomoji

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
#: The lowest MCut threshold per category (SmilingWolf's tagger app keeps character MCut at >= 0.15,
#: so an image without a character does not keep the best of thousands of near-zero scores).
MCUT_FLOOR = {"character": 0.15}


class OptionsError(ValueError):
    """An option has an invalid value; the message names the field."""


def _meta(label: str, text: str, **extra: Any) -> dict[str, Any]:
    """A field's metadata: its label (Settings), help (Settings, API, command line) and widget hints."""
    return {"label": label, "help": text, **extra}


@dataclass(frozen=True)
class TagOptions:
    """How an interrogator's scores become a tag list and a prompt string."""

    threshold: float = field(default=0.4, metadata=_meta(
        "Threshold", "keep tags scoring above this (0 keeps every tag); JoyTag's author uses 0.4, WD v3 "
        "users 0.35", minimum=0.0, maximum=1.0))
    category_thresholds: tuple[tuple[str, float], ...] = field(default=(), metadata=_meta(
        "Thresholds per category", "own thresholds for some categories, e.g. character=0.85 "
        f"(categories: {', '.join(CATEGORIES)})"))
    mcut: tuple[str, ...] = field(default=(), metadata=_meta(
        "MCut for categories", "categories whose threshold MCut picks per image (the middle of the largest "
        "gap between sorted scores), e.g. general, character", choices=CATEGORIES))
    exclude: tuple[str, ...] = field(default=DEFAULT_EXCLUDE, metadata=_meta(
        "Tags never written", "comma separated, * wildcards"))
    always_add: tuple[str, ...] = field(default=(), metadata=_meta("Tags always written first", "comma separated"))
    top_k: int = field(default=0, metadata=_meta("At most this many tags", "0: no limit", minimum=0, maximum=200))
    rating_tag: bool = field(default=False, metadata=_meta(
        "Write the rating as a tag", "the most likely rating (general, sensitive, questionable, explicit) "
        "first; models with a rating head (WD v3)"))
    replace_underscores: bool = field(default=True, metadata=_meta(
        "Spaces instead of underscores (emoticons kept)", ""))
    escape_brackets: bool = field(default=True, metadata=_meta(
        "Escape brackets for the prompt, e.g. kamina \\(ttgl\\)", ""))
    sort: str = field(default="confidence", metadata=_meta("Tag order", "confidence or alphabetical",
                                                          choices=SORTS))
    weighted: bool = field(default=False, metadata=_meta("Write weights, e.g. (smile:0.87)", ""))
    identity_first: bool = field(default=False, metadata=_meta("Character, copyright and artist tags first", ""))

    def __post_init__(self) -> None:
        for name in ("exclude", "always_add"):
            value = getattr(self, name)
            object.__setattr__(self, name, tuple(split_tag_list(value) if isinstance(value, str) else value))
            if not all(isinstance(item, str) for item in getattr(self, name)):
                raise OptionsError(f"TagOptions.{name}: expected tag strings, got {value!r}")
        _check_fraction("threshold", self.threshold)
        object.__setattr__(self, "category_thresholds", parse_category_thresholds(self.category_thresholds))
        object.__setattr__(self, "mcut", parse_categories(self.mcut))
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise OptionsError(f"TagOptions.top_k: must be an integer >= 0, got {self.top_k!r}")
        if self.sort not in SORTS:
            raise OptionsError(f"TagOptions.sort: must be one of {', '.join(SORTS)}, got {self.sort!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> TagOptions:
        """Options from named values (API payloads); unknown names raise :class:`OptionsError`."""
        unknown = sorted(set(data) - set(option_names()))
        if unknown:
            raise OptionsError(f"TagOptions: unknown field(s) {', '.join(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """Named values that :meth:`from_dict` reads back (JSON-friendly)."""
        values = {item.name: getattr(self, item.name) for item in fields(self)}
        values["category_thresholds"] = dict(self.category_thresholds)
        return {key: list(value) if isinstance(value, tuple) else value for key, value in values.items()}

    def threshold_for(self, category: str | None) -> float:
        """The fixed threshold of ``category`` (its own, else :attr:`threshold`)."""
        return dict(self.category_thresholds).get(category or "general", self.threshold)


def option_names() -> list[str]:
    """The option field names, in declaration order."""
    return [item.name for item in fields(TagOptions)]


def _check_fraction(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise OptionsError(f"TagOptions.{name}: must be a number in [0, 1], got {value!r}")


def parse_categories(value: object) -> tuple[str, ...]:
    """Category names from ``"general, character"``, a list, or ``"all"``; unknown names raise."""
    try:
        items = split_tag_list(value) if isinstance(value, str) else list(value or ())  # type: ignore[call-overload]
    except TypeError:
        items = [value]
    if not all(isinstance(item, str) for item in items):
        raise OptionsError(f"TagOptions.mcut: expected category names, got {value!r}")
    if [item.strip().lower() for item in items] == ["all"]:
        return CATEGORIES
    names = tuple(dict.fromkeys(str(item).strip().lower() for item in items))
    unknown = [name for name in names if name not in CATEGORIES]
    if unknown:
        raise OptionsError(f"TagOptions.mcut: unknown categor{'ies' if len(unknown) > 1 else 'y'} "
                           f"{', '.join(unknown)}; known: {', '.join(CATEGORIES)}")
    return names


def parse_category_thresholds(value: object) -> tuple[tuple[str, float], ...]:
    """``{"character": 0.85}``, ``"character=0.85, artist=0.6"`` or pairs → sorted ``(category, value)`` pairs."""
    if isinstance(value, str):
        pairs = []
        for item in split_tag_list(value):
            name, sep, number = item.partition("=")
            try:
                pairs.append((name, float(number)) if sep else (name, None))
            except ValueError:
                raise OptionsError(f"TagOptions.category_thresholds: {item!r} is not category=number") from None
    elif isinstance(value, Mapping):
        pairs = list(value.items())
    else:
        pairs = [tuple(pair) for pair in (value or ())]  # type: ignore[union-attr]
    result = {}
    for pair in pairs:
        if len(pair) != 2 or pair[1] is None:
            raise OptionsError(f"TagOptions.category_thresholds: {pair!r} is not category=number")
        name, number = str(pair[0]).strip().lower(), pair[1]
        if name not in CATEGORIES:
            raise OptionsError(f"TagOptions.category_thresholds: unknown category {name!r}; known: "
                               f"{', '.join(CATEGORIES)}")
        _check_fraction(f"category_thresholds[{name}]", number)
        result[name] = float(number)
    return tuple(sorted(result.items()))


def split_tag_list(text: str) -> list[str]:
    """Split a user's comma- or newline-separated tag list, dropping blanks."""
    return [part.strip() for part in re.split(r"[,\n]", text) if part.strip()]


def model_form(tag: str) -> str:
    """The model's spelling of a user-typed tag: unescaped brackets, spaces as underscores, lower case."""
    tag = re.sub(r"\\([()\[\]\\])", r"\1", tag.strip())
    return re.sub(r"\s+", "_", tag).lower()


@functools.lru_cache(maxsize=64)
def exclude_pattern(exclude: tuple[str, ...]) -> re.Pattern | None:
    """One regex for a whole exclude list (``*`` wildcards), compiled once per list; None for an empty one."""
    parts = [".*".join(re.escape(piece) for piece in model_form(item).split("*")) for item in exclude]
    return re.compile("|".join(f"(?:{part})" for part in parts)) if parts else None


_BRACKETS = re.compile(r"([\\()\[\]])")


@functools.lru_cache(maxsize=1 << 16)
def _display(tag: str, replace_underscores: bool, escape: bool) -> str:
    if replace_underscores and not is_kaomoji(tag):
        tag = tag.replace("_", " ")
    return _BRACKETS.sub(r"\\\1", tag) if escape else tag


def display_name(tag: str, options: TagOptions, escape: bool | None = None) -> str:
    """A model tag as prompt text: spaces for underscores (kaomoji kept), A1111 brackets escaped."""
    return _display(tag, options.replace_underscores, options.escape_brackets if escape is None else escape)


def mcut_threshold(scores: Iterable[float]) -> float | None:
    """MCut (Largeron et al., 2012): the middle of the largest gap between sorted scores; None for < 2."""
    ordered = sorted(scores, reverse=True)
    if len(ordered) < 2:
        return None
    gaps = [ordered[i] - ordered[i + 1] for i in range(len(ordered) - 1)]
    at = gaps.index(max(gaps))  # the first of equal gaps: the higher threshold
    return (ordered[at] + ordered[at + 1]) / 2


def category_thresholds(scores: Mapping[str, float], options: TagOptions,
                        category_of: Callable[[str], str | None]) -> dict[str, float]:
    """The threshold each category gets for this image: fixed, or MCut over the category's scores."""
    by_category: dict[str, list[float]] = {}
    for tag, score in scores.items():
        by_category.setdefault(category_of(tag) or "general", []).append(score)
    result = {}
    for category, values in by_category.items():
        threshold = options.threshold_for(category)
        if category in options.mcut:
            cut = mcut_threshold(values)
            if cut is not None:
                threshold = max(cut, MCUT_FLOOR.get(category, 0.0))
        result[category] = threshold
    return result


def _categories(scores: Any, categories: Callable | Mapping | None) -> Callable[[str], str | None]:
    if callable(categories):
        return categories
    if isinstance(categories, Mapping):
        return categories.get
    if isinstance(scores, Prediction) and scores.categories:
        return scores.categories.get
    from lib_tagger.interrogate.joytag.loader import tag_category

    return tag_category


def select_tags(
    scores: Prediction | Mapping[str, float],
    options: TagOptions,
    categories: Callable[[str], str | None] | Mapping[str, str | None] | None = None,
) -> list[tuple[str, float]]:
    """The kept ``(model tag, score)`` pairs in output order.

    Always-add tags come first (score 1.0), then the rating when ``rating_tag`` is on, then the model's
    tags. ``categories`` maps a tag to its category (default: the prediction's, else our tag data).
    """
    prediction = scores if isinstance(scores, Prediction) else None
    values = prediction.scores if prediction is not None else scores
    needs_categories = options.category_thresholds or options.mcut or options.identity_first
    category_of = _categories(scores, categories) if needs_categories else (lambda _tag: None)
    thresholds = category_thresholds(values, options, category_of)
    excluded = exclude_pattern(options.exclude)
    added = _unique(model_form(tag) for tag in options.always_add)
    skip = set(added)
    kept = []
    for tag, score in values.items():
        threshold = thresholds[category_of(tag) or "general"]
        if (threshold <= 0 or score > threshold) and tag not in skip \
                and (excluded is None or not excluded.fullmatch(tag)):
            kept.append((tag, float(score)))
    kept.sort(key=lambda item: (-item[1], item[0]))
    if options.top_k:
        kept = kept[: options.top_k]
    if options.sort == "alphabetical":
        kept.sort(key=lambda item: display_name(item[0], options, escape=False))
    if options.identity_first:
        rank = {name: index for index, name in enumerate(IDENTITY_CATEGORIES)}
        kept.sort(key=lambda item: rank.get(category_of(item[0]) or "", len(rank)))  # stable sort
    rating = []
    if options.rating_tag and prediction is not None and prediction.rating is not None \
            and prediction.rating not in added:
        rating = [(prediction.rating, float(prediction.ratings[prediction.rating]))]
    return [(tag, 1.0) for tag in added] + rating + kept


def format_tags(selected: Sequence[tuple[str, float]], options: TagOptions) -> str:
    """Join selected tags as prompt text; ``weighted`` writes ``(tag:0.87)`` for model tags."""
    added = {model_form(tag) for tag in options.always_add}
    parts = []
    for tag, score in selected:
        name = display_name(tag, options)
        parts.append(f"({name}:{score:.2f})" if options.weighted and tag not in added else name)
    return ", ".join(parts)


@dataclass(frozen=True)
class TagResult:
    """One image's result: kept tags in order, the prompt text, and the ratings (empty without a head)."""

    tags: list[tuple[str, float]]
    caption: str
    rating: str | None
    ratings: dict[str, float]


def describe(prediction: Prediction, options: TagOptions) -> TagResult:
    """Select and format ``prediction``'s tags under ``options``."""
    selected = select_tags(prediction, options)
    return TagResult(selected, format_tags(selected, options), prediction.rating, dict(prediction.ratings))


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(item for item in items if item))
