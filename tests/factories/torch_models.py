"""Small random-weight LLaMA / Mistral / Mixtral folders in the real Hugging Face layout.

A folder holds ``config.json``, ``model.safetensors`` (exact HF key names), ``tokenizer.json``
written by the running venv's ``tokenizers`` (or, on request, a hand-written file with fields only
newer releases know), ``tokenizer_config.json`` and ``generation_config.json``.

``favour`` makes chosen tokens likely whatever the context: every embedding carries a constant
1.0 in hidden dimension 0, which survives the small blocks and the final RMSNorm as about
``sqrt(hidden)``; the output row of a favoured token gets ``bias / sqrt(hidden)`` in that column.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

DART_SPECIALS = (
    "<|bos|>",
    "<|eos|>",
    "<|pad|>",
    "<|unk|>",
    "<copyright>",
    "</copyright>",
    "<character>",
    "</character>",
    "<general>",
    "</general>",
    "<|rating:general|>",
    "<|rating:sensitive|>",
    "<|aspect_ratio:tall|>",
    "<|aspect_ratio:square|>",
    "<|length:short|>",
    "<|length:long|>",
    "<|identity:none|>",
    "<|input_end|>",
)
DART_TAGS = (
    "1girl",
    "solo",
    "long hair",
    "short hair",
    "blue eyes",
    "red eyes",
    "smile",
    "open mouth",
    "blush",
    "skirt",
    "shirt",
    "hat",
    "dress",
    "holding",
    "standing",
    "sitting",
    "outdoors",
    "sky",
    "cloud",
    "animal ears",
    "cat ears",
    "ahoge",
    "aqua hair",
    "armband",
    "vocaloid",
    "hatsune miku",
)
LLAMA_SPECIALS = ("<|empty|>", "<|input_end|>", "<|very_short|>", "<|short|>", "<|long|>", "<|very_long|>")
LLAMA_WORDS = (
    "1girl",
    "solo",
    "long",
    "short",
    "hair",
    "blue",
    "red",
    "eyes",
    "smile",
    "open",
    "mouth",
    "hat",
    "dress",
    "skirt",
    "holding",
    "sky",
    "masterpiece",
    "quality",
    "rating",
    "artist",
    "characters",
    "copyrights",
    "aspect",
    "ratio",
    "target",
    "general",
    "safe",
    "ornament",
)
LLAMA_CHARS = (",", ":", ".", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9")
SPM_SPACE = "▁"


def dart_prompt(general: str = "1girl, solo", copyrights: str = "", characters: str = "") -> str:
    """A Dart v2 SFT prompt string (starts with ``<|bos|>``)."""
    return (
        f"<|bos|><copyright>{copyrights}</copyright><character>{characters}</character>"
        f"<|rating:general|><|aspect_ratio:tall|><|length:short|><general>{general}"
        f"<|identity:none|><|input_end|>"
    )


def dantaggen_prompt(general: str = "1girl, solo") -> str:
    """A DanTagGen-style prompt (no bos: the generator adds it)."""
    return (
        f"quality: masterpiece\nrating: safe\nartist: <|empty|>\ncharacters: <|empty|>\n"
        f"copyrights: <|empty|>\naspect ratio: 0.7\ntarget: <|short|>\ngeneral: {general}<|input_end|>"
    )


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


# --- tokenizers --------------------------------------------------------------------------------


def write_dart_tokenizer(folder: Path, tags: Sequence[str] = DART_TAGS) -> dict[str, int]:
    """A word-level Dart v2 style tokenizer (specials first: bos 0, eos 1, pad 2); returns the vocab."""
    from tokenizers import AddedToken, Regex, Tokenizer, models, pre_tokenizers

    vocab = {token: i for i, token in enumerate((*DART_SPECIALS, *tags))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|unk|>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r",(?:\s)*"), behavior="removed")
    tok.add_special_tokens([AddedToken(t, normalized=False) for t in DART_SPECIALS])
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    _write_json(
        folder / "tokenizer_config.json",
        {
            "bos_token": "<|bos|>",
            "eos_token": "<|eos|>",
            "pad_token": "<|pad|>",
            "unk_token": "<|unk|>",
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_input_names": ["input_ids", "attention_mask"],
        },
    )
    _write_json(folder / "generation_config.json", {"bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 2})
    return vocab


def _spm_vocab(words: Sequence[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """SentencePiece-style BPE pieces: ids 0-2, 256 byte tokens, chars, every prefix of ``▁word``."""
    pieces = ["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in range(256)), SPM_SPACE, *LLAMA_CHARS]
    merges: list[tuple[str, str]] = []
    for word in words:
        for ch in word:
            if ch not in pieces:
                pieces.append(ch)
        current = SPM_SPACE
        for ch in word:
            merged = current + ch
            if merged not in pieces:
                pieces.append(merged)
                merges.append((current, ch))
            current = merged
    return {p: i for i, p in enumerate(pieces)}, merges


def write_llama_tokenizer(folder: Path, words: Sequence[str] = LLAMA_WORDS) -> dict[str, int]:
    """A LLaMA-style BPE tokenizer (byte fallback, legacy ``▁`` normalizer) written by ``tokenizers``."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors

    vocab, merges = _spm_vocab(words)
    tok = Tokenizer(
        models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True)
    )
    tok.normalizer = normalizers.Sequence(
        [normalizers.Prepend(SPM_SPACE), normalizers.Replace(" ", SPM_SPACE)]
    )
    tok.decoder = decoders.Sequence(
        [
            decoders.Replace(SPM_SPACE, " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    tok.add_special_tokens([AddedToken(t, normalized=False) for t in ("<unk>", "<s>", "</s>")])
    tok.add_special_tokens([AddedToken(t, normalized=False) for t in LLAMA_SPECIALS])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    _write_llama_side_files(folder)
    return tok.get_vocab(with_added_tokens=True)


def write_newer_llama_tokenizer_json(folder: Path, words: Sequence[str] = LLAMA_WORDS) -> dict[str, int]:
    """A hand-written tokenizer.json in the form tokenizers >= 0.19 writes (``ignore_merges``, merge
    pairs, Metaspace ``prepend_scheme``/``split``), which tokenizers 0.13.3 cannot read as it is."""
    vocab, merges = _spm_vocab(words)
    added = [
        {
            "id": vocab[t],
            "content": t,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for t in ("<unk>", "<s>", "</s>")
    ]
    for token in LLAMA_SPECIALS:
        vocab[token] = len(vocab)
        added.append(
            {
                "id": vocab[token],
                "content": token,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
        )
    data = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Metaspace",
            "replacement": SPM_SPACE,
            "prepend_scheme": "first",
            "split": False,
        },
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": "<s>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
            ],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}},
        },
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": SPM_SPACE}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0},
            ],
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": "<unk>",
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": True,
            "ignore_merges": False,
            "vocab": {k: v for k, v in vocab.items() if k not in LLAMA_SPECIALS},
            "merges": [list(m) for m in merges],
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    _write_json(folder / "tokenizer.json", data)
    _write_llama_side_files(folder)
    return vocab


