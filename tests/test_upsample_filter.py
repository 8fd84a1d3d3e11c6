"""Which generated tags reach the prompt: printable, not banned, not already there."""

from __future__ import annotations

import pytest

from lib_tagger.generate.base import SamplingParams
from lib_tagger.prompt import is_clean_tag
from lib_tagger.upsample import _filter


@pytest.mark.parametrize("tag", ["long hair", "^_^", "star (symbol)", "ポケモン", "é"])
def test_real_tags_are_clean(tag):
    assert is_clean_tag(tag)


@pytest.mark.parametrize("tag", ["", "  ", "bad\x07tag", "line\nbreak", "zero\u200bwidth", "broken \ufffd", "\x00"])
def test_control_format_and_replacement_characters_are_not(tag):
    assert not is_clean_tag(tag)


def test_filter_drops_unprintable_banned_and_present_tags_in_order():
    tags = ["smile", "ha\x1bt", "blue eyes", "Long_Hair", "\ufffd\ufffd", "skirt", "smile", "red eyes"]
    seen = {"long hair"}
    kept = _filter(tags, seen, params=SamplingParams(banned_tags=("*eyes",)))
    assert kept == ["smile", "skirt"]
    assert seen == {"long hair", "smile", "skirt"}  # later calls of the same prompt skip them too
    assert _filter(["skirt", "hat"], seen, params=SamplingParams()) == ["hat"]
