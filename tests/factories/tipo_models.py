"""Tiny random-weight TIPO models in the real layouts: a Hugging Face folder (``config.json``,
``model.safetensors``, SentencePiece ``tokenizer.model``, ``added_tokens.json`` and the side
files of the TIPO repos) and the same weights and vocabulary as a llama.cpp GGUF file (the added
tokens typed as special tokens).

The SentencePiece model is trained here (``sentencepiece`` package) on TIPO-style text, with the
LLaMA tokenizer's settings: BPE, byte fallback, no normalization, no whitespace folding, a dummy
prefix space. The added tokens follow its pieces (TIPO: 32000-32012 after LLaMA's 32000 pieces).

Steering, so that output parses: ``favour`` adds a logit bias to a piece whatever the context,
``transitions`` one that applies right after a given piece (a bigram table). Every embedding is a
constant 1 in dimension 0 plus a random unit direction in the others; with small blocks and unit
norms, the last hidden state stays close to the current token's embedding, so the output rows
read the bias off dimension 0 and the bigram off the direction.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from lib_tagger.formats.tipo import ADDED_TOKENS

KEYS = ("meta", "rating", "artist", "characters", "copyrights", "quality", "aspect_ratio", "target", "tag",
        "short", "long")
TAGS = (
    "1girl", "2girls", "solo", "long hair", "short hair", "blue eyes", "red eyes", "smile", "open mouth",
    "looking at viewer", "blush", "skirt", "shirt", "hat", "dress", "holding", "sky", "cloud", "outdoors",
    "hatsune miku", "vocaloid", "aqua hair", "twintails", "highres", "absurdres", "masterpiece",
    "best quality", "newest", "sensitive", "general", "explicit", "scenery", "no humans", "yuri",
    "hakurei reimu", "touhou", "ningen mame", "flower", "white background", "simple background",
)
SENTENCES = (
    "A girl sits under a blue sky.", "She smiles at the viewer.", "A girl with long aqua hair stands outdoors.",
    "The sky is full of clouds.", "Two girls hug in a field of flowers.", "She wears a white dress and a hat.",
)
# The TIPO-500M shape (hidden 1280, 20 layers, FFN 3840, vocabulary 32013): the file sizes of
# KBlueLeaf/TIPO-500M (2.03 GB of float32 safetensors, 1.02 GB F16 GGUF) fit these numbers.
TIPO_500M = {"hidden_size": 1280, "num_hidden_layers": 20, "num_attention_heads": 20, "num_key_value_heads": 20,
             "intermediate_size": 3840, "max_position_embeddings": 2048}


def corpus() -> list[str]:
    """TIPO-style lines to train the tiny SentencePiece model on."""
    lines = [f"{key}: {', '.join(TAGS[n % len(TAGS):][:6])}" for n, key in enumerate(KEYS * 4)]
    lines += [", ".join(TAGS[n:n + 8]) for n in range(0, len(TAGS), 3)]
    lines += (list(SENTENCES) + [" ".join(SENTENCES[n:n + 3]) for n in range(len(SENTENCES))]) * 4
    lines += [f"aspect_ratio: {r / 10:.1f}" for r in range(2, 30)]
    return lines * 3


def train_sentencepiece(vocab_size: int = 1000) -> bytes:
    """A serialized LLaMA-style SentencePiece model (``<unk>`` 0, ``<s>`` 1, ``</s>`` 2)."""
    import sentencepiece

    out = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus()), model_writer=out, model_type="bpe", vocab_size=vocab_size,
        byte_fallback=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=True, split_digits=True, character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2,
        pad_id=-1, hard_vocab_limit=False, minloglevel=2, num_threads=1,
    )
    return out.getvalue()


def _processor(model: bytes):
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor()
    processor.LoadFromSerializedProto(model)
    return processor


def piece_ids(folder: Path) -> dict[str, int]:
    """Piece (or added token) → id of the tiny model in ``folder``."""
    processor = _processor((folder / "tokenizer.model").read_bytes())
    ids = {processor.IdToPiece(i): i for i in range(processor.GetPieceSize())}
    ids.update(json.loads((folder / "added_tokens.json").read_text(encoding="utf-8")))
    return ids


def tiny_config(vocab_size: int, **overrides: object) -> dict[str, object]:
    """A TIPO-like config.json (LLaMA, SiLU; hidden 64, 2 layers) with the repos' token ids."""
    config: dict[str, object] = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": vocab_size,
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 4, "max_position_embeddings": 1024, "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": False, "bos_token_id": 1,
        "eos_token_id": 2, "pad_token_id": 2, "attention_bias": False, "mlp_bias": False,
    }
    config.update(overrides)
    return config


