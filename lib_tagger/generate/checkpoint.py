"""Hugging Face LLaMA / Mistral / Mixtral checkpoints: ``config.json`` and safetensors weights.

:class:`DecoderConfig` validates the architecture fields the decoder understands;
:func:`load_state` reads every tensor (one file or a sharded index) with the exact HF key names
and checks keys and shapes against the config, naming the file and the tensor on any mismatch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib_tagger.generate.base import ModelLoadError
from lib_tagger.models.files import read_json

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
MODEL_TYPES = ("llama", "mistral", "mixtral")
ACTIVATIONS = ("silu", "swish", "gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "mish")
_IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)  # a buffer older transformers releases saved
@dataclass(frozen=True)
class DecoderConfig:
    """The architecture fields of a HF ``config.json`` this decoder understands."""

    model_type: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    max_positions: int
    sliding_window: int | None
    hidden_act: str
    tie_word_embeddings: bool
    num_experts: int
    experts_per_token: int
    attention_bias: bool
    mlp_bias: bool

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = CONFIG_FILE) -> DecoderConfig:
        """Validate ``data`` (a parsed config.json); ModelLoadError names ``source`` and the field."""

        def need_int(name: str, default: int | None = None) -> int:
            value = data.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ModelLoadError(f"{source}: field {name!r} must be a positive integer, got {value!r}")
            return value

        def need_float(name: str, default: float) -> float:
            value = data.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ModelLoadError(f"{source}: field {name!r} must be a positive number, got {value!r}")
            return float(value)

        model_type = data.get("model_type")
        if model_type not in MODEL_TYPES:
            raise ModelLoadError(
                f"{source}: model_type {model_type!r} is not one of {', '.join(MODEL_TYPES)}"
            )
        if data.get("rope_scaling"):
            raise ModelLoadError(
                f"{source}: field 'rope_scaling' is not supported (got {data['rope_scaling']!r})"
            )
        act = str(data.get("hidden_act", "silu")).lower()
        if act not in ACTIVATIONS:
            raise ModelLoadError(f"{source}: hidden_act {act!r} is not one of {', '.join(ACTIVATIONS)}")
        hidden = need_int("hidden_size")
        heads = need_int("num_attention_heads")
        kv_heads = need_int("num_key_value_heads", heads)
        if heads % kv_heads:
            raise ModelLoadError(
                f"{source}: num_attention_heads {heads} is not a multiple of "
                f"num_key_value_heads {kv_heads}"
            )
        head_dim = data.get("head_dim") or (hidden // heads)
        if not isinstance(head_dim, int) or head_dim <= 0 or head_dim % 2:
            raise ModelLoadError(
                f"{source}: field 'head_dim' must be a positive even integer, got {head_dim!r}"
            )
        window = data.get("sliding_window") if model_type != "llama" else None
        if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window <= 0):
            raise ModelLoadError(f"{source}: field 'sliding_window' must be a positive integer or null")
        experts = need_int("num_local_experts") if model_type == "mixtral" else 0
        per_token = need_int("num_experts_per_tok", 2) if experts else 0
        if per_token > experts:
            raise ModelLoadError(
                f"{source}: num_experts_per_tok {per_token} exceeds num_local_experts {experts}"
            )
        return cls(
            model_type=model_type,
            vocab_size=need_int("vocab_size"),
            hidden_size=hidden,
            intermediate_size=need_int("intermediate_size"),
            num_layers=need_int("num_hidden_layers"),
            num_heads=heads,
            num_kv_heads=kv_heads,
            head_dim=head_dim,
            rms_norm_eps=need_float("rms_norm_eps", 1e-6),
            rope_theta=need_float("rope_theta", 10000.0),
            max_positions=need_int("max_position_embeddings", 2048),
            sliding_window=window,
            hidden_act=act,
            tie_word_embeddings=bool(data.get("tie_word_embeddings", False)),
            num_experts=experts,
            experts_per_token=per_token,
            attention_bias=bool(data.get("attention_bias", False)),
            mlp_bias=bool(data.get("mlp_bias", False)),
        )

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every tensor the checkpoint must hold, by HF key name (``lm_head`` only when untied)."""
        h, f, d = self.hidden_size, self.intermediate_size, self.head_dim
        q, kv = self.num_heads * d, self.num_kv_heads * d
        shapes: dict[str, tuple[int, ...]] = {
            "model.embed_tokens.weight": (self.vocab_size, h),
            "model.norm.weight": (h,),
        }
        if not self.tie_word_embeddings:
            shapes["lm_head.weight"] = (self.vocab_size, h)
        for i in range(self.num_layers):
            p = f"model.layers.{i}."
            shapes[p + "input_layernorm.weight"] = (h,)
            shapes[p + "post_attention_layernorm.weight"] = (h,)
            for name, rows, cols in (("q", q, h), ("k", kv, h), ("v", kv, h), ("o", h, q)):
                shapes[f"{p}self_attn.{name}_proj.weight"] = (rows, cols)
                if self.attention_bias:
                    shapes[f"{p}self_attn.{name}_proj.bias"] = (rows,)
            if self.num_experts:
                shapes[p + "block_sparse_moe.gate.weight"] = (self.num_experts, h)
                for e in range(self.num_experts):
                    for name, shape in (("w1", (f, h)), ("w2", (h, f)), ("w3", (f, h))):
                        shapes[f"{p}block_sparse_moe.experts.{e}.{name}.weight"] = shape
            else:
                for name, shape in (("gate", (f, h)), ("up", (f, h)), ("down", (h, f))):
                    shapes[f"{p}mlp.{name}_proj.weight"] = shape
                    if self.mlp_bias:
                        shapes[f"{p}mlp.{name}_proj.bias"] = shape[:1]
        return shapes


