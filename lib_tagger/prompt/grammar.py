"""A lossless lexer and parser for the A1111 prompt language, plus dynamic-prompts syntax.

Every input string parses, and ``render(parse(text)) == text``. The reading follows what A1111
1.10 does with a positive prompt, in its order: extra networks ``<name:args>`` are removed first,
the prompt is split at ``AND`` (a trailing ``:number`` of each part is its composable-diffusion
weight), ``[a:b:n]`` / ``[a:n]`` / ``[a|b]`` are prompt editing and alternation, and what is left
is emphasis: ``(a)`` x1.1, ``[a]`` /1.1, ``(a:w)`` xw, with A1111's stack rules (an unclosed
opener still weights everything after it, an unmatched closer is literal text). ``BREAK`` splits
the prompt into chunks. Dynamic-prompts ``{a|b}``, ``{2$$a|b|c}`` and wildcards ``__name__`` are
recognised too, since a prompt may still hold them.

Deliberate simplifications (they only touch prompts that A1111 itself reads oddly):
``\\X`` is a literal ``X`` for every character X (A1111's emphasis pass honours only
``\\( \\) \\[ \\] \\\\``); editing, alternation and ``{}`` groups must be properly nested and
cannot span ``BREAK`` or ``AND``; a ``[...]`` group whose inside does not fit editing or
alternation is emphasis (A1111 would then give up prompt editing for the whole prompt).

Token kinds: ``tag`` (literal text, escapes kept, inner spaces included), ``space``,
``separator`` (``,`` or a newline), ``open`` / ``close`` / ``weight`` (emphasis), ``network``,
``break``, ``and``, ``and_weight``, ``wildcard``, ``dynamic``, ``editing``, ``alternation``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise

_NET = r"<\w+:[^>]+>"
_PLAIN = r"[^\\()\[\]{}|:,<_\sAB]"
# one run of ordinary text: `A` / `B` / `_` only where they cannot start AND, BREAK or a wildcard,
# inner blanks only where ordinary text follows
_WORD_CHARS = rf"(?:{_PLAIN}|A(?!ND\b)|B(?!REAK\b)|_(?!_))+"
_WORD = rf"{_WORD_CHARS}(?:[^\S\n]+(?={_PLAIN}){_WORD_CHARS})*"
_LEX = re.compile(
    "|".join(
        (
            r"(?P<dynprefix>(?<=\{)[~@]?(?:\d+(?:-\d*)?|-\d+)?\$\$(?:[^$|{}]*\$\$)?)",
            r"(?P<dynweight>(?<=[{|])\d*\.?\d+::)",
            rf"(?P<word>{_WORD})",
            r"(?P<space>[^\S\n]+)",
            r"(?P<sep>[,\n])",
            rf"(?P<network>{_NET})",
            rf"(?P<escape>\\(?!{_NET}|BREAK\b|AND\b)[^\n])",
            r"(?P<wildcard>__[^\s,()\[\]{}<>|:\\_][^\s,()\[\]{}<>|:\\]*?__)",
            r"(?P<brk>\bBREAK\b)",
            r"(?P<and>\bAND\b)",
            r"(?P<weight>:[+-]?[.\d]+(?=\)))",
            r"(?P<open>[(\[{])",
            r"(?P<close>[)\]}])",
            r"(?P<colon>:)",
            r"(?P<pipe>\|)",
            r"(?P<char>[\s\S])",
        )
    )
)
# lark's SIGNED_NUMBER, the step of a prompt-editing group
_EDIT_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# the number of A1111's composable-diffusion weight (`re_weight` in modules/prompt_parser.py)
_AND_NUMBER = re.compile(r"[-+]?(?:\d+\.?|\d*\.\d+)")
_OPENER = {")": "(", "]": "[", "}": "{"}
_ROUND, _SQUARE = 1.1, 1 / 1.1
LITERAL = "literal"


@dataclass(frozen=True)
class Token:
    """One slice of a prompt: ``text == prompt[start:end]``."""

    kind: str
    text: str
    start: int
    end: int


class Analysis:
    """The atoms of one prompt with their roles; shared by :func:`parse` and tag extraction.

    ``kinds[i]`` is the lexer class of atom i, ``roles[i]`` its meaning (a token kind, or
    ``"literal"`` for text), ``weights[i]`` the emphasis of a literal atom, and ``groups`` maps
    the opening atom of each editing / alternation / ``{}`` group to ``(closing atom, options)``,
    an option being a half-open atom range.
    """

    __slots__ = ("ends", "groups", "kinds", "roles", "starts", "text", "weights")

    def __init__(self, text: str) -> None:
        self.text = text
        matches = list(_LEX.finditer(text))
        self.kinds: list[str] = [m.lastgroup or "char" for m in matches]
        self.starts: list[int] = [m.start() for m in matches]
        self.ends: list[int] = [m.end() for m in matches]
        n = len(self.kinds)
        self.roles: list[str | None] = [None] * n
        self.weights: list[float] = [1.0] * n
        self.groups: dict[int, tuple[int, list[tuple[int, int]]]] = {}
        self._match_groups()
        self._emphasis()
        self._and_weights()

    def atom(self, i: int) -> str:
        return self.text[self.starts[i] : self.ends[i]]

    # -- pass 1: editing, alternation and dynamic groups ------------------------------------------
    def _match_groups(self) -> None:
        stack: list[tuple[int, str, list[int]]] = []
        for i, kind in enumerate(self.kinds):
            if kind == "open":
                stack.append((i, self.text[self.starts[i]], []))
            elif kind == "close":
                if stack and stack[-1][1] == _OPENER[self.text[self.starts[i]]]:
                    opener, char, direct = stack.pop()
                    if char == "{":
                        self._dynamic(opener, i, direct)
                    elif char == "[":
                        self._square(opener, i, direct)
            elif kind in ("colon", "pipe"):
                if stack:
                    stack[-1][2].append(i)
            elif kind in ("brk", "and"):
                stack.clear()

    def _split(self, opener: int, close: int, seps: list[int], role: str) -> list[tuple[int, int]]:
        self.roles[opener] = self.roles[close] = role
        for s in seps:
            self.roles[s] = role
        bounds = [opener, *seps, close]
        return [(a + 1, b) for a, b in pairwise(bounds)]

    def _dynamic(self, opener: int, close: int, direct: list[int]) -> None:
        pipes = [d for d in direct if self.kinds[d] == "pipe"]
        options = []
        for lo, hi in self._split(opener, close, pipes, "dynamic"):
            first = self.kinds[lo] if lo < hi else ""
            if first == "dynweight" or (first == "dynprefix" and lo == opener + 1):
                self.roles[lo] = "dynamic"
                lo += 1
            options.append((lo, hi))
        self.groups[opener] = (close, options)

    def _square(self, opener: int, close: int, direct: list[int]) -> None:
        pipes = [d for d in direct if self.kinds[d] == "pipe"]
        if pipes:
            self.groups[opener] = (close, self._split(opener, close, pipes, "alternation"))
            return
        if not 1 <= len(direct) <= 2:
            return
        step = self.text[self.ends[direct[-1]] : self.starts[close]].strip()
        if not _EDIT_NUMBER.fullmatch(step):
            return
        options = self._split(opener, close, direct, "editing")
        for j in range(direct[-1] + 1, close):
            if self.kinds[j] != "space":
                self.roles[j] = "editing"
        if len(direct) == 1:  # [a:n] adds `a` at step n: before it, nothing
            options = [(opener + 1, opener + 1), options[0]]
        else:
            options = options[:2]
        self.groups[opener] = (close, options)

    # -- pass 2: emphasis, with A1111's two bracket stacks -----------------------------------------
    def _emphasis(self) -> None:
        roles, kinds, text, starts = self.roles, self.kinds, self.text, self.starts
        literals: list[int] = []
        round_stack: list[int] = []
        square_stack: list[int] = []

        def scale(position: int, factor: float) -> None:
            for j in literals[position:]:
                self.weights[j] *= factor

        def flush() -> None:
            for position in round_stack:
                scale(position, _ROUND)
            for position in square_stack:
                scale(position, _SQUARE)
            round_stack.clear()
            square_stack.clear()

        closing = -1
        for i, kind in enumerate(kinds):
            if roles[i] is not None:
                continue
            role = _SIMPLE_ROLES.get(kind)
            if role is not None:  # the common atoms: text, blanks, commas
                roles[i] = role
                if role is LITERAL:
                    literals.append(i)
                continue
            role = LITERAL
            char = text[starts[i]]
            if i == closing:
                role = "close"
            elif kind == "open" and char != "{":
                (round_stack if char == "(" else square_stack).append(len(literals))
                role = "open"
            elif kind == "close" and char == ")" and round_stack:
                scale(round_stack.pop(), _ROUND)
                role = "close"
            elif kind == "close" and char == "]" and square_stack:
                scale(square_stack.pop(), _SQUARE)
                role = "close"
            elif kind == "weight" and round_stack:
                value = _to_float(self.atom(i)[1:])
                if value is not None:
                    scale(round_stack.pop(), value)
                    role, closing = "weight", i + 1
            elif kind == "and":
                flush()
                role = "and"
            if role == LITERAL:
                literals.append(i)
            roles[i] = role
        flush()

    # -- pass 3: the composable-diffusion weight that ends each AND part ---------------------------
    def _and_weights(self) -> None:
        lo = 0
        for i, kind in enumerate([*self.kinds, "and"]):
            if kind == "and":
                self._and_weight(lo, i)
                lo = i + 1

    def _skip_blank(self, j: int, lo: int) -> int:
        while j >= lo and (
            self.kinds[j] in ("space", "network") or (self.kinds[j] == "sep" and self.atom(j) == "\n")
        ):
            j -= 1
        return j

    def _and_weight(self, lo: int, hi: int) -> None:
        number = self._skip_blank(hi - 1, lo)
        if number < lo or self.roles[number] != LITERAL or not _AND_NUMBER.fullmatch(self.atom(number)):
            return
        colon = self._skip_blank(number - 1, lo)
        if colon < lo or self.roles[colon] != LITERAL or self.kinds[colon] != "colon":
            return
        head = "".join(self.atom(j) for j in range(lo, colon) if self.kinds[j] != "network")
        if "\n" in head.strip():  # A1111's regex has no DOTALL: a multi-line part keeps its text
            return
        self.roles[colon] = self.roles[number] = "and_weight"


# atoms whose role does not depend on the bracket stacks (`)` after a `:w` weight is never one)
_SIMPLE_ROLES = {
    "word": LITERAL,
    "escape": LITERAL,
    "space": "space",
    "sep": "separator",
    "network": "network",
    "wildcard": "wildcard",
    "brk": "break",
    "colon": LITERAL,
    "pipe": LITERAL,
    "char": LITERAL,
    "dynprefix": LITERAL,
    "dynweight": LITERAL,
}


def _to_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def parse(text: str) -> list[Token]:
    """Split ``text`` into tokens that cover it exactly; never raises for a ``str``."""
    if not isinstance(text, str):
        raise TypeError(f"prompt must be a str, not {type(text).__name__}")
    a = Analysis(text)
    roles, starts, ends = a.roles, a.starts, a.ends
    tokens: list[Token] = []
    n = len(roles)
    i = 0
    while i < n:
        role = roles[i]
        stop = i + 1
        if role in (LITERAL, "and_weight"):  # one token through inner spaces
            j = stop
            while j < n and roles[j] in (role, "space"):
                j += 1
                if roles[j - 1] == role:
                    stop = j
        kind = "tag" if role == LITERAL else str(role)
        tokens.append(Token(kind, text[starts[i] : ends[stop - 1]], starts[i], ends[stop - 1]))
        i = stop
    return tokens


def render(tokens: list[Token]) -> str:
    """The prompt text of ``tokens`` (the inverse of :func:`parse`)."""
    return "".join(t.text for t in tokens)
