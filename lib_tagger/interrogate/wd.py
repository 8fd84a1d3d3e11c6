"""SmilingWolf's WD v3 taggers through timm: ``config.json`` + ``model.safetensors`` + ``selected_tags.csv``.

``config.json`` names the timm architecture, its ``model_args`` and the ``pretrained_cfg`` that decides
the input; the model is built with ``timm.create_model`` and loaded strictly. Pre-processing follows the
timm route of these models (neggles' wdv3-timm): RGB on white, padded to a white square, resized with
the configured filter, scaled to [0, 1], normalised with the configured mean/std, channels as BGR.
"""

from __future__ import annotations

import csv
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lib_tagger.interrogate.base import RATING, InterrogatorError, Labels, Prediction, split_predictions
from lib_tagger.interrogate.images import WHITE, first_frame, pad_square, to_rgb
from lib_tagger.models.files import read_json

#: ``selected_tags.csv`` category codes (Danbooru's, plus 9 for the rating head).
CSV_CATEGORIES = {0: "general", 1: "artist", 3: "copyright", 4: "character", 5: "meta", 9: RATING}
#: timm's defaults for a ``pretrained_cfg`` field that a config leaves out.
DEFAULT_MEAN = (0.485, 0.456, 0.406)
DEFAULT_STD = (0.229, 0.224, 0.225)
DEFAULT_CROP_PCT = 0.875
RESAMPLING = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC,
              "lanczos": Image.LANCZOS, "box": Image.BOX, "hamming": Image.HAMMING}


class WDModelError(InterrogatorError):
    """A WD model file is unreadable or does not match; names the file."""


@dataclass(frozen=True)
class WDInput:
    """How an image becomes the model's input (from ``pretrained_cfg``)."""

    size: int
    interpolation: str = "bicubic"
    crop_pct: float = 1.0
    mean: tuple[float, float, float] = DEFAULT_MEAN
    std: tuple[float, float, float] = DEFAULT_STD

    @property
    def scale_size(self) -> int:
        """The side the padded square is resized to before the centre crop (timm: floor(size / crop_pct))."""
        return math.floor(self.size / self.crop_pct)


@dataclass(frozen=True)
class WDConfig:
    """The fields of a WD v3 ``config.json`` that build the model and its input."""

    architecture: str
    num_classes: int
    model_args: dict
    input: WDInput

    @classmethod
    def from_dict(cls, data: dict, source: str = "config.json") -> WDConfig:
        """Validate a parsed ``config.json``; errors name ``source`` and the field."""
        architecture = data.get("architecture")
        if not isinstance(architecture, str) or not architecture:
            raise WDModelError(f"{source}: field 'architecture' (the timm model name) is missing")
        pretrained = data.get("pretrained_cfg") or {}
        if not isinstance(pretrained, dict):
            raise WDModelError(f"{source}: field 'pretrained_cfg' must be an object")
        num_classes = data.get("num_classes", pretrained.get("num_classes"))
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes <= 0:
            raise WDModelError(f"{source}: field 'num_classes' must be a positive integer, got {num_classes!r}")
        model_args = data.get("model_args") or {}
        if not isinstance(model_args, dict):
            raise WDModelError(f"{source}: field 'model_args' must be an object")
        return cls(architecture, num_classes, dict(model_args), _input_from(pretrained, source))

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> WDConfig:
        path = Path(path)
        return cls.from_dict(read_json(path, WDModelError), str(path))


