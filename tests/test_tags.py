"""Tag data (lookup, aliases, the shipped file) and sorting a prompt's tags into fields."""

from __future__ import annotations

import gzip
import importlib.util
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lib_tagger.tags import (
    ARTIST,
    CHARACTER,
    COPYRIGHT,
    DATA_FILE,
    GENERAL,
    META,
    SPECIAL_TAGS,
    TagDataError,
    TagDB,
    TagFields,
    get_tag_db,
    normalize_key,
    rating_from_fields,
    sort_tags,
)
from lib_tagger.tags import db as db_module

ROOT = Path(__file__).resolve().parent.parent
SHARED_CSV = ROOT.parent / "shared" / "data" / "danbooru-tags.csv"
SHARED_LICENSE = ROOT.parent / "shared" / "data" / "danbooru-tags.LICENSE.txt"


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_tag_data", ROOT / "dev" / "build_tag_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


builder = _load_builder()


@pytest.fixture(scope="module")
def db() -> TagDB:
    return get_tag_db()


def _write_db(tmp_path: Path, csv_text: str) -> TagDB:
    csv_path = tmp_path / "tags.csv"
    csv_path.write_text(csv_text, encoding="utf-8")
    out = tmp_path / "tags.tsv.gz"
    out.write_bytes(gzip.compress(builder.encode(builder.read_csv(csv_path)).encode()))
    return TagDB.from_file(out)


# ---------------------------------------------------------------- lookup on the shipped data
def test_lookup_known_tags_with_their_category(db: TagDB) -> None:
    assert db.lookup("long hair").category == GENERAL
    assert db.lookup("hatsune miku").category == CHARACTER
    assert db.lookup("vocaloid").category == COPYRIGHT
    assert db.lookup("highres").category == META
    assert db.lookup("kantoku").category == ARTIST
    info = db.lookup("1girl")
    assert info.name == "1girl" and info.post_count > 1_000_000


def test_lookup_normalizes_case_underscores_and_spaces(db: TagDB) -> None:
    for spelling in ("long hair", "long_hair", "Long_Hair", "  long   hair "):
        assert db.lookup(spelling).name == "long hair"


def test_aliases_resolve_to_the_canonical_tag(db: TagDB) -> None:
    assert db.canonical("longhair") == "long hair"
    assert db.canonical("twin_tails") == "twintails"
    assert db.canonical("hires") == "highres"
    assert db.lookup("1girls").name == "1girl"
    assert db.lookup("longhair") == db.lookup("long hair")


def test_unknown_tag_is_none_and_canonical_returns_it_unchanged(db: TagDB) -> None:
    assert db.lookup("not a real danbooru tag xyz") is None
    assert db.canonical("Not A Real Tag") == "Not A Real Tag"
    # tagcomplete's typing shortcuts are not aliases
    assert db.lookup("/lh") is None


def test_emoticons_keep_their_underscore(db: TagDB) -> None:
    assert db.canonical("^_^") == "^_^"
    assert db.canonical("^ ^") == "^_^"
    assert db.lookup("o_o").name == "o_o"


def test_top_tags_of_a_category(db: TagDB) -> None:
    top = db.top(CHARACTER, 5)
    assert len(top) == 5 and all(t.category == CHARACTER for t in top)
    assert [t.post_count for t in top] == sorted((t.post_count for t in top), reverse=True)
    assert db.top(META, 2)[0].name == "highres"
    assert db.top(META, 10**6) == db.top(META, 10**7) and len(db.top(META, 10**6)) == 390


def test_get_tag_db_is_cached(db: TagDB) -> None:
    assert get_tag_db() is db
    assert len(db) == 140_782


def test_get_tag_db_loads_once_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = TagDB.from_file.__func__

    def counting(cls, path=DATA_FILE):
        calls.append(path)
        return real(cls, path)

    monkeypatch.setattr(db_module, "_db", None)
    monkeypatch.setattr(TagDB, "from_file", classmethod(counting))
    barrier = threading.Barrier(6)
    results: list[TagDB] = []

    def worker() -> None:
        barrier.wait()
        results.append(get_tag_db())

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert len(results) == 6 and all(r is results[0] for r in results)


