"""The one cache policy: one model at a time, closed when replaced or unloaded, hooks before a load."""

from __future__ import annotations

import logging

from lib_tagger.models.cache import ModelCache


class Model:
    def __init__(self, name, events, fail_close=False):
        self.name, self.events, self.fail_close, self.loaded = name, events, fail_close, True

    def close(self):
        self.events.append(f"close {self.name}")
        self.loaded = False
        if self.fail_close:
            raise RuntimeError("driver hiccup")


def test_one_model_at_a_time_and_hooks_before_each_load(caplog):
    events = []
    cache = ModelCache(before_load=lambda: events.append("free"))
    first = cache.get("a", lambda: Model("a", events), label="model a")
    assert cache.get("a", lambda: Model("again", events)) is first  # the same key reuses it
    second = cache.get("b", lambda: Model("b", events, fail_close=True))
    assert events == ["free", "close a", "free"] and cache.loaded_labels() == ["b"]
    with caplog.at_level(logging.WARNING):
        assert cache.unload() is True  # a failing close is logged, never raised
    assert "driver hiccup" in caplog.text and not second.loaded
    assert cache.unload() is False and cache.loaded_labels() == []


def test_a_closed_model_is_loaded_again():
    events = []
    cache = ModelCache()
    first = cache.get("a", lambda: Model("a", events))
    first.close()
    assert cache.get("a", lambda: Model("a2", events)).name == "a2"
