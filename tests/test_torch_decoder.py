"""The plain-torch decoder against transformers' own LLaMA / Mistral / Mixtral on the same weights."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from lib_tagger.generate.base import ModelLoadError  # noqa: E402
from lib_tagger.generate.checkpoint import DecoderConfig, read_config  # noqa: E402
from lib_tagger.generate.linear import packing_available  # noqa: E402
from lib_tagger.generate.torch_model import Decoder  # noqa: E402
from tests.factories import torch_models as tm  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


TOL = 1e-4
VOCAB = 96

CASES = {
    "llama-mish": ("llama", {"hidden_act": "mish"}),
    "llama-gqa-silu": ("llama", {"num_key_value_heads": 2}),
    "mistral-window": ("mistral", {"sliding_window": 5}),
    "mixtral-top2": ("mixtral", {"sliding_window": 6}),
}


def _needs(model_type: str, overrides: dict) -> None:
    classes = tm.hf_classes(model_type)
    if classes is None:
        pytest.skip(
            f"this transformers has no {model_type} classes (A1111 pins 4.30.2); runs in the forge venv"
        )
    if "num_key_value_heads" in overrides and "num_key_value_heads" not in classes[0]().to_dict():
        pytest.skip("this transformers' LlamaConfig has no num_key_value_heads (GQA came in 4.31)")


@pytest.fixture(scope="module", params=[(case, pack) for case in CASES for pack in ("packed", "plain")],
                ids=lambda p: f"{p[0]}-{p[1]}")
def pair(request, tmp_path_factory):
    """(transformers model, our decoder) over one saved checkpoint; weights MKL-packed or plain."""
    case, pack = request.param
    model_type, overrides = CASES[case]
    _needs(model_type, overrides)
    if pack == "packed" and not packing_available(torch.device("cpu"), torch.float32):
        pytest.skip("this torch build has no usable MKL packed GEMM")
    folder = tmp_path_factory.mktemp(case)
    config = tm.tiny_config(model_type, VOCAB, **overrides)
    hf = tm.save_hf_model(folder, config, seed=3)
    ours = Decoder.from_folder(folder, pack_weights=pack == "packed")
    assert ours.packed == (pack == "packed")
    return hf, ours


def _hf_logits(hf, ids, mask):
    positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        return hf(input_ids=ids, attention_mask=mask.long(), position_ids=positions).logits.float()


def test_full_forward_matches_transformers(pair):
    hf, ours = pair
    ids = torch.randint(0, VOCAB, (2, 11), generator=torch.Generator().manual_seed(0))
    expected = _hf_logits(hf, ids, torch.ones_like(ids, dtype=torch.bool))
    got = ours.forward(ids, ours.new_cache(2, 11), all_logits=True)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() < TOL
    assert expected.abs().max().item() > 0.1  # the comparison is not between near-zero tensors


def test_incremental_decoding_with_cache_matches_full_forward(pair):
    hf, ours = pair
    ids = torch.randint(0, VOCAB, (1, 12), generator=torch.Generator().manual_seed(1))
    expected = _hf_logits(hf, ids, torch.ones_like(ids, dtype=torch.bool))
    cache = ours.new_cache(1, 12)
    got = [ours.forward(ids[:, :4], cache, all_logits=True)]
    got += [ours.forward(ids[:, t : t + 1], cache, all_logits=True) for t in range(4, 12)]
    assert (torch.cat(got, dim=1) - expected).abs().max().item() < TOL


def test_left_padded_batch_matches_transformers_and_unpadded_rows(pair):
    hf, ours = pair
    gen = torch.Generator().manual_seed(2)
    lengths, width, extra = (10, 6, 8), 10, 4
    full = torch.randint(0, VOCAB, (3, width + extra), generator=gen)
    mask = torch.zeros(3, width + extra, dtype=torch.bool)
    for row, n in enumerate(lengths):
        full[row, : width - n] = 0
        mask[row, width - n :] = True
    expected = _hf_logits(hf, full, mask)
    cache = ours.new_cache(3, width + extra)
    steps = [ours.forward(full[:, :width], cache, mask[:, :width], all_logits=True)]
    steps += [ours.forward(full[:, t : t + 1], cache, all_logits=True) for t in range(width, width + extra)]
    got = torch.cat(steps, dim=1)
    assert (got - expected)[mask].abs().max().item() < TOL
    # Each padded row equals that row run alone (no padding at all).
    for row, n in enumerate(lengths):
        alone = ours.forward(full[row : row + 1, width - n :], ours.new_cache(1, n + extra), all_logits=True)
        assert (alone[0] - got[row, width - n :]).abs().max().item() < TOL


def test_sliding_window_changes_results(tmp_path):
    """Guards the window test above: with a short window, far context must not matter."""
    cfg = tm.tiny_config("mistral", VOCAB, sliding_window=3)
    tm.write_decoder_folder(tmp_path, cfg, seed=4)
    model = Decoder.from_folder(tmp_path)
    a = torch.randint(0, VOCAB, (1, 9), generator=torch.Generator().manual_seed(5))
    b = a.clone()
    b[0, 0] = (a[0, 0] + 1) % VOCAB
    la = model.forward(a, model.new_cache(1, 9), all_logits=True)
    lb = model.forward(b, model.new_cache(1, 9), all_logits=True)
    # Position 0 feeds positions 0-2 in layer 1 and up to 4 after two layers; beyond that it is gone.
    assert (la[0, 1] - lb[0, 1]).abs().max() > 1e-3
    assert torch.equal(la[0, 6:], lb[0, 6:])


def test_sharded_checkpoint_and_tied_embeddings_load(tmp_path):
    cfg = tm.tiny_config("llama", VOCAB, tie_word_embeddings=True)
    tm.write_decoder_folder(tmp_path, cfg, seed=6, shards=3)
    model = Decoder.from_folder(tmp_path)
    assert model.lm_head.weight is model.embed and model.lm_head.packed is None
    logits = model.forward(torch.tensor([[1, 5, 7]]), model.new_cache(1, 3))
    assert logits.shape == (1, VOCAB) and torch.isfinite(logits).all()


def test_config_errors_name_file_and_field(tmp_path):
    with pytest.raises(ModelLoadError, match="config.json"):
        read_config(tmp_path)
    base = tm.tiny_config("mistral", VOCAB)
    for field, value, needle in (
        ("model_type", "gpt2", "model_type"),
        ("hidden_size", 0, "hidden_size"),
        ("hidden_act", "swiglu9", "hidden_act"),
        ("num_key_value_heads", 3, "multiple"),
        ("rope_scaling", {"type": "linear", "factor": 2.0}, "rope_scaling"),
    ):
        with pytest.raises(ModelLoadError, match=needle) as info:
            DecoderConfig.from_dict({**base, field: value}, str(tmp_path / "config.json"))
        assert "config.json" in str(info.value)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="config.json"):
        read_config(tmp_path)


@pytest.mark.parametrize("damage", ["truncate", "garbage-header", "missing"])
def test_bad_weight_files_raise_model_load_error_naming_the_file(tmp_path, damage):
    tm.write_decoder_folder(tmp_path, tm.tiny_config("llama", VOCAB), seed=7)
    path = tmp_path / "model.safetensors"
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage-header":
        path.write_bytes(b"\xff" * 16 + data[16:])
    else:
        path.unlink()
    with pytest.raises(ModelLoadError, match="model.safetensors"):
        Decoder.from_folder(tmp_path)


def test_wrong_shape_missing_and_unexpected_keys_are_named(tmp_path):
    from safetensors.torch import save_file

    cfg = tm.tiny_config("llama", VOCAB)
    tm.write_decoder_folder(tmp_path, cfg, seed=8)
    state = tm.random_state(cfg, seed=8)
    path = tmp_path / "model.safetensors"

    bad = dict(state, **{"model.norm.weight": torch.ones(63)})
    save_file(bad, str(path))
    with pytest.raises(ModelLoadError, match=r"model\.norm\.weight.*shape"):
        Decoder.from_folder(tmp_path)

    save_file({k: v for k, v in state.items() if k != "model.layers.1.mlp.up_proj.weight"}, str(path))
    with pytest.raises(ModelLoadError, match=r"model\.layers\.1\.mlp\.up_proj\.weight"):
        Decoder.from_folder(tmp_path)

    save_file(dict(state, extra=torch.zeros(1)), str(path))
    with pytest.raises(ModelLoadError, match="unexpected tensor 'extra'"):
        Decoder.from_folder(tmp_path)

    # A config that disagrees with the weights (e.g. fewer KV heads) is caught the same way.
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "num_key_value_heads": 2}))
    save_file(state, str(path))
    with pytest.raises(ModelLoadError, match="k_proj"):
        Decoder.from_folder(tmp_path)


@pytest.mark.parametrize("routing", ["random", "two-experts-unused"])
def test_mixture_rows_routed_together_equal_rows_run_alone(tmp_path, routing):
    """Several rows at once take the grouped-by-expert path; one row takes the per-row path."""
    cfg = tm.tiny_config("mixtral", VOCAB)
    tm.write_decoder_folder(tmp_path, cfg, seed=6)
    model = Decoder.from_folder(tmp_path, pack_weights=False)
    layer = model.layers[0]
    gen = torch.Generator().manual_seed(7)
    if routing == "random":
        x = torch.randn(2, 5, cfg["hidden_size"], generator=gen)
    else:  # every row is a positive multiple of v, and the router ranks experts 0 > 1 > 2 > 3 for v
        v = torch.randn(cfg["hidden_size"], generator=gen)
        layer["router"] = torch.stack([v, 0.5 * v, 0.25 * v, -v]) / v.norm()
        x = v * torch.linspace(0.5, 2.0, 10).view(2, 5, 1)
    with torch.inference_mode():
        together = model._moe(layer, x)
        alone = torch.stack([model._moe(layer, x[b, t].view(1, 1, -1)).view(-1)
                             for b in range(2) for t in range(5)]).view_as(together)
    assert (together - alone).abs().max().item() < 1e-5
    assert together.abs().max().item() > 1e-2