def test_importing_the_packages_loads_no_data_and_no_torch() -> None:
    code = (
        "import sys, lib_tagger.tags, lib_tagger.formats\n"
        "assert lib_tagger.tags.db._db is None\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# ---------------------------------------------------------------- the shipped file and its licence
def test_shipped_file_is_small_and_carries_the_licence_notice() -> None:
    assert DATA_FILE.stat().st_size < 4_000_000
    notice = DATA_FILE.with_name("LICENSE-danbooru-tags.txt").read_text(encoding="utf-8")
    assert notice.startswith("MIT License")
    assert "Dominik Reh" in notice


@pytest.mark.skipif(not SHARED_CSV.exists(), reason="the source CSV lives in ../shared only")
def test_shipped_file_matches_a_rebuild_from_the_csv() -> None:
    rebuilt = builder.encode(builder.read_csv(SHARED_CSV))
    assert gzip.decompress(DATA_FILE.read_bytes()).decode("utf-8") == rebuilt
    assert DATA_FILE.with_name("LICENSE-danbooru-tags.txt").read_bytes() == SHARED_LICENSE.read_bytes()


# ---------------------------------------------------------------- building and reading a file
def test_built_file_names_win_over_aliases_and_first_tag_wins_shared_alias(tmp_path: Path) -> None:
    db = _write_db(
        tmp_path,
        'big_tag,0,900,"shared,other_tag,/bt"\n'
        'other_tag,0,800,"shared"\n'
        "some_artist,1,10,\n"
        '^_^,0,5,"happy_face"\n',
    )
    assert len(db) == 4
    assert db.lookup("other tag").name == "other tag"  # a real name beats big_tag's alias
    assert db.canonical("shared") == "big tag"  # more posted tag wins the shared alias
    assert db.lookup("/bt") is None
    assert db.lookup("some_artist").category == ARTIST
    assert db.canonical("happy face") == "^_^"


def test_built_file_without_any_alias_loads(tmp_path: Path) -> None:
    db = _write_db(tmp_path, "long_hair,0,10,\nsmile,0,5,\n")
    assert [db.canonical("Long_Hair"), db.canonical("smile"), db.canonical("longhair")] == [
        "long hair", "smile", "longhair"]


def test_build_rejects_bad_csv_rows_naming_the_line(tmp_path: Path) -> None:
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text("long_hair,0,10,\nbroken_row,7,3,\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.csv:2"):
        builder.read_csv(csv_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not gzip at all", "cannot read tag data"),
        (gzip.compress(b"a\nb\n\n0"), "expected 5 sections"),
        (gzip.compress(b"a\nb\n\n09\n\n1\n2\n\n\n\n\n"), "unknown category"),
        (gzip.compress(b"a\nb\n\n00\n\n1\n2\n\nx\n\n7\n"), "outside the tag list"),
        (gzip.compress(b"a\nb\n\n00\n\n1\n\n\n\n\n"), "column lengths differ"),
        (gzip.compress(b"a\nb\n\n00\n\n1\n2\n\nx\ny\n\n1\n"), "2 aliases but 1"),
        (gzip.compress(b"a\nb\n\n00\n\n1\nmany\n\n\n\n\n"), "post count"),
    ],
    ids=["not-gzip", "sections", "category", "alias-row", "lengths", "alias-count", "count"],
)
def test_bad_data_file_raises_an_error_naming_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "broken.tsv.gz"
    path.write_bytes(content)
    with pytest.raises(TagDataError, match=message) as info:
        TagDB.from_file(path)
    assert "broken.tsv.gz" in str(info.value)


def test_missing_data_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(TagDataError, match="nowhere.tsv.gz"):
        TagDB.from_file(tmp_path / "nowhere.tsv.gz")


