"""8-bit weights for the torch decoder: products, batches, real files, seeds, bans, fallback, settings."""

from __future__ import annotations

import logging

import pytest

torch = pytest.importorskip("torch")

from lib_tagger.generate import linear as linear_module  # noqa: E402
from lib_tagger.generate.base import SamplingParams  # noqa: E402
from lib_tagger.generate.linear import Int8Linear, Scratch, int8_problem  # noqa: E402
from lib_tagger.generate.torch_backend import TorchGenerator, choose_precision  # noqa: E402
from lib_tagger.generate.torch_model import Decoder  # noqa: E402
from lib_tagger.settings import SettingsError, UpsampleSettings  # noqa: E402
from tests.factories import torch_models as tm  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CPU = torch.device("cpu")
needs_int8 = pytest.mark.skipif(int8_problem(CPU) is not None,
                                reason=f"8-bit products unavailable: {int8_problem(CPU)}")
FAVOUR = {"long hair": 3.0, "cat ears": 3.0, "ahoge": 3.0, "smile": 2.0}


@pytest.fixture(scope="module")
def dart_folder(tmp_path_factory):
    return tm.make_dart_folder(tmp_path_factory.mktemp("dart"), favour=FAVOUR)


@needs_int8
@pytest.mark.parametrize("with_bias", [False, True])
def test_an_8_bit_product_is_close_to_float32(with_bias):
    gen = torch.Generator().manual_seed(3)
    weight, bias = torch.randn(96, 64, generator=gen), torch.randn(96, generator=gen) if with_bias else None
    layer = Int8Linear(weight, bias)
    x = torch.randn(2, 5, 64, generator=gen)
    got, expected = layer(x), torch.nn.functional.linear(x, weight, bias)
    assert got.shape == (2, 5, 96)
    assert (got - expected).norm() < 0.02 * expected.norm()
    assert layer.nbytes < weight.numel() * 4 / 3  # 1 byte a weight + row scales (+ bias)


@needs_int8
def test_a_batch_row_gets_exactly_what_the_same_row_gets_alone():
    gen = torch.Generator().manual_seed(4)
    layer = Int8Linear(torch.randn(80, 48, generator=gen))
    rows = torch.randn(6, 48, generator=gen)
    rows[2] *= 50.0  # a row of a very different size must not change the others' quantization
    batch = layer(rows)
    for index in range(6):
        assert torch.equal(batch[index], layer(rows[index:index + 1])[0])


@needs_int8
def test_products_sharing_a_scratch_buffer_give_what_each_gives_alone():
    """Many-row inputs (images, prompts) share one buffer: results, and the range row, stay as without it."""
    gen = torch.Generator().manual_seed(5)
    scratch = Scratch()
    weights = [torch.randn(40, 72, generator=gen), torch.randn(72, 40, generator=gen)]
    biases = [torch.randn(40, generator=gen), None]
    shared = [Int8Linear(w, b, scratch) for w, b in zip(weights, biases)]
    alone = [Int8Linear(w, b) for w, b in zip(weights, biases)]
    for rows in (300, 90, 301):  # more rows than a decode step keeps; the buffer grows and is reused
        x = torch.randn(rows, 72, generator=gen)
        first = shared[0](x)
        assert torch.equal(first, alone[0](x))
        assert torch.equal(shared[1](first), alone[1](first))
        assert torch.equal(first[7], alone[0](x[7:8])[0])  # each row quantized on its own
    kept = scratch._flat
    shared[0](torch.randn(100, 72, generator=gen))
    assert scratch._flat is kept  # a smaller input reuses the buffer


@needs_int8
def test_a_call_that_finds_the_scratch_buffer_in_use_takes_its_own():
    gen = torch.Generator().manual_seed(6)
    scratch = Scratch()
    weight = torch.randn(24, 72, generator=gen)
    layer, alone = Int8Linear(weight, scratch=scratch), Int8Linear(weight)
    x = torch.randn(200, 72, generator=gen)
    with scratch.rows(300, 72) as (held, _):  # another thread's call, mid-product
        held.fill_(7.0)
        got = layer(x)
        assert bool((held[1:] == 7.0).all())  # left alone
    assert torch.equal(got, alone(x))


