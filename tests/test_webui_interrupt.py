"""Interrupt and Skip reach the upsampling: the host's ``shared.state`` is read between decode steps, prompts and
top-up rounds; prompts not reached stay as they were, and the job goes on as the host decides (Interrupt: no
image, Skip: the images, with those prompts). Real tiny models; the Interrupt button is pressed from inside the
real model call, at a chosen step."""

from __future__ import annotations

import pytest

from tests.factories.gguf_models import tiny_spec, write_llama_gguf
from tests.factories.torch_models import make_dart_folder

PROMPT = "1girl, solo, long hair"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("interrupt-models")
    make_dart_folder(root / "dart", model_type="mixtral", max_position_embeddings=256)
    write_llama_gguf(root / "dantaggen.gguf", tiny_spec(tensor_type="q8_0"))
    return root


@pytest.fixture
def state(webui, monkeypatch, one_torch_thread):
    from modules import shared

    from lib_tagger.models.manager import get_manager

    saved = dict(shared.opts.data)
    shared.opts.data["tagger_device"] = "cpu"
    yield shared.state
    shared.opts.data.clear()
    shared.opts.data.update(saved)
    shared.state.begin()
    get_manager().unload()


def press_during(monkeypatch, owner, name, button, after: int) -> list:
    """Wrap the real ``owner.name`` so that ``button()`` is pressed when its call number ``after`` returns;
    returns the list of call numbers (one per call)."""
    calls: list[int] = []
    real = getattr(owner, name)

    def wrapped(*args, **kwargs):
        calls.append(len(calls) + 1)
        result = real(*args, **kwargs)
        if len(calls) == after:
            button()
        return result

    monkeypatch.setattr(owner, name, wrapped)
    return calls


def run(webui, model, **job):
    return webui.run("txt2img", [{"model": str(model), "max_new_tokens": 48, "length": "very_long"}],
                     prompt=PROMPT, seed=10, **job)


def untouched_or_whole(prompts):
    return all(p == PROMPT or p.startswith(PROMPT + ", ") for p in prompts)


def test_interrupt_stops_the_batch_between_decode_steps_and_no_image_is_made(webui, state, models, monkeypatch,
                                                                             capsys):
    from lib_tagger.generate.torch_model import Decoder

    forwards = press_during(monkeypatch, Decoder, "forward", state.interrupt, after=3)
    processed, p = run(webui, models / "dart", batch_size=8, n_iter=3)
    assert len(forwards) == 3  # 48 steps without the interrupt; none after it
    assert untouched_or_whole(p.all_prompts) and p.all_prompts.count(PROMPT) >= 20
    assert processed.images == []  # the host ends an interrupted job
    err = capsys.readouterr().err
    assert "stopped by the user" in err and "Traceback" not in err
    assert "Tagger error" not in processed.extra_generation_params


def test_skip_stops_the_upsampling_and_the_host_still_makes_every_image(webui, state, models, monkeypatch):
    from lib_tagger.generate.torch_model import Decoder

    forwards = press_during(monkeypatch, Decoder, "forward", state.skip, after=2)
    processed, p = run(webui, models / "dart", batch_size=4, n_iter=2)
    assert len(forwards) == 2
    assert [image.prompt for image in processed.images] == p.all_prompts  # 8 images, with those prompts
    assert len(processed.images) == 8 and p.all_prompts.count(PROMPT) >= 6


def test_interrupt_between_prompts_and_before_top_ups_of_llama_cpp(webui, state, models, monkeypatch):
    pytest.importorskip("llama_cpp")
    from lib_tagger.generate.llama_cpp_backend import LlamaCppGenerator

    calls = press_during(monkeypatch, LlamaCppGenerator, "_generate_one", state.interrupt, after=2)
    processed, p = run(webui, models / "dantaggen.gguf", batch_size=3, n_iter=2)
    assert len(calls) == 2  # the other 4 prompts were never begun, and no top-up round ran
    assert p.all_prompts == [PROMPT] * 6  # a prompt without its top-up rounds is left as it was
    assert processed.images == []


def test_without_a_press_every_prompt_is_upsampled(webui, state, models):
    processed, p = run(webui, models / "dart", batch_size=2, n_iter=2)
    assert len(processed.images) == 4 and all(prompt != PROMPT for prompt in p.all_prompts)


def test_a_stale_flag_from_an_earlier_job_does_not_stop_the_next(webui, state, models):
    state.interrupt()  # pressed after the last job ended; the next job's begin() clears it, as in the host
    processed, p = run(webui, models / "dart", batch_size=2)
    assert len(processed.images) == 2 and all(prompt != PROMPT for prompt in p.all_prompts)
