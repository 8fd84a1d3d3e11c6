"""How our routes are added: :func:`add_route` (validation errors that always serialize) and the host's
``--api-auth`` check (HTTP Basic against ``user:password`` pairs) as a FastAPI dependency.

No ``from __future__ import annotations`` here: FastAPI reads the dependency's signature at runtime.
"""

from collections.abc import Sequence
from secrets import compare_digest
from typing import Any


def add_route(app: Any, path: str, endpoint: Any, *, dependencies: Sequence[Any] = (), **kwargs: Any) -> None:
    """``app.add_api_route`` with ``dependencies``, whose invalid requests get a 422 listing each field's problem.

    FastAPI's own 422 echoes the rejected input; when that is ``1e400`` or ``Infinity`` (valid for Python's JSON
    reader) the response cannot be written and the client gets a 500. Ours leaves the input out.
    """
    app.router.add_api_route(path, endpoint, dependencies=list(dependencies), route_class_override=_route_class(),
                             **kwargs)


_ROUTE_CLASS: list = []


def _route_class() -> type:
    if _ROUTE_CLASS:
        return _ROUTE_CLASS[0]
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from fastapi.routing import APIRoute

    class PlainErrorsRoute(APIRoute):
        def get_route_handler(self):
            handler = super().get_route_handler()

            async def handle(request):
                try:
                    return await handler(request)
                except RequestValidationError as exc:
                    detail = [{"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg", "")),
                               "type": str(error.get("type", ""))} for error in exc.errors()]
                    return JSONResponse(status_code=422, content={"detail": detail})

            return handle

    _ROUTE_CLASS.append(PlainErrorsRoute)
    return PlainErrorsRoute


def parse_credentials(spec: str) -> dict[str, str]:
    """``"user:pass,user2:pass2"`` → ``{user: pass}`` (a password may hold ``:``)."""
    pairs = {}
    for item in spec.split(","):
        user, _, password = item.strip().partition(":")
        if user:
            pairs[user] = password
    return pairs


def basic_auth_dependency(spec: str) -> Any:
    """``Depends(check)``: 401 with ``WWW-Authenticate: Basic`` unless the request logs in as one of ``spec``."""
    from fastapi import Depends, HTTPException
    from fastapi.security import HTTPBasic

    credentials = parse_credentials(spec)

    def check(login=Depends(HTTPBasic())) -> bool:  # noqa: B008 - FastAPI's dependency form
        expected = credentials.get(login.username)
        # compare_digest on bytes: a non-ASCII password must fail the login, not raise
        if expected is not None and compare_digest(login.password.encode("utf-8"), expected.encode("utf-8")):
            return True
        raise HTTPException(status_code=401, detail="Incorrect username or password",
                            headers={"WWW-Authenticate": "Basic"})

    return Depends(check)
