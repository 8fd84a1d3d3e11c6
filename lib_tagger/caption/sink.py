"""Where captions go: a ``.txt`` beside each image, or one JSONL / CSV file with every score; the report.

Every sink writes an image's result as soon as it is known, so a crash or Ctrl-C loses at most the
batch in flight, and "skip" resumes where the run stopped: a ``.txt`` is replaced atomically, a JSONL
line or CSV row is flushed whole (a torn last line from a crash is dropped on resume). A ``.txt``
that "append" or "overwrite" changes is kept first as ``name.txt.bak`` (``.bak2``, ... when that holds
another one), so no hand-written caption is ever lost; a write that fails (a full disk) leaves the
caption as it was and no temporary file behind.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
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
    total: int = 0  # images to caption (not skipped)
    backups: list[Path] = field(default_factory=list)  # where the captions that were changed were kept

    def summary(self) -> str:
        """One line for a log or a status box, plus one line per failed image."""
        head = (f"{len(self.written)} captioned, {len(self.skipped)} skipped (caption exists), "
                f"{len(self.failed)} failed in {self.seconds:.1f}s")
        head += " (stopped early)" if self.stopped else ""
        head += f"; scores in {self.output}" if self.output is not None else ""
        if self.backups:
            head += f"; {len(self.backups)} previous captions kept as .bak"
        return "\n".join([head, *(f"  {path}: {reason}" for path, reason in self.failed)])


class CaptionInterrupted(KeyboardInterrupt):
    """Ctrl-C during a captioning run; ``report`` says what was done until then (every caption written is
    whole, none is half-written)."""

    def __init__(self, report: CaptionReport) -> None:
        super().__init__("captioning interrupted")
        self.report = report


class CaptionSink(Protocol):
    """Receives each image's result; ``key``/``has`` let the plan skip what is done."""

    def key(self, image: Path) -> object: ...

    def has(self, image: Path) -> bool: ...

    def write(self, image: Path, result: TagResult, prediction: Prediction) -> Path | None:
        """Write one result; returns where a replaced caption was kept, if one was."""
        ...

    def close(self) -> None: ...


def caption_path(image: Path) -> Path:
    """The caption file of ``image``: same name, ``.txt``."""
    return image.with_suffix(".txt")


def _merge(existing: str, new: str) -> str:
    old = [part.strip() for part in existing.split(",") if part.strip()]
    seen = set(old)
    return ", ".join(old + [part for part in new.split(", ") if part and part not in seen])


def _keep(target: Path, content: bytes) -> Path:
    """Keep the caption in ``target`` (its bytes are ``content``) beside it as ``name.txt.bak``, or ``.bak2``,
    ``.bak3``, ... when that already holds another caption; a backup with the same bytes is reused."""
    for n in range(1, 10_000):
        backup = target.with_name(f"{target.name}.bak{n if n > 1 else ''}")
        if not backup.exists():
            try:
                os.link(target, backup)  # the same file under a second name: no space needed, atomic
            except OSError:  # no hard links on this file system
                shutil.copy2(target, backup)
            return backup
        if backup.is_file() and backup.read_bytes() == content:
            return backup
    raise FileExistsError(f"{target.name}: 10,000 backups already; move some away")


def set_aside(path: Path) -> Path:
    """Move ``path`` to the first free ``name.bak``, ``name.bak2``, ... and return where it went."""
    for n in range(1, 10_000):
        backup = path.with_name(f"{path.name}.bak{n if n > 1 else ''}")
        if not backup.exists():
            os.replace(path, backup)
            return backup
    raise FileExistsError(f"{path.name}: 10,000 backups already; move some away")


class TextSink:
    """One ``.txt`` beside each image; "append" adds new tags to an existing caption."""

    def __init__(self, existing: str = "skip") -> None:
        self.existing = existing

    def key(self, image: Path) -> Path:
        return caption_path(image)

    def has(self, image: Path) -> bool:
        return caption_path(image).is_file()

    def write(self, image: Path, result: TagResult, prediction: Prediction) -> Path | None:
        """Write ``image``'s caption; returns where the caption it replaced was kept (None: there was none,
        or it does not change)."""
        target = caption_path(image)
        previous = target.read_bytes() if target.is_file() else None
        text = result.caption
        if self.existing == "append" and previous is not None:
            text = _merge(previous.decode("utf-8", errors="replace"), text)
        content = (text + "\n").encode("utf-8")
        if previous == content:
            return None
        temporary = target.with_name(f".{target.name}.tmp")
        try:
            temporary.write_bytes(content)
            backup = _keep(target, previous) if previous is not None else None
            os.replace(temporary, target)  # a crash never leaves a half-written caption that "skip" would trust
        except BaseException:
            temporary.unlink(missing_ok=True)  # a full disk, Ctrl-C: the old caption stays, no stray file
            raise
        return backup

    def close(self) -> None:
        return None


def _rounded(values: Any) -> dict[str, float]:
    return {name: round(float(score), SCORE_DIGITS) for name, score in values.items()}


class KeyedByPath:
    """Records keyed by the image's path in the folder (its full path outside it); ``done`` holds those
    already written."""

    folder: Path
    done: set[str]

    def key(self, image: Path) -> str:
        try:
            return image.relative_to(self.folder).as_posix()
        except ValueError:
            return str(image)

    def has(self, image: Path) -> bool:
        return self.key(image) in self.done


def record(report: CaptionReport, sink: CaptionSink, image: Path, result: TagResult, prediction: Prediction) -> None:
    """Write one image's result through ``sink`` and note it (and a kept backup) in ``report``."""
    backup = sink.write(image, result, prediction)
    report.written.append(image)
    if backup is not None:
        report.backups.append(backup)


class _TableSink(KeyedByPath):
    """Shared by the JSONL and CSV sinks: one file, one record per image keyed by its path in the folder."""

    def __init__(self, folder: Path, output: Path, existing: str) -> None:
        if existing == "append":
            raise SinkError("existing: 'append' merges .txt captions; a score file takes skip (resume) or "
                            "overwrite (start a new file)")
        self.folder = folder
        self.output = output
        self.done: set[str] = set()
        self.backup: Path | None = None  # where "overwrite" moved the previous file
        if existing == "skip" and output.is_file():
            self.done = self._read_done()
        else:
            output.parent.mkdir(parents=True, exist_ok=True)
            self.backup = set_aside(output) if output.is_file() and output.stat().st_size else None
            output.write_text("", encoding="utf-8")
        self.handle = output.open("a", encoding="utf-8", newline="")

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
