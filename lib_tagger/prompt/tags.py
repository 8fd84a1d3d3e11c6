"""One tag's spellings: the prompt form (escaped for A1111), the model form and the comparison key.

- Prompt form: what a user types, e.g. ``star \\(symbol\\)`` or ``long_hair``.
- Model form: what the tag models read and write: escapes removed, underscores turned into
  spaces (except in kaomoji such as ``^_^`` or ``0_0``), whitespace collapsed, lowercased.
- Key: the model form, case-folded; two tags are the same tag when their keys are equal.

``escape_tag`` backslash-escapes ``\\ ( ) [ ] { } |``: the characters that A1111's emphasis and
prompt-editing grammar or the dynamic-prompts extension would otherwise read as syntax. A1111 drops
the backslash of every escape when it builds the conditioning, so an escaped tag reaches the text
encoder exactly as the model wrote it. ``unescape_tag(escape_tag(t)) == t`` for every string.
"""

from __future__ import annotations

import re

_SPECIAL = re.compile(r"([\\()\[\]{}|])")
_ESCAPE = re.compile(r"\\(.?)", re.S)


def escape_tag(tag: str) -> str:
    """Backslash-escape ``\\ ( ) [ ] { } |`` so that A1111 reads ``tag`` literally."""
    return _SPECIAL.sub(r"\\\1", tag)


def unescape_tag(tag: str) -> str:
    """Remove prompt escapes: ``\\X`` becomes ``X``; a lone trailing backslash is dropped (as A1111 does)."""
    return _ESCAPE.sub(r"\1", tag) if "\\" in tag else tag


def is_kaomoji(tag: str) -> bool:
    """True for emoticon tags whose underscores are part of the picture (``^_^``, ``>_<``, ``0_0``).

    Rule: every underscore-separated part holds at most one letter or digit, and the whole tag at
    most two, so ``o_o`` and ``(o)_(o)`` qualify while ``long_hair`` or ``t_k_g`` do not.
    """
    if "_" not in tag or not tag.strip("_ "):
        return False
    total = 0
    for part in tag.split("_"):
        count = sum(ch.isalnum() for ch in part)
        if count > 1:
            return False
        total += count
    return total <= 2


def is_clean_tag(text: str) -> bool:
    """False for model output that cannot be a tag: control or format characters, or U+FFFD
    (the replacement a byte-level tokenizer decodes a broken UTF-8 sequence to)."""
    return bool(text.strip()) and text.isprintable() and "\ufffd" not in text


def model_form(text: str) -> str:
    """The model form of already-unescaped tag text (underscores, whitespace and case normalised)."""
    text = " ".join(text.split())
    if "_" in text and not is_kaomoji(text):
        text = " ".join(text.replace("_", " ").split())
    return text.lower()


def tag_key(text: str) -> str:
    """The comparison key of already-unescaped (model form) tag text."""
    return model_form(text.casefold())


def normalize_tag(tag: str) -> str:
    """The comparison key of a tag as written in a prompt: escapes removed, case-folded,
    underscores (outside kaomoji) and whitespace runs turned into one space, stripped."""
    return tag_key(unescape_tag(tag))
