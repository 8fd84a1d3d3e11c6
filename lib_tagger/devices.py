"""The one place that decides the torch device and dtype."""

from __future__ import annotations

DEVICE_CHOICES = ("auto", "cuda", "cpu")


def cuda_available() -> bool:
    """True when torch is importable and sees a CUDA device."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def pick_device(preference: str = "auto"):
    """A ``torch.device`` for ``preference`` ("auto", "cuda", "cpu" or an explicit "cuda:1")."""
    import torch

    preference = (preference or "auto").strip().lower()
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if preference.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("CUDA was asked for but torch sees no CUDA device; choose 'cpu' or 'auto'")
    return torch.device(preference)


def pick_dtype(device, preference: str = "auto"):
    """fp32 on CPU; bf16 on GPUs that support it, else fp16. ``preference`` may force one."""
    import torch

    names = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16,
             "float16": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
    if preference and preference != "auto":
        if preference not in names:
            raise ValueError(f"unknown dtype {preference!r}; choose auto, fp32, fp16 or bf16")
        return names[preference]
    if getattr(device, "type", str(device)) != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast_context(device, dtype):
    """Mixed precision on CUDA when ``dtype`` is half or bf16; a no-op context otherwise."""
    import contextlib

    import torch

    if getattr(device, "type", str(device)) == "cuda" and dtype in (torch.float16, torch.bfloat16):
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def release(model, device) -> None:
    """Hand a dropped model's memory back: collect it, and empty CUDA's cache when it was on a GPU."""
    import gc

    del model
    gc.collect()
    if getattr(device, "type", "") == "cuda":
        import torch

        torch.cuda.empty_cache()
