"""Model names and local paths resolve to a backend, files and a prompt format."""

from __future__ import annotations

import json
import sys

import pytest

from lib_tagger.models import resolve as resolve_mod
from lib_tagger.models.registry import MODELS, get_spec
from lib_tagger.models.resolve import required_files, resolve_model


def test_every_known_model_resolves_for_torch():
    for name, spec in MODELS.items():
        source = resolve_model(name, backend="torch")
        assert source.backend == "torch" and source.repo == spec.repo and source.prompt_format == spec.prompt_format
        tokenizer = ("tokenizer.model", "added_tokens.json") if name.startswith("tipo") else ("tokenizer.json",)
        assert required_files(source)[0] == ("config.json", "model.safetensors", *tokenizer)


def test_tipo_models_are_the_published_f16_gguf_files(monkeypatch):
    monkeypatch.setattr(resolve_mod, "llama_cpp_available", lambda: True)
    expected = {
        "tipo-500m-ft": ("KBlueLeaf/TIPO-500M-ft", "TIPO-500M-ft-F16.gguf"),
        "tipo-500m": ("KBlueLeaf/TIPO-500M", "TIPO-500M_epoch5-F16.gguf"),
        "tipo-200m-ft2": ("KBlueLeaf/TIPO-200M-ft2", "TIPO-200M-ft2-F16.gguf"),
        "tipo-200m-ft": ("KBlueLeaf/TIPO-200M-ft", "TIPO-200M-ft-F16.gguf"),
        "tipo-200m": ("KBlueLeaf/TIPO-200M", "TIPO-200M-40Btok-F16.gguf"),
        "tipo-100m": ("KBlueLeaf/TIPO-100M", "TIPO-100M-F16.gguf"),
    }
    assert [n for n in MODELS if n.startswith("tipo")] == list(expected)
    for name, (repo, filename) in expected.items():
        for quant in ("q8_0", "f16"):  # the repos publish F16 only: every choice gets it
            source = resolve_model(name, quant=quant)
            assert (source.backend, source.repo, source.filename, source.prompt_format) == (
                "llama-cpp", repo, filename, "tipo")
        assert required_files(source) == ((filename,), ())


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
    tipo = tmp_path / "my-tipo"
    tipo.mkdir()
    (tipo / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (tipo / "added_tokens.json").write_text(json.dumps({"<|empty|>": 32000, "<|tag_to_long|>": 32005}))
    assert resolve_model(str(tipo), backend="torch").prompt_format == "tipo"
    tipo_gguf = tmp_path / "TIPO-500M-ft-F16.gguf"
    tipo_gguf.write_bytes(b"GGUF")
    assert resolve_model(str(tipo_gguf)).prompt_format == "tipo"
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="model_type"):
        resolve_model(str(other))


def test_without_llama_cpp_a_registry_gguf_model_falls_back_to_torch_and_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # not importable, as when it is not installed
    source = resolve_model("dantaggen-delta-rev2")
    assert source.backend == "torch" and source.repo == "KBlueLeaf/DanTagGen-delta-rev2"
    assert "llama-cpp-python is not installed" in source.note and "torch backend" in source.note
    assert resolve_model("dart-v2-sft").note == ""  # torch-only models: nothing to say


def test_without_llama_cpp_a_gguf_file_fails_before_loading_naming_what_to_install(monkeypatch, tmp_path, caplog):
    from lib_tagger.models.manager import ModelManager
    from lib_tagger.models.resolve import LlamaCppMissingError
    from tests.factories.gguf_models import write_llama_gguf

    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    gguf = write_llama_gguf(tmp_path / "beta.gguf")
    manager = ModelManager(device="cpu")
    with pytest.raises(LlamaCppMissingError, match="needs llama-cpp-python") as raised, manager.use(str(gguf)):
        pass
    assert str(gguf) in str(raised.value) and "pip install llama-cpp-python" in str(raised.value)
    assert manager.loaded_names() == []
    by_name = ModelManager(models_dir=str(tmp_path / "models"), backend="llama-cpp")
    with pytest.raises(LlamaCppMissingError, match="needs llama-cpp-python"), by_name.use("dantaggen-gamma"):
        pass  # asked for by name: fails before any download
    assert not (tmp_path / "models").exists()
