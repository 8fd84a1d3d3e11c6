"""Danbooru tag knowledge: category, post count and aliases of 140k tags.

The data ships as ``data/danbooru_tags.tsv.gz``, built by ``dev/build_tag_data.py`` from the
MIT-licensed a1111-sd-webui-tagcomplete list (notice: ``data/LICENSE-danbooru-tags.txt``).
Lookups use normalized keys (lowercase, underscores as spaces, single spaces), so ``Long_Hair``,
``long hair`` and the alias ``longhair`` all find ``long hair``.

File layout (UTF-8 text, gzip), five sections separated by one empty line, column-wise so that
loading is a handful of bulk string operations:

1. tag names in model form, one per line, most posted first (row ``i`` is line ``i``);
2. categories, one digit per tag on a single line (0 general, 1 artist, 3 copyright,
   4 character, 5 meta);
3. post counts, one per line;
4. alias keys (normalized), one per line;
5. the row each alias points to, one per line.
"""

from __future__ import annotations

import gzip
import threading
from itertools import islice
from pathlib import Path
from typing import NamedTuple

from ..prompt.tags import is_kaomoji

DATA_FILE = Path(__file__).with_name("data") / "danbooru_tags.tsv.gz"

GENERAL = 0
ARTIST = 1
COPYRIGHT = 3
CHARACTER = 4
META = 5
CATEGORIES = (GENERAL, ARTIST, COPYRIGHT, CHARACTER, META)
_DIGITS = bytes.maketrans(b"0123456789", bytes(range(10)))


class TagDataError(ValueError):
    """The tag data file is missing or malformed; the message names the file."""


class TagInfo(NamedTuple):
    """A known tag: ``name`` in model form (spaces), Danbooru ``category``, ``post_count``."""

    name: str
    category: int
    post_count: int


def normalize_key(tag: str) -> str:
    """The lookup key of a tag: lowercase, underscores as spaces, runs of whitespace as one space."""
    return " ".join(tag.replace("_", " ").lower().split())


def model_form(danbooru_name: str) -> str:
    """A Danbooru name as the models write it: underscores become spaces.

    Emoticons (``^_^``, ``o_o``, ``<o>_<o>``) keep theirs: the underscore is part of the picture.
    """
    return danbooru_name if is_kaomoji(danbooru_name) else danbooru_name.replace("_", " ")


class TagDB:
    """Tag lookup by name or alias (see the module doc for the file it reads)."""

    def __init__(self, names: list[str], categories: bytes, counts: list[str], aliases: dict[str, int]):
        """Columns as in the data file: model-form names, category per tag, post counts, alias → row."""
        if not len(names) == len(categories) == len(counts):
            raise TagDataError(
                f"column lengths differ: {len(names)} names, {len(categories)} categories, "
                f"{len(counts)} counts"
            )
        self._names = names
        self._categories = categories
        self._counts = counts
        keys = "\n".join(names).replace("_", " ").split("\n")
        # reversed: the first (most posted) of two equal keys wins
        self._index = dict(zip(reversed(keys), range(len(keys) - 1, -1, -1)))
        self._aliases = aliases

    @classmethod
    def from_file(cls, path: str | Path = DATA_FILE) -> TagDB:
        """Load a data file (gzip-compressed when its name ends in ``.gz``)."""
        path = Path(path)
        try:
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt", encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise TagDataError(f"cannot read tag data {path}: {exc}") from exc
        sections = (text[:-1] if text.endswith("\n") else text).split("\n\n")
        if len(sections) != 5 or not sections[0]:
            raise TagDataError(f"{path}: expected 5 sections (names, categories, counts, aliases, rows)")
        names, categories, counts, alias_keys, alias_rows = sections
        try:
            cats = categories.encode("ascii").translate(_DIGITS)
            if any(c not in CATEGORIES for c in set(cats)):
                raise ValueError(f"unknown category in {sorted(set(categories))}")
            if not counts.replace("\n", "").isdigit():
                raise ValueError("a post count is not a whole number")
            name_list = names.split("\n")
            keys = alias_keys.split("\n") if alias_keys else []
            rows = [int(row) for row in alias_rows.split("\n")] if alias_rows else []
            if len(keys) != len(rows):
                raise ValueError(f"{len(keys)} aliases but {len(rows)} alias rows")
            if rows and not 0 <= min(rows) <= max(rows) < len(name_list):
                raise ValueError("an alias points outside the tag list")
            aliases = dict(zip(keys, rows))
            return cls(name_list, cats, counts.split("\n"), aliases)
        except (ValueError, UnicodeEncodeError) as exc:
            raise TagDataError(f"{path}: {exc}") from None

    def __len__(self) -> int:
        return len(self._names)

    def lookup(self, tag: str) -> TagInfo | None:
        """The tag (or the tag an alias points to), or None when unknown."""
        key = normalize_key(tag)
        row = self._index.get(key)
        if row is None:
            row = self._aliases.get(key)
            if row is None:
                return None
        return TagInfo(self._names[row], self._categories[row], int(self._counts[row]))

    def names(self) -> list[str]:
        """Every tag's model-form name, most posted first."""
        return list(self._names)

    def top(self, category: int, count: int) -> list[TagInfo]:
        """The ``count`` most posted tags of a category, most posted first."""
        rows = (row for row, cat in enumerate(self._categories) if cat == category)
        return [TagInfo(self._names[r], category, int(self._counts[r])) for r in islice(rows, count)]

    def known(self, tag: str) -> bool:
        """True for a known tag or alias."""
        key = normalize_key(tag)
        return key in self._index or key in self._aliases

    def canonical(self, tag: str) -> str:
        """The canonical model-form name of a tag or alias; an unknown tag is returned unchanged."""
        info = self.lookup(tag)
        return tag if info is None else info.name


_lock = threading.Lock()
_db: TagDB | None = None


def get_tag_db() -> TagDB:
    """The shipped tag data, loaded on first use (thread-safe) and cached."""
    global _db
    if _db is None:
        with _lock:
            if _db is None:
                _db = TagDB.from_file(DATA_FILE)
    return _db
