"""`caption --engine ray` on a local Ray cluster: the local engine's bytes, resume, a dying actor, the CLI.

Ray is installed in the forge profile only (requirements/ray.txt); elsewhere these tests skip.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")
pytest.importorskip("ray.data", reason="Ray is installed in the forge profile only (requirements/ray.txt)")

import ray  # noqa: E402

from lib_tagger.caption.ray_engine import JoyTagPixels, WDPixels, pixels_of  # noqa: E402
from lib_tagger.caption.ray_run import caption_with_ray, cluster_resources  # noqa: E402
from lib_tagger.caption.run import caption_folder  # noqa: E402
from lib_tagger.interrogate.joytag.loader import JoyTagger  # noqa: E402
from lib_tagger.interrogate.loading import InterrogatorSource  # noqa: E402
from lib_tagger.interrogate.postprocess import TagOptions  # noqa: E402
from tests.conftest import ROOT  # noqa: E402
from tests.factories.joytag_model import save_joytag_checkpoint  # noqa: E402
from tests.ray_support import DIE_ON_CALL, MARKER, DiesOnce  # noqa: E402

OPTIONS = TagOptions(threshold=0.5, top_k=6)
GOOD = 30
BAD = ("broken.png", "cut.png", "empty.jpg")


def quiet(*_):
    return None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two CPUs, a small object store; the die-once marker of this module."""
    marker = tmp_path_factory.mktemp("die") / "died"
    ray.init(num_cpus=2, object_store_memory=150 * 1024**2, include_dashboard=False, logging_level="WARNING",
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), MARKER: str(marker), DIE_ON_CALL: "3",
                                       "OMP_NUM_THREADS": "1"}})
    yield marker
    ray.shutdown()


@pytest.fixture(scope="module")
def joytag(tmp_path_factory):
    return save_joytag_checkpoint(tmp_path_factory.mktemp("jt"), num_blocks=1, tiny=True)


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """A few dozen pictures of assorted sizes and modes, one below a sub-folder, and three broken files."""
    root = tmp_path_factory.mktemp("originals")
    rng = np.random.default_rng(7)
    modes = ("RGB", "RGBA", "L", "P")
    for index in range(GOOD):
        size = (int(rng.integers(8, 90)), int(rng.integers(8, 90)))
        picture = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
        name = f"sub/{index:02d}.png" if index == 0 else f"{index:02d}.{('png', 'jpg', 'webp')[index % 3]}"
        (root / name).parent.mkdir(exist_ok=True)
        picture = picture.convert(modes[index % 4]) if not name.endswith(".jpg") else picture
        picture.save(root / name)
    (root / "broken.png").write_text("this is text")
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
    (root / "cut.png").write_bytes(buffer.getvalue()[:150])
    (root / "empty.jpg").write_bytes(b"")
    return root


def copy_of(originals, destination):
    shutil.copytree(originals, destination)
    return destination


def captions(folder):
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*.txt"))}


def relative(entries, folder):
    """Report entries (paths, or (path, reason) pairs) relative to ``folder``, sorted."""
    return sorted((entry[0].relative_to(folder), entry[1]) if isinstance(entry, tuple) else entry.relative_to(folder)
                  for entry in entries)


def on_ray(folder, joytag, **kwargs):
    kwargs.setdefault("recursive", True)
    kwargs.setdefault("progress", quiet)
    return caption_with_ray(folder, OPTIONS, InterrogatorSource(str(joytag), None, "cpu"), **kwargs)


@pytest.fixture(scope="module")
def local_run(originals, joytag, tmp_path_factory):
    """The local engine's captions and JSONL of the same images (batch size 1: see test_batches_...)."""
    tagger = JoyTagger.load(joytag, device="cpu")
    try:
        folder = copy_of(originals, tmp_path_factory.mktemp("local") / "imgs")
        report = caption_folder(folder, OPTIONS, tagger, recursive=True, batch_size=1, progress=quiet)
        jsonl = folder / "scores.jsonl"
        caption_folder(folder, OPTIONS, tagger, recursive=True, batch_size=1, progress=quiet,
                       output_format="jsonl", output=jsonl)
    finally:
        tagger.close()
    return report, captions(folder), jsonl.read_text(encoding="utf-8").splitlines()


