"""The WebUI adapter: the Script, its UI, settings page, infotext, HTTP API and X/Y/Z axes.

Importing this package imports neither torch nor the WebUI's ``modules``. The callbacks import
their module when the host first calls them, so that loading the extension stays cheap.
"""

from __future__ import annotations

from typing import Any


def _ui_settings() -> None:
    from . import settings_page

    settings_page.register_options()


def _infotext_pasted(infotext: str, params: dict[str, Any]) -> None:
    from . import infotext as infotext_module

    infotext_module.on_infotext_pasted(infotext, params)


def _app_started(demo: Any, app: Any) -> None:
    from . import api, xyz

    api.register_routes(demo, app)
    xyz.register_axes()


def _before_ui() -> None:
    from . import xyz

    xyz.register_axes()


def register_callbacks() -> None:
    """Register every host callback of the extension (called once by ``scripts/tagger.py``)."""
    from modules import script_callbacks

    script_callbacks.on_ui_settings(_ui_settings)
    script_callbacks.on_infotext_pasted(_infotext_pasted)
    script_callbacks.on_app_started(_app_started)
    script_callbacks.on_before_ui(_before_ui)
