"""`python -m lib_tagger upsample` with a real (tiny) model, and its failure path."""

from __future__ import annotations

import json

from tests.factories.torch_models import DART_TAGS, make_dart_folder
from tests.test_cli_dry_run import run_cli


def test_upsample_prints_json_with_prompt_tags_input_and_timings(tmp_path):
    folder = make_dart_folder(tmp_path / "tiny-dart", model_type="mistral", favour={"hat": 6.0, "sky": 6.0},
                              max_position_embeddings=512)
    args = ("upsample", "--model", str(folder), "--prompt", "1girl, (solo:1.2)", "--seed", "3",
            "--max-new-tokens", "16", "--top-k", "5")
    result = run_cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) == {"prompt", "new_tags", "nl_text", "model_input", "seed", "timings"}
    assert out["nl_text"] == ""  # Dart writes no caption
    assert out["prompt"].startswith("1girl, (solo:1.2)")
    assert set(out["new_tags"]) <= set(DART_TAGS) - {"1girl", "solo"}
    assert out["model_input"].endswith("<general>1girl, solo<|identity:none|><|input_end|>")
    assert out["timings"]["generate"] > 0
    plain = run_cli(*args)
    assert plain.returncode == 0
    assert plain.stdout == out["prompt"] + "\n"


def test_a_missing_model_is_one_line_on_stderr_and_exit_1(tmp_path):
    result = run_cli("upsample", "--model", "dart-v2-sft", "--models-dir", str(tmp_path), "--prompt", "1girl")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "model.safetensors" in result.stderr and str(tmp_path) in result.stderr
