"""The routes driven as a hostile or careless client would drive them: what a client may load, what the errors
tell it, values that used to be 500s, concurrent unloads, and offline calls that must write nothing. Real tiny
models live in a models folder of the test's own."""

from __future__ import annotations

import base64
import io
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.asgi_client import Client
from tests.factories.gguf_models import tiny_spec, write_llama_gguf
from tests.factories.torch_models import make_dart_folder

UPSAMPLE = "/tagger/v1/upsample"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A models folder: dart-v2-moe-sft and dantaggen-delta-rev2 (tiny, in their registry folders), and a
    folder of the user's own."""
    root = tmp_path_factory.mktemp("webui-models") / "tagger"
    make_dart_folder(root / "p1atdev--dart-v2-moe-sft", model_type="mixtral", max_position_embeddings=256)
    make_dart_folder(root / "my-dart", seed=3, max_position_embeddings=256)
    write_llama_gguf(root / "KBlueLeaf--DanTagGen-delta-rev2" / "ggml-model-Q8_0.gguf", tiny_spec(tensor_type="q8_0"))
    return root


@pytest.fixture
def client(webui, models, monkeypatch, one_torch_thread):
    from modules import shared

    from lib_tagger.models.manager import get_manager

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    saved = dict(shared.opts.data)
    shared.opts.data.update({"tagger_models_dir": str(models), "tagger_device": "cpu"})
    yield Client(webui.app)
    shared.opts.data.clear()
    shared.opts.data.update(saved)
    get_manager().unload()


def post(client, body: str | dict, path: str = UPSAMPLE):
    """POST a raw JSON text (Python's json writes Infinity, NaN and lone surrogates as given)."""
    text = body if isinstance(body, str) else json.dumps(body)
    return client.post(path, content=text.encode("utf-8", "surrogatepass"),
                       headers={"Content-Type": "application/json"})


def upsample(client, model: str, **settings):
    return post(client, {"prompt": "1girl, solo", "seed": 3, "settings": {"model": model, "max_new_tokens": 8,
                                                                           **settings}})


# ---------------------------------------------------------------------------- 7: what a client may load
def test_registry_names_and_paths_inside_the_models_folder_load(client, models):
    assert upsample(client, "dart-v2-moe-sft").status_code == 200
    assert upsample(client, "my-dart").status_code == 200  # a relative path is read from the models folder
    assert upsample(client, str(models / "my-dart")).status_code == 200
    assert upsample(client, "dantaggen-delta-rev2").status_code == 200


def test_paths_outside_the_models_folder_are_refused_alike_whether_they_exist_or_not(client, models, tmp_path):
    outside = tmp_path / "elsewhere.gguf"
    write_llama_gguf(outside, tiny_spec())
    probes = ["/etc", "/etc/passwd", "/etc/no-such-file", "/no/such/model.gguf", str(outside), "../../..",
              "my-dart/../../..", os.path.expanduser("~"), str(models.parent)]
    answers = {(r.status_code, r.json()["detail"]) for r in (upsample(client, probe) for probe in probes)}
    assert len(answers) == 1, answers
    ((status, detail),) = answers
    assert status == 403 and "inside the models folder" in detail


def test_names_that_are_nothing_inside_the_models_folder_are_404_without_a_server_path(client, models):
    for name in ("no-such-model", "sub/missing.gguf", "x" * 300, "a\x00b"):
        response = upsample(client, name)
        assert response.status_code == 404, (name, response.text)
        assert str(models) not in response.json()["detail"]


def test_the_setting_lets_the_api_load_any_path(client, tmp_path):
    from modules import shared

    outside = make_dart_folder(tmp_path / "outside-dart", max_position_embeddings=256)
    assert upsample(client, str(outside)).status_code == 403
    shared.opts.data["tagger_api_any_model_path"] = True
    assert upsample(client, str(outside)).status_code == 200


def test_errors_describe_the_problem_without_the_servers_folders(client, models):
    broken = models / "broken"
    broken.mkdir(exist_ok=True)
    (broken / "config.json").write_text('{"model_type": "secret-type"}')
    detail = upsample(client, "broken").json()["detail"]
    assert "<models folder>/broken" in detail and str(models) not in detail
    missing = upsample(client, "dart-v2-sft")  # in the registry, files not downloaded, offline
    assert missing.status_code == 404
    assert "put them in <models folder>/p1atdev--dart-v2-sft" in missing.json()["detail"]
    assert str(models) not in missing.text and os.path.expanduser("~") + "/" not in missing.text


