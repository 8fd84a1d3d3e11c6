"""The known tag models: where they live on the hub, their files, their family and prompt format."""

from __future__ import annotations

from dataclasses import dataclass, field

from lib_tagger.formats.dantaggen import FORMAT_PLAIN as FORMAT_DANTAGGEN
from lib_tagger.formats.dantaggen import FORMAT_QUALITY as FORMAT_DANTAGGEN_QUALITY
from lib_tagger.formats.dart import FORMAT_BASE as FORMAT_DART_BASE
from lib_tagger.formats.dart import FORMAT_SFT as FORMAT_DART_SFT
from lib_tagger.formats.dispatch import family_of
from lib_tagger.formats.family import Family
from lib_tagger.formats.tipo import FORMAT as FORMAT_TIPO

from ..errors import UserError

__all__ = ["FORMAT_DANTAGGEN", "FORMAT_DANTAGGEN_QUALITY", "FORMAT_DART_BASE", "FORMAT_DART_SFT", "FORMAT_TIPO",
           "GGUF_FILES", "MODELS", "ModelSpec", "UnknownModelError", "get_spec", "model_names"]

#: GGUF quantisations published in the DanTagGen repos, best first for the default choice.
GGUF_FILES = {
    "q6_k": "ggml-model-Q6_K.gguf",
    "q8_0": "ggml-model-Q8_0.gguf",
    "f16": "ggml-model-f16.gguf",
}


@dataclass(frozen=True)
class ModelSpec:
    """One known model. ``gguf_files`` maps a quantisation to the repo's GGUF file (empty: the
    repo publishes safetensors only)."""

    name: str
    repo: str
    prompt_format: str
    architecture: str  # "mistral", "mixtral" or "llama"
    gguf_files: dict[str, str] = field(default_factory=dict)
    description: str = ""

    @property
    def family(self) -> Family:
        """The model's family (formats, planner, files)."""
        return family_of(self.prompt_format)

    @property
    def gguf(self) -> bool:
        """True when the repo also publishes GGUF files."""
        return bool(self.gguf_files)


def _tipo(name: str, repo: str, gguf: str, description: str) -> ModelSpec:
    return ModelSpec(name, repo, FORMAT_TIPO, "llama", {"f16": gguf}, description)


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("dart-v2-moe-sft", "p1atdev/dart-v2-moe-sft", FORMAT_DART_SFT, "mixtral",
                  description="Dart v2 Mixtral-MoE SFT, ~166M, fast on CPU"),
        ModelSpec("dart-v2-sft", "p1atdev/dart-v2-sft", FORMAT_DART_SFT, "mistral",
                  description="Dart v2 Mistral SFT, ~114M"),
        ModelSpec("dart-v2-moe-base", "p1atdev/dart-v2-moe-base", FORMAT_DART_BASE, "mixtral",
                  description="Dart v2 Mixtral-MoE base model"),
        ModelSpec("dart-v2-base", "p1atdev/dart-v2-base", FORMAT_DART_BASE, "mistral",
                  description="Dart v2 Mistral base model"),
        ModelSpec("dantaggen-delta-rev2", "KBlueLeaf/DanTagGen-delta-rev2", FORMAT_DANTAGGEN_QUALITY, "llama",
                  GGUF_FILES, description="DanTagGen delta rev2, LLaMA ~400M, with quality line"),
        ModelSpec("dantaggen-delta", "KBlueLeaf/DanTagGen-delta", FORMAT_DANTAGGEN_QUALITY, "llama", GGUF_FILES,
                  description="DanTagGen delta, LLaMA ~400M, with quality line"),
        ModelSpec("dantaggen-gamma", "KBlueLeaf/DanTagGen-gamma", FORMAT_DANTAGGEN, "llama", GGUF_FILES,
                  description="DanTagGen gamma, LLaMA ~400M"),
        ModelSpec("dantaggen-beta", "KBlueLeaf/DanTagGen-beta", FORMAT_DANTAGGEN, "llama", GGUF_FILES,
                  description="DanTagGen beta, LLaMA ~400M"),
        _tipo("tipo-500m-ft", "KBlueLeaf/TIPO-500M-ft", "TIPO-500M-ft-F16.gguf",
              "TIPO 500M fine-tuned, LLaMA ~500M: tags, captions, both (the default TIPO)"),
        _tipo("tipo-500m", "KBlueLeaf/TIPO-500M", "TIPO-500M_epoch5-F16.gguf", "TIPO 500M, LLaMA ~500M"),
        _tipo("tipo-200m-ft2", "KBlueLeaf/TIPO-200M-ft2", "TIPO-200M-ft2-F16.gguf",
              "TIPO 200M, second fine-tune, LLaMA ~200M"),
        _tipo("tipo-200m-ft", "KBlueLeaf/TIPO-200M-ft", "TIPO-200M-ft-F16.gguf", "TIPO 200M fine-tuned, LLaMA ~200M"),
        _tipo("tipo-200m", "KBlueLeaf/TIPO-200M", "TIPO-200M-40Btok-F16.gguf", "TIPO 200M, LLaMA ~200M"),
        _tipo("tipo-100m", "KBlueLeaf/TIPO-100M", "TIPO-100M-F16.gguf", "TIPO 100M, LLaMA ~100M, fastest"),
    )
}


class UnknownModelError(UserError, KeyError):
    """A model name that is neither a known model nor a path."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def get_spec(name: str) -> ModelSpec:
    """The spec of a known model name (case-insensitive); :class:`UnknownModelError` lists the known names."""
    key = name.strip().lower()
    if key not in MODELS:
        raise UnknownModelError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return MODELS[key]


def model_names() -> list[str]:
    return list(MODELS)