@needs_int8
def test_the_8_bit_decoder_loads_a_real_checkpoint_and_stays_close_to_float32(dart_folder):
    fp32, int8 = Decoder.from_folder(dart_folder), Decoder.from_folder(dart_folder, int8=True)
    assert int8.int8 and isinstance(int8.layers[0]["qkv"], Int8Linear) and isinstance(int8.lm_head, Int8Linear)
    assert int8.weight_bytes < fp32.weight_bytes
    ids = torch.randint(0, fp32.config.vocab_size, (3, 9), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        p = torch.log_softmax(fp32.forward(ids, fp32.new_cache(3, 9), all_logits=True), -1)
        q = torch.log_softmax(int8.forward(ids, int8.new_cache(3, 9), all_logits=True), -1)
    kl = (p.exp() * (p - q)).sum(-1)
    assert kl.max() < 0.02
    assert (p.argmax(-1) == q.argmax(-1)).float().mean() > 0.9


@needs_int8
def test_8_bit_generation_repeats_with_a_seed_honours_bans_and_batches_match(dart_folder):
    gen = TorchGenerator.from_pretrained(dart_folder, device="cpu", precision="int8")
    assert gen.precision == "int8" and gen.notice == ""
    params = SamplingParams(max_new_tokens=24)
    prompts = [tm.dart_prompt("1girl, solo"), tm.dart_prompt("")]
    first = gen.generate(prompts, params, [5, 6])
    assert [g.token_ids for g in gen.generate(prompts, params, [5, 6])] == [g.token_ids for g in first]
    assert [gen.generate([p], params, [s])[0].token_ids for p, s in zip(prompts, [5, 6])] == [
        g.token_ids for g in first]
    assert any("long hair" in g.pieces for g in first), "the favoured tag shows up unbanned"
    banned = SamplingParams(max_new_tokens=24, banned_tags=("long hair", "*ears"))
    for g in gen.generate(prompts * 3, banned, [1, 2, 3, 4, 5, 6]):
        assert "long hair" not in g.pieces and "cat ears" not in g.pieces


def test_where_8_bit_cannot_run_float32_runs_with_a_message_saying_why(dart_folder, monkeypatch, caplog):
    from lib_tagger.models.manager import ModelManager
    from lib_tagger.upsample import upsample_prompts

    monkeypatch.setattr(linear_module, "_int8_problem", "this torch build has no x86 quantized engine (fbgemm)")
    gen = TorchGenerator.from_pretrained(dart_folder, device="cpu", precision="int8")
    assert gen.precision == "fp32" and not gen.decoder.int8
    assert gen.notice == ("int8 was asked for, but this torch build has no x86 quantized engine (fbgemm): "
                          "running in fp32")
    assert choose_precision("auto", CPU) == (torch.float32, False, "")  # auto falls back quietly
    with caplog.at_level(logging.WARNING, logger="lib_tagger.models.manager"):
        [result] = upsample_prompts(["1girl"], UpsampleSettings(model=str(dart_folder), precision="int8"),
                                    seeds=[1], width=512, height=512, manager=ModelManager(device="cpu"))
    assert result.prompt.startswith("1girl")
    assert "int8 was asked for, but this torch build has no x86 quantized engine" in caplog.text


def test_8_bit_is_for_cpus_only():
    assert "CPU only" in int8_problem(torch.device("meta"))
    assert choose_precision("int8", torch.device("meta"), "fp16")[:2] == (torch.float16, False)


@needs_int8
def test_precision_decides_what_the_manager_loads_and_keys_the_cache(dart_folder):
    from lib_tagger.models.manager import ModelManager

    manager = ModelManager(device="cpu")
    with manager.use(str(dart_folder), precision="int8") as loaded:
        assert loaded.generator.precision == "int8"
    with manager.use(str(dart_folder), precision="fp32") as loaded:
        assert loaded.generator.precision == "fp32"
    with manager.use(str(dart_folder)) as loaded:  # auto on a CPU that runs 8-bit
        assert loaded.generator.precision == "int8"
    manager.unload()


def test_precision_is_a_setting_of_its_own_named_last():
    from lib_tagger.settings import FIELD_ORDER

    assert FIELD_ORDER[-1] == "precision" and UpsampleSettings().precision == "auto"
    assert UpsampleSettings.from_dict({"precision": "int8"}).precision == "int8"
    assert UpsampleSettings(precision="fp32").to_infotext()["Tagger precision"] == "fp32"
    with pytest.raises(SettingsError, match="precision"):
        UpsampleSettings(precision="int4")


def test_the_command_line_takes_precision(dart_folder, capsys):
    from lib_tagger import cli

    args = cli.build_parser().parse_args(["upsample", "--model", str(dart_folder), "--prompt", "1girl",
                                          "--precision", "fp32"])
    assert cli._settings_from(args).precision == "fp32"
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["upsample", "--prompt", "x", "--precision", "int4"])
    assert "--precision" in capsys.readouterr().err