def _input_from(pretrained: dict, source: str) -> WDInput:
    size = pretrained.get("input_size") or [3, 224, 224]
    if not (isinstance(size, list | tuple) and len(size) == 3 and size[0] == 3 and size[1] == size[2]
            and isinstance(size[1], int) and size[1] > 0):
        raise WDModelError(f"{source}: pretrained_cfg.input_size must be [3, S, S], got {size!r}")
    interpolation = pretrained.get("interpolation") or "bicubic"
    if interpolation not in RESAMPLING:
        raise WDModelError(f"{source}: pretrained_cfg.interpolation {interpolation!r} is not one of "
                           f"{', '.join(RESAMPLING)}")
    crop_mode = pretrained.get("crop_mode") or "center"
    if crop_mode not in ("center", "squash"):  # the same on a padded square; "border" pads with the mean
        raise WDModelError(f"{source}: pretrained_cfg.crop_mode {crop_mode!r} is not supported (center, squash)")
    crop_pct = pretrained.get("crop_pct") or DEFAULT_CROP_PCT
    mean = tuple(pretrained.get("mean") or DEFAULT_MEAN)
    std = tuple(pretrained.get("std") or DEFAULT_STD)
    if len(mean) != 3 or len(std) != 3 or not all(value > 0 for value in std) or not 0 < crop_pct <= 1:
        raise WDModelError(f"{source}: pretrained_cfg mean/std need 3 values (std > 0), crop_pct in (0, 1]")
    return WDInput(int(size[1]), interpolation, float(crop_pct), mean, std)  # type: ignore[arg-type]


