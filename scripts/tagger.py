"""Loaded by the WebUI: exposes the Script class and registers the extension's callbacks.

Only ``TaggerScript`` may be a Script subclass in this namespace (the host registers every one it
finds here). Nothing heavy is imported: models load on first use.
"""

from tagger_webui import register_callbacks
from tagger_webui.script import TaggerScript

__all__ = ["TaggerScript"]

register_callbacks()

# JoyTag's img2img button, batch panel and routes are registered by register_callbacks() too
# (see the JoyTag section of tagger_webui/__init__.py).
