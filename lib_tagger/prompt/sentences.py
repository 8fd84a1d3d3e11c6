"""Add natural-language sentences to a prompt as plain text, without touching anything else in it.

Like :func:`~lib_tagger.prompt.insert.insert_tags`, the result is always
``prompt[:index] + text + prompt[index:]``. The sentences are written so that A1111 reads them as
plain words: ``\\ ( ) [ ] { } |`` are escaped, ``<`` ``>`` (extra networks) and runs of ``_``
(wildcards) are dropped, and the keywords ``BREAK`` / ``AND`` are written in lower case. Text that
would still not read back as plain words is not inserted.
"""

from __future__ import annotations

import re

from .grammar import parse
from .insert import InsertResult, _insertion_point
from .tags import escape_tag

POSITIONS = ("end", "new_line", "before_break")
_KEYWORD = re.compile(r"\b(BREAK|AND)\b")
_PLAIN_KINDS = frozenset({"tag", "space", "separator"})


def prompt_text(sentences: str) -> str:
    """``sentences`` as plain prompt text (see the module doc), blanks collapsed to single spaces."""
    text = " ".join(sentences.replace("<", " ").replace(">", " ").split())
    text = re.sub(r"_{2,}", "_", text)
    text = _KEYWORD.sub(lambda m: m.group(1).lower(), text)
    return escape_tag(text)


def _reads_as_words(text: str) -> bool:
    return all(token.kind in _PLAIN_KINDS for token in parse(text + ","))


def insert_sentences(prompt: str, sentences: str, position: str = "end") -> InsertResult:
    """Insert ``sentences`` into ``prompt`` at ``position``.

    ``end``: after the last tag (where new tags go), ``, `` before it; ``new_line``: at the same
    place, on a new line; ``before_break``: just before the first ``BREAK`` (``end`` when there is
    none). ``inserted`` holds the sentences as inserted (empty when nothing went in).
    """
    if not isinstance(prompt, str) or not isinstance(sentences, str):
        raise TypeError("prompt and sentences must be str")
    if position not in POSITIONS:
        raise ValueError(f"position must be one of {POSITIONS}, got {position!r}")
    body = prompt_text(sentences)
    tokens = parse(prompt)
    index, lead, trail = _insertion_point(prompt, tokens, "before_break" if position == "before_break" else "end")
    if not body or not _reads_as_words(body):
        return InsertResult(prompt, (), index, "")
    if position == "new_line":
        lead = "\n" if index else ""
    text = lead + body + trail
    return InsertResult(prompt[:index] + text + prompt[index:], (body,), index, text)
