"""One typed model of the upsampling settings, shared by the UI, the HTTP API, infotext and the CLI.

``UpsampleSettings`` is a frozen dataclass. Build it with :meth:`UpsampleSettings.from_args`
(positional values in the order of :data:`FIELD_ORDER`, the order of the script's UI
components), :meth:`UpsampleSettings.from_dict` (named values, as the API accepts) or
:meth:`UpsampleSettings.from_infotext`. Invalid values raise :class:`SettingsError` with a
message that names the field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

RATINGS = ("auto", "sfw", "general", "sensitive", "nsfw", "questionable", "explicit")
LENGTHS = ("very_short", "short", "medium", "long", "very_long")
IDENTITIES = ("none", "lax", "strict")
POSITIONS = ("end", "before_break")
TIMINGS = ("per_image", "before_styles")
SEED_MODES = ("image", "fixed")
#: TIPO's tasks: tags → more tags, tags → tags + a caption, caption → tags, tags + caption → both extended.
TASKS = ("extend_tags", "add_caption", "caption_to_tags", "extend_both")
#: Where natural-language text goes: after the last tag, on a new last line, before the first BREAK.
NL_POSITIONS = ("end", "new_line", "before_break")
#: How the result becomes the prompt: inserted (the prompt kept byte for byte), or a template (lib_tagger/output.py).
OUTPUT_FORMATS = ("insert", "tags_first", "nl_first", "tags_only", "nl_only")
#: Weights of torch models: auto (8-bit on a CPU that runs it, float32 elsewhere; a GPU takes its
#: half type), fp32, int8 (CPU; falls back to float32 with a message where it cannot run), or q8_0
#: (converted once to a Q8_0 GGUF and run by llama.cpp, one prompt at a time: the fastest for single
#: prompts on a CPU; torch's int8 with a message where it cannot run). GGUF models run in their file's
#: own quantisation whatever this says.
PRECISIONS = ("auto", "fp32", "int8", "q8_0")

DEFAULT_MODEL = "dart-v2-moe-sft"
#: Largest fixed tag seed (the backends take any seed modulo 2**64 or 2**32).
SEED_MAX = 2**63 - 1
#: Longest model name or path accepted (Linux's PATH_MAX).
MODEL_MAX_CHARS = 4096

#: Named sampling presets: (temperature, top_p, top_k, min_p).
PRESETS: dict[str, tuple[float, float, int, float]] = {
    "balanced": (1.0, 0.95, 100, 0.0),
    "focused": (0.8, 0.85, 50, 0.05),
    "creative": (1.35, 0.95, 100, 0.0),
    "tipo": (0.35, 0.95, 60, 0.1),  # KGen's defaults for TIPO
}

INFOTEXT_PREFIX = "Tagger"


class SettingsError(ValueError):
    """A setting has an invalid value; the message names the field."""


@dataclass(frozen=True)
class UpsampleSettings:
    """Everything that decides how one prompt is upsampled."""

    enabled: bool = False
    model: str = DEFAULT_MODEL
    length: str = "long"
    rating: str = "auto"
    identity: str = "none"
    preset: str = "custom"
    temperature: float = 1.0
    top_p: float = 0.95
    top_k: int = 100
    min_p: float = 0.0
    ban_tags: str = ""
    position: str = "end"
    timing: str = "per_image"
    seed_mode: str = "image"
    seed: int = -1
    max_new_tokens: int = 128
    # TIPO only (other models ignore them); new fields go last: positional API args follow this order.
    nl_prompt: str = ""
    task: str = "extend_tags"
    nl_length: str = "long"
    nl_position: str = "end"
    output_format: str = "insert"
    precision: str = "auto"  # torch models' weights (GGUF keeps its own); last, like the TIPO fields

    def __post_init__(self) -> None:
        coerced = {f.name: _coerce(f.name, f.type, getattr(self, f.name)) for f in fields(self)}
        for name, value in coerced.items():
            object.__setattr__(self, name, value)
        self._validate()

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_args(cls, *args: Any) -> UpsampleSettings:
        """Positional values in :data:`FIELD_ORDER`; a shorter list keeps the defaults.

        A single dict argument is taken as named values (the API's "one dict" form).
        """
        if len(args) == 1 and isinstance(args[0], Mapping):
            return cls.from_dict(args[0])
        if len(args) > len(FIELD_ORDER):
            raise SettingsError(f"expected at most {len(FIELD_ORDER)} values, got {len(args)}")
        return cls(**dict(zip(FIELD_ORDER, args)))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> UpsampleSettings:
        """Named values; unknown names are an error, missing ones keep their default."""
        unknown = sorted(set(values) - set(FIELD_ORDER))
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(unknown)}; known: {', '.join(FIELD_ORDER)}")
        return cls(**dict(values))

    def replace(self, **changes: Any) -> UpsampleSettings:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def to_args(self) -> list[Any]:
        """Positional values in :data:`FIELD_ORDER`."""
        return [getattr(self, name) for name in FIELD_ORDER]

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELD_ORDER}

    # ---------------------------------------------------------------- derived
    def sampling(self) -> tuple[float, float, int, float]:
        """(temperature, top_p, top_k, min_p), from the preset unless it is "custom"."""
        if self.preset != "custom":
            return PRESETS[self.preset]
        return (self.temperature, self.top_p, self.top_k, self.min_p)

    def banned(self) -> tuple[str, ...]:
        """The ban list as separate patterns (comma or newline separated)."""
        parts = self.ban_tags.replace("\n", ",").split(",")
        return tuple(p.strip() for p in parts if p.strip())

    # ---------------------------------------------------------------- infotext
    def to_infotext(self) -> dict[str, str]:
        """``extra_generation_params`` entries; only values that differ from the defaults, plus the model."""
        out = {f"{INFOTEXT_PREFIX} model": self.model}
        default = UpsampleSettings()
        for name in FIELD_ORDER:
            if name in ("enabled", "model"):
                continue
            value = getattr(self, name)
            if value != getattr(default, name):
                out[infotext_key(name)] = str(value)
        return out

    @classmethod
    def from_infotext(cls, params: Mapping[str, str]) -> UpsampleSettings | None:
        """Settings recorded by :meth:`to_infotext`, or None when the infotext has none."""
        if f"{INFOTEXT_PREFIX} model" not in params:
            return None
        values: dict[str, Any] = {"enabled": True}
        for name in FIELD_ORDER:
            key = infotext_key(name)
            if key in params and name != "enabled":
                values[name] = params[key]
        return cls.from_dict(values)

    # ---------------------------------------------------------------- validation
    def _validate(self) -> None:
        choices = {
            "rating": RATINGS,
            "length": LENGTHS,
            "identity": IDENTITIES,
            "position": POSITIONS,
            "timing": TIMINGS,
            "seed_mode": SEED_MODES,
            "preset": ("custom", *PRESETS),
            "task": TASKS,
            "nl_length": LENGTHS,
            "nl_position": NL_POSITIONS,
            "output_format": OUTPUT_FORMATS,
            "precision": PRECISIONS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise SettingsError(f"{name}: {getattr(self, name)!r} is not one of {', '.join(allowed)}")
        if not self.model.strip():
            raise SettingsError("model: must not be empty")
        if len(self.model) > MODEL_MAX_CHARS:
            raise SettingsError(f"model: longer than {MODEL_MAX_CHARS} characters")
        if not -1 <= self.seed <= SEED_MAX:
            raise SettingsError(f"seed: {self.seed} is outside [-1, {SEED_MAX}]")
        ranges = {
            "temperature": (0.0, 5.0),
            "top_p": (0.0, 1.0),
            "top_k": (0, 100_000),
            "min_p": (0.0, 1.0),
            "max_new_tokens": (1, 1024),
        }
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise SettingsError(f"{name}: {value} is outside [{low}, {high}]")


FIELD_ORDER: tuple[str, ...] = tuple(f.name for f in fields(UpsampleSettings))


def infotext_key(name: str) -> str:
    """The infotext key of a field, e.g. ``top_p`` → ``Tagger top p``."""
    return f"{INFOTEXT_PREFIX} {name.replace('_', ' ')}"


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


def _coerce(name: str, type_name: Any, value: Any) -> Any:
    """Turn UI/API/infotext values (strings, floats from sliders) into the field's type."""
    kind = type_name if isinstance(type_name, str) else getattr(type_name, "__name__", str(type_name))
    try:
        if kind == "bool":
            if isinstance(value, str):
                low = value.strip().lower()
                if low in _TRUE:
                    return True
                if low in _FALSE:
                    return False
                raise ValueError(value)
            return bool(value)
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError(value)
            if isinstance(value, int):
                return value
            number = float(value)  # "12", 12.0 from a slider; inf, nan and "1e400" are refused below
            if number != int(number):
                raise ValueError(value)
            return int(number)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if kind == "str":
            if value is None:
                return ""
            return str(value).strip() if name != "ban_tags" else str(value)
    except (TypeError, ValueError, OverflowError):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise SettingsError(f"{name}: {shown} is not a valid {kind}") from None
    return value
