"""HTTP routes for JoyTag: ``POST /tagger/v1/interrogate`` and ``POST /tagger/v1/unload``.

Register with ``joytag_api.register(app)`` from ``script_callbacks.on_app_started``. The models work
with pydantic 1 (A1111) and pydantic 2 (Forge).
"""

import base64
import binascii
import io
import logging
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel, Field

from tagger_webui.joytag_ui import JoyTagService, get_service

log = logging.getLogger(__name__)

INTERROGATE_PATH = "/tagger/v1/interrogate"
UNLOAD_PATH = "/tagger/v1/unload"


class InterrogateRequest(BaseModel):
    """An image to tag and optional overrides of the JoyTag settings."""

    image: str = Field(..., description="The image file (PNG, JPEG, WebP, ...) as base64, or a data: URL")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Overrides of the WebUI's JoyTag settings: threshold, exclude, always_add, top_k, "
        "replace_underscores, escape_brackets, sort, weighted, identity_first",
    )
    precision: str | None = Field(
        default=None, description="On a CPU: fp32, int8 (faster, scores within 0.03) or bf16; default: the setting"
    )


class TagScore(BaseModel):
    """One kept tag in the model's spelling, with its score (1.0 for always-add tags)."""

    tag: str
    score: float


class InterrogateResponse(BaseModel):
    """The kept tags in output order and the prompt text they make."""

    caption: str
    tags: list[TagScore]


class UnloadResponse(BaseModel):
    """The models that were loaded and are now freed."""

    unloaded: list[str]


def decode_image(data: str) -> Any:
    """A PIL image from base64 (a ``data:...;base64,`` prefix is allowed); 400 errors name the field."""
    from PIL import Image

    payload = data.strip()
    if payload.startswith("data:"):
        payload = payload.partition(",")[2]
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(status_code=400, detail="image: not valid base64") from None
    if not raw:
        raise HTTPException(status_code=400, detail="image: empty")
    try:
        image = Image.open(io.BytesIO(raw))
        image.load()
    except Exception as exc:  # Pillow raises many types for bad files (incl. decompression bombs)
        raise HTTPException(status_code=400, detail=f"image: not a readable image ({exc})") from None
    return image


def _options(service: JoyTagService, overrides: dict[str, Any]) -> Any:
    from lib_tagger.joytag.postprocess import JoyTagOptions, OptionsError

    base = service.settings().options
    try:
        return JoyTagOptions.from_dict(
            {**{item.name: getattr(base, item.name) for item in fields(base)}, **overrides}
        )
    except (OptionsError, TypeError) as exc:
        raise HTTPException(status_code=422, detail=f"options: {exc}") from None


def _model_error(exc: Exception) -> HTTPException:
    """The HTTP error for a failed interrogation, with the status ``/tagger/v1/upsample`` uses.

    404: model files missing (the detail names them and the folder to put them in); 422: an unreadable
    model file or a bad setting (the detail names the file or the setting); 500: anything else (also logged
    with its traceback).
    """
    from .api import status_for
    from .infotext import error_text

    status = status_for(exc)
    if status == 500:
        log.error("JoyTag interrogation failed", exc_info=exc)
    return HTTPException(status_code=status, detail=f"tagger: JoyTag: {error_text(exc, limit=None)}")


def register(
    app: Any, service: JoyTagService | None = None, dependencies: Sequence[Any] | None = None
) -> None:
    """Add the JoyTag routes to the FastAPI ``app``; ``dependencies`` (e.g. the host's auth) guard them."""

    def current() -> JoyTagService:
        return service or get_service()

    def interrogate(request: InterrogateRequest) -> InterrogateResponse:
        image = decode_image(request.image)
        try:
            options = _options(current(), request.options)
            selected, caption = current().tag(image, options, precision=request.precision)
        except HTTPException:
            raise
        except Exception as exc:  # model missing, corrupt, out of memory: say so, keep the server up
            raise _model_error(exc) from None
        return InterrogateResponse(
            caption=caption, tags=[TagScore(tag=tag, score=score) for tag, score in selected]
        )

    def unload() -> UnloadResponse:
        return UnloadResponse(unloaded=current().unload())

    extra = {"dependencies": list(dependencies)} if dependencies else {}
    app.add_api_route(
        INTERROGATE_PATH,
        interrogate,
        methods=["POST"],
        response_model=InterrogateResponse,
        summary="Tag an image with JoyTag",
        **extra,
    )
    app.add_api_route(
        UNLOAD_PATH,
        unload,
        methods=["POST"],
        response_model=UnloadResponse,
        summary="Free JoyTag and the tag models (RAM and VRAM)",
        **extra,
    )