def steered_state(config: Mapping[str, object], favour: Mapping[int, float],
                  transitions: Mapping[int, Mapping[int, float]], seed: int = 0, block_out_std: float = 0.001):
    """Random LLaMA weights (HF key names) steered by ``favour`` and ``transitions`` (see the module doc).

    ``block_out_std``: the scale of the blocks' output projections when steered; deep, wide models
    (20 layers of 1280) need 0, or the blocks' sum drowns the token's embedding."""
    import torch

    from tests.factories.torch_models import hf_key_shapes

    gen = torch.Generator().manual_seed(seed)
    h = int(config["hidden_size"])
    vocab = int(config["vocab_size"])
    steered = bool(favour or transitions)
    state = {}
    for key, shape in hf_key_shapes(config).items():
        if key.endswith("norm.weight"):
            state[key] = torch.ones(shape)
        elif key.endswith(("o_proj.weight", "down_proj.weight")):
            state[key] = (block_out_std if steered else 0.02) * torch.randn(shape, generator=gen)
        else:
            state[key] = 0.02 * torch.randn(shape, generator=gen)
    if steered:
        directions = torch.randn(vocab, h - 1, generator=gen)
        directions /= directions.norm(dim=1, keepdim=True)
        embed = state["model.embed_tokens.weight"]
        embed[:, 0], embed[:, 1:] = 1.0, directions
        head = state["lm_head.weight"]
        scale = math.sqrt(h / 2)  # the final RMSNorm scales (1, u) to about sqrt(h/2) * (1, u)
        for token, bias in favour.items():
            head[token, 0] = bias / scale
        for prev, nexts in transitions.items():
            for token, bias in nexts.items():
                head[token, 1:] += bias / scale * directions[prev]
    return state


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


def make_tipo_folder(folder: Path, favour: Mapping[str, float] | None = None,
                     transitions: Mapping[str, Mapping[str, float]] | None = None, seed: int = 0,
                     vocab_size: int = 1000, **overrides: object) -> Path:
    """A TIPO model folder as the hub repos have it; steering names pieces (``▁smile``, ``,``,
    ``</s>``, ``<|empty|>``...)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    model = train_sentencepiece(vocab_size)
    (folder / "tokenizer.model").write_bytes(model)
    size = _processor(model).GetPieceSize()
    _write_json(folder / "added_tokens.json", {token: size + n for n, token in enumerate(ADDED_TOKENS)})
    _write_json(folder / "special_tokens_map.json",
                {"bos_token": {"content": "<s>", "lstrip": False, "normalized": False, "rstrip": False},
                 "eos_token": {"content": "</s>", "lstrip": False, "normalized": False, "rstrip": False},
                 "pad_token": "</s>", "unk_token": "<unk>"})
    _write_json(folder / "tokenizer_config.json", {"add_bos_token": True, "add_eos_token": False,
                                                    "tokenizer_class": "LlamaTokenizer", "legacy": True})
    _write_json(folder / "generation_config.json", {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2})
    ids = piece_ids(folder)

    def lookup(piece: str) -> int:
        if piece not in ids:
            raise ValueError(f"{piece!r} is not a piece of the tiny TIPO vocabulary")
        return ids[piece]

    config = tiny_config(size + len(ADDED_TOKENS), **overrides)
    _write_json(folder / "config.json", config)
    state = steered_state(
        config, {lookup(p): b for p, b in (favour or {}).items()},
        {lookup(p): {lookup(n): b for n, b in nexts.items()} for p, nexts in (transitions or {}).items()}, seed)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def _permute_rope(weight, heads: int):
    """HF's rotate-half q/k rows in the interleaved order llama.cpp's rope expects."""
    rows = weight.shape[0]
    return weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def _gguf_vocab(processor, added: Mapping[str, int], special_type: str, pad_to: int | None = None):
    """(pieces, scores, types) of a GGUF vocabulary: the SentencePiece pieces, unused fillers up to
    ``pad_to`` pieces (a real-size vocabulary), then the added tokens as special tokens."""
    from gguf import TokenType

    pieces, scores, types = [], [], []
    for i in range(processor.GetPieceSize()):
        pieces.append(processor.IdToPiece(i))
        scores.append(processor.GetScore(i))
        kind = (TokenType.UNKNOWN if processor.IsUnknown(i) else TokenType.CONTROL if processor.IsControl(i)
                else TokenType.BYTE if processor.IsByte(i) else TokenType.UNUSED if processor.IsUnused(i)
                else TokenType.NORMAL)
        types.append(int(kind))
    while pad_to is not None and len(pieces) < pad_to:
        pieces.append(f"<unused{len(pieces)}>")
        scores.append(-1e9)
        types.append(int(TokenType.UNUSED))
    special = TokenType.CONTROL if special_type == "control" else TokenType.USER_DEFINED
    for token, token_id in sorted(added.items(), key=lambda item: item[1]):
        assert token_id == len(pieces), "added tokens follow the pieces"
        pieces.append(token)
        scores.append(0.0)
        types.append(int(special))
    return pieces, scores, types


def _write_gguf(path: Path, config: Mapping, vocab, state: Mapping, tensor_type: str) -> Path:
    """A llama.cpp GGUF file of HF-named LLaMA weights (``state``: name → array-like)."""
    import numpy as np
    from gguf import GGMLQuantizationType, GGUFWriter, LlamaFileType

    from lib_tagger.generate.gguf_convert import add_llama_shape

    pieces, scores, types = vocab
    h, heads, kv = config["hidden_size"], config["num_attention_heads"], config["num_key_value_heads"]
    writer = GGUFWriter(str(path), "llama")
    writer.add_name("tiny-tipo-test")
    add_llama_shape(writer, context=config["max_position_embeddings"], hidden=h, layers=config["num_hidden_layers"],
                    ffn=config["intermediate_size"], heads=heads, kv_heads=kv, head_dim=h // heads,
                    rope_theta=config["rope_theta"], rms_eps=config["rms_norm_eps"], vocab=len(pieces),
                    file_type=LlamaFileType.MOSTLY_F16 if tensor_type == "f16" else LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(pieces)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_pad_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)

    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    layer = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for i in range(config["num_hidden_layers"]):
        for hf, ours in layer.items():
            names[f"model.layers.{i}.{hf}.weight"] = f"blk.{i}.{ours}.weight"
    for key, gguf_name in names.items():
        array = np.asarray(state[key], dtype=np.float32)
        if key.endswith("q_proj.weight"):
            array = _permute_rope(array, heads)
        elif key.endswith("k_proj.weight"):
            array = _permute_rope(array, kv)
        if array.ndim == 1 or tensor_type == "f32":
            writer.add_tensor(gguf_name, array)
        else:
            writer.add_tensor(gguf_name, array.astype(np.float16), raw_dtype=GGMLQuantizationType.F16)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_tipo_gguf(folder: Path, path: Path, tensor_type: str = "f16", special_type: str = "control") -> Path:
    """The folder's weights and tokenizer as a llama.cpp GGUF file (added tokens as ``special_type``)."""
    from safetensors.numpy import load_file

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    processor = _processor((folder / "tokenizer.model").read_bytes())
    added = json.loads((folder / "added_tokens.json").read_text(encoding="utf-8"))
    state = load_file(str(folder / "model.safetensors"))
    return _write_gguf(path, config, _gguf_vocab(processor, added, special_type), state, tensor_type)