def test_the_stages_preprocess_as_the_loaded_models_do(joytag, tmp_path):
    from lib_tagger.interrogate.wd import WDTagger
    from tests.factories.wd_models import make_wd_folder

    picture = Image.fromarray(np.random.default_rng(1).integers(0, 256, (37, 61, 3), dtype=np.uint8)).convert("RGBA")
    wd_folder = make_wd_folder(tmp_path / "wd", "vit")
    for folder, loader, kind in ((joytag, JoyTagger, JoyTagPixels), (wd_folder, WDTagger, WDPixels)):
        pixels = pixels_of(str(folder))
        tagger = loader.load(folder, device="cpu")
        assert isinstance(pixels, kind) and pixels.shape == tuple(tagger.preprocess(picture).shape)
        assert np.array_equal(pixels(picture).numpy(), tagger.preprocess(picture).numpy())
        tagger.close()


def test_captions_are_the_local_engines_bytes_and_a_rerun_writes_nothing(cluster, originals, joytag, local_run,
                                                                          tmp_path):
    local_report, local_captions, _ = local_run
    folder = copy_of(originals, tmp_path / "imgs")
    report = on_ray(folder, joytag, batch_size=1)
    assert captions(folder) == local_captions and len(local_captions) == GOOD
    assert relative(report.written, folder) == relative(local_report.written, local_report.folder)
    assert len(set(report.written)) == GOOD
    assert relative(report.failed, folder) == relative(local_report.failed, local_report.folder)
    assert {path.name for path, _ in report.failed} == set(BAD)
    assert not [path for path in folder.rglob("*") if path.name.endswith(".tmp")]

    before = {path: path.stat().st_mtime_ns for path in folder.rglob("*.txt")}
    again = on_ray(folder, joytag, batch_size=4)
    assert again.written == [] and len(again.skipped) == GOOD and {p.name for p, _ in again.failed} == set(BAD)
    assert {path: path.stat().st_mtime_ns for path in folder.rglob("*.txt")} == before


