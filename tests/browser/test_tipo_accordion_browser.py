"""The TIPO controls of the accordion in a real browser (host double, img2img tab): hidden for Dart,
shown for a TIPO model with Dart's identity control hidden, and "Upsample now" with a tiny local
TIPO model writing tags and a caption."""

from __future__ import annotations

import pytest

from tests.browser.pages import GRADIO_MAJOR

pytestmark = pytest.mark.browser

PROMPT = "1girl, solo"
NL = "A girl sits."
SEED = 9


@pytest.fixture(scope="module")
def tipo_folder(tmp_path_factory):
    from tests.factories.tipo_models import make_tipo_folder
    from tests.test_tipo_models import transitions

    return make_tipo_folder(tmp_path_factory.mktemp("models") / "TIPO-tiny", favour={",": 3.0},
                            transitions=transitions(), hidden_size=128)


@pytest.fixture(scope="module")
def webui():
    from tests.host_double.harness import start_webui

    return start_webui()


def expected(folder):
    from lib_tagger.settings import UpsampleSettings
    from lib_tagger.upsample import upsample_prompts

    settings = UpsampleSettings(enabled=True, model=str(folder), seed_mode="fixed", seed=SEED, max_new_tokens=48,
                                nl_prompt=NL, task="extend_both", length="very_short", nl_length="very_long")
    return upsample_prompts([PROMPT], settings, seeds=[SEED], width=512, height=512)[0]


def choose(page, elem_id: str, value: str) -> None:
    box = page.locator(f"#{elem_id} input").first
    box.fill(value)
    box.press("Enter")


def test_tipo_controls_follow_the_model_and_upsample_now_writes_tags_and_caption(serve, screenshot, webui,
                                                                                  tipo_folder):
    page = serve(webui.demo, "#tagger_img2img_enabled", height=1100)
    page.locator("#img2img_prompt textarea").fill(PROMPT)
    page.locator("#tagger_img2img_enabled").get_by_text("Tagger: prompt upsampling").first.click()
    tipo_box = page.locator("#tagger_img2img_nl_prompt")
    identity = page.locator("#tagger_img2img_identity")
    assert identity.is_visible() and not tipo_box.is_visible()  # the default model is Dart v2 SFT

    choose(page, "tagger_img2img_model", "tipo-500m-ft")
    tipo_box.wait_for(state="visible")
    identity.wait_for(state="hidden")

    choose(page, "tagger_img2img_model", "dantaggen-delta-rev2")
    tipo_box.wait_for(state="hidden")
    assert not identity.is_visible()

    choose(page, "tagger_img2img_model", str(tipo_folder))
    tipo_box.wait_for(state="visible")
    tipo_box.locator("textarea").fill(NL)
    choose(page, "tagger_img2img_task", "extend_both")
    choose(page, "tagger_img2img_length", "very_short")
    choose(page, "tagger_img2img_nl_length", "very_long")
    page.locator("#tagger_img2img_seed_mode label", has_text="fixed").click()
    page.locator("#tagger_img2img_seed input").first.fill(str(SEED))
    tokens = page.locator("#tagger_img2img_max_new_tokens input[type=number]").first
    tokens.fill("48")
    tokens.press("Enter")
    for elem_id, value in (("task", "extend_both"), ("length", "very_short"), ("nl_length", "very_long")):
        assert page.locator(f"#tagger_img2img_{elem_id} input").first.input_value() == value
    page.locator("#tagger_img2img_preview_button").click()
    page.wait_for_function(
        "document.querySelector('#tagger_img2img_preview textarea').value.length > 0", timeout=60_000
    )
    preview = page.locator("#tagger_img2img_preview textarea").input_value()
    assert not preview.startswith("Tagger error"), preview
    want = expected(tipo_folder)
    assert preview == want.prompt and preview.endswith(want.nl_text) and want.nl_text.startswith(NL)
    details = page.locator("#tagger_img2img_last_result textarea").input_value()
    assert "#0 text: " + want.nl_text in details
    screenshot(page, f"tipo-accordion-{GRADIO_MAJOR}.png", start="#img2img_prompt",
               end="#tagger_img2img_last_result")
