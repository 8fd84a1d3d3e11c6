"""Whatever is stored for our settings (config.json, ``POST /sdapi/v1/options``), the WebUI starts, every panel is
built, and the value used is checked: a value that does not fit falls back to the default with one warning line."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib_tagger.settings import DEFAULT_MODEL, UpsampleSettings
from tests.asgi_client import Client
from tests.host_double.harness import install, start_webui


@pytest.fixture
def stored():
    """``shared.opts`` as the host keeps it between starts; put back afterwards."""
    install()
    from modules import shared

    from tagger_webui import settings_page

    saved = dict(shared.opts.data)
    settings_page._warned.clear()  # each test sees its own first warning
    yield shared.opts
    shared.opts.data.clear()
    shared.opts.data.update(saved)


def accordion_defaults(webui, tab: str = "txt2img") -> UpsampleSettings:
    return UpsampleSettings.from_args(*[c.value for c in webui.tabs[tab].script.controls])


@pytest.mark.parametrize(("key", "value"), [("tagger_default_model", ""), ("tagger_default_model", "   "),
                                            ("tagger_default_preset", "wild"), ("tagger_default_model", 42)])
def test_a_setting_saved_over_the_api_does_not_stop_the_next_start(webui, stored, capsys, key, value):
    response = Client(webui.app).post("/sdapi/v1/options", json={key: value})
    assert response.status_code == 200 and stored.data[key] == value  # the host takes it and keeps it
    capsys.readouterr()
    restarted = start_webui()  # the host's start-up calls ui() again for the API's default args
    assert accordion_defaults(restarted) == UpsampleSettings()
    warnings = [line for line in capsys.readouterr().err.splitlines() if key in line]
    assert len(warnings) == 1, warnings  # once, however often it is read
    assert "using the default" in warnings[0] and "Settings → Tagger" in warnings[0]


def test_odd_joytag_values_keep_the_caption_panel_and_use_the_defaults(stored, capsys):
    from tagger_webui import interrogate_service, settings_page

    stored.data.update({"tagger_joytag_threshold": 7, "tagger_joytag_top_k": -3, "tagger_joytag_batch_size": 0,
                        "tagger_joytag_sort": None, "tagger_joytag_prompt_mode": ["x"]})
    restarted = start_webui()
    from tests.test_webui_joytag_ui import img2img_page

    interrogate_service.configure(options=settings_page.value)  # as the extension's start does (other tests replace it)
    page = img2img_page()
    assert any(getattr(block, "elem_id", None) == "tagger_caption_panel" for block in page.demo.blocks.values())
    used = interrogate_service.get_service().settings()
    assert (used.options.threshold, used.options.top_k, used.batch_size, used.options.sort, used.prompt_mode) == (
        0.4, 0, 8, "confidence", "replace")
    assert restarted is not None and settings_page.value("tagger_joytag_threshold") == 0.4
    err = capsys.readouterr().err
    for key in ("tagger_joytag_threshold", "tagger_joytag_top_k", "tagger_joytag_batch_size"):
        assert sum(key in line for line in err.splitlines()) == 1


def test_a_number_as_the_models_folder_creates_no_folder(webui, stored, tmp_path, monkeypatch):
    from tagger_webui import settings_page

    monkeypatch.chdir(tmp_path)
    stored.data["tagger_models_dir"] = 123
    assert settings_page.models_dir() == settings_page.host.default_models_dir()
    assert settings_page.manager_options()["models_dir"] == settings_page.host.default_models_dir()
    assert not (tmp_path / "123").exists()


def test_settings_that_decide_which_files_load_cannot_be_changed_over_the_api(webui, stored):
    before = {key: stored.data[key] for key in ("tagger_models_dir", "tagger_api_any_model_path",
                                                "tagger_joytag_model")}
    response = Client(webui.app).post("/sdapi/v1/options", json={
        "tagger_models_dir": "/", "tagger_api_any_model_path": True, "tagger_joytag_model": "/etc"})
    assert response.status_code == 200
    assert {key: stored.data[key] for key in before} == before
    stored.set("tagger_api_any_model_path", True)  # the Settings page can
    assert stored.data["tagger_api_any_model_path"] is True


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_any_stored_value_of_any_of_our_settings_reads_as_a_usable_value(webui, stored, data):
    from tagger_webui import interrogate_service, settings_page

    keys = list(settings_page.DEFAULTS) + list(interrogate_service.OPTION_DEFAULTS)
    key = data.draw(st.sampled_from(keys))
    raw = data.draw(json_values | st.sampled_from([settings_page.default(key)]))
    stored.data[key] = json.loads(json.dumps(raw)) if raw == raw else raw  # what a JSON file can hold
    got = settings_page.value(key)
    assert got == settings_page.default(key) or type(got) is type(settings_page.default(key))
    settings_page.default_settings()  # the accordion's defaults
    settings_page.manager_options()
    interrogate_service.settings_from_options(settings_page.value, None)  # JoyTag's settings and options
    stored.data[key] = settings_page.default(key)


def test_valid_values_are_used_as_they_are(webui, stored):
    from tagger_webui import interrogate_service, settings_page

    stored.data.update({"tagger_default_model": " dantaggen-beta ", "tagger_joytag_batch_size": 16.0,
                        "tagger_joytag_threshold": 1, "tagger_device": "cpu"})
    assert settings_page.default_settings().model == "dantaggen-beta"
    assert settings_page.manager_options()["device"] == "cpu"
    used = interrogate_service.settings_from_options(settings_page.value, None)
    assert (used.batch_size, used.options.threshold) == (16, 1.0)
    assert DEFAULT_MODEL != "dantaggen-beta"
