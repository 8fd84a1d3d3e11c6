"""Shared test set-up: the repository root on sys.path, so `lib_tagger`, `tagger_webui` and
`tests.factories` import the same way in every profile."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Tests never reach a model hub; a test that needs the hub serves a local double and says so.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="module")
def webui():
    """The host double with the extension loaded (tests/host_double/harness.py)."""
    from tests.host_double.harness import start_webui

    return start_webui()


@pytest.fixture
def pipeline(monkeypatch):
    """Replace the core pipeline behind the Script with a recording double (one tag per seed)."""
    from tagger_webui import script
    from tests.host_double.harness import RecordingPipeline

    fake = RecordingPipeline()
    monkeypatch.setattr(script, "upsample", fake)
    return fake


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models on a shared 2-core machine: thread hand-offs would cost more than the maths."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
