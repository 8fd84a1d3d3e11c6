"""JoyTag as an interrogator: load from a folder or the hub layout, tag images, cache, unload; no torch at import."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("torch")

from lib_tagger.interrogate.joytag.config import JoyTagModelError  # noqa: E402
from lib_tagger.interrogate.joytag.loader import JoyTagger  # noqa: E402
from lib_tagger.interrogate.loading import (  # noqa: E402
    get_interrogator,
    load_interrogator,
    predict_images,
    unload_interrogator,
)
from lib_tagger.interrogate.postprocess import TagOptions, describe  # noqa: E402
from lib_tagger.models.files import ModelFilesMissing  # noqa: E402
from tests.factories.joytag_model import save_joytag_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_joytag_checkpoint(tmp_path_factory.mktemp("joytag"), tiny=True, seed=5)


def test_importing_the_package_does_not_import_torch():
    code = ("import sys, lib_tagger.interrogate as j, lib_tagger.caption as c; j.TagOptions; j.select_tags;"
            "j.format_tags; j.get_interrogator; j.INTERROGATORS; c.caption_folder; c.LocalEngine;"
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(Path(__file__).parents[1]))


def test_predictions_score_every_tag_in_batches(checkpoint):
    tagger = JoyTagger.load(str(checkpoint), device="cpu")
    images = [Image.new("RGB", (64, 32), (i * 40, 0, 0)) for i in range(5)]
    predictions = predict_images(tagger, images, batch_size=2)
    assert len(predictions) == 5 and all(len(p.scores) == 5813 for p in predictions)
    assert all(0.0 <= value <= 1.0 for value in predictions[0].scores.values())
    assert predictions[0].ratings == {} and predictions[0].rating is None  # JoyTag has no rating head
    assert predictions[0].scores != predictions[4].scores
    alone = predict_images(tagger, images[4:], batch_size=8)[0]
    assert alone.scores == pytest.approx(predictions[4].scores, abs=1e-5)
    text = describe(predictions[0], TagOptions(threshold=0.5, top_k=5)).caption
    assert 1 <= len(text.split(", ")) <= 5
    tagger.close()
    assert not tagger.loaded
    with pytest.raises(RuntimeError, match="closed"):
        predict_images(tagger, images[:1])


def test_categories_come_from_the_tag_data(checkpoint):
    tagger = JoyTagger.load(str(checkpoint), device="cpu")
    categories = tagger.labels.category_of()
    assert categories["1girl"] == "general" and categories["kamina_(ttgl)"] == "character"
    assert categories["tengen_toppa_gurren_lagann"] == "copyright"
    tagger.close()


def test_hub_layout_under_models_dir_is_used_without_network(tmp_path, checkpoint):
    save_joytag_checkpoint(tmp_path / "fancyfeast--joytag", tiny=True, seed=5)
    for name in ("fancyfeast/joytag", "joytag"):
        tagger = load_interrogator(name, models_dir=tmp_path, device="cpu")
        assert isinstance(tagger, JoyTagger) and len(tagger.labels.names) == 5813 and tagger.name == "joytag"
        tagger.close()


def test_missing_files_name_the_files_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelFilesMissing) as info:
        load_interrogator("fancyfeast/joytag", models_dir=tmp_path, device="cpu")
    assert "config.json" in str(info.value) and str(tmp_path) in str(info.value)
    folder = tmp_path / "local"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "top_tags.txt").write_text("a\n")
    with pytest.raises(ModelFilesMissing, match="lacks model.safetensors"):
        load_interrogator(str(folder), device="cpu")
    (folder / "top_tags.txt").unlink()
    with pytest.raises(ModelFilesMissing, match="neither top_tags.txt"):
        load_interrogator(str(folder), device="cpu")
    with pytest.raises(ModelFilesMissing, match="folder .*dir does not exist"):
        load_interrogator(str(tmp_path / "no" / "such" / "dir"), device="cpu")
    with pytest.raises(KeyError, match="unknown interrogator"):
        load_interrogator("joytag-v2", device="cpu")


def test_tag_list_length_must_match_config(tmp_path):
    folder = save_joytag_checkpoint(tmp_path, tiny=True)
    (folder / "top_tags.txt").write_text("a\nb\n")
    with pytest.raises(JoyTagModelError, match="holds 2 tags"):
        JoyTagger.load(str(folder), device="cpu")


def test_cache_returns_the_same_tagger_until_unloaded(checkpoint):
    results = []
    threads = [threading.Thread(target=lambda: results.append(get_interrogator(str(checkpoint), device="cpu")))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(tagger) for tagger in results}) == 1
    first = results[0]
    assert unload_interrogator() is True
    assert not first.loaded
    assert unload_interrogator() is False
    second = get_interrogator(str(checkpoint), device="cpu")
    assert second is not first and second.loaded
    unload_interrogator()
