"""TIPO on tiny real models: the same weights and vocabulary as a safetensors folder (our torch
decoder + SentencePiece) and as a GGUF file (llama.cpp), every task end to end on both."""

from __future__ import annotations

import pytest

from lib_tagger.formats import FormatOptions
from lib_tagger.formats.tipo import ADDED_TOKENS, TIPO, plan_steps
from lib_tagger.generate.base import ModelLoadError, SamplingParams
from lib_tagger.generate.spm_tokenizer import SentencePieceTokenizer
from lib_tagger.models.manager import ModelManager
from lib_tagger.prompt import insert_tags
from lib_tagger.prompt.sentences import insert_sentences
from lib_tagger.settings import TASKS, UpsampleSettings
from lib_tagger.tags import get_tag_db
from lib_tagger.upsample import prepare_prompt, upsample_prompts
from tests.factories.tipo_models import make_tipo_folder, tag_transitions, write_tipo_gguf

PROMPT = "masterpiece, 1girl, <lora:miku:0.7>, (aqua hair:1.2), solo BREAK twintails"
NL = "A girl sits."
STEER_TAGS = ("smile", "hat", "sky", "dress", "flower", "cloud")
KGEN_SAMPLING = {"temperature": 0.35, "top_p": 0.95, "top_k": 60, "min_p": 0.1}


def transitions() -> dict[str, dict[str, float]]:
    table = tag_transitions(STEER_TAGS, end=5.0)
    table[":"]["▁She"] = 9.0
    table.update({"▁She": {"▁sits": 9.0}, "▁sits": {".": 9.0}, ".": {"▁She": 7.5, "</s>": 6.5}})
    return table


@pytest.fixture(scope="module")
def models(tmp_path_factory, one_torch_thread):
    root = tmp_path_factory.mktemp("tipo")
    folder = make_tipo_folder(root / "TIPO-tiny", favour={",": 3.0}, transitions=transitions(), hidden_size=128)
    gguf = write_tipo_gguf(folder, root / "TIPO-tiny-F16.gguf")
    user_defined = write_tipo_gguf(folder, root / "TIPO-tiny-user-F16.gguf", special_type="user_defined")
    # unsteered, float32: no near-ties between logits, so greedy decoding is comparable across backends
    plain = make_tipo_folder(root / "TIPO-plain", seed=3)
    plain_gguf = write_tipo_gguf(plain, root / "TIPO-plain-F32.gguf", tensor_type="f32")
    return {"torch": folder, "llama-cpp": gguf, "user_defined": user_defined, "plain": plain,
            "plain_gguf": plain_gguf}


def inputs_of_every_task() -> list[str]:
    fields = prepare_prompt(PROMPT, UpsampleSettings(), 832, 1216, "tipo").fields
    texts = []
    for task in TASKS:
        for nl in ("", NL):
            texts.append(TIPO.build("tipo", fields, FormatOptions(width=832, height=1216, task=task), nl))
    texts += [texts[0] + ", smile, hat\nlong:",
              "target: <|very_long|> <|short_to_tag_to_long|>\nshort: x\ntag: \nlong:"]
    return texts


@pytest.mark.parametrize("gguf", ["llama-cpp", "user_defined"])
def test_our_sentencepiece_ids_equal_llama_cpps_and_added_tokens_stay_whole(models, gguf):
    import llama_cpp

    ours = SentencePieceTokenizer.from_folder(models["torch"])
    llm = llama_cpp.Llama(model_path=str(models[gguf]), n_ctx=256, verbose=False)
    try:
        for text in inputs_of_every_task():
            assert ours.encode_prompt(text) == llm.tokenize(text.encode(), add_bos=True, special=True), text
        for n, token in enumerate(ADDED_TOKENS):
            token_id = ours.vocab_size - len(ADDED_TOKENS) + n
            assert ours.encode(token) == [token_id]
            assert llm.tokenize(token.encode(), add_bos=False, special=True) == [token_id]
            inside = ours.encode(f"target: {token} {token}\n")
            assert inside.count(token_id) == 2
            # decoding writes specials as text and keeps leading spaces, as llama.cpp's detokenizer does
            assert ours.decode(inside).encode() == llm.detokenize(inside, special=True)
    finally:
        llm.close()


def test_greedy_tokens_are_the_same_on_both_backends(models):
    from lib_tagger.generate.llama_cpp_backend import LlamaCppGenerator
    from lib_tagger.generate.torch_backend import TorchGenerator

    torch_gen = TorchGenerator.from_pretrained(models["plain"], device="cpu", dtype="float32")
    llama_gen = LlamaCppGenerator.load(models["plain_gguf"], n_gpu_layers=0)
    try:
        params = SamplingParams(temperature=0.0, max_new_tokens=32)
        for text in inputs_of_every_task():
            a = torch_gen.generate([text], params, [0])[0]
            b = llama_gen.generate([text], params, [0])[0]
            assert a.token_ids == b.token_ids and a.text == b.text, text
    finally:
        torch_gen.close()
        llama_gen.close()


