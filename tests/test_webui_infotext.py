"""Infotext written by a job, pasted back into the UI, and regenerated without double tags."""

from __future__ import annotations

from lib_tagger.settings import FIELD_ORDER, UpsampleSettings


def pasted_values(webui, tab: str, infotext: str) -> dict:
    """Paste ``infotext`` into ``tab``: {"prompt": ..., setting name: value} for fields that changed."""
    from modules import infotext_utils

    t = webui.tabs[tab]
    fields = t.paste_fields()
    updates = infotext_utils.paste(infotext, fields)
    names = {id(t.prompt): "prompt"}
    names.update({id(c): name for name, c in zip(FIELD_ORDER, t.script.controls)})
    return {names[id(comp)]: upd["value"] for (comp, _), upd in zip(fields, updates)
            if "value" in upd and id(comp) in names}


def test_infotext_records_settings_model_and_original_prompt(webui, pipeline):
    settings = UpsampleSettings(enabled=True, length="short", rating="general", temperature=0.7,
                                ban_tags="hat, sky")
    processed, _ = webui.run("txt2img", settings.to_args(), prompt="1girl, (solo:1.2)", seed=42)
    text = processed.infotexts[0]
    assert text.startswith("1girl, (solo:1.2), tag_42\n")
    assert "Tagger model: dart-v2-moe-sft" in text
    assert "Tagger length: short" in text and "Tagger rating: general" in text
    assert 'Tagger ban tags: "hat, sky"' in text
    assert 'Tagger original prompt: "1girl, (solo:1.2)"' in text


def test_paste_restores_settings_and_original_prompt_and_regenerates_the_same(webui, pipeline):
    settings = UpsampleSettings(enabled=True, model="dantaggen-gamma", length="very_long", top_k=40,
                                identity="lax", ban_tags="hat, sky")
    first, _ = webui.run("txt2img", settings.to_args(), prompt="1girl, solo", seed=77, batch_size=2)
    values = pasted_values(webui, "txt2img", first.infotexts[1])
    assert values["prompt"] == "1girl, solo"  # not the upsampled one
    assert values["enabled"] is True
    assert values["model"] == "dantaggen-gamma" and values["length"] == "very_long"
    assert values["top_k"] == 40 and values["identity"] == "lax" and values["ban_tags"] == "hat, sky"
    assert values["temperature"] == 1.0  # absent from infotext: back to the default

    tab = webui.tabs["txt2img"]
    restored = [values[name] for name in FIELD_ORDER]
    again, _ = webui.run("txt2img", script_args=tab.script_args(restored), prompt=values["prompt"], seed=78)
    assert again.images[0].prompt == first.images[1].prompt == "1girl, solo, tag_78"
    assert again.infotexts[0].count("tag_78") == 1


def test_paste_of_a_fixed_seed_image_reproduces_its_tags(webui, pipeline):
    settings = UpsampleSettings(enabled=True, seed_mode="fixed", seed=500)
    first, _ = webui.run("txt2img", settings.to_args(), prompt="cat", seed=1, batch_size=3)
    values = pasted_values(webui, "txt2img", first.infotexts[2])
    assert values["seed_mode"] == "fixed" and values["seed"] == 502
    again, _ = webui.run("txt2img", [values[name] for name in FIELD_ORDER], prompt=values["prompt"], seed=999)
    assert again.images[0].prompt == first.images[2].prompt == "cat, tag_502"


def test_paste_without_our_settings_closes_the_accordion_and_leaves_the_rest(webui):
    values = pasted_values(webui, "txt2img", "1girl\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1")
    assert values == {"prompt": "1girl", "enabled": False}


def test_separate_hires_prompt_original_is_restored_on_paste(webui, pipeline, monkeypatch):
    from tagger_webui import script

    monkeypatch.setattr(script, "insert_same", lambda prompt, result, _: f"{prompt}, {', '.join(result.new_tags)}")
    processed, _ = webui.run("txt2img", UpsampleSettings(enabled=True).to_args(), prompt="1girl", seed=5,
                             enable_hr=True, hr_prompt="1girl, detailed")
    assert processed.images[0].hr_prompt == "1girl, detailed, tag_5"
    assert 'Hires prompt: "1girl, detailed, tag_5"' in processed.infotexts[0]

    from modules import infotext_utils, script_callbacks

    params = infotext_utils.parse_generation_parameters(processed.infotexts[0])
    script_callbacks.infotext_pasted_callback(processed.infotexts[0], params)
    assert params["Prompt"] == "1girl"
    assert params["Hires prompt"] == "1girl, detailed"


def test_paste_with_styles_found_does_not_apply_them_twice(webui, pipeline):
    from modules import infotext_utils, script_callbacks, shared
    from modules.styles import PromptStyle

    shared.prompt_styles.styles["sig"] = PromptStyle("sig", "{prompt}, tag_3", "bad hands")
    try:
        processed, _ = webui.run("txt2img", UpsampleSettings(enabled=True).to_args(), prompt="1girl", seed=3,
                                 negative_prompt="lowres", styles=["sig"])
        # the host finds the style in the upsampled prompt by accident and strips it
        params = infotext_utils.parse_generation_parameters(processed.infotexts[0])
        assert params["Styles array"] == ["sig"]
        script_callbacks.infotext_pasted_callback(processed.infotexts[0], params)
    finally:
        del shared.prompt_styles.styles["sig"]
    assert params["Prompt"] == "1girl, tag_3"  # the original, styles already in it
    assert "Styles array" not in params
    assert params["Negative prompt"] == "lowres, bad hands"


def test_hires_prompt_of_every_image_of_every_batch_is_its_own(webui, pipeline, monkeypatch):
    """The host's get_hr_prompt indexes the job's hires prompts with the index within the batch."""
    from modules import infotext_utils, script_callbacks

    from tagger_webui import script

    monkeypatch.setattr(script, "insert_same",
                        lambda prompt, result, settings: f"{prompt}, {', '.join(result.new_tags)}")
    processed, p = webui.run("txt2img", UpsampleSettings(enabled=True).to_args(), prompt="1girl", seed=10,
                             batch_size=2, n_iter=2, enable_hr=True, hr_prompt="masterpiece, 1girl, detailed")
    used = [img.hr_prompt for img in processed.images]
    assert used == [f"masterpiece, 1girl, detailed, tag_{s}" for s in (10, 11, 12, 13)]
    for text, hr in zip(processed.infotexts, used):
        params = infotext_utils.parse_generation_parameters(text)
        assert params["Hires prompt"] == hr
        script_callbacks.infotext_pasted_callback(text, params)
        assert params["Hires prompt"] == "masterpiece, 1girl, detailed"
    for index, hr in enumerate(used):  # the host's Processed.infotext: whole lists, global index
        assert infotext_utils.parse_generation_parameters(processed.infotext(p, index))["Hires prompt"] == hr


def test_no_hires_prompt_in_any_infotext_when_it_follows_the_prompt(webui, pipeline):
    from modules import infotext_utils, script_callbacks

    processed, p = webui.run("txt2img", UpsampleSettings(enabled=True).to_args(), prompt="1girl", seed=10,
                             batch_size=2, n_iter=2, enable_hr=True)
    assert [img.hr_prompt for img in processed.images] == [img.prompt for img in processed.images]
    for index, text in enumerate(processed.infotexts):
        assert "Hires prompt" not in text
        assert "Hires prompt" not in processed.infotext(p, index)
        params = infotext_utils.parse_generation_parameters(text)
        script_callbacks.infotext_pasted_callback(text, params)
        assert params["Hires prompt"] == ""
