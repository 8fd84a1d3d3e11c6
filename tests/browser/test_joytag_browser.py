"""JoyTag in a real browser: the img2img button on the selected sub-tab, and the batch caption panel."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lib_tagger.interrogate.joytag.loader import JoyTagger
from lib_tagger.interrogate.loading import predict_images, unload_interrogator
from lib_tagger.interrogate.postprocess import TagOptions, format_tags, select_tags
from tagger_webui import interrogate_service, joytag_ui
from tests.browser.pages import COUNTER_IS, GRADIO_MAJOR, batch_panel_page, img2img_page
from tests.factories.joytag_model import save_joytag_checkpoint
from tests.host_double.harness import count_tokens

pytestmark = pytest.mark.browser

TOP_K = 6


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_joytag_checkpoint(tmp_path_factory.mktemp("joytag"), num_blocks=1, tiny=True, seed=7)


@pytest.fixture(scope="module")
def reference(checkpoint):
    tagger = JoyTagger.load(str(checkpoint), device="cpu")
    yield tagger
    tagger.close()


@pytest.fixture
def options(checkpoint):
    values = {
        "tagger_joytag_model": str(checkpoint),
        "tagger_joytag_device": "cpu",
        "tagger_joytag_top_k": TOP_K,
    }
    interrogate_service.configure(lambda key, default: values.get(key, default))
    yield values
    interrogate_service.configure()
    unload_interrogator()


def drawing(path, seed: int, size=(160, 120)):
    """A small picture with shapes, saved as PNG."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", size, tuple(int(v) for v in rng.integers(120, 255, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, size[0] - 20)), int(rng.integers(0, size[1] - 20))
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        draw.ellipse([x0, y0, x0 + int(rng.integers(15, 60)), y0 + int(rng.integers(15, 60))], fill=colour)
    image.save(path)
    return path


def expected_caption(reference, path, **overrides) -> str:
    options = TagOptions(**{"top_k": TOP_K, **overrides})
    with Image.open(path) as image:
        scores = predict_images(reference, [image.convert("RGB")])[0]
    return format_tags(select_tags(scores, options), options)


def select_tab(page, name: str) -> None:
    page.locator("#mode_img2img .tab-nav > button", has_text=name).first.click()


def upload(page, elem_id: str, path) -> None:
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))
    page.locator(f"#{elem_id} img, #{elem_id} canvas").first.wait_for(state="visible")


def prompt_value(page) -> str:
    return page.locator("#img2img_prompt textarea").input_value()


def wait_prompt_change(page, old: str) -> str:
    page.wait_for_function(
        "old => document.querySelector('#img2img_prompt textarea').value !== old", arg=old, timeout=20_000
    )
    return prompt_value(page)


def assert_right_after_deepbooru(page) -> None:
    """Our button is DeepBooru's next sibling in the same container, drawn right beside it, tool-button sized."""
    layout = page.evaluate(
        """id => {
            const ours = document.getElementById(id), deepbooru = document.getElementById('deepbooru');
            const box = element => element.getBoundingClientRect();
            return {sameParent: ours.parentElement === deepbooru.parentElement,
                    next: deepbooru.nextElementSibling === ours,
                    ours: box(ours).toJSON(), deepbooru: box(deepbooru).toJSON()};
        }""",
        joytag_ui.BUTTON_ELEM_ID,
    )
    assert layout["sameParent"] and layout["next"], layout
    ours, deepbooru = layout["ours"], layout["deepbooru"]
    assert 0 <= ours["left"] - deepbooru["right"] <= 16, layout  # the host's gap between tool buttons
    assert abs(ours["top"] - deepbooru["top"]) <= 2 and abs(ours["width"] - deepbooru["width"]) <= 2, layout


