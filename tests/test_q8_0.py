"""Precision q8_0: a safetensors checkpoint converted once to a Q8_0 GGUF and run by llama.cpp with our tokenizer."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("llama_cpp")
pytest.importorskip("gguf")

from lib_tagger.generate.base import SamplingParams  # noqa: E402
from lib_tagger.generate.gguf_convert import GGUF_FILE, q8_0_file  # noqa: E402
from lib_tagger.generate.llama_cpp_backend import LlamaCppGenerator  # noqa: E402
from lib_tagger.generate.torch_backend import TorchGenerator  # noqa: E402
from lib_tagger.models.manager import ModelManager  # noqa: E402
from lib_tagger.settings import UpsampleSettings  # noqa: E402
from tests.factories import torch_models as tm  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FAVOUR = {"long hair": 3.0, "cat ears": 3.0, "ahoge": 3.0, "smile": 2.0}
GREEDY = SamplingParams(max_new_tokens=12, temperature=0.0)
PROMPTS = [tm.dart_prompt("1girl, solo"), tm.dart_prompt("")]


def _pieces(manager: ModelManager, folder, precision: str, params=GREEDY, seed: int = 0, prompts=PROMPTS):
    with manager.use(str(folder), prompt_format="dart-sft", precision=precision) as loaded:
        return loaded.generator, [g.pieces for g in loaded.generator.generate(prompts, params, [seed] * len(prompts))]


@pytest.mark.parametrize("model_type", ["mistral", "mixtral"])
def test_q8_0_runs_in_llama_cpp_and_writes_what_float32_writes(tmp_path, model_type):
    folder = tm.make_dart_folder(tmp_path / model_type, model_type=model_type, favour=FAVOUR)
    manager = ModelManager(device="cpu")
    _, expected = _pieces(manager, folder, "fp32")
    generator, got = _pieces(manager, folder, "q8_0")
    assert isinstance(generator, LlamaCppGenerator) and generator.precision == "q8_0"
    assert got == expected and any("long hair" in p for p in got)
    assert (folder / GGUF_FILE).stat().st_size < (folder / "model.safetensors").stat().st_size / 2


def test_the_conversion_happens_once_and_again_when_the_checkpoint_changes(tmp_path):
    folder = tm.make_dart_folder(tmp_path / "dart", favour=FAVOUR)
    first = q8_0_file(folder)
    written = first.stat().st_mtime_ns
    assert q8_0_file(folder).stat().st_mtime_ns == written  # reused
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes())  # a new download of the same model
    assert q8_0_file(folder).stat().st_mtime_ns != written
    assert not list(folder.glob("*.tmp"))
    assert ModelManager().resolve(str(folder)).backend == "torch"  # our conversion is not the model's own GGUF


def test_q8_0_repeats_with_a_seed_honours_bans_and_reuses_a_prefix_without_changing_results(tmp_path):
    folder = tm.make_dart_folder(tmp_path / "dart", favour=FAVOUR)
    manager = ModelManager(device="cpu")
    sampled = SamplingParams(max_new_tokens=16)
    _, first = _pieces(manager, folder, "q8_0", sampled, seed=7)
    assert _pieces(manager, folder, "q8_0", sampled, seed=7)[1] == first
    banned = SamplingParams(max_new_tokens=16, banned_tags=("long hair", "*ears"))
    _, kept_out = _pieces(manager, folder, "q8_0", banned, seed=7)
    assert kept_out[0] and not any(p in ("long hair", "cat ears") for row in kept_out for p in row)

    generator = manager.use(str(folder), prompt_format="dart-sft", precision="q8_0").__enter__().generator
    round_one = generator.generate(PROMPTS[:1], sampled, [3])[0]
    follow_up = PROMPTS[0] + ", ".join(round_one.pieces[:2])
    with_prefix = generator.generate([follow_up], sampled, [4], prefix=[(PROMPTS[0], round_one.token_ids)])
    fresh = LlamaCppGenerator.load(folder / GGUF_FILE, n_gpu_layers=0, tokenizer=generator.tokenizer)
    assert with_prefix[0].token_ids == fresh.generate([follow_up], sampled, [4])[0].token_ids
    fresh.close()


def test_where_q8_0_cannot_run_torch_8_bit_runs_and_says_why(tmp_path, monkeypatch):
    folder = tm.make_dart_folder(tmp_path / "dart", favour=FAVOUR)
    monkeypatch.setitem(sys.modules, "gguf", None)  # the gguf package is not installed
    generator, pieces = _pieces(ModelManager(device="cpu"), folder, "q8_0")
    assert isinstance(generator, TorchGenerator) and pieces[0]
    assert "q8_0 was asked for" in generator.notice and "pip install gguf" in generator.notice
    assert not (folder / GGUF_FILE).exists()

    mish = tm.make_dart_folder(tmp_path / "mish", favour=FAVOUR, hidden_act="mish")
    monkeypatch.delitem(sys.modules, "gguf")
    generator, _ = _pieces(ModelManager(device="cpu"), mish, "q8_0")
    assert isinstance(generator, TorchGenerator) and "SiLU" in generator.notice


def test_q8_0_is_a_precision_of_the_settings_and_the_command_line():
    assert UpsampleSettings(precision="q8_0").precision == "q8_0"
    from lib_tagger.cli import build_parser

    args = build_parser().parse_args(["upsample", "--prompt", "1girl", "--precision", "q8_0"])
    assert args.precision == "q8_0"
