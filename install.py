"""Run by the WebUI at start-up (and when installed from the Extensions tab).

Installs llama-cpp-python, and only that, when it is missing: a prebuilt CUDA wheel when the
host's torch is a CUDA build, the CPU wheel otherwise. The CUDA version is read from
``torch/version.py`` without importing torch (PyPI's CUDA wheels of torch carry no ``+cu…`` in
their package version), and the nearest CUDA build published for this platform is chosen. It never
breaks the WebUI's start: when no wheel fits, it prints one line with pip's reason and the extension
runs DanTagGen through its torch backend. When llama-cpp-python is already there it returns at once
without calling pip. After a failed attempt it waits a week (or for another torch build) before
trying again, so an offline WebUI does not wait on pip at every start; delete
``.llama-cpp-install-failed`` to retry at once.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.machinery
import importlib.metadata
import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PACKAGE = "llama-cpp-python"
REQUIREMENT = "llama-cpp-python>=0.3.0"
WHEEL_INDEX = "https://abetlen.github.io/llama-cpp-python/whl/{variant}"
#: CUDA builds on the wheel index, by platform (llama-cpp-python's build-wheels-cuda.yaml: CUDA 11.8,
#: 12.1-12.5, 13.0 and 13.2; its Windows builds leave out 12.1-12.3; none for macOS).
CUDA_VARIANTS = {
    "linux": ("cu118", "cu121", "cu122", "cu123", "cu124", "cu125", "cu130", "cu132"),
    "win32": ("cu118", "cu124", "cu125", "cu130", "cu132"),
}
#: Remembers a failed install (torch build and time) so that start-up does not retry it every time.
FAILURE_MARKER = Path(__file__).resolve().with_name(".llama-cpp-install-failed")
RETRY_AFTER_S = 7 * 24 * 3600
REASON_LIMIT = 300


def torch_cuda_version(search_path: Sequence[str] | None = None) -> str | None:
    """The CUDA version torch was built with ("12.1"), read from ``torch/version.py`` without importing
    torch; None for CPU and ROCm builds, or without torch."""
    spec = importlib.machinery.PathFinder.find_spec("torch", None if search_path is None else list(search_path))
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        try:
            tree = ast.parse((Path(folder) / "version.py").read_text(encoding="utf-8"))
        except (OSError, SyntaxError, ValueError):
            continue
        for node in tree.body:  # `cuda = '12.1'` (older torch) or `cuda: Optional[str] = '12.8'`
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                node, ast.AnnAssign) else []
            if any(isinstance(target, ast.Name) and target.id == "cuda" for target in targets):
                value = getattr(node.value, "value", None)
                return value if isinstance(value, str) else None
    return None


def cuda_from_torch_version(torch_version: str | None) -> str | None:
    """"12.1" for a torch version like "2.1.2+cu121" (download.pytorch.org's builds); else None."""
    match = re.search(r"\+cu(\d+)(\d)$", torch_version or "")
    return f"{int(match.group(1))}.{match.group(2)}" if match else None


def cuda_variant(cuda_version: str | None, platform: str = sys.platform) -> str | None:
    """The wheel variant for ``cuda_version`` on ``platform``: the newest build of the same CUDA major
    version not newer than it, else the oldest newer one of that major version; None when there is none
    (CPU, ROCm, another CUDA major version, macOS)."""
    match = re.match(r"(\d+)\.(\d+)", cuda_version or "")
    if not match:
        return None
    major, minor = int(match.group(1)), int(match.group(2))
    variants = CUDA_VARIANTS.get("win32" if platform.startswith("win") else platform, ())
    same_major = [(int(v[2:-1]), int(v[-1]), v) for v in variants if int(v[2:-1]) == major]
    older = [v for _, v_minor, v in same_major if v_minor <= minor]
    if older:
        return older[-1]
    return same_major[0][2] if same_major else None


def installed_torch_version() -> str | None:
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None


def pip_command(variant: str | None) -> str:
    """pip arguments: only a prebuilt wheel (never a source build at start-up) from the right index."""
    index = WHEEL_INDEX.format(variant=variant or "cpu")
    return f'install "{REQUIREMENT}" --only-binary {PACKAGE} --extra-index-url {index}'


def pip_reason(exc: BaseException) -> str:
    """Why the install failed, in one line: pip's last ``ERROR:`` line when the host captured pip's
    output (A1111's ``launch.run_pip`` puts it in the exception), else the exception's text."""
    text = str(exc)
    errors = re.findall(r"ERROR:\s*(\S.*)", text)  # one per line; the first may follow "stderr: "
    reason = errors[-1].strip() if errors else " ".join(text.split()) or type(exc).__name__
    return reason[:REASON_LIMIT]


def failure_line(reason: str, variant: str | None, cuda: str | None, platform: str = sys.platform,
                 python: str = sys.executable) -> str:
    """The one line printed when the install failed: pip's reason, what that means, how to install by hand."""
    label = f"{variant} wheel" if variant else f"CUDA {cuda}: no prebuilt CUDA wheel, CPU wheel" if cuda else \
        "CPU wheel"
    by_hand = f'"{python}" -m pip install {PACKAGE}'
    line = (f"[tagger] could not install {PACKAGE} ({label}): {reason}. DanTagGen runs through the torch "
            f"backend meanwhile; .gguf files need {PACKAGE}. To install it: {by_hand} --extra-index-url "
            f"{WHEEL_INDEX.format(variant=variant or 'cpu')}")
    if cuda:  # a CUDA torch: building llama.cpp with CUDA needs the CUDA toolkit and a compiler
        build = f'set "CMAKE_ARGS=-DGGML_CUDA=on" && {by_hand}' if platform.startswith("win") else \
            f"CMAKE_ARGS=-DGGML_CUDA=on {by_hand}"
        line += f"; or build it for CUDA: {build}"
    return line


def failed_recently(marker: Path, torch_build: str | None, now: float) -> bool:
    """True when an install failed less than a week ago with the same torch build."""
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
        return record.get("torch") == torch_build and now - float(record["time"]) < RETRY_AFTER_S
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def main(launch: Any = None, marker: Path | None = None, platform: str = sys.platform) -> str:
    """Install what is missing; returns what was done ("present", "installed <variant>", "failed",
    "skipped": failed recently)."""
    torch_build = variant = cuda = None
    marker = marker or FAILURE_MARKER
    try:
        if launch is None:
            import launch as launch_module

            launch = launch_module
        if launch.is_installed("llama_cpp"):
            return "present"
        torch_version = installed_torch_version()
        # a local version label ("+cu121", "+cpu", "+rocm6.0") says which build it is; PyPI's CUDA builds carry
        # none, and only then is torch/version.py read
        labelled = "+" in (torch_version or "")
        cuda = cuda_from_torch_version(torch_version) if labelled else torch_cuda_version()
        torch_build = f"{torch_version} cuda {cuda}" if cuda else torch_version
        if failed_recently(marker, torch_build, time.time()):
            return "skipped"
        variant = cuda_variant(cuda, platform)
        label = variant or "cpu"
        launch.run_pip(pip_command(variant), f"{PACKAGE} ({label}) for sd-webui-tagger")
        marker.unlink(missing_ok=True)
        return f"installed {label}"
    except Exception as exc:  # never break the WebUI's start
        # stdout: the host shows an install script's stderr only when it exits non-zero
        print(failure_line(pip_reason(exc), variant, cuda, platform))
        with contextlib.suppress(OSError):
            marker.write_text(json.dumps({"torch": torch_build, "time": time.time()}), encoding="utf-8")
        return "failed"


if __name__ == "__main__":
    main()
