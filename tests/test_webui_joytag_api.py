"""The JoyTag HTTP routes, called in-process (tests/asgi_client.py), on a tiny random checkpoint."""

from __future__ import annotations

import base64
import io
import logging
import shutil

import numpy as np
import pytest
from PIL import Image

fastapi = pytest.importorskip("fastapi")
from fastapi import Depends, FastAPI, HTTPException  # noqa: E402

from lib_tagger.interrogate.joytag.loader import JoyTagger  # noqa: E402
from lib_tagger.interrogate.loading import predict_images, unload_interrogator  # noqa: E402
from lib_tagger.interrogate.postprocess import TagOptions, format_tags, select_tags  # noqa: E402
from tagger_webui import interrogate_service, joytag_api, joytag_ui  # noqa: E402
from tagger_webui.interrogate_service import (  # noqa: E402
    InterrogateService,
    InterrogateSettings,
    settings_from_options,
)
from tests.asgi_client import Client  # noqa: E402
from tests.factories.joytag_model import save_joytag_checkpoint  # noqa: E402

SETTINGS_OPTIONS = TagOptions(top_k=6)


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
    holder = {"value": InterrogateSettings(model=str(checkpoint), device="cpu", options=SETTINGS_OPTIONS)}
    yield holder
    unload_interrogator()


@pytest.fixture
def client(settings):
    app = FastAPI()
    joytag_api.register(app, service=InterrogateService(lambda: settings["value"]))
    return Client(app)


def png_b64(seed: int, mode: str = "RGB") -> tuple[str, Image.Image]:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (40, 72, 3), dtype=np.uint8), "RGB").convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii"), Image.open(io.BytesIO(buffer.getvalue()))


def expected(reference, image, options: TagOptions):
    selected = select_tags(predict_images(reference, [image])[0], options)
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
    options = TagOptions(top_k=2, weighted=True, always_add=("best quality",), exclude=())
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


def post_image(client, seed: int = 5):
    data, image = png_b64(seed)
    return client.post(joytag_api.INTERROGATE_PATH, json={"image": data}), image


def test_missing_model_folder_is_404_naming_it(client, settings, tmp_path):
    settings["value"] = InterrogateSettings(model=str(tmp_path / "no-model-here"), device="cpu")
    response, _ = post_image(client)
    assert response.status_code == 404
    detail = response.json()["detail"]
    missing = str(tmp_path / "no-model-here")
    assert detail == f"tagger: no-model-here: ModelFilesMissing: interrogator folder {missing} does not exist"


def test_folder_lacking_files_is_404_naming_the_files(client, settings, checkpoint, tmp_path):
    folder = tmp_path / "half"
    folder.mkdir()
    shutil.copy(checkpoint / "config.json", folder / "config.json")
    settings["value"] = InterrogateSettings(model=str(folder), device="cpu")
    response, _ = post_image(client)
    assert response.status_code == 404
    assert f"{folder} lacks model.safetensors, top_tags.txt" in response.json()["detail"]


def test_hub_files_not_downloaded_is_404_naming_files_and_folder(client, settings, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the hub is never asked
    settings["value"] = InterrogateSettings(model="fancyfeast/joytag", models_dir=str(tmp_path), device="cpu")
    response, _ = post_image(client)
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert "config.json, model.safetensors, top_tags.txt of fancyfeast/joytag" in detail
    assert f"put them in {tmp_path / 'fancyfeast--joytag'}" in detail


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("model.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json", "model.safetensors"),
        ("config.json", b"{\"class\": \"ViT\", ", "config.json"),
        ("top_tags.txt", b"only_one_tag\n", "top_tags.txt"),
    ],
)
def test_corrupt_model_file_is_422_naming_it(client, settings, checkpoint, tmp_path, name, content, says):
    folder = tmp_path / "corrupt"
    shutil.copytree(checkpoint, folder)
    (folder / name).write_bytes(content)
    settings["value"] = InterrogateSettings(model=str(folder), device="cpu")
    response, _ = post_image(client)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith("tagger: corrupt: JoyTagModelError: ") and str(folder / says) in detail


