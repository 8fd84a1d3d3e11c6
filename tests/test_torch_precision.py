"""Faster CPU precisions for image taggers: any module's linears in 8 bits, bf16 autocast, fallbacks."""

from __future__ import annotations

import logging

import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from lib_tagger.generate import linear as linear_module  # noqa: E402
from lib_tagger.generate.linear import int8_problem  # noqa: E402
from lib_tagger.interrogate.joytag.loader import JoyTagger  # noqa: E402
from lib_tagger.interrogate.loading import get_interrogator, predict_images, unload_interrogator  # noqa: E402
from lib_tagger.torch_precision import Int8Module, bf16_problem, prepare, quantize_linears  # noqa: E402
from tests.factories.joytag_model import save_joytag_checkpoint  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CPU = torch.device("cpu")
needs_int8 = pytest.mark.skipif(int8_problem(CPU) is not None,
                                reason=f"8-bit products unavailable: {int8_problem(CPU)}")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_joytag_checkpoint(tmp_path_factory.mktemp("joytag"), tiny=True, seed=5)


def _images():
    return [Image.new("RGB", (64 + 16 * i, 48), (i * 50, 255 - i * 40, 90)) for i in range(5)]


def _scores(tagger, images, batch_size=8) -> list[dict[str, float]]:
    return [prediction.scores for prediction in predict_images(tagger, images, batch_size=batch_size)]


@needs_int8
def test_every_linear_of_any_module_becomes_8_bit_and_stays_close():
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.GELU(),
                                torch.nn.Sequential(torch.nn.LayerNorm(64), torch.nn.Linear(64, 16)))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    x = torch.randn(3, 7, 32, generator=gen)
    expected = model(x)
    assert quantize_linears(model) == 2
    assert isinstance(model[0], Int8Module) and isinstance(model[2][1], Int8Module)
    assert isinstance(model[2][0], torch.nn.LayerNorm)
    with torch.inference_mode():
        got = model(x)
    assert (got - expected).norm() < 0.03 * expected.norm()


@needs_int8
def test_joytag_in_8_bits_scores_within_0_03_and_an_image_ignores_its_batch_mates(checkpoint):
    fp32 = JoyTagger.load(str(checkpoint), device="cpu")
    int8 = JoyTagger.load(str(checkpoint), device="cpu", precision="int8")
    assert (fp32.precision, int8.precision, int8.notice) == ("fp32", "int8", "")
    images = _images()
    reference, scores = _scores(fp32, images, batch_size=4), _scores(int8, images, batch_size=4)
    worst = max(abs(a[tag] - b[tag]) for a, b in zip(reference, scores) for tag in a)
    assert 0 < worst <= 0.03
    alone = _scores(int8, images[3:4], batch_size=1)[0]
    assert alone == scores[3]  # exactly: each image's rows are quantized on their own


def test_bf16_runs_where_the_cpu_has_it_and_says_why_not_elsewhere(checkpoint):
    tagger = JoyTagger.load(str(checkpoint), device="cpu", precision="bf16")
    problem = bf16_problem(CPU)
    if problem is None:
        assert tagger.precision == "bf16" and tagger.notice == ""
        reference = _scores(JoyTagger.load(str(checkpoint), device="cpu"), _images()[:2])
        scores = _scores(tagger, _images()[:2])
        assert max(abs(a[t] - b[t]) for a, b in zip(reference, scores) for t in a) <= 0.03
    else:
        assert tagger.precision == "fp32"
        assert tagger.notice == f"bf16 was asked for, but {problem}: running in fp32"


def test_where_8_bit_cannot_run_fp32_runs_with_a_message(checkpoint, monkeypatch, caplog):
    monkeypatch.setattr(linear_module, "_int8_problem", "this torch build has no x86 quantized engine (fbgemm)")
    unload_interrogator()
    with caplog.at_level(logging.WARNING, logger="lib_tagger.interrogate.loading"):
        tagger = get_interrogator(str(checkpoint), device="cpu", precision="int8")
    try:
        assert tagger.precision == "fp32" and len(_scores(tagger, _images()[:1])[0]) == 5813
        assert "int8 was asked for, but this torch build has no x86 quantized engine" in caplog.text
    finally:
        unload_interrogator()


def test_a_precision_must_be_one_of_the_known_ones():
    with pytest.raises(ValueError, match="fp32, int8, bf16"):
        prepare(torch.nn.Linear(2, 2), "int4", CPU)


@needs_int8
def test_the_cache_keeps_one_tagger_per_precision(checkpoint):
    unload_interrogator()
    try:
        int8 = get_interrogator(str(checkpoint), device="cpu", precision="int8")
        assert get_interrogator(str(checkpoint), device="cpu", precision="int8") is int8
        fp32 = get_interrogator(str(checkpoint), device="cpu")
        assert fp32 is not int8 and fp32.precision == "fp32" and not int8.loaded
    finally:
        unload_interrogator()


def test_the_interrogate_and_caption_commands_take_a_precision():
    from lib_tagger import cli

    parser = cli.build_parser()
    for command in ("interrogate", "caption"):
        target = "a.png" if command == "interrogate" else "."
        assert parser.parse_args([command, target, "--precision", "int8"]).precision == "int8"
        assert parser.parse_args([command, target]).precision == "fp32"


def test_the_webui_setting_reads_the_precision():
    from tagger_webui.interrogate_service import InterrogateUiError, settings_from_options

    values = {"tagger_joytag_precision": "bf16"}
    assert settings_from_options(lambda key, default: values.get(key, default)).precision == "bf16"
    with pytest.raises(InterrogateUiError, match="tagger_joytag_precision"):
        settings_from_options(lambda key, default: "int4" if key == "tagger_joytag_precision" else default)