def run(model, prompts, seeds, manager, **changes):
    values = {**KGEN_SAMPLING, "max_new_tokens": 64, **changes}
    settings = UpsampleSettings(enabled=True, model=str(model), **values)
    return upsample_prompts(prompts, settings, seeds=seeds, width=832, height=1216, manager=manager)


@pytest.fixture(scope="module")
def managers():
    backends = {"torch": ModelManager(device="cpu", backend="torch"), "llama-cpp": ModelManager(device="cpu")}
    yield backends
    for manager in backends.values():
        manager.unload()


@pytest.mark.parametrize("backend", ["torch", "llama-cpp"])
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("nl", ["", NL])
def test_every_task_end_to_end(models, managers, backend, task, nl):
    (result,) = run(models[backend], [PROMPT], [11], managers[backend], task=task, nl_prompt=nl,
                    length="very_short", nl_length="short")
    expected_input = prepare_prompt(PROMPT, UpsampleSettings(task=task, nl_prompt=nl, length="very_short",
                                                             nl_length="short"), 832, 1216, "tipo").model_input
    assert result.model_input == expected_input
    assert result.new_tags and set(result.new_tags) <= set(STEER_TAGS)
    assert len(set(result.new_tags)) == len(result.new_tags)
    tagged = insert_tags(PROMPT, result.new_tags, "end", canonical=get_tag_db().canonical).prompt
    assert result.prompt == insert_sentences(tagged, result.nl_text, "end").prompt
    assert result.prompt.startswith(PROMPT + ", " + ", ".join(result.new_tags))
    writes_caption = plan_steps(task, True, bool(nl))[-1].keep_text
    if writes_caption:
        assert "She sits." in result.nl_text
    if nl:
        assert result.nl_text.startswith(NL)
    if not writes_caption:
        assert result.nl_text == nl
    assert result.timings["calls"] >= len(plan_steps(task, True, bool(nl)))


@pytest.mark.parametrize("backend", ["torch", "llama-cpp"])
def test_same_seed_same_result_and_batches_match_single_runs(models, managers, backend):
    prompts = [PROMPT, "1girl, solo", "", "sky, cloud, outdoors"]
    seeds = [1, 2, 3, 4]
    batch = run(models[backend], prompts, seeds, managers[backend], task="add_caption", length="very_short",
                nl_length="very_short")
    singles = [run(models[backend], [p], [s], managers[backend], task="add_caption", length="very_short",
                   nl_length="very_short")[0] for p, s in zip(prompts, seeds)]
    assert [(r.prompt, r.nl_text) for r in batch] == [(r.prompt, r.nl_text) for r in singles]
    again = run(models[backend], [PROMPT], [1], managers[backend], task="add_caption", length="very_short",
                nl_length="very_short")[0]
    assert again.prompt == batch[0].prompt


def test_caption_goes_where_asked(models, managers):
    for position, joint in (("new_line", "\n"), ("before_break", ", ")):
        (result,) = run(models["torch"], [PROMPT], [5], managers["torch"], task="add_caption", nl_position=position,
                        length="very_short", nl_length="very_short")
        assert result.nl_text
        if position == "new_line":
            assert result.prompt.endswith(joint + result.nl_text)
        else:
            assert f"{joint}{result.nl_text} BREAK twintails" in result.prompt


def test_broken_tokenizer_files_are_named(tmp_path):
    folder = make_tipo_folder(tmp_path / "TIPO-broken")
    (folder / "tokenizer.model").write_bytes(b"not a sentencepiece model")
    with pytest.raises(ModelLoadError, match="tokenizer.model"):
        SentencePieceTokenizer.from_folder(folder)
    folder = make_tipo_folder(tmp_path / "TIPO-broken-added")
    (folder / "added_tokens.json").write_text('{"<|empty|>": "x"}')
    with pytest.raises(ModelLoadError, match="added_tokens.json"):
        SentencePieceTokenizer.from_folder(folder)


def test_an_output_template_rebuilds_the_prompt_in_the_models_order(models, managers):
    from lib_tagger.output import compose

    (result,) = run(models["torch"], [PROMPT], [5], managers["torch"], task="add_caption", length="very_short",
                    nl_length="very_short", output_format="nl_first")
    assert result.nl_text and result.new_tags
    assert result.prompt == compose(PROMPT, result.new_tags, result.nl_text, "nl_first").prompt
    assert result.prompt.startswith("1girl, " + result.nl_text + ", aqua hair, solo, twintails, ")
    assert result.prompt.endswith(" <lora:miku:0.7>")
