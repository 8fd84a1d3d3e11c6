"""Ban patterns -> token ids (word-level) and bad-words rules (subword)."""

from __future__ import annotations

import time

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


@settings(max_examples=300, deadline=None)
@given(st.text("ab*", max_size=8), st.text("ab", max_size=10))
def test_wildcards_match_exactly_what_a_whole_tag_regex_matches(pattern, tag):
    import re

    expected = re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), tag) is not None
    assert compile_pattern(pattern)(tag) == expected


_RUNAWAY = r"""
import sys, threading, time
from lib_tagger.generate import bans
from lib_tagger.tags import get_tag_db

names = get_tag_db().names()
outcome = {}
def expand():
    started = time.monotonic()
    try:
        bans.expand_patterns(["long hair", sys.argv[1]], names)
        outcome["error"] = None
    except ValueError as exc:
        outcome["error"] = str(exc)
    outcome["seconds"] = time.monotonic() - started
worker = threading.Thread(target=expand)
worker.start()
ticks, longest, last = 0, 0.0, time.monotonic()
while worker.is_alive():  # another thread of the process: does it still get to run?
    time.sleep(0.01)
    now = time.monotonic()
    ticks, longest, last = ticks + 1, max(longest, now - last), now
print(repr((outcome["error"], outcome["seconds"], ticks, longest)))
"""


def _expand_in_a_child(pattern: str) -> tuple:
    """(error or None, seconds, ticks and longest gap of another thread) of expanding ``pattern`` against the
    140k known tags, in a child process (a runaway match cannot hang the test run)."""
    import ast
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", _RUNAWAY, pattern], capture_output=True, text=True, timeout=120,
                            cwd=str(tm.Path(__file__).resolve().parent.parent))
    assert result.returncode == 0, result.stderr
    return ast.literal_eval(result.stdout.strip().splitlines()[-1])


def test_the_reported_ban_regex_matches_the_tag_list_in_bounded_time():
    from lib_tagger.generate.bans import MATCH_SECONDS

    error, seconds, ticks, longest = _expand_in_a_child("/^(.+)+!$/")  # Python's re backtracks for hours
    assert error is None and seconds < MATCH_SECONDS
    assert longest < 1.0, (ticks, longest)


def test_a_runaway_regex_ends_in_bounded_time_naming_it_and_the_process_keeps_running():
    from lib_tagger.generate.bans import MATCH_SECONDS

    pattern = "/^(.|.)+!$/"  # exponential in the regex package too
    error, seconds, ticks, longest = _expand_in_a_child(pattern)
    assert error is not None and pattern in error and "simpler pattern" in error
    assert seconds < MATCH_SECONDS + 4  # the regex package checks its timeout every so often, not at once
    assert ticks >= 20 and longest < 1.0, (ticks, longest)  # other threads ran while it matched


def test_every_pattern_shares_one_time_bound():
    from lib_tagger.generate.bans import BanPatternTimeout

    candidates = [f"tag {i} " + "a" * 24 for i in range(400)]
    with pytest.raises(BanPatternTimeout, match=r"/\(a\|a\)\+b/"):
        expand_patterns(["/x/", "/(a|a)+b/", "/y/"], candidates, seconds=0.2)
    # quick patterns over the same tags stay well inside the bound
    assert expand_patterns(["/^tag 1 /", "*a"], candidates, seconds=0.5)
    # a pattern that ran out of time is refused at once afterwards, even against other candidates
    started = time.monotonic()
    with pytest.raises(BanPatternTimeout, match="did not finish"):
        expand_patterns(["/(a|a)+b/"], ["b"], seconds=10)
    assert time.monotonic() - started < 0.1


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
