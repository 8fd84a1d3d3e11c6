"""Finding an interrogator's files: known names and repos download their family's files into the models
folder (against the local hub double), other repos are told apart by their config.json, folders by
their tag list."""

from __future__ import annotations

import functools
import json

import pytest

from lib_tagger.interrogate import loading
from lib_tagger.models.files import ModelFilesMissing, fetch_files, repo_folder
from tests.hub_double import HubDouble

WD_FILES = {"config.json": json.dumps({"architecture": "vit_base_patch16_224"}).encode(),
            "model.safetensors": b"\x00" * 64, "selected_tags.csv": b"tag_id,name,category,count\n",
            "model.onnx": b"\x00" * 4096}
JOYTAG_FILES = {"config.json": b'{"class": "ViT"}', "model.safetensors": b"\x00" * 64, "top_tags.txt": b"a\n"}


@pytest.fixture
def hub(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with HubDouble({"SmilingWolf/wd-vit-tagger-v3": WD_FILES, "someone/my-joytag": JOYTAG_FILES}) as double:
        monkeypatch.setattr(loading, "fetch_files", functools.partial(fetch_files, endpoint=double.url))
        yield double


def test_a_known_name_downloads_the_timm_files_and_not_the_onnx(tmp_path, hub):
    family, folder, name = loading.locate("wd-vit-tagger-v3", tmp_path)
    assert (family, name) == ("wd", "wd-vit-tagger-v3")
    assert folder == repo_folder(tmp_path, "SmilingWolf/wd-vit-tagger-v3")
    assert sorted(path.name for path in folder.iterdir() if path.is_file()) == [
        "config.json", "model.safetensors", "selected_tags.csv"]
    assert not any(path.endswith("model.onnx") for _, path in hub.requests)
    hub.requests.clear()
    assert loading.locate("SmilingWolf/wd-vit-tagger-v3", tmp_path)[1] == folder  # the repo id too, offline
    assert hub.requests == []


def test_another_repo_is_told_apart_by_its_config(tmp_path, hub):
    family, folder, name = loading.locate("someone/my-joytag", tmp_path)
    assert (family, name) == ("joytag", "someone/my-joytag") and (folder / "top_tags.txt").is_file()


def test_folders_unknown_names_and_missing_paths(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.json").write_text('{"architecture": "convnext_base"}')
    with pytest.raises(ModelFilesMissing, match="lacks model.safetensors, selected_tags.csv"):
        loading.locate(str(folder))
    for name in ("model.safetensors", "selected_tags.csv"):
        (folder / name).write_bytes(b"")
    assert loading.locate(str(folder))[:2] == ("wd", folder)
    with pytest.raises(KeyError, match="unknown interrogator 'wd-v1'"):
        loading.locate("wd-v1")
    with pytest.raises(ModelFilesMissing, match="folder .*gone does not exist"):
        loading.locate(str(tmp_path / "gone"))


def test_offline_a_known_name_says_which_files_and_where(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelFilesMissing) as info:
        loading.locate("wd-eva02-large-tagger-v3", tmp_path)
    message = str(info.value)
    assert "config.json, model.safetensors, selected_tags.csv of SmilingWolf/wd-eva02-large-tagger-v3" in message
    assert str(repo_folder(tmp_path, "SmilingWolf/wd-eva02-large-tagger-v3")) in message
