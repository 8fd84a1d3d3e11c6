"""Exact model inputs and output parsing of Dart v2 and DanTagGen."""

from __future__ import annotations

import pytest

from lib_tagger.formats import (
    PROMPT_FORMATS,
    FormatError,
    FormatOptions,
    aspect_ratio_bucket,
    build_model_input,
    dantaggen_aspect_ratio,
    parse_model_output,
    target_tag_count,
    topup_input,
)
from lib_tagger.models.registry import (
    FORMAT_DANTAGGEN,
    FORMAT_DANTAGGEN_QUALITY,
    FORMAT_DART_BASE,
    FORMAT_DART_SFT,
    FORMAT_TIPO,
)
from lib_tagger.tags import TagFields, sort_tags

# The model-form tags of
#   masterpiece, best quality, 1girl, hatsune miku, vocaloid, <lora:x:0.8>, (aqua hair:1.2),
#   twintails, highres, BREAK smile, sensitive
MIKU_PROMPT = (
    "masterpiece, best quality, 1girl, hatsune miku, vocaloid, <lora:x:0.8>, (aqua hair:1.2), "
    "twintails, highres, BREAK smile, sensitive"
)
MIKU_TAGS = [
    "masterpiece", "best quality", "1girl", "hatsune miku", "vocaloid",
    "aqua hair", "twintails", "highres", "smile", "sensitive",
]
PORTRAIT = FormatOptions(width=832, height=1216)

EXPECTED = {
    FORMAT_DART_SFT: (
        "<|bos|><copyright>vocaloid</copyright><character>hatsune miku</character>"
        "<|rating:sensitive|><|aspect_ratio:tall|><|length:long|>"
        "<general>1girl, aqua hair, twintails, smile<|identity:none|><|input_end|>"
    ),
    FORMAT_DART_BASE: (
        "<|bos|><copyright>vocaloid</copyright><character>hatsune miku</character>"
        "<|rating:sensitive|><|aspect_ratio:tall|><|length:long|>"
        "<general>1girl, aqua hair, twintails, smile"
    ),
    FORMAT_DANTAGGEN: (
        "rating: sensitive\n"
        "artist: <|empty|>\n"
        "characters: hatsune miku\n"
        "copyrights: vocaloid\n"
        "aspect ratio: 0.7\n"
        "target: <|long|>\n"
        "general: 1girl, aqua hair, twintails, smile<|input_end|>"
    ),
    FORMAT_DANTAGGEN_QUALITY: (
        "quality: masterpiece, best quality\n"
        "rating: sensitive\n"
        "artist: <|empty|>\n"
        "characters: hatsune miku\n"
        "copyrights: vocaloid\n"
        "aspect ratio: 0.7\n"
        "target: <|long|>\n"
        "general: 1girl, aqua hair, twintails, smile<|input_end|>"
    ),
    # KGen's default request, first step: tags only, expanded (the model continues the tag line)
    FORMAT_TIPO: (
        "meta: highres\n"
        "rating: sensitive\n"
        "characters: hatsune miku\n"
        "copyrights: vocaloid\n"
        "quality: masterpiece, best quality\n"
        "aspect_ratio: 0.7\n"
        "target: <|long|>\n"
        "tag: 1girl, aqua hair, twintails, smile"
    ),
}


@pytest.mark.parametrize("prompt_format", PROMPT_FORMATS)
def test_realistic_prompt_gives_the_exact_model_input(prompt_format: str) -> None:
    assert build_model_input(prompt_format, sort_tags(MIKU_TAGS), PORTRAIT) == EXPECTED[prompt_format]


@pytest.mark.parametrize("prompt_format", PROMPT_FORMATS)
def test_realistic_prompt_string_through_extract_tags(prompt_format: str) -> None:
    prompt = pytest.importorskip("lib_tagger.prompt")
    if not hasattr(prompt, "extract_tags"):
        pytest.skip("lib_tagger.prompt.extract_tags is not written yet")
    tags = [t.tag for t in prompt.extract_tags(MIKU_PROMPT)]
    assert build_model_input(prompt_format, sort_tags(tags), PORTRAIT) == EXPECTED[prompt_format]


