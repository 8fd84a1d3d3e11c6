"""JoyTag in img2img: settings, the button handler, the capture/wiring of host components, the batch panel.

A tiny random-weight checkpoint in the released layout stands in for JoyTag; expected tags are computed
through a separately loaded ``JoyTagger`` so the UI path is checked against the core's own answer.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio")

from lib_tagger.interrogate.joytag.loader import JoyTagger  # noqa: E402
from lib_tagger.interrogate.loading import predict_images, unload_interrogator  # noqa: E402
from lib_tagger.interrogate.postprocess import OptionsError, TagOptions, format_tags, select_tags  # noqa: E402
from tagger_webui import interrogate_service, joytag_ui  # noqa: E402
from tagger_webui.interrogate_service import InterrogateService, InterrogateSettings, InterrogateUiError  # noqa: E402
from tests.browser.pages import GRADIO_MAJOR, img2img_page  # noqa: E402
from tests.factories.joytag_model import save_joytag_checkpoint  # noqa: E402

UPDATE_TYPES = ("update", "generic_update")


def is_no_change(value) -> bool:
    return isinstance(value, dict) and value.get("__type__") in UPDATE_TYPES and len(value) == 1


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_joytag_checkpoint(tmp_path_factory.mktemp("joytag"), num_blocks=1, tiny=True, seed=3)


@pytest.fixture(scope="module")
def reference(checkpoint):
    """An independent tagger on the same files: the expected answers."""
    import torch

    torch.manual_seed(0)
    tagger = JoyTagger.load(str(checkpoint), device="cpu")
    yield tagger
    tagger.close()


@pytest.fixture
def options(checkpoint):
    """WebUI options as a dict; the process-wide service reads them on every click."""
    values = {"tagger_joytag_model": str(checkpoint), "tagger_joytag_device": "cpu", "tagger_joytag_top_k": 5}
    interrogate_service.configure(lambda key, default: values.get(key, default))
    yield values
    interrogate_service.configure()
    unload_interrogator()


def picture(seed: int, size=(96, 64)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def expected_text(reference, image, **overrides) -> str:
    opts = TagOptions(**{"top_k": 5, **overrides})
    return format_tags(select_tags(predict_images(reference, [image])[0], opts), opts)


# ---------------------------------------------------------------------------- settings
def test_settings_from_options_defaults_match_the_core():
    settings = interrogate_service.settings_from_options(lambda key, default: default, models_dir="/m")
    assert settings == InterrogateSettings(models_dir="/m")
    assert settings.options == TagOptions()


def test_settings_from_options_reads_every_key():
    values = {
        "tagger_joytag_prompt_mode": "append",
        "tagger_joytag_threshold": 0.7,
        "tagger_joytag_top_k": 3,
        "tagger_joytag_exclude": "a, b_*",
        "tagger_joytag_always_add": "1girl",
        "tagger_joytag_sort": "alphabetical",
        "tagger_joytag_weighted": True,
        "tagger_joytag_keep_loaded": False,
        "tagger_joytag_model": " /x/joytag ",
        "tagger_joytag_batch_size": 2,
    }
    settings = interrogate_service.settings_from_options(lambda key, default: values.get(key, default))
    assert (settings.prompt_mode, settings.keep_loaded, settings.model, settings.batch_size) == (
        "append",
        False,
        "/x/joytag",
        2,
    )
    assert settings.options == TagOptions(
        threshold=0.7,
        top_k=3,
        exclude=("a", "b_*"),
        always_add=("1girl",),
        sort="alphabetical",
        weighted=True,
    )


@pytest.mark.parametrize(
    ("key", "value", "error", "names"),
    [
        ("tagger_joytag_prompt_mode", "prepend", InterrogateUiError, "tagger_joytag_prompt_mode"),
        ("tagger_joytag_batch_size", 0, InterrogateUiError, "tagger_joytag_batch_size"),
        ("tagger_joytag_threshold", 1.5, OptionsError, "threshold"),
        ("tagger_joytag_sort", "random", OptionsError, "sort"),
    ],
)
def test_bad_setting_names_the_field(key, value, error, names):
    with pytest.raises(error, match=names):
        interrogate_service.settings_from_options(lambda k, default: value if k == key else default)


# ---------------------------------------------------------------------------- pure helpers
def test_pick_image_per_tab():
    a, b, c = picture(1), picture(2), picture(3)
    images = [a, None, {"image": b, "mask": picture(9)}, None, np.asarray(c)]
    assert joytag_ui.pick_image(0, images) is a
    assert joytag_ui.pick_image(2.0, images) is b  # gradio 3 sends numbers as floats
    assert np.array_equal(np.asarray(joytag_ui.pick_image("4", images)), np.asarray(c))
    with pytest.raises(InterrogateUiError, match="no image in the 'Sketch' tab"):
        joytag_ui.pick_image(1, images)
    with pytest.raises(InterrogateUiError, match="no image in the 'Inpaint' tab"):
        joytag_ui.pick_image(2, [None, None, {"image": None, "mask": None}, None, None])
    with pytest.raises(InterrogateUiError, match="Batch tab has no single image"):
        joytag_ui.pick_image(5, images)
    for bad in (6, -1, "x", None):
        with pytest.raises(InterrogateUiError, match="unknown img2img tab"):
            joytag_ui.pick_image(bad, images)


@pytest.mark.parametrize(
    ("prompt", "mode", "result"),
    [
        ("old, prompt", "replace", "cat, dog"),
        ("old, prompt", "append", "old, prompt, cat, dog"),
        ("old, prompt,  \n", "append", "old, prompt, cat, dog"),
        ("   ", "append", "cat, dog"),
        (None, "append", "cat, dog"),
    ],
)
def test_merge_prompt(prompt, mode, result):
    assert joytag_ui.merge_prompt(prompt, "cat, dog", mode) == result


@pytest.mark.parametrize(
    ("prompt", "tags", "result"),
    [
        ("ganyu_(genshin_impact), 1girl", "ganyu \\(genshin impact\\), 1girl, solo, (smile:0.87)",
         "ganyu_(genshin_impact), 1girl, solo, (smile:0.87)"),
        ("hatsune_miku_(vocaloid)", "vocaloid, hatsune miku, twintails", "hatsune_miku_(vocaloid), twintails"),
        ("Long_Hair, longhair", "long hair, (smile:0.9)", "Long_Hair, longhair, (smile:0.9)"),  # an alias too
        ("smile, 1girl,  ", "1girl, (smile:0.5)", "smile, 1girl,  "),  # nothing new: the prompt as it was
    ],
)
def test_append_leaves_out_tags_the_prompt_has(prompt, tags, result):
    assert joytag_ui.merge_prompt(prompt, tags, "append") == result


def test_merge_prompt_rejects_unknown_mode():
    with pytest.raises(InterrogateUiError, match="tagger_joytag_prompt_mode"):
        joytag_ui.merge_prompt("a", "b", "insert")


# ---------------------------------------------------------------------------- the button handler
def test_button_replaces_then_appends(options, reference):
    first, second = picture(11), picture(12)
    expected_first = expected_text(reference, first)
    assert expected_first and expected_first.count(", ") == 4
    assert joytag_ui.interrogate_to_prompt(0, "my prompt", first, None, None, None, None) == expected_first

    options["tagger_joytag_prompt_mode"] = "append"
    result = joytag_ui.interrogate_to_prompt(4, "my prompt,", None, None, None, None, second)
    assert result == "my prompt, " + expected_text(reference, second)


def test_button_applies_tag_options(options, reference):
    image = picture(13)
    options.update(tagger_joytag_weighted=True, tagger_joytag_always_add="masterpiece")
    text = joytag_ui.interrogate_to_prompt(0, "", image, None, None, None, None)
    assert text == expected_text(reference, image, weighted=True, always_add=("masterpiece",))
    assert text.startswith("masterpiece, (")


def test_button_keeps_prompt_and_warns_without_image(options):
    with pytest.warns(UserWarning, match="no image in the 'Inpaint sketch' tab"):
        result = joytag_ui.interrogate_to_prompt(3, "keep me", picture(1), None, None, None, None)
    assert is_no_change(result)


def test_button_keeps_prompt_and_warns_when_model_is_missing(options, tmp_path, caplog):
    options["tagger_joytag_model"] = str(tmp_path / "nowhere")
    with pytest.warns(UserWarning, match=r"Interrogate \(nowhere\) failed: .*nowhere does not exist"):
        result = joytag_ui.interrogate_to_prompt(0, "keep me", picture(1), None, None, None, None)
    assert is_no_change(result)
    (record,) = [r for r in caplog.records if r.name == joytag_ui.log.name]
    assert "nowhere" in record.getMessage() and record.exc_info is None  # the user's to fix: no traceback


def test_button_keeps_prompt_when_no_tag_passes(options, tmp_path):
    options.update(tagger_joytag_threshold=1.0, tagger_joytag_top_k=0)
    with pytest.warns(UserWarning, match="no tag scored above the threshold 1.0"):
        result = joytag_ui.interrogate_to_prompt(0, "keep me", picture(1), None, None, None, None)
    assert is_no_change(result)


def test_service_frees_memory_first_holds_the_lock_and_unloads_when_asked(checkpoint, reference):
    from contextlib import contextmanager

    from lib_tagger.interrogate import loading
    from lib_tagger.models.manager import get_manager

    get_manager().unload()  # a tag model another test left loaded is not this test's business
    events = []

    @contextmanager
    def gpu_lock():
        events.append("lock")
        yield
        events.append("unlock")

    def free_memory():
        events.append("free")
        assert loading.loaded_interrogators() == []  # freed before the model loads

    unload_interrogator()
    settings = InterrogateSettings(
        model=str(checkpoint), device="cpu", keep_loaded=False, options=TagOptions(top_k=5)
    )
    service = InterrogateService(lambda: settings, free_memory, gpu_lock)
    image = picture(21)
    result = service.tag(image)
    assert events == ["lock", "free", "unlock"]
    assert result.caption == expected_text(reference, image) and len(result.tags) == 5
    assert all(0.0 <= score <= 1.0 for _, score in result.tags)
    assert unload_interrogator() is False  # keep_loaded=False already freed it

    kept = InterrogateService(lambda: InterrogateSettings(model=str(checkpoint), device="cpu"))
    kept.tag(image)
    assert kept.unload() == [checkpoint.name]
    assert kept.unload() == []


# ---------------------------------------------------------------------------- capture and wiring
def _dependency(demo, button):
    for dependency in demo.config["dependencies"]:
        if button._id in dependency["targets"] or any(
            isinstance(target, list | tuple) and target[0] == button._id for target in dependency["targets"]
        ):
            return dependency
    raise AssertionError("the JoyTag button is not wired")


def _by_elem_id(demo, elem_id):
    found = [block for block in demo.blocks.values() if getattr(block, "elem_id", None) == elem_id]
    assert len(found) == 1, f"{len(found)} blocks with elem_id {elem_id}"
    return found[0]


def _our_button(page):
    """Our button: the host's ToolButton, the next child after DeepBooru in DeepBooru's container."""
    from modules.ui_components import ToolButton

    deepbooru = _by_elem_id(page.demo, "deepbooru")
    siblings = deepbooru.parent.children
    button = siblings[siblings.index(deepbooru) + 1]
    assert button.elem_id == joytag_ui.BUTTON_ELEM_ID and isinstance(button, ToolButton)
    assert "tool" in button.elem_classes and "tagger_tool" in button.elem_classes
    assert _by_elem_id(page.demo, joytag_ui.BUTTON_ELEM_ID) is button
    return button, _by_elem_id(page.demo, joytag_ui.TAB_INDEX_ELEM_ID)


def test_button_lands_after_deepbooru_and_is_wired_to_every_image():
    page = img2img_page("a prompt")
    button, tab_index = _our_button(page)
    assert tab_index.elem_id == joytag_ui.TAB_INDEX_ELEM_ID and not tab_index.visible
    dependency = _dependency(page.demo, button)
    assert dependency["js"] and joytag_ui.JS_ARGS_FUNCTION in dependency["js"]
    assert dependency["inputs"] == [tab_index._id, page.prompt._id, *(image._id for image in page.images)]
    assert dependency["outputs"] == [page.prompt._id]
    assert [image.elem_id for image in page.images] == list(joytag_ui.IMAGE_ELEM_IDS)
    assert any(
        getattr(block, "elem_id", None) == "tagger_caption_panel" for block in page.demo.blocks.values()
    )


def test_tool_buttons_share_the_hosts_container():
    """A1111 (gradio 3): the row's ToolButtons, ours included, sit in one Form; Forge (gradio 4): in the row."""
    from modules.ui_components import ToolButton

    page = img2img_page()
    button, _ = _our_button(page)
    container = button.parent
    if GRADIO_MAJOR >= 4:
        assert container is page.tools_row
    else:
        assert isinstance(container, gr.components.Form) and container.parent is page.tools_row
    assert [child.elem_id for child in container.children if isinstance(child, ToolButton)] == [
        "paste", "img2img_clear_prompt", "interrogate", "deepbooru", joytag_ui.BUTTON_ELEM_ID,
        "img2img_restore_progress",
    ]


