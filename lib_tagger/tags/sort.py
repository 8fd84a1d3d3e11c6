"""Sort a prompt's tags into the fields the tag models read (special, rating, quality, ...).

Decisions (sources: KGen ``metainfo``/``formatter``, danbooru-tags-transformer ``tags``):

- ``special``: the people-count tags 1girl…6+girls, multiple girls, 1boy…6+boys, multiple boys,
  male focus, 1other…6+others, multiple others (KGen's list; "solo" is a general tag).
- ``rating``: safe, general, sfw, sensitive, nsfw, questionable, explicit, and Danbooru search
  forms ``rating:g|s|q|e`` / ``rating:general|sensitive|questionable|explicit|safe``
  (``rating:s`` is today's Danbooru "sensitive").
- ``quality``: quality words (masterpiece, best/amazing/great/good/high/normal/low/bad/worse/worst
  quality), aesthetic words (very aesthetic, aesthetic, displeasing, very displeasing), period
  words (newest, recent, mid, early, old, ``year NNNN``) and Pony's ``score_N``/``score_N_up``/
  ``source_*``. "old" is also a rare Danbooru general tag; in prompts it is the period word.
- ``artist``/``character``/``copyright``/``meta``/``general`` from the Danbooru category;
  unknown tags are general. Aliases resolve to the canonical tag (``longhair`` → ``long hair``).

Every field keeps the user's order; a tag that appears twice (also as an alias) is kept once;
blank tags (also ``_``) are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from lib_tagger.tags.db import ARTIST, CHARACTER, COPYRIGHT, META, TagDB, get_tag_db, normalize_key

SPECIAL_TAGS: tuple[str, ...] = (
    *(f"{n}girl{'s' if n != '1' else ''}" for n in ("1", "2", "3", "4", "5", "6+")),
    "multiple girls",
    *(f"{n}boy{'s' if n != '1' else ''}" for n in ("1", "2", "3", "4", "5", "6+")),
    "multiple boys",
    "male focus",
    *(f"{n}other{'s' if n != '1' else ''}" for n in ("1", "2", "3", "4", "5", "6+")),
    "multiple others",
)

#: The canonical ratings, least to most explicit; "sfw" is "general or sensitive",
#: "nsfw" is "questionable or explicit" (Dart v2's vocabulary).
RATINGS: tuple[str, ...] = ("general", "sfw", "sensitive", "nsfw", "questionable", "explicit")

#: Rating words users write (normalized keys) → canonical rating.
RATING_WORDS: dict[str, str] = {
    "safe": "general",
    "general": "general",
    "sfw": "sfw",
    "sensitive": "sensitive",
    "nsfw": "nsfw",
    "questionable": "questionable",
    "explicit": "explicit",
    "rating:g": "general",
    "rating:general": "general",
    "rating:safe": "general",
    "rating:s": "sensitive",
    "rating:sensitive": "sensitive",
    "rating:q": "questionable",
    "rating:questionable": "questionable",
    "rating:e": "explicit",
    "rating:explicit": "explicit",
}

QUALITY_TAGS: frozenset[str] = frozenset(
    {
        "masterpiece",
        *(
            f"{grade} quality"
            for grade in ("best", "amazing", "great", "good", "high", "normal", "low", "bad", "worse")
        ),
        "worst quality",
        "very aesthetic",
        "aesthetic",
        "displeasing",
        "very displeasing",
        "newest",
        "recent",
        "mid",
        "early",
        "old",
    }
)
_QUALITY_PATTERN = re.compile(r"year \d{4}|score \d( up)?|source (anime|cartoon|furry|pony)")
_SPECIAL = frozenset(SPECIAL_TAGS)


@dataclass
class TagFields:
    """A prompt's tags by field, each list in the user's order (model form: spaces, lowercase)."""

    special: list[str] = field(default_factory=list)
    rating: list[str] = field(default_factory=list)
    quality: list[str] = field(default_factory=list)
    artist: list[str] = field(default_factory=list)
    character: list[str] = field(default_factory=list)
    copyright: list[str] = field(default_factory=list)
    meta: list[str] = field(default_factory=list)
    general: list[str] = field(default_factory=list)


def rating_key(tag: str) -> str:
    """A tag's key for the rating table: normalized, with ``rating: x`` written as ``rating:x``."""
    return normalize_key(tag).replace(": ", ":")


def is_quality_tag(tag: str) -> bool:
    """True for quality, aesthetic, period and Pony score/source words (see the module doc)."""
    return _is_quality_key(normalize_key(tag))


def _is_quality_key(key: str) -> bool:
    return key in QUALITY_TAGS or _QUALITY_PATTERN.fullmatch(key) is not None


def sort_tags(tags: Iterable[str], db: TagDB | None = None) -> TagFields:
    """Sort model-form tags into :class:`TagFields`, resolving aliases (``db``: the shipped data)."""
    db = db if db is not None else get_tag_db()
    fields = TagFields()
    by_category = {ARTIST: fields.artist, CHARACTER: fields.character, COPYRIGHT: fields.copyright,
                   META: fields.meta}
    seen: set[str] = set()
    for raw in tags:
        tag = raw.strip()
        key = normalize_key(tag)
        if not key:
            continue
        if key.replace(": ", ":") in RATING_WORDS:
            target = fields.rating
        elif _is_quality_key(key):
            target = fields.quality
        else:
            info = db.lookup(key)
            if info is not None:
                tag, key = info.name, info.name.replace("_", " ")
            if tag in _SPECIAL:
                target = fields.special
            elif info is None:
                target = fields.general
            else:
                target = by_category.get(info.category, fields.general)
        if key not in seen:
            seen.add(key)
            target.append(tag)
    return fields


def rating_from_fields(fields: TagFields) -> str | None:
    """The prompt's rating as one of :data:`RATINGS` (the most explicit one written), or None."""
    found = [RATING_WORDS[rating_key(tag)] for tag in fields.rating if rating_key(tag) in RATING_WORDS]
    return max(found, key=RATINGS.index) if found else None
