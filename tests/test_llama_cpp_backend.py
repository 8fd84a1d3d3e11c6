"""The llama.cpp backend on tiny random-weight DanTagGen-style GGUF files written by the factory."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
pytest.importorskip("gguf", reason="the gguf package (test dependency) is not installed")

from lib_tagger.generate.base import ModelLoadError, SamplingParams  # noqa: E402
from lib_tagger.generate.llama_cpp_backend import (  # noqa: E402
    _GGML_BLOCKS,
    LlamaCppGenerator,
    read_gguf_header,
)
from tests.factories.gguf_models import (  # noqa: E402
    SPECIAL_TOKENS,
    build_vocab,
    dantaggen_prompt,
    tiny_spec,
    token_ids,
    write_llama_gguf,
)

PROMPT = dantaggen_prompt("1girl, solo, long hair")
NO_EOS = {"</s>": -30.0}  # keeps random models from stopping early where a test counts tokens
SAMPLE = SamplingParams(temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=24)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gguf")
    specs = {
        "f16": tiny_spec(tensor_type="f16", token_bias=NO_EOS),
        "q8_0": tiny_spec(tensor_type="q8_0", token_bias=NO_EOS),
        "user_defined": tiny_spec(special_type="user_defined"),
        "solo": tiny_spec(token_bias={"▁solo": 6.0, ",": 3.0, **NO_EOS},
                          transitions={"▁solo": {",": 4.0}, ",": {"▁solo": 4.0}}),
        "eos": tiny_spec(token_bias={"</s>": 30.0}),
        "some_eos": tiny_spec(token_bias={"</s>": 6.5}),
        "short_context": tiny_spec(context=128, token_bias=NO_EOS),
    }
    return {name: (write_llama_gguf(folder / f"{name}.gguf", spec), spec) for name, spec in specs.items()}


@pytest.fixture(scope="module")
def q8(files):
    gen = LlamaCppGenerator.load(files["q8_0"][0], n_gpu_layers=0)
    yield gen
    gen.close()


@pytest.fixture(scope="module")
def solo(files):
    gen = LlamaCppGenerator.load(files["solo"][0], n_gpu_layers=0)
    yield gen
    gen.close()


def _ascii(text: str) -> str:
    return "".join(ch for ch in text if ord(ch) < 128)


@pytest.mark.parametrize("kind", ["f16", "q8_0"])
def test_loads_and_generates_text_with_per_token_pieces(files, kind):
    path, spec = files[kind]
    gen = LlamaCppGenerator.load(path, n_gpu_layers=0)
    try:
        [out] = gen.generate([PROMPT], SAMPLE, [7])
    finally:
        gen.close()
    pieces, _, _ = build_vocab(spec)
    assert len(out.token_ids) == SAMPLE.max_new_tokens
    assert len(out.pieces) == len(out.token_ids)
    assert out.prompt_tokens > 20 and out.seconds > 0
    for token, piece in zip(out.token_ids, out.pieces):
        if not pieces[token].startswith("<0x"):  # byte tokens may be half a character on their own
            assert piece == pieces[token].replace("▁", " ")
    # The text is the pieces joined (characters made of several byte tokens aside).
    assert _ascii(out.text) == _ascii("".join(out.pieces))


def test_header_is_read_without_loading(files):
    path, spec = files["q8_0"]
    header = read_gguf_header(path)
    assert header.architecture == "llama"
    assert header.context_length == spec.context
    assert header.n_tensors == 3 + 9 * spec.layers
    assert 0 < header.data_bytes < path.stat().st_size


@pytest.mark.parametrize("chunk", [64, 1000])
def test_a_header_longer_than_the_first_read_is_read_on(files, monkeypatch, chunk):
    from lib_tagger.generate import llama_cpp_backend

    path, _ = files["q8_0"]
    whole = read_gguf_header(path)
    monkeypatch.setattr(llama_cpp_backend, "_HEADER_CHUNK", chunk)  # far smaller than the header
    assert read_gguf_header(path) == whole
    cut = path.parent / f"cut-{chunk}.gguf"
    cut.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ModelLoadError, match="truncated"):
        read_gguf_header(cut)


def test_block_size_table_agrees_with_the_gguf_package():
    from gguf.constants import GGML_QUANT_SIZES

    shared = {int(t): size for t, size in GGML_QUANT_SIZES.items() if int(t) in _GGML_BLOCKS}
    assert len(shared) >= 25
    assert all(_GGML_BLOCKS[t] == size for t, size in shared.items())


@pytest.mark.parametrize("kind", ["q8_0", "user_defined"])
def test_prompt_specials_stay_single_tokens_and_bos_comes_once(files, kind):
    path, spec = files[kind]
    gen = LlamaCppGenerator.load(path, n_gpu_layers=0)
    try:
        ids = gen.tokenize_prompt(PROMPT)
        twice = gen.tokenize_prompt("<s>" + PROMPT)
    finally:
        gen.close()
    empty, input_end, short = token_ids(spec, ["<|empty|>", "<|input_end|>", "<|short|>"])
    assert ids[0] == 1 and ids.count(1) == 1
    assert ids.count(empty) == 3 and ids.count(short) == 1
    assert ids[-1] == input_end
    assert twice[0] == 1 and twice.count(1) == 1
    assert set(token_ids(spec, list(SPECIAL_TOKENS))) <= set(range(len(build_vocab(spec)[0])))


def test_same_seed_repeats_and_different_seeds_differ(q8):
    first = q8.generate([PROMPT, PROMPT, PROMPT], SAMPLE, [11, 11, 12])
    again = q8.generate([PROMPT], SAMPLE, [11])
    assert first[0].token_ids == first[1].token_ids == again[0].token_ids
    assert first[0].text == again[0].text
    assert first[2].token_ids != first[0].token_ids


def test_greedy_ignores_the_seed(q8):
    greedy = SamplingParams(temperature=0.0, max_new_tokens=12)
    a, b = q8.generate([PROMPT, PROMPT], greedy, [1, 2])
    assert a.token_ids == b.token_ids and len(a.token_ids) == 12


@pytest.mark.parametrize("max_new", [0, 1, 7, 40])
def test_max_new_tokens_is_honoured(q8, max_new):
    [out] = q8.generate([PROMPT], SamplingParams(max_new_tokens=max_new), [3])
    assert len(out.token_ids) == max_new == len(out.pieces)
    if max_new == 0:
        assert out.text == ""


def test_stops_at_eos_and_leaves_it_out(files):
    gen = LlamaCppGenerator.load(files["eos"][0], n_gpu_layers=0)
    try:
        [out] = gen.generate([PROMPT], SamplingParams(max_new_tokens=30), [5])
    finally:
        gen.close()
    assert out.token_ids == [] and out.text == "" and out.pieces == []

    gen = LlamaCppGenerator.load(files["some_eos"][0], n_gpu_layers=0)
    try:
        outs = gen.generate([PROMPT] * 6, SamplingParams(max_new_tokens=60), list(range(6)))
    finally:
        gen.close()
    lengths = [len(o.token_ids) for o in outs]
    assert min(lengths) < 60  # eos (p ~ 0.5 per step) ended some early
    assert all(2 not in o.token_ids for o in outs)


def test_a_banned_token_never_appears_though_the_model_prefers_it(solo, files):
    spec = files["solo"][1]
    [solo_id] = token_ids(spec, ["▁solo"])
    params = SamplingParams(max_new_tokens=40)
    free = solo.generate([PROMPT] * 3, params, [1, 2, 3])
    assert sum(o.token_ids.count(solo_id) for o in free) > 40  # ~70% of 120 tokens without the ban
    banned = solo.generate([PROMPT] * 3, params, [1, 2, 3], banned_next=lambda ids: {solo_id})
    assert all(solo_id not in o.token_ids and len(o.token_ids) == 40 for o in banned)
    greedy = solo.generate([PROMPT], SamplingParams(temperature=0, max_new_tokens=10), [1],
                           banned_next=lambda ids: {solo_id})
    assert solo_id not in greedy[0].token_ids


def test_ban_sees_only_the_generated_tokens_and_can_ban_sequences(solo, files):
    spec = files["solo"][1]
    solo_id, comma_id = token_ids(spec, ["▁solo", ","])
    seen: list[list[int]] = []

    def no_comma_after_solo(generated):
        seen.append(list(generated))
        return {comma_id} if generated and generated[-1] == solo_id else set()

    [out] = solo.generate([PROMPT], SamplingParams(max_new_tokens=30), [4], banned_next=no_comma_after_solo)
    assert [len(s) for s in seen] == list(range(30))
    assert seen[-1] == out.token_ids[:-1]
    pairs = list(zip(out.token_ids, out.token_ids[1:]))
    assert (solo_id, comma_id) not in pairs
    assert out.token_ids.count(solo_id) > 5


def _tags(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def test_banned_tags_in_the_params_are_compiled_against_the_vocabulary(solo, files):
    pytest.importorskip("lib_tagger.generate.bans", reason="lib_tagger.generate.bans is not written yet")
    solo_id, comma_id = token_ids(files["solo"][1], ["▁solo", ","])
    free = solo.generate([PROMPT] * 3, SamplingParams(max_new_tokens=40), [1, 2, 3])
    assert sum(_tags(o.text).count("solo") for o in free) >= 3
    outs = solo.generate([PROMPT] * 3, SamplingParams(max_new_tokens=40, banned_tags=("solo",)), [1, 2, 3])
    for out in outs:
        assert "solo" not in _tags(out.text)
        assert out.token_ids[0] != solo_id  # no tag may start with it ...
        assert (comma_id, solo_id) not in set(zip(out.token_ids, out.token_ids[1:]))  # ... nor follow ","
        assert len(out.token_ids) == 40


def test_wildcard_and_regex_bans_expand_against_candidate_tags(files):
    gen = LlamaCppGenerator.load(files["solo"][0], n_gpu_layers=0, ban_candidates=("solo", "solo focus", "smile"))
    try:
        for pattern in ("so*", "/^sol/"):
            outs = gen.generate([PROMPT] * 2, SamplingParams(max_new_tokens=40, banned_tags=(pattern,)), [1, 2])
            for out in outs:
                assert "solo" not in _tags(out.text), pattern
    finally:
        gen.close()


def test_context_grows_for_long_requests_and_is_capped_by_the_model(files):
    gen = LlamaCppGenerator.load(files["short_context"][0], n_gpu_layers=0, n_ctx=64)
    try:
        assert gen.n_ctx == 64 and gen.n_ctx_train == 128
        [out] = gen.generate([PROMPT], SamplingParams(max_new_tokens=40), [1])
        assert len(out.token_ids) == 40 and gen.n_ctx >= out.prompt_tokens + 40
        [capped] = gen.generate([PROMPT], SamplingParams(max_new_tokens=500), [1])
        assert len(capped.token_ids) == 128 - capped.prompt_tokens and gen.n_ctx == 128
        with pytest.raises(ValueError, match="at most 128"):
            gen.generate([dantaggen_prompt(", ".join(["long hair"] * 60))], SAMPLE, [1])
    finally:
        gen.close()


def test_close_frees_and_later_use_is_a_clear_error(files):
    gen = LlamaCppGenerator.load(files["f16"][0], n_gpu_layers=0)
    gen.close()
    gen.close()
    with pytest.raises(RuntimeError, match=r"f16\.gguf was closed"):
        gen.generate([PROMPT], SAMPLE, [1])
    with pytest.raises(RuntimeError, match="closed"):
        gen.tokenize_prompt(PROMPT)


def test_prompt_and_seed_counts_must_match(q8):
    with pytest.raises(ValueError, match="2 prompts but 1 seeds"):
        q8.generate([PROMPT, PROMPT], SAMPLE, [1])


def test_gpu_offload_is_asked_for_only_when_the_build_supports_it(files, monkeypatch):
    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: False)
    gen = LlamaCppGenerator.load(files["f16"][0], n_gpu_layers=-1)
    assert not gen.gpu_offload
    gen.close()
    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: True)
    gen = LlamaCppGenerator.load(files["f16"][0])  # a CPU build ignores the offload request
    try:
        assert gen.gpu_offload
        assert len(gen.generate([PROMPT], SAMPLE, [1])[0].token_ids) == SAMPLE.max_new_tokens
    finally:
        gen.close()
    gen = LlamaCppGenerator.load(files["f16"][0], n_gpu_layers=0)
    assert not gen.gpu_offload
    gen.close()


def test_loading_and_generating_print_nothing(files, capfd):
    gen = LlamaCppGenerator.load(files["f16"][0], n_gpu_layers=0)
    gen.generate([PROMPT], SAMPLE, [1])
    gen.close()
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def _bad_files(folder, good):
    data = good.read_bytes()
    cases = {
        "missing": None,
        "empty": b"",
        "not_gguf": b"this is a text file, not a model\n" * 10,
        "truncated": data[: len(data) - 1000],
        "header_cut": data[:200],
        "bad_version": data[:4] + (99).to_bytes(4, "little") + data[8:],
    }
    # Nonsense in the value-type field of the first key/value pair (after its key's length and text).
    type_at = 32 + int.from_bytes(data[24:32], "little")
    cases["corrupt_value_type"] = data[:type_at] + (77).to_bytes(4, "little") + data[type_at + 4:]
    paths = {}
    for name, content in cases.items():
        path = folder / f"{name}.gguf"
        if content is not None:
            path.write_bytes(content)
        paths[name] = path
    return paths


@pytest.mark.parametrize(
    "case", ["missing", "empty", "not_gguf", "truncated", "header_cut", "bad_version", "corrupt_value_type"]
)
def test_bad_files_raise_model_load_error_naming_the_file(files, tmp_path, case):
    path = _bad_files(tmp_path, files["f16"][0])[case]
    with pytest.raises(ModelLoadError) as info:
        LlamaCppGenerator.load(path, n_gpu_layers=0)
    assert str(path) in str(info.value)


def test_a_gguf_llama_cpp_rejects_is_a_model_load_error(tmp_path):
    import numpy as np
    from gguf import GGUFWriter

    path = tmp_path / "unknown_arch.gguf"
    writer = GGUFWriter(str(path), "not-a-llama")
    writer.add_tensor("weight", np.zeros((4, 4), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelLoadError, match="llama.cpp could not load .*unknown_arch.gguf"):
        LlamaCppGenerator.load(path, n_gpu_layers=0)


def test_importing_the_backend_loads_no_heavy_library():
    code = ("import sys, lib_tagger.generate.llama_cpp_backend; "
            "print(sorted(m for m in ('llama_cpp', 'torch', 'numpy') if m in sys.modules))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_seeds_are_taken_modulo_2_32_and_never_mean_random(q8):
    a, b, c, d = q8.generate([PROMPT] * 4, SAMPLE, [5, 5 + 2**32, -1, -1])
    assert a.token_ids == b.token_ids
    assert c.token_ids == d.token_ids  # 0xFFFFFFFF would be llama.cpp's "pick a random seed"


# --- prefix reuse (DanTagGen top-up rounds re-send the first round's input) ---

TOPUP = PROMPT + "smile, blue eyes, hat, white background"
OTHER = dantaggen_prompt("sky, cloud, outdoors")


@pytest.fixture
def evals(monkeypatch):
    """(tokens already in the context, tokens evaluated) of every llama.cpp ``eval`` call."""
    calls: list[tuple[int, int]] = []
    original = llama_cpp.Llama.eval

    def counting(self, tokens):
        calls.append((self.n_tokens, len(tokens)))
        return original(self, tokens)

    monkeypatch.setattr(llama_cpp.Llama, "eval", counting)
    return calls


def test_the_generator_says_it_can_keep_a_prefix(q8):
    assert q8.reuses_prefix is True


def test_a_call_that_continues_the_last_prompt_evaluates_only_the_new_tokens(q8, evals):
    base, full = q8.tokenize_prompt(PROMPT), q8.tokenize_prompt(TOPUP)
    assert full[:len(base)] == base and len(full) > len(base) + 5
    q8.generate([PROMPT], SAMPLE, [1])
    evals.clear()
    [reused] = q8.generate([TOPUP], SAMPLE, [2], prefix=PROMPT)
    assert evals[0] == (len(base), len(full) - len(base))  # the prompt: only what follows the prefix
    assert all(n == 1 for _, n in evals[1:])  # then one token at a time
    assert sum(n for _, n in evals) < len(full)
    evals.clear()
    [fresh] = q8.generate([TOPUP], SAMPLE, [2])  # no prefix: always from an empty context
    assert evals[0] == (0, len(full))
    assert fresh.prompt_tokens == reused.prompt_tokens == len(full)
    # On the CPU the split evaluation gives the same logits: same tokens as evaluating it whole.
    assert reused.token_ids == fresh.token_ids and len(reused.token_ids) == SAMPLE.max_new_tokens


def _prompt_evals(evals):
    """The eval calls of prompts (generated tokens are evaluated one at a time)."""
    return [call for call in evals if call[1] > 1]


def _split(gen, prefix: str, prompt: str) -> list[tuple[int, int]]:
    """The eval calls of ``prompt`` with ``prefix`` evaluated on its own first."""
    base, full = gen.tokenize_prompt(prefix), gen.tokenize_prompt(prompt)
    return [(0, len(base)), (len(base), len(full) - len(base))]


def test_prefix_results_do_not_depend_on_earlier_calls(q8, evals):
    q8.generate([PROMPT], SAMPLE, [1])
    continued = q8.generate([TOPUP, TOPUP, TOPUP], SAMPLE, [2, 3, 2], prefix=PROMPT)
    q8.generate([OTHER], SAMPLE, [9])  # the context now holds another prompt
    evals.clear()
    after_other = q8.generate([TOPUP, TOPUP], SAMPLE, [2, 3], prefix=PROMPT)
    # The prefix is evaluated on its own once, then kept for both prompts.
    first, rest = _split(q8, PROMPT, TOPUP)
    assert _prompt_evals(evals) == [first, rest, rest]
    assert [g.token_ids for g in after_other] == [g.token_ids for g in continued[:2]]
    assert continued[0].token_ids == continued[2].token_ids != continued[1].token_ids


def test_a_prefix_the_prompt_does_not_begin_with_is_ignored(q8, evals):
    q8.generate([PROMPT], SAMPLE, [1])
    evals.clear()
    [out] = q8.generate([OTHER], SAMPLE, [4], prefix=PROMPT)
    assert evals[0] == (0, len(q8.tokenize_prompt(OTHER)))
    [alone] = q8.generate([OTHER], SAMPLE, [4])
    assert out.token_ids == alone.token_ids
    evals.clear()
    [same] = q8.generate([PROMPT], SAMPLE, [1], prefix=PROMPT)  # nothing after the prefix: evaluated whole
    assert evals[0] == (0, len(q8.tokenize_prompt(PROMPT)))
    assert same.token_ids == q8.generate([PROMPT], SAMPLE, [1])[0].token_ids


def test_prefix_reuse_survives_the_context_growing(files, evals):
    gen = LlamaCppGenerator.load(files["short_context"][0], n_gpu_layers=0, n_ctx=64)
    other = LlamaCppGenerator.load(files["short_context"][0], n_gpu_layers=0, n_ctx=128)
    try:
        gen.generate([PROMPT], SamplingParams(max_new_tokens=4), [1])
        assert gen.n_ctx == 64
        evals.clear()
        long_run = SamplingParams(max_new_tokens=40)
        [grown] = gen.generate([TOPUP], long_run, [2], prefix=PROMPT)  # re-opens the context: nothing kept
        assert gen.n_ctx == 128 and len(grown.token_ids) == 40
        assert _prompt_evals(evals) == _split(gen, PROMPT, TOPUP)
        other.generate([PROMPT], SamplingParams(max_new_tokens=4), [1])
        [kept] = other.generate([TOPUP], long_run, [2], prefix=PROMPT)
        assert kept.token_ids == grown.token_ids
    finally:
        gen.close()
        other.close()


ROUND3 = TOPUP + ", sky, cloud"


def test_a_chain_of_prefixes_is_built_the_same_way_whatever_ran_before(q8, evals):
    lengths = [len(q8.tokenize_prompt(p)) for p in (PROMPT, TOPUP, ROUND3)]
    q8.generate([PROMPT], SAMPLE, [1])
    q8.generate([TOPUP], SAMPLE, [2], prefix=PROMPT)
    evals.clear()
    [continued] = q8.generate([ROUND3], SAMPLE, [3], prefix=[PROMPT, TOPUP])
    assert _prompt_evals(evals) == [(lengths[1], lengths[2] - lengths[1])]  # only what is new since TOPUP
    q8.generate([OTHER], SAMPLE, [9])
    evals.clear()
    [rebuilt] = q8.generate([ROUND3], SAMPLE, [3], prefix=[PROMPT, TOPUP])
    # Rebuilt prefix by prefix, exactly as the kept state was.
    assert _prompt_evals(evals) == [(0, lengths[0]), (lengths[0], lengths[1] - lengths[0]),
                                    (lengths[1], lengths[2] - lengths[1])]
    assert rebuilt.token_ids == continued.token_ids


def test_a_prefix_in_the_chain_the_prompt_does_not_begin_with_is_skipped(q8, evals):
    q8.generate([OTHER], SAMPLE, [9])
    evals.clear()
    [out] = q8.generate([ROUND3], SAMPLE, [3], prefix=[PROMPT, OTHER, TOPUP])
    first, topup, full = (len(q8.tokenize_prompt(p)) for p in (PROMPT, TOPUP, ROUND3))
    assert _prompt_evals(evals) == [(0, first), (first, topup - first), (topup, full - topup)]
    assert out.token_ids == q8.generate([ROUND3], SAMPLE, [3], prefix=[PROMPT, TOPUP])[0].token_ids


def test_decoding_uses_one_thread_per_physical_core(files):
    from lib_tagger.devices import cpu_threads

    gen = LlamaCppGenerator.load(files["q8_0"][0], n_gpu_layers=0)
    try:
        assert (gen._llm.n_threads, gen._llm.n_threads_batch) == cpu_threads()
    finally:
        gen.close()
    one = LlamaCppGenerator.load(files["q8_0"][0], n_gpu_layers=0, n_threads=1)
    try:
        assert one._llm.n_threads == 1
    finally:
        one.close()


def test_physical_cores_are_counted_from_the_cpu_topology(tmp_path, monkeypatch):
    import os

    from lib_tagger.devices import cpu_threads

    for cpu, core in ((0, 0), (1, 0), (2, 1), (3, 1)):  # two cores with two hyperthreads each
        topology = tmp_path / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        (topology / "physical_package_id").write_text("0\n")
        (topology / "core_id").write_text(f"{core}\n")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert cpu_threads(str(tmp_path)) == (2, 4)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 2})  # one CPU of each core allowed
    assert cpu_threads(str(tmp_path)) == (2, 2)
    assert cpu_threads(str(tmp_path / "missing")) == (2, 2)  # no topology: each CPU counts as a core


def test_a_round_that_goes_on_with_the_generated_tokens_reuses_them(solo, evals):
    base = len(solo.tokenize_prompt(PROMPT))
    for seed in range(50):  # a first round whose first 3 tokens read back as the same tokens
        [first] = solo.generate([PROMPT], SAMPLE, [seed])
        follow = PROMPT + solo._llm.detokenize(first.token_ids[:3]).decode(errors="replace").lstrip() + " hat"
        full = solo.tokenize_prompt(follow)
        if full[base:base + 3] == first.token_ids[:3]:
            break
    else:
        pytest.fail("no seed's first tokens read back as themselves")
    evals.clear()
    [reused] = solo.generate([follow], SAMPLE, [2], prefix=[(PROMPT, first.token_ids)])
    assert evals[0] == (base + 3, len(full) - base - 3)  # the generated tokens are kept
    solo.generate([OTHER], SAMPLE, [9])
    evals.clear()
    [rebuilt] = solo.generate([follow], SAMPLE, [2], prefix=[(PROMPT, first.token_ids)])
    # Rebuilt as it was built: the first input in one go, the generated tokens one at a time.
    assert evals[:5] == [(0, base), (base, 1), (base + 1, 1), (base + 2, 1), (base + 3, len(full) - base - 3)]
    assert rebuilt.token_ids == reused.token_ids