def test_button_is_a_plain_tool_button_without_a_host(monkeypatch):
    monkeypatch.setitem(sys.modules, "modules.ui_components", None)  # the import fails: no host
    with gr.Blocks():
        button, _, _ = joytag_ui.create_button()
    assert type(button) is gr.Button
    assert (button.value, button.elem_id) == (joytag_ui.BUTTON_LABEL, joytag_ui.BUTTON_ELEM_ID)
    assert button.elem_classes == ["tool", "tagger_tool"]


def test_forge_canvas_backgrounds_are_the_inputs():
    page = img2img_page(forge_canvas=True)
    button, _ = _our_button(page)
    inputs = _dependency(page.demo, button)["inputs"][2:]
    blocks = [page.demo.blocks[block_id] for block_id in inputs]
    assert [("logical_image_background" in (block.elem_classes or [])) for block in blocks] == [True] * 4 + [
        False
    ]
    assert blocks[4].elem_id == "img_inpaint_base"


def test_rebuilt_ui_is_wired_again_and_hidden_dirs_hide_the_batch_panel():
    img2img_page()
    page = img2img_page(batch_dirs_visible=False)
    button, _ = _our_button(page)
    assert _dependency(page.demo, button)["inputs"][1] == page.prompt._id
    assert not any(
        getattr(block, "elem_id", None) == "tagger_caption_panel" for block in page.demo.blocks.values()
    )


