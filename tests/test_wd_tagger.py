"""WD v3 taggers: config and tag-list parsing, pre-processing pinned on pixels, and — where timm imports
(the forge profile) — our whole path checked against the timm route of neggles' wdv3-timm on the same
random weights, strict loading, the hub layout and ratings."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from lib_tagger.interrogate.base import RATING  # noqa: E402
from lib_tagger.interrogate.loading import load_interrogator, predict_images  # noqa: E402
from lib_tagger.interrogate.postprocess import TagOptions, describe  # noqa: E402
from lib_tagger.interrogate.wd import (  # noqa: E402
    WDConfig,
    WDInput,
    WDModelError,
    WDTagger,
    prepare_image,
    read_selected_tags,
    to_tensor,
)
from tests.factories.wd_models import ARCHITECTURES, RATINGS, label_rows, write_selected_tags  # noqa: E402


def needs_timm():
    return pytest.importorskip("timm", reason="timm imports only in the forge profile (torchvision)")


# ---------------------------------------------------------------------------- no timm needed
def test_preprocessing_pinned_by_hand_computed_pixels():
    image = Image.new("RGB", (2, 1))
    image.putpixel((0, 0), (255, 0, 0))
    image.putpixel((1, 0), (0, 128, 255))
    spec = WDInput(size=2, crop_pct=1.0, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    tensor = to_tensor(prepare_image(image, spec), spec)
    # padded to 2x2 on white (row 1), scaled to [0, 1], (v - 0.5) / 0.5, channels B, G, R
    expected = np.array([
        [[-1.0, 1.0], [1.0, 1.0]],                   # blue: 0, 255 / white
        [[-1.0, 2 * 128 / 255 - 1], [1.0, 1.0]],     # green: 0, 128 / white
        [[1.0, -1.0], [1.0, 1.0]],                   # red: 255, 0 / white
    ], dtype=np.float32)
    assert tensor.dtype == torch.float32 and tuple(tensor.shape) == (3, 2, 2)
    np.testing.assert_allclose(tensor.numpy(), expected, rtol=0, atol=1e-6)


def test_transparent_pixels_become_white_and_other_normalisation_is_applied():
    image = Image.new("RGBA", (1, 1), (10, 20, 30, 0))
    spec = WDInput(size=1, crop_pct=1.0, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    values = to_tensor(prepare_image(image, spec), spec).flatten().tolist()
    assert values == pytest.approx([(1 - 0.406) / 0.225, (1 - 0.456) / 0.224, (1 - 0.485) / 0.229], abs=1e-6)


def test_crop_pct_resizes_to_size_over_pct_then_crops_the_centre():
    spec = WDInput(size=6, crop_pct=0.75)  # timm: resize to floor(6 / 0.75) = 8, centre crop 6
    image = Image.new("RGB", (8, 8), (0, 0, 0))
    for x in range(8):
        image.putpixel((x, 0), (255, 255, 255))  # a white top row is cropped away
    prepared = prepare_image(image, spec)
    assert spec.scale_size == 8 and prepared.size == (6, 6)
    assert np.asarray(prepared).max() == 0


def _config(**changes) -> dict:
    config = {"architecture": "vit_base_patch16_224", "num_classes": 34, "model_args": {"img_size": 448},
              "pretrained_cfg": {"input_size": [3, 448, 448], "interpolation": "bicubic", "crop_pct": 1.0,
                                 "mean": [0.5] * 3, "std": [0.5] * 3}}
    config.update(changes)
    return config


def test_config_fields_are_read_and_timm_defaults_fill_gaps():
    config = WDConfig.from_dict(_config())
    assert (config.architecture, config.num_classes, config.model_args) == ("vit_base_patch16_224", 34,
                                                                             {"img_size": 448})
    assert config.input == WDInput(448, "bicubic", 1.0, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    bare = WDConfig.from_dict({"architecture": "convnext_base", "num_classes": 3})
    assert bare.input == WDInput(224, "bicubic", 0.875, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@pytest.mark.parametrize(("changes", "says"), [
    ({"architecture": None}, "architecture"),
    ({"num_classes": 0}, "num_classes"),
    ({"pretrained_cfg": {"input_size": [3, 448, 224]}}, "input_size"),
    ({"pretrained_cfg": {"interpolation": "magic"}}, "interpolation"),
    ({"pretrained_cfg": {"crop_mode": "border"}}, "crop_mode"),
    ({"model_args": [1]}, "model_args"),
])
def test_bad_config_fields_are_named(changes, says):
    with pytest.raises(WDModelError, match=says):
        WDConfig.from_dict(_config(**changes), "x/config.json")


def test_selected_tags_categories_and_count(tmp_path):
    path = tmp_path / "selected_tags.csv"
    write_selected_tags(path, label_rows())
    labels = read_selected_tags(path, len(label_rows()))
    assert labels.rating_names == RATINGS
    assert labels.category_of()["hatsune_miku"] == "character" and labels.category_of()["1girl"] == "general"
    with pytest.raises(WDModelError, match="holds 34 tags but config.json says num_classes=35"):
        read_selected_tags(path, 35)
    path.write_text("tag_id,name,category,count\n1,solo,general,3\n", encoding="utf-8")
    with pytest.raises(WDModelError, match="line 2 lacks a name or a numeric category"):
        read_selected_tags(path, 1)


def test_without_timm_the_error_says_what_to_install(tmp_path, monkeypatch):
    import sys

    (tmp_path / "config.json").write_text(json.dumps(_config(num_classes=len(label_rows()))), encoding="utf-8")
    write_selected_tags(tmp_path / "selected_tags.csv", label_rows())
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / "model.safetensors"))
    monkeypatch.setitem(sys.modules, "timm", None)  # the import fails as it does without torchvision
    with pytest.raises(WDModelError, match="load through timm, which cannot be imported here"):
        load_interrogator(str(tmp_path), device="cpu")


# ---------------------------------------------------------------------------- against timm itself
@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def wd_folder(request, tmp_path_factory):
    needs_timm()
    from tests.factories.wd_models import make_wd_folder

    return make_wd_folder(tmp_path_factory.mktemp(f"wd-{request.param}"), request.param, seed=3)


def _pictures() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    noise = lambda w, h, c=3: rng.integers(0, 256, (h, w, c), dtype=np.uint8)  # noqa: E731
    return [
        Image.fromarray(noise(90, 50)),                    # wide, larger than the input
        Image.fromarray(noise(20, 37)),                    # tall, smaller: padded and enlarged
        Image.fromarray(noise(64, 64)),                    # square at the input size
        Image.fromarray(noise(70, 40, 4), "RGBA"),         # transparency
    ]


def _reference(folder, images):
    """neggles' wdv3-timm route: timm builds the model from the folder, timm's eval transform, then BGR."""
    import timm
    from safetensors.torch import load_file
    from timm.data import create_transform, resolve_data_config

    model = timm.create_model(f"local-dir:{folder}", pretrained=False).eval()
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    transform = create_transform(**resolve_data_config(model.pretrained_cfg, model=model))
    inputs = []
    for image in images:
        if image.mode == "RGBA":
            canvas = Image.new("RGBA", image.size, (255, 255, 255))
            canvas.alpha_composite(image)
            image = canvas.convert("RGB")
        side = max(image.size)
        square = Image.new("RGB", (side, side), (255, 255, 255))
        square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
        inputs.append(transform(square))
    batch = torch.stack(inputs)[:, [2, 1, 0]]
    with torch.inference_mode():
        return batch, torch.sigmoid(model(batch))


def test_our_path_equals_the_timm_route_on_the_same_weights(wd_folder):
    images = _pictures()
    reference_input, reference_scores = _reference(wd_folder, images)
    tagger = load_interrogator(str(wd_folder), device="cpu")
    assert isinstance(tagger, WDTagger)
    ours = torch.stack([tagger.preprocess(image) for image in images])
    assert torch.equal(ours, reference_input)  # the same pixels, bit for bit (transparency included)
    predictions = tagger.predict(reference_input)
    names = tagger.labels.names
    for prediction, row in zip(predictions, reference_scores):
        merged = {**prediction.scores, **prediction.ratings}
        assert [merged[name] for name in names] == pytest.approx(row.tolist(), abs=1e-6)
    assert len({round(value, 4) for value in predictions[0].scores.values()}) > 5  # scores differ
    tagger.close()


def test_ratings_are_apart_and_the_rating_tag_is_written_first(wd_folder):
    tagger = load_interrogator(str(wd_folder), device="cpu")
    prediction = predict_images(tagger, _pictures()[:1])[0]
    assert tuple(prediction.ratings) == RATINGS and not set(RATINGS) & set(prediction.scores)
    best = max(prediction.ratings, key=prediction.ratings.get)
    assert prediction.rating == best
    result = describe(prediction, TagOptions(threshold=0.0, rating_tag=True, top_k=3))
    assert result.tags[0] == (best, pytest.approx(prediction.ratings[best])) and len(result.tags) == 4
    assert result.caption.split(", ")[0] == best and result.rating == best
    assert describe(prediction, TagOptions(threshold=0.0, top_k=3)).caption.split(", ")[0] != best
    assert all(category != RATING for category in prediction.categories.values())
    tagger.close()


def test_strict_loading_names_missing_extra_and_misshaped_keys(tmp_path):
    needs_timm()
    from safetensors.torch import load_file, save_file

    from tests.factories.wd_models import make_wd_folder

    folder = make_wd_folder(tmp_path / "wd", "vit", seed=1)
    state = load_file(str(folder / "model.safetensors"))
    weights = folder / "model.safetensors"
    broken = dict(state)
    del broken["blocks.0.attn.qkv.weight"]
    save_file(broken, str(weights))
    with pytest.raises(WDModelError, match=r"missing keys: blocks\.0\.attn\.qkv\.weight"):
        load_interrogator(str(folder), device="cpu")
    save_file({**state, "extra.bias": torch.zeros(2)}, str(weights))
    with pytest.raises(WDModelError, match=r"unexpected keys: extra\.bias"):
        load_interrogator(str(folder), device="cpu")
    save_file({**state, "head.bias": torch.zeros(7)}, str(weights))
    with pytest.raises(WDModelError, match=r"wrong shape: head\.bias \(7,\) != \(34,\)"):
        load_interrogator(str(folder), device="cpu")
    weights.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(WDModelError, match="cannot read the checkpoint"):
        load_interrogator(str(folder), device="cpu")
    save_file(state, str(weights))
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "architecture": "no_such_net"}))
    with pytest.raises(WDModelError, match="timm cannot build 'no_such_net'"):
        load_interrogator(str(folder), device="cpu")


def test_known_name_loads_from_the_hub_layout_offline(tmp_path, monkeypatch):
    needs_timm()
    from tests.factories.wd_models import make_wd_folder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    make_wd_folder(tmp_path / "SmilingWolf--wd-convnext-tagger-v3", "convnext", seed=2)
    tagger = load_interrogator("wd-convnext-tagger-v3", models_dir=tmp_path, device="cpu")
    assert tagger.name == "wd-convnext-tagger-v3" and tagger.image_size == 64
    tagger.close()
    with pytest.raises(FileNotFoundError, match=r"selected_tags.csv of SmilingWolf/wd-vit-tagger-v3"):
        load_interrogator("wd-vit-tagger-v3", models_dir=tmp_path, device="cpu")


def test_model_args_may_repeat_num_classes(tmp_path):
    needs_timm()
    from tests.factories.wd_models import make_wd_folder

    folder = make_wd_folder(tmp_path / "wd", "vit", seed=1)
    config = json.loads((folder / "config.json").read_text())
    config["model_args"]["num_classes"] = config["num_classes"]
    (folder / "config.json").write_text(json.dumps(config))
    tagger = load_interrogator(str(folder), device="cpu")
    assert len(tagger.labels.names) == config["num_classes"]
    tagger.close()


@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear", "lanczos", "box", "hamming", "nearest"])
def test_wide_images_skip_the_padded_canvas_with_the_same_pixels(interpolation):
    from lib_tagger.interrogate.images import pad_square
    from lib_tagger.interrogate.wd import RESAMPLING

    rng = np.random.default_rng(1)
    for width, height, size in [(300, 200, 64), (517, 333, 96), (97, 13, 64), (40, 39, 64), (33, 20, 96)]:
        image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        spec = WDInput(size=size, interpolation=interpolation)
        canvas = pad_square(image).resize((size, size), RESAMPLING[interpolation])
        assert np.array_equal(np.asarray(prepare_image(image, WDInput(size, interpolation, 1.0))),
                              np.asarray(canvas)), (width, height, size)
        assert prepare_image(image, spec).size == (size, size)