def test_formats_are_the_registry_constants() -> None:
    assert set(PROMPT_FORMATS) == {"dart-sft", "dart-base", "dantaggen", "dantaggen-quality", "tipo"}


# ---------------------------------------------------------------- aspect ratio
@pytest.mark.parametrize(
    ("width", "height", "bucket"),
    [
        (512, 1024, "ultra_tall"),  # exactly 1/2
        (400, 1216, "ultra_tall"),
        (513, 1024, "tall"),
        (832, 1216, "tall"),
        (800, 900, "tall"),  # exactly 8/9
        (801, 900, "square"),
        (1024, 1024, "square"),
        (1124, 1000, "square"),
        (1125, 1000, "wide"),  # exactly 9/8
        (1216, 832, "wide"),
        (1999, 1000, "wide"),
        (2000, 1000, "ultra_wide"),  # exactly 2
    ],
)
def test_dart_aspect_ratio_bucket(width: int, height: int, bucket: str) -> None:
    assert aspect_ratio_bucket(width, height) == bucket
    text = build_model_input(FORMAT_DART_SFT, TagFields(), FormatOptions(width=width, height=height))
    assert f"<|aspect_ratio:{bucket}|>" in text


@pytest.mark.parametrize(
    ("width", "height", "text"),
    [(832, 1216, "0.7"), (1024, 1024, "1.0"), (1920, 1080, "1.8"), (1216, 832, "1.5"), (512, 2048, "0.2")],
)
def test_dantaggen_aspect_ratio_one_decimal(width: int, height: int, text: str) -> None:
    assert dantaggen_aspect_ratio(width, height) == text


# ---------------------------------------------------------------- fields
def test_empty_fields() -> None:
    empty = TagFields()
    options = FormatOptions()
    assert build_model_input(FORMAT_DART_SFT, empty, options) == (
        "<|bos|><copyright></copyright><character></character>"
        "<|rating:general|><|aspect_ratio:square|><|length:long|><general><|identity:none|><|input_end|>"
    )
    assert build_model_input(FORMAT_DANTAGGEN_QUALITY, empty, options) == (
        "quality: masterpiece\n"
        "rating: <|empty|>\n"
        "artist: <|empty|>\n"
        "characters: <|empty|>\n"
        "copyrights: <|empty|>\n"
        "aspect ratio: 1.0\n"
        "target: <|long|>\n"
        "general: <|input_end|>"
    )


def test_special_tags_lead_general_and_artists_meta_quality_stay_out_of_dart() -> None:
    fields = sort_tags(["kantoku", "absurdres", "smile", "solo", "2girls", "newest", "yuri", "1boy"])
    assert fields.special == ["2girls", "1boy"]
    dart = build_model_input(FORMAT_DART_SFT, fields, FormatOptions())
    assert "<general>2girls, 1boy, smile, solo, yuri<|identity:none|>" in dart
    for left_out in ("kantoku", "absurdres", "newest"):
        assert left_out not in dart
    dtg = build_model_input(FORMAT_DANTAGGEN_QUALITY, fields, FormatOptions())
    assert "\nartist: kantoku\n" in dtg
    assert dtg.startswith("quality: newest\n")
    assert dtg.endswith("\ngeneral: 2girls, 1boy, smile, solo, yuri<|input_end|>")
    assert "absurdres" not in dtg


