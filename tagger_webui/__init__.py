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
    """Our routes exist where the host serves its API (``--api``, ``--nowebui``), behind its ``--api-auth``."""
    from . import host, xyz

    _joytag_ui()
    if host.api_enabled():
        from . import api, joytag_api

        dependencies = host.api_dependencies()
        api.register_routes(demo, app, dependencies)
        joytag_api.register(app, dependencies=dependencies)
    xyz.register_axes()


def _before_ui() -> None:
    from . import xyz

    xyz.register_axes()


# --- Interrogation (interrogate_service, joytag_ui, joytag_api): configured on first use, then its callbacks
_joytag_configured = False


def _joytag_ui() -> Any:
    """``joytag_ui``, with the interrogation service set up once with our options and the host's hooks.

    The service reads the options and the models folder at every use: a changed setting applies at the
    next click or API call, without a restart.
    """
    global _joytag_configured
    from . import host, interrogate_service, joytag_ui, settings_page

    if not _joytag_configured:
        interrogate_service.configure(options=settings_page.value, models_dir=settings_page.models_dir,
                                      free_memory=host.free_vram, gpu_lock=host.gpu_lock,
                                      device=settings_page.resolve_device)
        _joytag_configured = True
    return joytag_ui


def _after_component(component: Any, **kwargs: Any) -> None:
    _joytag_ui().on_after_component(component, **kwargs)


def register_callbacks() -> None:
    """Register every host callback of the extension (called once by ``scripts/tagger.py``)."""
    from . import host

    for kind, callback in (("ui_settings", _ui_settings), ("infotext_pasted", _infotext_pasted),
                           ("app_started", _app_started), ("before_ui", _before_ui),
                           ("after_component", _after_component)):
        host.register_callback(kind, callback, filename=__file__)
