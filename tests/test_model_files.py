"""Finding model files on disk and downloading them with huggingface_hub (against a local hub double)."""

from __future__ import annotations

import pytest

from lib_tagger.models.files import ModelFilesMissing, fetch_files, repo_folder
from tests.hub_double import HubDouble

REPO = "someone/tiny-model"
FILES = {"config.json": b'{"model_type": "mistral"}', "model.safetensors": b"\x00" * 1000,
         "tokenizer.json": b"{}", "generation_config.json": b"{}"}


def test_downloads_missing_files_into_the_models_folder_then_works_offline(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with HubDouble({REPO: FILES}) as hub:
        folder = fetch_files(REPO, ["config.json", "model.safetensors"], tmp_path,
                             optional=["generation_config.json", "special_tokens_map.json"], endpoint=hub.url)
        assert folder == repo_folder(tmp_path, REPO)
        assert (folder / "model.safetensors").read_bytes() == FILES["model.safetensors"]
        assert (folder / "generation_config.json").is_file()
        assert not (folder / "special_tokens_map.json").exists()  # optional and absent: skipped
        assert any(path.endswith("model.safetensors") for _, path in hub.requests)
        hub.requests.clear()
        # everything is on disk now: no request at all
        again = fetch_files(REPO, ["config.json", "model.safetensors"], tmp_path, endpoint=hub.url)
        assert again == folder
        assert hub.requests == []


def test_a_file_the_hub_lacks_names_the_file_and_the_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with HubDouble({REPO: FILES}) as hub, pytest.raises(ModelFilesMissing) as err:
        fetch_files(REPO, ["config.json", "missing.bin"], tmp_path, endpoint=hub.url)
    message = str(err.value)
    assert "missing.bin" in message and str(repo_folder(tmp_path, REPO)) in message
    assert f"huggingface.co/{REPO}" in message


def test_offline_without_files_says_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelFilesMissing) as err:
        fetch_files(REPO, ["model.safetensors"], tmp_path)
    assert "model.safetensors" in str(err.value)
    assert str(repo_folder(tmp_path, REPO)) in str(err.value)


def test_unreachable_hub_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(ModelFilesMissing, match="could not be downloaded"):
        fetch_files(REPO, ["config.json"], tmp_path, endpoint="http://127.0.0.1:9")


def test_offline_and_missing_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    models = tmp_path / "models" / "tagger"  # not there yet
    with pytest.raises(ModelFilesMissing, match="offline"):
        fetch_files(REPO, ["config.json", "model.safetensors"], models)
    assert not (tmp_path / "models").exists()
    models.mkdir(parents=True)
    with pytest.raises(ModelFilesMissing, match="offline"):
        fetch_files(REPO, ["config.json"], models)
    assert list(models.iterdir()) == []  # no repo folder, no lock files


def test_a_failed_download_leaves_no_folder_it_created(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    models = tmp_path / "models"
    with pytest.raises(ModelFilesMissing, match="could not be downloaded"):
        fetch_files(REPO, ["config.json"], models, endpoint="http://127.0.0.1:9")
    assert not models.exists()
    # a folder that was there stays, and so does whatever was downloaded before the failure
    with HubDouble({REPO: FILES}) as hub, pytest.raises(ModelFilesMissing, match="missing.bin"):
        fetch_files(REPO, ["config.json", "missing.bin"], models, endpoint=hub.url)
    assert (repo_folder(models, REPO) / "config.json").read_bytes() == FILES["config.json"]
