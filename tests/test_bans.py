"""Ban patterns -> token ids (word-level) and bad-words rules (subword)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lib_tagger.generate.bans import compile_bans, compile_pattern, expand_patterns, normalize_tag
from lib_tagger.generate.tokenizer import TagTokenizer
from tests.factories import torch_models as tm


@pytest.fixture(scope="module")
def dart_tok(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dart-tok")
    tm.write_dart_tokenizer(folder)
    return TagTokenizer.from_folder(folder)


@pytest.fixture(scope="module")
def llama_tok(tmp_path_factory):
    folder = tmp_path_factory.mktemp("llama-tok")
    tm.write_llama_tokenizer(folder)
    return TagTokenizer.from_folder(folder)


def test_pattern_forms():
    assert compile_pattern("Long_Hair")("long hair")
    assert not compile_pattern("long hair")("very long hair")
    assert compile_pattern("* hair")("very long hair")
    assert not compile_pattern("* hair")("hair ornament")  # wildcards cover the whole tag
    assert compile_pattern("?")("?") and not compile_pattern("?")("a")  # only * is special
    assert compile_pattern("/hair/")("hair ornament")  # regex: search
    assert not compile_pattern("/^hair$/")("hair ornament")
    assert compile_pattern("/EYES/")("blue eyes")  # case-insensitive
    with pytest.raises(ValueError, match=r"/\(unclosed/"):
        compile_pattern("/(unclosed/")


def test_expand_patterns_keeps_literals_order_and_dedupes():
    candidates = ["long hair", "short hair", "hat", "Long_Hair", "blue eyes"]
    assert expand_patterns(["hat", "* hair", "unknown tag", "  "], candidates) == [
        "hat",
        "unknown tag",
        "long hair",
        "short hair",
    ]
    assert expand_patterns(["/eyes$/"], candidates) == ["blue eyes"]
    assert expand_patterns([], candidates) == []


def test_word_level_bans_are_token_ids_and_never_specials(dart_tok):
    vocab = dart_tok.vocab
    bans = compile_bans(["long hair", "cat *", "/^a/"], dart_tok)
    expected = {vocab[t] for t in ("long hair", "cat ears", "animal ears", "ahoge", "aqua hair", "armband")}
    assert bans.always == expected
    assert bans.is_static and bans.banned_next([vocab["1girl"]]) == expected
    everything = compile_bans(["*"], dart_tok)
    assert everything.always == {i for t, i in vocab.items() if not t.startswith("<")}
    assert not everything.always & dart_tok.special_ids
    assert not compile_bans([], dart_tok)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(tm.DART_TAGS), max_size=5))
def test_word_level_literal_bans_are_exact(dart_tok, tags):
    assert compile_bans(tags, dart_tok).always == {dart_tok.vocab[t] for t in tags}


def test_subword_bans_follow_bad_words_rules(llama_tok):
    v = llama_tok.vocab
    comma, long_, hair, short, orn = v[","], v["▁long"], v["▁hair"], v["▁short"], v["▁ornament"]
    bans = compile_bans(["long hair", "hair ornament", "smile"], llama_tok)
    assert not bans.is_static
    assert hair in bans.banned_next([long_])  # the first tag of the output
    assert hair in bans.banned_next([v["▁solo"], comma, long_])  # a tag after ", "
    assert hair not in bans.banned_next([short])
    assert hair not in bans.banned_next([v["▁solo"], long_])  # mid-tag: not the tag "long hair"
    assert orn in bans.banned_next([comma, hair]) and orn not in bans.banned_next([comma, short, hair])
    assert v["▁smile"] in bans.banned_next([]) and v["▁smile"] in bans.banned_next([v["▁solo"], comma])
    assert v["▁smile"] not in bans.banned_next([v["▁solo"]])


def test_subword_wildcards_need_candidates(llama_tok):
    v = llama_tok.vocab
    assert not compile_bans(["* hair"], llama_tok)  # nothing to expand against
    bans = compile_bans(["* hair"], llama_tok, candidates=["long hair", "short hair", "hat"])
    assert v["▁hair"] in bans.banned_next([v["▁long"]]) and v["▁hair"] in bans.banned_next([v["▁short"]])
    assert v["▁hat"] not in bans.banned_next([])


class _WhitespaceVocab:
    """The minimal protocol, as an adapter over another engine's vocabulary would provide it."""

    word_level = False
    special_ids = frozenset({0})

    def __init__(self) -> None:
        self.vocab = {"</s>": 0, ",": 1, "red": 2, "eyes": 3, "blue": 4}

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [self.vocab.get(w, 99) for w in text.replace(",", " , ").split()]


def test_protocol_adapter_is_enough():
    bans = compile_bans(["red eyes"], _WhitespaceVocab())
    assert bans.banned_next([4, 1, 2]) == {3}
    assert bans.banned_next([2]) == {3}
    assert bans.banned_next([4, 2]) == set()


def test_normalize_tag():
    assert normalize_tag("  Long_Hair ") == "long hair"
    assert normalize_tag("a  b") == "a b"
