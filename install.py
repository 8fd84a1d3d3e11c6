"""Run by the WebUI at start-up (and when installed from the Extensions tab).

Installs llama-cpp-python, and only that, when it is missing: a prebuilt CUDA wheel when the
host's torch is a CUDA build, the CPU wheel otherwise. It never breaks the WebUI's start: when
no wheel fits, it prints one line and the extension uses its torch backend. When llama-cpp-python
is already there it returns at once without calling pip. After a failed attempt it waits a week
(or for another torch build) before trying again, so an offline WebUI does not wait on pip at
every start; delete ``.llama-cpp-install-failed`` to retry at once.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import re
import time
from pathlib import Path
from typing import Any

PACKAGE = "llama-cpp-python"
REQUIREMENT = "llama-cpp-python>=0.3.0"
WHEEL_INDEX = "https://abetlen.github.io/llama-cpp-python/whl/{variant}"
#: CUDA builds published on the wheel index (newest last).
CUDA_VARIANTS = ("cu121", "cu122", "cu123", "cu124", "cu125")
#: Remembers a failed install (torch version and time) so that start-up does not retry it every time.
FAILURE_MARKER = Path(__file__).resolve().with_name(".llama-cpp-install-failed")
RETRY_AFTER_S = 7 * 24 * 3600


def torch_cuda_variant(torch_version: str | None) -> str | None:
    """The wheel variant ("cu124", ...) for a torch version like "2.1.2+cu121"; None for CPU/ROCm builds."""
    match = re.search(r"\+cu(\d+)(\d)$", torch_version or "")
    if not match:
        return None
    major, minor = int(match.group(1)), int(match.group(2))
    usable = [v for v in CUDA_VARIANTS if int(v[2:-1]) == major and int(v[-1]) <= minor]
    return usable[-1] if usable else None


def installed_torch_version() -> str | None:
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None


def pip_command(variant: str | None) -> str:
    """pip arguments: only a prebuilt wheel (never a source build at start-up) from the right index."""
    index = WHEEL_INDEX.format(variant=variant or "cpu")
    return f'install "{REQUIREMENT}" --only-binary {PACKAGE} --extra-index-url {index}'


def failed_recently(marker: Path, torch_version: str | None, now: float) -> bool:
    """True when an install failed less than a week ago with the same torch build."""
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
        return record.get("torch") == torch_version and now - float(record["time"]) < RETRY_AFTER_S
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def main(launch: Any = None, marker: Path | None = None) -> str:
    """Install what is missing; returns what was done ("present", "installed <variant>", "failed",
    "skipped": failed recently)."""
    torch_version = None
    marker = marker or FAILURE_MARKER
    try:
        if launch is None:
            import launch as launch_module

            launch = launch_module
        if launch.is_installed("llama_cpp"):
            return "present"
        torch_version = installed_torch_version()
        if failed_recently(marker, torch_version, time.time()):
            return "skipped"
        variant = torch_cuda_variant(torch_version)
        label = variant or "cpu"
        launch.run_pip(pip_command(variant), f"{PACKAGE} ({label}) for sd-webui-tagger")
        marker.unlink(missing_ok=True)
        return f"installed {label}"
    except Exception as exc:  # never break the WebUI's start
        print(f"[tagger] could not install {PACKAGE} ({' '.join(str(exc).split())[:200]}); GGUF models will "
              f"use the torch backend. To build it yourself: CMAKE_ARGS=-DGGML_CUDA=on pip install {PACKAGE}")
        # stdout: the host shows an install script's stderr only when it exits non-zero
        with contextlib.suppress(OSError):
            marker.write_text(json.dumps({"torch": torch_version, "time": time.time()}), encoding="utf-8")
        return "failed"


if __name__ == "__main__":
    main()
