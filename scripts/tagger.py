"""Loaded by the WebUI: exposes the Script class and registers the extension's callbacks.

Only ``TaggerScript`` may be a Script subclass in this namespace (the host registers every one it
finds here). Nothing heavy is imported: models load on first use.
"""

from tagger_webui import register_callbacks
from tagger_webui.script import TaggerScript

__all__ = ["TaggerScript"]

register_callbacks()

# --- JoyTag (tagger_webui.joytag_ui / joytag_api) registers its callbacks here -------------------
