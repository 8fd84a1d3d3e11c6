"""How new tags and text become the prompt: inserted into it (the default), or an output template.

``insert`` keeps the user's prompt byte for byte: the new tags go in at one place, the
natural-language text at another (:mod:`lib_tagger.prompt.insert`, :mod:`lib_tagger.prompt.sentences`).

The templates, for users who want the model's order (z-tipo's presets), rebuild the prompt from
its tags instead: people count, characters, copyrights, artists, general tags (the user's, then
the new ones), quality, meta and rating, with the text placed by the template. They keep extra
networks (appended at the end, as z-tipo does) but not weights, ``BREAK``, ``AND`` or prompt
editing; that is why they are off by default.

- ``tags_first``: tags, then the text, then quality, meta, rating ("both, tag first");
- ``nl_first``: people, characters, copyrights, artists, the text, general tags, quality... ("both, NL first");
- ``tags_only``: the tags without the text ("tag only");
- ``nl_only``: the text alone ("NL only").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .prompt import escape_tag, extract_tags, insert_tags, parse
from .prompt.sentences import insert_sentences, prompt_text
from .tags import sort_tags

TEMPLATES = ("tags_first", "nl_first", "tags_only", "nl_only")


@dataclass(frozen=True)
class Composed:
    """The new prompt and what went into it (model-form tags, the text as written)."""

    prompt: str
    tags: tuple[str, ...]
    text: str


def compose(prompt: str, new_tags: Sequence[str], nl_text: str, output_format: str = "insert",
            position: str = "end", nl_position: str = "end",
            canonical: Callable[[str], str] | None = None, known: Callable[[str], bool] | None = None) -> Composed:
    """``prompt`` with ``new_tags`` and ``nl_text`` added as ``output_format`` says (see the module doc);
    ``canonical`` and ``known`` as for :func:`~lib_tagger.prompt.insert_tags`."""
    if output_format == "insert":
        tagged = insert_tags(prompt, new_tags, position, canonical=canonical, known=known)
        text = insert_sentences(tagged.prompt, nl_text, nl_position)
        return Composed(text.prompt, tagged.inserted, "".join(text.inserted))
    if output_format not in TEMPLATES:
        raise ValueError(f"output format must be insert or one of {', '.join(TEMPLATES)}, not {output_format!r}")
    return _render(prompt, new_tags, nl_text, output_format)


def _render(prompt: str, new_tags: Sequence[str], nl_text: str, template: str) -> Composed:
    found = extract_tags(prompt)
    user = sort_tags([t.tag for t in found if not t.conditional])
    keys = {t.tag.casefold() for t in found}
    added = [t for t in dict.fromkeys(" ".join(t.split()) for t in new_tags) if t and t.casefold() not in keys]
    new = sort_tags(added)

    def both(name: str) -> list[str]:
        return [*getattr(user, name), *getattr(new, name)]

    people = [*both("special"), *both("character"), *both("copyright"), *both("artist")]
    general, tail = both("general"), [*both("quality"), *both("meta"), *both("rating")]
    text = [("text", prompt_text(nl_text))]
    tags = {name: [("tag", t) for t in values] for name, values in
            (("people", people), ("general", general), ("tail", tail))}
    parts = {
        "tags_first": tags["people"] + tags["general"] + text + tags["tail"],
        "nl_first": tags["people"] + text + tags["general"] + tags["tail"],
        "tags_only": tags["people"] + tags["general"] + tags["tail"],
        "nl_only": text,
    }[template]
    body = ", ".join(escape_tag(value) if kind == "tag" else value for kind, value in dict.fromkeys(parts) if value)
    networks = " ".join(token.text for token in parse(prompt) if token.kind == "network")
    rendered = f"{body} {networks}".strip() if networks else body
    kept = tuple(t for t in added if template != "nl_only")
    return Composed(rendered, kept, text[0][1] if template != "tags_only" else "")
