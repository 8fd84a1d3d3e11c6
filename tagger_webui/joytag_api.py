"""HTTP routes for interrogation: ``POST /tagger/v1/interrogate``, ``GET /tagger/v1/interrogators`` and
``POST /tagger/v1/unload``.

Register with ``joytag_api.register(app)`` from ``script_callbacks.on_app_started``. The models work
with pydantic 1 (A1111) and pydantic 2 (Forge). The request's ``model`` picks the interrogator by its
registry name (or a hub repo / folder); ``options`` are :class:`TagOptions` fields.
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

from lib_tagger.interrogate.postprocess import option_names
from lib_tagger.interrogate.specs import INTERROGATORS
from tagger_webui.interrogate_service import InterrogateService, get_service

log = logging.getLogger(__name__)

INTERROGATE_PATH = "/tagger/v1/interrogate"
UNLOAD_PATH = "/tagger/v1/unload"
INTERROGATORS_PATH = "/tagger/v1/interrogators"


class InterrogateRequest(BaseModel):
    """An image to tag, the interrogator, and optional overrides of the tag settings."""

    image: str = Field(..., description="The image file (PNG, JPEG, WebP, ...) as base64, or a data: URL")
    model: str | None = Field(
        None,
        description=f"The interrogator: {', '.join(INTERROGATORS)} (or its hub repo), or a folder in the models "
        "folder; default: the WebUI's setting",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Overrides of the WebUI's tag settings: " + ", ".join(option_names())
        + " (category_thresholds: {\"character\": 0.85}; mcut: [\"general\", \"character\"])",
    )
    precision: str | None = Field(
        default=None, description="On a CPU: fp32, int8 (faster, scores within 0.03) or bf16; default: the setting"
    )


class TagScore(BaseModel):
    """One kept tag in the model's spelling, with its score (1.0 for always-add tags)."""

    tag: str
    score: float


class InterrogateResponse(BaseModel):
    """The kept tags in output order, the prompt text they make, and the ratings (WD v3 models)."""

    caption: str
    tags: list[TagScore]
    model: str = ""
    rating: str | None = None
    ratings: dict[str, float] = Field(default_factory=dict)


class InterrogatorInfo(BaseModel):
    """One interrogator: its registry name, hub repo, family, and whether it is chosen / loaded."""

    name: str
    repo: str
    family: str
    architecture: str
    description: str
    selected: bool
    loaded: bool


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
    except Image.DecompressionBombError:
        raise HTTPException(status_code=400, detail=f"image: more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels, "
                            "refused as a possible decompression bomb") from None
    except Exception:  # Pillow raises many types for bad files; its messages carry object addresses
        raise HTTPException(status_code=400, detail="image: not a readable image file (PNG, JPEG, WebP, ...), "
                            "or a truncated one") from None
    return image


def _options(service: InterrogateService, overrides: dict[str, Any]) -> Any:
    from lib_tagger.interrogate.postprocess import OptionsError, TagOptions

    base = service.settings().options
    try:
        return TagOptions.from_dict({**{item.name: getattr(base, item.name) for item in fields(base)}, **overrides})
    except (OptionsError, TypeError) as exc:
        raise HTTPException(status_code=422, detail=f"options: {exc}") from None


def _model_error(exc: Exception, name: str) -> HTTPException:
    """The HTTP error for a failed interrogation, with the status ``/tagger/v1/upsample`` uses.

    404: model files missing (the detail names them and the folder to put them in); 422: an unreadable
    model file or a bad setting (the detail names the file or the setting); 500: anything else (also logged
    with its traceback).
    """
    from .api import status_for
    from .remote import public_detail

    status = status_for(exc)
    if status == 500:
        log.error("interrogation failed", exc_info=exc)
    return HTTPException(status_code=status, detail=f"tagger: {name}: {public_detail(exc)}")


def register(
    app: Any, service: InterrogateService | None = None, dependencies: Sequence[Any] | None = None
) -> None:
    """Add the interrogation routes to the FastAPI ``app``; ``dependencies`` (e.g. the host's auth) guard them."""

    def current() -> InterrogateService:
        return service or get_service()

    def interrogate(request: InterrogateRequest) -> InterrogateResponse:
        from . import remote
        from .interrogate_service import display_model

        image = decode_image(request.image)
        name = "interrogator"  # until the settings are read
        try:
            model = remote.check_interrogator(request.model) if request.model else None
            name = display_model(request.model or current().settings().model)
            options = _options(current(), request.options)
            result = current().tag(image, options, model=model, precision=request.precision)
        except HTTPException:
            raise
        except Exception as exc:  # model missing, corrupt, out of memory: say so, keep the server up
            raise _model_error(exc, name) from None
        return InterrogateResponse(
            caption=result.caption, tags=[TagScore(tag=tag, score=score) for tag, score in result.tags],
            model=name, rating=result.rating, ratings=result.ratings,
        )

    def interrogators() -> list[InterrogatorInfo]:
        return [InterrogatorInfo(**row) for row in current().interrogators()]

    def unload() -> UnloadResponse:
        return UnloadResponse(unloaded=current().unload())

    from .api_route import add_route

    deps = dependencies or ()
    add_route(app, INTERROGATE_PATH, interrogate, dependencies=deps, methods=["POST"],
              response_model=InterrogateResponse, summary="Tag an image with an interrogator (JoyTag, WD v3)")
    add_route(app, INTERROGATORS_PATH, interrogators, dependencies=deps, methods=["GET"],
              response_model=list[InterrogatorInfo],
              summary="The interrogators, the one the settings choose and the one loaded")
    add_route(app, UNLOAD_PATH, unload, dependencies=deps, methods=["POST"], response_model=UnloadResponse,
              summary="Free the interrogator and the tag models (RAM and VRAM)")
