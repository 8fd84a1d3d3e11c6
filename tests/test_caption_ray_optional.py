"""Ray stays optional: the WebUI and the local caption path never import it; `--engine ray` without it
says so in one line. Runs in every profile (the a1111 profile has no Ray, the forge profile has it)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from lib_tagger.cli import main
from tests.conftest import ROOT

HAS_RAY = importlib.util.find_spec("ray") is not None

PROBE = """
import importlib, json, pkgutil, sys
sys.path.insert(0, {root!r})
from tests.host_double.harness import start_webui
start_webui()
import tagger_webui
for module in pkgutil.iter_modules(tagger_webui.__path__):
    importlib.import_module("tagger_webui." + module.name)
from lib_tagger.cli import main
status = main(["caption", {folder!r}, "--model", {model!r}, "--device", "cpu", "--format", "jsonl"])
print(json.dumps({{"status": status, "ray": sorted(m for m in sys.modules if m.split(".")[0] == "ray")}}))
"""


def pictures(folder):
    folder.mkdir()
    rng = np.random.default_rng(3)
    for index in range(2):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(folder / f"{index}.png")
    return folder


@pytest.fixture(scope="module")
def joytag(tmp_path_factory):
    pytest.importorskip("torch")
    from tests.factories.joytag_model import save_joytag_checkpoint

    return save_joytag_checkpoint(tmp_path_factory.mktemp("jt"), num_blocks=1, tiny=True)


@pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed in this profile: nothing could import it")
def test_the_webui_and_the_local_caption_path_never_import_ray(tmp_path, joytag):
    folder = pictures(tmp_path / "imgs")
    code = PROBE.format(root=str(ROOT), folder=str(folder), model=str(joytag))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"status": 0, "ray": []}
    assert len((folder / "captions.jsonl").read_text(encoding="utf-8").splitlines()) == 2


def test_engine_ray_without_ray_is_one_line(tmp_path, joytag, monkeypatch, capsys):
    if HAS_RAY:  # hide the installed Ray: an import of it fails as it does where it is missing
        for name in [name for name in sys.modules if name.split(".")[0] == "ray"] + ["ray", "ray.data"]:
            monkeypatch.setitem(sys.modules, name, None)
    folder = pictures(tmp_path / "imgs")
    assert main(["caption", str(folder), "--engine", "ray", "--model", str(joytag)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --engine ray needs Ray Data: pip install -r requirements/ray.txt (")
    assert err.count("\n") == 1 and not list(folder.glob("*.txt"))


def test_cluster_flags_need_the_ray_engine(tmp_path, capsys):
    folder = pictures(tmp_path / "imgs")
    assert main(["caption", str(folder), "--address", "auto"]) == 2
    assert capsys.readouterr().err == "error: --address, --workers and --cpus-per-worker take --engine ray\n"
