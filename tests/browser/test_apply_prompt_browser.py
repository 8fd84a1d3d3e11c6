"""'Apply to prompt' in a real browser, on the host double's txt2img/img2img page with the host's accordion
and token-counter javascript (tests/browser/host_ui.js): the previewed prompt goes into the prompt box,
the accordion is unticked (and closes), the token counter follows, and the header's undo puts it all back."""

from __future__ import annotations

import pytest

from tests.browser.pages import COUNTER_IS, GRADIO_MAJOR

pytestmark = pytest.mark.browser

PROMPT = "1girl, solo"
SEED = 5


def checked(page, selector: str) -> bool:
    return page.evaluate(f"document.querySelector({selector!r}).checked")


def test_apply_to_prompt_then_undo(serve, screenshot, webui, dart_folder):
    from tests.host_double.harness import count_tokens

    page = serve(webui.demo, "#tagger_img2img_enabled", height=900)
    prompt_box = page.locator("#img2img_prompt textarea")
    prompt_box.fill(PROMPT)
    page.locator("#tagger_img2img_enabled").get_by_text("Tagger: prompt upsampling").first.click()
    page.wait_for_function("document.querySelector('#tagger_img2img_enabled-checkbox input').checked")

    model = page.locator("#tagger_img2img_model input").first
    model.fill(str(dart_folder))
    model.press("Enter")
    page.locator("#tagger_img2img_seed_mode label", has_text="fixed").click()
    page.locator("#tagger_img2img_seed input").first.fill(str(SEED))
    page.locator("#tagger_img2img_preview_button").click()
    page.wait_for_function(
        "document.querySelector('#tagger_img2img_preview textarea').value.length > 0", timeout=30_000
    )
    preview = page.locator("#tagger_img2img_preview textarea").input_value()
    assert preview.startswith(PROMPT + ", "), preview

    undo = page.locator("#tagger_img2img_undo_apply")
    assert not undo.is_visible()
    page.locator("#tagger_img2img_apply_button").click()
    page.wait_for_function("p => document.querySelector('#img2img_prompt textarea').value === p", arg=preview)
    page.wait_for_function("!document.querySelector('#tagger_img2img_enabled-checkbox input').checked")
    assert not checked(page, "#tagger_img2img_enabled-visible-checkbox")
    undo.wait_for(state="visible")  # in the accordion's header, which has closed
    assert not page.locator("#tagger_img2img_preview_button").is_visible()
    page.wait_for_function(COUNTER_IS, arg=count_tokens(preview))  # the host's counter followed
    screenshot(page, f"apply-to-prompt-{GRADIO_MAJOR}.png", start="#img2img_token_counter",
               end="#tagger_img2img_enabled")

    undo.click()
    page.wait_for_function("p => document.querySelector('#img2img_prompt textarea').value === p", arg=PROMPT)
    page.wait_for_function("document.querySelector('#tagger_img2img_enabled-checkbox input').checked")
    assert checked(page, "#tagger_img2img_enabled-visible-checkbox")
    page.locator("#tagger_img2img_preview_button").wait_for(state="visible")  # open again
    undo.wait_for(state="hidden")
    page.wait_for_function(COUNTER_IS, arg=count_tokens(PROMPT))


def test_apply_refuses_a_stale_preview(serve, webui, dart_folder):
    page = serve(webui.demo, "#tagger_txt2img_enabled", height=900)
    page.locator("#txt2img_prompt textarea").fill(PROMPT)
    page.locator("#tagger_txt2img_enabled").get_by_text("Tagger: prompt upsampling").first.click()
    model = page.locator("#tagger_txt2img_model input").first
    model.fill(str(dart_folder))
    model.press("Enter")
    page.locator("#tagger_txt2img_apply_button").click()  # nothing previewed yet
    page.locator(".toast-body", has_text="press 'Upsample now' first").first.wait_for(state="visible")
    page.locator("#tagger_txt2img_preview_button").click()
    page.wait_for_function(
        "document.querySelector('#tagger_txt2img_preview textarea').value.length > 0", timeout=30_000
    )
    page.locator("#txt2img_prompt textarea").fill("1boy")  # edited after the preview
    page.locator("#tagger_txt2img_apply_button").click()
    page.locator(".toast-body", has_text="the prompt changed").first.wait_for(state="visible")
    assert page.locator("#txt2img_prompt textarea").input_value() == "1boy"
    assert checked(page, "#tagger_txt2img_enabled-checkbox input")
