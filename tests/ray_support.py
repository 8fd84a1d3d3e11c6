"""A model actor for the Ray tests that dies once: imported by the Ray workers (the repo is on their path)."""

from __future__ import annotations

import os
from pathlib import Path

from lib_tagger.caption.ray_engine import TagWorker

#: The marker file (made when the actor dies) and the call it dies on, from the test's environment.
MARKER = "TAGGER_TEST_DIE_MARKER"
DIE_ON_CALL = "TAGGER_TEST_DIE_ON_CALL"


class DiesOnce(TagWorker):
    """The real worker, except that its Nth batch kills the process the first time any actor gets there."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls = 0

    def __call__(self, batch):
        self.calls += 1
        marker = Path(os.environ[MARKER])
        if self.calls == int(os.environ[DIE_ON_CALL]) and not marker.exists():
            marker.write_text(f"died in pid {os.getpid()} on call {self.calls}\n")
            os._exit(1)  # like an out-of-memory kill: no exception, no clean-up
        return super().__call__(batch)
