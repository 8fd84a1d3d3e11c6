"""TIPO in the WebUI (host double): the NL prompt in infotext and paste, the X/Y/Z axes, old
positional API args, controls shown per model family, and a real TIPO model failing safely."""

from __future__ import annotations

import gradio as gr

from lib_tagger.settings import FIELD_ORDER, UpsampleSettings
from tests.test_webui_infotext import pasted_values

NL = "A girl sings, under blue lights: on stage."


def test_nl_prompt_round_trip_restores_prompt_and_nl_prompt_without_double_text(webui, pipeline):
    settings = UpsampleSettings(enabled=True, model="tipo-500m-ft", nl_prompt=NL, task="extend_both",
                                nl_length="short", nl_position="new_line")
    first, _ = webui.run("txt2img", settings.to_args(), prompt="1girl, (solo:1.2)", seed=7, batch_size=2)
    assert first.images[1].prompt == f"1girl, (solo:1.2), tag_8, {NL}"
    text = first.infotexts[1]
    assert f'Tagger nl prompt: "{NL}"' in text and "Tagger task: extend_both" in text
    assert "Tagger nl length: short" in text and "Tagger nl position: new_line" in text

    values = pasted_values(webui, "txt2img", text)
    assert values["prompt"] == "1girl, (solo:1.2)"  # the user's prompt, not the upsampled one
    assert (values["nl_prompt"], values["task"], values["nl_length"], values["nl_position"]) == (
        NL, "extend_both", "short", "new_line")
    tab = webui.tabs["txt2img"]
    again, _ = webui.run("txt2img", script_args=tab.script_args([values[n] for n in FIELD_ORDER]),
                         prompt=values["prompt"], seed=8)
    assert again.images[0].prompt == first.images[1].prompt
    assert again.infotexts[0].split("\n")[0].count(NL) == 1


def test_pasting_infotext_without_tipo_settings_resets_them(webui, pipeline):
    first, _ = webui.run("txt2img", UpsampleSettings(enabled=True).to_args(), prompt="cat", seed=1)
    values = pasted_values(webui, "txt2img", first.infotexts[0])
    assert (values["nl_prompt"], values["task"], values["nl_length"]) == ("", "extend_tags", "long")


def test_old_positional_args_still_work(webui, pipeline):
    old = UpsampleSettings(enabled=True, length="short").to_args()[: FIELD_ORDER.index("nl_prompt")]
    processed, _ = webui.run("txt2img", old, prompt="cat", seed=3)
    assert processed.images[0].prompt == "cat, tag_3"
    used = pipeline.calls[0]["settings"]
    assert used.length == "short" and used.task == "extend_tags" and used.nl_prompt == ""


def test_xyz_axes_for_task_and_caption_length(webui, pipeline):
    from modules import processing

    from tagger_webui import host

    xyz = host.xyz_grid_module()
    task = next(opt for opt in xyz.axis_options if opt.label == "[Tagger] Task")
    caption = next(opt for opt in xyz.axis_options if opt.label == "[Tagger] Caption length")
    assert task.choices() == ["extend_tags", "add_caption", "caption_to_tags", "extend_both"]
    assert "very_short" in caption.choices()
    tab = webui.tabs["txt2img"]
    p = processing.StableDiffusionProcessingTxt2Img(prompt="1girl", seed=1)
    p.scripts = tab.runner
    p.script_args = tuple(tab.script_args(UpsampleSettings(enabled=False, model="tipo-100m").to_args()))
    xyz.run_cell(p, task, "add_caption", ["add_caption"],
                 lambda pc: xyz.run_cell(pc, caption, "very_short", ["very_short"], processing.process_images))
    used = pipeline.calls[0]["settings"]
    assert used.enabled and (used.task, used.nl_length, used.model) == ("add_caption", "very_short", "tipo-100m")


def test_tipo_controls_show_only_for_tipo_and_identity_only_for_dart_sft(webui):
    from tagger_webui.ui import shown_for

    assert shown_for("tipo-500m-ft") == (True, False)
    assert shown_for("dart-v2-moe-sft") == (False, True)
    assert shown_for("dart-v2-base") == (False, False)
    assert shown_for("dantaggen-delta-rev2") == (False, False)
    assert shown_for("/no/such/model/yet") == (True, True)  # a path being typed: show everything

    with gr.Blocks():
        controls = webui.tabs["txt2img"].script.ui(False)
    by_name = dict(zip(FIELD_ORDER, controls))
    assert by_name["identity"].visible is True  # the default model is Dart v2 SFT
    config = webui.demo.get_config_file()
    group = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "tagger_txt2img_tipo")
    assert group["props"].get("visible") is False
    model_id = next(c["id"] for c in config["components"]
                    if c.get("props", {}).get("elem_id") == "tagger_txt2img_model")
    wired = [d for d in config["dependencies"] if d.get("inputs") == [model_id]]
    assert any(group["id"] in d["outputs"] for d in wired)


def test_a_real_tipo_folder_with_a_broken_tokenizer_leaves_prompts_untouched(webui, tmp_path, capsys):
    from tests.factories.tipo_models import make_tipo_folder

    folder = make_tipo_folder(tmp_path / "TIPO-broken")
    (folder / "tokenizer.model").write_bytes(b"\x00not a model")
    settings = UpsampleSettings(enabled=True, model=str(folder), nl_prompt=NL, task="add_caption")
    processed, _ = webui.run("txt2img", settings.to_args(), prompt="1girl, solo", seed=3, batch_size=2)
    assert [img.prompt for img in processed.images] == ["1girl, solo"] * 2
    assert "Tagger: upsampling failed, prompts left unchanged" in capsys.readouterr().err
    assert all('Tagger error: "ModelLoadError: cannot load tokenizer' in text and "tokenizer.model" in text
               for text in processed.infotexts)
