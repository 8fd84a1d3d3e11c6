"""The interrogator choice in a real browser: the Settings section (the model list and the new tag options),
and the 🏷️ button's title naming the model in use, following a changed setting; WD v3 through the button
where timm imports."""

from __future__ import annotations

import shutil

import pytest
from PIL import Image

from lib_tagger.interrogate.loading import load_interrogator, predict_images, unload_interrogator
from lib_tagger.interrogate.postprocess import TagOptions, describe
from lib_tagger.interrogate.specs import interrogator_names
from tagger_webui import interrogate_service, joytag_ui
from tests.browser.pages import GRADIO_MAJOR, img2img_page, settings_section_page
from tests.browser.test_joytag_browser import drawing, upload, wait_prompt_change
from tests.factories.joytag_model import save_joytag_checkpoint

pytestmark = pytest.mark.browser
TITLE = f"document.querySelector('#{joytag_ui.BUTTON_ELEM_ID}').title"


@pytest.fixture
def values():
    values: dict = {"tagger_joytag_device": "cpu", "tagger_joytag_top_k": 5}
    interrogate_service.configure(lambda key, default: values.get(key, default))
    yield values
    interrogate_service.configure()
    unload_interrogator()


def test_settings_list_the_interrogators_and_the_category_options(serve, screenshot):
    page = serve(settings_section_page(), "#setting_tagger_joytag_model", height=1900)
    model = page.locator("#setting_tagger_joytag_model")
    assert "Interrogator" in model.inner_text()
    mcut = page.locator("#setting_tagger_joytag_mcut label")
    assert [text.strip() for text in mcut.all_inner_texts()] == ["general", "character", "copyright", "artist",
                                                                  "meta"]
    assert page.locator("#setting_tagger_joytag_category_thresholds textarea, "
                        "#setting_tagger_joytag_category_thresholds input").count() == 1
    assert "rating" in page.locator("#setting_tagger_joytag_rating_tag").inner_text().lower()
    screenshot(page, f"interrogator-settings-{GRADIO_MAJOR}.png", "#setting_tagger_joytag_model",
               "#setting_tagger_joytag_batch_size")
    model.locator("input").first.click()
    options = page.locator("ul.options li, .options .item")
    options.first.wait_for(state="visible")
    assert [text.replace("✓", "").strip() for text in options.all_inner_texts()] == interrogator_names()
    screenshot(page, f"interrogator-list-{GRADIO_MAJOR}.png", "#setting_tagger_joytag_model",
               "#setting_tagger_joytag_threshold")


def test_button_title_follows_the_chosen_model(serve, values, tmp_path):
    first = save_joytag_checkpoint(tmp_path / "joytag-first", num_blocks=1, tiny=True, seed=1)
    second = tmp_path / "joytag-second"
    shutil.copytree(first, second)
    values["tagger_joytag_model"] = str(first)
    page = serve(img2img_page("1girl").demo, f"#{joytag_ui.BUTTON_ELEM_ID}", height=470)
    page.wait_for_function(f"{TITLE}.startsWith('Interrogate with joytag-first ')")
    values["tagger_joytag_model"] = str(second)  # the user picks another model in Settings
    upload(page, "img2img_image", drawing(tmp_path / "pic.png", 5))
    page.locator(f"#{joytag_ui.BUTTON_ELEM_ID}").click()
    wait_prompt_change(page, "1girl")
    page.locator(f"#{joytag_ui.BUTTON_ELEM_ID}").hover()
    page.wait_for_function(f"{TITLE}.startsWith('Interrogate with joytag-second ')")


def test_wd_tagger_through_the_button(serve, screenshot, values, tmp_path):
    pytest.importorskip("timm", reason="timm imports only in the forge profile")
    from tests.factories.wd_models import make_wd_folder

    folder = make_wd_folder(tmp_path / "wd-vit-tagger-v3", "vit", seed=8)
    values.update({"tagger_joytag_model": str(folder), "tagger_joytag_threshold": 0.3,
                   "tagger_joytag_rating_tag": True})
    picture = drawing(tmp_path / "pic.png", 6)
    page = serve(img2img_page("old prompt").demo, f"#{joytag_ui.BUTTON_ELEM_ID}", height=470)
    page.wait_for_function(f"{TITLE}.startsWith('Interrogate with wd-vit-tagger-v3 ')")
    upload(page, "img2img_image", picture)
    page.locator(f"#{joytag_ui.BUTTON_ELEM_ID}").click()
    tags = wait_prompt_change(page, "old prompt")
    reference = load_interrogator(str(folder), device="cpu")
    with Image.open(picture) as image:
        expected = describe(predict_images(reference, [image.convert("RGB")])[0],
                            TagOptions(threshold=0.3, rating_tag=True, top_k=5))
    reference.close()
    assert tags == expected.caption and tags.split(", ")[0] == expected.rating
    screenshot(page, f"wd-button-{GRADIO_MAJOR}.png")
