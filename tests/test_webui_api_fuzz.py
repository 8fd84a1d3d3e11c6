"""Fuzzing the routes: random JSON of the right and the wrong shapes (and text that is not JSON) never gets a 500,
and after every case the server still answers a known request exactly as before. Real tiny models (Dart in the
registry's folder, JoyTag), offline, in a models folder of the test's own."""

from __future__ import annotations

import base64
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib_tagger.interrogate.postprocess import TagOptions
from lib_tagger.settings import FIELD_ORDER
from tests.asgi_client import Client

JOYTAG_FIELDS = tuple(TagOptions.__dataclass_fields__)
KNOWN = {"prompt": "1girl, solo", "seed": 7, "settings": {"model": "dart-v2-moe-sft", "max_new_tokens": 12}}


def _png() -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), (10, 200, 30)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


PNG = _png()

def either(first, second):
    """``first`` or ``second``, half the time each (``|`` would flatten ``second``'s own branches and make
    ``first`` rare)."""
    return st.booleans().flatmap(lambda pick: first if pick else second)


texts = st.text(max_size=40) | st.sampled_from(["", " ", "a\ud800b", "\x00", "1girl, (solo:1.2), BREAK <lora:x:1>",
                                                 "/^(.+)+!$/", "*", "../../etc", "/etc/passwd", "x" * 300])
numbers = (st.integers(-(2**70), 2**70) | st.floats() | st.sampled_from([0, 1, -1, 2**32, 2**64, 1e400, -1e400])
           | st.sampled_from(["1e400", "inf", "nan", "12", "-1"]))
leaves = st.none() | st.booleans() | numbers | texts
anything = st.recursive(leaves, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
models = st.sampled_from(["dart-v2-moe-sft", "my-dart", "dart-v2-sft", "dantaggen-delta-rev2", "no-such-model",
                          "my-dart/../../..", "/tmp", "sub/x.gguf", ""]) | texts
setting_values = {
    "model": models, "length": st.sampled_from(["very_short", "short", "long", "huge"]),
    "max_new_tokens": st.integers(-3, 2000) | anything, "top_k": st.integers(-3, 200_000) | anything,
    "ban_tags": st.sampled_from(["", "hat, *hair", "/^a/", "/(unclosed/", "/^(.+)+!$/"]) | texts,
}
setting_dicts = st.tuples(st.dictionaries(st.sampled_from(FIELD_ORDER) | st.text(max_size=6), anything, max_size=4),
                          st.fixed_dictionaries({}, optional=setting_values)).map(lambda pair: {**pair[0], **pair[1]})
upsample_bodies = st.fixed_dictionaries({}, optional={
    "prompt": either(texts, anything), "settings": either(setting_dicts, anything),
    "width": either(st.integers(-5, 20000), anything), "height": either(st.integers(-5, 20000), anything),
    "seed": either(st.integers(-5, 2**70), anything), "extra": anything})
option_dicts = st.dictionaries(st.sampled_from(JOYTAG_FIELDS) | st.text(max_size=6), anything, max_size=4)
interrogate_bodies = st.fixed_dictionaries({}, optional={
    "image": either(st.sampled_from([PNG, "data:image/png;base64," + PNG, PNG[:40], "", "!!",
                                     base64.b64encode(b"GIF89a").decode()]), texts | anything),
    "options": either(option_dicts | st.fixed_dictionaries({}, optional={
        "threshold": numbers, "top_k": numbers, "sort": texts, "exclude": anything}), anything)})
bodies = st.one_of(
    st.tuples(st.just("/tagger/v1/upsample"), either(upsample_bodies, anything)),
    st.tuples(st.just("/tagger/v1/interrogate"), either(interrogate_bodies, anything)),
    st.tuples(st.just("/tagger/v1/unload"), anything),
)


@pytest.fixture(scope="module")
def server(webui, tmp_path_factory):
    """The host double's app with our models folder and JoyTag set up as the extension sets them up."""
    from modules import shared

    from lib_tagger.models.manager import get_manager
    from tagger_webui import interrogate_service, settings_page
    from tests.factories.joytag_model import save_joytag_checkpoint
    from tests.factories.torch_models import make_dart_folder

    root = tmp_path_factory.mktemp("fuzz-models") / "tagger"
    make_dart_folder(root / "p1atdev--dart-v2-moe-sft", model_type="mixtral", max_position_embeddings=128)
    make_dart_folder(root / "my-dart", seed=3, max_position_embeddings=128)
    save_joytag_checkpoint(root / "fancyfeast--joytag", num_blocks=1, tiny=True, seed=2)
    saved = dict(shared.opts.data)
    shared.opts.data.update({"tagger_models_dir": str(root), "tagger_device": "cpu", "tagger_joytag_device": "cpu"})
    interrogate_service.configure(options=settings_page.value, models_dir=settings_page.models_dir)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        client = Client(webui.app)
        known = client.post("/tagger/v1/upsample", json=KNOWN)
        assert known.status_code == 200, known.text
        yield client, known.json()["prompt"]
    shared.opts.data.clear()
    shared.opts.data.update(saved)
    interrogate_service.configure()
    get_manager().unload()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(bodies, st.booleans())
def test_random_requests_never_get_a_500_and_the_server_stays_healthy(server, one_torch_thread, case, as_text):
    client, known_prompt = server
    path, body = case
    if as_text and isinstance(body, str):
        content = body.encode("utf-8", "surrogatepass")  # not JSON at all, most of the time
    else:
        content = json.dumps(body, allow_nan=True).encode("utf-8")  # Infinity, NaN, \ud800 as Python writes them
    response = client.post(path, content=content, headers={"Content-Type": "application/json"})
    assert response.status_code < 500, (path, content[:300], response.text[:500])
    detail = response.json()  # always a JSON answer
    assert isinstance(detail, dict)
    if response.status_code >= 400:
        assert "Traceback" not in response.text and "0x7f" not in response.text
    assert client.get("/sdapi/v1/progress").status_code == 200
    again = client.post("/tagger/v1/upsample", json=KNOWN)
    assert again.status_code == 200 and again.json()["prompt"] == known_prompt


def test_the_fuzz_strategies_reach_every_route_and_the_odd_values(server):
    """The strategies above do produce what they claim (a check of the test itself)."""
    seen = set()

    # about one example in a hundred names a model in the settings: 1,500 examples, always the same ones
    @settings(max_examples=1500, deadline=None, database=None, derandomize=True)
    @given(bodies)
    def collect(case):
        path, body = case
        seen.add(path)
        text = json.dumps(body, allow_nan=True)
        if "Infinity" in text or "NaN" in text:
            seen.add("non-finite")
        if isinstance(body, dict) and isinstance(body.get("settings"), dict) and "model" in body["settings"]:
            seen.add("model")

    collect()
    assert {"/tagger/v1/upsample", "/tagger/v1/interrogate", "/tagger/v1/unload", "non-finite", "model"} <= seen
