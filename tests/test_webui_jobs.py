"""Whole txt2img/img2img jobs through the host double with the Tagger script enabled.

The pipeline is replaced by a recording double here (deterministic: one tag per seed) so that the
adapter's behaviour is checked exactly; tests/test_webui_real_model.py runs the real pipeline."""

from __future__ import annotations

import pytest

from lib_tagger.settings import UpsampleSettings
from tests.host_double.harness import RecordingPipeline


def ours(**changes) -> list:
    return UpsampleSettings(enabled=True, **changes).to_args()


def test_batch_two_by_count_two_gets_four_prompts_from_their_own_seeds(webui, pipeline):
    processed, p = webui.run("txt2img", ours(), prompt="1girl, solo", negative_prompt="lowres", seed=100,
                             batch_size=2, n_iter=2)
    assert [img.seed for img in processed.images] == [100, 101, 102, 103]
    assert [img.prompt for img in processed.images] == [f"1girl, solo, tag_{s}" for s in (100, 101, 102, 103)]
    assert [img.negative_prompt for img in processed.images] == ["lowres"] * 4
    assert pipeline.calls[0]["seeds"] == [100, 101, 102, 103]
    assert pipeline.calls[0]["size"] == (512, 512)
    assert p.prompt == "1girl, solo"  # the user's prompt object is left alone
    assert p.prompt_for_display == "1girl, solo"
    assert p.main_prompt == "1girl, solo, tag_100"


def test_disabled_changes_nothing_and_never_calls_the_pipeline(webui, pipeline):
    processed, _ = webui.run("txt2img", UpsampleSettings(enabled=False).to_args(), prompt="1girl", seed=5)
    assert processed.images[0].prompt == "1girl"
    assert pipeline.calls == []
    assert "Tagger model" not in processed.infotexts[0]


def test_fixed_seed_mode_uses_seed_plus_index_and_records_each(webui, pipeline):
    processed, _ = webui.run("txt2img", ours(seed_mode="fixed", seed=7), prompt="cat", seed=1000, batch_size=3)
    assert pipeline.calls[0]["seeds"] == [7, 8, 9]
    assert [img.prompt for img in processed.images] == ["cat, tag_7", "cat, tag_8", "cat, tag_9"]
    assert "Tagger seed: 8" in processed.infotexts[1]


def test_hires_prompt_follows_the_prompt_when_not_separate(webui, pipeline):
    processed, p = webui.run("txt2img", ours(), prompt="1girl", seed=3, batch_size=2, enable_hr=True)
    assert [img.hr_prompt for img in processed.images] == ["1girl, tag_3", "1girl, tag_4"]
    assert "Hires prompt" not in processed.infotexts[0]  # same as the prompt: the host leaves it out


def test_styles_are_applied_before_per_image_upsampling(webui, pipeline):
    from modules import shared
    from modules.styles import PromptStyle

    shared.prompt_styles.styles["best"] = PromptStyle("best", "masterpiece", "worst quality")
    try:
        processed, _ = webui.run("txt2img", ours(), prompt="1girl", seed=1, styles=["best"])
    finally:
        del shared.prompt_styles.styles["best"]
    assert pipeline.calls[0]["prompts"] == ["1girl, masterpiece"]
    assert processed.images[0].prompt == "1girl, masterpiece, tag_1"
    assert processed.images[0].negative_prompt == "worst quality"


def test_before_styles_timing_rewrites_the_prompt_once_before_styles(webui, pipeline):
    from modules import shared
    from modules.styles import PromptStyle

    shared.prompt_styles.styles["best"] = PromptStyle("best", "masterpiece", "")
    try:
        processed, p = webui.run("txt2img", ours(timing="before_styles"), prompt="1girl", seed=50,
                                 batch_size=2, styles=["best"])
    finally:
        del shared.prompt_styles.styles["best"]
    assert len(pipeline.calls) == 1
    assert pipeline.calls[0]["prompts"] == ["1girl"]
    assert pipeline.calls[0]["seeds"] == [50]
    assert [img.prompt for img in processed.images] == ["1girl, tag_50, masterpiece"] * 2
    assert p.prompt == "1girl, tag_50"
    assert "Tagger original prompt: 1girl" in processed.infotexts[0]


def test_before_styles_with_random_seed_uses_the_images_seed(webui, pipeline):
    processed, _ = webui.run("txt2img", ours(timing="before_styles"), prompt="dog", seed=-1)
    assert pipeline.calls[0]["seeds"] == [processed.images[0].seed]


def test_img2img_job_is_upsampled_too(webui, pipeline):
    processed, _ = webui.run("img2img", ours(), prompt="1boy", seed=9, width=768, height=512)
    assert processed.images[0].prompt == "1boy, tag_9"
    assert pipeline.calls[0]["size"] == (768, 512)


