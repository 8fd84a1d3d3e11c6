"""Banned-tag patterns, compiled into the token ids a sampler must never pick next.

Pattern forms (matched case-insensitively, underscores read as spaces):

- ``long hair``: that tag exactly;
- ``* hair``, ``hair *``: ``*`` matches any run of characters, the pattern must cover the whole tag
  (no other wildcard characters: ``?`` and ``[`` are literal, danbooru has tags like ``?``);
- ``/regex/``: Python regex, ``re.search`` semantics (anchor with ``^...$`` for whole tags), run by the
  ``regex`` package under a time limit: one expansion of all patterns against all candidates takes at
  most :data:`MATCH_SECONDS`, else :class:`BanPatternTimeout` names the pattern. A ``*`` wildcard is
  matched without a regex, in linear time.

Word-level vocabularies (Dart: one tag = one token) ban the matching tokens outright. Subword
vocabularies (LLaMA) ban bad-words style: the tag is tokenized as it appears after ``", "`` and its
last token is banned whenever the generated tail equals the separator plus the tag's other tokens
(or, at the very start, just the tag's other tokens). A one-token tag is thus banned at every tag
start, which also blocks longer tags that begin with that token; output parsers drop banned tags
exactly in any case. Wildcards and regexes on a subword vocabulary expand against ``candidates``
(e.g. the known danbooru tags); without candidates only literal tags are banned.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import regex

from lib_tagger.tags.db import normalize_key

#: Wall-clock bound for matching every wildcard and ``/regex/`` pattern of one ban list against the
#: candidate tags (140k danbooru tags take ~0.2 s for a simple regex, ~1.7 s for the reported `^(.+)+!$` on a
#: loaded 2-core machine, so the bound leaves room for slow CPUs). A pattern with catastrophic
#: backtracking, e.g. ``/^(.|.)+!$/``, ends there with an error instead of holding the process for minutes
#: (``regex`` also lets other threads run while it matches).
MATCH_SECONDS = 5.0

#: ``test(normalized_tag, timeout_seconds_or_None) -> bool``
TagTest = Callable[..., bool]


class BanPatternTimeout(ValueError):
    """A ban pattern did not finish matching the candidate tags in :data:`MATCH_SECONDS`."""


#: Patterns that ran out of time once, with their error: refused at once afterwards instead of costing the
#: time again on every request (bounded; the oldest is forgotten first).
_runaways: dict[str, str] = {}
_RUNAWAY_MEMORY = 256


class BanTokenizer(Protocol):
    """What ban compilation needs from a tokenizer (also easy to provide over llama.cpp's vocab)."""

    vocab: dict[str, int]
    word_level: bool
    special_ids: set[int]

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Token ids of ``text``."""
        ...


normalize_tag = normalize_key  # the matching form of a tag: trimmed, lower case, underscores as spaces


def compile_pattern(pattern: str) -> TagTest:
    """A predicate over normalized tags for one pattern, ``test(tag, timeout=None)``; ValueError names a bad
    pattern. A regex that runs past ``timeout`` seconds raises ``TimeoutError``."""
    text = pattern.strip()
    if len(text) >= 2 and text.startswith("/") and text.endswith("/"):
        try:
            compiled = regex.compile(text[1:-1], regex.IGNORECASE | regex.VERSION0)
        except (regex.error, OverflowError, RecursionError) as exc:
            raise ValueError(f"invalid ban pattern {pattern!r}: {exc}") from None
        return lambda tag, timeout=None: compiled.search(tag, timeout=timeout) is not None
    norm = normalize_tag(text)
    if "*" in norm:
        parts = norm.split("*")
        return lambda tag, timeout=None: _glob_match(parts, tag)
    return lambda tag, timeout=None: tag == norm


def _glob_match(parts: list[str], tag: str) -> bool:
    """``tag`` equals ``parts`` joined by runs of any characters (``*``): first part a prefix, last a suffix,
    the middle ones found left to right (the leftmost place is always as good as a later one)."""
    first, *middle, last = parts
    if len(tag) < len(first) + len(last) or not tag.startswith(first) or not tag.endswith(last):
        return False
    pos, end = len(first), len(tag) - len(last)
    for part in middle:
        found = tag.find(part, pos, end)
        if found < 0:
            return False
        pos = found + len(part)
    return True


def is_literal(pattern: str) -> bool:
    """True for a plain tag (no ``*``, not ``/regex/``)."""
    text = pattern.strip()
    return "*" not in text and not (len(text) >= 2 and text.startswith("/") and text.endswith("/"))


def expand_patterns(patterns: Iterable[str], candidates: Iterable[str], seconds: float = MATCH_SECONDS) -> list[str]:
    """Tags to ban: each literal pattern as a normalized tag, plus every candidate a pattern matches.

    The result keeps first-seen order and holds no duplicates (compared in normalized form). Matching all
    patterns against all candidates takes at most ``seconds``; past that :class:`BanPatternTimeout` names the
    pattern that was running.
    """
    patterns = [p for p in patterns if p.strip()]
    tests = [(p, compile_pattern(p)) for p in patterns if not is_literal(p)]
    out: dict[str, str] = {}
    for p in patterns:
        if is_literal(p):
            out.setdefault(normalize_tag(p), normalize_tag(p))
    if not tests:
        return list(out.values())
    for pattern, _ in tests:
        if pattern in _runaways:
            raise BanPatternTimeout(_runaways[pattern])
    pool = _normalized(candidates)
    deadline = time.monotonic() + seconds  # the patterns' time: normalizing the candidates is ours
    matched: set[str] = set()
    for pattern, test in tests:  # one pattern at a time, so a timeout names the right one
        for norm in pool:
            if norm in matched:
                continue
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                if test(norm, left):
                    matched.add(norm)
            except TimeoutError:
                message = (f"ban pattern {pattern!r} did not finish matching the {len(pool):,} known tags in "
                           f"{seconds:g} s; use a simpler pattern (e.g. * wildcards)")
                if len(_runaways) >= _RUNAWAY_MEMORY:
                    _runaways.pop(next(iter(_runaways)))
                _runaways[pattern] = message
                raise BanPatternTimeout(message) from None
    for norm, tag in pool.items():
        if norm in matched and norm not in out:
            out[norm] = tag
    return list(out.values())


_pool_cache: list = []  # [(candidates tuple, its normalized pool)]: the known-tag tuple is reused


def _normalized(candidates: Iterable[str]) -> dict[str, str]:
    """Normalized form → first candidate with it (a tuple's pool is kept for the next call)."""
    if _pool_cache and _pool_cache[0][0] is candidates:
        return _pool_cache[0][1]
    pool: dict[str, str] = {}
    for tag in candidates:
        pool.setdefault(normalize_tag(tag), tag)
    if isinstance(candidates, tuple):
        _pool_cache[:] = [(candidates, pool)]
    return pool


@dataclass
class Bans:
    """Compiled bans: ``always`` ids plus (required tail -> banned id) rules for subword tags."""

    always: frozenset[int] = frozenset()
    rules: dict[int, list[tuple[tuple[int, ...], int]]] = field(default_factory=dict)
    start_rules: list[tuple[tuple[int, ...], int]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.always or self.rules or self.start_rules)

    @property
    def is_static(self) -> bool:
        """True when the banned set never depends on what was generated."""
        return not (self.rules or self.start_rules)

    def banned_next(self, generated_ids: Sequence[int]) -> set[int]:
        """Token ids that must not come after ``generated_ids`` (the tokens generated so far)."""
        banned = set(self.always)
        n = len(generated_ids)
        for prefix, token in self.start_rules:
            if n == len(prefix) and tuple(generated_ids) == prefix:
                banned.add(token)
        if n:
            for tail, token in self.rules.get(generated_ids[-1], ()):
                if n >= len(tail) and tuple(generated_ids[n - len(tail) :]) == tail:
                    banned.add(token)
        return banned


def _subword_rules(tags: Sequence[str], tokenizer: BanTokenizer) -> Bans:
    anchor = tokenizer.encode("x,")
    rules: dict[int, list[tuple[tuple[int, ...], int]]] = {}
    start: list[tuple[tuple[int, ...], int]] = []
    for tag in tags:
        full = tokenizer.encode(f"x, {tag}")
        common = 0
        while common < min(len(anchor), len(full)) and anchor[common] == full[common]:
            common += 1
        tokens = full[common:]
        if not tokens or any(t in tokenizer.special_ids for t in tokens):
            continue
        separator = tuple(anchor[-1:]) if common == len(anchor) else ()
        body, last = tuple(tokens[:-1]), tokens[-1]
        tail = separator + body
        if tail:
            rules.setdefault(tail[-1], []).append((tail, last))
        start.append((body, last))
    return Bans(rules=rules, start_rules=start)


def compile_bans(patterns: Iterable[str], tokenizer: BanTokenizer, candidates: Iterable[str] = ()) -> Bans:
    """Compile ``patterns`` for ``tokenizer``; special tokens (bos/eos/...) are never banned."""
    patterns = [p for p in patterns if p.strip()]
    if not patterns:
        return Bans()
    if tokenizer.word_level:
        vocab = [t for t, i in tokenizer.vocab.items() if i not in tokenizer.special_ids]
        tags = expand_patterns(patterns, vocab)
        lookup = {normalize_tag(t): tokenizer.vocab[t] for t in vocab}
        return Bans(always=frozenset(lookup[normalize_tag(t)] for t in tags if normalize_tag(t) in lookup))
    return _subword_rules(expand_patterns(patterns, candidates), tokenizer)
