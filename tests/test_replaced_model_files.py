"""A model file replaced or cut short under a loaded model (users copy new models over old ones) must not kill
the process: the loaded weights are the process's own memory, not pages of the file. Each case runs in a child
process, since a memory-mapped file that shrinks ends a process with SIGBUS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

_CHILD = r"""
import json, os, sys
kind, path = sys.argv[1], sys.argv[2]

def run():
    if kind == "joytag":
        import numpy as np
        from PIL import Image
        image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8))
        from lib_tagger.interrogate.loading import predict_images
        scores = predict_images(tagger, [image])[0].scores
        return [round(float(v), 5) for v in list(scores.values())[:20]]
    from lib_tagger.generate.base import SamplingParams
    params = SamplingParams(temperature=0, max_new_tokens=12)
    return [g.token_ids for g in tagger.generate([prompt], params, [1])]

if kind == "torch":
    import torch
    torch.set_num_threads(1)
    from lib_tagger.generate.torch_backend import TorchGenerator
    from tests.factories.torch_models import dart_prompt
    tagger, prompt = TorchGenerator.from_pretrained(path, device="cpu"), dart_prompt()
    weights = path + "/model.safetensors"
elif kind == "gguf":
    from lib_tagger.generate.llama_cpp_backend import LlamaCppGenerator
    from tests.factories.gguf_models import dantaggen_prompt
    tagger, prompt, weights = LlamaCppGenerator.load(path, n_gpu_layers=0), dantaggen_prompt(), path
else:
    import torch
    torch.set_num_threads(1)
    from lib_tagger.interrogate.joytag.loader import JoyTagger
    tagger, weights = JoyTagger.load(path, device="cpu"), path + "/model.safetensors"
before = run()
with open(weights, "r+b") as handle:  # as `head -c 4096 /dev/urandom > model.safetensors` does: same file
    handle.truncate(0)
    handle.write(os.urandom(4096))
after = run()
print(json.dumps({"same": before == after}))
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from tests.factories.gguf_models import tiny_spec, write_llama_gguf
    from tests.factories.joytag_model import save_joytag_checkpoint
    from tests.factories.torch_models import make_dart_folder

    root = tmp_path_factory.mktemp("replaced")
    return {
        "torch": make_dart_folder(root / "dart", max_position_embeddings=256),
        "gguf": write_llama_gguf(root / "model.gguf", tiny_spec(tensor_type="q8_0")),
        "joytag": save_joytag_checkpoint(root / "joytag", num_blocks=1, tiny=True),
    }


@pytest.mark.parametrize("kind", ["torch", "gguf", "joytag"])
def test_a_loaded_model_keeps_working_when_its_file_is_overwritten(files, kind, tmp_path):
    if kind == "gguf":
        pytest.importorskip("llama_cpp")
    import shutil

    source = files[kind]
    copy = tmp_path / source.name  # each case overwrites its own copy
    if source.is_dir():
        shutil.copytree(source, copy)
    else:
        shutil.copy2(source, copy)
    result = subprocess.run([sys.executable, "-c", _CHILD, kind, str(copy)], capture_output=True, text=True,
                            timeout=300, cwd=str(ROOT))
    assert result.returncode == 0, f"exit {result.returncode} (-7 is SIGBUS): {result.stderr[-2000:]}"
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"same": True}


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads the process's memory map (Linux)")
def test_no_loaded_model_keeps_its_file_mapped(files):
    import gc

    from lib_tagger.generate.torch_backend import TorchGenerator
    from lib_tagger.interrogate.joytag.loader import JoyTagger

    loaded = [TorchGenerator.from_pretrained(files["torch"], device="cpu"), JoyTagger.load(str(files["joytag"]),
                                                                                          device="cpu")]
    weights = [str(files["torch"] / "model.safetensors"), str(files["joytag"] / "model.safetensors")]
    try:
        from lib_tagger.generate.llama_cpp_backend import LlamaCppGenerator

        loaded.append(LlamaCppGenerator.load(files["gguf"], n_gpu_layers=0))
        weights.append(str(files["gguf"]))
    except ImportError:
        pass
    gc.collect()
    mapped = Path("/proc/self/maps").read_text()
    try:
        assert [path for path in weights if path in mapped] == []
    finally:
        for model in loaded:
            model.close()
