"""Our safetensors reader gives what the safetensors library gives, in memory of its own, and names what is
wrong with a broken file."""

from __future__ import annotations

import json
import struct

import pytest

torch = pytest.importorskip("torch")
from safetensors.torch import load_file, save_file  # noqa: E402

from lib_tagger.models.safetensors_file import SafetensorsError, read_header, read_tensors  # noqa: E402


def test_every_dtype_and_shape_reads_as_the_library_reads_it(tmp_path):
    generator = torch.Generator().manual_seed(0)
    tensors = {
        "f32": torch.randn(3, 5, generator=generator),
        "f16": torch.randn(7, generator=generator).half(),
        "bf16": torch.randn(2, 3, 4, generator=generator).bfloat16(),
        "f64": torch.randn(2, generator=generator).double(),
        "i64": torch.arange(6).reshape(2, 3),
        "i32": torch.arange(4, dtype=torch.int32),
        "i8": torch.tensor([-3, 4], dtype=torch.int8),
        "u8": torch.tensor([0, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 4),
    }
    path = tmp_path / "all.safetensors"
    save_file(tensors, str(path), metadata={"format": "pt"})
    ours, theirs = read_tensors(path), load_file(str(path))
    assert list(ours) == sorted(ours, key=lambda k: read_header(path)[0][k].begin)  # read in file order
    assert set(ours) == set(theirs)
    for name, tensor in theirs.items():
        assert ours[name].dtype == tensor.dtype and ours[name].shape == tensor.shape
        assert torch.equal(ours[name], tensor), name
    # each tensor owns its memory: changing one changes no other, and the file is closed
    ours["f32"].zero_()
    assert torch.equal(read_tensors(path)["f32"], theirs["f32"])


def _raw_file(path, header: dict, data: bytes = b"") -> None:
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


@pytest.mark.parametrize(("header", "data", "message"), [
    (None, b"", "no header"),
    ({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, "bad entry"),
    ({"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, r"8 bytes for shape \(3,\)"),
    ({"x": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, "bad entry"),
    ({"x": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8, "bad entry"),
    ({"x": "nonsense"}, b"", "bad entry"),
    ([1, 2], b"", "not a JSON object"),
])
def test_broken_files_raise_a_clear_error(tmp_path, header, data, message):
    path = tmp_path / "bad.safetensors"
    if header is None:
        path.write_bytes(b"\x01\x02")
    else:
        _raw_file(path, header, data)
    with pytest.raises(SafetensorsError, match=message):
        read_tensors(path)


def test_a_header_length_past_the_end_or_not_json(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", 10**12) + b"{}")
    with pytest.raises(SafetensorsError, match="does not fit"):
        read_header(path)
    path.write_bytes(struct.pack("<Q", 4) + b"{{{{")
    with pytest.raises(SafetensorsError, match="not JSON"):
        read_header(path)


def test_a_file_cut_short_after_its_header_was_read(tmp_path):
    path = tmp_path / "cut.safetensors"
    save_file({"x": torch.ones(1000)}, str(path))
    entries, start = read_header(path)
    with open(path, "r+b") as handle:
        handle.truncate(start + 100)
    with pytest.raises(SafetensorsError, match="ends inside tensor 'x'"):
        read_tensors(path, entries, start)
