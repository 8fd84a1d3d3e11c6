"""Add tags to a prompt without touching anything else in it.

The result is always ``prompt[:index] + text + prompt[index:]``: one insertion, nothing else
changes. Tags are escaped for A1111, joined with ", ", and never duplicate a tag already in the
prompt (conditional ones included) or an earlier new tag. A tag that would not read back as itself
at the insertion point (``BREAK``, ``<lora:x:1>``, a tag holding a comma, a trailing ``:3`` that
A1111 would take for an AND weight, ...) is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .extract import extract_tags, tag_names
from .grammar import Token, parse
from .tags import escape_tag, tag_key

POSITIONS = ("end", "before_break")
_SOFT = ("separator", "break", "and")


@dataclass(frozen=True)
class InsertResult:
    """``prompt == original[:index] + text + original[index:]``; ``inserted`` are the model-form
    tags that went in, in order (empty when nothing was added, and then ``prompt`` is the original)."""

    prompt: str
    inserted: tuple[str, ...]
    index: int
    text: str


def insert_tags(
    prompt: str,
    new_tags: Sequence[str],
    position: str = "end",
    canonical: Callable[[str], str] | None = None,
    known: Callable[[str], bool] | None = None,
) -> InsertResult:
    """Insert the model-form ``new_tags`` into ``prompt`` at ``position``.

    ``position`` is ``"end"`` (after the last tag, before trailing whitespace and a trailing AND
    weight) or ``"before_break"`` (just before the first ``BREAK`` outside emphasis; ``"end"`` when
    there is none). ``canonical`` maps a comparison key to its canonical tag (alias resolution);
    ``known`` tells known tags, so that ``ganyu_(genshin_impact)`` counts as ``ganyu (genshin impact)``
    (see :func:`~lib_tagger.prompt.extract.tag_names`).
    """
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a str, not {type(prompt).__name__}")
    if isinstance(new_tags, str):
        raise TypeError("new_tags must be a sequence of tags, not one str")
    if position not in POSITIONS:
        raise ValueError(f"position must be one of {POSITIONS}, got {position!r}")
    for n, tag in enumerate(new_tags):
        if not isinstance(tag, str):
            raise TypeError(f"new_tags[{n}] must be a str, not {type(tag).__name__}")

    resolve = canonical or (lambda key: key)
    seen = present_keys(prompt, canonical, known)
    wanted: list[tuple[str, str]] = []  # (model form, comparison key)
    for tag in new_tags:
        clean = " ".join(tag.split())
        key = tag_key(clean)
        if not key:
            continue
        resolved = resolve(key)
        if resolved not in seen and _reads_back(clean, key):
            seen.add(resolved)
            wanted.append((clean, key))

    tokens = parse(prompt)
    index, lead, trail = _insertion_point(prompt, tokens, position)
    while wanted:
        body = ", ".join(escape_tag(clean) for clean, _ in wanted)
        result = prompt[:index] + lead + body + trail + prompt[index:]
        lo = index + len(lead)
        found = [t for t in extract_tags(result) if lo <= t.start and t.end <= lo + len(body)]
        bad = _first_mismatch([(tag_key(t.tag), t.conditional) for t in found], [k for _, k in wanted])
        if bad is None:
            return InsertResult(result, tuple(clean for clean, _ in wanted), index, lead + body + trail)
        del wanted[bad]
    return InsertResult(prompt, (), index, "")


def present_keys(prompt: str, canonical: Callable[[str], str] | None = None,
                 known: Callable[[str], bool] | None = None) -> set[str]:
    """The comparison keys (aliases resolved by ``canonical``) of every tag ``prompt`` holds."""
    resolve = canonical or (lambda key: key)
    return {resolve(tag_key(name)) for t in extract_tags(prompt) for name in tag_names(t, known)}


def _reads_back(clean: str, key: str) -> bool:
    """Whether the escaped tag, followed by a comma, reads back as exactly this one plain tag."""
    found = extract_tags(escape_tag(clean) + ",")
    return len(found) == 1 and not found[0].conditional and tag_key(found[0].tag) == key


def _first_mismatch(found: list[tuple[str, bool]], keys: list[str]) -> int | None:
    for n, key in enumerate(keys):
        if n >= len(found) or found[n] != (key, False):
            return n
    return len(keys) - 1 if len(found) > len(keys) else None


def _insertion_point(prompt: str, tokens: list[Token], position: str) -> tuple[int, str, str]:
    """(index, text before the tags, text after them) for an insertion at ``position``."""
    limit = len(tokens)
    if position == "before_break":
        limit = _first_top_level_break(tokens)
    last = _last_content(tokens, limit)
    if last < 0:
        index = 0
        lead = ""
    else:
        index = tokens[last].end
        if tokens[last].kind in _SOFT:
            if prompt[index : index + 1] == " ":
                index += 1
                lead = ""
            else:
                lead = " "
        else:
            backslashes = len(prompt[:index]) - len(prompt[:index].rstrip("\\"))
            lead = " , " if backslashes % 2 else ", "  # keep a lone `\` from escaping the comma
    nxt = prompt[index : index + 1]
    trail = " " if nxt and not nxt.isspace() and nxt not in ",:" else ""
    return index, lead, trail


def _first_top_level_break(tokens: list[Token]) -> int:
    depth = 0
    for n, t in enumerate(tokens):
        if t.kind == "open":
            depth += 1
        elif t.kind == "close":
            depth -= 1
        elif t.kind == "and":
            depth = 0
        elif t.kind == "break" and depth == 0:
            return n
    return len(tokens)


def _blank(t: Token) -> bool:
    return t.kind == "space" or (t.kind == "separator" and t.text == "\n")


def _last_content(tokens: list[Token], limit: int) -> int:
    """The last token before ``limit`` after which tags may go; -1 when there is none.

    A trailing AND weight (``... :1.2``) must stay last, so the tags go before it and before any
    extra network between it and the text."""
    j = limit - 1
    while j >= 0 and (_blank(tokens[j]) or tokens[j].kind == "network"):
        j -= 1
    if j >= 0 and tokens[j].kind == "and_weight":
        while j >= 0 and (_blank(tokens[j]) or tokens[j].kind in ("network", "and_weight")):
            j -= 1
        return j
    j = limit - 1
    while j >= 0 and _blank(tokens[j]):
        j -= 1
    return j
