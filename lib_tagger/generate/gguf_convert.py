"""A safetensors decoder checkpoint as a llama.cpp GGUF with Q8_0 weights, converted once beside it.

llama.cpp runs LLaMA, Mistral and Mixtral checkpoints as its ``llama`` architecture: the query and
key rows are permuted from HF's rotate-half layout to llama.cpp's interleaved pairs, Mixtral's
experts are stacked, norms and the router stay float32. The file's vocabulary is a placeholder of
the right size: prompts go in as our tokenizer's ids (:class:`~lib_tagger.generate.llama_cpp_backend.LlamaCppGenerator`
with ``tokenizer``). Writing needs the ``gguf`` package (llama.cpp's own writer, on PyPI).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from lib_tagger.generate.base import ModelLoadError
from lib_tagger.generate.checkpoint import CONFIG_FILE, DecoderConfig, load_state, read_config

GGUF_FILE = "lib-tagger-q8_0.gguf"
_STAMP_FILE = "lib-tagger-q8_0.json"  # what the GGUF was converted from
_QK8_0 = 32  # Q8_0 quantizes rows in blocks of 32
log = logging.getLogger(__name__)


def q8_0_problem(config: DecoderConfig) -> str | None:
    """None when llama.cpp's llama graph computes what ``config`` describes, else why not (one line)."""
    if config.hidden_act not in ("silu", "swish"):
        return f"llama.cpp's llama graph uses SiLU, this model {config.hidden_act}"
    if config.sliding_window is not None:
        return "llama.cpp's llama graph has no sliding-window attention"
    if config.attention_bias or config.mlp_bias:
        return "llama.cpp's llama graph has no projection biases"
    return None


def _source_stamp(folder: Path) -> dict[str, list[int]]:
    """Size and modification time of the files the conversion reads."""
    stamp = {}
    for path in sorted(folder.iterdir()):
        if path.name == CONFIG_FILE or path.suffix == ".safetensors" or path.name.endswith(".index.json"):
            info = path.stat()
            stamp[path.name] = [info.st_size, info.st_mtime_ns]
    return stamp


def q8_0_file(folder: str | Path) -> Path:
    """``folder``'s checkpoint as ``lib-tagger-q8_0.gguf`` beside it, converted now when it is missing or
    older than the checkpoint. ModelLoadError says why when it cannot be (architecture, no ``gguf``)."""
    folder = Path(folder)
    target, stamp_file = folder / GGUF_FILE, folder / _STAMP_FILE
    stamp = _source_stamp(folder)
    try:
        if target.is_file() and json.loads(stamp_file.read_text(encoding="utf-8")) == stamp:
            return target
    except (OSError, ValueError):
        pass
    config = read_config(folder)
    problem = q8_0_problem(config)
    if problem:
        raise ModelLoadError(f"{folder.name} cannot run in llama.cpp: {problem}")
    partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")  # two processes converting never share one
    started = time.perf_counter()
    try:
        write_q8_0(config, load_state(folder, config), partial)
        os.replace(partial, target)
        stamp_file.write_text(json.dumps(stamp), encoding="utf-8")
        log.info("tagger: converted %s to %s (once) in %.1fs", folder.name, target.name, time.perf_counter() - started)
    except OSError as exc:
        raise ModelLoadError(f"cannot write {target}: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return target


def add_llama_shape(writer, *, context: int, hidden: int, layers: int, ffn: int, heads: int, kv_heads: int,
                    head_dim: int, rope_theta: float, rms_eps: float, vocab: int, file_type) -> None:
    """The llama-architecture hyperparameters of a GGUF file being written by ``writer``."""
    writer.add_context_length(context)
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(rope_theta)
    writer.add_layer_norm_rms_eps(rms_eps)
    writer.add_vocab_size(vocab)
    writer.add_file_type(file_type)


def write_q8_0(config: DecoderConfig, state: dict, path: Path) -> Path:
    """Write ``state`` (HF key names, as :func:`load_state` reads them) to ``path`` as a Q8_0 GGUF."""
    try:
        import gguf
        from gguf.quants import quantize
    except ImportError as exc:
        raise ModelLoadError(f"converting to GGUF needs the gguf package (pip install gguf): {exc}") from exc
    import numpy as np

    cfg = config
    writer = gguf.GGUFWriter(str(path), "llama")
    add_llama_shape(writer, context=cfg.max_positions, hidden=cfg.hidden_size, layers=cfg.num_layers,
                    ffn=cfg.intermediate_size, heads=cfg.num_heads, kv_heads=cfg.num_kv_heads, head_dim=cfg.head_dim,
                    rope_theta=cfg.rope_theta, rms_eps=cfg.rms_norm_eps, vocab=cfg.vocab_size,
                    file_type=gguf.LlamaFileType.MOSTLY_Q8_0)
    if cfg.num_experts:
        writer.add_expert_count(cfg.num_experts)
        writer.add_expert_used_count(cfg.experts_per_token)
    writer.add_tokenizer_model("llama")
    writer.add_token_list([f"<{i}>" for i in range(cfg.vocab_size)])
    writer.add_token_scores([0.0] * cfg.vocab_size)
    writer.add_token_types([3] * 3 + [1] * (cfg.vocab_size - 3))  # ids 0-2 (specials) as control tokens
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(1)

    def array(key: str):
        return state.pop(key).float().numpy()

    def rotary(w, heads: int):  # HF's rotate-half halves -> llama.cpp's interleaved pairs
        return w.reshape(heads, 2, w.shape[0] // heads // 2, w.shape[1]).swapaxes(1, 2).reshape(w.shape)

    def add(name: str, values, keep_float: bool = False) -> None:
        if values.ndim == 1 or keep_float or values.shape[-1] % _QK8_0:
            writer.add_tensor(name, np.ascontiguousarray(values, dtype=np.float32))
        else:
            writer.add_tensor(name, quantize(values, gguf.GGMLQuantizationType.Q8_0),
                              raw_dtype=gguf.GGMLQuantizationType.Q8_0)

    embed = array("model.embed_tokens.weight")
    add("token_embd.weight", embed)
    add("output_norm.weight", array("model.norm.weight"))
    add("output.weight", embed if cfg.tie_word_embeddings else array("lm_head.weight"))
    for i in range(cfg.num_layers):
        p, b = f"model.layers.{i}.", f"blk.{i}."
        add(b + "attn_norm.weight", array(p + "input_layernorm.weight"))
        add(b + "ffn_norm.weight", array(p + "post_attention_layernorm.weight"))
        add(b + "attn_q.weight", rotary(array(p + "self_attn.q_proj.weight"), cfg.num_heads))
        add(b + "attn_k.weight", rotary(array(p + "self_attn.k_proj.weight"), cfg.num_kv_heads))
        add(b + "attn_v.weight", array(p + "self_attn.v_proj.weight"))
        add(b + "attn_output.weight", array(p + "self_attn.o_proj.weight"))
        if cfg.num_experts:
            m = p + "block_sparse_moe."
            add(b + "ffn_gate_inp.weight", array(m + "gate.weight"), keep_float=True)
            for part, hf in (("gate", "w1"), ("down", "w2"), ("up", "w3")):
                experts = [array(f"{m}experts.{e}.{hf}.weight") for e in range(cfg.num_experts)]
                add(f"{b}ffn_{part}_exps.weight", np.stack(experts))
        else:
            for part in ("gate", "up", "down"):
                add(f"{b}ffn_{part}.weight", array(f"{p}mlp.{part}_proj.weight"))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
