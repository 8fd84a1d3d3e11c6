"""``--api-auth`` guards our routes as it guards the host's own, and without ``--api`` they do not exist."""

from __future__ import annotations

import base64

import pytest

from tests.asgi_client import Client
from tests.host_double.harness import restore_cmd_opts, start_webui

OUR_ROUTES = (("/tagger/v1/upsample", {"prompt": "1girl"}), ("/tagger/v1/interrogate", {"image": "AAAA"}),
              ("/tagger/v1/unload", None))


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def started(**cmd_opts):
    """The double started with these flags; the flags are put back at once (the routes keep their guard)."""
    try:
        return start_webui(**cmd_opts)
    finally:
        restore_cmd_opts()


@pytest.fixture(scope="module")
def guarded():
    return Client(started(api_auth="alice:s3cret,bob:hunter2").app)


def test_the_double_reproduces_the_hosts_guard(guarded):
    assert guarded.get("/sdapi/v1/progress").status_code == 401
    assert guarded.get("/sdapi/v1/progress", headers=basic("alice", "s3cret")).status_code == 200


@pytest.mark.parametrize(("path", "body"), OUR_ROUTES)
def test_our_routes_answer_401_without_a_login(guarded, pipeline, path, body):
    response = guarded.post(path, json=body)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Basic"
    assert pipeline.calls == []


@pytest.mark.parametrize(("path", "body"), OUR_ROUTES)
@pytest.mark.parametrize("login", [("alice", "wrong"), ("mallory", "s3cret"), ("alice", "s3cret\u00e9")])
def test_our_routes_answer_401_to_a_wrong_login(guarded, pipeline, path, body, login):
    assert guarded.post(path, json=body, headers=basic(*login)).status_code == 401
    assert pipeline.calls == []


def test_each_listed_login_opens_our_routes(guarded, pipeline):
    response = guarded.post("/tagger/v1/upsample", json={"prompt": "1girl", "seed": 3},
                            headers=basic("bob", "hunter2"))
    assert response.status_code == 200, response.text
    assert response.json()["prompt"] == "1girl, tag_3"
    bad_image = guarded.post("/tagger/v1/interrogate", json={"image": "AAAA"}, headers=basic("alice", "s3cret"))
    assert bad_image.status_code == 400  # past the guard: the image itself is refused
    assert guarded.post("/tagger/v1/unload", headers=basic("alice", "s3cret")).status_code == 200


def test_without_api_auth_the_routes_are_open_like_the_hosts(webui, pipeline):
    client = Client(webui.app)
    assert client.get("/sdapi/v1/progress").status_code == 200
    assert client.post("/tagger/v1/upsample", json={"prompt": "1girl", "seed": 1}).status_code == 200


def test_without_api_the_routes_do_not_exist():
    webui = started(api=False)
    paths = {getattr(route, "path", "") for route in webui.app.routes}
    assert not {path for path in paths if path.startswith(("/tagger/", "/sdapi/"))}


def test_nowebui_serves_the_routes():
    webui = started(api=False, nowebui=True)
    paths = {getattr(route, "path", "") for route in webui.app.routes}
    assert {"/tagger/v1/upsample", "/tagger/v1/interrogate", "/tagger/v1/unload"} <= paths
