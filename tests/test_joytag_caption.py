"""Batch captioning: one .txt per image, bad files fail alone, skip/append/overwrite, resume."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")

from lib_tagger.caption.plan import find_images  # noqa: E402
from lib_tagger.caption.run import caption_folder  # noqa: E402
from lib_tagger.interrogate.joytag.loader import JoyTagger  # noqa: E402
from lib_tagger.interrogate.loading import predict_images  # noqa: E402
from lib_tagger.interrogate.postprocess import TagOptions, describe  # noqa: E402
from tests.factories.joytag_model import save_joytag_checkpoint  # noqa: E402

OPTIONS = TagOptions(threshold=0.5, top_k=8)


def caption_of(tagger, image, options=OPTIONS) -> str:
    return describe(predict_images(tagger, [image])[0], options).caption


@pytest.fixture(scope="module")
def tagger(tmp_path_factory):
    folder = save_joytag_checkpoint(tmp_path_factory.mktemp("jt"), tiny=True)
    tagger = JoyTagger.load(str(folder), device="cpu")
    yield tagger
    tagger.close()


def _noise(seed: int, size=(40, 30), mode="RGB") -> Image.Image:
    array = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(array, "RGB").convert(mode)


def make_folder(root):
    root.mkdir(exist_ok=True)
    _noise(1).save(root / "a.png")
    _noise(2).save(root / "b.jpg")
    _noise(3, mode="RGBA").save(root / "c.webp")
    _noise(4, mode="P").save(root / "d.gif")
    _noise(5, size=(1, 1)).save(root / "e.bmp")
    (root / "broken.png").write_text("this is text")
    buffer = io.BytesIO()
    _noise(6, size=(64, 64)).save(buffer, "PNG")
    (root / "cut.png").write_bytes(buffer.getvalue()[:200])
    (root / "notes.txt").write_text("not an image")
    sub = root / "sub"
    sub.mkdir(exist_ok=True)
    _noise(7).save(sub / "deep.tiff")
    return root


def test_batch_continues_past_bad_files_and_reports_them(tmp_path, tagger):
    folder = make_folder(tmp_path / "imgs")
    calls = []
    report = caption_folder(folder, OPTIONS, tagger, batch_size=2, progress=lambda *a: calls.append(a))
    assert sorted(p.name for p in report.written) == ["a.png", "b.jpg", "c.webp", "d.gif", "e.bmp"]
    reasons = dict((p.name, r) for p, r in report.failed)
    assert set(reasons) == {"broken.png", "cut.png"}
    assert "not an image" in reasons["broken.png"] and "truncated or corrupt" in reasons["cut.png"]
    for name in ("a", "b", "c", "d", "e"):
        caption = (folder / f"{name}.txt").read_text(encoding="utf-8")
        assert caption.endswith("\n") and 1 <= len(caption.strip().split(", ")) <= 8
    expected = caption_of(tagger, Image.open(folder / "a.png"))
    assert (folder / "a.txt").read_text(encoding="utf-8") == expected + "\n"
    assert [c[0] for c in calls] == list(range(1, 8)) and all(c[1] == 7 for c in calls)
    assert not (folder / "sub" / "deep.txt").exists()
    assert "2 failed" in report.summary() and "broken.png" in report.summary()


def test_skip_resumes_and_overwrite_and_append(tmp_path, tagger):
    folder = make_folder(tmp_path / "imgs")
    (folder / "a.txt").write_text("my tag")
    first = caption_folder(folder, OPTIONS, tagger, recursive=True, progress=lambda *a: None)
    assert [p.name for p in first.skipped] == ["a.png"]
    assert (folder / "a.txt").read_text() == "my tag"
    assert (folder / "sub" / "deep.txt").is_file()
    again = caption_folder(folder, OPTIONS, tagger, recursive=True, progress=lambda *a: None)
    assert again.written == [] and len(again.skipped) == 6 and len(again.failed) == 2

    appended = caption_folder(folder, OPTIONS, tagger, existing="append", progress=lambda *a: None)
    assert len(appended.written) == 5
    text = (folder / "a.txt").read_text().strip()
    fresh = caption_of(tagger, Image.open(folder / "a.png"))
    assert text == "my tag, " + fresh
    caption_folder(folder, OPTIONS, tagger, existing="append", progress=lambda *a: None)
    assert (folder / "a.txt").read_text().strip() == text  # appending twice adds nothing new

    caption_folder(folder, OPTIONS, tagger, existing="overwrite", progress=lambda *a: None)
    assert (folder / "a.txt").read_text().strip() == fresh


def test_a_changed_caption_is_kept_first_so_nothing_is_ever_lost(tmp_path, tagger):
    folder = make_folder(tmp_path / "imgs")
    (folder / "a.txt").write_bytes(b"hand written, \xff not utf-8\n")
    report = caption_folder(folder, OPTIONS, tagger, existing="overwrite", progress=lambda *a: None)
    assert (folder / "a.txt.bak").read_bytes() == b"hand written, \xff not utf-8\n"
    assert report.backups == [folder / "a.txt.bak"] and "1 previous captions kept as .bak" in report.summary()
    first = (folder / "a.txt").read_text()
    # the same run again changes nothing, so nothing more is kept
    again = caption_folder(folder, OPTIONS, tagger, existing="overwrite", progress=lambda *a: None)
    assert again.backups == [] and (folder / "a.txt").read_text() == first
    # other options: the machine caption goes to .bak2, the hand-written one stays in .bak
    other = caption_folder(folder, TagOptions(threshold=0.0, top_k=3), tagger, existing="overwrite",
                           progress=lambda *a: None)
    assert (folder / "a.txt.bak2").read_text() == first
    assert (folder / "a.txt.bak").read_bytes() == b"hand written, \xff not utf-8\n"
    assert len(other.backups) == 5
    # append keeps the caption it extends too
    (folder / "b.txt").write_text("b by hand")
    caption_folder(folder, OPTIONS, tagger, existing="append", progress=lambda *a: None)
    assert (folder / "b.txt").read_text().startswith("b by hand, ")
    assert [p.name for p in folder.glob("b.txt.bak*") if p.read_text() == "b by hand"] == ["b.txt.bak2"]
    assert not list(folder.glob(".*.tmp"))


_FULL_DISK = r"""
import json, resource, signal, sys
from lib_tagger.caption.run import caption_folder
from lib_tagger.interrogate.joytag.loader import JoyTagger
from lib_tagger.interrogate.postprocess import TagOptions