def test_wire_checks_the_image_count():
    with gr.Blocks():
        button, tab_index, _ = joytag_ui.create_button()
        prompt = gr.Textbox()
        with pytest.raises(ValueError, match="expected 5 image components, got 1"):
            joytag_ui.wire(button, tab_index, prompt, [gr.Image()])


# ---------------------------------------------------------------------------- batch captions
def test_caption_to_report_writes_captions_and_lists_failures(options, reference, tmp_path):
    picture(31).save(tmp_path / "a.png")
    picture(32, (50, 80)).save(tmp_path / "b.jpg", quality=95)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "b.txt").write_text("old tag", encoding="utf-8")
    ticks = []

    def progress(value, desc=""):
        ticks.append((value, desc))

    text = joytag_ui.caption_to_report(str(tmp_path), False, "append", 0.4, progress)
    assert "2 captioned, 0 skipped (caption exists), 1 failed" in text
    assert "Failed broken.png: " in text and "Captioned: a.png, b.jpg" in text
    assert (tmp_path / "a.txt").read_text(encoding="utf-8").strip() == expected_text(
        reference, Image.open(tmp_path / "a.png")
    )
    assert (tmp_path / "b.txt").read_text(encoding="utf-8").startswith("old tag, ")
    assert not (tmp_path / "broken.txt").exists()
    assert sorted(value for value, _ in ticks) == [(1, 3), (2, 3), (3, 3)]
    assert any("broken.png" in desc for _, desc in ticks)

    rerun = joytag_ui.caption_to_report(str(tmp_path), False, "skip", 0.4)
    assert "0 captioned, 2 skipped" in rerun


