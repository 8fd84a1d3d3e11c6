"""Loading scripts/tagger.py the way the host does must stay cheap: no torch, llama_cpp,
transformers or model code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, sys
sys.path.insert(0, {root!r})
import gradio, fastapi  # the host has these loaded before any extension
from tests.host_double.harness import install
install()
from modules import scripts
before = set(sys.modules)
scripts.load_scripts([scripts.ScriptFile({root!r}, "tagger.py", {script!r})])
added = sorted(set(sys.modules) - before)
print(json.dumps({{"added": added, "classes": [d.script_class.__name__ for d in scripts.scripts_data]}}))
"""


def test_loading_the_script_imports_nothing_heavy():
    code = PROBE.format(root=str(ROOT), script=str(ROOT / "scripts" / "tagger.py"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    heavy = [m for m in result["added"] if m.split(".")[0] in ("torch", "llama_cpp", "transformers", "safetensors",
                                                             "tokenizers", "numpy")]
    assert heavy == []
    assert not any(m.startswith(("lib_tagger.generate", "lib_tagger.upsample", "lib_tagger.joytag"))
                   for m in result["added"])
    assert result["classes"] == ["TaggerScript"]  # the base Script is not re-registered
