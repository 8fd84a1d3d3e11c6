"""Per-category thresholds, MCut and the rating tag, pinned on known score vectors; option parsing."""

from __future__ import annotations

import pytest

from lib_tagger.interrogate.base import Labels, Prediction, split_predictions
from lib_tagger.interrogate.postprocess import (
    MCUT_FLOOR,
    OptionsError,
    TagOptions,
    category_thresholds,
    describe,
    mcut_threshold,
    option_names,
    select_tags,
)

CATEGORY = {"1girl": "general", "solo": "general", "smile": "general", "hat": "general", "bow": "general",
            "hatsune_miku": "character", "kamina_(ttgl)": "character", "vocaloid": "copyright"}
SCORES = {"1girl": 0.9, "solo": 0.8, "smile": 0.3, "hat": 0.2, "bow": 0.1,
          "hatsune_miku": 0.7, "kamina_(ttgl)": 0.45, "vocaloid": 0.5}


def names(selected):
    return [tag for tag, _ in selected]


def prediction(scores=SCORES, ratings=None) -> Prediction:
    return Prediction(dict(scores), dict(ratings or {}), CATEGORY)


def test_mcut_is_the_middle_of_the_largest_gap():
    assert mcut_threshold([0.9, 0.8, 0.3, 0.2, 0.1]) == pytest.approx(0.55)  # gaps .1 .5 .1 .1
    assert mcut_threshold([0.1, 0.9, 0.2]) == pytest.approx(0.55)  # order does not matter
    assert mcut_threshold([0.75, 0.5, 0.25, 0.0]) == 0.625  # equal gaps: the first, highest
    assert mcut_threshold([0.7]) is None and mcut_threshold([]) is None


def test_one_threshold_for_every_category_by_default():
    assert names(select_tags(prediction(), TagOptions(threshold=0.4, exclude=()))) == [
        "1girl", "solo", "hatsune_miku", "vocaloid", "kamina_(ttgl)"]


def test_a_category_threshold_overrides_only_its_category():
    options = TagOptions(threshold=0.25, category_thresholds={"character": 0.6}, exclude=())
    assert names(select_tags(prediction(), options)) == ["1girl", "solo", "hatsune_miku", "vocaloid", "smile"]
    assert options.threshold_for("character") == 0.6 and options.threshold_for("copyright") == 0.25
    assert options.threshold_for(None) == 0.25  # unknown categories count as general


def test_mcut_per_category():
    scores = {**SCORES, "hatsune_miku": 0.95, "kamina_(ttgl)": 0.05}
    options = TagOptions(threshold=0.15, mcut=("general",), exclude=())
    thresholds = category_thresholds(scores, options, CATEGORY.get)
    assert thresholds["general"] == pytest.approx(0.55) and thresholds["character"] == 0.15
    # general cut at 0.55 (1girl, solo); character keeps its fixed 0.15 (miku only); copyright 0.15
    assert names(select_tags(prediction(scores), options)) == ["hatsune_miku", "1girl", "solo", "vocaloid"]
    both = TagOptions(threshold=0.15, mcut="general, character", exclude=())
    assert category_thresholds(scores, both, CATEGORY.get)["character"] == pytest.approx(0.5)


def test_character_mcut_never_drops_below_its_floor():
    scores = {"hatsune_miku": 0.06, "kamina_(ttgl)": 0.01, "1girl": 0.9}
    options = TagOptions(mcut="character", exclude=())
    assert category_thresholds(scores, options, CATEGORY.get)["character"] == MCUT_FLOOR["character"]
    assert names(select_tags(prediction(scores), options)) == ["1girl"]


def test_mcut_with_one_score_falls_back_to_the_fixed_threshold():
    options = TagOptions(threshold=0.5, mcut="all", exclude=())
    assert category_thresholds(SCORES, options, CATEGORY.get)["copyright"] == 0.5


def test_the_rating_tag_comes_after_always_add_and_outside_top_k():
    ratings = {"general": 0.2, "sensitive": 0.7, "questionable": 0.05, "explicit": 0.01}
    options = TagOptions(threshold=0.4, rating_tag=True, top_k=2, always_add="masterpiece", exclude=())
    selected = select_tags(prediction(ratings=ratings), options)
    assert selected == [("masterpiece", 1.0), ("sensitive", 0.7), ("1girl", 0.9), ("solo", 0.8)]
    result = describe(prediction(ratings=ratings), options)
    assert result.caption == "masterpiece, sensitive, 1girl, solo"
    assert result.rating == "sensitive" and result.ratings == ratings
    assert describe(prediction(), options).rating is None  # no rating head: nothing written


def test_identity_first_uses_the_prediction_categories():
    options = TagOptions(threshold=0.4, identity_first=True, exclude=())
    assert names(select_tags(prediction(), options)) == [
        "hatsune_miku", "kamina_(ttgl)", "vocaloid", "1girl", "solo"]


def test_split_predictions_sets_ratings_apart():
    labels = Labels(("general", "explicit", "1girl", "miku"), ("rating", "rating", "general", "character"))
    [result] = split_predictions([[0.8, 0.1, 0.6, 0.3]], labels)
    assert result.ratings == {"general": 0.8, "explicit": 0.1}
    assert result.scores == {"1girl": 0.6, "miku": 0.3}
    assert result.categories == {"1girl": "general", "miku": "character"} and result.rating == "general"


@pytest.mark.parametrize(("value", "expected"), [
    ("character=0.85", (("character", 0.85),)),
    ({"artist": 0.6, "character": 0.85}, (("artist", 0.6), ("character", 0.85))),
    ([("Character", 1)], (("character", 1.0),)),
    ("", ()),
])
def test_category_thresholds_parse(value, expected):
    assert TagOptions(category_thresholds=value).category_thresholds == expected


@pytest.mark.parametrize(("field", "value", "says"), [
    ("category_thresholds", "character", "not category=number"),
    ("category_thresholds", "hair=0.5", "unknown category 'hair'"),
    ("category_thresholds", {"character": 1.5}, r"category_thresholds\[character\]"),
    ("mcut", "general, colour", "unknown category colour"),
    ("mcut", [None], "expected category names"),  # what a hand-edited config.json may hold
    ("mcut", 7, "expected category names"),
])
def test_bad_category_options_name_the_field(field, value, says):
    with pytest.raises(OptionsError, match=says):
        TagOptions(**{field: value})


def test_to_dict_round_trips_and_names_every_field():
    options = TagOptions(threshold=0.3, category_thresholds="character=0.8", mcut="general", rating_tag=True)
    assert list(options.to_dict()) == option_names()
    assert TagOptions.from_dict(options.to_dict()) == options
