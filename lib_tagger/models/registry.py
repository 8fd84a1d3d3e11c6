"""The known tag models: where they live on the hub, their files, their prompt format."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError

#: Prompt formats (see :mod:`lib_tagger.formats`).
FORMAT_DART_SFT = "dart-sft"
FORMAT_DART_BASE = "dart-base"
FORMAT_DANTAGGEN = "dantaggen"
FORMAT_DANTAGGEN_QUALITY = "dantaggen-quality"

#: Files of a safetensors checkpoint that the torch backend reads.
TORCH_FILES = ("config.json", "model.safetensors", "tokenizer.json")
#: Files fetched when present, never required.
OPTIONAL_FILES = ("generation_config.json", "tokenizer_config.json", "special_tokens_map.json")
#: GGUF quantisations published in the DanTagGen repos, best first for the default choice.
GGUF_FILES = {
    "q6_k": "ggml-model-Q6_K.gguf",
    "q8_0": "ggml-model-Q8_0.gguf",
    "f16": "ggml-model-f16.gguf",
}


@dataclass(frozen=True)
class ModelSpec:
    """One known model. ``gguf`` is true when the repo also publishes GGUF files."""

    name: str
    repo: str
    family: str  # "dart" or "dantaggen"
    prompt_format: str
    architecture: str  # "mistral", "mixtral" or "llama"
    gguf: bool = False
    description: str = ""


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("dart-v2-moe-sft", "p1atdev/dart-v2-moe-sft", "dart", FORMAT_DART_SFT, "mixtral",
                  description="Dart v2 Mixtral-MoE SFT, ~166M, fast on CPU"),
        ModelSpec("dart-v2-sft", "p1atdev/dart-v2-sft", "dart", FORMAT_DART_SFT, "mistral",
                  description="Dart v2 Mistral SFT, ~114M"),
        ModelSpec("dart-v2-moe-base", "p1atdev/dart-v2-moe-base", "dart", FORMAT_DART_BASE, "mixtral",
                  description="Dart v2 Mixtral-MoE base model"),
        ModelSpec("dart-v2-base", "p1atdev/dart-v2-base", "dart", FORMAT_DART_BASE, "mistral",
                  description="Dart v2 Mistral base model"),
        ModelSpec("dantaggen-delta-rev2", "KBlueLeaf/DanTagGen-delta-rev2", "dantaggen",
                  FORMAT_DANTAGGEN_QUALITY, "llama", gguf=True,
                  description="DanTagGen delta rev2, LLaMA ~400M, with quality line"),
        ModelSpec("dantaggen-delta", "KBlueLeaf/DanTagGen-delta", "dantaggen", FORMAT_DANTAGGEN_QUALITY,
                  "llama", gguf=True, description="DanTagGen delta, LLaMA ~400M, with quality line"),
        ModelSpec("dantaggen-gamma", "KBlueLeaf/DanTagGen-gamma", "dantaggen", FORMAT_DANTAGGEN, "llama",
                  gguf=True, description="DanTagGen gamma, LLaMA ~400M"),
        ModelSpec("dantaggen-beta", "KBlueLeaf/DanTagGen-beta", "dantaggen", FORMAT_DANTAGGEN, "llama",
                  gguf=True, description="DanTagGen beta, LLaMA ~400M"),
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
