"""Output templates (off by default) rebuild the prompt in the model's order; insert keeps it."""

from __future__ import annotations

import pytest

from lib_tagger.output import compose
from lib_tagger.settings import SettingsError, UpsampleSettings

PROMPT = "masterpiece, (1girl:1.2), hatsune miku, vocaloid, <lora:miku:0.7>, smile, highres BREAK sensitive"
NEW = ["aqua hair", "star (symbol)", "1girl", "best quality"]
NL = "A girl (in blue) sings."


def test_insert_keeps_the_prompt_and_adds_at_one_place_each():
    out = compose(PROMPT, NEW, NL, "insert", "before_break", "end")
    assert out.prompt == PROMPT.replace("highres BREAK", r"highres, aqua hair, star \(symbol\), best quality BREAK") \
        + r", A girl \(in blue\) sings."
    assert out.tags == ("aqua hair", "star (symbol)", "best quality")
    assert out.text == r"A girl \(in blue\) sings."


@pytest.mark.parametrize(("template", "expected"), [
    ("tags_first", r"1girl, hatsune miku, vocaloid, smile, aqua hair, star \(symbol\), A girl \(in blue\) sings., "
                   "masterpiece, best quality, highres, sensitive <lora:miku:0.7>"),
    ("nl_first", r"1girl, hatsune miku, vocaloid, A girl \(in blue\) sings., smile, aqua hair, star \(symbol\), "
                 "masterpiece, best quality, highres, sensitive <lora:miku:0.7>"),
    ("tags_only", r"1girl, hatsune miku, vocaloid, smile, aqua hair, star \(symbol\), masterpiece, best quality, "
                  "highres, sensitive <lora:miku:0.7>"),
    ("nl_only", r"A girl \(in blue\) sings. <lora:miku:0.7>"),
])
def test_templates_rebuild_in_the_models_order_and_keep_extra_networks(template, expected):
    out = compose(PROMPT, NEW, NL, template)
    assert out.prompt == expected
    assert out.tags == (() if template == "nl_only" else ("aqua hair", "star (symbol)", "best quality"))


def test_insert_is_the_default_and_bad_names_are_clear():
    assert UpsampleSettings().output_format == "insert"
    with pytest.raises(SettingsError, match="output_format"):
        UpsampleSettings(output_format="poem")
    with pytest.raises(ValueError, match="output format"):
        compose("a", [], "", "poem")