def _write_llama_side_files(folder: Path) -> None:
    _write_json(
        folder / "tokenizer_config.json",
        {
            "add_bos_token": True,
            "add_eos_token": False,
            "bos_token": {"content": "<s>", "special": True},
            "eos_token": "</s>",
            "unk_token": "<unk>",
            "pad_token": None,
            "tokenizer_class": "LlamaTokenizer",
        },
    )
    _write_json(folder / "generation_config.json", {"bos_token_id": 1, "eos_token_id": 2})


# --- configs and weights -----------------------------------------------------------------------


def tiny_config(model_type: str, vocab_size: int, **overrides: object) -> dict[str, object]:
    """A small HF config.json dict (hidden 64, 2 layers) for ``llama``, ``mistral`` or ``mixtral``."""
    architectures = {
        "llama": "LlamaForCausalLM",
        "mistral": "MistralForCausalLM",
        "mixtral": "MixtralForCausalLM",
    }
    config: dict[str, object] = {
        "model_type": model_type,
        "architectures": [architectures[model_type]],
        "vocab_size": vocab_size,
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": 128,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "tie_word_embeddings": False,
        "initializer_range": 0.15,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }
    if model_type in ("mistral", "mixtral"):
        config.update(num_attention_heads=8, num_key_value_heads=1, rope_theta=1000.0, sliding_window=None)
    if model_type == "mixtral":
        config.update(num_local_experts=4, num_experts_per_tok=2)
    config.update(overrides)
    return config


def hf_key_shapes(config: Mapping[str, object]) -> dict[str, tuple[int, ...]]:
    """HF checkpoint key names and shapes for ``config`` (written independently of the decoder)."""
    h, f, v = int(config["hidden_size"]), int(config["intermediate_size"]), int(config["vocab_size"])
    heads = int(config["num_attention_heads"])
    kv = int(config.get("num_key_value_heads", heads))
    d = int(config.get("head_dim") or h // heads)
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (v, h), "model.norm.weight": (h,)}
    if not config.get("tie_word_embeddings"):
        shapes["lm_head.weight"] = (v, h)
    for i in range(int(config["num_hidden_layers"])):
        p = f"model.layers.{i}."
        shapes.update(
            {
                p + "input_layernorm.weight": (h,),
                p + "post_attention_layernorm.weight": (h,),
                p + "self_attn.q_proj.weight": (heads * d, h),
                p + "self_attn.k_proj.weight": (kv * d, h),
                p + "self_attn.v_proj.weight": (kv * d, h),
                p + "self_attn.o_proj.weight": (h, heads * d),
            }
        )
        if config.get("attention_bias"):
            shapes.update(
                {
                    p + "self_attn.q_proj.bias": (heads * d,),
                    p + "self_attn.k_proj.bias": (kv * d,),
                    p + "self_attn.v_proj.bias": (kv * d,),
                    p + "self_attn.o_proj.bias": (h,),
                }
            )
        if config["model_type"] == "mixtral":
            shapes[p + "block_sparse_moe.gate.weight"] = (int(config["num_local_experts"]), h)
            for e in range(int(config["num_local_experts"])):
                q = f"{p}block_sparse_moe.experts.{e}."
                shapes.update({q + "w1.weight": (f, h), q + "w2.weight": (h, f), q + "w3.weight": (f, h)})
        else:
            shapes.update(
                {
                    p + "mlp.gate_proj.weight": (f, h),
                    p + "mlp.up_proj.weight": (f, h),
                    p + "mlp.down_proj.weight": (h, f),
                }
            )
    return shapes


