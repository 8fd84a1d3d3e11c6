"""install.py with a fake ``launch`` module: what it asks pip for, and that it never raises."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_install():
    spec = importlib.util.spec_from_file_location("tagger_install", ROOT / "install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeLaunch:
    def __init__(self, installed: set[str], fail: bool = False):
        self.installed = installed
        self.fail = fail
        self.checked: list[str] = []
        self.pip: list[tuple[str, str]] = []

    def is_installed(self, package: str) -> bool:
        self.checked.append(package)
        return package in self.installed

    def run_pip(self, command: str, desc: str | None = None) -> str:
        self.pip.append((command, desc or ""))
        if self.fail:
            raise RuntimeError("Couldn't install llama-cpp-python.\nCommand: pip install ...\nError code: 1")
        return ""


@pytest.fixture
def install(tmp_path, monkeypatch):
    module = load_install()
    monkeypatch.setattr(module, "FAILURE_MARKER", tmp_path / ".llama-cpp-install-failed")
    return module


def test_a_failure_is_not_retried_at_every_start(install, monkeypatch):
    monkeypatch.setattr(install, "installed_torch_version", lambda: "2.1.2+cu121")
    assert install.main(FakeLaunch(set(), fail=True)) == "failed"
    assert install.FAILURE_MARKER.is_file()
    again = FakeLaunch(set())
    assert install.main(again) == "skipped" and again.pip == []
    monkeypatch.setattr(install, "installed_torch_version", lambda: "2.3.1+cu124")  # another torch: try again
    assert install.main(again) == "installed cu124"
    assert not install.FAILURE_MARKER.exists()
    install.FAILURE_MARKER.write_text('{"torch": "2.3.1+cu124", "time": 0}')  # a week has passed
    assert install.main(FakeLaunch(set())) == "installed cu124"


def test_present_means_no_pip_call(install):
    launch = FakeLaunch({"llama_cpp"})
    assert install.main(launch) == "present"
    assert launch.pip == []


@pytest.mark.parametrize(("torch_version", "cuda"), [
    ("2.1.2+cu121", "12.1"),
    ("2.3.1+cu118", "11.8"),
    ("2.9.0+cu130", "13.0"),
    ("2.3.1+rocm5.7", None),
    ("2.13.0+cpu", None),
    ("2.12.1", None),  # PyPI's CUDA wheels: no suffix, torch/version.py says
    (None, None),
])
def test_cuda_version_from_a_download_pytorch_org_version(install, torch_version, cuda):
    assert install.cuda_from_torch_version(torch_version) == cuda


@pytest.mark.parametrize(("cuda", "platform", "variant"), [
    ("12.1", "linux", "cu121"),
    ("12.4", "linux", "cu124"),
    ("12.6", "linux", "cu125"),  # newest 12.x build not newer than the runtime
    ("12.8", "linux", "cu125"),
    ("11.8", "linux", "cu118"),
    ("11.7", "linux", "cu118"),  # nothing older in 11.x: the nearest newer one
    ("13.0", "linux", "cu130"),
    ("13.1", "linux", "cu130"),
    ("13.2", "linux", "cu132"),
    ("12.1", "win32", "cu124"),  # no 12.1-12.3 builds for Windows
    ("12.6", "win32", "cu125"),
    ("13.0", "win32", "cu130"),
    ("12.1", "darwin", None),
    ("10.2", "linux", None),
    ("14.0", "linux", None),
    (None, "linux", None),
])
def test_nearest_published_cuda_build_for_the_platform(install, cuda, platform, variant):
    assert install.cuda_variant(cuda, platform) == variant


def write_torch(site: Path, version_py: str) -> None:
    (site / "torch").mkdir(parents=True)
    (site / "torch" / "__init__.py").write_text("raise ImportError('torch must not be imported')\n")
    (site / "torch" / "version.py").write_text(version_py)


@pytest.mark.parametrize(("version_py", "cuda"), [
    ("from typing import Optional\n__version__ = '2.12.1+cu130'\ncuda: Optional[str] = '13.0'\n"
     "hip: Optional[str] = None\n", "13.0"),
    ("__version__ = '2.1.2+cu121'\ndebug = False\ncuda = '12.1'\nhip = None\n", "12.1"),
    ("from typing import Optional\ncuda: Optional[str] = None\nhip: Optional[str] = '6.2.41133'\n", None),
    ("this is not python(\n", None),
])
def test_cuda_version_is_read_from_torch_version_py_without_importing_torch(install, tmp_path, version_py, cuda):
    write_torch(tmp_path, version_py)
    assert install.torch_cuda_version([str(tmp_path)]) == cuda
    assert install.torch_cuda_version([str(tmp_path / "empty")]) is None  # no torch there


def test_pypi_cuda_torch_without_a_suffix_installs_the_cuda_wheel(install, monkeypatch):
    monkeypatch.setattr(install, "installed_torch_version", lambda: "2.12.1")  # metadata of 2.12.1+cu130
    monkeypatch.setattr(install, "torch_cuda_version", lambda: "13.0")
    launch = FakeLaunch(set())
    assert install.main(launch, platform="linux") == "installed cu130"
    assert launch.pip[0][0].endswith("--extra-index-url https://abetlen.github.io/llama-cpp-python/whl/cu130")


def test_cuda_torch_installs_the_cuda_wheel_only(install, monkeypatch):
    monkeypatch.setattr(install, "installed_torch_version", lambda: "2.1.2+cu121")
    launch = FakeLaunch(set())
    assert install.main(launch) == "installed cu121"
    (command, desc), = launch.pip
    assert "https://abetlen.github.io/llama-cpp-python/whl/cu121" in command
    assert "--only-binary llama-cpp-python" in command
    assert command.count("install ") == 1 and '"llama-cpp-python>=0.3.0"' in command
    for pinned in ("torch", "numpy", "gradio", "transformers", "pydantic", "Pillow"):
        assert pinned not in command
    assert "cu121" in desc


def test_cpu_torch_installs_the_cpu_wheel(install, monkeypatch):
    monkeypatch.setattr(install, "installed_torch_version", lambda: "2.13.0+cpu")
    launch = FakeLaunch(set())
    assert install.main(launch) == "installed cpu"
    assert "/whl/cpu" in launch.pip[0][0]


PIP_FAILURE = RuntimeError(  # what the host's launch.run_pip raises (launch_utils.run, output captured)
    "Couldn't install llama-cpp-python (cu124) for sd-webui-tagger.\n"
    'Command: "C:\\stable-diffusion-webui\\venv\\Scripts\\python.exe" -m pip install "llama-cpp-python>=0.3.0" '
    "--only-binary llama-cpp-python --extra-index-url https://abetlen.github.io/llama-cpp-python/whl/cu124 "
    "--prefer-binary\nError code: 1\nstdout: Looking in indexes: https://pypi.org/simple, "
    "https://abetlen.github.io/llama-cpp-python/whl/cu124\n\n"
    "stderr: ERROR: Could not find a version that satisfies the requirement llama-cpp-python>=0.3.0 "
    "(from versions: none)\nERROR: No matching distribution found for llama-cpp-python>=0.3.0\n")


class FailingLaunch(FakeLaunch):
    def run_pip(self, command: str, desc: str | None = None) -> str:
        self.pip.append((command, desc or ""))
        raise PIP_FAILURE


@pytest.mark.parametrize("platform", ["win32", "linux"])
def test_pip_failure_prints_one_line_with_pips_reason_and_does_not_raise(install, monkeypatch, capsys, platform):
    monkeypatch.setattr(install, "installed_torch_version", lambda: "2.3.1+cu124")
    monkeypatch.setattr(install, "torch_cuda_version", lambda: None)
    assert install.main(FailingLaunch(set()), platform=platform) == "failed"
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1
    assert "(cu124 wheel): No matching distribution found for llama-cpp-python>=0.3.0." in out
    assert "torch backend" in out and ".gguf files need llama-cpp-python" in out
    assert "--extra-index-url https://abetlen.github.io/llama-cpp-python/whl/cu124" in out  # whole, not cut
    assert f'"{sys.executable}" -m pip install llama-cpp-python' in out
    build = 'set "CMAKE_ARGS=-DGGML_CUDA=on" && ' if platform == "win32" else "CMAKE_ARGS=-DGGML_CUDA=on "
    assert f"or build it for CUDA: {build}" in out


def test_pips_reason_is_its_last_error_line(install):
    assert install.pip_reason(PIP_FAILURE) == "No matching distribution found for llama-cpp-python>=0.3.0"
    only = RuntimeError("Couldn't install x.\nError code: 1\nstderr: ERROR: Could not open requirements file")
    assert install.pip_reason(only) == "Could not open requirements file"
    assert install.pip_reason(RuntimeError("no\nnetwork")) == "no network"


def test_pip_failure_without_cuda_gives_no_cuda_hint(install, monkeypatch, capsys):
    monkeypatch.setattr(install, "installed_torch_version", lambda: "2.13.0+cpu")
    monkeypatch.setattr(install, "torch_cuda_version", lambda: None)
    assert install.main(FailingLaunch(set()), platform="linux") == "failed"
    out = capsys.readouterr().out
    assert "(CPU wheel): No matching distribution found" in out and "/whl/cpu" in out
    assert "CUDA" not in out


def test_no_launch_module_does_not_raise(install, capsys):
    assert install.main() == "failed"  # no WebUI here: `import launch` fails
    assert "could not install llama-cpp-python" in capsys.readouterr().out
