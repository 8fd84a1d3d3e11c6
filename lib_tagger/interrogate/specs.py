"""The known interrogators: one table of names, hub repos, families and files (no torch)."""

from __future__ import annotations

from dataclasses import dataclass

FAMILY_JOYTAG = "joytag"
FAMILY_WD = "wd"

#: Files each family reads from its folder.
FAMILY_FILES = {
    FAMILY_JOYTAG: ("config.json", "model.safetensors", "top_tags.txt"),
    FAMILY_WD: ("config.json", "model.safetensors", "selected_tags.csv"),
}


@dataclass(frozen=True)
class InterrogatorSpec:
    """One known interrogator: ``name`` is what settings, the API and ``--model`` take."""

    name: str
    repo: str
    family: str
    architecture: str
    description: str = ""

    @property
    def files(self) -> tuple[str, ...]:
        return FAMILY_FILES[self.family]


INTERROGATORS: dict[str, InterrogatorSpec] = {
    spec.name: spec
    for spec in (
        InterrogatorSpec("joytag", "fancyfeast/joytag", FAMILY_JOYTAG, "vit",
                         "JoyTag ViT-B/16, 448 px, 5,813 tags (general, character, copyright, artist, meta)"),
        InterrogatorSpec("wd-vit-tagger-v3", "SmilingWolf/wd-vit-tagger-v3", FAMILY_WD, "vit",
                         "WD v3 ViT-B/16, 448 px, 10,861 tags and 4 ratings"),
        InterrogatorSpec("wd-swinv2-tagger-v3", "SmilingWolf/wd-swinv2-tagger-v3", FAMILY_WD, "swinv2",
                         "WD v3 SwinV2-B, 448 px, 10,861 tags and 4 ratings"),
        InterrogatorSpec("wd-convnext-tagger-v3", "SmilingWolf/wd-convnext-tagger-v3", FAMILY_WD, "convnext",
                         "WD v3 ConvNeXt-B, 448 px, 10,861 tags and 4 ratings"),
        InterrogatorSpec("wd-vit-large-tagger-v3", "SmilingWolf/wd-vit-large-tagger-v3", FAMILY_WD, "vit",
                         "WD v3 ViT-L/16, 448 px, 10,861 tags and 4 ratings"),
        InterrogatorSpec("wd-eva02-large-tagger-v3", "SmilingWolf/wd-eva02-large-tagger-v3", FAMILY_WD, "eva02",
                         "WD v3 EVA02-L/14, 448 px, 10,861 tags and 4 ratings (most accurate, slowest)"),
    )
}

DEFAULT_INTERROGATOR = "joytag"


def interrogator_names() -> list[str]:
    return list(INTERROGATORS)


def find_spec(model: str) -> InterrogatorSpec | None:
    """The spec whose name or hub repo is ``model`` (case-insensitive), or None."""
    key = model.strip().lower()
    for spec in INTERROGATORS.values():
        if key in (spec.name, spec.repo.lower()):
            return spec
    return None


def family_of_folder_files(names: set[str]) -> str | None:
    """The family whose files a folder holds (``top_tags.txt``: JoyTag, ``selected_tags.csv``: WD)."""
    for family, files in FAMILY_FILES.items():
        if files[-1] in names:
            return family
    return None
