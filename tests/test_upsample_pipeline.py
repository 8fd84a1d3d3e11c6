"""The whole upsampling pipeline on tiny real models: torch (Dart-style Mixtral) and llama.cpp (DanTagGen GGUF)."""

from __future__ import annotations

import pytest

from lib_tagger.generate.base import ModelLoadError
from lib_tagger.models.files import ModelFilesMissing
from lib_tagger.models.manager import ModelManager
from lib_tagger.prompt import extract_tags, normalize_tag
from lib_tagger.settings import UpsampleSettings
from lib_tagger.upsample import prepare_prompt, upsample_prompts
from tests.factories.gguf_models import dantaggen_prompt
from tests.factories.torch_models import DART_TAGS, make_dart_folder

PROMPT = "masterpiece, 1girl, <lora:miku:0.7>, (hatsune miku:1.1), vocaloid, long_hair, BREAK smile"
FAVOUR = {"hat": 6.0, "skirt": 6.0, "blue eyes": 6.0, "smile": 6.0, "long hair": 6.0, "</general>": 2.0}


@pytest.fixture(scope="module")
def dart_folder(tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    folder = make_dart_folder(tmp_path_factory.mktemp("models") / "tiny-dart-v2-moe", model_type="mixtral",
                              favour=FAVOUR, max_position_embeddings=512)
    yield folder
    torch.set_num_threads(threads)


def run(folder, prompts, seeds, manager=None, should_stop=None, **changes):
    values = {"max_new_tokens": 24, "temperature": 1.0, "top_k": 8, **changes}
    settings = UpsampleSettings(enabled=True, model=str(folder), **values)
    manager = manager or ModelManager(device="cpu")
    return upsample_prompts(prompts, settings, seeds=seeds, width=832, height=1216, manager=manager,
                            should_stop=should_stop)


def test_new_tags_come_from_the_model_and_only_the_insertion_point_changes(dart_folder):
    (result,) = run(dart_folder, [PROMPT], [7])
    assert result.original == PROMPT
    assert result.model_input == prepare_prompt(PROMPT, UpsampleSettings(), 832, 1216, "dart-sft").model_input
    assert result.model_input.startswith("<|bos|><copyright>vocaloid</copyright><character>hatsune miku")
    assert result.new_tags, "the favoured tags make an empty result very unlikely"
    assert set(result.new_tags) <= set(DART_TAGS)
    # the prompt's own tags (long_hair == long hair, smile) are never added again, nor duplicates
    present = {normalize_tag(t.tag) for t in extract_tags(PROMPT)}
    assert not present & set(result.new_tags)
    assert len(set(result.new_tags)) == len(result.new_tags)
    assert result.prompt.startswith(PROMPT)
    assert result.prompt == PROMPT + ", " + ", ".join(result.new_tags)
    assert result.timings["generate"] > 0 and result.timings["total"] >= result.timings["generate"]


def test_same_seed_same_tags_and_batches_match_single_runs(dart_folder):
    manager = ModelManager(device="cpu")
    prompts = [PROMPT, "1girl, solo", "", "sky, cloud, outdoors"]
    seeds = [1, 2, 3, 4]
    batch = run(dart_folder, prompts, seeds, manager)
    singles = [run(dart_folder, [p], [s], manager)[0] for p, s in zip(prompts, seeds)]
    assert [r.prompt for r in batch] == [r.prompt for r in singles]
    outcomes = {tuple(run(dart_folder, [PROMPT], [seed], manager)[0].new_tags) for seed in range(5)}
    assert len(outcomes) > 1, "different seeds should not all give the same tags"


def test_before_break_position_and_bans(dart_folder):
    (result,) = run(dart_folder, [PROMPT], [7], position="before_break", ban_tags="hat, *eyes, /^sk/")
    for tag in result.new_tags:
        assert tag != "hat" and not tag.endswith("eyes") and not tag.startswith("sk")
    head, tail = PROMPT.split(" BREAK ")
    if result.new_tags:
        assert result.prompt == head + ", " + ", ".join(result.new_tags) + " BREAK " + tail


def test_manager_caches_and_unloads(dart_folder):
    manager = ModelManager(device="cpu")
    run(dart_folder, ["1girl"], [0], manager)
    assert manager.loaded_names() == [str(dart_folder)]
    first = manager._get(str(dart_folder), None)
    run(dart_folder, ["1girl"], [0], manager)
    assert manager._get(str(dart_folder), None) is first  # reused, not reloaded
    manager.unload()
    assert manager.loaded_names() == []
    manager.configure(keep_loaded=False)
    run(dart_folder, ["1girl"], [0], manager)
    assert manager.loaded_names() == []


def test_missing_and_corrupt_models_raise_clear_errors(tmp_path, dart_folder, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelFilesMissing, match="model.safetensors"):
        run("dart-v2-sft", ["1girl"], [0], ModelManager(models_dir=str(tmp_path), device="cpu"))
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json"):
        (broken / name).write_bytes((dart_folder / name).read_bytes())
    (broken / "model.safetensors").write_bytes((dart_folder / "model.safetensors").read_bytes()[:5000])
    with pytest.raises(ModelLoadError, match="model.safetensors"):
        run(broken, ["1girl"], [0])


def test_dantaggen_gguf_through_llama_cpp_with_top_up(tmp_path):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    from tests.factories.gguf_models import tiny_spec, write_llama_gguf

    path = write_llama_gguf(tmp_path / "DanTagGen-delta-tiny.gguf", tiny_spec(tensor_type="q8_0"))
    settings = dict(length="very_short", max_new_tokens=16)
    first = run(path, ["1girl, solo"], [3], **settings)[0]
    again = run(path, ["1girl, solo"], [3], **settings)[0]
    assert first.prompt == again.prompt
    assert first.model_input.startswith("quality: masterpiece\nrating: <|empty|>\n")
    assert first.model_input.endswith("general: 1girl, solo<|input_end|>")
    assert first.prompt.startswith("1girl, solo")
    assert 0 <= first.timings["topup_rounds"] <= 3


# --- DanTagGen top-up rounds keep llama.cpp's evaluated first-round input ---

COMMAS = {"</s>": -30.0, "▁,": 3.0, ",": 3.0}  # short tags and no eos: top-up rounds find new tags
TOPUP_SETTINGS = dict(length="very_short", max_new_tokens=12)


@pytest.fixture(scope="module")
def dtg_path(tmp_path_factory):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    from tests.factories.gguf_models import tiny_spec, write_llama_gguf

    folder = tmp_path_factory.mktemp("gguf")
    return write_llama_gguf(folder / "DanTagGen-delta-tiny.gguf", tiny_spec(tensor_type="q8_0", token_bias=COMMAS))


@pytest.fixture
def evals(monkeypatch):
    """(tokens already in the context, tokens evaluated) of every llama.cpp evaluation of a prompt.

    That is every ``eval`` before a ``generate()`` call yields its first token; after it, tokens
    are evaluated one at a time as they are generated.
    """
    import llama_cpp

    calls: list[tuple[int, int]] = []
    in_prompt = [True]
    original_eval, original_generate = llama_cpp.Llama.eval, llama_cpp.Llama.generate

    def counting_eval(self, tokens):
        if in_prompt[0]:
            calls.append((self.n_tokens, len(tokens)))
        return original_eval(self, tokens)

    def marking_generate(self, *args, **kwargs):
        tokens = original_generate(self, *args, **kwargs)
        try:
            first = next(tokens)
            in_prompt[0] = False
            yield first
            yield from tokens
        finally:
            in_prompt[0] = True
            tokens.close()

    monkeypatch.setattr(llama_cpp.Llama, "eval", counting_eval)
    monkeypatch.setattr(llama_cpp.Llama, "generate", marking_generate)
    return calls


def test_each_top_up_round_evaluates_only_the_tags_new_since_the_round_before(dtg_path, evals, monkeypatch):
    from lib_tagger.generate.llama_cpp_backend import LlamaCppGenerator

    manager = ModelManager(device="cpu")
    reused = run(dtg_path, ["1girl, solo"], [3], manager, **TOPUP_SETTINGS)[0]
    rounds = int(reused.timings["topup_rounds"])
    assert rounds >= 3
    with manager.use(str(dtg_path)) as loaded:
        base = len(loaded.generator.tokenize_prompt(reused.model_input))
    # One evaluation from an empty context, then each top-up round goes on from the round before
    # it, whose prompt and generated tokens the context still holds: it evaluates only tokens
    # past that prompt (a round with no tags found yet re-sends the input alone: evaluated whole).
    prompts = [call for call in evals if call[1] > 1 or call[0] > 0]
    assert evals[0] == (0, base) and len(prompts) == rounds + 1
    end = 0
    for start, count in evals:
        if (start, count) != (0, base):
            assert start >= end and count > 0, evals
        end = start + count
    assert sum(start > base for start, _ in evals) >= 2  # rounds that reuse an earlier top-up round
    with_reuse = sum(n for _, n in evals)

    evals.clear()
    monkeypatch.setattr(LlamaCppGenerator, "reuses_prefix", False)
    manager.unload()
    fresh = run(dtg_path, ["1girl, solo"], [3], manager, **TOPUP_SETTINGS)[0]
    assert [start for start, _ in evals] == [0] * (rounds + 1)
    assert with_reuse <= end < sum(n for _, n in evals)
    # On the CPU the split evaluation gives the same logits, so the same tags.
    assert fresh.prompt == reused.prompt and fresh.new_tags == reused.new_tags


def test_top_up_results_do_not_depend_on_calls_between_the_rounds(dtg_path, monkeypatch):
    from lib_tagger.generate.llama_cpp_backend import LlamaCppGenerator

    manager = ModelManager(device="cpu")
    alone = run(dtg_path, ["1girl, solo"], [3], manager, **TOPUP_SETTINGS)[0]
    assert alone.timings["topup_rounds"] >= 2
    original = LlamaCppGenerator.generate

    def with_others_between(self, prompts, params, seeds, *args, **kwargs):
        original(self, [dantaggen_prompt("sky, cloud")], params, [9])  # the context now holds another prompt
        return original(self, prompts, params, seeds, *args, **kwargs)

    monkeypatch.setattr(LlamaCppGenerator, "generate", with_others_between)
    interrupted = run(dtg_path, ["1girl, solo"], [3], manager, **TOPUP_SETTINGS)[0]
    assert interrupted.prompt == alone.prompt and interrupted.timings["topup_rounds"] == alone.timings["topup_rounds"]


def test_top_up_results_repeat_and_a_batch_matches_single_prompts(dtg_path):
    manager = ModelManager(device="cpu")
    prompts = ["1girl, solo", "sky, cloud", "1girl, solo", "hat, smile"]
    seeds = [0, 3, 2, 0]
    batch = run(dtg_path, prompts, seeds, manager, **TOPUP_SETTINGS)
    assert sum(r.timings["topup_rounds"] for r in batch) >= 4
    assert all(r.new_tags for r in batch)
    singles = [run(dtg_path, [p], [s], manager, **TOPUP_SETTINGS)[0] for p, s in zip(prompts, seeds)]
    backwards = run(dtg_path, prompts[::-1], seeds[::-1], manager, **TOPUP_SETTINGS)[::-1]
    again = run(dtg_path, prompts, seeds, manager, **TOPUP_SETTINGS)
    for results in (singles, backwards, again):
        assert [r.prompt for r in results] == [r.prompt for r in batch]
        assert [r.timings["topup_rounds"] for r in results] == [r.timings["topup_rounds"] for r in batch]
    assert batch[0].new_tags != batch[2].new_tags  # the seed matters


def test_a_stop_before_the_start_loads_nothing_and_leaves_every_prompt(dart_folder):
    manager = ModelManager(device="cpu")
    settings = UpsampleSettings(enabled=True, model=str(dart_folder))
    results = upsample_prompts(["a, b", "c"], settings, seeds=[1, 2], width=512, height=512, manager=manager,
                               should_stop=lambda: True)
    assert [(r.prompt, r.new_tags, r.stopped) for r in results] == [("a, b", [], True), ("c", [], True)]
    assert manager.loaded_names() == []


def test_rows_that_ended_before_a_stop_keep_their_tags_and_the_rest_stay(tmp_path, monkeypatch):
    from lib_tagger.generate.torch_model import Decoder

    folder = make_dart_folder(tmp_path / "ends-early", model_type="mixtral",
                              favour={"</general>": 3.0, "hat": 3.0, "smile": 3.0}, max_position_embeddings=512)
    manager = ModelManager(device="cpu")
    prompts = [PROMPT, "1girl, solo", "sky, cloud", "hat"]
    whole = run(folder, prompts, [1, 2, 3, 4], manager)
    ends = [int(r.timings["tokens"]) for r in whole]  # row i samples its end token at step ends[i]
    last_kept = sorted(ends)[-2]
    assert last_kept < max(ends) < 24, ends  # the rows end at different steps, before max_new_tokens
    forwards: list[int] = []
    real_forward = Decoder.forward

    def counted(self, *args, **kwargs):
        forwards.append(1)
        return real_forward(self, *args, **kwargs)

    monkeypatch.setattr(Decoder, "forward", counted)
    # the prompt's pass, then one per step: after step ``last_kept`` the user presses stop
    cut = run(folder, prompts, [1, 2, 3, 4], manager, should_stop=lambda: len(forwards) > last_kept)
    assert len(forwards) == last_kept + 1
    assert [r.stopped for r in cut] == [n > last_kept for n in ends]
    for stopped, full in zip(cut, whole):
        assert (stopped.prompt, stopped.new_tags) == (
            (stopped.original, []) if stopped.stopped else (full.prompt, full.new_tags))
    assert any(r.new_tags for r in cut if not r.stopped)


def test_unescaped_danbooru_qualifiers_reach_the_model_as_their_tags():
    prep = prepare_prompt("ganyu_(genshin_impact), 1girl, artoria_pendragon_(fate), fate_(series), "
                          "hatsune_miku_(vocaloid)", UpsampleSettings(), 832, 1216, "dart-sft")
    assert prep.fields.character == ["ganyu (genshin impact)", "artoria pendragon (fate)", "hatsune miku"]
    assert prep.fields.copyright == ["fate (series)", "vocaloid"]
    assert prep.fields.general == [] and prep.fields.special == ["1girl"]  # no "ganyu genshin impact"
    assert "<character>ganyu (genshin impact), artoria pendragon (fate), hatsune miku</character>" in \
        prep.model_input
    assert {"ganyu (genshin impact)", "hatsune miku", "vocaloid"} <= prep.present
