"""Model prompt formats: build each model's input from sorted tags, parse its output.

``build_model_input`` / ``parse_model_output`` / ``target_tag_count`` / ``topup_input`` dispatch
on the prompt format names of :mod:`lib_tagger.models.registry`. Importing reads no tag data.
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
    PROMPT_FORMATS,
    build_model_input,
    parse_model_output,
    target_tag_count,
    topup_input,
)
from lib_tagger.formats.options import FormatError, FormatOptions

__all__ = [
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
    "parse_dantaggen_text",
    "parse_dart_pieces",
    "parse_model_output",
    "target_tag_count",
    "topup_input",
]
