"""What `caption SRC` names: a folder, a list file, a glob or one image; the plan of a given image list."""

from __future__ import annotations

import pytest
from PIL import Image

from lib_tagger.caption.plan import plan_images
from lib_tagger.caption.sink import TextSink
from lib_tagger.caption.sources import SourceError, list_source


def images(root, names):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4)).save(path)
    return root


def test_a_folder_lists_its_images_and_recursive_goes_below(tmp_path):
    images(tmp_path, ["b.png", "a.jpg", "sub/c.webp"])
    (tmp_path / "notes.txt").write_text("not an image")
    assert list_source(tmp_path) == (tmp_path, [tmp_path / "a.jpg", tmp_path / "b.png"])
    assert list_source(tmp_path, recursive=True)[1] == [tmp_path / "a.jpg", tmp_path / "b.png",
                                                        tmp_path / "sub" / "c.webp"]


def test_a_list_file_resolves_relative_paths_from_its_folder_and_keeps_missing_ones(tmp_path):
    images(tmp_path, ["set/a.png", "set/b.png"])
    listing = tmp_path / "set" / "todo.lst"
    listing.write_text(f"# chosen by hand\nb.png\n\n  a.png  \nb.png\n{tmp_path / 'set' / 'gone.png'}\n",
                       encoding="utf-8")
    root, found = list_source(listing)
    assert root == tmp_path / "set"
    assert found == [tmp_path / "set" / "a.png", tmp_path / "set" / "b.png", tmp_path / "set" / "gone.png"]


def test_a_glob_matches_image_files_below_its_fixed_folder(tmp_path):
    images(tmp_path, ["x/1.png", "x/deep/2.png", "x/deep/3.jpg", "y/4.png"])
    (tmp_path / "x" / "deep" / "5.txt").write_text("caption")
    root, found = list_source(str(tmp_path / "x" / "**" / "*"))
    assert root == tmp_path / "x"
    assert found == [tmp_path / "x" / "1.png", tmp_path / "x" / "deep" / "2.png", tmp_path / "x" / "deep" / "3.jpg"]
    assert list_source(str(tmp_path / "*" / "*.png"))[1] == [tmp_path / "x" / "1.png", tmp_path / "y" / "4.png"]


def test_one_image_and_sources_that_name_nothing(tmp_path):
    images(tmp_path, ["one.png"])
    assert list_source(tmp_path / "one.png") == (tmp_path, [tmp_path / "one.png"])
    with pytest.raises(SourceError, match="neither a folder"):
        list_source(tmp_path / "missing")
    with pytest.raises(SourceError, match="matches no image"):
        list_source(str(tmp_path / "*.jpg"))


def test_plan_of_a_list_skips_captioned_images_and_catches_clashes(tmp_path):
    images(tmp_path, ["a.png", "a.jpg", "b.png", "c.png"])
    (tmp_path / "c.txt").write_text("done")
    plan = plan_images(tmp_path, sorted(tmp_path.glob("*.*g")), TextSink())
    assert plan.todo == [tmp_path / "a.jpg", tmp_path / "b.png"] and plan.skipped == [tmp_path / "c.png"]
    clash = ("a.png", "caption a.txt already belongs to a.jpg")
    assert [(path.name, reason) for path, reason in plan.failed] == [clash]
