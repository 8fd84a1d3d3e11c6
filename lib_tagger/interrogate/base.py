"""What every interrogator offers: labels with categories, ``preprocess``, ``predict(batch)``, ``close``.

An interrogator turns pre-processed images into :class:`Prediction` objects: one score per tag and,
for models with a rating head, one score per rating. Turning scores into a prompt is
:mod:`lib_tagger.interrogate.postprocess`'s job, the same for every model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

#: Tag categories an interrogator may report (Danbooru's names); "rating" labels are returned apart.
CATEGORIES = ("general", "character", "copyright", "artist", "meta")
RATING = "rating"


class InterrogatorError(ValueError):
    """A model file is unreadable or does not match its expected layout; the message names the file."""


@dataclass(frozen=True)
class Labels:
    """The model's output labels in output order, each with its category (a :data:`CATEGORIES` name,
    :data:`RATING`, or None when unknown)."""

    names: tuple[str, ...]
    categories: tuple[str | None, ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.categories):
            raise ValueError(f"Labels: {len(self.names)} names but {len(self.categories)} categories")

    def category_of(self) -> dict[str, str | None]:
        """Tag name → category."""
        return dict(zip(self.names, self.categories))

    @property
    def rating_names(self) -> tuple[str, ...]:
        return tuple(name for name, category in zip(self.names, self.categories) if category == RATING)


@dataclass(frozen=True)
class Prediction:
    """Scores (0..1) of one image: every tag, and every rating when the model has a rating head."""

    scores: Mapping[str, float]
    ratings: Mapping[str, float] = field(default_factory=dict)
    categories: Mapping[str, str | None] = field(default_factory=dict)

    @property
    def rating(self) -> str | None:
        """The most likely rating, or None for models without ratings."""
        return max(self.ratings, key=self.ratings.__getitem__) if self.ratings else None


class Interrogator(Protocol):
    """A loaded tagging model. ``predict`` takes a stack of ``preprocess`` outputs."""

    name: str
    labels: Labels

    def preprocess(self, image: Any) -> Any:
        """The model's input tensor (C, H, W) for one PIL image."""

    def predict(self, batch: Any) -> list[Prediction]:
        """Scores for a batch tensor (B, C, H, W) of :meth:`preprocess` outputs."""

    def close(self) -> None:
        """Drop the weights (RAM and VRAM); later calls raise."""


def split_predictions(rows: Sequence[Sequence[float]], labels: Labels) -> list[Prediction]:
    """One :class:`Prediction` per row of sigmoid scores, rating labels set apart."""
    categories = labels.category_of()
    tag_categories = {name: category for name, category in categories.items() if category != RATING}
    results = []
    for row in rows:
        scores: dict[str, float] = {}
        ratings: dict[str, float] = {}
        for name, category, score in zip(labels.names, labels.categories, row):
            (ratings if category == RATING else scores)[name] = float(score)
        results.append(Prediction(scores, ratings, tag_categories))
    return results
