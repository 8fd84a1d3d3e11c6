"""Model families and their prompt formats: build each model's input, parse its output, plan calls.

Each family module exports one family object (:mod:`lib_tagger.formats.family`): ``DART``,
``DANTAGGEN``, ``TIPO``. ``family_of`` finds a format's family; ``build_model_input`` /
``parse_model_output`` / ``target_tag_count`` / ``topup_input`` dispatch on the format names.
Importing reads no tag data.
"""

from lib_tagger.formats.dantaggen import (
    build_dantaggen,
    dantaggen_aspect_ratio,
    dantaggen_length,
    dantaggen_rating,
    parse_dantaggen_text,
)
from lib_tagger.formats.dart import (
    aspect_ratio_bucket,
    build_dart_base,
    build_dart_sft,
    dart_rating,
    parse_dart_pieces,
)
from lib_tagger.formats.dispatch import (
    FAMILIES,
    PROMPT_FORMATS,
    build_model_input,
    family_of,
    guess_format,
    parse_model_output,
    target_tag_count,
    topup_input,
)
from lib_tagger.formats.options import FormatError, FormatOptions

__all__ = [
    "FAMILIES",
    "PROMPT_FORMATS",
    "FormatError",
    "FormatOptions",
    "aspect_ratio_bucket",
    "build_dantaggen",
    "build_dart_base",
    "build_dart_sft",
    "build_model_input",
    "dantaggen_aspect_ratio",
    "dantaggen_length",
    "dantaggen_rating",
    "dart_rating",
    "family_of",
    "guess_format",
    "parse_dantaggen_text",
    "parse_dart_pieces",
    "parse_model_output",
    "target_tag_count",
    "topup_input",
]