def read_selected_tags(path: str | os.PathLike, expected: int) -> Labels:
    """``selected_tags.csv`` (``tag_id,name,category,count``) as labels, checked to hold ``expected`` rows."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise WDModelError(f"{path}: cannot read the tag list ({exc})") from exc
    names, categories = [], []
    for number, row in enumerate(rows, start=2):
        name, code = (row.get("name") or "").strip(), (row.get("category") or "").strip()
        if not name or not code.lstrip("-").isdigit():
            raise WDModelError(f"{path}: line {number} lacks a name or a numeric category")
        names.append(name)
        categories.append(CSV_CATEGORIES.get(int(code)))
    if len(names) != expected:
        raise WDModelError(f"{path}: holds {len(names)} tags but config.json says num_classes={expected}")
    return Labels(tuple(names), tuple(categories))


#: Filters Pillow applies in two passes (rows, then columns), whose first pass can skip the padding.
_TWO_PASS = ("bilinear", "bicubic", "lanczos", "box", "hamming")


def resize_padded_wide(image: Image.Image, side: int, resample: int) -> Image.Image:
    """``pad_square(image).resize((side, side))`` of an image wider than tall, without the padded canvas.

    Pillow resizes in two passes with 8-bit rounding in between: along the rows, then along the columns.
    The padding rows are white before the first pass, so after it they are one white row resized; only
    the image's own rows need the first pass. The second pass then runs on the same rows as for the
    canvas, so the result is the same, pixel for pixel (the tests compare both).
    """
    width, height = image.size
    rows = np.asarray(image.resize((side, height), resample))
    white = np.asarray(Image.new("RGB", (width, 1), WHITE).resize((side, 1), resample))
    top = (width - height) // 2
    first_pass = np.concatenate([np.repeat(white, top, axis=0), rows,
                                 np.repeat(white, width - height - top, axis=0)])
    return Image.fromarray(first_pass, "RGB").resize((side, side), resample)


def prepare_image(image: Image.Image, spec: WDInput) -> Image.Image:
    """The RGB picture the model sees: on white, padded square, resized, centre-cropped to ``spec.size``."""
    rgb = to_rgb(first_frame(image))
    scale = spec.scale_size
    if rgb.width > rgb.height and rgb.width != scale and spec.interpolation in _TWO_PASS:
        square = resize_padded_wide(rgb, scale, RESAMPLING[spec.interpolation])
    else:
        square = pad_square(rgb)
        if square.size != (scale, scale):
            square = square.resize((scale, scale), RESAMPLING[spec.interpolation])
    if scale != spec.size:
        left = int(round((scale - spec.size) / 2.0))
        square = square.crop((left, left, left + spec.size, left + spec.size))
    return square


def to_tensor(image: Image.Image, spec: WDInput):
    """A (3, S, S) float32 tensor: [0, 1], normalised, channels in BGR order."""
    import torch

    pixels = np.asarray(image, dtype=np.float32) / 255.0
    pixels = (pixels - np.asarray(spec.mean, dtype=np.float32)) / np.asarray(spec.std, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)[::-1]))


def build_timm_model(config: WDConfig):
    """The timm model ``config`` describes, with random weights, in eval mode."""
    try:
        import timm
    except ImportError as exc:
        raise WDModelError(
            f"WD v3 models load through timm, which cannot be imported here ({exc}); install timm "
            "(it needs torchvision built for your torch)"
        ) from None
    try:
        arguments = {**config.model_args, "num_classes": config.num_classes}  # model_args may repeat it
        model = timm.create_model(config.architecture, pretrained=False, **arguments)
    except Exception as exc:  # an unknown architecture or argument in config.json
        raise WDModelError(f"config.json: timm cannot build {config.architecture!r} with model_args "
                           f"{config.model_args}: {type(exc).__name__}: {exc}") from exc
    return model.eval()


def load_wd_model(config: WDConfig, weights: str | os.PathLike):
    """Build the timm model and load ``weights`` strictly (every key, every shape), fp32."""
    from lib_tagger.interrogate.checkpoint import check_state, read_checkpoint

    state = read_checkpoint(weights, WDModelError)
    model = build_timm_model(config)
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    check_state(expected, state, weights, f"timm's {config.architecture}", WDModelError)
    model.load_state_dict({key: tensor.float() for key, tensor in state.items()}, strict=True)
    return model


class WDTagger:
    """A loaded WD v3 tagger (the :class:`~lib_tagger.interrogate.base.Interrogator` protocol)."""

    def __init__(self, model: Any, config: WDConfig, labels: Labels, device: Any, dtype: Any, name: str = "",
                 prepared: Any = None):
        self.model = model
        self.config = config
        self.labels = labels
        self.device = device
        self.dtype = dtype
        self.name = name or config.architecture
        #: On a CPU, the precision the model runs in, and why it is not the one asked for ("" when it is).
        self.precision = prepared.precision if prepared is not None else "fp32"
        self.notice = prepared.notice if prepared is not None else ""
        self._autocast = prepared.autocast if prepared is not None else None
        self._lock = threading.Lock()

    @classmethod
    def load(cls, folder: str | os.PathLike, device: str = "auto", dtype: str = "auto", name: str = "",
             precision: str = "fp32") -> WDTagger:
        """Load from a folder with ``config.json``, ``model.safetensors`` and ``selected_tags.csv``;
        ``precision`` as for JoyTag (CPU: fp32, int8, bf16)."""
        from lib_tagger.devices import pick_device, pick_dtype

        folder = Path(folder)
        config = WDConfig.from_file(folder / "config.json")
        labels = read_selected_tags(folder / "selected_tags.csv", config.num_classes)
        torch_device = pick_device(device)
        model = load_wd_model(config, folder / "model.safetensors").to(torch_device)
        from lib_tagger.torch_precision import prepare_on_cpu

        prepared = prepare_on_cpu(model, precision, torch_device)
        return cls(model, config, labels, torch_device, pick_dtype(torch_device, dtype), name, prepared)

    @property
    def loaded(self) -> bool:
        return self.model is not None

    @property
    def image_size(self) -> int:
        return self.config.input.size

    def preprocess(self, image: Image.Image):
        return to_tensor(prepare_image(image, self.config.input), self.config.input)

    def predict(self, batch) -> list[Prediction]:
        import torch

        from lib_tagger.devices import autocast_context

        with self._lock:
            if self.model is None:
                raise RuntimeError(f"{self.name} was closed; load it again")
            autocast = self._autocast() if self._autocast else autocast_context(self.device, self.dtype)
            with torch.inference_mode(), autocast:
                logits = self.model(batch.to(self.device, non_blocking=True))
            rows = torch.sigmoid(logits.float()).cpu().tolist()
        return split_predictions(rows, self.labels)

    def close(self) -> None:
        from lib_tagger.devices import release

        with self._lock:
            model, self.model = self.model, None
        if model is not None:
            release(model, self.device)
