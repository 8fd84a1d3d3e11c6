"""The one place that decides the torch device and dtype."""

from __future__ import annotations

DEVICE_CHOICES = ("auto", "cuda", "cpu")
#: CPU precisions of image taggers (see lib_tagger.torch_precision).
VISION_PRECISIONS = ("fp32", "int8", "bf16")


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
    """Hand a dropped model's memory back: collect it, return freed heap pages to the system, and empty
    CUDA's cache when it was on a GPU."""
    import gc

    from lib_tagger.memory import return_freed_memory

    del model
    gc.collect()
    return_freed_memory()
    if getattr(device, "type", "") == "cuda":
        import torch

        torch.cuda.empty_cache()


def cpu_threads(sysfs: str = "/sys/devices/system/cpu") -> tuple[int, int]:
    """(physical cores, logical CPUs) this process may run on.

    Decoding one token is bound by memory and shares a core badly with a hyperthread sibling, so
    it runs best on one thread per physical core; prompt evaluation may use every logical CPU.
    llama-cpp-python's own default (half the logical CPUs) assumes two threads per core and uses
    half the cores of a machine without hyperthreading.
    """
    import os
    from pathlib import Path

    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        count = os.cpu_count() or 1
        return max(count // 2, 1), count
    cores = set()
    for cpu in cpus:
        topology = Path(sysfs, f"cpu{cpu}", "topology")
        try:
            cores.add((topology.joinpath("physical_package_id").read_text().strip(),
                       topology.joinpath("core_id").read_text().strip()))
        except OSError:  # no topology in sysfs: count each CPU as a core
            cores.add(("", str(cpu)))
    return max(len(cores), 1), max(len(cpus), 1)
