"""Read a ``.safetensors`` file into tensors that own their memory, without mapping the file.

``safetensors.safe_open`` maps the file and hands out views of that map: a model kept loaded would then
end the process with SIGBUS when its file is replaced or cut short (users copy new models over old
ones), and while loading, the mapped pages and the copies a model makes of them are resident together.
Here each tensor is read with ``readinto`` into a buffer of its own instead, which costs one copy from the
page cache and nothing else. Each buffer is an anonymous memory map: memory of the process (no file behind
it) that goes back to the system the moment its tensor is freed, so loading and unloading a model leaves
no fragmented heap behind. The format (a little-endian u64 header length, a JSON header of
``{name: {dtype, shape, data_offsets}}``, then the data) is read as the safetensors library defines it;
tests check the result equal to ``safetensors.torch.load_file``.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import struct
from dataclasses import dataclass
from typing import Any

#: A header this large is not a model's (the released ones hold a few hundred KB).
MAX_HEADER_BYTES = 100 * 2**20


class SafetensorsError(ValueError):
    """The file is not a readable safetensors file; the message says why (not which file: callers add it)."""


@dataclass(frozen=True)
class TensorEntry:
    """One tensor's place in the file: safetensors dtype name, shape, byte range from the data start."""

    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


def _torch_dtypes() -> dict[str, Any]:
    import torch

    names = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
             "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool",
             "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}
    return {key: getattr(torch, name) for key, name in names.items() if hasattr(torch, name)}


def read_header(path: str | os.PathLike) -> tuple[dict[str, TensorEntry], int]:
    """(tensors by name, byte offset where their data starts); :class:`SafetensorsError` when malformed."""
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        raw = handle.read(8)
        if len(raw) < 8:
            raise SafetensorsError(f"only {size} bytes, no header")
        (length,) = struct.unpack("<Q", raw)
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise SafetensorsError(f"header length {length} does not fit a {size}-byte file")
        text = handle.read(length)
    try:
        header = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise SafetensorsError(f"header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise SafetensorsError("header is not a JSON object")
    start, data_size = 8 + length, size - 8 - length
    dtypes = _torch_dtypes()
    entries: dict[str, TensorEntry] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], tuple(info["shape"]), info["data_offsets"]
            ok = (dtype in dtypes and all(isinstance(n, int) and n >= 0 for n in shape)
                  and isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end <= data_size)
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise SafetensorsError(f"tensor {name!r}: bad entry {str(info)[:200]} (data holds {data_size} bytes)")
        itemsize = dtypes[dtype].itemsize
        if end - begin != math.prod(shape) * itemsize:
            raise SafetensorsError(f"tensor {name!r}: {end - begin} bytes for shape {shape} of {dtype}")
        entries[name] = TensorEntry(dtype, shape, begin, end)
    return entries, start


def read_tensors(path: str | os.PathLike, entries: dict[str, TensorEntry] | None = None,
                 start: int | None = None) -> dict[str, Any]:
    """The tensors of ``path`` (those of ``entries``, read from ``read_header`` when not given) on the CPU,
    each in memory of its own, in file order; :class:`SafetensorsError` when the file ends early."""
    import torch

    if entries is None or start is None:
        entries, start = read_header(path)
    dtypes = _torch_dtypes()
    tensors: dict[str, Any] = {}
    with open(path, "rb", buffering=0) as handle:
        for name, entry in sorted(entries.items(), key=lambda item: item[1].begin):
            size = entry.end - entry.begin
            if not size:
                tensors[name] = torch.empty(entry.shape, dtype=dtypes[entry.dtype])
                continue
            memory = mmap.mmap(-1, size)  # anonymous: the process's own pages
            handle.seek(start + entry.begin)
            with memoryview(memory) as view:
                got = 0
                while got < size:  # readinto may return less than asked
                    n = handle.readinto(view[got:])
                    if not n:
                        raise SafetensorsError(f"the file ends inside tensor {name!r} (truncated?)")
                    got += n
            tensors[name] = torch.frombuffer(memory, dtype=torch.uint8).view(dtypes[entry.dtype]).reshape(entry.shape)
    return tensors