tagger = JoyTagger.load(sys.argv[1], device="cpu")
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (24, 24))  # no file may grow past 24 bytes: the disk is "full"
report = caption_folder(sys.argv[2], TagOptions(threshold=0.0, top_k=20), tagger, existing=sys.argv[3],
                        progress=lambda *a: None)
print(json.dumps({"written": len(report.written), "failed": [reason for _, reason in report.failed]}))
"""


@pytest.mark.parametrize("existing", ["skip", "overwrite"])
def test_a_full_disk_fails_those_images_keeps_their_captions_and_leaves_no_temporary_files(tmp_path, existing):
    import json
    import subprocess
    import sys
    from pathlib import Path

    checkpoint = save_joytag_checkpoint(tmp_path / "jt", tiny=True)
    folder = tmp_path / "imgs"
    folder.mkdir()
    _noise(1).save(folder / "a.png")
    _noise(2).save(folder / "b.png")
    (folder / "b.txt").write_text("mine")
    result = subprocess.run([sys.executable, "-c", _FULL_DISK, str(checkpoint), str(folder), existing],
                            capture_output=True, text=True, timeout=300,
                            cwd=str(Path(__file__).resolve().parent.parent))
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["written"] == 0 and len(outcome["failed"]) == (2 if existing == "overwrite" else 1)
    assert all("File too large" in reason for reason in outcome["failed"])
    assert (folder / "b.txt").read_text() == "mine"
    assert sorted(p.name for p in folder.iterdir()) == ["a.png", "b.png", "b.txt"]


def test_images_sharing_a_caption_name_fail_alone(tmp_path, tagger):
    _noise(1).save(tmp_path / "x.png")
    _noise(2).save(tmp_path / "x.jpg")
    report = caption_folder(tmp_path, OPTIONS, tagger, progress=lambda *a: None)
    assert [p.name for p in report.written] == ["x.jpg"]
    assert report.failed[0][0].name == "x.png" and "x.txt" in report.failed[0][1]


def test_should_stop_ends_between_batches(tmp_path, tagger):
    for i in range(5):
        _noise(i).save(tmp_path / f"{i}.png")
    report = caption_folder(tmp_path, OPTIONS, tagger, batch_size=2, progress=lambda *a: None,
                            should_stop=lambda: True)
    assert report.stopped and len(report.written) == 2


def test_console_progress_without_callback(tmp_path, tagger, capsys):
    _noise(1).save(tmp_path / "one.png")
    report = caption_folder(tmp_path, OPTIONS, tagger)
    assert len(report.written) == 1
    assert "Captions" in capsys.readouterr().err


def test_bad_arguments(tmp_path, tagger):
    with pytest.raises(NotADirectoryError, match="nope"):
        caption_folder(tmp_path / "nope", OPTIONS, tagger)
    with pytest.raises(ValueError, match="existing"):
        caption_folder(tmp_path, OPTIONS, tagger, existing="merge")


def test_find_images_filters_extensions(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "UPPER.PNG").write_bytes((tmp_path / "a.png").read_bytes())
    found = [p.name for p in find_images(tmp_path)]
    assert "notes.txt" not in found and "UPPER.PNG" in found and "deep.tiff" not in found
    assert "deep.tiff" in [p.name for p in find_images(tmp_path, recursive=True)]
