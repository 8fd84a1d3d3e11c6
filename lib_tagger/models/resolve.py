"""Turn a model name or a local path into what to load: backend, files and prompt format."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..formats.dispatch import PROMPT_FORMATS, family_of, guess_format
from ..generate.base import ModelLoadError
from ..generate.gguf_convert import GGUF_FILE as CONVERTED_GGUF
from .registry import GGUF_FILES, MODELS, get_spec

BACKENDS = ("auto", "llama-cpp", "torch")


@dataclass(frozen=True)
class ModelSource:
    """What to load. ``path`` is a local file/folder, or None until a hub repo is fetched."""

    label: str  # the registry name, or the local path as given
    backend: str  # "llama-cpp" or "torch"
    prompt_format: str
    repo: str | None = None  # hub repo to fetch from, for registry models
    filename: str | None = None  # the GGUF file name within the repo
    path: Path | None = None
    note: str = ""  # said when the model is loaded (e.g. a backend chosen because another is missing)


class ModelChoiceError(UserError, ValueError):
    """A model, backend, quantisation or prompt format that cannot go together; the message says why."""


class LlamaCppMissingError(UserError, ModelLoadError):
    """A GGUF model was asked for, and llama-cpp-python is not installed. The message says what to install."""


def llama_cpp_available() -> bool:
    """True when llama-cpp-python can be imported (checked without importing it)."""
    import importlib.util

    if "llama_cpp" in sys.modules:  # imported already, or blocked (None)
        return sys.modules["llama_cpp"] is not None
    return importlib.util.find_spec("llama_cpp") is not None


def require_llama_cpp(source: ModelSource) -> None:
    """Raise :class:`LlamaCppMissingError` when ``source`` needs llama.cpp and this Python has none."""
    if source.backend != "llama-cpp" or llama_cpp_available():
        return
    what = f"{source.path} is a GGUF file" if source.path is not None else f"{source.label} as GGUF"
    raise LlamaCppMissingError(
        f"{what}, which needs llama-cpp-python, and it is not installed in this Python ({sys.executable}). "
        f'Install it ("{sys.executable}" -m pip install llama-cpp-python; the WebUI\'s start installs a '
        f"prebuilt wheel) and restart, or use a model folder with config.json and model.safetensors "
        f"(torch backend)")


def resolve_model(
    model: str, backend: str = "auto", quant: str = "q8_0", prompt_format: str | None = None,
    models_dir: str | os.PathLike | None = None,
) -> ModelSource:
    """Decide how ``model`` (a registry name, a folder, or a ``.gguf`` file) is loaded.

    ``backend`` "auto" prefers llama.cpp for models published as GGUF when llama-cpp-python is
    installed, and torch otherwise. ``prompt_format`` overrides the format guessed for local paths.
    A relative path that names something inside ``models_dir`` is taken from there (before the
    current folder), so ``my-model`` finds ``models/tagger/my-model``; registry names come first.
    """
    if backend not in BACKENDS:
        raise ModelChoiceError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if prompt_format is not None and prompt_format not in PROMPT_FORMATS:
        raise ModelChoiceError(f"prompt format must be one of {', '.join(PROMPT_FORMATS)}, not {prompt_format!r}")
    text = model.strip()
    if models_dir is not None and text and text.lower() not in MODELS and not Path(text).is_absolute():
        inside = Path(models_dir) / text
        if _exists(inside):
            return _resolve_path(inside, backend, prompt_format)
    looks_like_path = os.sep in text or text.endswith(".gguf") or text.startswith(".") or _exists(Path(text))
    if looks_like_path:
        return _resolve_path(Path(text).expanduser(), backend, prompt_format)

    spec = get_spec(text)
    use_gguf = spec.gguf and (backend == "llama-cpp" or (backend == "auto" and llama_cpp_available()))
    if backend == "llama-cpp" and not spec.gguf:
        raise ModelChoiceError(f"{spec.name} is published for torch only; use the torch backend")
    fmt = prompt_format or spec.prompt_format
    if spec.gguf and backend == "auto" and not use_gguf:
        return ModelSource(spec.name, "torch", fmt, repo=spec.repo, note=(
            f"llama-cpp-python is not installed: {spec.name} runs through the torch backend "
            f"(safetensors); install llama-cpp-python for its GGUF files"))
    if use_gguf:
        quant_key = quant.strip().lower()
        known = dict.fromkeys([*GGUF_FILES, *spec.gguf_files])
        if quant_key not in known:
            raise ModelChoiceError(f"quantisation must be one of {', '.join(known)}, not {quant!r}")
        # a quantisation the repo does not publish (TIPO: F16 only) falls back to its first file
        filename = spec.gguf_files.get(quant_key) or next(iter(spec.gguf_files.values()))
        return ModelSource(spec.name, "llama-cpp", fmt, repo=spec.repo, filename=filename)
    return ModelSource(spec.name, "torch", fmt, repo=spec.repo)


def required_files(source: ModelSource) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(required, optional) file names to fetch from the hub for ``source``."""
    if source.backend == "llama-cpp":
        assert source.filename is not None
        return (source.filename,), ()
    family = family_of(source.prompt_format)
    return family.torch_files, family.optional_files


