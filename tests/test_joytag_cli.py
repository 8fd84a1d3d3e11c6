"""The interrogate and caption commands: outputs, JSON, exit codes, one-line errors."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")

from lib_tagger.joytag.cli import add_subcommands, main  # noqa: E402
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


def _folder_of(tmp_path, count: int):
    folder = tmp_path / "set"
    folder.mkdir()
    for n in range(count):
        Image.new("RGB", (24, 24), (n * 40 % 256, 90, 10)).save(folder / f"img{n}.png")
    return folder


def test_ctrl_c_while_captioning_says_what_was_done_exits_130_and_leaves_whole_captions(model, tmp_path, capsys,
                                                                                        monkeypatch):
    from lib_tagger.joytag import cli
    from lib_tagger.joytag.loader import JoyTagger

    folder = _folder_of(tmp_path, 5)
    real = JoyTagger.load(model, device="cpu")
    calls = []

    class InterruptedOnThirdBatch:  # the real model; Ctrl-C lands in its third call
        image_size = real.image_size

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

    from lib_tagger.joytag import caption

    folder = _folder_of(tmp_path, 3)
    replaced = []
    real_replace = os.replace

    def replace_then_interrupt(source, target):
        if str(target).endswith(".txt"):
            if replaced:
                raise KeyboardInterrupt  # between writing the temporary file and putting it in place
            replaced.append(target)
        real_replace(source, target)

    monkeypatch.setattr(caption.os, "replace", replace_then_interrupt)
    status = main(["caption", str(folder), "--model", model, "--device", "cpu", "--batch-size", "1",
                   "--existing", "overwrite"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert status == 130 and last.startswith("interrupted: 1 of 3 captioned") and "resume" not in last
    assert sorted(path.name for path in folder.iterdir()) == ["img0.png", "img0.txt", "img1.png", "img2.png"]


def test_ctrl_c_while_the_model_loads_is_one_line(tmp_path, capsys, monkeypatch):
    from lib_tagger import cli as top
    from lib_tagger.joytag import cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_load", interrupted)
    folder = _folder_of(tmp_path, 1)
    assert top.main(["caption", str(folder), "--model", "x"]) == 130
    assert capsys.readouterr().err == "interrupted\n"
