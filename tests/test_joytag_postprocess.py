"""From scores to prompt text: threshold, exclude, always-add, top-k, sorting, kaomoji, escaping."""

from __future__ import annotations

import pytest

from lib_tagger.interrogate.postprocess import (
    DEFAULT_EXCLUDE,
    OptionsError,
    TagOptions,
    display_name,
    format_tags,
    model_form,
    select_tags,
)
from tests.factories.joytag_model import real_data_file

SCORES = {
    "1girl": 0.99, "long_hair": 0.8, "kamina_(ttgl)": 0.7, "^_^": 0.65, "commission": 0.9,
    "skeb_commission": 0.85, "smile": 0.41, "solo": 0.4, "blush": 0.1, "tengen_toppa_gurren_lagann": 0.5,
}
CATEGORIES = {"kamina_(ttgl)": "character", "tengen_toppa_gurren_lagann": "copyright"}


def names(selected):
    return [tag for tag, _ in selected]


def test_defaults_threshold_and_exclusions():
    selected = select_tags(SCORES, TagOptions())
    # > 0.4 only; commission and skeb_commission (wildcard) excluded; by confidence
    assert names(selected) == [
        "1girl", "long_hair", "kamina_(ttgl)", "^_^", "tengen_toppa_gurren_lagann", "smile"
    ]
    assert format_tags(selected, TagOptions()) == (
        "1girl, long hair, kamina \\(ttgl\\), ^_^, tengen toppa gurren lagann, smile"
    )


def test_threshold_zero_keeps_everything_when_nothing_is_excluded():
    assert len(select_tags(SCORES, TagOptions(threshold=0.0, exclude=()))) == len(SCORES)


def test_exclude_accepts_spaces_escapes_and_wildcards():
    options = TagOptions(exclude=("Long Hair", "kamina \\(ttgl\\)", "tengen*"))
    assert names(select_tags(SCORES, options)) == ["1girl", "commission", "skeb_commission", "^_^", "smile"]


def test_exclude_from_a_comma_string():
    options = TagOptions(exclude="1girl, long hair\ncommission")
    assert options.exclude == ("1girl", "long hair", "commission")


def test_always_add_goes_first_once_and_ignores_threshold():
    options = TagOptions(always_add=("masterpiece", "long hair"), top_k=2, weighted=True)
    selected = select_tags(SCORES, options)
    assert names(selected) == ["masterpiece", "long_hair", "1girl", "kamina_(ttgl)"]
    assert format_tags(selected, options) == "masterpiece, long hair, (1girl:0.99), (kamina \\(ttgl\\):0.70)"


def test_top_k_keeps_the_most_confident_before_sorting_alphabetically():
    options = TagOptions(top_k=3, sort="alphabetical")
    assert names(select_tags(SCORES, options)) == ["1girl", "kamina_(ttgl)", "long_hair"]


def test_identity_first_uses_categories_and_keeps_order_inside_groups():
    options = TagOptions(identity_first=True)
    selected = select_tags(SCORES, options, categories=CATEGORIES.get)
    assert names(selected)[:2] == ["kamina_(ttgl)", "tengen_toppa_gurren_lagann"]
    assert names(selected)[2:] == ["1girl", "long_hair", "^_^", "smile"]


def test_kaomoji_keep_underscores_and_other_names_can_too():
    options = TagOptions()
    assert display_name(">_<", options) == ">_<"
    assert display_name("o_o", options) == "o_o"
    assert display_name("looking_at_viewer", options) == "looking at viewer"
    assert display_name("looking_at_viewer", TagOptions(replace_underscores=False)) == "looking_at_viewer"


def test_escaping_brackets_and_backslashes():
    assert display_name(">:(", TagOptions()) == ">:\\("
    assert display_name("\\m/", TagOptions()) == "\\\\m/"
    assert display_name("kamina_(ttgl)", TagOptions(escape_brackets=False)) == "kamina (ttgl)"


def test_model_form_round_trips_display_names_of_the_real_vocabulary():
    tags = real_data_file("top_tags.txt").read_text(encoding="utf-8").split()
    options = TagOptions()
    assert len(tags) == 5813
    for tag in tags:
        assert model_form(display_name(tag, options)) == tag


def test_default_exclude_only_hits_source_tags():
    tags = real_data_file("top_tags.txt").read_text(encoding="utf-8").split()
    options = TagOptions(threshold=0.0)
    dropped = set(tags) - set(names(select_tags(dict.fromkeys(tags, 0.5), options)))
    assert {"commission", "skeb_commission", "paid_reward", "photoshop_(medium)"} <= dropped
    assert not {"watercolor_(medium)", "signature", "watermark", "1girl"} & dropped
    assert len(dropped) < 40
    assert TagOptions().exclude == DEFAULT_EXCLUDE


@pytest.mark.parametrize(
    ("field", "value"),
    [("threshold", 1.5), ("threshold", "high"), ("top_k", -1), ("top_k", 2.5), ("sort", "random"),
     ("exclude", (1, 2))],
)
def test_bad_options_name_the_field(field, value):
    with pytest.raises(OptionsError, match=f"TagOptions.{field}"):
        TagOptions(**{field: value})


def test_from_dict_rejects_unknown_fields():
    assert TagOptions.from_dict({"threshold": 0.3}).threshold == 0.3
    with pytest.raises(OptionsError, match="thresold"):
        TagOptions.from_dict({"thresold": 0.3})
