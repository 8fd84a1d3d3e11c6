"""HTTP route ``POST /tagger/v1/upsample``: upsample one prompt without generating an image.

Registered from ``script_callbacks.on_app_started`` (works with ``--nowebui``, where ``demo`` is
None). The models work under pydantic 1 and 2.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pydantic
from pydantic import BaseModel, Field

from lib_tagger.settings import SEED_MAX

ROUTE = "/tagger/v1/upsample"
PYDANTIC_V2 = pydantic.VERSION.startswith("2")


class UpsampleRequest(BaseModel):
    prompt: str = Field(..., description="The prompt to upsample (A1111 prompt syntax)")
    settings: dict[str, Any] = Field(default_factory=dict, description="Named settings (UpsampleSettings fields)")
    width: int = Field(1024, gt=0, le=16384)
    height: int = Field(1024, gt=0, le=16384)
    seed: int = Field(-1, ge=-1, le=SEED_MAX, description="-1: random")


class UpsampleResponse(BaseModel):
    if PYDANTIC_V2:  # "model_input" is ours, not pydantic's namespace
        model_config = pydantic.ConfigDict(protected_namespaces=())

    prompt: str
    original: str
    new_tags: list[str]
    model_input: str
    seed: int
    timings: dict[str, float]
    nl_text: str = Field("", description="Natural-language text added to the prompt (TIPO), apart from the tags")


def status_for(exc: Exception) -> int:
    """4xx for what the caller can fix (a path it may not name, unknown model, missing or corrupt files, bad
    values)."""
    from lib_tagger.generate.base import ModelLoadError
    from lib_tagger.settings import SettingsError

    from .remote import ModelNotAllowed

    if isinstance(exc, ModelNotAllowed):
        return 403
    if isinstance(exc, KeyError | FileNotFoundError):
        return 404
    if isinstance(exc, SettingsError | ModelLoadError | ValueError):
        return 422
    return 500


def check_text(name: str, text: str) -> None:
    """SettingsError unless ``text`` is valid Unicode (JSON can carry a lone surrogate such as ``\\ud800``)."""
    from lib_tagger.settings import SettingsError

    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SettingsError(f"{name}: not valid Unicode (a lone surrogate at character {exc.start})") from None


def upsample_endpoint(request: UpsampleRequest) -> UpsampleResponse:
    """Handle one request; errors become HTTP errors whose detail names the problem, not the server's folders."""
    from fastapi import HTTPException

    from lib_tagger.settings import UpsampleSettings

    from . import host, remote
    from .infotext import error_text
    from .script import upsample

    try:
        check_text("prompt", request.prompt)
        settings = UpsampleSettings.from_dict({**request.settings, "enabled": True})
        check_text("ban_tags", settings.ban_tags)
        remote.check_model(settings.model)
        seed = request.seed if request.seed >= 0 else random.randrange(2**32 - 1)
        with host.gpu_lock():
            result = upsample([request.prompt], settings, [seed], request.width, request.height)[0]
    except Exception as exc:
        status = status_for(exc)
        if status == 500:
            host.report(f"Tagger: API upsampling failed: {error_text(exc)}")
        raise HTTPException(status_code=status, detail=f"tagger: {remote.public_detail(exc)}") from None
    return UpsampleResponse(prompt=result.prompt, original=result.original, new_tags=list(result.new_tags),
                            model_input=result.model_input, seed=result.seed,
                            timings={k: float(v) for k, v in result.timings.items()}, nl_text=result.nl_text)


def register_routes(demo: Any, app: Any, dependencies: Sequence[Any] = ()) -> None:
    """Add our route to the FastAPI app (``demo`` may be None); ``dependencies`` guard it (the host's auth)."""
    from .api_route import add_route

    add_route(app, ROUTE, upsample_endpoint, dependencies=dependencies, methods=["POST"],
              response_model=UpsampleResponse, tags=["tagger"], summary="Upsample a prompt with a tag model")