def test_caption_panel_model_and_format_choices(options, checkpoint, tmp_path):
    import json
    import shutil

    other = tmp_path / "other-model"
    shutil.copytree(checkpoint, other)
    folder = tmp_path / "pics"
    folder.mkdir()
    picture(33).save(folder / "a.png")
    ticks = []
    text = joytag_ui.caption_to_report(str(folder), False, "skip", 0.4, lambda value, desc="": ticks.append(desc),
                                       model=str(other), output_format="jsonl")
    assert "1 captioned" in text and "Scores written to captions.jsonl" in text
    assert ticks and ticks[0].startswith("other-model 1/1")  # the chosen model, not the setting's
    assert json.loads((folder / "captions.jsonl").read_text(encoding="utf-8"))["image"] == "a.png"
    assert not (folder / "a.txt").exists()
    assert unload_interrogator() is True  # the panel's model stays cached like the button's


def test_caption_to_report_explains_bad_folders_without_loading(options, tmp_path):
    assert joytag_ui.caption_to_report("  ", False, "skip", 0.4) == "Enter the folder that holds the images."
    unload_interrogator()
    with pytest.warns(UserWarning, match="does not exist"):
        text = joytag_ui.caption_to_report(str(tmp_path / "missing"), False, "skip", 0.4)
    assert "missing" in text and "does not exist" in text
    assert unload_interrogator() is False  # the model was never loaded for a bad folder


def test_format_report_uses_relative_paths_and_caps_the_list(tmp_path):
    from lib_tagger.caption.sink import CaptionReport

    sub = tmp_path / "sub"
    report = CaptionReport(
        tmp_path,
        written=[sub / f"{i}.png" for i in range(23)],
        skipped=[tmp_path / "s.png"],
        failed=[(sub / "x.png", "not an image")],
        seconds=1.26,
        stopped=True,
    )
    assert joytag_ui.format_report(report).splitlines() == [
        f"Folder: {tmp_path}",
        "23 captioned, 1 skipped (caption exists), 1 failed in 1.3s (stopped early)",
        "Failed sub/x.png: not an image",
        "Captioned: " + ", ".join(f"sub/{i}.png" for i in range(20)) + " and 3 more",
    ]
    report.backups = [sub / "0.txt.bak", sub / "1.txt.bak"]
    assert "2 previous captions were kept beside them as .bak files (e.g. sub/0.txt.bak)" in joytag_ui.format_report(
        report).splitlines()
