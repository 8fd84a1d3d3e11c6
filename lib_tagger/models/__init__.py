"""Known models, their files on disk or on the hub, and the cache of loaded models."""
