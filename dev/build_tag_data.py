"""Build the tag data file that ``lib_tagger.tags`` reads.

Reads the a1111-sd-webui-tagcomplete Danbooru CSV (``tag,category,post_count,"aliases"``) and
writes ``lib_tagger/tags/data/danbooru_tags.tsv.gz`` plus the MIT notice that must ship with it.

The output is column-wise so that it loads in a fraction of a second; its layout is described in
:mod:`lib_tagger.tags.db`. Tags keep the CSV's order (most posts first); names are written in
model form (``long hair``; short emoticons such as ``^_^`` keep their underscore). Aliases are
stored as normalized keys; an alias that is also a real tag name is dropped (the name wins), and
an alias shared by two tags points to the more posted one. Aliases starting with ``/`` are
tagcomplete's typing shortcuts (``/lh``), not names anyone writes in a prompt: left out.

Usage: ``python dev/build_tag_data.py [CSV] [LICENSE]`` (defaults: ../shared/data/...).
"""

from __future__ import annotations

import csv
import gzip
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lib_tagger.tags.db import CATEGORIES, DATA_FILE, model_form, normalize_key  # noqa: E402

DEFAULT_CSV = ROOT.parent / "shared" / "data" / "danbooru-tags.csv"
DEFAULT_LICENSE = ROOT.parent / "shared" / "data" / "danbooru-tags.LICENSE.txt"
LICENSE_FILE = DATA_FILE.with_name("LICENSE-danbooru-tags.txt")


def read_csv(csv_path: Path) -> list[tuple[str, int, int, list[str]]]:
    """(name, category, post count, aliases) per row; ValueError naming the line on bad rows."""
    rows = []
    with csv_path.open(encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if len(row) != 4:
                raise ValueError(f"{csv_path}:{number}: expected 4 columns, got {len(row)}")
            name, category, count, aliases = (part.strip() for part in row)
            if not name or not category.isdigit() or int(category) not in CATEGORIES or not count.isdigit():
                raise ValueError(f"{csv_path}:{number}: bad row {row!r}")
            if any(ch in name + aliases for ch in "\t\n\r"):
                raise ValueError(f"{csv_path}:{number}: tab or newline inside a field")
            kept = [a.strip() for a in aliases.split(",") if a.strip() and not a.strip().startswith("/")]
            rows.append((name, int(category), int(count), kept))
    return rows


def encode(rows: list[tuple[str, int, int, list[str]]]) -> str:
    """The column-wise text of the data file (see lib_tagger.tags.db)."""
    names: list[str] = []
    categories: list[str] = []
    counts: list[str] = []
    keys: dict[str, int] = {}
    alias_rows: dict[str, int] = {}
    for name, category, count, aliases in rows:
        key = normalize_key(name)
        if key in keys:
            continue
        if key != model_form(name).replace("_", " "):
            raise ValueError(f"tag {name!r}: names must be lowercase without spaces")
        keys[key] = len(names)
        for alias in aliases:
            alias_rows.setdefault(normalize_key(alias), len(names))
        names.append(model_form(name))
        categories.append(str(category))
        counts.append(str(count))
    aliases = {alias: row for alias, row in alias_rows.items() if alias and alias not in keys}
    sections = [
        "\n".join(names),
        "".join(categories),
        "\n".join(counts),
        "\n".join(aliases),
        "\n".join(str(row) for row in aliases.values()),
    ]
    return "\n\n".join(sections) + "\n"


def main(argv: list[str]) -> int:
    csv_path = Path(argv[0]) if argv else DEFAULT_CSV
    license_path = Path(argv[1]) if len(argv) > 1 else DEFAULT_LICENSE
    rows = read_csv(csv_path)
    DATA_FILE.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0 keeps the output byte-identical between runs
    with open(DATA_FILE, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(encode(rows).encode("utf-8"))
    shutil.copyfile(license_path, LICENSE_FILE)
    size = DATA_FILE.stat().st_size / 1e6
    print(f"wrote {len(rows)} tags to {DATA_FILE} ({size:.2f} MB) and {LICENSE_FILE.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
