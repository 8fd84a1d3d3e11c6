"""Building the accordion (gradio 3.41 in the a1111 venv, 4.40 in the forge venv), its wiring,
the "Upsample now" preview, the Settings page and the model manager it configures."""

from __future__ import annotations

import json

import gradio as gr

from lib_tagger.settings import FIELD_ORDER, UpsampleSettings
from tagger_webui.interrogate_service import OPTION_DEFAULTS
from tests.host_double.harness import install


def test_controls_follow_field_order_and_default_to_valid_disabled_settings(webui):
    for tab in ("txt2img", "img2img"):
        script = webui.tabs[tab].script
        assert len(script.controls) == len(FIELD_ORDER)
        values = [c.value for c in script.controls]
        settings = UpsampleSettings.from_args(*values)
        assert settings == UpsampleSettings(enabled=False)
        assert script.controls[0].accordion is not None  # the enable checkbox is the accordion's


def test_elem_ids_are_unique_across_tabs(webui):
    ids = [c.elem_id for tab in webui.tabs.values() for c in tab.script.controls]
    assert len(ids) == len(set(ids))
    assert "tagger_txt2img_enabled-checkbox" in ids and "tagger_img2img_model" in ids


def test_ui_can_be_built_again_and_again_in_fresh_blocks(webui):
    script = webui.tabs["txt2img"].script
    for _ in range(2):
        with gr.Blocks():
            controls = script.ui(False)
        assert [type(c) for c in controls] == [type(c) for c in script.controls]
        assert UpsampleSettings.from_args(*[c.value for c in controls]).enabled is False


def test_model_dropdown_lists_registry_and_accepts_a_path(webui):
    from lib_tagger.models.registry import model_names

    model = webui.tabs["txt2img"].script.controls[FIELD_ORDER.index("model")]
    choices = [c[0] if isinstance(c, tuple) else c for c in model.choices]
    assert choices == model_names()
    assert model.allow_custom_value is True


def test_upsample_now_is_wired_to_the_tabs_prompt_width_and_height(webui):
    tab = webui.tabs["img2img"]
    config = webui.demo.get_config_file()
    wanted = {tab.prompt._id, tab.width._id, tab.height._id}
    preview_id = next(c["id"] for c in config["components"]
                      if c.get("props", {}).get("elem_id") == "tagger_img2img_preview")
    deps = [d for d in config["dependencies"] if preview_id in (d.get("outputs") or [])]
    assert deps and wanted <= set(deps[0]["inputs"])
    assert len(deps[0]["inputs"]) == 3 + len(FIELD_ORDER)


def test_preview_returns_the_new_prompt_and_details(webui, monkeypatch):
    from tagger_webui import script
    from tests.host_double.harness import RecordingPipeline

    fake = RecordingPipeline()
    monkeypatch.setattr(script, "upsample", fake)
    values = UpsampleSettings(seed_mode="fixed", seed=12).to_args()  # disabled: the button works anyway
    prompt, details = script.preview_prompt("txt2img", "1girl", 640.0, 960.0, values)
    assert prompt == "1girl, tag_12"
    assert details.startswith("#0 seed 12 (0.01s): tag_12\nmodel input: <1girl>")
    assert fake.calls[0]["size"] == (640, 960)
    assert script.last_result("txt2img") == details


def test_preview_error_is_shown_not_raised(webui, monkeypatch, capsys):
    from tagger_webui import script
    from tests.host_double.harness import RecordingPipeline

    monkeypatch.setattr(script, "upsample", RecordingPipeline(FileNotFoundError("no model at /x")))
    prompt, details = script.preview_prompt("img2img", "1girl", 512, 512, UpsampleSettings().to_args())
    assert prompt == details == "Tagger error: FileNotFoundError: no model at /x"
    assert "Tagger: preview failed" in capsys.readouterr().err


def test_settings_page_section_and_manager_configuration(webui, tmp_path):
    install()
    from modules import devices, paths_internal, shared

    from lib_tagger.models.manager import get_manager
    from tagger_webui import settings_page

    keys = [k for k, v in shared.opts.data_labels.items() if v.section == ("tagger", "Tagger")]
    assert keys == list(settings_page.DEFAULTS) + list(OPTION_DEFAULTS)
    assert all(shared.opts.data_labels[k].default == v for k, v in OPTION_DEFAULTS.items())
    assert settings_page.manager_options()["models_dir"] == f"{paths_internal.models_path}/tagger"

    shared.opts.set("tagger_models_dir", str(tmp_path))
    shared.opts.set("tagger_keep_loaded", False)
    shared.opts.set("tagger_device", "cpu")
    try:
        manager = get_manager()
        assert (manager.models_dir, manager.keep_loaded, manager.device) == (str(tmp_path), False, "cpu")
        devices.calls.clear()
        manager.before_load()
        assert devices.calls == ["send_everything_to_cpu", "torch_gc"]
    finally:
        for key in ("tagger_models_dir", "tagger_keep_loaded", "tagger_device"):
            shared.opts.set(key, settings_page.DEFAULTS[key])


