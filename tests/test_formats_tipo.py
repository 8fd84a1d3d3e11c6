"""TIPO's exact model inputs for every task and length, the output parser, and the steps a plan runs.

The expected strings are written out by hand from the format in notes/tipo.md (checked against
KGen 0.3.1's ``apply_tipo_prompt``); the plan tests feed hand-written generations into a plan and
pin every model input it asks for next.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lib_tagger.formats import FormatError, FormatOptions, build_model_input, family_of
from lib_tagger.formats.family import Job
from lib_tagger.formats.tipo import (
    TIPO,
    parse_tipo_text,
    plan_steps,
    sentences,
    tipo_length,
)
from lib_tagger.generate.base import Generation, PromptTooLongError
from lib_tagger.prompt import extract_tags
from lib_tagger.tags import sort_tags

MIKU = ("masterpiece, best quality, 1girl, hatsune miku, vocaloid, <lora:x:0.8>, (aqua hair:1.2), twintails, "
        "highres, BREAK smile, sensitive")
META = ("meta: highres\nrating: sensitive\ncharacters: hatsune miku\ncopyrights: vocaloid\n"
        "quality: masterpiece, best quality\naspect_ratio: 0.7\n")
TAGS = "1girl, aqua hair, twintails, smile"
NL = "A girl sings on a stage."
PORTRAIT = {"width": 832, "height": 1216}


def fields_of(prompt: str):
    return sort_tags([t.tag for t in extract_tags(prompt) if not t.conditional])


def first_input(prompt: str, nl: str = "", **options) -> str:
    return build_model_input("tipo", fields_of(prompt), FormatOptions(**{**PORTRAIT, **options}), nl)


# ---------------------------------------------------------------- first steps
FIRST = {
    # task: (tags only, NL only, tags + NL)
    "extend_tags": (
        META + "target: <|long|>\ntag: " + TAGS,
        "aspect_ratio: 0.7\ntarget: <|long|> <|long_to_tag|>\nlong: " + NL,
        META + "target: <|long|> <|short_to_tag|>\nshort: " + NL + "\ntag: " + TAGS,
    ),
    "add_caption": (
        META + "target: <|long|>\ntag: " + TAGS,
        "aspect_ratio: 0.7\ntarget: <|long|> <|long_to_tag|>\nlong: " + NL,
        META + "target: <|long|> <|short_to_tag|>\nshort: " + NL + "\ntag: " + TAGS,
    ),
    "caption_to_tags": (
        META + "target: <|long|>\ntag: " + TAGS,
        "aspect_ratio: 0.7\ntarget: <|long|> <|long_to_tag|>\nlong: " + NL + "\ntag:",
        META + "target: <|long|> <|short_to_tag|>\nshort: " + NL + "\ntag: " + TAGS,
    ),
    "extend_both": (
        META + "target: <|long|>\ntag: " + TAGS,
        "aspect_ratio: 0.7\ntarget: <|long|> <|long_to_tag|>\nlong: " + NL,
        META + "target: <|long|> <|short_to_tag|>\nshort: " + NL + "\ntag: " + TAGS,
    ),
}


@pytest.mark.parametrize("task", list(FIRST))
def test_first_input_of_every_task(task):
    tags_only, nl_only, both = FIRST[task]
    assert first_input(MIKU, task=task) == tags_only
    assert first_input("<lora:x:1>, BREAK", NL, task=task) == nl_only
    assert first_input(MIKU, NL, task=task) == both


@pytest.mark.parametrize(("length", "token"), [("very_short", "very_short"), ("short", "short"),
                                               ("medium", "long"), ("long", "long"), ("very_long", "very_long")])
def test_every_length_and_medium_as_long(length, token):
    assert first_input(MIKU, length=length) == META + f"target: <|{token}|>\ntag: " + TAGS
    assert tipo_length(length) == token


def test_empty_prompt_and_other_ratings_sizes_and_people():
    assert first_input("") == "aspect_ratio: 0.7\ntarget: <|long|>"
    assert first_input("rating:e, 2girls, yuri, hakurei reimu, touhou", width=1216, height=832) == (
        "rating: explicit\ncharacters: hakurei reimu\ncopyrights: touhou\naspect_ratio: 1.5\n"
        "target: <|long|>\ntag: 2girls, yuri")
    assert first_input("1girl, solo", rating="general", width=1024, height=1024) == (
        "rating: general\naspect_ratio: 1.0\ntarget: <|long|>\ntag: 1girl, solo")


def test_bad_task_and_length_are_clear():
    with pytest.raises(FormatError, match="task"):
        FormatOptions(task="dance")
    with pytest.raises(FormatError, match="length"):
        tipo_length("huge")
    with pytest.raises(FormatError, match="tipo"):
        TIPO.build("dantaggen", fields_of("1girl"), FormatOptions())


def test_family_and_steps_per_task():
    assert family_of("tipo") is TIPO
    modes = {task: [(s.mode, s.length_of, s.expand) for s in plan_steps(task, True, False)] for task in FIRST}
    assert modes == {
        "extend_tags": [(None, "tag", True)],
        "add_caption": [(None, "tag", True), ("tag_to_long", "nl", False)],
        "caption_to_tags": [(None, "tag", True)],
        "extend_both": [(None, "tag", True), ("tag_to_long", "nl", False)],
    }
    both = {task: [(s.mode, s.expand) for s in plan_steps(task, True, True)] for task in FIRST}
    assert both["add_caption"] == [("short_to_tag", True), ("short_to_tag_to_long", False)]
    assert both["extend_both"] == [("short_to_tag", True), ("tag_to_long", True)]  # KGen's "tag first"


# ---------------------------------------------------------------- parsing
def test_parse_reads_the_input_and_its_continuation():
    model_input = META + "target: <|long|> <|tag_to_long|>\ntag: " + TAGS + "\nlong:"
    text = " A girl with aqua hair sings. She smiles at the crowd.</s>"
    parsed = TIPO.parse("tipo", model_input, text, [])
    assert parsed.tags == ["1girl", "aqua hair", "twintails", "smile"]
    assert parsed.text == {"long": "A girl with aqua hair sings. She smiles at the crowd."}


def test_parse_keeps_the_first_of_a_key_and_colons_inside_text():
    parsed = parse_tipo_text("tag: a, b,, <|empty|>, c\nlong: Note: it rains.\nsee: more\ntag: x, y\nlong: again")
    assert parsed.tags == ["a", "b", "c"]
    assert parsed.text == {"long": "Note: it rains. see: more"}
    assert parse_tipo_text("<s> tag: a, b</s>").tags == ["a", "b"]
    assert parse_tipo_text("long: <|empty|>").text == {}


def test_parse_drops_what_a_cut_off_generation_left_unfinished():
    assert parse_tipo_text("tag: a, b, long ha", cut=True).tags == ["a", "b"]
    assert parse_tipo_text("tag: a, b,", cut=True).tags == ["a", "b"]
    assert parse_tipo_text("long: One. Two and", cut=True).text == {"long": "One."}


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("tag:longshr,.\n <|>/_ab\\()")) | st.characters(), max_size=200))
def test_garbage_parses_without_raising(text):
    parsed = parse_tipo_text(text, cut=True)
    assert all(tag and "," not in tag for tag in parsed.tags)
    assert all(isinstance(v, str) and v for v in parsed.text.values())


def test_sentences():
    assert sentences("One. Two!  Three? four") == ["One.", "Two!", "Three?", "four"]
    assert sentences("Version 1.5 is out.") == ["Version 1.5 is out."]


# ---------------------------------------------------------------- plans
SEEN_PREFIXES: list[str | None] = []  # the prefix of each call of the last plan run


def run_plan(prompt: str, answers: list[str], nl: str = "", max_new_tokens: int = 512, **options):
    """Drive a plan with the given continuations; returns (inputs asked for, seed offsets, outcome)."""
    present: set[str] = {t.tag for t in extract_tags(prompt)}

    def accept(tags):
        fresh = [t for t in tags if t not in present]
        present.update(fresh)
        return fresh

    job = Job(fields_of(prompt), FormatOptions(**{**PORTRAIT, **options}), accept, nl, max_new_tokens)
    SEEN_PREFIXES.clear()
    plan = TIPO.plan("tipo", job)
    inputs, offsets = [], []
    call = next(plan)
    try:
        for answer in answers:
            inputs.append(call.model_input)
            offsets.append(call.seed_offset)
            SEEN_PREFIXES.append(call.prefix)
            if isinstance(answer, BaseException):
                call = plan.throw(answer)
            else:
                call = plan.send(Generation(text=answer, token_ids=[0] * (1 + answer.count(","))))
    except StopIteration as stop:
        return inputs, offsets, stop.value
    raise AssertionError(f"the plan wanted more calls after {inputs}")


def many(prefix: str, n: int) -> str:
    return "".join(f", {prefix}{i}" for i in range(n))


def test_extend_tags_retries_with_what_it_found_until_the_target():
    inputs, offsets, outcome = run_plan("1girl, solo", [many("a", 10), many("b", 10), many("c", 20)], length="long")
    assert inputs == [
        "aspect_ratio: 0.7\ntarget: <|long|>\ntag: 1girl, solo",
        "aspect_ratio: 0.7\ntarget: <|long|>\ntag: 1girl, solo" + many("a", 10),
        "aspect_ratio: 0.7\ntarget: <|long|>\ntag: 1girl, solo" + many("a", 10) + many("b", 10),
    ]
    assert offsets == [0, 1, 2]  # seed + n
    assert [None, inputs[0], inputs[0]] == SEEN_PREFIXES  # a retry may reuse the evaluated first input
    assert len(outcome.new_tags) == 40 and outcome.calls == 3 and outcome.nl_text == ""


def test_retries_are_bounded_and_stop_when_nothing_new_comes():
    _, offsets, outcome = run_plan("1girl", [", x", ", y", ", z", ", w"], length="very_long")
    assert offsets == [0, 1, 2, 3] and outcome.new_tags == ["x", "y", "z", "w"]  # 1 + MAX_RETRIES calls
    _, offsets, outcome = run_plan("1girl", [", x", ", x", ", x"], length="very_long")
    assert offsets == [0, 1, 2] and outcome.new_tags == ["x"]  # two calls in a row added nothing
    _, offsets, outcome = run_plan("1girl", ["", ", y", "", ""], length="very_long")
    assert offsets == [0, 1, 2, 3] and outcome.new_tags == ["y"]  # one empty call does not end the step


def test_new_tags_are_cut_to_the_tag_maximum_not_the_sentence_maximum():
    # KGen cuts tags with the sentence maximum (8 for long); the tag maximum for long is 54
    _, _, outcome = run_plan("1girl, solo", [many("t", 80)], length="long")
    assert len(outcome.new_tags) == 52


def test_add_caption_writes_a_caption_from_the_extended_tags():
    inputs, offsets, outcome = run_plan(
        "1girl, solo", [many("t", 40), " A girl stands. She smiles. It rains. The end.</s>"], length="long",
        nl_length="long", task="add_caption")
    assert inputs[1] == ("aspect_ratio: 0.7\ntarget: <|long|> <|tag_to_long|>\ntag: 1girl, solo" + many("t", 40)
                         + "\nlong:")
    assert offsets == [0, 1]
    assert outcome.nl_text == "A girl stands. She smiles. It rains. The end."


def test_a_caption_retry_continues_the_caption():
    inputs, _, outcome = run_plan("1girl", [many("t", 40), " A girl stands.", " She smiles.", "", ""],
                                  task="add_caption", nl_length="long")
    assert inputs[2].endswith("<|tag_to_long|>\ntag: 1girl" + many("t", 40) + "\nlong: A girl stands.")
    assert outcome.nl_text == "A girl stands. She smiles."


def test_extend_both_continues_the_users_caption_and_keeps_it_first():
    inputs, _, outcome = run_plan(
        "1girl, solo", [many("t", 40), " She holds a microphone. The crowd cheers. Lights glow.", ""],
        NL, task="extend_both", nl_length="long")
    assert inputs[0] == "aspect_ratio: 0.7\ntarget: <|long|> <|short_to_tag|>\nshort: " + NL + "\ntag: 1girl, solo"
    assert inputs[1] == ("aspect_ratio: 0.7\ntarget: <|long|> <|tag_to_long|>\ntag: 1girl, solo" + many("t", 40)
                         + "\nlong: " + NL)
    assert outcome.nl_text == NL + " She holds a microphone. The crowd cheers. Lights glow."


def test_caption_sentences_are_cut_to_the_caption_maximum_but_never_the_users():
    _, _, outcome = run_plan("1girl", [many("t", 9), " One. Two. Three. Four. Five."], "Mine. Also mine.",
                             task="extend_both", length="very_short", nl_length="very_short")
    assert outcome.nl_text == "Mine. Also mine."  # very_short allows 2 sentences: the user's two
    _, _, outcome = run_plan("1girl", [many("t", 9), " One. Two. Three."], "Mine.", task="extend_both",
                             length="very_short", nl_length="very_short")
    assert outcome.nl_text == "Mine. One."


def test_tasks_that_only_read_the_caption_keep_it_as_written():
    inputs, _, outcome = run_plan("", [" and a cat. \ntag: cat, roof, night", "", ""], NL, task="extend_tags",
                                  length="very_short")
    assert outcome.new_tags == ["cat", "roof", "night"] and outcome.nl_text == NL
    assert inputs[1].endswith("long: " + NL + "\ntag: cat, roof, night")  # the caption as written, not extended
    inputs, _, outcome = run_plan("", [" cat, roof", "", ""], NL, task="caption_to_tags", length="very_short")
    head = "aspect_ratio: 0.7\ntarget: <|very_short|> <|long_to_tag|>\nlong: " + NL + "\ntag:"
    assert inputs == [head, head + " cat, roof", head + " cat, roof"]
    assert outcome.new_tags == ["cat", "roof"] and outcome.nl_text == NL


def test_a_too_long_later_call_ends_the_step_with_what_it_has():
    _, _, outcome = run_plan("1girl", [", x", PromptTooLongError("full")], length="long")
    assert outcome.new_tags == ["x"]
