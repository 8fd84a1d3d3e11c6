"""Double of Forge's backend/memory_management.py: its device choice and ``free_memory``, minus a GPU.

Forge (main of 2025-06-26): ``get_torch_device`` (:86) is the CPU with ``--always-cpu`` (``cpu_state``
CPU), else the current CUDA device; ``text_encoder_device`` (:792), where Forge's own interrogators load,
is the GPU only in the normal and high VRAM states and when fp16 is usable there; ``free_memory``
(:562) unloads Forge's models until ``memory_required`` bytes are free on ``device``;
``minimum_inference_memory`` (:547) is 1 GiB; ``soft_empty_cache`` (:1194) empties torch's cache.
Calls are recorded in :data:`calls`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class VRAMState(Enum):
    DISABLED = 0
    NO_VRAM = 1
    LOW_VRAM = 2
    NORMAL_VRAM = 3
    HIGH_VRAM = 4
    SHARED = 5


class CPUState(Enum):
    GPU = 0
    CPU = 1
    MPS = 2


@dataclass(frozen=True)
class Device:
    """Stands in for ``torch.device``: ``type`` and ``str()`` as torch gives them."""

    type: str
    index: int | None = None

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


vram_state = VRAMState.NORMAL_VRAM
cpu_state = CPUState.GPU
fp16_usable = True  # what should_use_fp16 would find on the GPU
current_inference_memory = 1024 * 1024 * 1024
calls: list[tuple] = []


def reset() -> None:
    """Forge as started without flags on a GPU with fp16."""
    global vram_state, cpu_state, fp16_usable
    vram_state, cpu_state, fp16_usable = VRAMState.NORMAL_VRAM, CPUState.GPU, True
    calls.clear()


def get_torch_device() -> Device:
    return Device("cpu") if cpu_state == CPUState.CPU else Device("cuda", 0)


def is_device_cpu(device) -> bool:
    return getattr(device, "type", None) == "cpu"


def should_use_fp16(device=None, model_params=0, prioritize_performance=True, manual_cast=False) -> bool:
    return cpu_state == CPUState.GPU and fp16_usable and not is_device_cpu(device or get_torch_device())


def text_encoder_device() -> Device:
    if vram_state in (VRAMState.HIGH_VRAM, VRAMState.NORMAL_VRAM) and should_use_fp16(prioritize_performance=False):
        return get_torch_device()
    return Device("cpu")


def minimum_inference_memory() -> int:
    return current_inference_memory


def free_memory(memory_required, device, keep_loaded=(), free_all=False) -> None:
    calls.append(("free_memory", memory_required, str(device)))


def soft_empty_cache(force=False) -> None:
    calls.append(("soft_empty_cache",))
