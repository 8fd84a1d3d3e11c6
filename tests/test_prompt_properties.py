"""Property tests over generated prompts that mix every piece of prompt syntax with unicode and garbage."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib_tagger.prompt import (
    escape_tag,
    extract_tags,
    insert_tags,
    normalize_tag,
    parse,
    render,
    unescape_tag,
)
from lib_tagger.prompt.tags import tag_key

KINDS = {
    "tag", "space", "separator", "open", "close", "weight", "network", "break", "and", "and_weight",
    "wildcard", "dynamic", "editing", "alternation",
}  # fmt: skip

SYNTAX = [
    "masterpiece", "1girl", "long_hair", "red hair", "Blue Eyes", "^_^", ">_<", "0_0", ":d", ":3",
    "re:zero", r"star \(symbol\)", "\\m/", "(", ")", "[", "]", "{", "}", "|", ":", "::", ",", ", ",
    " ", "  ", "\n", "\r\n", "\t", "\\", "\\\\", r"\(", r"\)", r"\[", r"\]", r"\{", "BREAK", " BREAK ",
    "AND", " AND ", "AND:2", ":1.2", ":0.5)", ":-1)", ":1e2)", ":.)", "(a:1.2)", "((a))", "[a]",
    "[a:b:0.5]", "[a::10]", "[a:0.5]", "[a|b]", "[x, y:z:2]", "{a|b}", "{2$$a|b|c}", "{1-2$$ and $$x|y}",
    "{0.5::a|b}", "<lora:miku_v2:0.8>", "<hypernet:h:1>", "<", ">", "__wild__", "__dir/name__", "_",
    "__", "$$", "1e2", "-0.5", "0.5", "é", "日本", "ß", "İ", "\u2028", "\x00", "\x1f", "\u200b",
]  # fmt: skip

ASCII = [chr(c) for c in range(0x20, 0x7F)]
NEW_TAGS = [
    "c", "long hair", "star (symbol)", "\\m/", "|_|", "^_^", ":3", ":d", "BREAK", "AND", "a, b", "<lora:x:1>",
    "__w__", "{x}", "[y]", "", " ", "1girl", "blue eyes", "x:1.5", "_", "a\\", "(", "red\nhair",
]  # fmt: skip


def decode(data: bytes) -> str:
    """A prompt from bytes: a byte picks a syntax fragment or a printable ASCII character; a byte
    from 0xF0 up takes the next two bytes as any code point (planes 0 and 1, surrogates excluded).
    Hypothesis draws one byte string per prompt, which keeps 2,000 examples fast."""
    out: list[str] = []
    i = 0
    while i < len(data):
        b = data[i]
        i += 1
        if b < len(SYNTAX):
            out.append(SYNTAX[b])
        elif b >= 0xF0:
            point = int.from_bytes(data[i : i + 2].ljust(2, b"\0"), "big") + (0x10000 if b >= 0xF8 else 0)
            i += 2
            out.append("\ufffd" if 0xD800 <= point <= 0xDFFF else chr(point))
        else:
            out.append(ASCII[(b - len(SYNTAX)) % len(ASCII)])
    return "".join(out)


def decode_tags(data: bytes) -> list[str]:
    """New tags from bytes: a low byte picks a tricky tag, a high one decodes the next 3 bytes."""
    tags: list[str] = []
    i = 0
    while i < len(data):
        b = data[i]
        if b < 0xC0:
            tags.append(NEW_TAGS[b % len(NEW_TAGS)])
            i += 1
        else:
            tags.append(decode(data[i + 1 : i + 4]))
            i += 4
    return tags


def decode_case(data: bytes) -> tuple[str, list[str], str]:
    """(prompt, new tags, position) from one byte string: its first byte picks the position and
    how many of the next bytes (0-8) encode the new tags; the rest is the prompt. One draw per
    example is several times faster in Hypothesis than three strategies."""
    head = data[0] if data else 0
    split = 1 + (head >> 1) % 9
    return decode(data[split:]), decode_tags(data[1:split]), "before_break" if head & 1 else "end"


PROMPTS = st.binary(max_size=40).map(decode)
CASES = st.binary(max_size=49).map(decode_case)
FAST = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_decode_covers_the_syntax() -> None:
    data = bytes([SYNTAX.index("BREAK"), 0xF0, 0x30, 0x42, 0xF8, 0xF6, 0x00])
    assert decode(data) == "BREAK\u3042\U0001f600"
    assert decode(bytes([0xF0, 0xD8, 0x00])) == "\ufffd"
    assert decode_tags(bytes([NEW_TAGS.index("BREAK"), 0xC0, SYNTAX.index("(")])) == ["BREAK", "("]
    assert decode_case(bytes([0b11, 0, SYNTAX.index("[a|b]")])) == ("[a|b]", [NEW_TAGS[0]], "before_break")


@FAST
@given(PROMPTS)
def test_parse_is_lossless_and_tags_are_well_formed(prompt: str) -> None:
    tokens = parse(prompt)
    assert render(tokens) == prompt
    position = 0
    for t in tokens:
        assert t.kind in KINDS
        assert t.start == position < t.end
        assert prompt[t.start : t.end] == t.text
        position = t.end
    assert position == len(prompt)
    # the tags are well formed
    previous = -1
    for t in extract_tags(prompt):
        assert prompt[t.start : t.end] == t.raw
        assert t.tag and t.tag == " ".join(t.tag.split()) == t.tag.lower()
        assert t.segment >= 0
        assert t.start >= previous  # prompt order
        previous = t.start
        if not t.conditional:
            assert normalize_tag(t.raw) == tag_key(t.tag) or any(c in t.raw for c in "()[]<>")


@FAST
@given(CASES)
def test_insertion_changes_nothing_else(case: tuple[str, list[str], str]) -> None:
    prompt, new_tags, position = case
    result = insert_tags(prompt, new_tags, position)
    # the one hard invariant: a single insertion
    assert result.prompt == prompt[: result.index] + result.text + prompt[result.index :]
    if not result.inserted:
        assert result.prompt == prompt
        return
    before = extract_tags(prompt)
    after = extract_tags(result.prompt)
    lo, hi = result.index, result.index + len(result.text)
    new = [t for t in after if lo <= t.start and t.end <= hi]
    old = [t for t in after if not (lo <= t.start and t.end <= hi)]
    # every inserted tag reads back as itself, plain (not conditional)
    assert [(tag_key(t.tag), t.conditional) for t in new] == [(tag_key(x), False) for x in result.inserted]
    # no duplicates: neither among the new tags nor with the prompt's own tags
    keys = [tag_key(x) for x in result.inserted]
    assert len(set(keys)) == len(keys)
    assert not set(keys) & {tag_key(t.tag) for t in before}
    # the prompt's own tags keep their text, weight, chunk and certainty
    assert [(t.tag, t.weight, t.segment, t.conditional) for t in old] == [
        (t.tag, t.weight, t.segment, t.conditional) for t in before
    ]


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=20))
def test_escape_round_trips(tag: str) -> None:
    assert unescape_tag(escape_tag(tag)) == tag
    key = normalize_tag(tag)
    assert normalize_tag(escape_tag(key)) == key  # the key is a fixed point
