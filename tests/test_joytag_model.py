"""JoyTag's ViT: equivalence with a plain re-statement of the spec, strict loading, clear file errors."""

from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")

from lib_tagger.interrogate.joytag.config import JoyTagConfig, JoyTagModelError, parse_stem  # noqa: E402
from lib_tagger.interrogate.joytag.model import load_joytag_model, sine_positions  # noqa: E402
from tests.factories.joytag_model import (  # noqa: E402
    joytag_config,
    random_state_dict,
    real_data_file,
    save_joytag_checkpoint,
)


def reference_logits(state: dict, config: dict, pixels: torch.Tensor) -> torch.Tensor:
    """joytag.md written out op by op, with no code shared with lib_tagger."""
    x = pixels.double()
    w = {k: v.double() for k, v in state.items()}
    for index, part in enumerate(config["cnn_stem"].split(";")):
        kind, _, opts = part.partition(":")
        prefix = f"patch_embeddings.conv.{index}."
        if kind == "conv":
            o = dict(item.split("=") for item in opts.split(","))
            x = torch.nn.functional.conv2d(x, w[prefix + "weight"], w[prefix + "bias"],
                                           stride=int(o.get("s", 2)), padding=int(o.get("p", 1)))
        elif kind == "ln":
            mean = x.mean(dim=1, keepdim=True)
            var = ((x - mean) ** 2).mean(dim=1, keepdim=True)
            x = (x - mean) / torch.sqrt(var + 1e-5)
            scale, shift = w[prefix + "norm.weight"], w[prefix + "norm.bias"]
            x = x * scale[None, :, None, None] + shift[None, :, None, None]
        elif kind == "relu":
            x = torch.clamp(x, min=0)
    batch, d, gh, gw = x.shape
    tokens = x.reshape(batch, d, gh * gw).permute(0, 2, 1)
    quarter = d // 4
    position = torch.zeros(gh * gw, d, dtype=torch.float64)
    for row in range(gh):
        for col in range(gw):
            for i in range(quarter):
                omega = 1.0 / 10000 ** (i / (quarter - 1))
                position[row * gw + col, i] = math.sin(col * omega)
                position[row * gw + col, quarter + i] = math.cos(col * omega)
                position[row * gw + col, 2 * quarter + i] = math.sin(row * omega)
                position[row * gw + col, 3 * quarter + i] = math.cos(row * omega)
    tokens = tokens + position

    def layer_norm(t, prefix):
        mean = t.mean(-1, keepdim=True)
        var = ((t - mean) ** 2).mean(-1, keepdim=True)
        return (t - mean) / torch.sqrt(var + 1e-5) * w[prefix + ".weight"] + w[prefix + ".bias"]

    heads = config["num_heads"]
    for b in range(config["num_blocks"]):
        p = f"blocks.{b}."
        h = layer_norm(tokens, p + "norm1")
        qkv = h @ w[p + "qkv_proj.weight"].T + w[p + "qkv_proj.bias"]
        q, k, v = qkv[..., :d], qkv[..., d : 2 * d], qkv[..., 2 * d :]
        split = lambda t: t.reshape(batch, -1, heads, d // heads).permute(0, 2, 1, 3)  # noqa: E731
        q, k, v = split(q), split(k), split(v)
        attention = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // heads), dim=-1) @ v
        attention = attention.permute(0, 2, 1, 3).reshape(batch, -1, d)
        attention = attention @ w[p + "out_proj.weight"].T + w[p + "out_proj.bias"]
        tokens = tokens + w[p + "skip_init1.skip"] * attention
        h = layer_norm(tokens, p + "norm2") @ w[p + "mlp.linear1.weight"].T + w[p + "mlp.linear1.bias"]
        h = 0.5 * h * (1 + torch.erf(h / math.sqrt(2)))
        h = h @ w[p + "mlp.linear2.weight"].T + w[p + "mlp.linear2.bias"]
        tokens = tokens + w[p + "skip_init2.skip"] * h
    pooled = layer_norm(tokens, "norm").mean(dim=1)
    return pooled @ w["head.weight"][: config["n_tags"]].T + w["head.bias"][: config["n_tags"]]


@pytest.fixture(scope="module")
def real_width_checkpoint(tmp_path_factory):
    return save_joytag_checkpoint(tmp_path_factory.mktemp("joytag-real"), num_blocks=2, seed=3)


def test_logits_match_the_spec_at_real_width(real_width_checkpoint):
    config = json.loads((real_width_checkpoint / "config.json").read_text())
    model = load_joytag_model(JoyTagConfig.from_dict(config), real_width_checkpoint / "model.safetensors")
    torch.manual_seed(0)
    pixels = torch.randn(1, 3, 448, 448)
    with torch.inference_mode():
        ours = model(pixels)
    from safetensors.torch import load_file

    expected = reference_logits(load_file(str(real_width_checkpoint / "model.safetensors")), config, pixels)
    assert ours.shape == (1, 5813)
    assert (ours.double() - expected).abs().max().item() < 1e-4
    assert expected.std().item() > 0.1  # the comparison is not between two near-constant outputs


def test_batch_rows_are_independent(tmp_path):
    folder = save_joytag_checkpoint(tmp_path, tiny=True, seed=1)
    model = load_joytag_model(JoyTagConfig.from_file(folder / "config.json"), folder / "model.safetensors")
    torch.manual_seed(1)
    pixels = torch.randn(3, 3, 448, 448)
    with torch.inference_mode():
        together = model(pixels)
        alone = model(pixels[1:2])
    assert torch.allclose(together[1:2], alone, atol=1e-5)
    assert not torch.allclose(together[0], together[1])


def test_depth_is_read_from_config(tmp_path):
    folder = save_joytag_checkpoint(tmp_path, num_blocks=3, tiny=True)
    model = load_joytag_model(JoyTagConfig.from_file(folder / "config.json"), folder / "model.safetensors")
    assert len(model.blocks) == 3


def test_legacy_head_with_nine_extra_rows_is_trimmed(tmp_path):
    folder = save_joytag_checkpoint(tmp_path, tiny=True, extra_head_rows=9)
    model = load_joytag_model(JoyTagConfig.from_file(folder / "config.json"), folder / "model.safetensors")
    from safetensors.torch import load_file

    head = load_file(str(folder / "model.safetensors"))["head.weight"]
    assert head.shape[0] == 5813 + 9
    assert torch.equal(model.head.weight.detach(), head[:5813])


def _tiny_config():
    return JoyTagConfig.from_dict(joytag_config(tiny=True))


def test_missing_and_unexpected_keys_are_named(tmp_path):
    from safetensors.torch import save_file

    state = random_state_dict(joytag_config(tiny=True))
    del state["blocks.1.mlp.linear2.bias"]
    state["blocks.1.extra.weight"] = torch.zeros(2)
    path = tmp_path / "model.safetensors"
    save_file(state, str(path))
    with pytest.raises(JoyTagModelError) as info:
        load_joytag_model(_tiny_config(), path)
    message = str(info.value)
    assert str(path) in message
    assert "missing keys: blocks.1.mlp.linear2.bias" in message
    assert "unexpected keys: blocks.1.extra.weight" in message


def test_wrong_shape_is_named(tmp_path):
    from safetensors.torch import save_file

    state = random_state_dict(joytag_config(tiny=True))
    state["head.weight"] = torch.zeros(100, 64)
    path = tmp_path / "model.safetensors"
    save_file(state, str(path))
    with pytest.raises(JoyTagModelError, match=r"head\.weight \(100, 64\) != \(5813, 64\)"):
        load_joytag_model(_tiny_config(), path)


def test_truncated_checkpoint_gives_a_clear_error(tmp_path):
    folder = save_joytag_checkpoint(tmp_path, tiny=True)
    path = folder / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(JoyTagModelError, match="truncated or corrupt"):
        load_joytag_model(_tiny_config(), path)
    path.write_bytes(b"\x00" * 7)
    with pytest.raises(JoyTagModelError, match=str(path).replace("\\", r"\\")):
        load_joytag_model(_tiny_config(), path)


def test_released_config_parses():
    config = JoyTagConfig.from_file(real_data_file("config.json"))
    assert (config.num_blocks, config.d_model, config.n_tags, config.image_size) == (12, 768, 5813, 448)
    convs = [layer for layer in config.cnn_stem if layer.kind == "conv"]
    assert [c.channels for c in convs] == [64, 128, 256, 512, 768]
    assert (convs[-1].kernel, convs[-1].stride, convs[-1].padding) == (1, 1, 0)
    assert (convs[0].kernel, convs[0].stride, convs[0].padding) == (3, 2, 1)


@pytest.mark.parametrize(
    ("change", "field"),
    [({"class": "CLIP"}, "'class'"), ({"num_blocks": 0}, "'num_blocks'"), ({"d_model": "768"}, "'d_model'"),
     ({"cnn_stem": "conv:c=64;pool"}, "cnn_stem"), ({"num_heads": 7}, "divisible"),
     ({"cnn_stem": "conv:c=64"}, "last stem conv")],
)
def test_bad_config_names_the_field(change, field):
    with pytest.raises(JoyTagModelError, match=field):
        JoyTagConfig.from_dict(dict(joytag_config(), **change), "some/config.json")


def test_unreadable_config_names_the_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(JoyTagModelError, match="config.json"):
        JoyTagConfig.from_file(path)


def test_stem_parser_defaults():
    layers = parse_stem("conv:c=8;ln;relu;conv:c=16,s=1,k=1,p=0")
    assert [layer.kind for layer in layers] == ["conv", "ln", "relu", "conv"]
    assert (layers[0].kernel, layers[0].stride, layers[0].padding) == (3, 2, 1)


def test_sine_positions_layout():
    table = sine_positions(2, 3, 8)
    assert table.shape == (6, 8)
    # token 5 = row 1, col 2; omega = [1, 1e-4]; layout [sin x, cos x, sin y, cos y]
    expected = [math.sin(2), math.sin(2e-4), math.cos(2), math.cos(2e-4),
                math.sin(1), math.sin(1e-4), math.cos(1), math.cos(1e-4)]
    assert torch.allclose(table[5], torch.tensor(expected), atol=1e-6)
