"""Images as model input: reading files, RGB on white, padding to a square; JoyTag's resize and CLIP normalisation."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
WHITE = (255, 255, 255)


class ImageLoadError(ValueError):
    """An image cannot be read or converted; ``str()`` names the file (when known) and the ``reason``."""

    def __init__(self, reason: str, path: str | os.PathLike | None = None):
        super().__init__(f"{path}: {reason}" if path is not None else reason)
        self.reason = reason
        self.path = path


def first_frame(image: Image.Image) -> Image.Image:
    """Rewind animated images (GIF, APNG, WebP) to their first frame."""
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)
    return image


def _composite_on_white(image: Image.Image) -> Image.Image:
    rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
    alpha = rgba[..., 3:4] / 255.0
    rgb = rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)
    return Image.fromarray(np.rint(rgb).astype(np.uint8), "RGB")


def _high_bit_depth_to_rgb(image: Image.Image) -> Image.Image:
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        scale = 255.0 if values.size and np.nanmax(values) <= 1.0 else 1.0
    elif image.mode.startswith("I;16") or (values.size and values.max() > 255):
        scale = 255.0 / 65535.0  # 16-bit data (Pillow opens 16-bit PNGs as "I" or "I;16")
    else:
        scale = 1.0
    grey = np.clip(np.nan_to_num(values * scale), 0, 255)
    return Image.fromarray(np.rint(grey).astype(np.uint8), "L").convert("RGB")


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB with transparency composited onto white; 1/L/CMYK/16-bit/float modes converted sanely."""
    mode = image.mode
    if mode == "P":
        if "transparency" in image.info:
            return _composite_on_white(image)
        return image.convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode in ("RGB", "L") and "transparency" in image.info):
        return _composite_on_white(image)
    if mode == "F" or mode.startswith("I"):
        return _high_bit_depth_to_rgb(image)
    if mode == "RGB":
        return image
    try:
        return image.convert("RGB")
    except ValueError as exc:
        raise ImageLoadError(f"cannot convert image mode {mode!r} to RGB") from exc


def pad_square(image: Image.Image) -> Image.Image:
    """Centre ``image`` on a white square of side max(w, h); offset (side - w)//2, (side - h)//2."""
    width, height = image.size
    side = max(width, height)
    if width == height:
        return image
    canvas = Image.new("RGB", (side, side), WHITE)
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas


def _shrink_huge(image: Image.Image, size: int) -> Image.Image:
    """Box-reduce images far larger than ``size`` before padding, so the square canvas stays small."""
    factor = max(image.size) // (4 * size)
    if factor < 2:
        return image
    try:
        return image.reduce(factor)
    except ValueError:  # a mode reduce() does not support: convert first, then reduce
        return to_rgb(image).reduce(factor)


def prepare_image(image: Image.Image, size: int = 448) -> Image.Image:
    """RGB, padded square, resized (bicubic) to ``size`` only when it differs: the picture the model sees."""
    square = pad_square(to_rgb(_shrink_huge(first_frame(image), size)))
    if square.size != (size, size):
        square = square.resize((size, size), Image.BICUBIC)
    return square


def normalise(image: Image.Image):
    """A (3, H, W) float32 tensor of the RGB ``image``, CLIP mean/std normalised."""
    import torch

    pixels = np.asarray(image, dtype=np.float32) / 255.0
    pixels = (pixels - np.asarray(CLIP_MEAN, dtype=np.float32)) / np.asarray(CLIP_STD, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))


def preprocess(image: Image.Image, size: int = 448):
    """JoyTag's input tensor (3, size, size) for one PIL image."""
    return normalise(prepare_image(image, size))


def preprocess_file(path: str | os.PathLike, transform: Callable[[Image.Image], object] = preprocess):
    """Open, decode and ``transform`` one image file; failures raise :class:`ImageLoadError` naming it."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            return transform(image)
    except ImageLoadError as exc:
        raise ImageLoadError(exc.reason, path) from exc
    except FileNotFoundError as exc:
        raise ImageLoadError("file not found", path) from exc
    except UnidentifiedImageError as exc:
        raise ImageLoadError("not an image Pillow can read", path) from exc
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(f"too many pixels ({exc})", path) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageLoadError(f"truncated or corrupt image ({type(exc).__name__}: {exc})", path) from exc
