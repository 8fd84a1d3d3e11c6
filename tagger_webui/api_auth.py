"""The host's ``--api-auth`` check (HTTP Basic against ``user:password`` pairs) as a FastAPI dependency.

No ``from __future__ import annotations`` here: FastAPI reads the dependency's signature at runtime.
"""

from secrets import compare_digest
from typing import Any


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
