"""Write small random-weight LLaMA GGUF files with a DanTagGen-style tokenizer (tests and benches).

The files use the real GGUF layout that llama.cpp loads (``gguf.GGUFWriter(path, "llama")``), a
SentencePiece vocabulary (``<unk>``, ``<s>``, ``</s>``, the 256 byte tokens, every prefix of
``▁word`` and ``word`` for a small tag vocabulary, the DanTagGen specials) and random weights.

Steering, so that tests can make chosen outputs likely: ``token_bias`` adds a logit bias to a
token whatever the context, ``transitions`` one that applies after a given token (a bigram
table, e.g. ``{",": {"▁solo": 8}, "▁solo": {",": 8}}`` makes ", solo, solo" likely). Every
embedding is then a constant e0 plus a random unit direction; with small blocks, the state
after the last RMSNorm stays close to the current token's embedding, and the output rows read
the bias off e0 and the bigram off the direction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

SPECIAL_TOKENS = ("<|empty|>", "<|input_end|>", "<|very_short|>", "<|short|>", "<|long|>", "<|very_long|>")

TAGS = (
    "1girl", "solo", "long hair", "short hair", "blue eyes", "red eyes", "smile", "open mouth",
    "looking at viewer", "blush", "skirt", "shirt", "white background", "simple background",
    "hat", "dress", "holding", "standing", "sitting", "outdoors", "sky", "cloud", "masterpiece",
)
# Words of the DanTagGen prompt template, so that prompts tokenize into whole pieces too.
PROMPT_WORDS = ("quality", "rating", "artist", "characters", "copyrights", "aspect", "ratio", "target",
                "general", "safe", "sensitive", "explicit")
PUNCTUATION = (",", ":", ".", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9")

SPM_SPACE = "▁"
TENSOR_TYPES = ("f32", "f16", "q8_0")


@dataclass(frozen=True)
class LlamaSpec:
    """Shape, tokenizer and tensor type of a GGUF LLaMA model to write."""

    hidden: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 4
    ffn: int = 128
    context: int = 512
    rope_theta: float = 10000.0
    rms_eps: float = 1e-5
    vocab_size: int | None = None  # pad with filler pieces up to this size; None: what the words need
    tensor_type: str = "f16"
    special_type: str = "control"  # or "user_defined"
    tags: tuple[str, ...] = TAGS
    token_bias: Mapping[str, float] = field(default_factory=dict)  # piece -> logit bias, always
    transitions: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # prev -> {next: bias}
    seed: int = 0
    block_out_std: float | None = None  # std of the blocks' output weights; None: 0.005 when steered, else 0.02


# The shape of KBlueLeaf/DanTagGen-delta (~393M parameters).
DANTAGGEN_DELTA = LlamaSpec(hidden=1024, layers=24, heads=16, kv_heads=16, ffn=3072, context=2048,
                            vocab_size=32006)


def tiny_spec(**changes) -> LlamaSpec:
    """The default tiny spec with ``changes`` applied."""
    return replace(LlamaSpec(), **changes)


def _filler_pieces(count: int, taken: set[str]) -> list[str]:
    """Single CJK / Hangul characters: each tokenizes as itself, so generated text round-trips."""
    ranges = (range(0x4E00, 0xA000), range(0xAC00, 0xD7A4), range(0x3400, 0x4DC0))
    chars = (chr(c) for r in ranges for c in r if chr(c) not in taken)
    pieces = [c for _, c in zip(range(count), chars)]
    if len(pieces) < count:
        raise ValueError(f"cannot make {count} filler pieces")
    return pieces


def build_vocab(spec: LlamaSpec) -> tuple[list[str], list[float], list[int]]:
    """Token pieces, scores and types (gguf ``TokenType`` values) of the SentencePiece vocabulary."""
    from gguf import TokenType

    pieces = ["<unk>", "<s>", "</s>"]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
    pieces += [f"<0x{b:02X}>" for b in range(256)]
    types += [TokenType.BYTE] * 256

    normal: list[str] = [SPM_SPACE, *PUNCTUATION, SPM_SPACE + ","]
    words = sorted({word for tag in (*spec.tags, *PROMPT_WORDS) for word in tag.split()})
    for word in words:
        full = SPM_SPACE + word  # "▁word" after a space, "word" at a line start
        normal += [full[:end] for end in range(2, len(full) + 1)]
        normal += [word[:end] for end in range(2, len(word) + 1)]
    normal = list(dict.fromkeys(normal))
    n_special = len(SPECIAL_TOKENS)
    if spec.vocab_size is not None:
        room = spec.vocab_size - len(pieces) - n_special - len(normal)
        if room < 0:
            raise ValueError(f"vocab_size {spec.vocab_size} is too small for the {len(normal)} word pieces")
        normal += _filler_pieces(room, set(normal))
    pieces += normal
    types += [TokenType.NORMAL] * len(normal)
    special = TokenType.CONTROL if spec.special_type == "control" else TokenType.USER_DEFINED
    pieces += list(SPECIAL_TOKENS)
    types += [special] * n_special
    # SentencePiece merges the pair whose merged piece scores highest: longer pieces win.
    scores = [float(len(p)) if t == TokenType.NORMAL else 0.0 for p, t in zip(pieces, types)]
    return pieces, scores, [int(t) for t in types]


def _weights(spec: LlamaSpec, n_vocab: int, piece_ids: Mapping[str, int]) -> dict[str, np.ndarray]:
    """Random float32 weights in the HF Linear layout (out, in), named as llama.cpp expects."""
    rng = np.random.default_rng(spec.seed)
    h, head_dim = spec.hidden, spec.hidden // spec.heads
    kv = spec.kv_heads * head_dim
    steered = bool(spec.token_bias or spec.transitions)
    # Small blocks keep the residual close to the embedding (deep models need smaller ones).
    block_out_std = spec.block_out_std or (0.005 if steered else 0.02)

    def normal(*shape: int, std: float = 0.02) -> np.ndarray:
        return (rng.standard_normal(shape, dtype=np.float32) * std).astype(np.float32)

    def ids(pieces: Sequence[str]) -> list[int]:
        missing = [p for p in pieces if p not in piece_ids]
        if missing:
            raise ValueError(f"token_bias/transitions name pieces not in the vocabulary: {missing}")
        return [piece_ids[p] for p in pieces]

    embd = normal(n_vocab, h)
    output = normal(n_vocab, h)
    if steered:
        # Embedding = e0 + a random unit direction u_t in dims 1.., so after the last RMSNorm the
        # state is about sqrt(h/2) * (e0 + u_current);
        # output row n = (bias_n e0 + sum_p T[p, n] u_p) / sqrt(h/2).
        directions = rng.standard_normal((n_vocab, h - 1)).astype(np.float32)
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        embd[:, 0], embd[:, 1:] = 1.0, directions
        scale = math.sqrt(h / 2)
        for token, bias in zip(ids(list(spec.token_bias)), spec.token_bias.values()):
            output[token, 0] = bias / scale
        for prev, nexts in spec.transitions.items():
            [prev_id] = ids([prev])
            for token, bias in zip(ids(list(nexts)), nexts.values()):
                output[token, 1:] += bias / scale * directions[prev_id]
    tensors = {"token_embd.weight": embd, "output_norm.weight": np.ones(h, np.float32),
               "output.weight": output}
    for i in range(spec.layers):
        tensors.update({
            f"blk.{i}.attn_norm.weight": np.ones(h, np.float32),
            f"blk.{i}.attn_q.weight": normal(h, h),
            f"blk.{i}.attn_k.weight": normal(kv, h),
            f"blk.{i}.attn_v.weight": normal(kv, h),
            f"blk.{i}.attn_output.weight": normal(h, h, std=block_out_std),
            f"blk.{i}.ffn_norm.weight": np.ones(h, np.float32),
            f"blk.{i}.ffn_gate.weight": normal(spec.ffn, h),
            f"blk.{i}.ffn_up.weight": normal(spec.ffn, h),
            f"blk.{i}.ffn_down.weight": normal(h, spec.ffn, std=block_out_std),
        })
    return tensors


def write_llama_gguf(path: str | Path, spec: LlamaSpec | None = None) -> Path:
    """Write a LLaMA GGUF file for ``spec`` (default: tiny f16) at ``path``; return the path."""
    from gguf import GGMLQuantizationType, GGUFWriter, LlamaFileType
    from gguf.quants import quantize

    from lib_tagger.generate.gguf_convert import add_llama_shape

    spec = spec or LlamaSpec()
    if spec.tensor_type not in TENSOR_TYPES:
        raise ValueError(f"tensor_type must be one of {TENSOR_TYPES}, not {spec.tensor_type!r}")
    if spec.hidden % spec.heads or spec.heads % spec.kv_heads:
        raise ValueError("hidden must be a multiple of heads, and heads a multiple of kv_heads")
    pieces, scores, types = build_vocab(spec)
    piece_ids = {p: i for i, p in enumerate(pieces)}
    qtype, ftype = {
        "f32": (GGMLQuantizationType.F32, LlamaFileType.ALL_F32),
        "f16": (GGMLQuantizationType.F16, LlamaFileType.MOSTLY_F16),
        "q8_0": (GGMLQuantizationType.Q8_0, LlamaFileType.MOSTLY_Q8_0),
    }[spec.tensor_type]

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = GGUFWriter(str(path), "llama")
    writer.add_name("tiny-dantaggen-test")
    add_llama_shape(writer, context=spec.context, hidden=spec.hidden, layers=spec.layers, ffn=spec.ffn,
                    heads=spec.heads, kv_heads=spec.kv_heads, head_dim=spec.hidden // spec.heads,
                    rope_theta=spec.rope_theta, rms_eps=spec.rms_eps, vocab=len(pieces), file_type=ftype)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(pieces)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)

    for name, array in _weights(spec, len(pieces), piece_ids).items():
        if array.ndim == 1 or qtype == GGMLQuantizationType.F32:
            writer.add_tensor(name, array)
        elif qtype == GGMLQuantizationType.F16:
            writer.add_tensor(name, array.astype(np.float16))
        else:
            writer.add_tensor(name, quantize(array, qtype), raw_dtype=qtype)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def token_ids(spec: LlamaSpec, pieces: Sequence[str]) -> list[int]:
    """The ids that ``pieces`` get in the vocabulary of ``spec``."""
    ids = {p: i for i, p in enumerate(build_vocab(spec)[0])}
    return [ids[p] for p in pieces]


def dantaggen_prompt(general: str = "1girl, solo", target: str = "<|short|>") -> str:
    """A DanTagGen-delta model input (see notes/model-formats.md)."""
    return (
        "quality: masterpiece\n"
        "rating: safe\n"
        "artist: <|empty|>\n"
        "characters: <|empty|>\n"
        "copyrights: <|empty|>\n"
        "aspect ratio: 0.7\n"
        f"target: {target}\n"
        f"general: {general}<|input_end|>"
    )
