"""The decoder's products: MKL-packed weights give F.linear's results, and the plain path stays when packing can't."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from lib_tagger.generate import linear as linear_module  # noqa: E402
from lib_tagger.generate.linear import Linear, packing_available, wants_transposed  # noqa: E402
from lib_tagger.generate.torch_model import Decoder  # noqa: E402
from tests.factories import torch_models as tm  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CPU = torch.device("cpu")
needs_packing = pytest.mark.skipif(not packing_available(CPU, torch.float32),
                                   reason="this torch build has no usable MKL packed GEMM")


@needs_packing
@pytest.mark.parametrize("rows", [1, 2, 5, 8, 13, 40])
@pytest.mark.parametrize("with_bias", [False, True])
def test_packed_product_equals_f_linear_for_any_row_count(rows, with_bias):
    gen = torch.Generator().manual_seed(rows)
    weight, bias = torch.randn(70, 48, generator=gen), torch.randn(70, generator=gen) if with_bias else None
    x = torch.randn(2, rows, 48, generator=gen)[:, ::1]
    layer = Linear(weight.clone(), bias)
    layer.pack()
    assert layer.weight is None and layer.packed is not None, "the packed copy replaces the plain weight"
    got = layer(x)
    assert got.shape == (2, rows, 70)
    torch.testing.assert_close(got, torch.nn.functional.linear(x, weight, bias), atol=1e-5, rtol=1e-5)
    assert layer.nbytes == 70 * 48 * 4 + (70 * 4 if with_bias else 0)


@needs_packing
def test_packed_product_reads_non_contiguous_rows():
    weight = torch.randn(30, 16)
    x = torch.randn(4, 3, 16).transpose(0, 1)  # [3, 4, 16], not contiguous
    layer = Linear(weight)
    layer.pack()
    torch.testing.assert_close(layer(x), torch.nn.functional.linear(x, weight))


def test_only_float32_on_cpu_packs():
    assert not packing_available(CPU, torch.bfloat16)
    assert not packing_available(torch.device("meta"), torch.float32)


def test_without_mkl_the_decoder_keeps_plain_weights_and_the_same_logits(tmp_path, monkeypatch):
    tm.write_decoder_folder(tmp_path, tm.tiny_config("mistral", 64), seed=2)
    ids = torch.randint(0, 64, (3, 7), generator=torch.Generator().manual_seed(1))
    reference = Decoder.from_folder(tmp_path, pack_weights=False)
    expected = reference.forward(ids, reference.new_cache(3, 7), all_logits=True)

    monkeypatch.setattr(linear_module, "_pack_ok", None)
    monkeypatch.setattr(torch.backends.mkl, "is_available", lambda: False)
    plain = Decoder.from_folder(tmp_path)
    assert not plain.packed
    assert all(layer["qkv"].packed is None and layer["qkv"].weight is not None for layer in plain.layers)
    torch.testing.assert_close(plain.forward(ids, plain.new_cache(3, 7), all_logits=True), expected)


@needs_packing
def test_packed_and_plain_decoders_agree_while_decoding_a_padded_batch(tmp_path):
    tm.write_decoder_folder(tmp_path, tm.tiny_config("mixtral", 64), seed=4)
    packed, plain = Decoder.from_folder(tmp_path, pack_weights=True), Decoder.from_folder(tmp_path, pack_weights=False)
    assert packed.packed and not plain.packed
    assert packed.weight_bytes == plain.weight_bytes and packed.decode_bytes() == plain.decode_bytes()
    ids = torch.randint(0, 64, (3, 6), generator=torch.Generator().manual_seed(2))
    valid = torch.ones(3, 6, dtype=torch.bool)
    valid[1, :2] = False
    caches = [model.new_cache(3, 10) for model in (packed, plain)]
    logits = [model.forward(ids, cache, valid) for model, cache in zip((packed, plain), caches)]
    for _ in range(4):
        torch.testing.assert_close(logits[0], logits[1], atol=1e-5, rtol=1e-5)
        nxt = logits[1].argmax(-1, keepdim=True)
        logits = [model.forward(nxt, cache) for model, cache in zip((packed, plain), caches)]
    assert not plain.packed, "pack_weights=False never packs, even for batches"


@needs_packing
def test_by_default_weights_are_packed_at_the_first_batch_only(tmp_path):
    tm.write_decoder_folder(tmp_path, tm.tiny_config("llama", 64), seed=5)
    model = Decoder.from_folder(tmp_path)
    reference = Decoder.from_folder(tmp_path, pack_weights=False)
    one = torch.randint(0, 64, (1, 5), generator=torch.Generator().manual_seed(3))
    model.forward(one, model.new_cache(1, 5))
    assert not model.packed and model.layers[0]["qkv"].packed is None, "batch 1 keeps plain weights"
    two = torch.cat([one, one.flip(1)])
    got = model.forward(two, model.new_cache(2, 5), all_logits=True)
    assert model.packed and all(lin.packed is not None for lin in model._linears(model.layers[0]))
    assert model.lm_head.packed is not None
    torch.testing.assert_close(got, reference.forward(two, reference.new_cache(2, 5), all_logits=True),
                               atol=1e-5, rtol=1e-5)


def test_wide_weights_are_stored_transposed_on_cpu_only():
    assert wants_transposed(70, 48, CPU) and wants_transposed(48, 48, CPU)
    assert not wants_transposed(48, 70, CPU)
    assert not wants_transposed(70, 48, torch.device("meta"))


@pytest.mark.parametrize("with_bias", [False, True])
def test_a_transposed_weight_gives_the_same_products_and_packs(with_bias):
    gen = torch.Generator().manual_seed(9)
    weight = torch.randn(70, 48, generator=gen)
    bias = torch.randn(70, generator=gen) if with_bias else None
    layer = Linear(weight.t().contiguous(), bias, transposed=True)
    assert (layer.out_features, layer.in_features) == (70, 48)
    x = torch.randn(3, 1, 48, generator=gen)
    expected = torch.nn.functional.linear(x, weight, bias)
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)
    if packing_available(CPU, torch.float32):
        layer.pack()  # from the transposed layout
        assert layer.packed is not None and not layer.transposed
        torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)


def test_the_decoder_stores_wide_projections_transposed_on_cpu(tmp_path):
    tm.write_decoder_folder(tmp_path, tm.tiny_config("llama", 64), seed=5)
    model = Decoder.from_folder(tmp_path, pack_weights=False)
    layer = model.layers[0]
    assert layer["qkv"].transposed and layer["gate_up"].transposed and model.lm_head.transposed
    assert not layer["down"].transposed  # more inputs than outputs: plain is faster


@pytest.mark.parametrize("int8", [False, True])
def test_the_decoder_owns_every_weight_so_the_files_pages_are_not_kept(tmp_path, int8):
    from lib_tagger.generate.checkpoint import load_state, read_config
    from lib_tagger.generate.linear import int8_problem

    if int8 and int8_problem(CPU) is not None:
        pytest.skip(int8_problem(CPU))
    tm.write_decoder_folder(tmp_path, tm.tiny_config("mistral", 64), seed=2)
    config = read_config(tmp_path)
    state = load_state(tmp_path, config)
    # As a memory-mapped file hands them out: every tensor a view into one buffer.
    buffer = torch.cat([t.flatten() for t in state.values()])
    offset, views = 0, {}
    for key, tensor in state.items():
        views[key] = buffer[offset:offset + tensor.numel()].view(tensor.shape)
        offset += tensor.numel()
    model = Decoder(config, views, CPU, torch.float32, pack_weights=False, int8=int8)
    held = [model.embed, model.norm] + [t for layer in model.layers for t in (layer["ln1"], layer["ln2"])]
    held += [lin.weight for layer in model.layers for lin in model._linears(layer) if hasattr(lin, "weight")]
    held += [lin.bias for layer in model.layers for lin in model._linears(layer) if lin.bias is not None]
    assert held and all(t.untyped_storage().data_ptr() != buffer.untyped_storage().data_ptr() for t in held)