# ---------------------------------------------------------------- sorting
MIKU = [
    "masterpiece", "best quality", "1girl", "hatsune miku", "vocaloid",
    "aqua hair", "twintails", "highres", "smile", "sensitive",
]


def test_sort_realistic_prompt(db: TagDB) -> None:
    fields = sort_tags(MIKU, db)
    assert fields == TagFields(
        special=["1girl"],
        rating=["sensitive"],
        quality=["masterpiece", "best quality"],
        artist=[],
        character=["hatsune miku"],
        copyright=["vocaloid"],
        meta=["highres"],
        general=["aqua hair", "twintails", "smile"],
    )


def test_sort_uses_the_shipped_data_by_default() -> None:
    assert sort_tags(["kantoku", "longhair"]).artist == ["kantoku"]


def test_special_tags_keep_the_users_order_and_solo_is_general(db: TagDB) -> None:
    fields = sort_tags(["solo", "2girls", "male focus", "1boy", "multiple others", "6+boys"], db)
    assert fields.special == ["2girls", "male focus", "1boy", "multiple others", "6+boys"]
    assert fields.general == ["solo"]
    assert "solo" not in SPECIAL_TAGS and len(SPECIAL_TAGS) == 22


def test_aliases_resolve_and_duplicates_collapse(db: TagDB) -> None:
    fields = sort_tags(["longhair", "long hair", "twin tails", "1girls", "1girl", "hires"], db)
    assert fields.general == ["long hair", "twintails"]
    assert fields.special == ["1girl"]
    assert fields.meta == ["highres"]


def test_quality_and_period_words(db: TagDB) -> None:
    tags = ["amazing quality", "very aesthetic", "newest", "year 2023", "score 9", "score 8 up",
            "source anime", "worst quality", "old", "old man"]
    fields = sort_tags(tags, db)
    assert fields.quality == tags[:-1]
    assert fields.general == ["old man"]


def test_rating_words_and_danbooru_rating_forms(db: TagDB) -> None:
    fields = sort_tags(["safe", "rating:e", "rating: q", "nsfw", "explicit", "sfw"], db)
    assert fields.rating == ["safe", "rating:e", "rating: q", "nsfw", "explicit", "sfw"]
    assert fields.general == []


def test_unknown_tags_and_blank_entries(db: TagDB) -> None:
    fields = sort_tags(["", "  ", "_", "my oc", " glowing swords "], db)
    assert fields.general == ["my oc", "glowing swords"]
    assert sort_tags([], db) == TagFields()


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ([], None),
        (["safe"], "general"),
        (["general"], "general"),
        (["rating:s"], "sensitive"),
        (["sfw", "sensitive"], "sensitive"),
        (["nsfw", "explicit"], "explicit"),
        (["nsfw"], "nsfw"),
        (["rating:q"], "questionable"),
        (["general", "nsfw"], "nsfw"),
    ],
)
def test_rating_from_fields(words: list[str], expected: str | None) -> None:
    assert rating_from_fields(TagFields(rating=words)) == expected


TAG_POOL = [*MIKU, "longhair", "long hair", "2girls", "solo", "kantoku", "nsfw", "year 2020", "absurdres",
            "made up tag", "^_^", "^ ^", "rating:g"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(TAG_POOL), st.text("abc _", min_size=1, max_size=6)), max_size=25))
def test_every_tag_lands_in_exactly_one_field(tags: list[str]) -> None:
    db = get_tag_db()
    fields = sort_tags(tags, db)
    placed = [t for values in vars(fields).values() for t in values]
    keys = [normalize_key(db.canonical(t.strip())) for t in tags]
    assert len(placed) == len(set(map(normalize_key, placed))) == len(set(keys) - {""})
    # order within a field follows the input order
    for values in vars(fields).values():
        firsts = [keys.index(normalize_key(v)) for v in values]
        assert firsts == sorted(firsts)
