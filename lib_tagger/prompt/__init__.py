"""The A1111 prompt language: lossless parsing, tag extraction, tag spelling and tag insertion.

Pure Python (regular expressions only); importing it loads no heavy library.
"""

from .extract import PromptTag, extract_tags, tag_names
from .grammar import Token, parse, render
from .insert import InsertResult, insert_tags
from .tags import escape_tag, is_clean_tag, normalize_tag, unescape_tag

__all__ = [
    "InsertResult",
    "PromptTag",
    "Token",
    "escape_tag",
    "extract_tags",
    "insert_tags",
    "is_clean_tag",
    "normalize_tag",
    "parse",
    "render",
    "tag_names",
    "unescape_tag",
]
