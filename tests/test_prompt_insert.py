"""Example tests of insert_tags: natural joins, positions, de-duplication, escaping, bad input."""

from __future__ import annotations

import pytest

from lib_tagger.prompt import InsertResult, extract_tags, insert_tags, normalize_tag


def check_invariant(prompt: str, result: InsertResult) -> None:
    assert result.prompt == prompt[: result.index] + result.text + prompt[result.index :]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a, b", "a, b, c, d"),
        ("a, b,", "a, b, c, d"),
        ("a, b, ", "a, b, c, d"),
        ("", "c, d"),
        ("   ", "c, d   "),
        ("a, b\n", "a, b, c, d\n"),
        ("a, b,\n", "a, b, c, d\n"),
        ("a,\nb", "a,\nb, c, d"),
        ("a, <lora:x_v2:0.8>", "a, <lora:x_v2:0.8>, c, d"),
        ("a, <lora:x:1>\n", "a, <lora:x:1>, c, d\n"),
        ("(a, b:1.2)", "(a, b:1.2), c, d"),
        ("a BREAK", "a BREAK c, d"),
        ("a BREAK ", "a BREAK c, d"),
        ("x AND y", "x AND y, c, d"),
        # a trailing AND weight stays last, also behind an extra network
        ("a, b:1.2", "a, b, c, d:1.2"),
        ("a, b :1.2\n", "a, b, c, d :1.2\n"),
        ("a:1.2 <lora:x:1>", "a, c, d:1.2 <lora:x:1>"),
        # a lone backslash must not escape the joining comma
        ("a\\", "a\\ , c, d"),
    ],
)
def test_end(prompt: str, expected: str) -> None:
    result = insert_tags(prompt, ["c", "d"])
    assert result.prompt == expected
    assert result.inserted == ("c", "d")
    check_invariant(prompt, result)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a BREAK b", "a, c, d BREAK b"),
        ("a, BREAK b", "a, c, d BREAK b"),
        ("a,BREAK b", "a, c, d BREAK b"),
        ("a,\nBREAK b", "a, c, d\nBREAK b"),
        ("BREAK b", "c, d BREAK b"),
        ("a BREAK b BREAK e", "a, c, d BREAK b BREAK e"),
        # no top-level BREAK: same as "end"
        ("a, b", "a, b, c, d"),
        ("(a BREAK b)", "(a BREAK b), c, d"),
        ("(a BREAK b) BREAK e", "(a BREAK b), c, d BREAK e"),
    ],
)
def test_before_break(prompt: str, expected: str) -> None:
    result = insert_tags(prompt, ["c", "d"], "before_break")
    assert result.prompt == expected
    check_invariant(prompt, result)


def test_before_break_lands_in_the_first_chunk() -> None:
    result = insert_tags("a, b BREAK e, f", ["c", "d"], "before_break")
    assert [(t.tag, t.segment) for t in extract_tags(result.prompt)] == [
        ("a", 0),
        ("b", 0),
        ("c", 0),
        ("d", 0),
        ("e", 1),
        ("f", 1),
    ]


def test_escapes_model_tags() -> None:
    result = insert_tags("a", ["star (symbol)", "\\m/", "|_|", "^_^"])
    assert result.prompt == r"a, star \(symbol\), \\m/, \|_\|, ^_^"
    assert [t.tag for t in extract_tags(result.prompt)] == ["a", "star (symbol)", "\\m/", "|_|", "^_^"]
    assert result.inserted == ("star (symbol)", "\\m/", "|_|", "^_^")


def test_no_duplicates() -> None:
    prompt = r"1girl, (Long_Hair:1.2), star \(symbol\), [red:blue:0.5] eyes, {smile|frown}"
    new = ["long hair", "star (symbol)", "red eyes", "frown", "1GIRL", "solo", "Solo", " solo ", "hat"]
    result = insert_tags(prompt, new)
    assert result.inserted == ("solo", "hat")
    assert result.prompt == prompt + ", solo, hat"


def test_canonical_aliases() -> None:
    aliases = {"longhair": "long hair", "1girls": "1girl"}
    new = ["longhair", "1girl", "1girls", "smile"]
    result = insert_tags("long hair", new, canonical=lambda k: aliases.get(k, k))
    assert result.inserted == ("1girl", "smile")
    assert result.prompt == "long hair, 1girl, smile"


