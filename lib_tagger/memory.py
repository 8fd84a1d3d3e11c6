"""Handing freed memory back to the system, so that RSS drops when weights are freed or re-laid out."""

from __future__ import annotations

import contextlib
import ctypes
import sys


def return_freed_memory() -> None:
    """Ask glibc to hand freed heap pages back to the system (no-op elsewhere).

    Freed weights of a few MB each stay in glibc's heap, counted in the process's RSS, until
    this is called: after an unload, and after weights are re-laid out for batches.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):  # musl or another libc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)
