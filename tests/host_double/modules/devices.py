"""Double of modules/devices.py: records ``torch_gc`` calls instead of touching a GPU."""

calls: list[str] = []


def get_device_for(task: str) -> str:
    return "cpu"


def torch_gc() -> None:
    calls.append("torch_gc")
