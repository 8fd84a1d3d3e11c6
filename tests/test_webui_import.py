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
    assert not any(m.startswith(("lib_tagger.generate", "lib_tagger.upsample", "lib_tagger.interrogate",
                                 "lib_tagger.caption"))
                   for m in result["added"])
    assert result["classes"] == ["TaggerScript"]  # the base Script is not re-registered


def test_callbacks_name_their_file_so_the_host_skips_its_stack_walk(monkeypatch):
    from tests.host_double.harness import install

    install()
    from modules import script_callbacks

    import tagger_webui

    def no_stack_walk(*args, **kwargs):
        raise AssertionError("inspect.stack() called: ~70 ms per callback in the real host")

    script_callbacks.clear_callbacks()
    monkeypatch.setattr(script_callbacks.inspect, "stack", no_stack_walk)
    tagger_webui.register_callbacks()
    registered = {kind: [(c.script, c.name) for c in script_callbacks.callback_map[f"callbacks_{kind}"]]
                  for kind in ("ui_settings", "infotext_pasted", "app_started", "before_ui", "after_component")}
    # the file and name the host's stack walk would have found: the function that registers them
    assert registered == {kind: [(tagger_webui.__file__, f"__init__.py/{kind}")] for kind in registered}
    script_callbacks.clear_callbacks()


def test_on_a_host_without_the_filename_parameter_the_on_functions_register(monkeypatch):
    from tests.host_double.harness import install

    install()
    from modules import script_callbacks

    from tagger_webui import host

    calls = []

    def older_add_callback(callbacks, fun, *, name=None, category="unknown"):
        calls.append((category, fun))
        callbacks.append(script_callbacks.ScriptCallback("found by the host", fun, category))

    def callback():
        return None

    script_callbacks.clear_callbacks()
    monkeypatch.setattr(script_callbacks, "add_callback", older_add_callback)
    host.register_callback("ui_settings", callback, filename="ignored.py")
    assert calls == [("ui_settings", callback)]
    assert [c.script for c in script_callbacks.callback_map["callbacks_ui_settings"]] == ["found by the host"]
    script_callbacks.clear_callbacks()
