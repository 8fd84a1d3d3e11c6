"""Example tests pinning how realistic and odd prompts parse and which tags they hold."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lib_tagger.prompt import (
    PromptTag,
    Token,
    escape_tag,
    extract_tags,
    normalize_tag,
    parse,
    render,
    unescape_tag,
)

REALISTIC = (
    r"masterpiece, 1girl, (hatsune miku:1.2), vocaloid, <lora:miku_v2:0.8>, ((twintails)), "
    r"star \(symbol\), BREAK [red:blue:0.5] eyes, __wildcards/hair__, {smile|frown}"
)


def summary(prompt: str) -> list[tuple[str, float, int, bool]]:
    return [(t.tag, round(t.weight, 6), t.segment, t.conditional) for t in extract_tags(prompt)]


def kinds(prompt: str) -> list[tuple[str, str]]:
    return [(t.kind, t.text) for t in parse(prompt)]


def test_realistic_prompt_tags() -> None:
    assert summary(REALISTIC) == [
        ("masterpiece", 1.0, 0, False),
        ("1girl", 1.0, 0, False),
        ("hatsune miku", 1.2, 0, False),
        ("vocaloid", 1.0, 0, False),
        ("twintails", 1.21, 0, False),
        ("star (symbol)", 1.0, 0, False),
        ("red eyes", 1.0, 1, True),
        ("blue eyes", 1.0, 1, True),
        ("smile", 1.0, 1, True),
        ("frown", 1.0, 1, True),
    ]


def test_realistic_prompt_spans_and_raw() -> None:
    tags = extract_tags(REALISTIC)
    for t in tags:
        assert REALISTIC[t.start : t.end] == t.raw
    by_tag = {t.tag: t for t in tags}
    assert by_tag["hatsune miku"].raw == "hatsune miku"
    assert by_tag["twintails"].raw == "twintails"
    assert by_tag["star (symbol)"].raw == r"star \(symbol\)"
    assert by_tag["red eyes"].raw == "[red:blue:0.5] eyes"
    assert by_tag["smile"].raw == "{smile|frown}"


def test_realistic_prompt_tokens() -> None:
    tokens = parse(REALISTIC)
    assert render(tokens) == REALISTIC
    significant = [(t.kind, t.text) for t in tokens if t.kind not in ("space", "separator")]
    assert significant == [
        ("tag", "masterpiece"),
        ("tag", "1girl"),
        ("open", "("),
        ("tag", "hatsune miku"),
        ("weight", ":1.2"),
        ("close", ")"),
        ("tag", "vocaloid"),
        ("network", "<lora:miku_v2:0.8>"),
        ("open", "("),
        ("open", "("),
        ("tag", "twintails"),
        ("close", ")"),
        ("close", ")"),
        ("tag", r"star \(symbol\)"),
        ("break", "BREAK"),
        ("editing", "["),
        ("tag", "red"),
        ("editing", ":"),
        ("tag", "blue"),
        ("editing", ":"),
        ("editing", "0.5"),
        ("editing", "]"),
        ("tag", "eyes"),
        ("wildcard", "__wildcards/hair__"),
        ("dynamic", "{"),
        ("tag", "smile"),
        ("dynamic", "|"),
        ("tag", "frown"),
        ("dynamic", "}"),
    ]


def test_token_and_tag_are_frozen() -> None:
    token = parse("a")[0]
    assert token == Token("tag", "a", 0, 1)
    with pytest.raises(AttributeError):
        token.kind = "space"  # type: ignore[misc]
    tag = extract_tags("a")[0]
    assert tag == PromptTag("a", "a", 1.0, 0, 1, 0, False)
    with pytest.raises(AttributeError):
        tag.weight = 2.0  # type: ignore[misc]


def test_a1111_doctest_weights() -> None:
    # the weights of A1111's own parse_prompt_attention doctest
    prompt = "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky)))."
    assert [(t.tag, t.weight) for t in extract_tags(prompt)] == [
        ("a house on a hill", 1.0),
        ("sun", 1.1),
        ("sky.", 1.4641000000000006),
    ]
    assert [t.weight for t in extract_tags("(((house:1.3))), x")] == [1.5730000000000004, 1.0]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("(a)", [("a", 1.1)]),
        ("((a))", [("a", 1.21)]),
        ("[a]", [("a", 0.909091)]),
        ("[[a]]", [("a", 0.826446)]),
        ("(a:1.2)", [("a", 1.2)]),
        ("(a:-0.5)", [("a", -0.5)]),
        ("(a:.5)", [("a", 0.5)]),
        ("(a:+2)", [("a", 2.0)]),
        # A1111's weight regex takes digits and dots only: these are text, the brackets emphasis
        ("(a:1e2)", [("a:1e2", 1.1)]),
        ("(a: 1.2)", [("a: 1.2", 1.1)]),
        ("(a:1.2.3)", [("a:1.2.3", 1.1)]),
        # unbalanced: an unclosed opener still weights, an unmatched closer is text
        ("(unbalanced", [("unbalanced", 1.1)]),
        ("a), b", [("a)", 1.0), ("b", 1.0)]),
        ("a:1.2), b", [("a:1.2)", 1.0), ("b", 1.0)]),
        ("(red, blue hair:1.3), x", [("red", 1.3), ("blue hair", 1.3), ("x", 1.0)]),
        ("([a)], b", [("a", 1.0), ("b", 1.0)]),
        ("(red) hair", [("red hair", 1.1)]),
    ],
)
def test_emphasis(prompt: str, expected: list[tuple[str, float]]) -> None:
    assert [(t.tag, round(t.weight, 6)) for t in extract_tags(prompt)] == expected


def test_weighted_group_tokens() -> None:
    assert kinds("(a:-0.5)") == [("open", "("), ("tag", "a"), ("weight", ":-0.5"), ("close", ")")]
    assert kinds("(a:1e2)") == [("open", "("), ("tag", "a:1e2"), ("close", ")")]
    assert kinds("a:1.2), b")[0] == ("tag", "a:1.2)")


def test_escapes() -> None:
    prompt = r"star \(symbol\), \[x\], back\\slash, a\:b, \m/"
    assert [(t.tag, t.raw) for t in extract_tags(prompt)] == [
        ("star (symbol)", r"star \(symbol\)"),
        ("[x]", r"\[x\]"),
        ("back\\slash", r"back\\slash"),
        ("a:b", r"a\:b"),
        ("m/", r"\m/"),
    ]
    # an escaped bracket neither opens emphasis nor closes it
    assert [t.weight for t in extract_tags(r"(a \) b)")] == [1.1]
    assert kinds(r"\(a") == [("tag", r"\(a")]


def test_lone_backslash_is_dropped_like_a1111() -> None:
    assert [t.tag for t in extract_tags("a\\, b")] == ["a, b"]  # `\,` escapes the comma
    assert [t.tag for t in extract_tags("a \\")] == ["a"]
    assert render(parse("\\")) == "\\"
    assert extract_tags("\\") == []


def test_break_and_segments() -> None:
    prompt = "a, b BREAK c\nd BREAK, e"
    assert [(t.tag, t.segment) for t in extract_tags(prompt)] == [
        ("a", 0),
        ("b", 0),
        ("c", 1),
        ("d", 1),
        ("e", 2),
    ]
    # BREAK needs word boundaries; emphasis runs across it
    assert [t.tag for t in extract_tags("aBREAK, BREAKing, _BREAK")] == ["abreak", "breaking", "break"]
    assert [(t.tag, t.weight, t.segment) for t in extract_tags("(a BREAK b)")] == [
        ("a", 1.1, 0),
        ("b", 1.1, 1),
    ]


def test_and_with_weights() -> None:
    prompt = "a, b:1.2 AND c, d : 0.7 AND (e:1.5) AND f:2"
    assert [(t.tag, t.weight, t.segment) for t in extract_tags(prompt)] == [
        ("a", 1.0, 0),
        ("b", 1.0, 0),
        ("c", 1.0, 1),
        ("d", 1.0, 1),
        ("e", 1.5, 2),
        ("f", 1.0, 3),
    ]
    assert [t for t in kinds(prompt) if t[0] in ("and", "and_weight")] == [
        ("and_weight", ":1.2"),
        ("and", "AND"),
        ("and_weight", ": 0.7"),
        ("and", "AND"),
        ("and", "AND"),
        ("and_weight", ":2"),
    ]
    # A1111 applies the weight regex without DOTALL: a multi-line part keeps its `:n` as text
    assert [t.tag for t in extract_tags("a,\nb:2")] == ["a", "b:2"]
    # an unclosed emphasis ends at AND
    assert [t.weight for t in extract_tags("(a AND b")] == [1.1, 1.0]
    # a trailing weight with an extra network after it is still the AND weight
    assert [t.tag for t in extract_tags("cat:1.5 <lora:x:1>")] == ["cat"]


def test_prompt_editing_and_alternation() -> None:
    assert summary("[a:b:10], c") == [("a", 1.0, 0, True), ("b", 1.0, 0, True), ("c", 1.0, 0, False)]
    assert summary("[a::0.5]") == [("a", 1.0, 0, True)]
    assert summary("x [a:0.5]") == [("x", 1.0, 0, True), ("x a", 1.0, 0, True)]
    assert summary("[a: b :  5 ]") == [("a", 1.0, 0, True), ("b", 1.0, 0, True)]
    assert summary("[a|b|c] hair") == [
        ("a hair", 1.0, 0, True),
        ("b hair", 1.0, 0, True),
        ("c hair", 1.0, 0, True),
    ]
    # nested editing, emphasis inside an option, commas inside options
    assert summary("[(a:1.3):[b:c:2]:1]") == [
        ("a", 1.3, 0, True),
        ("b", 1.0, 0, True),
        ("c", 1.0, 0, True),
    ]
    assert summary("[x, y:z:0.5]") == [("x", 1.0, 0, True), ("y", 1.0, 0, True), ("z", 1.0, 0, True)]
    # not editing: no number, or too many colons -> square emphasis with literal colons
    assert summary("[a:b]") == [("a:b", 0.909091, 0, False)]
    assert summary("[a:b:c:1]") == [("a:b:c:1", 0.909091, 0, False)]
    assert kinds("[a:1e1]") == [
        ("editing", "["),
        ("tag", "a"),
        ("editing", ":"),
        ("editing", "1e1"),
        ("editing", "]"),
    ]


def test_variants_are_capped() -> None:
    prompt = " ".join(f"{{a{n}|b{n}}}" for n in range(7)) + ", z"  # 128 variants
    tags = extract_tags(prompt)
    assert len(tags) == 64 + 1
    assert all(t.conditional for t in tags[:64]) and tags[64].tag == "z"
    assert tags[0].tag == "a0 a1 a2 a3 a4 a5 a6"


def test_dynamic_prompts() -> None:
    assert summary("{2$$a|b|c}, d") == [
        ("a", 1.0, 0, True),
        ("b", 1.0, 0, True),
        ("c", 1.0, 0, True),
        ("d", 1.0, 0, False),
    ]
    assert kinds("{2$$a|b}")[:2] == [("dynamic", "{"), ("dynamic", "2$$")]
    assert kinds("{1-3$$ and $$a|b}")[1] == ("dynamic", "1-3$$ and $$")
    assert [t.tag for t in extract_tags("{0.5::red|2::blue} hair")] == ["red hair", "blue hair"]
    # unbalanced braces are text; an escaped brace is a literal
    assert summary("a {b, c") == [("a {b", 1.0, 0, False), ("c", 1.0, 0, False)]
    assert summary(r"\{a|b\}") == [("{a|b}", 1.0, 0, False)]


def test_wildcards_and_networks_are_never_tags() -> None:
    prompt = "__colors__ hair, <lora:x_v2:0.8>, <hypernet:h:1>1girl, __dir/sub/name__, __a__b"
    assert [t.tag for t in extract_tags(prompt)] == ["1girl"]
    assert [t.kind for t in parse("__dir/name__ <lyco:a:1>") if t.kind != "space"] == ["wildcard", "network"]
    # not a network: no `name:` part
    assert [t.tag for t in extract_tags("<o>_<o>, <3")] == ["<o>_<o>", "<3"]


def test_tag_text_normalisation() -> None:
    prompt = r"Long_Hair,  red   HAIR , ^_^, >_<, 0_0, \(o\)_\(o\), t_k_g, :d, re:zero, 日本語_タグ"
    assert [t.tag for t in extract_tags(prompt)] == [
        "long hair",
        "red hair",
        "^_^",
        ">_<",
        "0_0",
        "(o)_(o)",
        "t k g",
        ":d",
        "re:zero",
        "日本語 タグ",
    ]


def test_empty_pieces_and_garbage() -> None:
    assert extract_tags("") == []
    assert extract_tags(" , ,\n\n,, BREAK AND") == []
    assert [t.tag for t in extract_tags(":::, ]]], |, a")] == [":::", "]]]", "|", "a"]
    assert [t.tag for t in extract_tags("a\r\nb")] == ["a", "b"]


@pytest.mark.parametrize(
    ("tag", "escaped"),
    [
        ("star (symbol)", r"star \(symbol\)"),
        ("[x]", r"\[x\]"),
        ("\\m/", "\\\\m/"),
        ("|_|", r"\|_\|"),
        ("{a}", r"\{a\}"),
        ("plain", "plain"),
    ],
)
def test_escape_tag(tag: str, escaped: str) -> None:
    assert escape_tag(tag) == escaped
    assert unescape_tag(escaped) == tag
    assert [t.tag for t in extract_tags(escaped)] == [tag]


def test_unescape_tag() -> None:
    assert unescape_tag(r"star \(symbol\)") == "star (symbol)"
    assert unescape_tag("a\\") == "a"
    assert unescape_tag("a\\\\") == "a\\"


def test_normalize_tag() -> None:
    assert normalize_tag(r"  Star_\(Symbol\)  ") == "star (symbol)"
    assert normalize_tag("long   hair") == normalize_tag("LONG_HAIR") == "long hair"
    assert normalize_tag("^_^") == "^_^"
    assert normalize_tag("Straße") == "strasse"
    assert normalize_tag("") == ""


def test_bad_input_types() -> None:
    with pytest.raises(TypeError, match="prompt must be a str"):
        parse(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="prompt must be a str"):
        extract_tags(b"a")  # type: ignore[arg-type]


def test_import_is_light() -> None:
    code = "import sys, lib_tagger.prompt; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "[]"
