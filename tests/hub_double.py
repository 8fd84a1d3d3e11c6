"""A local HTTP double of the Hugging Face hub's file-resolve endpoint, for download tests.

It answers ``HEAD``/``GET /{repo}/resolve/{revision}/{filename}`` with the headers
huggingface_hub reads (``X-Repo-Commit``, ``ETag``, ``Content-Length``) and 404 with
``X-Error-Code: EntryNotFound`` for unknown files, so the real ``hf_hub_download`` runs.
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class HubDouble:
    """Serve ``files[repo][filename] = bytes`` on 127.0.0.1; records the paths requested."""

    def __init__(self, files: dict[str, dict[str, bytes]]):
        self.files = files
        self.requests: list[tuple[str, str]] = []
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _lookup(self):
                path = unquote(self.path.split("?", 1)[0]).lstrip("/")
                double.requests.append((self.command, path))
                parts = path.split("/")
                if len(parts) < 5 or parts[2] != "resolve":
                    return None
                repo, filename = "/".join(parts[:2]), "/".join(parts[4:])
                return double.files.get(repo, {}).get(filename)

            def _headers(self, body: bytes | None):
                if body is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return False
                self.send_response(200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", '"' + hashlib.sha256(body).hexdigest() + '"')
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                return True

            def do_HEAD(self):
                self._headers(self._lookup())

            def do_GET(self):
                body = self._lookup()
                if self._headers(body):
                    self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HubDouble:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