def test_bad_setting_is_422_naming_it(checkpoint):
    values = {"tagger_joytag_model": str(checkpoint), "tagger_joytag_threshold": 1.5}
    service = InterrogateService(lambda: settings_from_options(lambda key, default: values.get(key, default)))
    app = FastAPI()
    joytag_api.register(app, service=service)
    response, _ = post_image(Client(app))
    assert response.status_code == 422 and "threshold" in response.json()["detail"]


def test_other_failures_are_500_with_the_reason_and_logged(settings, checkpoint, caplog):
    def free_memory():
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    app = FastAPI()
    joytag_api.register(app, service=InterrogateService(lambda: settings["value"], free_memory))
    with caplog.at_level(logging.ERROR, logger=joytag_api.__name__):
        response, _ = post_image(Client(app))
    assert response.status_code == 500
    assert response.json()["detail"] == (f"tagger: {checkpoint.name}: RuntimeError: CUDA out of memory. "
                                         "Tried to allocate 2.00 GiB")
    assert any(record.exc_info for record in caplog.records)


# ---------------------------------------------------------------------------- inside the host double
@pytest.fixture(scope="module")
def host_app():
    """The host double's app, with the JoyTag service set up by the extension's own app_started callback."""
    import tagger_webui
    from tests.host_double.harness import start_webui

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tagger_webui, "_joytag_configured", False)  # other tests replaced the service
        yield start_webui().app
    interrogate_service.configure()


def test_models_folder_setting_applies_at_the_next_call(host_app, checkpoint, reference, tmp_path, monkeypatch):
    from modules import shared

    from tagger_webui import settings_page

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    first, second = tmp_path / "first", tmp_path / "second"
    shutil.copytree(checkpoint, first / "fancyfeast--joytag")
    client = Client(host_app)
    shared.opts.set("tagger_joytag_device", "cpu")
    try:
        shared.opts.set("tagger_models_dir", str(first))
        response, image = post_image(client, 8)
        assert response.status_code == 200, response.text
        assert response.json()["caption"] == expected(reference, image, TagOptions())[1]

        shared.opts.set("tagger_models_dir", f" {second} ")
        response, _ = post_image(client, 8)
        detail = response.json()["detail"]  # names the folder to fill, inside the models folder, not its path
        assert response.status_code == 404 and "put them in <models folder>/fancyfeast--joytag" in detail
        assert str(second) not in detail
        with pytest.warns(UserWarning, match=str(second)):
            joytag_ui.interrogate_to_prompt(0, "keep", image, None, None, None, None)

        shared.opts.set("tagger_models_dir", str(first))  # the button too follows the setting
        caption = expected(reference, image, TagOptions())[1]
        assert caption and joytag_ui.interrogate_to_prompt(0, "", image, None, None, None, None) == caption
    finally:
        for key in ("tagger_models_dir", "tagger_joytag_device"):
            shared.opts.set(key, shared.opts.get_default(key))
        assert settings_page.models_dir() == settings_page.host.default_models_dir()


def test_unload_frees_joytag(client, checkpoint):
    from lib_tagger.models.manager import get_manager

    get_manager().unload()  # a tag model another test left loaded is not this test's business
    data, _ = png_b64(6)
    assert client.post(joytag_api.INTERROGATE_PATH, json={"image": data}).status_code == 200
    first = client.post(joytag_api.UNLOAD_PATH)
    assert first.status_code == 200 and first.json() == {"unloaded": [checkpoint.name]}
    assert client.post(joytag_api.UNLOAD_PATH).json() == {"unloaded": []}


def test_dependencies_guard_the_routes(settings):
    def deny():
        raise HTTPException(status_code=401, detail="auth needed")

    app = FastAPI()
    joytag_api.register(app, service=InterrogateService(lambda: settings["value"]), dependencies=[Depends(deny)])
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


@pytest.fixture
def models_folder(tmp_path, monkeypatch):
    """The models folder is the test's folder: a request may name the folders made in it."""
    from tagger_webui import settings_page

    monkeypatch.setattr(settings_page, "models_dir", lambda: str(tmp_path))
    return tmp_path


