"""Double of modules/devices.py: the device choice of ``get_device_for`` (:70) and a ``torch_gc`` that
records its calls instead of touching a GPU."""

from modules import shared

calls: list[str] = []
#: What ``get_optimal_device_name`` would find: set "cpu" to play a host without a GPU.
optimal_device = "cuda"


def get_device_for(task: str) -> str:
    if task in shared.cmd_opts.use_cpu or "all" in shared.cmd_opts.use_cpu:
        return "cpu"
    return optimal_device


def torch_gc() -> None:
    calls.append("torch_gc")
