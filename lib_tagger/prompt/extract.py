"""The tags of a prompt, in prompt order, with their emphasis, chunk and certainty.

Tags are the pieces between commas, newlines, ``BREAK`` and ``AND``; extra networks, wildcards,
``BREAK`` / ``AND`` and their weights are never tags, and emphasis syntax is stripped from them.

A tag written with an unescaped Danbooru qualifier, ``ganyu_(genshin_impact)``, is emphasis to
A1111 (``ganyu`` and an emphasised ``genshin impact``); the tag keeps its two parts in ``qualifier``
so that :func:`tag_names` can tell, with the tag data, which tags it stands for.

A piece that holds prompt editing, alternation or a ``{}`` choice is expanded into its variants
(``[red:blue:0.5] eyes`` gives ``red eyes`` and ``blue eyes``, at most 64 variants per piece);
those tags are ``conditional``: they count as present when de-duplicating, but they are not sure
enough to be sent to a model. A piece that holds an unexpanded wildcard yields no tag.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice, product

from .grammar import LITERAL, Analysis
from .tags import model_form

MAX_VARIANTS = 64
_BOUNDARIES = ("separator", "break", "and")


@dataclass(frozen=True)
class PromptTag:
    """One tag of a prompt.

    ``raw`` is ``prompt[start:end]`` as written (escapes kept; for a plain tag the span runs from
    its first to its last character, without enclosing emphasis; for a conditional tag it is the
    whole piece with its editing / choice syntax). ``tag`` is the model form. ``weight`` is the
    product of the enclosing emphasis at the tag's first character. ``segment`` counts the
    ``BREAK`` / ``AND`` separators before the tag. ``qualifier`` is (words before, words inside) for a
    plain tag that ends in a bracketed qualifier A1111 reads as emphasis: ``ganyu_(genshin_impact)``.
    """

    raw: str
    tag: str
    weight: float
    start: int
    end: int
    segment: int
    conditional: bool
    qualifier: tuple[str, str] | None = None


def tag_names(tag: PromptTag, known: Callable[[str], bool] | None = None) -> tuple[str, ...]:
    """The model-form tags ``tag`` stands for, given ``known`` (is this a known tag or alias?).

    A qualified tag is the whole Danbooru tag when that is known (``ganyu (genshin impact)``), else its
    two parts when either is known (``hatsune miku (vocaloid)``: ``hatsune miku`` and ``vocaloid``);
    otherwise, and for every other tag, it is ``tag.tag``.
    """
    if tag.qualifier is None or known is None:
        return (tag.tag,)
    prefix, qualifier = tag.qualifier
    whole = f"{prefix} ({qualifier})"
    if known(whole):
        return (whole,)
    if known(prefix) or known(qualifier):
        return (prefix, qualifier)
    return (tag.tag,)


def extract_tags(prompt: str) -> list[PromptTag]:
    """The tags of ``prompt`` in prompt order (see the module docstring for the rules)."""
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a str, not {type(prompt).__name__}")
    a = Analysis(prompt)
    roles, groups = a.roles, a.groups
    tags: list[PromptTag] = []
    segment = 0
    piece: list = []
    choices = False
    i, n = 0, len(roles)
    while i < n:
        group = groups.get(i) if groups else None
        if group is not None:
            piece.append((i, [_items(a, lo, hi) for lo, hi in group[1]]))
            choices = True
            i = group[0] + 1
            continue
        role = roles[i]
        if role in _BOUNDARIES:
            if piece:
                (_emit_choices if choices else _emit_plain)(a, piece, segment, tags)
                piece, choices = [], False
            if role != "separator":
                segment += 1
        else:
            piece.append(i)
        i += 1
    if piece:
        (_emit_choices if choices else _emit_plain)(a, piece, segment, tags)
    return tags


def _items(a: Analysis, lo: int, hi: int) -> list:
    """Atoms ``lo..hi`` as items: an atom index, or a choice ``(opening atom, [items per option])``."""
    items: list = []
    i = lo
    while i < hi:
        group = a.groups.get(i)
        if group is None:
            items.append(i)
            i += 1
        else:
            close, options = group
            items.append((i, [_items(a, o_lo, o_hi) for o_lo, o_hi in options]))
            i = close + 1
    return items


def _emit_plain(a: Analysis, piece: list[int], segment: int, out: list[PromptTag]) -> None:
    made = _make(a, piece)
    if made is not None:
        tag, weight, first, last = made
        start, end = a.starts[first], a.ends[last]
        out.append(PromptTag(a.text[start:end], tag, weight, start, end, segment, False, _qualifier(a, piece)))


def _qualifier(a: Analysis, piece: list[int]) -> tuple[str, str] | None:
    """(words before, words inside) when ``piece`` is text followed by one plain ``(...)`` of text that
    ends it, as in ``ganyu_(genshin_impact)`` or ``hatsune miku (vocaloid)``; else None."""
    roles = a.roles

    def is_text(j: int) -> bool:
        return roles[j] == LITERAL and bool(a.atom(j).strip())

    first = next((k for k, j in enumerate(piece) if is_text(j)), None)
    if first is None:
        return None
    opens = [k for k in range(first, len(piece)) if roles[piece[k]] == "open"]
    if len(opens) != 1 or a.atom(piece[opens[0]]) != "(":
        return None
    k = opens[0]
    close = next((m for m in range(k + 1, len(piece)) if roles[piece[m]] == "close"), None)
    if close is None or any(is_text(j) for j in piece[close + 1:]):
        return None
    before, inside = piece[first:k], piece[k + 1:close]
    if any(roles[j] not in (LITERAL, "space") for j in before + inside):
        return None  # a weight, network or wildcard: not a qualifier
    weight = a.weights[piece[first]]
    inside_text = [j for j in inside if is_text(j)]
    if not inside_text or any(a.weights[j] != weight for j in before if is_text(j)) or any(
            not math.isclose(a.weights[j], weight * 1.1) for j in inside_text):
        return None
    prefix, qualifier = _make(a, before), _make(a, inside)
    return (prefix[0], qualifier[0]) if prefix is not None and qualifier is not None else None


def _emit_choices(a: Analysis, piece: list, segment: int, out: list[PromptTag]) -> None:
    """The tags of every variant of a piece holding choices, all spanning the whole piece."""
    content = [it for it in piece if not isinstance(it, int) or a.roles[it] == LITERAL]
    start = a.starts[content[0] if isinstance(content[0], int) else content[0][0]]
    last = content[-1]
    end = a.ends[last if isinstance(last, int) else a.groups[last[0]][0]]
    raw = a.text[start:end]
    seen: set[tuple[str, float]] = set()
    for variant in islice(_expand(piece), MAX_VARIANTS):
        sub: list[int] = []
        for atom in [*variant, -1]:
            if atom >= 0 and a.roles[atom] != "separator":
                sub.append(atom)
                continue
            made = _make(a, sub)
            sub = []
            if made is not None and made[:2] not in seen:
                seen.add(made[:2])
                out.append(PromptTag(raw, made[0], made[1], start, end, segment, True))


def _expand(items: list) -> Iterator[list[int]]:
    parts: list[list[list[int]]] = []
    for it in items:
        if isinstance(it, int):
            parts.append([[it]])
        else:
            choices: list[list[int]] = []
            for option in it[1]:
                choices.extend(islice(_expand(option), MAX_VARIANTS))
            parts.append(choices)
    for combo in product(*parts):
        yield [atom for part in combo for atom in part]


def _make(a: Analysis, atoms: list[int]) -> tuple[str, float, int, int] | None:
    """(model form, weight, first atom, last atom) of the text in ``atoms``, or None."""
    roles, kinds, starts, ends, prompt = a.roles, a.kinds, a.starts, a.ends, a.text
    buf: list[str] = []
    first = last = -1
    for j in atoms:
        role = roles[j]
        if role == LITERAL:
            text = prompt[starts[j] : ends[j]]
            if kinds[j] == "escape":
                text = text[1:]
            elif text == "\\":  # a lone backslash: A1111 drops it
                text = ""
            if text.strip():
                if first < 0:
                    first = j
                last = j
            buf.append(text)
        elif role == "space":
            buf.append(" ")
        elif role == "wildcard":
            return None
    if first < 0:
        return None
    tag = model_form("".join(buf))
    return (tag, a.weights[first], first, last) if tag else None
