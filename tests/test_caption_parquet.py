"""The Parquet folder of the Ray engine: the JSONL records as columns, whole parts, resume, overwrite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow comes with requirements/ray.txt (forge profile)")

from lib_tagger.caption.parquet_sink import ParquetSink  # noqa: E402
from lib_tagger.caption.sink import JsonlSink, SinkError  # noqa: E402
from lib_tagger.interrogate.base import Prediction  # noqa: E402
from lib_tagger.interrogate.postprocess import TagOptions, describe  # noqa: E402

OPTIONS = TagOptions(threshold=0.3)


def prediction(seed: int) -> Prediction:
    scores = {f"tag_{index}": ((seed * 7 + index * 13) % 100) / 99 for index in range(12)}
    ratings = {"general": 0.123456789 * seed % 1, "explicit": 0.5}
    return Prediction(scores, ratings, {name: "general" for name in scores})


def rows(output: Path) -> list[dict]:
    """Every row of the folder's part files, maps as dicts."""
    return [{**row, **{column: dict(row[column]) for column in ("tags", "ratings", "scores")}}
            for part in sorted(output.glob("part-*.parquet")) for row in pq.read_table(part).to_pylist()]


def test_rows_are_the_jsonl_records_in_whole_parts(tmp_path):
    images = [tmp_path / f"{index}.png" for index in range(5)]
    parquet = ParquetSink(tmp_path, tmp_path / "captions.parquet", "skip", rows_per_part=2)
    jsonl = JsonlSink(tmp_path, tmp_path / "captions.jsonl", "skip")
    for seed, image in enumerate(images, start=1):
        for sink in (parquet, jsonl):
            sink.write(image, describe(prediction(seed), OPTIONS), prediction(seed))
    assert sorted(path.name for path in (tmp_path / "captions.parquet").iterdir()) == [
        "part-00001.parquet", "part-00002.parquet"]  # the fifth row waits for close
    parquet.close()
    jsonl.close()
    records = [json.loads(line) for line in (tmp_path / "captions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows(tmp_path / "captions.parquet") == records and len(records) == 5


def test_skip_resumes_from_the_parts_and_overwrite_starts_again(tmp_path):
    output = tmp_path / "out.parquet"
    first = ParquetSink(tmp_path, output, "skip", rows_per_part=2)
    for seed in range(3):
        first.write(tmp_path / f"{seed}.png", describe(prediction(seed), OPTIONS), prediction(seed))
    # a crash now: image 2 is only in memory; a torn temporary file is left behind
    (output / ".part-00009.parquet.tmp").write_bytes(b"PAR1 torn")
    (output / "notes.md").write_text("mine")
    again = ParquetSink(tmp_path, output, "skip", rows_per_part=2)
    assert [again.has(tmp_path / f"{seed}.png") for seed in range(3)] == [True, True, False]
    again.write(tmp_path / "2.png", describe(prediction(2), OPTIONS), prediction(2))
    again.close()
    assert sorted(row["image"] for row in rows(output)) == ["0.png", "1.png", "2.png"]
    assert (output / "part-00002.parquet").is_file()

    fresh = ParquetSink(tmp_path, output, "overwrite")
    assert not fresh.has(tmp_path / "0.png")
    assert sorted(path.name for path in output.iterdir()) == [".part-00009.parquet.tmp", "notes.md",
                                                              "part-00001.parquet.bak", "part-00002.parquet.bak"]
    assert fresh.backup == output / "part-00001.parquet.bak"


def test_a_foreign_part_or_a_file_is_refused(tmp_path):
    (tmp_path / "file.parquet").write_text("not a folder")
    with pytest.raises(SinkError, match="is a file"):
        ParquetSink(tmp_path, tmp_path / "file.parquet", "skip")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "part-00001.parquet").write_text("not parquet")
    with pytest.raises(SinkError, match="not a caption part file"):
        ParquetSink(tmp_path, tmp_path / "dir", "skip")
    with pytest.raises(SinkError, match="append"):
        ParquetSink(tmp_path, tmp_path / "dir", "append")
