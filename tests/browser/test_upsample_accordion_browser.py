"""The upsampling accordion (tagger_webui/ui.py) in a real browser, mounted by the host double the way
the WebUI mounts it (img2img tab): open it, pick a tiny local Dart model, press "Upsample now", read
the result."""

from __future__ import annotations

import pytest

from tests.browser.pages import GRADIO_MAJOR

pytestmark = pytest.mark.browser

PROMPT = "1girl, solo"
SEED = 5


def expected_prompt(folder) -> str:
    """The same request through the core, outside the UI."""
    from lib_tagger.settings import UpsampleSettings
    from lib_tagger.upsample import upsample_prompts

    settings = UpsampleSettings(
        enabled=True, model=str(folder), seed_mode="fixed", seed=SEED, max_new_tokens=24
    )
    return upsample_prompts([PROMPT], settings, seeds=[SEED], width=512, height=512)[0].prompt


def test_upsample_now_fills_the_preview(serve, screenshot, webui, dart_folder):
    page = serve(webui.demo, "#tagger_img2img_enabled", height=900)
    page.locator("#img2img_prompt textarea").fill(PROMPT)
    page.locator("#tagger_img2img_enabled").get_by_text("Tagger: prompt upsampling").first.click()

    model = page.locator("#tagger_img2img_model input").first
    model.fill(str(dart_folder))
    model.press("Enter")
    page.locator("#tagger_img2img_seed_mode label", has_text="fixed").click()
    page.locator("#tagger_img2img_seed input").first.fill(str(SEED))
    tokens = page.locator("#tagger_img2img_max_new_tokens input[type=number]").first
    tokens.fill("24")
    tokens.press("Enter")
    page.locator("#tagger_img2img_preview_button").click()

    page.wait_for_function(
        "document.querySelector('#tagger_img2img_preview textarea').value.length > 0", timeout=30_000
    )
    preview = page.locator("#tagger_img2img_preview textarea").input_value()
    assert not preview.startswith("Tagger error"), preview
    assert preview.startswith(PROMPT + ", ") and preview == expected_prompt(dart_folder)
    details = page.locator("#tagger_img2img_last_result textarea").input_value()
    assert f"seed {SEED}" in details or str(SEED) in details
    screenshot(
        page,
        f"upsample-accordion-{GRADIO_MAJOR}.png",
        start="#img2img_prompt",
        end="#tagger_img2img_last_result",
    )
