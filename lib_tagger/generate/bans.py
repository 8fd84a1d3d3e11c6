"""Banned-tag patterns, compiled into the token ids a sampler must never pick next.

Pattern forms (matched case-insensitively, underscores read as spaces):

- ``long hair``: that tag exactly;
- ``* hair``, ``hair *``: ``*`` matches any run of characters, the pattern must cover the whole tag
  (no other wildcard characters: ``?`` and ``[`` are literal, danbooru has tags like ``?``);
- ``/regex/``: Python regex, ``re.search`` semantics (anchor with ``^...$`` for whole tags).

Word-level vocabularies (Dart: one tag = one token) ban the matching tokens outright. Subword
vocabularies (LLaMA) ban bad-words style: the tag is tokenized as it appears after ``", "`` and its
last token is banned whenever the generated tail equals the separator plus the tag's other tokens
(or, at the very start, just the tag's other tokens). A one-token tag is thus banned at every tag
start, which also blocks longer tags that begin with that token; output parsers drop banned tags
exactly in any case. Wildcards and regexes on a subword vocabulary expand against ``candidates``
(e.g. the known danbooru tags); without candidates only literal tags are banned.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from lib_tagger.tags.db import normalize_key


class BanTokenizer(Protocol):
    """What ban compilation needs from a tokenizer (also easy to provide over llama.cpp's vocab)."""

    vocab: dict[str, int]
    word_level: bool
    special_ids: set[int]

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Token ids of ``text``."""
        ...


normalize_tag = normalize_key  # the matching form of a tag: trimmed, lower case, underscores as spaces


def compile_pattern(pattern: str):
    """A predicate over normalized tags for one pattern; ValueError names a bad pattern."""
    text = pattern.strip()
    if len(text) >= 2 and text.startswith("/") and text.endswith("/"):
        try:
            regex = re.compile(text[1:-1], re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"invalid ban pattern {pattern!r}: {exc}") from exc
        return lambda tag: regex.search(tag) is not None
    norm = normalize_tag(text)
    if "*" in norm:
        regex = re.compile(".*".join(re.escape(part) for part in norm.split("*")), re.DOTALL)
        return lambda tag: regex.fullmatch(tag) is not None
    return lambda tag: tag == norm


def is_literal(pattern: str) -> bool:
    """True for a plain tag (no ``*``, not ``/regex/``)."""
    text = pattern.strip()
    return "*" not in text and not (len(text) >= 2 and text.startswith("/") and text.endswith("/"))


def expand_patterns(patterns: Iterable[str], candidates: Iterable[str]) -> list[str]:
    """Tags to ban: each literal pattern as a normalized tag, plus every candidate a pattern matches.

    The result keeps first-seen order and holds no duplicates (compared in normalized form).
    """
    patterns = [p for p in patterns if p.strip()]
    tests = [compile_pattern(p) for p in patterns]
    out: dict[str, str] = {}
    for p in patterns:
        if is_literal(p):
            out.setdefault(normalize_tag(p), normalize_tag(p))
    if any(not is_literal(p) for p in patterns):
        for tag in candidates:
            norm = normalize_tag(tag)
            if norm not in out and any(test(norm) for test in tests):
                out[norm] = tag
    return list(out.values())


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