def write_steered_tipo_gguf(path: Path, shape: Mapping[str, object], favour: Mapping[str, float],
                            transitions: Mapping[str, Mapping[str, float]], vocab_size: int = 32013,
                            seed: int = 0) -> Path:
    """A GGUF file of ``shape`` (e.g. :data:`TIPO_500M`) with a real-size vocabulary (the trained pieces,
    unused fillers, TIPO's added tokens last) and steered random weights, written without a folder.
    The blocks' output projections are zero, so the steering holds at any depth (every matrix
    product still runs at full size); the fillers are biased away."""
    processor = _processor(train_sentencepiece())
    added = {token: vocab_size - len(ADDED_TOKENS) + n for n, token in enumerate(ADDED_TOKENS)}
    vocab = _gguf_vocab(processor, added, "control", pad_to=vocab_size - len(ADDED_TOKENS))
    ids = {piece: n for n, piece in enumerate(vocab[0])}
    config = tiny_config(vocab_size, **shape)
    fillers = {n: -30.0 for n in range(processor.GetPieceSize(), vocab_size - len(ADDED_TOKENS))}  # never sampled
    state = steered_state(config, {**fillers, **{ids[p]: b for p, b in favour.items()}},
                          {ids[p]: {ids[n]: b for n, b in nexts.items()} for p, nexts in transitions.items()}, seed,
                          block_out_std=0.0)
    return _write_gguf(path, config, vocab, {k: v.numpy() for k, v in state.items()}, "f16")


def tag_transitions(tags: Sequence[str], end: float = 1.5, step: float = 7.0) -> dict[str, dict[str, float]]:
    """A bigram table over single-piece tag words: after ``,`` a tag word, after a tag word ``,``
    (or the end), after ``:`` a tag word or the first word of a sentence."""
    table: dict[str, dict[str, float]] = {",": {f"▁{t}": step for t in tags}}
    for t in tags:
        table[f"▁{t}"] = {",": step, "</s>": end}
    table[":"] = {**{f"▁{t}": step for t in tags}}
    return table
