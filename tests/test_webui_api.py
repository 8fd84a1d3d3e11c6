"""The HTTP side: ``alwayson_scripts`` args (positional and one dict of named settings) and the
``POST /tagger/v1/upsample`` route."""

from __future__ import annotations

import pytest

from tests.asgi_client import Client
from tests.host_double.harness import RecordingPipeline


def api_args(webui, tab: str, alwayson: dict) -> list:
    from modules.api import api

    runner = webui.tabs[tab].runner
    return api.init_script_args(alwayson, api.init_default_script_args(runner), runner)


def test_default_args_come_from_calling_ui_again_and_are_disabled(webui, pipeline):
    args = api_args(webui, "txt2img", {})
    processed, _ = webui.run("txt2img", script_args=args, prompt="1girl", seed=1)
    assert processed.images[0].prompt == "1girl"
    assert pipeline.calls == []


def test_positional_args_in_field_order_short_list_keeps_defaults(webui, pipeline):
    args = api_args(webui, "txt2img", {"TAGGER": {"args": [True, "dantaggen-beta", "short"]}})
    processed, _ = webui.run("txt2img", script_args=args, prompt="1girl", seed=4)
    used = pipeline.calls[0]["settings"]
    assert (used.model, used.length, used.rating, used.timing) == ("dantaggen-beta", "short", "auto", "per_image")
    assert processed.images[0].prompt == "1girl, tag_4"


def test_one_dict_of_named_settings(webui, pipeline):
    args = api_args(webui, "img2img", {"tagger": {"args": [{"length": "very_short", "seed_mode": "fixed",
                                                            "seed": 9, "top_k": 20}]}})
    processed, _ = webui.run("img2img", script_args=args, prompt="1girl", seed=4, batch_size=2)
    used = pipeline.calls[0]["settings"]
    assert used.enabled and used.length == "very_short" and used.top_k == 20
    assert [img.prompt for img in processed.images] == ["1girl, tag_9", "1girl, tag_10"]


def test_a_named_dict_with_an_unknown_key_is_reported_not_run(webui, pipeline, capsys):
    args = api_args(webui, "txt2img", {"tagger": {"args": [{"lenght": "short"}]}})
    processed, _ = webui.run("txt2img", script_args=args, prompt="1girl", seed=4)
    assert processed.images[0].prompt == "1girl"
    assert "unknown setting(s): lenght" in capsys.readouterr().err


@pytest.fixture
def client(webui):
    return Client(webui.app)


def test_route_returns_prompt_tags_input_and_timings(client, pipeline):
    response = client.post("/tagger/v1/upsample", json={"prompt": "1girl", "settings": {"length": "short"},
                                                         "width": 832, "height": 1216, "seed": 5})
    assert response.status_code == 200, response.text
    assert response.json() == {"prompt": "1girl, tag_5", "original": "1girl", "new_tags": ["tag_5"],
                               "model_input": "<1girl>", "seed": 5, "timings": {"total": 0.01}, "nl_text": ""}
    call = pipeline.calls[0]
    assert call["size"] == (832, 1216) and call["settings"].length == "short" and call["settings"].enabled


def test_route_gives_tags_and_nl_text_apart_and_takes_tipo_settings(client, pipeline):
    settings = {"model": "tipo-500m-ft", "nl_prompt": "A girl in the rain.", "task": "extend_both",
                "nl_length": "short", "nl_position": "new_line"}
    response = client.post("/tagger/v1/upsample", json={"prompt": "1girl", "settings": settings, "seed": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["new_tags"], body["nl_text"]) == (["tag_5"], "A girl in the rain.")
    sent = pipeline.calls[0]["settings"]
    assert (sent.nl_prompt, sent.task, sent.nl_length, sent.nl_position) == tuple(settings.values())[1:]
    bad = client.post("/tagger/v1/upsample", json={"prompt": "1girl", "settings": {"task": "dance"}})
    assert bad.status_code == 422 and "task" in bad.json()["detail"]


def test_route_random_seed_when_minus_one(client, pipeline):
    response = client.post("/tagger/v1/upsample", json={"prompt": "1girl"})
    assert response.status_code == 200
    assert 0 <= response.json()["seed"] < 2**32
    assert pipeline.calls[0]["seeds"] == [response.json()["seed"]]


@pytest.mark.parametrize(("body", "status", "needle"), [
    ({"prompt": "x", "settings": {"length": "huge"}}, 422, "length"),
    ({"prompt": "x", "settings": {"colour": 1}}, 422, "unknown setting(s): colour"),
    ({"prompt": "x", "width": 0}, 422, "width"),
    ({"settings": {}}, 422, "prompt"),
])
def test_route_rejects_bad_input_with_a_clear_4xx(client, pipeline, body, status, needle):
    response = client.post("/tagger/v1/upsample", json=body)
    assert response.status_code == status
    assert needle in response.text


def test_route_unknown_model_is_404_and_names_it(client):
    response = client.post("/tagger/v1/upsample", json={"prompt": "x", "settings": {"model": "no-such-model"}})
    assert response.status_code == 404
    assert "no-such-model" in response.json()["detail"]


def test_route_missing_model_path_is_404(client):
    response = client.post("/tagger/v1/upsample", json={"prompt": "x", "settings": {"model": "gone/model.gguf"}})
    assert response.status_code == 404
    assert "'gone/model.gguf' is not a known model" in response.json()["detail"]


def test_route_backend_crash_is_500_with_the_reason(client, monkeypatch, capsys):
    from tagger_webui import script

    monkeypatch.setattr(script, "upsample", RecordingPipeline(RuntimeError("CUDA out of memory")))
    response = client.post("/tagger/v1/upsample", json={"prompt": "x"})
    assert response.status_code == 500
    assert "CUDA out of memory" in response.json()["detail"]
    assert "Tagger: API upsampling failed" in capsys.readouterr().err


def test_route_works_without_the_gradio_demo(tmp_path):
    from fastapi import FastAPI

    from tagger_webui import api

    app = FastAPI()
    api.register_routes(None, app)  # --nowebui: demo is None
    assert api.ROUTE in {route.path for route in app.routes}


def test_app_start_registers_our_route_and_joytags(webui):
    paths = {route.path for route in webui.app.routes}
    assert {"/tagger/v1/upsample", "/tagger/v1/interrogate", "/tagger/v1/unload"} <= paths


def test_route_gguf_file_without_llama_cpp_is_4xx_naming_what_to_install(client, monkeypatch, tmp_path, capsys):
    import sys

    from tagger_webui import settings_page
    from tests.factories.gguf_models import write_llama_gguf

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # not importable, as when it is not installed
    monkeypatch.setattr(settings_page, "models_dir", lambda: str(tmp_path))  # a file the API may name
    gguf = write_llama_gguf(tmp_path / "beta.gguf")
    response = client.post("/tagger/v1/upsample", json={"prompt": "1girl", "settings": {"model": str(gguf)}})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "needs llama-cpp-python" in detail and "pip install llama-cpp-python" in detail
    assert "Traceback" not in capsys.readouterr().err
