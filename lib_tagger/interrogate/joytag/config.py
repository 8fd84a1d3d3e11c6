"""JoyTag's ``config.json``: read, validate, and parse the CNN stem description (no torch)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lib_tagger.interrogate.base import InterrogatorError
from lib_tagger.models.files import read_json


class JoyTagModelError(InterrogatorError):
    """A JoyTag model file is unreadable or does not match the expected layout; names the file."""


@dataclass(frozen=True)
class StemLayer:
    """One layer of the CNN stem: ``kind`` is "conv", "ln", "relu" or "gelu"."""

    kind: str
    channels: int = 0
    kernel: int = 3
    stride: int = 2
    padding: int = 1


@dataclass(frozen=True)
class JoyTagConfig:
    """The fields of JoyTag's ``config.json`` that decide the inference graph."""

    num_blocks: int
    d_model: int
    mlp_dim: int
    num_heads: int
    image_size: int
    n_tags: int
    patch_size: int
    cnn_stem: tuple[StemLayer, ...]
    use_sine: bool = True

    @classmethod
    def from_dict(cls, data: dict, source: str = "config.json") -> JoyTagConfig:
        """Validate a parsed ``config.json``; errors name ``source`` and the field."""
        if data.get("class") != "ViT":
            raise JoyTagModelError(f"{source}: field 'class' is {data.get('class')!r}; only 'ViT' is known")
        values = {}
        for name in ("num_blocks", "d_model", "mlp_dim", "num_heads", "image_size", "n_tags", "patch_size"):
            value = data.get(name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise JoyTagModelError(f"{source}: field {name!r} must be a positive integer, got {value!r}")
            values[name] = value
        if values["d_model"] % values["num_heads"]:
            raise JoyTagModelError(f"{source}: 'd_model' must be divisible by 'num_heads'")
        if data.get("use_sine", True) is not True:
            raise JoyTagModelError(f"{source}: field 'use_sine' must be true (no learned positions)")
        if values["d_model"] % 4:
            raise JoyTagModelError(f"{source}: 'd_model' must be divisible by 4 for sine positions")
        stem = data.get("cnn_stem")
        if not isinstance(stem, str) or not stem:
            raise JoyTagModelError(f"{source}: field 'cnn_stem' must be a non-empty string")
        layers = parse_stem(stem, source)
        last_conv = [layer for layer in layers if layer.kind == "conv"][-1]
        if last_conv.channels != values["d_model"]:
            raise JoyTagModelError(
                f"{source}: the last stem conv has {last_conv.channels} channels but 'd_model' is "
                f"{values['d_model']}"
            )
        return cls(cnn_stem=layers, **values)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> JoyTagConfig:
        """Read and validate ``config.json`` at ``path``."""
        path = Path(path)
        return cls.from_dict(read_json(path, JoyTagModelError), str(path))


def parse_stem(spec: str, source: str = "config.json") -> tuple[StemLayer, ...]:
    """Parse ``"conv:c=64;ln;relu;conv:c=768,s=1,k=1,p=0"`` into stem layers."""
    layers = []
    for part in spec.split(";"):
        kind, _, opts = part.strip().partition(":")
        if kind in ("ln", "relu", "gelu") and not opts:
            layers.append(StemLayer(kind))
            continue
        if kind != "conv":
            raise JoyTagModelError(f"{source}: unknown cnn_stem layer {part!r}")
        try:
            options = dict(item.split("=", 1) for item in opts.split(",") if item)
            ints = {key: int(value) for key, value in options.items()}
        except ValueError as exc:
            raise JoyTagModelError(f"{source}: bad cnn_stem conv options {part!r}") from exc
        unknown = set(ints) - {"c", "k", "s", "p"}
        if "c" not in ints or unknown:
            raise JoyTagModelError(f"{source}: cnn_stem conv {part!r} needs c= and only c, k, s, p")
        layers.append(StemLayer("conv", ints["c"], ints.get("k", 3), ints.get("s", 2), ints.get("p", 1)))
    if not any(layer.kind == "conv" for layer in layers):
        raise JoyTagModelError(f"{source}: cnn_stem has no conv layer")
    return tuple(layers)


def read_tags(path: str | os.PathLike, expected: int) -> list[str]:
    """Read ``top_tags.txt`` (one tag a line) and check it holds ``expected`` tags."""
    path = Path(path)
    try:
        tags = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise JoyTagModelError(f"{path}: cannot read the tag list ({exc})") from exc
    if len(tags) != expected:
        raise JoyTagModelError(f"{path}: holds {len(tags)} tags but the config says n_tags={expected}")
    return tags