def read_config(folder: str | Path) -> DecoderConfig:
    """The :class:`DecoderConfig` of ``folder/config.json``."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise ModelLoadError(f"model config missing: {path}")
    return DecoderConfig.from_dict(read_json(path, ModelLoadError), str(path))


def _weight_files(folder: Path) -> dict[Path, list[str] | None]:
    """Safetensors files to read, each with the keys it should hold (None: whatever it holds)."""
    single, index = folder / WEIGHTS_FILE, folder / WEIGHTS_INDEX_FILE
    if single.is_file():
        return {single: None}
    if not index.is_file():
        raise ModelLoadError(f"model weights missing: neither {single} nor {index} exists")
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        files: dict[Path, list[str] | None] = {}
        for key, name in weight_map.items():
            files.setdefault(folder / name, []).append(key)  # type: ignore[union-attr]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelLoadError(f"cannot read {index}: {exc}") from exc
    for path in files:
        if not path.is_file():
            raise ModelLoadError(f"weight shard missing: {path} (listed in {index})")
    return files


def load_state(folder: str | Path, config: DecoderConfig) -> dict[str, Any]:
    """All checkpoint tensors (on CPU, file dtype), checked against ``config``: keys and shapes.

    Every tensor is read into memory of its own (:mod:`~lib_tagger.models.safetensors_file`), never a view
    of the file: a file replaced under the loaded model cannot end the process.
    """
    from lib_tagger.models.safetensors_file import SafetensorsError, read_header, read_tensors

    folder = Path(folder)
    expected = config.expected_shapes()
    state: dict[str, Any] = {}
    for path, listed in _weight_files(folder).items():
        try:
            entries, start = read_header(path)
            if listed is not None and sorted(listed) != sorted(entries):
                raise ModelLoadError(f"{path}: keys differ from those listed in {WEIGHTS_INDEX_FILE}")
            wanted = {}
            for key, entry in entries.items():
                if key.endswith(_IGNORED_SUFFIXES) or (key == "lm_head.weight" and config.tie_word_embeddings):
                    continue
                if key not in expected:
                    raise ModelLoadError(
                        f"{path}: unexpected tensor {key!r} for a {config.model_type} with the given config.json"
                    )
                if entry.shape != expected[key]:
                    raise ModelLoadError(
                        f"{path}: tensor {key!r} has shape {entry.shape}, config.json implies {expected[key]}"
                    )
                wanted[key] = entry
            state.update(read_tensors(path, wanted, start))
        except (OSError, SafetensorsError) as exc:
            raise ModelLoadError(f"{path}: not a readable safetensors file ({exc})") from exc
    missing = [k for k in expected if k not in state]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ModelLoadError(f"{folder}: weights file lacks {shown}")
    return state