@pytest.mark.parametrize(("error", "expected"), [
    (FileNotFoundError("model path /nowhere does not exist"), True),
    (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), False),
    (ValueError("/m/model.gguf: not a GGUF file (bad magic)"), False),
])
def test_a_failing_backend_leaves_every_prompt_untouched_and_says_so(webui, monkeypatch, capsys, error, expected):
    from tagger_webui import script

    monkeypatch.setattr(script, "upsample", RecordingPipeline(error))
    processed, p = webui.run("txt2img", ours(), prompt="1girl, solo", seed=11, batch_size=2, n_iter=2,
                             enable_hr=True)
    assert [img.prompt for img in processed.images] == ["1girl, solo"] * 4
    assert [img.hr_prompt for img in processed.images] == ["1girl, solo"] * 4
    err = capsys.readouterr().err
    assert f"Tagger: upsampling failed, prompts left unchanged: {type(error).__name__}" in err
    assert ("Traceback" in err) is not expected  # the user can fix a missing file: one line is enough
    if expected:
        assert len(err.strip().splitlines()) == 1
    assert all(f"Tagger error: \"{type(error).__name__}" in text or f"Tagger error: {type(error).__name__}" in text
               for text in processed.infotexts)
    assert "Tagger original prompt" not in processed.infotexts[0]
    assert script.last_result("txt2img").startswith(f"Tagger error: {type(error).__name__}")


def test_invalid_settings_are_reported_and_change_nothing(webui, pipeline, capsys):
    args = ours()
    args[2] = "enormous"  # length
    processed, _ = webui.run("txt2img", args, prompt="1girl", seed=1)
    assert processed.images[0].prompt == "1girl"
    assert pipeline.calls == []
    assert "length: 'enormous' is not one of" in capsys.readouterr().err
    assert "Tagger error: " in processed.infotexts[0]


def test_last_result_lists_each_images_seed_and_tags(webui, pipeline):
    from tagger_webui import script

    webui.run("img2img", ours(), prompt="x", seed=20, batch_size=2)
    assert script.last_result("img2img") == "#0 seed 20 (0.01s): tag_20\n#1 seed 21 (0.01s): tag_21"


def test_xyz_axes_override_model_length_and_temperature_per_cell(webui, pipeline):
    from modules import processing

    from tagger_webui import host

    xyz = host.xyz_grid_module()  # found in scripts_data, as loaded by the host
    axis_options, run_cell = xyz.axis_options, xyz.run_cell
    labels = [opt.label for opt in axis_options]
    assert {"[Tagger] Model", "[Tagger] Length", "[Tagger] Temperature"} <= set(labels)
    temperature = next(opt for opt in axis_options if opt.label == "[Tagger] Temperature")
    length = next(opt for opt in axis_options if opt.label == "[Tagger] Length")

    tab = webui.tabs["txt2img"]
    p = processing.StableDiffusionProcessingTxt2Img(prompt="1girl", seed=1)
    p.scripts = tab.runner
    p.script_args = tuple(tab.script_args(UpsampleSettings(enabled=False, preset="focused").to_args()))
    run_cell(p, temperature, "1.5", ["1.5"], lambda pc: run_cell(pc, length, "short", ["short"],
                                                                  processing.process_images))
    used = pipeline.calls[0]["settings"]
    assert used.enabled and used.length == "short" and used.temperature == 1.5
    assert used.sampling()[1:] == (0.85, 50, 0.05)  # the preset's other values stay
    assert not hasattr(p, "tagger_overrides")  # each cell had its own copy


def test_invalid_settings_with_the_accordion_closed_are_ignored(webui, pipeline, capsys):
    args = UpsampleSettings(enabled=False).to_args()
    args[1] = ""  # an empty model would be invalid
    processed, _ = webui.run("txt2img", args, prompt="1girl", seed=1)
    assert processed.images[0].prompt == "1girl"
    assert "Tagger" not in capsys.readouterr().err + processed.infotexts[0]


def test_invalid_settings_are_reported_once_per_job(webui, pipeline, capsys):
    args = ours(timing="before_styles")
    args[3] = "pg13"  # rating
    webui.run("txt2img", args, prompt="1girl", seed=1)
    assert capsys.readouterr().err.count("Tagger: invalid settings") == 1


@pytest.mark.parametrize(("model", "needle"), [
    ("no-such-model", "UnknownModelError: unknown model 'no-such-model'; known models:"),
    ("/no/such/folder", "model path /no/such/folder does not exist"),
])
def test_expected_user_errors_print_one_line_and_no_traceback(webui, capsys, model, needle):
    processed, _ = webui.run("txt2img", ours(model=model), prompt="1girl", seed=1)
    assert processed.images[0].prompt == "1girl"
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("*** Tagger: upsampling failed, prompts left unchanged: ")
    assert needle in lines[0]
    assert needle in processed.infotexts[0]


def test_invalid_settings_print_one_line(webui, pipeline, capsys):
    args = ours()
    args[2] = "enormous"  # length
    webui.run("txt2img", args, prompt="1girl", seed=1)
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_preview_of_an_unknown_model_prints_one_line(webui, capsys):
    from tagger_webui import script

    values = UpsampleSettings(enabled=True, model="no-such-model").to_args()
    prompt, details = script.preview_prompt("txt2img", "1girl", 512, 512, values)
    assert prompt.startswith("Tagger error: UnknownModelError: unknown model 'no-such-model'")
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
