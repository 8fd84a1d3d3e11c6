"""The whole upsampling pipeline on tiny real models: torch (Dart-style Mixtral) and llama.cpp (DanTagGen GGUF)."""

from __future__ import annotations

import pytest

from lib_tagger.generate.base import ModelLoadError
from lib_tagger.models.files import ModelFilesMissing
from lib_tagger.models.manager import ModelManager
from lib_tagger.prompt import extract_tags, normalize_tag
from lib_tagger.settings import UpsampleSettings
from lib_tagger.upsample import prepare_prompt, upsample_prompts
from tests.factories.torch_models import DART_TAGS, make_dart_folder

PROMPT = "masterpiece, 1girl, <lora:miku:0.7>, (hatsune miku:1.1), vocaloid, long_hair, BREAK smile"
FAVOUR = {"hat": 6.0, "skirt": 6.0, "blue eyes": 6.0, "smile": 6.0, "long hair": 6.0, "</general>": 2.0}


@pytest.fixture(scope="module")
def dart_folder(tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    folder = make_dart_folder(tmp_path_factory.mktemp("models") / "tiny-dart-v2-moe", model_type="mixtral",
                              favour=FAVOUR, max_position_embeddings=512)
    yield folder
    torch.set_num_threads(threads)


def run(folder, prompts, seeds, manager=None, **changes):
    values = {"max_new_tokens": 24, "temperature": 1.0, "top_k": 8, **changes}
    settings = UpsampleSettings(enabled=True, model=str(folder), **values)
    manager = manager or ModelManager(device="cpu")
    return upsample_prompts(prompts, settings, seeds=seeds, width=832, height=1216, manager=manager)


def test_new_tags_come_from_the_model_and_only_the_insertion_point_changes(dart_folder):
    (result,) = run(dart_folder, [PROMPT], [7])
    assert result.original == PROMPT
    assert result.model_input == prepare_prompt(PROMPT, UpsampleSettings(), 832, 1216, "dart-sft").model_input
    assert result.model_input.startswith("<|bos|><copyright>vocaloid</copyright><character>hatsune miku")
    assert result.new_tags, "the favoured tags make an empty result very unlikely"
    assert set(result.new_tags) <= set(DART_TAGS)
    # the prompt's own tags (long_hair == long hair, smile) are never added again, nor duplicates
    present = {normalize_tag(t.tag) for t in extract_tags(PROMPT)}
    assert not present & set(result.new_tags)
    assert len(set(result.new_tags)) == len(result.new_tags)
    assert result.prompt.startswith(PROMPT)
    assert result.prompt == PROMPT + ", " + ", ".join(result.new_tags)
    assert result.timings["generate"] > 0 and result.timings["total"] >= result.timings["generate"]


def test_same_seed_same_tags_and_batches_match_single_runs(dart_folder):
    manager = ModelManager(device="cpu")
    prompts = [PROMPT, "1girl, solo", "", "sky, cloud, outdoors"]
    seeds = [1, 2, 3, 4]
    batch = run(dart_folder, prompts, seeds, manager)
    singles = [run(dart_folder, [p], [s], manager)[0] for p, s in zip(prompts, seeds)]
    assert [r.prompt for r in batch] == [r.prompt for r in singles]
    outcomes = {tuple(run(dart_folder, [PROMPT], [seed], manager)[0].new_tags) for seed in range(5)}
    assert len(outcomes) > 1, "different seeds should not all give the same tags"


def test_before_break_position_and_bans(dart_folder):
    (result,) = run(dart_folder, [PROMPT], [7], position="before_break", ban_tags="hat, *eyes, /^sk/")
    for tag in result.new_tags:
        assert tag != "hat" and not tag.endswith("eyes") and not tag.startswith("sk")
    head, tail = PROMPT.split(" BREAK ")
    if result.new_tags:
        assert result.prompt == head + ", " + ", ".join(result.new_tags) + " BREAK " + tail


def test_manager_caches_and_unloads(dart_folder):
    manager = ModelManager(device="cpu")
    run(dart_folder, ["1girl"], [0], manager)
    assert manager.loaded_names() == [str(dart_folder)]
    first = manager._loaded.copy()
    run(dart_folder, ["1girl"], [0], manager)
    assert manager._loaded == first  # reused, not reloaded
    manager.unload()
    assert manager.loaded_names() == []
    manager.configure(keep_loaded=False)
    run(dart_folder, ["1girl"], [0], manager)
    assert manager.loaded_names() == []


def test_missing_and_corrupt_models_raise_clear_errors(tmp_path, dart_folder, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelFilesMissing, match="model.safetensors"):
        run("dart-v2-sft", ["1girl"], [0], ModelManager(models_dir=str(tmp_path), device="cpu"))
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json"):
        (broken / name).write_bytes((dart_folder / name).read_bytes())
    (broken / "model.safetensors").write_bytes((dart_folder / "model.safetensors").read_bytes()[:5000])
    with pytest.raises(ModelLoadError, match="model.safetensors"):
        run(broken, ["1girl"], [0])


def test_dantaggen_gguf_through_llama_cpp_with_top_up(tmp_path):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    from tests.factories.gguf_models import tiny_spec, write_llama_gguf

    path = write_llama_gguf(tmp_path / "DanTagGen-delta-tiny.gguf", tiny_spec(tensor_type="q8_0"))
    settings = dict(length="very_short", max_new_tokens=16)
    first = run(path, ["1girl, solo"], [3], **settings)[0]
    again = run(path, ["1girl, solo"], [3], **settings)[0]
    assert first.prompt == again.prompt
    assert first.model_input.startswith("quality: masterpiece\nrating: <|empty|>\n")
    assert first.model_input.endswith("general: 1girl, solo<|input_end|>")
    assert first.prompt.startswith("1girl, solo")
    assert 0 <= first.timings["topup_rounds"] <= 3
