"""install.py with a fake ``launch`` module: what it asks pip for, and that it never raises."""

from __future__ import annotations

import importlib.util
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


@pytest.mark.parametrize(("torch_version", "variant"), [
    ("2.1.2+cu121", "cu121"),
    ("2.3.1+cu124", "cu124"),
    ("2.6.0+cu126", "cu125"),
    ("2.1.2+cu118", None),
    ("2.3.1+rocm5.7", None),
    ("2.13.0+cpu", None),
    ("2.13.0", None),
    (None, None),
])
def test_cuda_variant_from_the_torch_version(install, torch_version, variant):
    assert install.torch_cuda_variant(torch_version) == variant


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


def test_pip_failure_prints_one_line_and_does_not_raise(install, monkeypatch, capsys):
    monkeypatch.setattr(install, "installed_torch_version", lambda: "2.1.2+cu121")
    assert install.main(FakeLaunch(set(), fail=True)) == "failed"
    err = capsys.readouterr().out
    assert len(err.strip().splitlines()) == 1
    assert "torch backend" in err and "CMAKE_ARGS=-DGGML_CUDA=on" in err


def test_no_launch_module_does_not_raise(install, capsys):
    assert install.main() == "failed"  # no WebUI here: `import launch` fails
    assert "could not install llama-cpp-python" in capsys.readouterr().out