def test_several_tags_per_field_keep_the_users_order() -> None:
    fields = sort_tags(["touhou", "vocaloid", "kagamine rin", "kagamine len", "hakurei reimu"])
    dart = build_model_input(FORMAT_DART_BASE, fields, FormatOptions())
    assert dart.startswith(
        "<|bos|><copyright>touhou, vocaloid</copyright>"
        "<character>kagamine rin, kagamine len, hakurei reimu</character>"
    )
    dtg = build_model_input(FORMAT_DANTAGGEN, fields, FormatOptions())
    assert "\ncharacters: kagamine rin, kagamine len, hakurei reimu\ncopyrights: touhou, vocaloid\n" in dtg


def test_dantaggen_quality_line_override_and_plain_dantaggen_has_none() -> None:
    fields = sort_tags(["best quality", "1girl"])
    override = FormatOptions(quality=" great quality ")
    with_override = build_model_input(FORMAT_DANTAGGEN_QUALITY, fields, override)
    assert with_override.startswith("quality: great quality\nrating: ")
    assert build_model_input(FORMAT_DANTAGGEN_QUALITY, fields, FormatOptions(quality="")).startswith(
        "quality: best quality\n"
    )
    assert build_model_input(FORMAT_DANTAGGEN, fields, FormatOptions(quality="x")).startswith("rating: ")


# ---------------------------------------------------------------- rating, length, identity
@pytest.mark.parametrize(
    ("prompt_rating", "option", "dart", "dantaggen"),
    [
        ([], "auto", "general", "<|empty|>"),
        (["safe"], "auto", "general", "safe"),
        (["nsfw", "explicit"], "auto", "explicit", "nsfw, explicit"),
        (["rating:q"], "auto", "questionable", "nsfw"),
        (["sfw"], "auto", "sfw", "safe"),
        (["nsfw"], "auto", "nsfw", "nsfw"),
        (["explicit"], "general", "general", "safe"),
        ([], "sensitive", "sensitive", "sensitive"),
        ([], "questionable", "questionable", "nsfw"),
        ([], "explicit", "explicit", "nsfw, explicit"),
    ],
)
def test_rating_auto_and_chosen(prompt_rating: list[str], option: str, dart: str, dantaggen: str) -> None:
    fields = sort_tags([*prompt_rating, "1girl"])
    options = FormatOptions(rating=option)
    assert f"<|rating:{dart}|>" in build_model_input(FORMAT_DART_SFT, fields, options)
    assert f"\nrating: {dantaggen}\n" in build_model_input(FORMAT_DANTAGGEN_QUALITY, fields, options)


@pytest.mark.parametrize(
    ("length", "dantaggen"),
    [("very_short", "very_short"), ("short", "short"), ("medium", "long"), ("long", "long"),
     ("very_long", "very_long")],
)
def test_length_tokens(length: str, dantaggen: str) -> None:
    options = FormatOptions(length=length)
    assert f"<|length:{length}|>" in build_model_input(FORMAT_DART_BASE, TagFields(), options)
    assert f"\ntarget: <|{dantaggen}|>\n" in build_model_input(FORMAT_DANTAGGEN, TagFields(), options)


@pytest.mark.parametrize("identity", ["none", "lax", "strict"])
def test_identity_only_in_dart_sft(identity: str) -> None:
    options = FormatOptions(identity=identity)
    fields = sort_tags(["1girl", "smile"])
    assert build_model_input(FORMAT_DART_SFT, fields, options).endswith(
        f"<general>1girl, smile<|identity:{identity}|><|input_end|>"
    )
    assert build_model_input(FORMAT_DART_BASE, fields, options).endswith("<general>1girl, smile")
    assert "identity" not in build_model_input(FORMAT_DANTAGGEN, fields, options)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rating": "spicy"}, "rating"),
        ({"length": "huge"}, "length"),
        ({"identity": "loose"}, "identity"),
        ({"width": 0}, "width"),
        ({"height": -8}, "height"),
        ({"width": "832"}, "width"),
        ({"height": True}, "height"),
        ({"quality": 3}, "quality"),
    ],
)
def test_bad_options_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(FormatError, match=f"^{field}: "):
        FormatOptions(**kwargs)


