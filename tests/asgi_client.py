"""A synchronous in-process HTTP client for an ASGI app, through httpx's ASGI transport.

Starlette's TestClient is not used: the forge profile's starlette 0.27 fails with httpx 0.28.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx


class Client:
    """``get`` / ``post`` straight into ``app`` (works with httpx 0.24 and 0.28)."""

    def __init__(self, app) -> None:
        self.app = app

    def _send(self, method: str, path: str, **kwargs) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                return await client.request(method, path, **kwargs)

        # asyncio.run on a worker thread: on the main thread it would leave no current event loop behind,
        # and gradio 4 Blocks built later in the session would get no queue locks.
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, send()).result()

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self._send("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return self._send("POST", path, **kwargs)