def test_request_model_picks_another_interrogator_and_options_take_categories(client, checkpoint, models_folder):
    tmp_path = models_folder
    other = save_joytag_checkpoint(tmp_path / "other-joytag", num_blocks=1, tiny=True, seed=9)
    reference = JoyTagger.load(str(other), device="cpu")
    data, image = png_b64(3)
    overrides = {"threshold": 0.2, "category_thresholds": {"character": 0.9}, "mcut": ["general"], "top_k": 0}
    response = client.post(joytag_api.INTERROGATE_PATH, json={"image": data, "model": str(other),
                                                                "options": overrides})
    assert response.status_code == 200, response.text
    body = response.json()
    _, caption = expected(reference, image, TagOptions(**{**SETTINGS_OPTIONS.to_dict(), **overrides}))
    reference.close()
    assert body["caption"] == caption and body["model"] == "other-joytag"
    assert body["rating"] is None and body["ratings"] == {}
    listed = client.get(joytag_api.INTERROGATORS_PATH)
    assert listed.status_code == 200
    rows = {row["name"]: row for row in listed.json()}
    assert list(rows)[:6] == ["joytag", "wd-vit-tagger-v3", "wd-swinv2-tagger-v3", "wd-convnext-tagger-v3",
                              "wd-vit-large-tagger-v3", "wd-eva02-large-tagger-v3"]
    assert rows["wd-eva02-large-tagger-v3"]["repo"] == "SmilingWolf/wd-eva02-large-tagger-v3"
    assert rows[checkpoint.name]["selected"] and not rows["joytag"]["selected"]
    assert not any(row["loaded"] for row in rows.values())  # the request's model is loaded, not the setting's


def test_unknown_request_model_is_404_naming_the_known_ones(client):
    data, _ = png_b64(4)
    response = client.post(joytag_api.INTERROGATE_PATH, json={"image": data, "model": "wd-nope"})
    assert response.status_code == 404
    assert "unknown interrogator 'wd-nope'" in response.json()["detail"]
    bad = client.post(joytag_api.INTERROGATE_PATH, json={"image": data, "options": {"mcut": ["hair"]}})
    assert bad.status_code == 422 and "mcut" in bad.json()["detail"]


def test_a_folder_outside_the_models_folder_is_refused_like_any_other_path(client, models_folder, tmp_path_factory):
    outside = save_joytag_checkpoint(tmp_path_factory.mktemp("elsewhere") / "joytag", num_blocks=1, tiny=True)
    data, _ = png_b64(3)
    for model in (str(outside), str(outside.parent / "missing"), "../elsewhere"):
        response = client.post(joytag_api.INTERROGATE_PATH, json={"image": data, "model": model})
        assert response.status_code == 403, response.text
        assert str(outside.parent) not in response.text


def test_wd_model_returns_ratings(client, models_folder):
    tmp_path = models_folder
    pytest.importorskip("timm", reason="timm imports only in the forge profile")
    from tests.factories.wd_models import RATINGS, make_wd_folder

    folder = make_wd_folder(tmp_path / "wd-vit", "vit", seed=6)
    data, _ = png_b64(5)
    response = client.post(joytag_api.INTERROGATE_PATH, json={
        "image": data, "model": str(folder), "options": {"rating_tag": True, "threshold": 0.3}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert tuple(body["ratings"]) == RATINGS and body["rating"] == max(body["ratings"], key=body["ratings"].get)
    assert body["tags"][0]["tag"] == body["rating"] and body["model"] == "wd-vit"


def test_a_request_may_ask_for_a_cpu_precision(client, settings):
    from lib_tagger.generate.linear import int8_problem

    image, _ = png_b64(3)
    response = client.post(joytag_api.INTERROGATE_PATH, json={"image": image, "precision": "int8"})
    assert response.status_code == 200 and response.json()["tags"]
    from lib_tagger.interrogate import loading

    assert loading._cache._model.precision == ("int8" if int8_problem("cpu") is None else "fp32")
    bad = client.post(joytag_api.INTERROGATE_PATH, json={"image": image, "precision": "int4"})
    assert bad.status_code == 422 and "tagger_joytag_precision" in bad.json()["detail"]
