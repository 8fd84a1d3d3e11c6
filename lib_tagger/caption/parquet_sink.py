"""A Parquet folder of every score (``--engine ray --format parquet``): the JSONL records as columns.

``captions.parquet/`` holds ``part-NNNNN.parquet`` files of up to :data:`ROWS_PER_PART` images each,
each written to a temporary name and renamed, so a part is whole or absent: a crash loses at most the
rows not yet in a part, and "skip" resumes from the images the parts hold. Columns: ``image``,
``caption``, ``rating`` and maps ``tags`` (the kept ones), ``ratings`` and ``scores`` (every tag),
rounded as in JSONL. Needs pyarrow (which ray[data] brings along).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from lib_tagger.caption.sink import SCORE_DIGITS, KeyedByPath, SinkError, set_aside
from lib_tagger.interrogate.base import Prediction
from lib_tagger.interrogate.postprocess import TagResult

#: Images in one part file.
ROWS_PER_PART = 1000
_PART = re.compile(r"^part-(\d{5,})\.parquet$")


def _schema():
    import pyarrow as pa

    scores = pa.map_(pa.string(), pa.float64())
    return pa.schema([("image", pa.string()), ("caption", pa.string()), ("rating", pa.string()),
                      ("tags", scores), ("ratings", scores), ("scores", scores)])


def _pairs(values) -> list[tuple[str, float]]:
    return [(name, round(float(score), SCORE_DIGITS)) for name, score in values]


class ParquetSink(KeyedByPath):
    """Rows buffered, then written a part at a time; ``existing`` "skip" (resume) or "overwrite"."""

    def __init__(self, folder: Path, output: Path, existing: str, rows_per_part: int = ROWS_PER_PART) -> None:
        if existing == "append":
            raise SinkError("existing: 'append' merges .txt captions; a score file takes skip (resume) or "
                            "overwrite (start a new file)")
        if output.exists() and not output.is_dir():
            raise SinkError(f"{output} is a file; a Parquet output is a folder of part files")
        self.folder = folder
        self.output = output
        self.rows_per_part = rows_per_part
        self.rows: list[dict] = []
        self.backup: Path | None = None  # where "overwrite" moved the previous parts
        output.mkdir(parents=True, exist_ok=True)
        parts = sorted(path for path in output.iterdir() if _PART.match(path.name))
        if existing == "overwrite" and parts:  # nothing is lost: each old part is kept as part-N.parquet.bak
            kept = [set_aside(path) for path in parts]
            self.backup = kept[0]
            parts = []
        self.done = self._read_done(parts)
        self.next_part = 1 + max((int(_PART.match(path.name).group(1)) for path in parts), default=0)

    def _read_done(self, parts: list[Path]) -> set[str]:
        import pyarrow.parquet as pq

        done: set[str] = set()
        for path in parts:
            try:
                done.update(pq.read_table(path, columns=["image"]).column("image").to_pylist())
            except Exception as exc:
                raise SinkError(f"{path} is not a caption part file ({exc}); choose another output folder "
                                "or existing=overwrite") from None
        return done

    def write(self, image: Path, result: TagResult, prediction: Prediction) -> None:
        self.rows.append({"image": self.key(image), "caption": result.caption, "rating": result.rating,
                          "tags": _pairs(result.tags), "ratings": _pairs(prediction.ratings.items()),
                          "scores": _pairs(prediction.scores.items())})
        if len(self.rows) >= self.rows_per_part:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows as the next part (temporary name, then renamed)."""
        if not self.rows:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        target = self.output / f"part-{self.next_part:05d}.parquet"
        temporary = self.output / f".{target.name}.tmp"
        try:
            pq.write_table(pa.Table.from_pylist(self.rows, schema=_schema()), temporary)
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        self.done.update(row["image"] for row in self.rows)
        self.rows = []
        self.next_part += 1

    def close(self) -> None:
        self.flush()
