"""The JoyTag HTTP routes, called in-process through httpx's ASGI transport, on a tiny random checkpoint.

(Starlette's TestClient is not used: the forge profile's starlette 0.27 fails with httpx 0.28.)"""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

fastapi = pytest.importorskip("fastapi")
import asyncio  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import httpx  # noqa: E402
from fastapi import Depends, FastAPI, HTTPException  # noqa: E402

from lib_tagger.joytag.loader import JoyTagger, unload_joytagger  # noqa: E402
from lib_tagger.joytag.postprocess import JoyTagOptions, format_tags, select_tags  # noqa: E402
from tagger_webui import joytag_api  # noqa: E402
from tagger_webui.joytag_ui import JoyTagService, JoyTagSettings  # noqa: E402
from tests.factories.joytag_model import save_joytag_checkpoint  # noqa: E402

SETTINGS_OPTIONS = JoyTagOptions(top_k=6)


class Client:
    """A synchronous in-process client for an ASGI app (works with httpx 0.24 and 0.28)."""

    def __init__(self, app):
        self.app = app

    def _send(self, method: str, path: str, **kwargs) -> httpx.Response:
        async def send():
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


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_joytag_checkpoint(tmp_path_factory.mktemp("joytag"), num_blocks=1, tiny=True, seed=5)


@pytest.fixture(scope="module")
def reference(checkpoint):
    tagger = JoyTagger.load(str(checkpoint), device="cpu")
    yield tagger
    tagger.close()


@pytest.fixture
def settings(checkpoint):
    holder = {"value": JoyTagSettings(source=str(checkpoint), device="cpu", options=SETTINGS_OPTIONS)}
    yield holder
    unload_joytagger()


@pytest.fixture
def client(settings):
    app = FastAPI()
    joytag_api.register(app, service=JoyTagService(lambda: settings["value"]))
    return Client(app)


def png_b64(seed: int, mode: str = "RGB") -> tuple[str, Image.Image]:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (40, 72, 3), dtype=np.uint8), "RGB").convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii"), Image.open(io.BytesIO(buffer.getvalue()))


def expected(reference, image, options: JoyTagOptions):
    selected = select_tags(reference.tag_images([image])[0], options)
    return selected, format_tags(selected, options)


def test_interrogate_returns_scored_tags_and_caption(client, reference):
    data, image = png_b64(1)
    response = client.post(joytag_api.INTERROGATE_PATH, json={"image": data})
    assert response.status_code == 200, response.text
    body = response.json()
    selected, caption = expected(reference, image, SETTINGS_OPTIONS)
    assert body["caption"] == caption
    assert [item["tag"] for item in body["tags"]] == [tag for tag, _ in selected]
    assert [item["score"] for item in body["tags"]] == pytest.approx(
        [score for _, score in selected], abs=1e-6
    )
    assert len(body["tags"]) == 6


def test_data_url_and_transparent_images_are_accepted(client, reference):
    data, image = png_b64(2, "RGBA")
    response = client.post(joytag_api.INTERROGATE_PATH, json={"image": "data:image/png;base64," + data})
    assert response.status_code == 200, response.text
    assert response.json()["caption"] == expected(reference, image, SETTINGS_OPTIONS)[1]


def test_options_override_the_settings(client, reference):
    data, image = png_b64(3)
    overrides = {"top_k": 2, "weighted": True, "always_add": ["best quality"], "exclude": []}
    response = client.post(joytag_api.INTERROGATE_PATH, json={"image": data, "options": overrides})
    assert response.status_code == 200, response.text
    body = response.json()
    options = JoyTagOptions(top_k=2, weighted=True, always_add=("best quality",), exclude=())
    assert body["caption"] == expected(reference, image, options)[1]
    assert body["caption"].startswith("best quality, (") and body["tags"][0] == {
        "tag": "best_quality",
        "score": 1.0,
    }
    assert len(body["tags"]) == 3


@pytest.mark.parametrize(
    ("payload", "status", "detail"),
    [
        ({"image": "not base64 at all!"}, 400, "image: not valid base64"),
        ({"image": ""}, 400, "image: empty"),
        ({"image": base64.b64encode(b"GIF89a but not really").decode()}, 400, "image: not a readable image"),
        ({"image": "PNG", "options": {"threshold": 2}}, 400, "image:"),
    ],
)
def test_bad_images_get_400_naming_the_field(client, payload, status, detail):
    response = client.post(joytag_api.INTERROGATE_PATH, json=payload)
    assert response.status_code == status
    assert response.json()["detail"].startswith(detail)


@pytest.mark.parametrize(
    ("options", "detail"),
    [
        ({"threshold": 2}, "threshold"),
        ({"colour": "red"}, "colour"),
        ({"sort": "random"}, "sort"),
        ({"top_k": -1}, "top_k"),
    ],
)
def test_bad_options_get_422_naming_the_field(client, options, detail):
    data, _ = png_b64(4)
    response = client.post(joytag_api.INTERROGATE_PATH, json={"image": data, "options": options})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("options:") and detail in response.json()["detail"]


def test_missing_image_field_is_a_validation_error(client):
    response = client.post(joytag_api.INTERROGATE_PATH, json={"options": {}})
    assert response.status_code == 422
    assert "image" in response.text


def test_missing_model_is_a_clear_500(client, settings, tmp_path):
    settings["value"] = JoyTagSettings(source=str(tmp_path / "no-model-here"), device="cpu")
    data, _ = png_b64(5)
    response = client.post(joytag_api.INTERROGATE_PATH, json={"image": data})
    assert response.status_code == 500
    assert (
        response.json()["detail"].startswith("JoyTag failed:")
        and "no-model-here" in response.json()["detail"]
    )


def test_unload_frees_joytag(client):
    from lib_tagger.models.manager import get_manager

    get_manager().unload()  # a tag model another test left loaded is not this test's business
    data, _ = png_b64(6)
    assert client.post(joytag_api.INTERROGATE_PATH, json={"image": data}).status_code == 200
    first = client.post(joytag_api.UNLOAD_PATH)
    assert first.status_code == 200 and first.json() == {"unloaded": ["joytag"]}
    assert client.post(joytag_api.UNLOAD_PATH).json() == {"unloaded": []}


def test_dependencies_guard_the_routes(settings):
    def deny():
        raise HTTPException(status_code=401, detail="auth needed")

    app = FastAPI()
    joytag_api.register(app, service=JoyTagService(lambda: settings["value"]), dependencies=[Depends(deny)])
    guarded = Client(app)
    data, _ = png_b64(7)
    assert guarded.post(joytag_api.INTERROGATE_PATH, json={"image": data}).status_code == 401
    assert guarded.post(joytag_api.UNLOAD_PATH).status_code == 401


def test_openapi_schema_lists_the_routes(client):
    schema = client.get("/openapi.json").json()
    assert {joytag_api.INTERROGATE_PATH, joytag_api.UNLOAD_PATH} <= set(schema["paths"])


def test_unload_also_frees_the_tag_models(client, tmp_path):
    from lib_tagger.models.manager import get_manager
    from tests.factories.torch_models import make_dart_folder

    manager = get_manager()
    manager.unload()
    folder = make_dart_folder(tmp_path / "dart-tiny", seed=1)
    with manager.use(str(folder)):
        pass
    loaded = manager.loaded_names()
    assert len(loaded) == 1 and manager.keep_loaded
    response = client.post(joytag_api.UNLOAD_PATH)
    assert response.status_code == 200 and response.json() == {"unloaded": loaded}
    assert manager.loaded_names() == []
