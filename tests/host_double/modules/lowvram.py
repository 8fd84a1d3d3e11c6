"""Double of modules/lowvram.py: records ``send_everything_to_cpu`` calls."""

from modules import devices


def send_everything_to_cpu() -> None:
    devices.calls.append("send_everything_to_cpu")