def test_jsonl_records_are_the_local_engines_lines(cluster, originals, joytag, local_run, tmp_path):
    *_, local_lines = local_run
    folder = copy_of(originals, tmp_path / "imgs")
    report = on_ray(folder, joytag, batch_size=1, output_format="jsonl", output=folder / "scores.jsonl")
    lines = (folder / "scores.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(lines) == sorted(local_lines) and len(lines) == GOOD  # completion order, same bytes
    assert report.output == folder / "scores.jsonl" and not list(folder.rglob("*.txt"))


def test_parquet_rows_are_the_jsonl_records(cluster, originals, joytag, local_run, tmp_path):
    import pyarrow.parquet as pq

    *_, local_lines = local_run
    folder = copy_of(originals, tmp_path / "imgs")
    report = on_ray(folder, joytag, batch_size=1, output_format="parquet")
    assert report.output == folder / "captions.parquet" and len(report.written) == GOOD
    rows = pq.read_table(folder / "captions.parquet" / "part-00001.parquet").to_pylist()
    for row in rows:
        row.update({column: dict(row[column]) for column in ("tags", "ratings", "scores")})
    key = lambda record: record["image"]  # noqa: E731
    assert sorted(rows, key=key) == sorted(map(json.loads, local_lines), key=key)


def test_batches_give_the_local_scores_row_by_row(cluster, originals, joytag, local_run, tmp_path):
    """Batches of 4 (partial ones, broken files in them): each image keeps its own scores. A different
    batch shape moves the last float bits (as between two local batch sizes), so captions are compared
    where no score sits within 1e-5 of the threshold."""
    *_, local_lines = local_run
    expected = {record["image"]: record for record in map(json.loads, local_lines)}
    folder = copy_of(originals, tmp_path / "imgs")
    on_ray(folder, joytag, batch_size=4, output_format="jsonl")
    records = {record["image"]: record for record in map(json.loads, (folder / "captions.jsonl").open())}
    assert records.keys() == expected.keys()
    compared = 0
    for image, record in records.items():
        ours, theirs = np.array(list(record["scores"].values())), np.array(list(expected[image]["scores"].values()))
        assert np.abs(ours - theirs).max() <= 2e-5, image
        if np.abs(theirs - OPTIONS.threshold).min() > 1e-5:
            assert record["caption"] == expected[image]["caption"], image
            compared += 1
    assert compared >= GOOD // 2


def test_an_actor_that_dies_mid_run_is_restarted_and_every_image_is_written_once(cluster, originals, joytag,
                                                                                 local_run, tmp_path):
    *_, local_lines = local_run
    folder = copy_of(originals, tmp_path / "imgs")
    report = on_ray(folder, joytag, batch_size=1, workers=1, output_format="jsonl", worker_class=DiesOnce)
    assert cluster.exists(), "the actor was to die on its third batch"
    lines = (folder / "captions.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(lines) == sorted(local_lines)  # each image once, none lost
    assert len(report.written) == len(set(report.written)) == GOOD and len(report.failed) == len(BAD)


def test_a_list_file_and_a_glob_caption_what_they_name(cluster, originals, joytag, local_run, tmp_path):
    _, local_captions, _ = local_run
    folder = copy_of(originals, tmp_path / "imgs")
    listing = folder / "todo.lst"
    listing.write_text("01.jpg\nsub/00.png\nbroken.png\n", encoding="utf-8")
    report = on_ray(listing, joytag, batch_size=2, output_format="jsonl")
    assert sorted(json.loads(line)["image"] for line in (folder / "captions.jsonl").open()) == ["01.jpg", "sub/00.png"]
    assert [path.name for path, _ in report.failed] == ["broken.png"]
    report = on_ray(str(folder / "*.webp"), joytag, batch_size=3)
    webp = {f"{index:02d}.txt" for index in range(GOOD) if index % 3 == 2}
    assert sorted(path.name for path in report.written) == sorted(name.replace(".txt", ".webp") for name in webp)
    assert {name: data for name, data in captions(folder).items() if name in webp} == \
        {name: local_captions[name] for name in webp}


def test_model_actors_follow_the_cluster(cluster):
    resources = cluster_resources("auto", None, None)
    assert (resources.workers, resources.cpus, resources.gpus, resources.threads) == (1, 1.0, 0.0, 1)
    assert cluster_resources("cpu", 1, None).cpus == 1.0
    with pytest.raises(ValueError, match="2 model actors of 1 CPUs leave none of the Ray cluster's 2 CPUs"):
        cluster_resources("cpu", 2, 1)
    with pytest.raises(ValueError, match="no GPU"):
        cluster_resources("cuda", None, None)


def test_the_command_joins_a_running_cluster(cluster, originals, joytag, local_run, tmp_path):
    _, local_captions, _ = local_run
    folder = copy_of(originals, tmp_path / "imgs")
    address = ray.get_runtime_context().gcs_address
    command = [sys.executable, "-m", "lib_tagger", "caption", str(folder), "--engine", "ray", "--address", address,
               "--model", str(joytag), "--device", "cpu", "--batch-size", "1", "--recursive", "--threshold", "0.5",
               "--top-k", "6"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=240,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 1, done.stderr[-2000:]  # the three broken files
    assert f"{GOOD} captioned, 0 skipped (caption exists), 3 failed" in done.stderr
    assert captions(folder) == local_captions
