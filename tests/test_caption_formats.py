"""Captioning into one JSONL or CSV file with every score: resume, torn lines, other models; any engine."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")

from lib_tagger.caption.engine import LocalEngine  # noqa: E402
from lib_tagger.caption.run import caption_folder  # noqa: E402
from lib_tagger.interrogate.joytag.loader import JoyTagger  # noqa: E402
from lib_tagger.interrogate.loading import load_interrogator, predict_images  # noqa: E402
from lib_tagger.interrogate.postprocess import TagOptions, describe  # noqa: E402
from tests.factories.joytag_model import save_joytag_checkpoint  # noqa: E402

OPTIONS = TagOptions(threshold=0.5, top_k=4)


@pytest.fixture(scope="module")
def tagger(tmp_path_factory):
    tagger = JoyTagger.load(save_joytag_checkpoint(tmp_path_factory.mktemp("jt"), num_blocks=1, tiny=True),
                            device="cpu")
    yield tagger
    tagger.close()


def pictures(folder, count=3):
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(4)
    for index in range(count):
        Image.fromarray(rng.integers(0, 256, (30 + index, 40, 3), dtype=np.uint8)).save(folder / f"{index}.png")
    (folder / "bad.png").write_text("not a picture")
    return folder


def quiet(*_):
    return None


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_jsonl_holds_every_score_and_the_caption(tmp_path, tagger):
    folder = pictures(tmp_path / "imgs")
    report = caption_folder(folder, OPTIONS, tagger, output_format="jsonl", progress=quiet)
    output = folder / "captions.jsonl"
    assert report.output == output and len(report.written) == 3 and [p.name for p, _ in report.failed] == ["bad.png"]
    records = read_jsonl(output)
    assert [record["image"] for record in records] == ["0.png", "1.png", "2.png"]
    with Image.open(folder / "0.png") as image:
        prediction = predict_images(tagger, [image])[0]
    first = records[0]
    assert first["caption"] == describe(prediction, OPTIONS).caption
    assert len(first["scores"]) == 5813 and first["ratings"] == {} and first["rating"] is None
    assert first["scores"]["1girl"] == pytest.approx(prediction.scores["1girl"], abs=1e-5)
    assert not list(folder.glob("*.txt"))


def test_jsonl_resumes_and_drops_a_torn_last_line(tmp_path, tagger):
    folder = pictures(tmp_path / "imgs")
    output = tmp_path / "out" / "scores.jsonl"
    caption_folder(folder, OPTIONS, tagger, output_format="jsonl", output=output, progress=quiet)
    lines = output.read_text(encoding="utf-8").splitlines(keepends=True)
    output.write_text(lines[0] + lines[1][: len(lines[1]) // 2], encoding="utf-8")  # a crash mid-line
    again = caption_folder(folder, OPTIONS, tagger, output_format="jsonl", output=output, progress=quiet)
    assert [p.name for p in again.skipped] == ["0.png"] and [p.name for p in again.written] == ["1.png", "2.png"]
    assert [record["image"] for record in read_jsonl(output)] == ["0.png", "1.png", "2.png"]
    before = output.read_bytes()
    fresh = caption_folder(folder, OPTIONS, tagger, output_format="jsonl", output=output, existing="overwrite",
                           progress=quiet)
    assert len(fresh.written) == 3 and len(read_jsonl(output)) == 3
    kept = output.with_name("scores.jsonl.bak")  # overwrite loses nothing: the old file is set aside
    assert fresh.backups == [kept] and kept.read_bytes() == before and "previous captions kept" in fresh.summary()
    with pytest.raises(ValueError, match="append"):
        caption_folder(folder, OPTIONS, tagger, output_format="jsonl", output=output, existing="append")


def test_csv_has_a_column_per_tag_and_refuses_another_models_file(tmp_path, tagger):
    folder = pictures(tmp_path / "imgs", count=2)
    caption_folder(folder, OPTIONS, tagger, output_format="csv", progress=quiet)
    with (folder / "captions.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:3] == ["image", "caption", "rating"] and len(rows[0]) == 3 + 5813
    assert [row[0] for row in rows[1:]] == ["0.png", "1.png"] and all(len(row) == len(rows[0]) for row in rows)
    (folder / "9.png").write_bytes((folder / "0.png").read_bytes())
    again = caption_folder(folder, OPTIONS, tagger, output_format="csv", progress=quiet)
    assert [p.name for p in again.written] == ["9.png"] and len(again.skipped) == 2
    header = rows[0][:-1] + ["other_tag"]
    (folder / "captions.csv").write_text(",".join(header) + "\n", encoding="utf-8")
    (folder / "9.png").unlink()
    with pytest.raises(ValueError, match="holds the columns of another model"):
        caption_folder(folder, OPTIONS, tagger, output_format="csv", progress=quiet)


def test_an_engine_given_by_the_caller_runs_the_same_pipeline(tmp_path, tagger):
    folder = pictures(tmp_path / "imgs", count=3)
    chunks = []

    class Recording(LocalEngine):
        def run(self, paths):
            for chunk in super().run(paths):
                chunks.append([path.name for path, _ in chunk])
                yield chunk

    report = caption_folder(folder, OPTIONS, engine=Recording(tagger, batch_size=2), progress=quiet)
    assert len(report.written) == 3
    assert chunks == [["0.png", "1.png"], ["2.png", "bad.png"]] or chunks == [["0.png", "1.png"], ["bad.png"],
                                                                              ["2.png"]]
    with Image.open(folder / "2.png") as image:
        assert (folder / "2.txt").read_text(encoding="utf-8") == describe(
            predict_images(tagger, [image])[0], OPTIONS).caption + "\n"


def test_wd_tagger_captions_with_ratings(tmp_path):
    pytest.importorskip("timm", reason="timm imports only in the forge profile")
    from tests.factories.wd_models import RATINGS, make_wd_folder

    model = make_wd_folder(tmp_path / "wd", "convnext", seed=5)
    folder = pictures(tmp_path / "imgs", count=2)
    tagger = load_interrogator(str(model), device="cpu")
    try:
        options = TagOptions(threshold=0.3, rating_tag=True)
        report = caption_folder(folder, options, tagger, output_format="jsonl", progress=quiet)
        caption_folder(folder, options, tagger, progress=quiet)
    finally:
        tagger.close()
    assert len(report.written) == 2
    record = read_jsonl(folder / "captions.jsonl")[0]
    assert tuple(record["ratings"]) == RATINGS and record["rating"] in RATINGS
    assert not set(RATINGS) & set(record["scores"])
    assert (folder / "0.txt").read_text(encoding="utf-8").split(", ")[0] == record["rating"]
