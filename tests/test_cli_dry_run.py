"""`python -m lib_tagger upsample --dry-run`: exactly the model input on stdout, no model file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PROMPT = ("masterpiece, best quality, 1girl, hatsune miku, vocaloid, <lora:miku:0.8>, (aqua hair:1.2), "
          "twintails, star \\(symbol\\), highres, BREAK smile, sensitive")
GENERAL = "1girl, aqua hair, twintails, star (symbol), smile"
DANTAGGEN = ("rating: sensitive\nartist: <|empty|>\ncharacters: hatsune miku\ncopyrights: vocaloid\n"
             "aspect ratio: 0.7\ntarget: <|long|>\ngeneral: " + GENERAL + "<|input_end|>")
EXPECTED = {
    "dart-v2-sft": "<|bos|><copyright>vocaloid</copyright><character>hatsune miku</character><|rating:sensitive|>"
                   "<|aspect_ratio:tall|><|length:long|><general>" + GENERAL + "<|identity:none|><|input_end|>",
    "dart-v2-moe-sft": "<|bos|><copyright>vocaloid</copyright><character>hatsune miku</character>"
                       "<|rating:sensitive|><|aspect_ratio:tall|><|length:long|><general>" + GENERAL
                       + "<|identity:none|><|input_end|>",
    "dart-v2-base": "<|bos|><copyright>vocaloid</copyright><character>hatsune miku</character><|rating:sensitive|>"
                    "<|aspect_ratio:tall|><|length:long|><general>" + GENERAL,
    "dantaggen-beta": DANTAGGEN,
    "dantaggen-delta": "quality: masterpiece, best quality\n" + DANTAGGEN,
    "dantaggen-delta-rev2": "quality: masterpiece, best quality\n" + DANTAGGEN,
}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "lib_tagger", *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_dry_run_prints_exactly_the_model_input(model):
    result = run_cli("upsample", "--model", model, "--prompt", PROMPT, "--width", "832", "--height", "1216",
                     "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout == EXPECTED[model] + "\n"


TIPO_META = ("meta: highres\nrating: sensitive\ncharacters: hatsune miku\ncopyrights: vocaloid\n"
             "quality: masterpiece, best quality\naspect_ratio: 0.7\n")
NL = "A girl sings on a stage, under blue lights."


@pytest.mark.parametrize(("extra", "expected"), [
    # KGen's default request (expand tags and prompt, tags first): its first step
    ((), TIPO_META + "target: <|long|>\ntag: " + GENERAL),
    (("--nl-prompt", NL), TIPO_META + "target: <|long|> <|short_to_tag|>\nshort: " + NL + "\ntag: " + GENERAL),
    (("--length", "medium"), TIPO_META + "target: <|long|>\ntag: " + GENERAL),  # medium reads as long
    (("--length", "very_short", "--nl-length", "short", "--task", "add_caption"),
     TIPO_META + "target: <|very_short|>\ntag: " + GENERAL),
])
def test_tipo_dry_run_prints_exactly_the_first_steps_input(extra, expected):
    for model in ("tipo-500m-ft", "tipo-100m"):
        result = run_cli("upsample", "--model", model, "--prompt", PROMPT, "--width", "832", "--height", "1216",
                         *extra, "--dry-run")
        assert result.returncode == 0, result.stderr
        assert result.stdout == expected + "\n"


def test_tipo_dry_run_of_a_caption_alone():
    result = run_cli("upsample", "--model", "tipo-500m-ft", "--prompt", "<lora:x:1>", "--nl-prompt", NL,
                     "--task", "caption_to_tags", "--length", "short", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "aspect_ratio: 1.0\ntarget: <|short|> <|long_to_tag|>\nlong: " + NL + "\ntag:\n"


def test_dry_run_options_change_the_input():
    result = run_cli("upsample", "--model", "dart-v2-sft", "--prompt", "1girl, solo, red hair", "--rating",
                     "explicit", "--length", "very_short", "--identity", "strict", "--width", "1216", "--height",
                     "832", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("<|bos|><copyright></copyright><character></character><|rating:explicit|>"
                             "<|aspect_ratio:wide|><|length:very_short|><general>1girl, solo, red hair"
                             "<|identity:strict|><|input_end|>\n")


def test_json_prints_the_sorted_fields():
    result = run_cli("upsample", "--model", "dart-v2-sft", "--prompt", PROMPT, "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["fields"]["character"] == ["hatsune miku"]
    assert out["fields"]["copyright"] == ["vocaloid"]
    assert out["fields"]["quality"] == ["masterpiece", "best quality"]
    assert out["fields"]["meta"] == ["highres"]
    assert out["fields"]["special"] == ["1girl"]
    assert out["model_input"] == EXPECTED["dart-v2-sft"].replace("tall", "square")


@pytest.mark.parametrize(
    "args",
    [
        ("--model", "dart-v9", "--prompt", "a"),
        ("--prompt", "a", "--length", "huge"),
        ("--prompt", "a", "--top-p", "3"),
        ("--prompt", "a", "--width", "0"),
        ("--model", "./missing-folder", "--prompt", "a"),
        ("--model", "dart-v2-sft"),
        ("--model", "tipo-500m-ft", "--prompt", "a", "--task", "dance"),
        ("--model", "tipo-500m-ft", "--prompt", "a", "--nl-length", "huge"),
    ],
)
def test_invalid_arguments_give_one_line_and_exit_2(args):
    result = run_cli("upsample", *args, "--dry-run")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, result.stderr
