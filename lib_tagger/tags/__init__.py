"""Danbooru tag knowledge (categories, aliases, counts) and sorting a prompt's tags into fields.

Importing this package reads no data: the tag file loads on the first :func:`get_tag_db` call.
"""

from lib_tagger.tags.db import (
    ARTIST,
    CATEGORIES,
    CHARACTER,
    COPYRIGHT,
    DATA_FILE,
    GENERAL,
    META,
    TagDataError,
    TagDB,
    TagInfo,
    get_tag_db,
    normalize_key,
)
from lib_tagger.tags.sort import (
    QUALITY_TAGS,
    RATING_WORDS,
    RATINGS,
    SPECIAL_TAGS,
    TagFields,
    is_quality_tag,
    rating_from_fields,
    sort_tags,
)

__all__ = [
    "ARTIST",
    "CATEGORIES",
    "CHARACTER",
    "COPYRIGHT",
    "DATA_FILE",
    "GENERAL",
    "META",
    "QUALITY_TAGS",
    "RATINGS",
    "RATING_WORDS",
    "SPECIAL_TAGS",
    "TagDB",
    "TagDataError",
    "TagFields",
    "TagInfo",
    "get_tag_db",
    "is_quality_tag",
    "normalize_key",
    "rating_from_fields",
    "sort_tags",
]
