"""Where captions go: a ``.txt`` beside each image, or one JSONL / CSV file with every score; the report.

Every sink writes an image's result as soon as it is known, so a crash or Ctrl-C loses at most the
batch in flight, and "skip" resumes where the run stopped: a ``.txt`` is replaced atomically, a JSONL
line or CSV row is flushed whole (a torn last line from a crash is dropped on resume).
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lib_tagger.interrogate.base import Prediction
from lib_tagger.interrogate.postprocess import TagResult

FORMATS = ("txt", "jsonl", "csv")
#: Digits kept for each score in JSONL / CSV files.
SCORE_DIGITS = 5


class SinkError(ValueError):
    """The output file cannot take this run's results (another model's columns, not a caption file)."""


@dataclass
class CaptionReport:
    """What a captioning run did; ``failed`` holds (image, reason) pairs."""

    folder: Path
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0
    stopped: bool = False
    output: Path | None = None

    def summary(self) -> str:
        """One line for a log or a status box, plus one line per failed image."""
        head = (f"{len(self.written)} captioned, {len(self.skipped)} skipped (caption exists), "
                f"{len(self.failed)} failed in {self.seconds:.1f}s")
        head += " (stopped early)" if self.stopped else ""
        head += f"; scores in {self.output}" if self.output is not None else ""
        return "\n".join([head, *(f"  {path}: {reason}" for path, reason in self.failed)])


class CaptionSink(Protocol):
    """Receives each image's result; ``key``/``has`` let the plan skip what is done."""

    def key(self, image: Path) -> object: ...

    def has(self, image: Path) -> bool: ...

    def write(self, image: Path, result: TagResult, prediction: Prediction) -> None: ...

    def close(self) -> None: ...


def caption_path(image: Path) -> Path:
    """The caption file of ``image``: same name, ``.txt``."""
    return image.with_suffix(".txt")


def _merge(existing: str, new: str) -> str:
    old = [part.strip() for part in existing.split(",") if part.strip()]
    seen = set(old)
    return ", ".join(old + [part for part in new.split(", ") if part and part not in seen])


class TextSink:
    """One ``.txt`` beside each image; "append" adds new tags to an existing caption."""

    def __init__(self, existing: str = "skip") -> None:
        self.existing = existing

    def key(self, image: Path) -> Path:
        return caption_path(image)

    def has(self, image: Path) -> bool:
        return caption_path(image).is_file()

    def write(self, image: Path, result: TagResult, prediction: Prediction) -> None:
        target = caption_path(image)
        text = result.caption
        if self.existing == "append" and target.is_file():
            text = _merge(target.read_text(encoding="utf-8", errors="replace"), text)
        temporary = target.with_name(f".{target.name}.tmp")
        temporary.write_text(text + "\n", encoding="utf-8")
        os.replace(temporary, target)  # a crash never leaves a half-written caption that "skip" would trust

    def close(self) -> None:
        return None


def _rounded(values: Any) -> dict[str, float]:
    return {name: round(float(score), SCORE_DIGITS) for name, score in values.items()}


class _TableSink:
    """Shared by the JSONL and CSV sinks: one file, one record per image keyed by its path in the folder."""

    def __init__(self, folder: Path, output: Path, existing: str) -> None:
        if existing == "append":
            raise SinkError("existing: 'append' merges .txt captions; a score file takes skip (resume) or "
                            "overwrite (start a new file)")
        self.folder = folder
        self.output = output
        self.done: set[str] = set()
        if existing == "skip" and output.is_file():
            self.done = self._read_done()
        else:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text("", encoding="utf-8")
        self.handle = output.open("a", encoding="utf-8", newline="")

    def key(self, image: Path) -> str:
        try:
            return image.relative_to(self.folder).as_posix()
        except ValueError:
            return str(image)

    def has(self, image: Path) -> bool:
        return self.key(image) in self.done

    def close(self) -> None:
        self.handle.close()

    def _read_done(self) -> set[str]:
        raise NotImplementedError

    def _drop_torn_tail(self) -> None:
        """Cut a last line that a crash left without its newline."""
        data = self.output.read_bytes()
        if data and not data.endswith(b"\n"):
            with self.output.open("r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)


class JsonlSink(_TableSink):
    """One JSON object per line: image, caption, kept tags, rating, ratings and every tag's score."""

    def _read_done(self) -> set[str]:
        self._drop_torn_tail()
        done = set()
        with self.output.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    done.add(json.loads(line)["image"])
                except (ValueError, KeyError, TypeError):
                    raise SinkError(f"{self.output}: line {number} is not a caption record; choose another "
                                    "output file or existing=overwrite") from None
        return done

    def write(self, image: Path, result: TagResult, prediction: Prediction) -> None:
        record = {"image": self.key(image), "caption": result.caption,
                  "tags": {tag: round(score, SCORE_DIGITS) for tag, score in result.tags},
                  "rating": result.rating, "ratings": _rounded(prediction.ratings),
                  "scores": _rounded(prediction.scores)}
        self.handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.handle.flush()


class CsvSink(_TableSink):
    """A header ``image, caption, rating, <each rating>, <each tag>`` and one row of scores per image."""

    def __init__(self, folder: Path, output: Path, existing: str) -> None:
        self.header: list[str] | None = None
        super().__init__(folder, output, existing)

    def _read_done(self) -> set[str]:
        self._drop_torn_tail()
        with self.output.open(encoding="utf-8", newline="") as handle:
            rows = csv.reader(handle)
            self.header = next(rows, None)
            return {row[0] for row in rows if row}

    def write(self, image: Path, result: TagResult, prediction: Prediction) -> None:
        header = ["image", "caption", "rating", *prediction.ratings, *prediction.scores]
        writer = csv.writer(self.handle)
        if self.header is None:
            self.header = header
            writer.writerow(header)
        elif self.header != header:
            raise SinkError(f"{self.output} holds the columns of another model; choose another output file "
                            "or existing=overwrite")
        values = [*prediction.ratings.values(), *prediction.scores.values()]
        writer.writerow([self.key(image), result.caption, result.rating or "",
                         *(f"{value:.{SCORE_DIGITS}f}" for value in values)])
        self.handle.flush()


def make_sink(output_format: str, folder: Path, existing: str = "skip", output: str | os.PathLike | None = None):
    """The sink for ``output_format`` ("txt", "jsonl", "csv"); score files default to ``<folder>/captions.<ext>``."""
    if output_format not in FORMATS:
        raise ValueError(f"format: must be one of {', '.join(FORMATS)}, got {output_format!r}")
    if output_format == "txt":
        return TextSink(existing)
    path = Path(output) if output is not None else folder / f"captions.{output_format}"
    return (JsonlSink if output_format == "jsonl" else CsvSink)(folder, path, existing)