def random_state(config: Mapping[str, object], seed: int = 0, favour: Mapping[int, float] | None = None):
    """Random weights for ``config`` (norm weights around 1, the rest N(0, initializer_range))."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    std = float(config.get("initializer_range", 0.02))
    state = {}
    for key, shape in hf_key_shapes(config).items():
        if key.endswith("norm.weight"):
            state[key] = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        else:
            state[key] = std * torch.randn(shape, generator=gen)
    if favour:
        hidden = int(config["hidden_size"])
        state["model.embed_tokens.weight"][:, 0] = 1.0
        head = state["lm_head.weight"]
        head[:, 0] = 0.0
        for token, bias in favour.items():
            head[token, 0] = bias / math.sqrt(hidden)
    return state


def write_decoder_folder(
    folder: Path,
    config: Mapping[str, object],
    seed: int = 0,
    favour: Mapping[int, float] | None = None,
    shards: int = 1,
) -> Path:
    """Write ``config.json`` and random safetensors weights (``shards`` > 1: an indexed, sharded set)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    _write_json(folder / "config.json", dict(config))
    state = random_state(config, seed, favour)
    if shards == 1:
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
        return folder
    keys = list(state)
    weight_map = {}
    for n in range(shards):
        name = f"model-{n + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: state[k] for k in keys[n::shards]}
        save_file(part, str(folder / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, name))
    _write_json(folder / "model.safetensors.index.json", {"metadata": {}, "weight_map": weight_map})
    return folder


def make_dart_folder(
    folder: Path,
    model_type: str = "mistral",
    seed: int = 0,
    favour: Mapping[str, float] | None = None,
    **overrides: object,
) -> Path:
    """A Dart v2 style model folder: word-level tokenizer + Mistral (or Mixtral) weights."""
    vocab = write_dart_tokenizer(folder)
    if favour:
        overrides.setdefault("initializer_range", 0.02)  # small blocks: the favoured logits dominate
    config = tiny_config(model_type, len(vocab), bos_token_id=0, eos_token_id=1, pad_token_id=2, **overrides)
    ids = {vocab[t]: b for t, b in (favour or {}).items()}
    return write_decoder_folder(folder, config, seed, ids)


def make_llama_folder(
    folder: Path,
    seed: int = 0,
    favour: Mapping[str, float] | None = None,
    newer_tokenizer_json: bool = False,
    **overrides: object,
) -> Path:
    """A DanTagGen style folder: LLaMA-style tokenizer + LLaMA weights (mish by default)."""
    writer = write_newer_llama_tokenizer_json if newer_tokenizer_json else write_llama_tokenizer
    vocab = writer(folder)
    if favour:
        overrides.setdefault("initializer_range", 0.02)  # small blocks: the favoured logits dominate
    config = tiny_config("llama", len(vocab), **{"hidden_act": "mish", **overrides})
    ids = {vocab[t]: b for t, b in (favour or {}).items()}
    return write_decoder_folder(folder, config, seed, ids)


# --- transformers reference models -------------------------------------------------------------


def hf_classes(model_type: str):
    """(config class, model class) of transformers for ``model_type``, or None when absent."""
    import transformers

    names = {
        "llama": ("LlamaConfig", "LlamaForCausalLM"),
        "mistral": ("MistralConfig", "MistralForCausalLM"),
        "mixtral": ("MixtralConfig", "MixtralForCausalLM"),
    }[model_type]
    if not all(hasattr(transformers, n) for n in names):
        return None
    return tuple(getattr(transformers, n) for n in names)


def save_hf_model(folder: Path, config: Mapping[str, object], seed: int = 0):
    """A random transformers model (eager attention, random norm weights) saved with save_pretrained."""
    import torch

    classes = hf_classes(str(config["model_type"]))
    if classes is None:
        raise RuntimeError(f"transformers {config['model_type']} classes are not installed")
    config_cls, model_cls = classes
    kwargs = {k: v for k, v in config.items() if k not in ("model_type", "architectures")}
    hf_config = config_cls(**kwargs)
    if hasattr(hf_config, "_attn_implementation_internal"):
        hf_config._attn_implementation_internal = "eager"
    torch.manual_seed(seed)
    model = model_cls(hf_config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.normal_(1.0, 0.1)
    model.save_pretrained(str(folder), safe_serialization=True)
    return model
