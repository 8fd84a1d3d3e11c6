"""JoyTagger: load from a folder or the hub layout, tag images, cache, unload; no torch at import."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("torch")

from lib_tagger.interrogate.joytag.config import JoyTagModelError  # noqa: E402
from lib_tagger.interrogate.joytag.loader import JoyTagger, get_joytagger, unload_joytagger  # noqa: E402
from lib_tagger.interrogate.postprocess import JoyTagOptions  # noqa: E402
from lib_tagger.models.files import ModelFilesMissing  # noqa: E402
from tests.factories.joytag_model import save_joytag_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_joytag_checkpoint(tmp_path_factory.mktemp("joytag"), tiny=True, seed=5)


def test_importing_the_package_does_not_import_torch():
    code = ("import sys, lib_tagger.interrogate as j; j.JoyTagOptions; j.select_tags; j.format_tags;"
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(Path(__file__).parents[1]))


def test_tag_images_scores_every_tag_in_batches(checkpoint):
    tagger = JoyTagger.load(str(checkpoint), device="cpu")
    images = [Image.new("RGB", (64, 32), (i * 40, 0, 0)) for i in range(5)]
    scores = tagger.tag_images(images, batch_size=2)
    assert len(scores) == 5 and all(len(s) == 5813 for s in scores)
    assert all(0.0 <= value <= 1.0 for value in scores[0].values())
    assert scores[0] != scores[4]
    assert tagger.tag_images(images[4:], batch_size=8)[0] == pytest.approx(scores[4], abs=1e-5)
    text = tagger.interrogate(images[0], JoyTagOptions(threshold=0.5, top_k=5))
    assert 1 <= len(text.split(", ")) <= 5
    tagger.close()
    assert not tagger.loaded
    with pytest.raises(RuntimeError, match="closed"):
        tagger.tag_images(images[:1])


def test_hub_layout_under_models_dir_is_used_without_network(tmp_path, checkpoint):
    save_joytag_checkpoint(tmp_path / "fancyfeast--joytag", tiny=True, seed=5)
    tagger = JoyTagger.load("fancyfeast/joytag", models_dir=tmp_path, device="cpu")
    assert len(tagger.tags) == 5813
    tagger.close()


def test_missing_files_name_the_files_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelFilesMissing) as info:
        JoyTagger.load("fancyfeast/joytag", models_dir=tmp_path, device="cpu")
    assert "config.json" in str(info.value) and str(tmp_path) in str(info.value)
    folder = tmp_path / "local"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with pytest.raises(ModelFilesMissing, match="model.safetensors, top_tags.txt"):
        JoyTagger.load(str(folder), device="cpu")
    with pytest.raises(ModelFilesMissing, match="neither a folder nor a hub repo"):
        JoyTagger.load(str(tmp_path / "no" / "such" / "dir"), device="cpu")


def test_tag_list_length_must_match_config(tmp_path):
    folder = save_joytag_checkpoint(tmp_path, tiny=True)
    (folder / "top_tags.txt").write_text("a\nb\n")
    with pytest.raises(JoyTagModelError, match="holds 2 tags"):
        JoyTagger.load(str(folder), device="cpu")


def test_cache_returns_the_same_tagger_until_unloaded(checkpoint):
    results = []
    threads = [threading.Thread(target=lambda: results.append(get_joytagger(str(checkpoint), device="cpu")))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(tagger) for tagger in results}) == 1
    first = results[0]
    assert unload_joytagger() is True
    assert not first.loaded
    assert unload_joytagger() is False
    second = get_joytagger(str(checkpoint), device="cpu")
    assert second is not first and second.loaded
    unload_joytagger()