def test_unknown_prompt_format_is_an_error() -> None:
    with pytest.raises(FormatError, match="prompt_format: 'dart-v1'"):
        build_model_input("dart-v1", TagFields(), FormatOptions())
    with pytest.raises(FormatError, match="prompt_format"):
        parse_model_output("gpt", "", [])


# ---------------------------------------------------------------- parsing
@pytest.mark.parametrize("prompt_format", [FORMAT_DART_SFT, FORMAT_DART_BASE])
def test_dart_pieces(prompt_format: str) -> None:
    pieces = ["long hair", "", " skirt ", "<|unk|>", "smile", "long hair", "<general>", "<|reserved_3|>",
              "thighhighs", "</general>", "<|eos|>", "after end"]
    expected = ["long hair", "skirt", "smile", "thighhighs"]
    assert parse_model_output(prompt_format, "ignored", pieces) == expected
    assert parse_model_output(prompt_format, "", ["blue eyes", "<|eos|>", "red eyes"]) == ["blue eyes"]
    assert parse_model_output(prompt_format, "", ["^_^", ">_<", ":>", "</copyright>"]) == ["^_^", ">_<", ":>"]
    assert parse_model_output(prompt_format, "", []) == []


@pytest.mark.parametrize("prompt_format", [FORMAT_DANTAGGEN, FORMAT_DANTAGGEN_QUALITY])
def test_dantaggen_text(prompt_format: str) -> None:
    text = " long hair, skirt, , smile,<|empty|>, skirt ,thighhighs</s>"
    assert parse_model_output(prompt_format, text, []) == ["long hair", "skirt", "smile", "thighhighs"]
    full = EXPECTED[FORMAT_DANTAGGEN] + " blue eyes, <s>, hair ribbon,\nrating: safe"
    assert parse_model_output(prompt_format, full, []) == ["blue eyes", "hair ribbon"]
    assert parse_model_output(prompt_format, "<s>", ["<s>"]) == []
    assert parse_model_output(prompt_format, "", []) == []


# ---------------------------------------------------------------- top-up
def test_target_tag_counts() -> None:
    lengths = ("very_short", "short", "medium", "long", "very_long")
    for fmt in (FORMAT_DANTAGGEN, FORMAT_DANTAGGEN_QUALITY):
        assert [target_tag_count(fmt, n) for n in lengths] == [8, 16, 32, 32, 48]
    dart = [target_tag_count(FORMAT_DART_SFT, n) for n in lengths]
    assert dart == sorted(dart) and len(set(dart)) == 5
    with pytest.raises(FormatError, match="length: 'huge'"):
        target_tag_count(FORMAT_DANTAGGEN, "huge")


def test_topup_input_appends_found_tags_after_input_end() -> None:
    model_input = EXPECTED[FORMAT_DANTAGGEN_QUALITY]
    again = topup_input(FORMAT_DANTAGGEN_QUALITY, model_input, ["blue eyes", "hair ribbon"])
    assert again == model_input + "blue eyes, hair ribbon"
    # a later round starts again from the original input, not from the previous round's text
    third = topup_input(FORMAT_DANTAGGEN_QUALITY, again, ["blue eyes", "hair ribbon", "skirt"])
    assert third == model_input + "blue eyes, hair ribbon, skirt"
    # parsing round input + continuation yields everything found so far, even when the model
    # extends the last tag
    assert parse_model_output(FORMAT_DANTAGGEN, again + " ornament, skirt</s>", []) == [
        "blue eyes", "hair ribbon ornament", "skirt"]


def test_topup_errors() -> None:
    with pytest.raises(FormatError, match="DanTagGen only"):
        topup_input(FORMAT_DART_SFT, EXPECTED[FORMAT_DART_SFT], ["x"])
    with pytest.raises(FormatError, match="model_input: no <\\|input_end\\|>"):
        topup_input(FORMAT_DANTAGGEN, "rating: safe\ngeneral: 1girl", ["x"])
