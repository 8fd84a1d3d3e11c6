"""The interrogate and caption commands: outputs, JSON, exit codes, one-line errors."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")

from lib_tagger.interrogate.cli import add_subcommands, main  # noqa: E402
from tests.factories.joytag_model import save_joytag_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return str(save_joytag_checkpoint(tmp_path_factory.mktemp("jt"), tiny=True, seed=2))


@pytest.fixture()
def image(tmp_path):
    path = tmp_path / "pic.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)).save(path)
    return str(path)


def test_json_with_threshold_zero_has_every_tag(model, image, capsys):
    argv = ["interrogate", "--model", model, "--device", "cpu", "--threshold", "0", "--json", image]
    assert main(argv) == 0
    documents = json.loads(capsys.readouterr().out)
    assert len(documents) == 1 and documents[0]["image"] == image
    tags = documents[0]["tags"]
    assert len(tags) == 5813
    assert "kamina (ttgl)" in tags and all(0.0 <= score <= 1.0 for score in tags.values())
    scores = list(tags.values())
    assert scores == sorted(scores, reverse=True)


def test_plain_output_is_one_line_and_respects_options(model, image, capsys):
    assert main(["interrogate", "--model", model, "--device", "cpu", "--top-k", "3", "--threshold", "0.1",
                 "--always-add", "masterpiece", image]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    tags = lines[0].split(", ")
    assert tags[0] == "masterpiece" and len(tags) == 4


def test_bad_image_fails_alone_with_exit_1(model, image, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    status = main(["interrogate", "--model", model, "--device", "cpu", image, str(bad)])
    out, err = capsys.readouterr()
    assert status == 1
    assert out.startswith(f"{image}\t") and len(out.splitlines()) == 1
    assert err.strip() == f"error: {bad}: not an image Pillow can read"


@pytest.mark.parametrize(
    "argv",
    [["interrogate", "--threshold", "2", "x.png"], ["interrogate", "--top-k", "-1", "x.png"],
     ["caption", "dir", "--existing", "merge"], ["interrogate"], ["caption", "dir", "--batch-size", "0"]],
)
def test_bad_arguments_exit_2_with_one_line(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_missing_model_exits_1_with_one_line(tmp_path, image, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    status = main(["interrogate", "--models-dir", str(tmp_path), image])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1 and "fancyfeast/joytag" in err[0]


def test_caption_command_writes_captions_and_reports_failures(model, tmp_path, capsys):
    folder = tmp_path / "set"
    folder.mkdir()
    Image.new("RGB", (20, 20), (0, 128, 0)).save(folder / "ok.png")
    (folder / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    status = main(["caption", str(folder), "--model", model, "--device", "cpu", "--threshold", "0.3"])
    err = capsys.readouterr().err
    assert status == 1
    assert (folder / "ok.txt").read_text().strip()
    assert "1 captioned" in err and "bad.jpg" in err
    assert main(["caption", str(tmp_path / "missing"), "--model", model]) == 2


def test_add_subcommands_plugs_into_another_parser(model, image, capsys):
    parser = argparse.ArgumentParser(prog="python -m lib_tagger")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["interrogate", "--model", model, "--device", "cpu", "--json", image])
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out)[0]["image"] == image
    caption_args = parser.parse_args(["caption", "somewhere"])
    assert caption_args.default_exclude is True and caption_args.existing == "skip"


def test_every_tag_option_has_a_flag_with_its_help():
    from lib_tagger.interrogate.cli import OPTION_FLAGS
    from lib_tagger.interrogate.postprocess import option_names

    assert set(OPTION_FLAGS) == set(option_names())
    parser = argparse.ArgumentParser()
    add_subcommands(parser.add_subparsers(dest="command"))
    help_text = parser._subparsers._group_actions[0].choices["interrogate"].format_help()
    assert all(flag in help_text for flag in OPTION_FLAGS.values())


def test_category_thresholds_mcut_and_rating_flags_reach_the_options():
    from lib_tagger.interrogate.cli import options_from_args

    parser = argparse.ArgumentParser()
    add_subcommands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["interrogate", "x.png", "--threshold", "0.35", "--character-threshold", "0.85",
                              "--category-threshold", "artist=0.6", "--mcut", "general", "--rating-tag"])
    options = options_from_args(args)
    assert options.threshold == 0.35 and options.mcut == ("general",) and options.rating_tag
    assert options.category_thresholds == (("artist", 0.6), ("character", 0.85))


def test_bad_category_threshold_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["interrogate", "x.png", "--category-threshold", "hair=0.5"])
    assert info.value.code == 2 and "unknown category 'hair'" in capsys.readouterr().err


def test_caption_command_writes_one_jsonl_file(model, tmp_path, capsys):
    folder = tmp_path / "set"
    folder.mkdir()
    Image.new("RGB", (20, 20), (0, 128, 0)).save(folder / "ok.png")
    out = tmp_path / "all.jsonl"
    assert main(["caption", str(folder), "--model", model, "--device", "cpu", "--format", "jsonl",
                 "--output", str(out)]) == 0
    assert f"scores in {out}" in capsys.readouterr().out
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["image"] == "ok.png" and len(record["scores"]) == 5813
    assert main(["caption", str(folder), "--model", model, "--format", "jsonl", "--existing", "append"]) == 2


def test_unknown_interrogator_exits_1_naming_the_known_ones(image, capsys):
    assert main(["interrogate", "--model", "wd-nope", image]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown interrogator 'wd-nope'") and "wd-eva02-large-tagger-v3" in err


def test_models_command_lists_the_interrogators(capsys):
    from lib_tagger.cli import main as lib_main

    assert lib_main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    interrogators = [row["name"] for row in rows if row["kind"] == "interrogator"]
    assert interrogators == ["joytag", "wd-vit-tagger-v3", "wd-swinv2-tagger-v3", "wd-convnext-tagger-v3",
                             "wd-vit-large-tagger-v3", "wd-eva02-large-tagger-v3"]
    assert any(row["kind"] == "upsampler" and row["name"] == "dart-v2-moe-sft" for row in rows)
    assert lib_main(["models"]) == 0
    text = capsys.readouterr().out
    assert "Interrogators:" in text and "SmilingWolf/wd-vit-tagger-v3" in text


def test_wd_model_json_has_the_ratings(tmp_path, image, capsys):
    pytest.importorskip("timm", reason="timm imports only in the forge profile")
    from tests.factories.wd_models import RATINGS, make_wd_folder

    folder = make_wd_folder(tmp_path / "wd", "vit", seed=4)
    assert main(["interrogate", "--model", str(folder), "--device", "cpu", "--json", "--rating-tag",
                 "--threshold", "0.2", image]) == 0
    [document] = json.loads(capsys.readouterr().out)
    assert tuple(document["ratings"]) == RATINGS and document["model"] == "wd"
    assert next(iter(document["tags"])) == document["rating"]


def _folder_of(tmp_path, count: int):
    folder = tmp_path / "set"
    folder.mkdir()
    for n in range(count):
        Image.new("RGB", (24, 24), (n * 40 % 256, 90, 10)).save(folder / f"img{n}.png")
    return folder


def test_ctrl_c_while_captioning_says_what_was_done_exits_130_and_leaves_whole_captions(model, tmp_path, capsys,
                                                                                        monkeypatch):
    from lib_tagger.interrogate import cli
    from lib_tagger.interrogate.joytag.loader import JoyTagger

    folder = _folder_of(tmp_path, 5)
    real = JoyTagger.load(model, device="cpu")
    calls = []

    class InterruptedOnThirdBatch:  # the real model; Ctrl-C lands in its third call
        image_size = real.image_size
        labels = real.labels
        preprocess = real.preprocess

        def predict(self, batch):
            calls.append(len(batch))
            if len(calls) == 3:
                raise KeyboardInterrupt
            return real.predict(batch)

        def close(self):
            real.close()

    monkeypatch.setattr(cli, "_load", lambda args: InterruptedOnThirdBatch())
    status = main(["caption", str(folder), "--model", model, "--batch-size", "1", "--threshold", "0.3"])
    out, err = capsys.readouterr()
    assert status == 130
    assert err.strip().splitlines()[-1] == ("interrupted: 2 of 5 captioned, 0 failed, 0 skipped (caption exists); "
                                            "run again to resume")
    assert "Traceback" not in out + err
    assert sorted(path.name for path in folder.iterdir() if not path.name.endswith(".png")) == ["img0.txt",
                                                                                                 "img1.txt"]
    assert all((folder / name).read_text().endswith("\n") for name in ("img0.txt", "img1.txt"))


def test_ctrl_c_while_a_caption_is_written_leaves_no_partial_file(model, tmp_path, capsys, monkeypatch):
    import os

    from lib_tagger.caption import sink

    folder = _folder_of(tmp_path, 3)
    replaced = []
    real_replace = os.replace

    def replace_then_interrupt(source, target):
        if str(target).endswith(".txt"):
            if replaced:
                raise KeyboardInterrupt  # between writing the temporary file and putting it in place
            replaced.append(target)
        real_replace(source, target)

    monkeypatch.setattr(sink.os, "replace", replace_then_interrupt)
    status = main(["caption", str(folder), "--model", model, "--device", "cpu", "--batch-size", "1",
                   "--existing", "overwrite"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert status == 130 and last.startswith("interrupted: 1 of 3 captioned") and "resume" not in last
    assert sorted(path.name for path in folder.iterdir()) == ["img0.png", "img0.txt", "img1.png", "img2.png"]


def test_ctrl_c_while_the_model_loads_is_one_line(tmp_path, capsys, monkeypatch):
    from lib_tagger import cli as top
    from lib_tagger.interrogate import cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_load", interrupted)
    folder = _folder_of(tmp_path, 1)
    assert top.main(["caption", str(folder), "--model", "x"]) == 130
    assert capsys.readouterr().err == "interrupted\n"