def test_pillow_messages_with_object_addresses_stay_on_the_server(client):
    from PIL import Image

    for raw in (b"GIF89a not really", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40):
        response = post(client, {"image": base64.b64encode(raw).decode()}, "/tagger/v1/interrogate")
        assert response.status_code == 400
        assert "0x" not in response.text and "BytesIO" not in response.text
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    big = buffer.getvalue()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Image, "MAX_IMAGE_PIXELS", 0.4)  # a 1-pixel image is now a "bomb"
        response = post(client, {"image": base64.b64encode(big).decode()}, "/tagger/v1/interrogate")
    assert response.status_code == 400 and "decompression bomb" in response.text


def test_a_txt2img_job_over_http_may_not_name_other_paths(webui, client, tmp_path):
    outside = make_dart_folder(tmp_path / "outside-dart", max_position_embeddings=256)
    processed, _ = webui.run("txt2img", [{"model": str(outside), "max_new_tokens": 8}], prompt="1girl", seed=2,
                             is_api=True)
    assert processed.images[0].prompt == "1girl"  # untouched, the image generated
    error = processed.extra_generation_params["Tagger error"]
    assert "inside the models folder" in error and str(tmp_path) not in error
    allowed, _ = webui.run("txt2img", [{"model": "my-dart", "max_new_tokens": 8}], prompt="1girl", seed=2,
                           is_api=True)
    assert "Tagger error" not in allowed.extra_generation_params
    local, _ = webui.run("txt2img", [{"model": str(outside), "max_new_tokens": 8}], prompt="1girl", seed=2)
    assert "Tagger error" not in local.extra_generation_params  # the WebUI's own user may name any path


# ---------------------------------------------------------------------------- 8: 4xx, not 500
@pytest.mark.parametrize("body", [
    '{"prompt": "1girl", "settings": {"top_k": Infinity}}',
    '{"prompt": "1girl", "settings": {"top_k": "1e400"}}',
    '{"prompt": "1girl", "settings": {"max_new_tokens": -Infinity}}',
    '{"prompt": "1girl", "settings": {"max_new_tokens": 1e400}}',
    '{"prompt": "1girl", "settings": {"seed": "1e400", "seed_mode": "fixed"}}',
    '{"prompt": "1girl", "settings": {"seed": NaN}}',
    '{"prompt": "1girl", "seed": 18446744073709551616}',
    '{"prompt": "1girl", "seed": 1e400}',
    '{"prompt": "1girl \\ud800 solo"}',
    '{"prompt": "1girl", "settings": {"ban_tags": "\\udfff"}}',
])
def test_values_that_were_500s_are_422_and_nothing_runs(client, pipeline, body):
    response = post(client, body)
    assert response.status_code == 422, response.text
    assert pipeline.calls == []


def test_the_reported_ban_regex_answers_at_once_and_a_runaway_one_is_a_clear_422(client):
    from lib_tagger.generate.bans import MATCH_SECONDS

    started = time.monotonic()
    assert upsample(client, "dantaggen-delta-rev2", ban_tags="/^(.+)+!$/").status_code == 200
    response = upsample(client, "dantaggen-delta-rev2", ban_tags="long hair, /^(.|.)+!$/")
    assert response.status_code == 422 and "'/^(.|.)+!$/' did not finish" in response.json()["detail"]
    assert time.monotonic() - started < MATCH_SECONDS + 60  # minutes to hours before, on a loaded 2-core machine
    again = time.monotonic()
    assert upsample(client, "dantaggen-delta-rev2", ban_tags="/^(.|.)+!$/").status_code == 422
    assert time.monotonic() - again < 3.0  # refused at once the second time


def test_offline_with_the_models_folder_missing_writes_nothing(webui, client, tmp_path):
    from modules import shared

    missing = tmp_path / "no-models-yet"
    shared.opts.data["tagger_models_dir"] = str(missing)
    assert upsample(client, "dart-v2-sft").status_code == 404
    assert not missing.exists()


def test_unload_racing_interrogate_never_fails_a_call(tmp_path):
    from fastapi import FastAPI

    from lib_tagger.interrogate.loading import unload_interrogator
    from tagger_webui import joytag_api
    from tagger_webui.interrogate_service import InterrogateService, InterrogateSettings
    from tests.factories.joytag_model import save_joytag_checkpoint
    from tests.test_webui_joytag_api import png_b64

    checkpoint = save_joytag_checkpoint(tmp_path / "joytag", num_blocks=1, tiny=True, seed=5)
    app = FastAPI()
    joytag_api.register(app, service=InterrogateService(lambda: InterrogateSettings(model=str(checkpoint),
                                                                                   device="cpu")))
    data, _ = png_b64(1)

    def call(n: int) -> int:
        client = Client(app)
        if n % 3 == 2:
            return client.post(joytag_api.UNLOAD_PATH).status_code
        return client.post(joytag_api.INTERROGATE_PATH, json={"image": data}).status_code

    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            statuses = list(pool.map(call, range(30)))
    finally:
        unload_interrogator()
    assert statuses == [200] * 30
