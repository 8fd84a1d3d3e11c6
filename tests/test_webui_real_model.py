"""The main txt2img path with the REAL pipeline and a tiny random-weight Dart v2 (Mistral) folder,
and real failures (missing path, corrupt GGUF) that must leave the prompts untouched."""

from __future__ import annotations

import pytest

from lib_tagger.settings import FIELD_ORDER, UpsampleSettings
from tests.factories.torch_models import make_dart_folder


@pytest.fixture(scope="module")
def dart_folder(tmp_path_factory):
    return make_dart_folder(tmp_path_factory.mktemp("models") / "dart-tiny", seed=0)


def settings_for(folder, **changes) -> UpsampleSettings:
    # fp32: with this random model and 8-bit weights, seed 13 samples the end token first (no new tags)
    return UpsampleSettings(enabled=True, model=str(folder), max_new_tokens=12, **{"precision": "fp32", **changes})


def test_txt2img_batch_two_by_two_with_a_real_tiny_model(webui, dart_folder):
    import torch

    torch.manual_seed(0)
    args = settings_for(dart_folder).to_args()
    first, _ = webui.run("txt2img", args, prompt="1girl, solo", negative_prompt="lowres", seed=10,
                         batch_size=2, n_iter=2, enable_hr=True)
    prompts = [img.prompt for img in first.images]
    assert all(p.startswith("1girl, solo, ") for p in prompts)
    assert len(set(prompts)) == 4  # each image has its own tags
    assert [img.hr_prompt for img in first.images] == prompts
    assert [img.negative_prompt for img in first.images] == ["lowres"] * 4
    # the same seeds give the same prompts: image 3 regenerated on its own
    again, _ = webui.run("txt2img", args, prompt="1girl, solo", seed=13)
    assert again.images[0].prompt == prompts[3]


def test_pasting_a_real_result_and_regenerating_adds_no_tags_twice(webui, dart_folder):
    from modules import infotext_utils

    first, _ = webui.run("txt2img", settings_for(dart_folder, length="short").to_args(), prompt="1girl",
                         seed=21, batch_size=2)
    tab = webui.tabs["txt2img"]
    fields = tab.paste_fields()
    updates = infotext_utils.paste(first.infotexts[1], fields)
    by_component = {id(c): u.get("value") for (c, _), u in zip(fields, updates)}
    prompt = by_component[id(tab.prompt)]
    ours = [by_component[id(c)] for c in tab.script.controls]
    assert prompt == "1girl"
    assert dict(zip(FIELD_ORDER, ours))["length"] == "short"
    again, _ = webui.run("txt2img", ours, prompt=prompt, seed=22)
    assert again.images[0].prompt == first.images[1].prompt


@pytest.mark.parametrize("kind", ["missing", "corrupt_gguf", "corrupt_folder"])
def test_real_load_failures_leave_prompts_untouched(webui, tmp_path, capsys, kind):
    if kind == "missing":
        model = tmp_path / "not-there"
    elif kind == "corrupt_gguf":
        model = tmp_path / "broken.gguf"
        model.write_bytes(b"GGUF" + b"\x00garbage" * 50)
    else:
        model = tmp_path / "dart-broken"
        model.mkdir()
        (model / "config.json").write_text('{"model_type": "mistral"', encoding="utf-8")
    processed, _ = webui.run("txt2img", UpsampleSettings(enabled=True, model=str(model)).to_args(),
                             prompt="1girl, solo", seed=3, batch_size=2)
    assert [img.prompt for img in processed.images] == ["1girl, solo"] * 2
    err = capsys.readouterr().err
    assert "Tagger: upsampling failed, prompts left unchanged" in err
    assert all("Tagger error: " in text for text in processed.infotexts)


def test_a_separate_hires_prompt_gets_the_same_new_tags(webui, dart_folder):
    processed, _ = webui.run("txt2img", settings_for(dart_folder).to_args(), prompt="1girl, solo", seed=31,
                             enable_hr=True, hr_prompt="1girl, solo, detailed")
    image = processed.images[0]
    added = image.prompt[len("1girl, solo"):]
    assert added.startswith(", ") and len(added) > 2
    assert image.hr_prompt == "1girl, solo, detailed" + added
