"""Turn the host double into Forge where Forge differs in what the extension relies on.

Forge's modules/devices.py imports ``backend.memory_management`` (kept as ``devices.memory_management``),
its ``get_device_for(task)`` returns the memory manager's device whatever the task, its ``torch_gc`` only
soft-empties the cache, and its lowvram.py's ``send_everything_to_cpu`` does nothing.
"""

from __future__ import annotations

from typing import Any


def as_forge(monkeypatch: Any) -> Any:
    """Make the double Forge for one test (undone by ``monkeypatch``); returns the memory manager double."""
    from backend import memory_management
    from modules import devices, lowvram

    memory_management.reset()
    monkeypatch.setattr(devices, "memory_management", memory_management, raising=False)
    monkeypatch.setattr(devices, "get_device_for", lambda task: memory_management.get_torch_device())
    monkeypatch.setattr(devices, "torch_gc", memory_management.soft_empty_cache)
    monkeypatch.setattr(lowvram, "send_everything_to_cpu", lambda: None)
    return memory_management
