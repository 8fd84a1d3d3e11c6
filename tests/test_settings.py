"""The one settings model: positional args, named dicts, infotext, validation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lib_tagger.settings import FIELD_ORDER, PRESETS, SettingsError, UpsampleSettings, infotext_key


def test_positional_args_follow_field_order_and_shorter_lists_keep_defaults():
    settings = UpsampleSettings.from_args(True, "dart-v2-sft", "short")
    assert settings.enabled is True
    assert settings.model == "dart-v2-sft"
    assert settings.length == "short"
    assert settings.rating == UpsampleSettings().rating
    full = UpsampleSettings(enabled=True, top_k=7).to_args()
    assert UpsampleSettings.from_args(*full) == UpsampleSettings(enabled=True, top_k=7)


def test_single_dict_is_named_settings():
    settings = UpsampleSettings.from_args({"enabled": True, "model": "dantaggen-delta", "temperature": "0.7"})
    assert settings.model == "dantaggen-delta"
    assert settings.temperature == 0.7


def test_slider_floats_and_strings_are_coerced():
    settings = UpsampleSettings(enabled="true", top_k=50.0, seed="12", max_new_tokens="64")
    assert settings.enabled is True and settings.top_k == 50 and settings.seed == 12
    assert settings.max_new_tokens == 64


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"length": "huge"}, "length"),
        ({"rating": "pg13"}, "rating"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": 2.5}, "top_k"),
        ({"temperature": "hot"}, "temperature"),
        ({"enabled": "maybe"}, "enabled"),
        ({"model": "  "}, "model"),
        ({"preset": "wild"}, "preset"),
        ({"top_k": float("inf")}, "top_k"),
        ({"max_new_tokens": float("-inf")}, "max_new_tokens"),
        ({"top_k": "1e400"}, "top_k"),
        ({"seed": "1e400"}, "seed"),
        ({"seed": float("nan")}, "seed"),
        ({"seed": 2**64}, "seed"),
        ({"seed": -2}, "seed"),
        ({"temperature": float("nan")}, "temperature"),
        ({"model": "x" * 5000}, "model"),
    ],
)
def test_invalid_values_name_the_field(values, field):
    with pytest.raises(SettingsError, match=field):
        UpsampleSettings(**values)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**80), 2**80) | st.floats() | st.text(max_size=12)
    | st.sampled_from(["1e400", "-1e400", "inf", "nan", "12", "0x10", "1_000"]),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner, max_size=2),
    max_leaves=4,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELD_ORDER), json_values, max_size=5))
def test_any_json_values_give_settings_or_a_settings_error(values):
    try:
        made = UpsampleSettings.from_dict(values)
    except SettingsError as exc:
        assert str(exc).split(":")[0] in {*FIELD_ORDER, "unknown setting(s)"}  # names the field
    else:
        assert UpsampleSettings.from_dict(made.to_dict()) == made


def test_unknown_names_and_too_many_args_are_errors():
    with pytest.raises(SettingsError, match="unknown setting"):
        UpsampleSettings.from_dict({"temprature": 1.0})
    with pytest.raises(SettingsError, match="at most"):
        UpsampleSettings.from_args(*range(len(FIELD_ORDER) + 1))


def test_presets_override_sampling_values():
    settings = UpsampleSettings(preset="creative", temperature=0.1)
    assert settings.sampling() == PRESETS["creative"]
    assert UpsampleSettings(temperature=0.3).sampling()[0] == 0.3


def test_ban_list_splits_on_commas_and_newlines():
    assert UpsampleSettings(ban_tags="red hair, *boots\n/^cat.*/,, ").banned() == ("red hair", "*boots", "/^cat.*/")


def test_infotext_round_trip_restores_every_changed_field():
    original = UpsampleSettings(enabled=True, model="dart-v2-sft", length="very_long", rating="sensitive",
                                temperature=0.85, ban_tags="a, b", position="before_break", seed_mode="fixed",
                                seed=42)
    params = original.to_infotext()
    assert params["Tagger model"] == "dart-v2-sft"
    assert params[infotext_key("ban_tags")] == "a, b"
    assert "Tagger top k" not in params  # defaults are not written
    # infotext values come back as strings
    restored = UpsampleSettings.from_infotext({k: str(v) for k, v in params.items()})
    assert restored == original


def test_infotext_without_our_keys_gives_none():
    assert UpsampleSettings.from_infotext({"Steps": "20"}) is None
