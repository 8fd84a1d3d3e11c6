"""Model names and local paths resolve to a backend, files and a prompt format."""

from __future__ import annotations

import json

import pytest

from lib_tagger.models import resolve as resolve_mod
from lib_tagger.models.registry import MODELS, get_spec
from lib_tagger.models.resolve import required_files, resolve_model


def test_every_known_model_resolves_for_torch():
    for name, spec in MODELS.items():
        source = resolve_model(name, backend="torch")
        assert source.backend == "torch" and source.repo == spec.repo and source.prompt_format == spec.prompt_format
        assert required_files(source)[0] == ("config.json", "model.safetensors", "tokenizer.json")


def test_dantaggen_prefers_gguf_when_llama_cpp_is_installed(monkeypatch):
    monkeypatch.setattr(resolve_mod, "llama_cpp_available", lambda: True)
    source = resolve_model("DanTagGen-Delta-Rev2", quant="Q6_K")
    assert source.backend == "llama-cpp" and source.filename == "ggml-model-Q6_K.gguf"
    assert source.prompt_format == "dantaggen-quality"
    monkeypatch.setattr(resolve_mod, "llama_cpp_available", lambda: False)
    assert resolve_model("dantaggen-beta").backend == "torch"


def test_bad_names_and_choices_are_clear():
    with pytest.raises(KeyError, match="known models"):
        get_spec("dart-v3")
    with pytest.raises(ValueError, match="torch only"):
        resolve_model("dart-v2-sft", backend="llama-cpp")
    with pytest.raises(ValueError, match="quantisation"):
        resolve_model("dantaggen-delta", backend="llama-cpp", quant="q2")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_model("./no/such/folder")


def test_local_folders_and_files(tmp_path):
    dart = tmp_path / "my-dart"
    dart.mkdir()
    (dart / "config.json").write_text(json.dumps({"model_type": "mixtral"}))
    assert resolve_model(str(dart)).prompt_format == "dart-sft"
    llama = tmp_path / "DanTagGen-delta"
    llama.mkdir()
    (llama / "config.json").write_text(json.dumps({"model_type": "llama"}))
    source = resolve_model(str(llama), backend="torch")
    assert (source.backend, source.prompt_format, source.path) == ("torch", "dantaggen-quality", llama)
    gguf = tmp_path / "beta.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_model(str(gguf)).backend == "llama-cpp"
    assert resolve_model(str(gguf)).prompt_format == "dantaggen"
    assert resolve_model(str(gguf), prompt_format="dantaggen-quality").prompt_format == "dantaggen-quality"
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="model_type"):
        resolve_model(str(other))
