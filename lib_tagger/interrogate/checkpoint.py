"""Reading a ``model.safetensors`` checkpoint and checking it against a model, with errors that name the file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from lib_tagger.interrogate.base import InterrogatorError


def read_checkpoint(path: str | os.PathLike, error: type[Exception] = InterrogatorError) -> dict:
    """The tensors of ``path`` on the CPU, each in memory of its own (not a view of the file, which may be
    replaced under the loaded model); an unreadable file raises ``error`` naming it."""
    from lib_tagger.models.safetensors_file import SafetensorsError, read_tensors

    path = Path(path)
    try:
        return read_tensors(path)
    except FileNotFoundError as exc:
        raise error(f"{path}: checkpoint file not found") from exc
    except (OSError, SafetensorsError) as exc:
        raise error(
            f"{path}: cannot read the checkpoint (truncated or corrupt download? delete it and fetch again): "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def listed(keys: list[str]) -> str:
    """At most six of ``keys``, sorted, and how many more there are."""
    shown = ", ".join(sorted(keys)[:6])
    return shown + (f" (+{len(keys) - 6} more)" if len(keys) > 6 else "")


def check_state(expected: Mapping[str, tuple], state: Mapping, path: str | os.PathLike, against: str,
                error: type[Exception] = InterrogatorError) -> None:
    """Raise ``error`` unless ``state`` has exactly the keys and shapes of ``expected`` (strict loading)."""
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {listed(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {listed(unexpected)}")
        raise error(f"{path}: does not match {against} ({'; '.join(parts)})")
    wrong = [f"{key} {tuple(state[key].shape)} != {shape}" for key, shape in expected.items()
             if tuple(state[key].shape) != tuple(shape)]
    if wrong:
        raise error(f"{path}: tensors of the wrong shape: {listed(wrong)}")
