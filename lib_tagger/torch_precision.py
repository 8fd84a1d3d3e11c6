"""Faster CPU precisions for any torch module (image taggers: JoyTag, timm models).

- ``int8``: every ``nn.Linear`` becomes :class:`Int8Module`, the decoder's 8-bit product
  (:class:`~lib_tagger.generate.linear.Int8Linear`: weights in 8 bits with a scale per output,
  each input row quantized on its own, so the 8-bit products do not tie an image's scores to its
  batch-mates).
  Convolutions, norms and attention stay in float32. CPUs with torch's x86 quantized engine.
- ``bf16``: the module runs under CPU autocast in bfloat16 (matrix products and convolutions in
  bf16, sums in float32); only on CPUs with native bf16 (AVX512-BF16 / AMX), where it is fast.
- ``fp32``: unchanged.

Where the asked precision cannot run, float32 runs and :attr:`Prepared.notice` says why.
Import this module only where torch is in use (it imports torch).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from lib_tagger.devices import VISION_PRECISIONS
from lib_tagger.generate.linear import Int8Linear, Scratch, int8_problem
from lib_tagger.memory import return_freed_memory


@dataclass
class Prepared:
    """A module made ready for a precision: run it inside ``autocast()``."""

    module: Any
    precision: str  # what runs
    autocast: Callable[[], contextlib.AbstractContextManager]
    notice: str = ""  # why ``precision`` is not what was asked for ("" when it is)


def bf16_problem(device) -> str | None:
    """None when CPU autocast in bf16 runs natively (fast) on ``device``, else why not."""
    if getattr(device, "type", str(device)) != "cpu":
        return f"bf16 here is for CPUs; {device} has its own half precision"
    check = getattr(getattr(torch.ops, "mkldnn", None), "_is_mkldnn_bf16_supported", None)
    try:
        native = bool(check()) if check is not None else False
    except RuntimeError:
        native = False
    return None if native else "this CPU has no native bf16 (AVX512-BF16 or AMX)"


class Int8Module(torch.nn.Module):
    """An ``nn.Linear`` with 8-bit weights (see :func:`quantize_linears`)."""

    def __init__(self, linear: torch.nn.Linear, scratch: Scratch | None = None) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        bias = None if linear.bias is None else linear.bias.detach()
        self.product = Int8Linear(linear.weight.detach(), bias, scratch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.product(x).to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def quantize_linears(module, scratch: Scratch | None = None) -> int:
    """Replace every ``nn.Linear`` inside ``module`` by an 8-bit one, in place; returns how many.

    They share one input buffer (``scratch``, a new one by default): see :class:`Scratch`."""
    scratch = scratch or Scratch()
    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, torch.nn.Linear):
            setattr(module, name, Int8Module(child, scratch))
            count += 1
        else:
            count += quantize_linears(child, scratch)
    return count


def prepare(module, precision: str, device) -> Prepared:
    """``module`` (on ``device``, float32, eval mode) made ready for ``precision`` (fp32, int8, bf16)."""
    if precision not in VISION_PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose {', '.join(VISION_PRECISIONS)}")
    problem = None
    if precision == "int8":
        problem = int8_problem(device)
        if problem is None:
            quantize_linears(module)
            return_freed_memory()  # the float32 weights just replaced
            return Prepared(module, "int8", contextlib.nullcontext)
    elif precision == "bf16":
        problem = bf16_problem(device)
        if problem is None:
            return Prepared(module, "bf16", lambda: torch.autocast("cpu", dtype=torch.bfloat16))
    notice = f"{precision} was asked for, but {problem}: running in fp32" if problem else ""
    return Prepared(module, "fp32", contextlib.nullcontext, notice)


def prepare_on_cpu(module, precision: str, device) -> Prepared | None:
    """:func:`prepare` on a CPU; None on a GPU, which runs in its own half type whatever ``precision`` says."""
    return prepare(module, precision, device) if getattr(device, "type", str(device)) == "cpu" else None

