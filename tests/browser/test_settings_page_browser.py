"""Our section of the Settings page in a real browser, each option built as the host builds it
(tests/host_double/modules/ui_settings.py): every text box is tall enough for its text."""

from __future__ import annotations

import pytest

from tests.browser.pages import GRADIO_MAJOR

pytestmark = pytest.mark.browser


def test_every_text_setting_shows_its_whole_default(serve, screenshot, webui):  # webui: our options
    from modules import ui_settings

    demo, components = ui_settings.section_page("tagger")
    page = serve(demo, "#txt2img_prompt", width=1100, height=1400)  # the WebUI opens on txt2img
    page.locator("#tabs .tab-nav button", has_text="Settings").first.click()
    page.locator("#settings .tab-nav button", has_text="Tagger").first.click()
    page.locator("#setting_tagger_joytag_exclude textarea").wait_for(state="visible")
    boxes = [key for key, component in components.items() if component.__class__.__name__ == "Textbox"]
    assert "tagger_joytag_exclude" in boxes
    screenshot(page, f"settings-joytag-{GRADIO_MAJOR}.png", start="#setting_tagger_joytag_threshold",
               end="#setting_tagger_joytag_always_add")
    for key in boxes:
        cut = page.evaluate(
            "id => { const t = document.querySelector('#' + id + ' textarea'); "
            "return t ? t.scrollHeight - t.clientHeight : 0; }", f"setting_{key}")
        assert cut <= 1, f"{key}: {cut}px of its text are cut off"
