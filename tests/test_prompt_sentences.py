"""Natural-language sentences go into a prompt as plain words, at one place, nothing else changed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lib_tagger.prompt import extract_tags, parse
from lib_tagger.prompt.sentences import insert_sentences, prompt_text

PROMPT = "masterpiece, 1girl, <lora:miku:0.7>, (aqua hair:1.2), twintails BREAK smile, [red:blue:0.5] eyes"


@pytest.mark.parametrize(("position", "expected"), [
    ("end", PROMPT + ", A girl sings."),
    ("new_line", PROMPT + "\nA girl sings."),
    ("before_break", PROMPT.replace("twintails BREAK", "twintails, A girl sings. BREAK")),
])
def test_positions(position, expected):
    result = insert_sentences(PROMPT, "A girl sings.", position)
    assert result.prompt == expected
    assert result.prompt == PROMPT[:result.index] + result.text + PROMPT[result.index:]
    assert result.inserted == ("A girl sings.",)


def test_syntax_in_the_text_is_made_plain():
    text = "A girl (smiling) [sings] {loud|soft} <lora:x:1> AND dances BREAK now __x__."
    assert prompt_text(text) == r"A girl \(smiling\) \[sings\] \{loud\|soft\} lora:x:1 and dances break now _x_."
    result = insert_sentences("1girl", text)
    assert extract_tags(result.prompt)[0].tag == "1girl"
    assert all(t.kind in ("tag", "space", "separator") for t in parse(result.text + ","))


def test_empty_text_changes_nothing_and_an_empty_prompt_gets_just_the_text():
    assert insert_sentences(PROMPT, "  ").prompt == PROMPT
    assert insert_sentences("", "A cat.", "new_line").prompt == "A cat."
    with pytest.raises(ValueError, match="position"):
        insert_sentences(PROMPT, "x", "middle")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.text(max_size=60), st.sampled_from(["end", "new_line", "before_break"]))
def test_one_insertion_and_plain_words_for_any_prompt_and_text(prompt, text, position):
    result = insert_sentences(prompt, text, position)
    assert result.prompt == prompt[:result.index] + result.text + prompt[result.index:]
    if result.text:
        assert all(t.kind in ("tag", "space", "separator") for t in parse(prompt_text(text) + ","))
