"""TorchGenerator end to end on tiny real-format folders: tokenizer, batching, seeds, bans, stops."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from lib_tagger.generate.base import ModelLoadError, SamplingParams  # noqa: E402
from lib_tagger.generate.sampling import Sampler  # noqa: E402
from lib_tagger.generate.tokenizer import TagTokenizer  # noqa: E402
from lib_tagger.generate.torch_backend import TorchGenerator  # noqa: E402
from tests.factories import torch_models as tm  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


FAVOUR = {"long hair": 3.0, "cat ears": 3.0, "ahoge": 3.0, "smile": 2.0}


@pytest.fixture(scope="module")
def dart(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dart")
    tm.make_dart_folder(folder, favour=FAVOUR, sliding_window=16)
    return TorchGenerator.from_pretrained(folder, device="cpu")


@pytest.fixture(scope="module")
def dart_moe(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dart-moe")
    tm.make_dart_folder(folder, model_type="mixtral", seed=1)
    return TorchGenerator.from_pretrained(folder, device="cpu")


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    folder = tmp_path_factory.mktemp("llama")
    tm.make_llama_folder(folder, favour={"▁long": 7.0, "▁hair": 7.0, ",": 7.0})
    return TorchGenerator.from_pretrained(folder, device="cpu")


def _prompts():
    return [tm.dart_prompt("1girl, solo, blue eyes, smile, hat"), tm.dart_prompt(""), tm.dart_prompt("1girl")]


# --- determinism and batching ------------------------------------------------------------------


def test_same_seed_repeats_and_seeds_differ(dart):
    params = SamplingParams(max_new_tokens=24)
    a = dart.generate([tm.dart_prompt()], params, [7])[0]
    b = dart.generate([tm.dart_prompt()], params, [7])[0]
    c = dart.generate([tm.dart_prompt()], params, [8])[0]
    assert a.token_ids == b.token_ids and a.pieces == b.pieces
    assert a.token_ids != c.token_ids


@pytest.mark.parametrize("model", ["dart", "dart_moe"])
def test_batch_rows_equal_batch_of_one_runs(request, model):
    gen = request.getfixturevalue(model)
    params = SamplingParams(max_new_tokens=20, temperature=1.2, top_k=20, top_p=0.95)
    seeds = [11, 12, 13]
    batched = gen.generate(_prompts(), params, seeds)
    for prompt, seed, row in zip(_prompts(), seeds, batched):
        alone = gen.generate([prompt], params, [seed])[0]
        assert row.token_ids == alone.token_ids
        assert row.prompt_tokens == alone.prompt_tokens
    assert len({r.prompt_tokens for r in batched}) == 3  # the rows really were padded


def test_concurrent_calls_while_the_first_batch_repacks_give_single_thread_results(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    tm.make_dart_folder(tmp_path, favour=FAVOUR)
    params = SamplingParams(max_new_tokens=12)
    jobs = [(_prompts()[:2], [1, 2]), ([tm.dart_prompt()], [3]), (_prompts(), [4, 5, 6]), ([tm.dart_prompt("")], [7])]
    reference = TorchGenerator.from_pretrained(tmp_path, device="cpu")
    reference.decoder._may_pack = False  # plain weights throughout
    expected = [[g.token_ids for g in reference.generate(p, params, s)] for p, s in jobs]
    shared = TorchGenerator.from_pretrained(tmp_path, device="cpu")
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda job: [g.token_ids for g in shared.generate(job[0], params, job[1])], jobs))
    assert got == expected


def test_greedy_ignores_seed(dart):
    params = SamplingParams(max_new_tokens=12, temperature=0.0)
    outs = dart.generate([tm.dart_prompt()] * 2, params, [1, 99])
    assert outs[0].token_ids == outs[1].token_ids


def test_generation_fields(dart):
    out = dart.generate([tm.dart_prompt()], SamplingParams(max_new_tokens=16), [5])[0]
    assert 0 < len(out.token_ids) <= 16
    assert out.pieces == [dart.tokenizer.id_to_token(i) for i in out.token_ids]
    tags = [p for p in out.pieces if p and not p.startswith("<")]
    assert out.text == ", ".join(tags)
    assert out.prompt_tokens == len(dart.tokenizer.encode(tm.dart_prompt()))
    assert out.seconds > 0
    assert dart.generate([], SamplingParams(), []) == []
    with pytest.raises(ValueError, match="seeds"):
        dart.generate(["a"], SamplingParams(), [1, 2])
    with pytest.raises(ValueError, match="top_p"):
        dart.generate(["a"], SamplingParams(top_p=0.0), [1])


# --- stops and bos -----------------------------------------------------------------------------


@pytest.mark.parametrize("stop", ["<|eos|>", "</general>"])
def test_stops_at_dart_end_tokens(tmp_path, stop):
    tm.make_dart_folder(tmp_path, favour={"smile": 2.0, stop: 1.5})
    gen = TorchGenerator.from_pretrained(tmp_path, device="cpu")
    outs = gen.generate([tm.dart_prompt()] * 4, SamplingParams(max_new_tokens=64), [1, 2, 3, 4])
    assert all(len(o.token_ids) < 64 for o in outs)  # each row ended on its own
    assert len({len(o.token_ids) for o in outs}) > 1
    assert all(stop not in o.pieces for o in outs)


def test_ended_rows_leave_the_batch_and_the_rest_match_single_runs(tmp_path, monkeypatch):
    tm.make_dart_folder(tmp_path, model_type="mixtral", favour={"smile": 2.0, "</general>": 1.5})
    gen = TorchGenerator.from_pretrained(tmp_path, device="cpu")
    params = SamplingParams(max_new_tokens=64, repetition_penalty=1.2, banned_tags=("cat ears",))
    prompts, seeds = [tm.dart_prompt(), *_prompts()], [1, 2, 3, 4]
    rows_seen = []
    forward = gen.decoder.forward

    def counting_forward(ids, *args, **kwargs):
        rows_seen.append(ids.shape[0])
        return forward(ids, *args, **kwargs)

    monkeypatch.setattr(gen.decoder, "forward", counting_forward)
    batched = gen.generate(prompts, params, seeds)
    lengths = [len(o.token_ids) for o in batched]
    assert len(set(lengths)) > 1 and max(lengths) < 64  # the rows ended at different steps
    # After the prompt pass, each step runs exactly the rows that have not ended yet.
    assert rows_seen[0] == 4 and rows_seen[1:] == sorted(rows_seen[1:], reverse=True)
    assert rows_seen[-1] == sum(n == max(lengths) for n in lengths) < 4
    for prompt, seed, row in zip(prompts, seeds, batched):
        assert row.token_ids == gen.generate([prompt], params, [seed])[0].token_ids
        assert "cat ears" not in row.pieces


def test_exactly_one_bos(dart, llama):
    dart_ids = dart.tokenizer.encode_prompt(tm.dart_prompt())
    assert dart_ids[0] == dart.tokenizer.bos_id and dart_ids.count(dart.tokenizer.bos_id) == 1
    tok = llama.tokenizer
    for prompt in (tm.dantaggen_prompt(), "<s>" + tm.dantaggen_prompt()):
        ids = tok.encode_prompt(prompt)
        assert ids[0] == tok.bos_id == 1 and ids.count(1) == 1
    # The post-processor adds one too, so the generator encodes without it and adds bos itself.
    assert tok.encode("solo", add_special_tokens=True)[0] == 1


# --- bans --------------------------------------------------------------------------------------


def _tags(gen, out):
    return [p for p in out.pieces if p and not p.startswith("<")]


def test_dart_bans_literal_wildcard_regex(dart):
    seeds = list(range(4))
    free = dart.generate([tm.dart_prompt()] * 4, SamplingParams(max_new_tokens=48), seeds)
    seen = {t for o in free for t in _tags(dart, o)}
    assert {"long hair", "cat ears", "ahoge"} <= seen
    banned_params = SamplingParams(max_new_tokens=48, banned_tags=("long_hair", "cat *", "/^a/"))
    banned = dart.generate([tm.dart_prompt()] * 4, banned_params, seeds)
    tags = [t for o in banned for t in _tags(dart, o)]
    assert tags, "the banned run still generates tags"
    assert not [t for t in tags if t == "long hair" or t.startswith(("cat ", "a"))]


def test_llama_subword_bans(llama):
    prompt = tm.dantaggen_prompt()
    tok = llama.tokenizer
    pair = [tok.vocab["▁long"], tok.vocab["▁hair"]]

    def starts_of_long_hair(ids):
        return [
            i
            for i in range(len(ids) - 1)
            if ids[i : i + 2] == pair and (i == 0 or ids[i - 1] == tok.vocab[","])
        ]

    free = llama.generate([prompt] * 3, SamplingParams(max_new_tokens=40), [1, 2, 3])
    assert any(starts_of_long_hair(o.token_ids) for o in free)
    assert any("long hair" in o.text for o in free)
    banned = llama.generate(
        [prompt] * 3, SamplingParams(max_new_tokens=40, banned_tags=("long hair",)), [1, 2, 3]
    )
    assert not any(starts_of_long_hair(o.token_ids) for o in banned)
    assert all(o.token_ids for o in banned)


def test_repetition_penalty_reduces_repeats(dart):
    def repeats(penalty):
        outs = dart.generate(
            [tm.dart_prompt()] * 3, SamplingParams(max_new_tokens=40, repetition_penalty=penalty), [1, 2, 3]
        )
        return sum(len(_tags(dart, o)) - len(set(_tags(dart, o))) for o in outs)

    assert repeats(1.0) > 2 * repeats(50.0)


# --- sampler units -----------------------------------------------------------------------------


def test_sampler_filters():
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.5, -1.0]] * 2)

    def picks(**kw):
        sampler = Sampler(SamplingParams(**kw), [1, 2], 5, "cpu")
        return {tuple(sampler.choose(logits)) for _ in range(40)}

    assert picks(temperature=0.0) == {(0, 0)}
    assert picks(top_k=1) == {(0, 0)}
    assert picks(top_p=0.01) == {(0, 0)}
    assert picks(min_p=0.9) == {(0, 0)}
    assert {t for pair in picks(top_k=2) for t in pair} == {0, 1}
    # probs ~ .61 .22 .08 .05 .01: top_p .8 keeps tokens 0 and 1 only (HF: drop tail mass <= .2)
    assert {t for pair in picks(top_p=0.8) for t in pair} == {0, 1}
    greedy_banned = Sampler(SamplingParams(temperature=0.0), [1, 2], 5, "cpu")
    assert greedy_banned.choose(logits, [[0], [0, 1]]) == [1, 2]


def test_sampler_rows_depend_only_on_their_seed():
    logits = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    params = SamplingParams(top_k=0)
    batch = Sampler(params, [5, 6, 7], 50, "cpu")
    alone = Sampler(params, [6], 50, "cpu")
    for _ in range(10):
        assert batch.choose(logits)[1] == alone.choose(logits[1:2])[0]


def test_repetition_penalty_hf_semantics():
    logits = torch.tensor([[2.0, -2.0, 1.0]])
    sampler = Sampler(SamplingParams(repetition_penalty=2.0), [0], 3, "cpu", prompts=[[0, 1]])
    assert torch.equal(sampler.process(logits), torch.tensor([[1.0, -4.0, 1.0]]))


# --- tokenizer files ---------------------------------------------------------------------------


def test_newer_tokenizer_json_loads_on_this_tokenizers(tmp_path):
    from tokenizers import Tokenizer

    tm.write_newer_llama_tokenizer_json(tmp_path)
    tok = TagTokenizer.from_folder(tmp_path)
    text = "long hair, blue eyes, smile"
    ids = tok.encode(text)
    assert [tok.id_to_token(i) for i in ids][:3] == ["▁long", "▁hair", ","]
    assert tok.decode(ids) == text
    assert (tok.bos_id, tok.eos_ids, tok.unk_id) == (1, [2], 0)
    assert tok.encode("<|input_end|>") == [tok.vocab["<|input_end|>"]]
    raw = (tmp_path / "tokenizer.json").read_text(encoding="utf-8")
    import tokenizers

    if tokenizers.__version__.startswith("0.13."):
        with pytest.raises(Exception):  # noqa: B017 - proves the rewrite path is what made it load
            Tokenizer.from_str(raw)


def test_llama_tokenizer_round_trip_and_byte_fallback(llama):
    tok = llama.tokenizer
    text = "long hair, blue eyes, é"
    assert tok.decode(tok.encode(text)) == text
    assert "<0xC3>" in [tok.id_to_token(i) for i in tok.encode("é")]
    assert not tok.word_level and llama.stop_ids == {2}


def test_dart_tokenizer_specials(dart):
    tok = dart.tokenizer
    assert (tok.bos_id, tok.eos_ids, tok.pad_id, tok.word_level) == (0, [1], 2, True)
    assert dart.stop_ids == {1, tok.vocab["</general>"]}
    assert tok.encode("long hair, cat ears,blush") == [
        tok.vocab[t] for t in ("long hair", "cat ears", "blush")
    ]


@pytest.mark.parametrize("damage", ["missing", "garbage", "wrong-schema"])
def test_bad_tokenizer_file_names_it(tmp_path, damage):
    tm.make_dart_folder(tmp_path)
    path = tmp_path / "tokenizer.json"
    if damage == "missing":
        path.unlink()
    elif damage == "garbage":
        path.write_text("{oops")
    else:
        path.write_text(json.dumps({"model": {"type": "Nope"}}))
    with pytest.raises(ModelLoadError, match="tokenizer.json"):
        TorchGenerator.from_pretrained(tmp_path, device="cpu")


def test_close_frees_weights(tmp_path):
    tm.make_dart_folder(tmp_path)
    gen = TorchGenerator.from_pretrained(tmp_path, device="cpu")
    gen.close()
    assert gen.decoder.embed is None and gen.decoder.layers == []
    with pytest.raises(RuntimeError, match="closed"):
        gen.generate([tm.dart_prompt()], SamplingParams(), [1])