def test_settings_section_has_its_own_category_not_uncategorized(webui):
    from modules import options, shared

    from tagger_webui import settings_page

    assert options.categories.mapping["tagger"].label == "Tagger"
    ours = [key for key, item in shared.opts.data_labels.items() if item.section == settings_page.SECTION]
    assert ours and all(shared.opts.data_labels[key].category_id == "tagger" for key in ours)
    headings = json.loads(shared.opts.dumpjson())["_categories"]
    assert ["Tagger", "Tagger"] in headings  # the heading "Tagger" above our section
    assert ["Interrogate", "Uncategorized"] in headings and ["Tagger", "Uncategorized"] not in headings
    # ordered as the Settings page lists them: the built-in categories, ours (registered later), then the rest
    sections = list(dict.fromkeys(item.section[1] for item in shared.opts.data_labels.values()))
    assert sections == ["Infotext", "System", "Tagger", "Interrogate"]


def test_settings_work_on_a_host_without_categories(webui, monkeypatch):
    """Before A1111 1.7 there is no ``categories`` and OptionInfo takes no ``category_id``."""
    from modules import options, shared

    from tagger_webui import settings_page

    class OldOptionInfo(options.OptionInfo):
        def __init__(self, default=None, label="", component=None, component_args=None, onchange=None,
                     section=None, refresh=None, comment_before="", comment_after=""):
            super().__init__(default, label, component, component_args, onchange, section, refresh,
                             comment_before, comment_after)

    monkeypatch.delattr(options, "categories")
    monkeypatch.setattr(shared, "OptionInfo", OldOptionInfo)
    monkeypatch.setattr(shared, "opts", options.Options({}))
    settings_page.register_options()
    labels = shared.opts.data_labels
    assert list(labels) == list(settings_page.DEFAULTS) + list(OPTION_DEFAULTS)
    assert all(item.section == settings_page.SECTION and item.category_id is None for item in labels.values())
    assert "(off: unload after each use to free RAM/VRAM)" in labels["tagger_keep_loaded"].comment_after


def test_default_model_and_preset_options_feed_the_ui(webui):
    from modules import shared

    shared.opts.set("tagger_default_model", "dantaggen-beta")
    shared.opts.set("tagger_default_preset", "focused")
    try:
        with gr.Blocks():
            controls = webui.tabs["txt2img"].script.ui(False)
    finally:
        shared.opts.set("tagger_default_model", "dart-v2-moe-sft")
        shared.opts.set("tagger_default_preset", "custom")
    settings = UpsampleSettings.from_args(*[c.value for c in controls])
    assert (settings.model, settings.preset) == ("dantaggen-beta", "focused")


def test_apply_to_prompt_and_its_undo(webui):
    from tagger_webui import ui

    prompt, enabled, applied_over, undo = ui.apply_preview("1girl", "1girl, smile", "1girl")
    assert (prompt, enabled, applied_over) == ("1girl, smile", False, "1girl") and undo["visible"] is True
    prompt, enabled, applied_over, undo = ui.undo_apply("1girl")
    assert (prompt, enabled, applied_over) == ("1girl", True, None) and undo["visible"] is False


def test_apply_to_prompt_keeps_everything_without_a_fresh_preview(webui, monkeypatch):
    import gradio as gr

    from tagger_webui import ui

    warnings = []
    monkeypatch.setattr(gr, "Warning", warnings.append)
    for args in (("1girl", "", None), ("1girl", "Tagger error: FileNotFoundError: x", "1girl"),
                 ("1girl, edited", "1girl, smile", "1girl")):
        assert all(set(update) <= {"__type__"} for update in ui.apply_preview(*args)), args
    assert [w.split(":")[1].strip() for w in warnings] == ["nothing to apply yet", "nothing to apply yet",
                                                           "the prompt changed after 'Upsample now'"]


def test_apply_and_undo_are_wired_to_the_tabs_prompt_and_accordion(webui):
    config = webui.demo.get_config_file()
    ids = {c.get("props", {}).get("elem_id"): c["id"] for c in config["components"]}
    tab = webui.tabs["txt2img"]
    for button in ("tagger_txt2img_apply_button", "tagger_txt2img_undo_apply"):
        deps = [d for d in config["dependencies"]  # targets: ids (gradio 3), (id, event) pairs (gradio 4)
                if ids[button] in [t if isinstance(t, int) else t[0] for t in d.get("targets", [])]]
        assert deps and tab.prompt._id in deps[0]["outputs"]
        assert tab.script.controls[0]._id in deps[0]["outputs"]  # the accordion's checkbox
