"""Test double of the WebUI's ``modules`` package (only what the extension touches)."""
