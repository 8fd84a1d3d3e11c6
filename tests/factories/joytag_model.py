"""Random-weight JoyTag checkpoints in the released layout: config.json, model.safetensors, top_tags.txt.

The key names and shapes are written out here from the published layout (not taken from our
model class), so loading a factory checkpoint strictly checks the class against the release.
"""

from __future__ import annotations

import json
from pathlib import Path

REAL_CONFIG = {
    "class": "ViT", "num_blocks": 12, "patch_size": 16, "d_model": 768, "mlp_dim": 3072, "num_heads": 12,
    "stochdepth_rate": 0.05, "use_sine": True,
    "cnn_stem": "conv:c=64;ln;relu;conv:c=128;ln;relu;conv:c=256;ln;relu;conv:c=512;ln;relu;"
                "conv:c=768,s=1,k=1,p=0",
    "image_size": 448, "n_tags": 5813, "loss_type": "focal2",
}
#: Narrow widths for fast tests; same graph, same stem shape, same 5,813-tag head.
TINY_WIDTHS = {"d_model": 64, "mlp_dim": 128, "num_heads": 4,
               "cnn_stem": "conv:c=8;ln;relu;conv:c=16;ln;relu;conv:c=16;ln;relu;conv:c=32;ln;relu;"
                           "conv:c=64,s=1,k=1,p=0"}

_DATA_DIRS = (Path(__file__).resolve().parents[1] / "data" / "joytag", Path("/work/shared/data/joytag"))


def real_data_file(name: str) -> Path:
    """A released JoyTag data file (``top_tags.txt``, ``config.json``) from the test data folder."""
    for folder in _DATA_DIRS:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{name} not found in any of {', '.join(map(str, _DATA_DIRS))}")


def joytag_config(num_blocks: int = 2, tiny: bool = False) -> dict:
    """The released config with ``num_blocks`` blocks (and narrow widths when ``tiny``)."""
    config = dict(REAL_CONFIG, num_blocks=num_blocks)
    if tiny:
        config.update(TINY_WIDTHS)
    return config


def released_shapes(config: dict, extra_head_rows: int = 0) -> dict[str, tuple[int, ...]]:
    """Every tensor of the released checkpoint for ``config``, by key name."""
    shapes: dict[str, tuple[int, ...]] = {}
    channels = 3
    for index, part in enumerate(config["cnn_stem"].split(";")):
        kind, _, opts = part.partition(":")
        if kind == "conv":
            options = dict(item.split("=") for item in opts.split(","))
            out, kernel = int(options["c"]), int(options.get("k", 3))
            shapes[f"patch_embeddings.conv.{index}.weight"] = (out, channels, kernel, kernel)
            shapes[f"patch_embeddings.conv.{index}.bias"] = (out,)
            channels = out
        elif kind == "ln":
            shapes[f"patch_embeddings.conv.{index}.norm.weight"] = (channels,)
            shapes[f"patch_embeddings.conv.{index}.norm.bias"] = (channels,)
    d, mlp = config["d_model"], config["mlp_dim"]
    for block in range(config["num_blocks"]):
        prefix = f"blocks.{block}."
        shapes.update({
            prefix + "norm1.weight": (d,), prefix + "norm1.bias": (d,),
            prefix + "qkv_proj.weight": (3 * d, d), prefix + "qkv_proj.bias": (3 * d,),
            prefix + "out_proj.weight": (d, d), prefix + "out_proj.bias": (d,),
            prefix + "skip_init1.skip": (d,),
            prefix + "norm2.weight": (d,), prefix + "norm2.bias": (d,),
            prefix + "mlp.linear1.weight": (mlp, d), prefix + "mlp.linear1.bias": (mlp,),
            prefix + "mlp.linear2.weight": (d, mlp), prefix + "mlp.linear2.bias": (d,),
            prefix + "skip_init2.skip": (d,),
        })
    rows = config["n_tags"] + extra_head_rows
    shapes.update({"norm.weight": (d,), "norm.bias": (d,), "head.weight": (rows, d), "head.bias": (rows,)})
    return shapes


def random_state_dict(config: dict, seed: int = 0, extra_head_rows: int = 0) -> dict:
    """Random fp32 weights with sensible scales (fan-in init, LN near 1, head bias spread around 0)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in released_shapes(config, extra_head_rows).items():
        if name.endswith(("norm.weight", "norm1.weight", "norm2.weight")):
            tensor = 1.0 + 0.1 * torch.randn(shape, generator=generator)
        elif name.endswith(".skip"):
            tensor = 0.2 + 0.8 * torch.rand(shape, generator=generator)
        elif name == "head.bias":
            tensor = torch.randn(shape, generator=generator) - 1.0
        elif name.endswith(".bias"):
            tensor = 0.02 * torch.randn(shape, generator=generator)
        else:
            fan_in = 1
            for size in shape[1:]:
                fan_in *= size
            tensor = torch.randn(shape, generator=generator) / fan_in**0.5
        state[name] = tensor.float().contiguous()
    return state


def save_joytag_checkpoint(
    folder: str | Path,
    num_blocks: int = 2,
    tiny: bool = False,
    seed: int = 0,
    extra_head_rows: int = 0,
) -> Path:
    """Write a random-weight JoyTag checkpoint in the released layout into ``folder``; returns it."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = joytag_config(num_blocks, tiny)
    (folder / "config.json").write_text(json.dumps(config, indent="\t"), encoding="utf-8")
    save_file(random_state_dict(config, seed, extra_head_rows), str(folder / "model.safetensors"))
    (folder / "top_tags.txt").write_bytes(real_data_file("top_tags.txt").read_bytes())
    return folder
