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


def test_tipo_json_gives_the_tags_and_the_caption_apart(tmp_path):
    from tests.factories.tipo_models import make_tipo_folder
    from tests.test_tipo_models import transitions

    folder = make_tipo_folder(tmp_path / "TIPO-tiny", favour={",": 3.0}, transitions=transitions(), hidden_size=128)
    result = run_cli("upsample", "--model", str(folder), "--prompt", "1girl, solo", "--task", "add_caption",
                     "--length", "very_short", "--nl-length", "very_short", "--nl-position", "new_line",
                     "--temperature", "0.35", "--top-k", "60", "--min-p", "0.1", "--max-new-tokens", "32",
                     "--backend", "torch", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["new_tags"] and out["nl_text"].startswith("She sits.")
    assert out["prompt"] == "1girl, solo, " + ", ".join(out["new_tags"]) + "\n" + out["nl_text"]
    assert out["model_input"] == "aspect_ratio: 1.0\ntarget: <|very_short|>\ntag: 1girl, solo"


def test_a_missing_model_is_one_line_on_stderr_and_exit_1(tmp_path):
    result = run_cli("upsample", "--model", "dart-v2-sft", "--models-dir", str(tmp_path), "--prompt", "1girl")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "model.safetensors" in result.stderr and str(tmp_path) in result.stderr
