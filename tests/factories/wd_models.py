"""Random-weight WD v3 taggers in the released repo layout, built with timm itself.

``config.json`` (architecture, ``model_args``, ``pretrained_cfg``) and ``model.safetensors`` are written
by timm's own ``save_for_hf``, the way the real repos were published; ``selected_tags.csv`` has the
released header (``tag_id,name,category,count``) with the four ratings first. The real models use the
architectures below at 448 px; the tiny ones keep the architecture and shrink widths and depths.
"""

from __future__ import annotations

import csv
from pathlib import Path

#: The timm architecture and the tiny-model arguments of each WD v3 family.
ARCHITECTURES = {
    "vit": ("vit_base_patch16_224", {"img_size": 64, "patch_size": 16, "embed_dim": 32, "depth": 2,
                                     "num_heads": 2, "class_token": False, "global_pool": "avg",
                                     "fc_norm": False, "act_layer": "gelu_tanh"}),
    "convnext": ("convnext_base", {"depths": (1, 1, 1, 1), "dims": (16, 24, 32, 48), "act_layer": "gelu_tanh"}),
    "swinv2": ("swinv2_base_window8_256", {"img_size": 64, "embed_dim": 16, "depths": (1, 1, 1, 1),
                                           "num_heads": (1, 1, 2, 2), "window_size": 4, "act_layer": "gelu_tanh"}),
    "eva02": ("eva02_large_patch14_448", {"img_size": 56, "embed_dim": 32, "depth": 2, "num_heads": 2}),
}
#: The released models' architecture arguments at 448 px (for benches: real shapes, random weights).
REAL_ARCHITECTURES = {
    "vit": ("vit_base_patch16_224", {"img_size": 448, "class_token": False, "global_pool": "avg",
                                     "fc_norm": False, "act_layer": "gelu_tanh"}),
    "vit-large": ("vit_large_patch16_224", {"img_size": 448, "class_token": False, "global_pool": "avg",
                                            "fc_norm": False, "act_layer": "gelu_tanh"}),
    "convnext": ("convnext_base", {"act_layer": "gelu_tanh"}),
    "swinv2": ("swinv2_base_window8_256", {"img_size": 448, "window_size": 14, "act_layer": "gelu_tanh"}),
    "eva02": ("eva02_large_patch14_448", {"img_size": 448}),
}
#: The released vocabulary's size: 4 ratings, 10,857 general and character tags.
REAL_LABELS = 10861
#: The real models' input: 448 px, bicubic, no crop, mean = std = 0.5.
REAL_INPUT = {"interpolation": "bicubic", "crop_pct": 1.0, "crop_mode": "center", "mean": (0.5, 0.5, 0.5),
              "std": (0.5, 0.5, 0.5)}
RATINGS = ("general", "sensitive", "questionable", "explicit")
GENERAL = ("1girl", "solo", "long_hair", "looking_at_viewer", "smile", "short_hair", "open_mouth", "blue_eyes",
           "simple_background", "white_background", "shirt", "skirt", "hat", "red_eyes", "^_^", "star_(symbol)",
           "twintails", "black_hair", "blonde_hair", "brown_hair", "holding", "jewelry", "dress", "bow")
CHARACTERS = ("hatsune_miku", "kamina_(ttgl)", "hakurei_reimu", "kirisame_marisa", "ganyu_(genshin_impact)",
              "saber_(fate)")


def label_rows() -> list[tuple[str, int]]:
    """``(name, category)`` of the tiny vocabulary: ratings (9), general tags (0), characters (4)."""
    return [(name, 9) for name in RATINGS] + [(name, 0) for name in GENERAL] + [(name, 4) for name in CHARACTERS]


def write_selected_tags(path: Path, rows: list[tuple[str, int]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["tag_id", "name", "category", "count"])
        for number, (name, category) in enumerate(rows):
            writer.writerow([9999990 + number if category == 9 else 1000 + number, name, category, 5000 - number])


def _spread_weights(model, seed: int) -> None:
    """Fan-in scaled weights and a spread head bias, so scores differ between tags and images."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.dim() >= 2 and name.endswith("weight"):
                fan_in = parameter[0].numel()
                parameter.copy_(torch.randn(parameter.shape, generator=generator) / fan_in**0.5)
            elif name.endswith("head.fc.bias") or name == "head.bias":
                parameter.copy_(torch.randn(parameter.shape, generator=generator) - 1.0)


def real_label_rows() -> list[tuple[str, int]]:
    """A vocabulary of the released size: the four ratings, then general and character tags."""
    others = REAL_LABELS - len(RATINGS)
    return [(name, 9) for name in RATINGS] + [(f"tag_{index:05d}", 4 if index % 4 == 3 else 0)
                                              for index in range(others)]


def make_wd_folder(folder: str | Path, family: str = "vit", seed: int = 0, real: bool = False) -> Path:
    """Write a random-weight WD v3 tagger of ``family`` (vit, convnext, swinv2, eva02) into ``folder``;
    ``real``: the released shapes (448 px, 10,861 labels) instead of a tiny model."""
    import timm
    import torch
    from timm.models import save_for_hf

    architecture, model_args = (REAL_ARCHITECTURES if real else ARCHITECTURES)[family]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = real_label_rows() if real else label_rows()
    size = model_args.get("img_size", 64)
    torch.manual_seed(seed)
    model = timm.create_model(architecture, pretrained=False, num_classes=len(rows), **model_args,
                              pretrained_cfg_overlay=dict(REAL_INPUT, input_size=(3, size, size)))
    _spread_weights(model, seed)
    save_for_hf(model, str(folder), model_args=dict(model_args), safe_serialization=True)
    write_selected_tags(folder / "selected_tags.csv", rows)
    return folder