def test_whitespace_in_new_tags_is_collapsed_and_empty_ones_skipped() -> None:
    result = insert_tags("a", ["  red \n hair ", "", "   ", "_"])
    assert result.inserted == ("red hair",)
    assert result.prompt == "a, red hair"


def test_unrepresentable_tags_are_left_out() -> None:
    new = ["BREAK", "AND", "<lora:x:1>", "x, y", "__wild__", "ok", ":3"]
    result = insert_tags("a", new)
    # ":3" last would read as an AND weight; BREAK / AND / networks / wildcards cannot be escaped
    assert result.inserted == ("ok",)
    assert result.prompt == "a, ok"
    # in the middle, ":3" is a plain tag
    assert insert_tags("a", [":3", "b"]).prompt == "a, :3, b"


def test_inserting_nothing_returns_the_prompt() -> None:
    for prompt in ("", "a, b", "a BREAK b", "a, b, "):
        result = insert_tags(prompt, [])
        assert result.prompt == prompt
        assert result.inserted == ()
        assert result.text == ""
    # everything already present: nothing changes
    assert insert_tags("a, b", ["a", "B", "a"]) == InsertResult("a, b", (), 4, "")


def test_unclosed_emphasis_prompt() -> None:
    result = insert_tags("a, (b", ["c"])
    assert result.prompt == "a, (b, c"
    assert [(t.tag, t.weight) for t in extract_tags(result.prompt)] == [("a", 1.0), ("b", 1.1), ("c", 1.1)]


def test_keys_match_normalize_tag() -> None:
    result = insert_tags("Long_Hair", ["long hair", "blue eyes"])
    assert [normalize_tag(t) for t in result.inserted] == ["blue eyes"]


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="position"):
        insert_tags("a", ["b"], position="start")
    with pytest.raises(TypeError, match="new_tags must be a sequence"):
        insert_tags("a", "b")
    with pytest.raises(TypeError, match=r"new_tags\[1\]"):
        insert_tags("a", ["b", None])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="prompt must be a str"):
        insert_tags(None, ["b"])  # type: ignore[arg-type]


# ---------------------------------------------------------------- tags pasted from Danbooru, unescaped
KNOWN = {"ganyu (genshin impact)", "genshin impact", "hatsune miku", "vocaloid", "artoria pendragon (fate)",
         "fate (series)", "1girl"}


def known(tag: str) -> bool:
    return normalize_tag(tag) in KNOWN


@pytest.mark.parametrize(("prompt", "names"), [
    ("ganyu_(genshin_impact)", [("ganyu (genshin impact)",)]),
    ("ganyu (genshin impact), 1girl", [("ganyu (genshin impact)",), ("1girl",)]),
    ("(artoria_pendragon_(fate):1.2), fate_(series)", [("artoria pendragon (fate)",), ("fate (series)",)]),
    ("hatsune_miku_(vocaloid)", [("hatsune miku", "vocaloid")]),  # no such tag: each part on its own
    ("nobody_(nowhere)", [("nobody nowhere",)]),  # no part known: as A1111 reads it
    ("ganyu_(genshin_impact:1.3)", [("ganyu genshin impact",)]),  # a weight: emphasis meant
    ("ganyu_[genshin_impact]", [("ganyu genshin impact",)]),
    ("ganyu_(genshin)_impact", [("ganyu genshin impact",)]),
    ("star \\(symbol\\)", [("star (symbol)",)]),  # escaped: already one tag
])
def test_unescaped_qualifiers_name_the_tag_they_stand_for(prompt, names):
    from lib_tagger.prompt import tag_names

    assert [tag_names(t, known) for t in extract_tags(prompt)] == names


@pytest.mark.parametrize("prompt", ["ganyu_(genshin_impact), 1girl", "(ganyu_(genshin_impact):1.1), 1girl"])
def test_a_qualified_tag_is_not_inserted_again_and_the_prompt_stays_byte_for_byte(prompt):
    result = insert_tags(prompt, ["ganyu (genshin impact)", "genshin impact", "smile"], known=known)
    assert result.inserted == ("genshin impact", "smile")  # the qualifier alone is another tag
    assert result.prompt == prompt + ", genshin impact, smile"
    parts = insert_tags("hatsune_miku_(vocaloid)", ["vocaloid", "hatsune miku", "smile"], known=known)
    assert parts.prompt == "hatsune_miku_(vocaloid), smile"