def test_joytag_button_fills_the_prompt_from_the_selected_tab(serve, screenshot, options, reference, checkpoint,
                                                              tmp_path):
    first, second = drawing(tmp_path / "first.png", 1), drawing(tmp_path / "second.png", 2, (120, 160))
    page = serve(img2img_page("1girl, solo, masterpiece").demo, f"#{joytag_ui.BUTTON_ELEM_ID}", height=470)

    button = page.locator(f"#{joytag_ui.BUTTON_ELEM_ID}")
    assert_right_after_deepbooru(page)
    title = f"document.querySelector('#{joytag_ui.BUTTON_ELEM_ID}').title"
    page.wait_for_function(f"{title}.startsWith('Interrogate with {checkpoint.name} ')")

    # tab 0: replace mode puts exactly the tags of the uploaded picture into the prompt box
    upload(page, "img2img_image", first)
    button.click()
    tags = wait_prompt_change(page, "1girl, solo, masterpiece")
    assert tags == expected_caption(reference, first)
    page.wait_for_function(COUNTER_IS, arg=count_tokens(tags))  # the host's token counter followed
    screenshot(page, f"joytag-button-{GRADIO_MAJOR}.png")

    # an empty sub-tab: a warning, the prompt stays as it is
    select_tab(page, "Sketch")
    button.click()
    toast = page.locator(".toast-body", has_text="no image in the 'Sketch' tab")
    toast.first.wait_for(state="visible")
    assert prompt_value(page) == tags

    # "Inpaint upload" (tab 4) in append mode: its own picture's tags that the prompt lacks go after it
    options["tagger_joytag_prompt_mode"] = "append"
    select_tab(page, "Inpaint upload")
    upload(page, "img_inpaint_base", second)
    caption = expected_caption(reference, second)
    first_tag = caption.split(", ")[0]
    typed = f"solo, {first_tag.replace(' ', '_')}"  # the user has one of them, spelt otherwise
    page.locator("#img2img_prompt textarea").fill(typed)
    button.click()
    appended = wait_prompt_change(page, typed)
    assert appended == f"{typed}, {caption.removeprefix(first_tag + ', ')}"
    page.wait_for_function(COUNTER_IS, arg=count_tokens(appended))

    # again: every tag is there already; the prompt stays, a warning says why
    button.click()
    page.locator(".toast-body", has_text="already has every tag").first.wait_for(state="visible")
    assert prompt_value(page) == appended


def test_batch_panel_captions_a_folder_and_reports(serve, screenshot, options, reference, tmp_path):
    folder = tmp_path / "dataset"
    folder.mkdir()
    drawing(folder / "one.png", 3)
    drawing(folder / "two.png", 4)
    (folder / "three.png").write_bytes(b"this is not a png")
    demo, _ = batch_panel_page()
    page = serve(demo, "#tagger_caption_panel", height=640)

    page.locator("#tagger_caption_panel").get_by_text("Caption a folder (JoyTag, WD v3)").first.click()
    for radio, name in (("tagger_caption_existing", "Existing captions"), ("tagger_caption_format", "Write")):
        labels = page.locator(f"#{radio} label")
        labels.first.wait_for(state="visible")
        tops = {round(labels.nth(n).bounding_box()["y"]) for n in range(labels.count())}
        assert labels.count() == 3 and len(tops) == 1, f"the '{name}' choices wrap: rows at {tops}"
    page.locator("#tagger_caption_folder input, #tagger_caption_folder textarea").first.fill(str(folder))
    page.locator("#tagger_caption_existing label", has_text="overwrite").click()
    page.locator("#tagger_caption_run").click()
    page.wait_for_function(
        "document.querySelector('#tagger_caption_report textarea').value.includes('captioned')",
        timeout=30_000,
    )
    report = page.locator("#tagger_caption_report textarea").input_value()
    assert "2 captioned, 0 skipped (caption exists), 1 failed" in report
    assert "Failed three.png: " in report
    for name in ("one", "two"):
        caption = (folder / f"{name}.txt").read_text(encoding="utf-8").strip()
        assert caption == expected_caption(reference, folder / f"{name}.png")
    assert not (folder / "three.txt").exists()
    screenshot(page, f"joytag-batch-{GRADIO_MAJOR}.png")


def test_batch_panel_shows_the_threshold_saved_in_settings_without_a_ui_rebuild(serve, options):
    options["tagger_joytag_threshold"] = 0.4
    demo, _ = batch_panel_page()
    options["tagger_joytag_threshold"] = 0.97  # saved in Settings after the UI was built
    page = serve(demo, "#tagger_caption_panel", height=640)
    page.locator("#tagger_caption_panel").get_by_text("Caption a folder (JoyTag, WD v3)").first.click()
    threshold = page.locator("#tagger_caption_threshold input[type=number]").first
    page.wait_for_function("el => el.value === '0.97'", arg=threshold.element_handle())