def _exists(path: Path) -> bool:
    """``path.exists()``, False for names the system cannot even look up (too long, a NUL byte)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _resolve_path(path: Path, backend: str, prompt_format: str | None) -> ModelSource:
    if not _exists(path):
        raise FileNotFoundError(f"model path {path} does not exist")
    label = str(path)
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelChoiceError(f"{path}: a model file must be a .gguf; for safetensors give the folder")
        if backend == "torch":
            raise ModelChoiceError(f"{path}: a GGUF file needs the llama-cpp backend")
        return ModelSource(label, "llama-cpp", prompt_format or _guess(path, None), path=path)

    has_config = (path / "config.json").is_file()
    # our own Q8_0 conversion of the folder's safetensors (precision q8_0) is not a published GGUF of the model
    ggufs = sorted(p for p in path.glob("*.gguf") if p.name != CONVERTED_GGUF)
    if ggufs and (backend == "llama-cpp" or (backend == "auto" and (not has_config or llama_cpp_available()))):
        chosen = _pick_gguf(ggufs)
        return ModelSource(label, "llama-cpp", prompt_format or _guess(chosen, None), path=chosen)
    if not has_config:
        raise FileNotFoundError(f"{path} has neither config.json (torch model) nor a .gguf file")
    if prompt_format is None:
        prompt_format = _guess_format_from_config(path)
    return ModelSource(label, "torch", prompt_format, path=path)


def _pick_gguf(files: list[Path]) -> Path:
    order = [name.lower() for name in GGUF_FILES.values()]
    ranked = sorted(files, key=lambda f: order.index(f.name.lower()) if f.name.lower() in order else len(order))
    return ranked[0]


def _guess(path: Path, config: dict | None) -> str:
    found = guess_format(path, config)
    if found is None:  # only a config.json of another architecture gets here
        model_type = (config or {}).get("model_type")
        raise ModelChoiceError(f"{path}: model_type {model_type!r} is not one of llama, mistral, mixtral")
    return found


def _guess_format_from_config(folder: Path) -> str:
    config_path = folder / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelChoiceError(f"{config_path} is not readable JSON: {exc}") from None
    if not isinstance(config, dict):
        raise ModelChoiceError(f"{config_path} does not hold a JSON object")
    return _guess(folder, config)


def prompt_format_of(model: str) -> str | None:
    """The prompt format ``model`` (a name or a local path) would use, or None when that is not
    known yet (a path that does not exist, an unknown name). Reads at most a config.json."""
    try:
        return resolve_model(model, backend="torch" if not model.strip().endswith(".gguf") else "auto").prompt_format
    except (KeyError, ValueError, OSError):
        return None
