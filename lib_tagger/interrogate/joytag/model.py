"""JoyTag's ViT (CNN stem, sine positions, pre-LN blocks with learned skip scales), loaded strictly.

Module paths equal the released ``model.safetensors`` key names, so the checkpoint loads as is.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from lib_tagger.interrogate.checkpoint import check_state, read_checkpoint
from lib_tagger.interrogate.joytag.config import JoyTagConfig, JoyTagModelError

#: Rows the head of older checkpoints carries beyond the tags (3 rating + 6 score outputs).
LEGACY_EXTRA_HEAD_ROWS = 9


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of an NCHW tensor."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class CNNStem(nn.Module):
    """The convolutional patch embedding; ``conv`` is a Sequential indexed like the checkpoint."""

    def __init__(self, config: JoyTagConfig):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for layer in config.cnn_stem:
            if layer.kind == "conv":
                layers.append(nn.Conv2d(channels, layer.channels, layer.kernel, layer.stride, layer.padding))
                channels = layer.channels
            elif layer.kind == "ln":
                layers.append(ChannelLayerNorm(channels))
            elif layer.kind == "relu":
                layers.append(nn.ReLU())
            else:
                layers.append(nn.GELU())
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class SkipScale(nn.Module):
    """A learned per-channel scale on a residual branch."""

    def __init__(self, channels: int):
        super().__init__()
        self.skip = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.skip


class MLP(nn.Module):
    def __init__(self, d_model: int, hidden: int):
        super().__init__()
        self.linear1 = nn.Linear(d_model, hidden)
        self.linear2 = nn.Linear(hidden, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(F.gelu(self.linear1(x)))


class Block(nn.Module):
    """Pre-LN transformer block: x += s1 * attn(norm1(x)); x += s2 * mlp(norm2(x))."""

    def __init__(self, config: JoyTagConfig):
        super().__init__()
        self.num_heads = config.num_heads
        self.norm1 = nn.LayerNorm(config.d_model)
        self.qkv_proj = nn.Linear(config.d_model, 3 * config.d_model)
        self.out_proj = nn.Linear(config.d_model, config.d_model)
        self.skip_init1 = SkipScale(config.d_model)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.mlp = MLP(config.d_model, config.mlp_dim)
        self.skip_init2 = SkipScale(config.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        heads = self.num_heads
        q, k, v = (
            part.view(batch, length, heads, width // heads).transpose(1, 2)
            for part in self.qkv_proj(self.norm1(x)).chunk(3, dim=-1)
        )
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, length, width)
        x = x + self.skip_init1(self.out_proj(attended))
        return x + self.skip_init2(self.mlp(self.norm2(x)))


def sine_positions(height: int, width: int, dim: int, device=None) -> torch.Tensor:
    """Fixed 2-D sine position table (height*width, dim), row-major: [sin x, cos x, sin y, cos y]."""
    quarter = dim // 4
    omega = 1.0 / (10000 ** (torch.arange(quarter, device=device, dtype=torch.float32) / (quarter - 1)))
    y, x = torch.meshgrid(
        torch.arange(height, device=device, dtype=torch.float32),
        torch.arange(width, device=device, dtype=torch.float32),
        indexing="ij",
    )
    x = x.flatten()[:, None] * omega[None, :]
    y = y.flatten()[:, None] * omega[None, :]
    return torch.cat([x.sin(), x.cos(), y.sin(), y.cos()], dim=1)


class JoyTagViT(nn.Module):
    """JoyTag's vision transformer. ``forward(pixels [B,3,S,S]) -> logits [B, n_tags]``."""

    def __init__(self, config: JoyTagConfig):
        super().__init__()
        self.config = config
        self.patch_embeddings = CNNStem(config)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_blocks))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.n_tags)
        self._positions: dict[tuple, torch.Tensor] = {}

    def _position_table(self, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
        key = (height, width, like.device, like.dtype)
        table = self._positions.get(key)
        if table is None:
            table = sine_positions(height, width, self.config.d_model, like.device).to(like.dtype)
            self._positions = {key: table}
        return table

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        features = self.patch_embeddings(pixels)
        height, width = features.shape[-2:]
        x = features.flatten(2).transpose(1, 2)
        x = x + self._position_table(height, width, x)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x).mean(dim=1))


def load_joytag_model(config: JoyTagConfig, weights: str | os.PathLike, device="cpu") -> JoyTagViT:
    """Build the model on ``device`` from ``config`` and load ``weights`` strictly (fp32, eval mode).

    A head with 9 extra rows (older checkpoints) is trimmed; any other mismatch raises
    :class:`JoyTagModelError` naming the file and the offending keys.
    """
    state = read_checkpoint(weights, JoyTagModelError)
    with torch.device("meta"):
        model = JoyTagViT(config)
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    for name in ("head.weight", "head.bias"):
        tensor = state.get(name)
        if tensor is not None and tensor.shape[0] == config.n_tags + LEGACY_EXTRA_HEAD_ROWS:
            state[name] = tensor[: config.n_tags]
    check_state(expected, state, weights, "config.json", JoyTagModelError)
    state = {key: tensor.to(device=device, dtype=torch.float32) for key, tensor in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()

