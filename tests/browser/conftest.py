"""Browser fixtures: Debian chromium driven by Playwright against gradio pages served on 127.0.0.1.

Every request that leaves the test server (fonts, CDNs) is aborted, so pages load offline and fast.
The WebUI loads ``javascript/*.js`` and ``style.css`` itself; here ``serve`` adds them (and the host's
tool-button rule, and a stand-in for the host's own javascript: ``host_ui.js``) to each page, as the host
would.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.browser.pages import HOST_CSS

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = ROOT / "artifacts"
HOST_JS = Path(__file__).with_name("host_ui.js")  # the host's own javascript, as far as we depend on it
DOC_IMAGES = ROOT / "docs" / "images"


@pytest.fixture(scope="module")
def browser():
    """One headless chromium per test module (skipped, with the reason, when it cannot run)."""
    if not CHROMIUM.exists():
        pytest.skip(f"Debian chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def webui():
    """The host double with the extension loaded, its Blocks queued as the WebUI queues it (gradio's
    warning toasts need the queue)."""
    from tests.host_double.harness import start_webui

    webui = start_webui()
    webui.demo.queue()
    return webui


@pytest.fixture(scope="module")
def dart_folder(tmp_path_factory):
    """A tiny random-weight Dart v2 model folder."""
    from tests.factories.torch_models import make_dart_folder

    return make_dart_folder(tmp_path_factory.mktemp("models") / "dart-tiny", seed=0)


@pytest.fixture
def serve(browser):
    """``serve(demo, ready)`` launches the Blocks ``demo`` locally and returns a Playwright page showing it,
    once the element matching the CSS selector ``ready`` is there."""
    demos, contexts = [], []

    def open_page(demo, ready: str, width: int = 1100, height: int = 760):
        _, url, _ = demo.launch(
            server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, share=False, show_error=True
        )
        demos.append(demo)
        origin = url.rstrip("/")
        context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.route(
            "**/*",
            lambda route: route.continue_()
            if route.request.url.startswith((origin, "data:", "blob:"))
            else route.abort(),
        )
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector(ready)
        page.add_style_tag(content=HOST_CSS + (ROOT / "style.css").read_text(encoding="utf-8"))
        page.add_script_tag(path=str(HOST_JS))
        page.add_script_tag(path=str(ROOT / "javascript" / "tagger.js"))
        page.evaluate("hostUiLoaded()")
        return page

    yield open_page
    for context in contexts:
        context.close()
    for demo in demos:
        server = getattr(demo, "server", None)
        if server is not None:  # do not wait for a queued event the closed page will never collect
            server.force_exit = True
        demo.close()


@pytest.fixture
def screenshot():
    """``screenshot(page, name, start=None, end=None)``: a PNG in ``artifacts/``, copied to ``docs/images/``
    for the README; ``start``/``end`` (CSS selectors) crop it to the band from one element to another."""

    def take(page, name: str, start: str | None = None, end: str | None = None) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        DOC_IMAGES.mkdir(parents=True, exist_ok=True)
        target = ARTIFACTS / name
        clip = None
        if start or end:
            page.evaluate("window.scrollTo(0, 0)")
            top = page.locator(start).first.bounding_box()["y"] - 12 if start else 0
            bottom_box = page.locator(end or start).first.bounding_box()
            bottom = bottom_box["y"] + bottom_box["height"] + 12
            clip = {
                "x": 0,
                "y": max(0, top),
                "width": page.viewport_size["width"],
                "height": bottom - max(0, top),
            }
        page.screenshot(path=str(target), full_page=True, clip=clip)
        shutil.copyfile(target, DOC_IMAGES / name)
        return target

    return take
