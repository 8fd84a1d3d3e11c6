"""A small decoder-only transformer in plain torch for LLaMA, Mistral and Mixtral checkpoints.

It takes a checkpoint read by :mod:`~lib_tagger.generate.checkpoint` (the HF ``config.json`` and
safetensors weights with the exact HF key names) and reproduces the HF forward pass
(RMSNorm, rotate-half RoPE, grouped-query attention, optional sliding window, gated MLP or top-k
mixture of experts). It needs no transformers model class, so it runs on A1111's transformers 4.30.

Inference only: a preallocated KV cache holds keys/values for ``batch x max_len`` slots, batches
are left-padded and described by a per-slot validity mask. The form each projection weight is
kept in (float, transposed, packed for batches, 8-bit) is :mod:`~lib_tagger.generate.linear`'s choice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lib_tagger.generate.checkpoint import DecoderConfig, load_state, read_config

#: Up to this many rows, every chosen expert runs on all rows (weights read once, zero-weighted rows
#: wasted): right on a GPU, where reading weights dominates. On a CPU a product reads its weight
#: more slowly the more rows it has (bench/bench_row_products.py), so from 2 rows on each expert runs
#: on its own rows only.
_MOE_DENSE_ROWS = {"cuda": 16, "cpu": 1}


def _activation(name: str):
    import torch.nn.functional as F

    if name in ("silu", "swish"):
        return F.silu
    if name == "mish":
        return F.mish
    if name == "relu":
        return F.relu
    if name == "gelu":
        return F.gelu
    return lambda x: F.gelu(x, approximate="tanh")


class KVCache:
    """Preallocated keys/values for ``batch`` rows of ``max_len`` slots, plus per-slot validity."""

    def __init__(self, config: DecoderConfig, batch: int, max_len: int, device, dtype) -> None:
        import torch

        shape = (config.num_layers, batch, config.num_kv_heads, max_len, config.head_dim)
        self.keys = torch.empty(shape, device=device, dtype=dtype)
        self.values = torch.empty(shape, device=device, dtype=dtype)
        self.valid = torch.zeros(batch, max_len, device=device, dtype=torch.bool)
        self.next_pos = torch.zeros(batch, device=device, dtype=torch.long)
        self.length = 0
        self.padded = False
        self.max_len = max_len

    def keep_rows(self, rows: list[int]) -> None:
        """Keep only batch rows ``rows`` (ascending), moved to the front in place: no new cache."""
        import torch

        for new, old in enumerate(rows):
            if new != old:
                self.keys[:, new].copy_(self.keys[:, old])
                self.values[:, new].copy_(self.values[:, old])
        n = len(rows)
        index = torch.tensor(rows, device=self.valid.device)
        self.keys, self.values = self.keys[:, :n], self.values[:, :n]
        self.valid, self.next_pos = self.valid[index], self.next_pos[index]


class Decoder:
    """A loaded LLaMA / Mistral / Mixtral decoder (weights fused per layer for fewer kernel calls).

    It keeps tensors of ``state`` as they are where no copy is needed: give it tensors in memory of their
    own (as :func:`load_state` reads them), not views of a memory-mapped file.

    ``pack_weights``: store the projection weights MKL-packed where that is available (x86 CPUs in
    float32; see :mod:`~lib_tagger.generate.linear`): True at load, None (default) at the first
    forward pass over two or more prompts (packing speeds batches up and slows batch 1 down a
    little, so a model only ever run on one prompt at a time keeps plain weights), False never.
    ``int8``: the projection weights in 8 bits (CPU; the caller checked
    :func:`~lib_tagger.generate.linear.int8_problem`), one form for every batch size; the
    embedding, norms and router stay in ``dtype``.
    """

    def __init__(self, config: DecoderConfig, state: dict[str, Any], device, dtype,
                 pack_weights: bool | None = None, int8: bool = False) -> None:
        import torch

        from lib_tagger.generate.linear import Int8Linear, Linear, Scratch, make_linear, packing_available

        self.config, self.device, self.dtype = config, device, dtype
        self.int8 = int8
        self._act = _activation(config.hidden_act)
        self._may_pack = not int8 and packing_available(device, dtype) and pack_weights is not False
        pack = self._may_pack and pack_weights is True
        self.packed = pack
        scratch = Scratch() if int8 else None  # the prompt's rows, shared by every 8-bit product

        def take(key: str):  # an owned copy: no view keeps the weights file's pages mapped
            return state.pop(key).to(device=device, dtype=dtype, copy=True)

        def linear(weight_keys: list[str], bias_keys: list[str] | None = None):
            parts = [state.pop(k) for k in weight_keys]
            bias = torch.cat([state.pop(k) for k in bias_keys]) if bias_keys else None
            return make_linear(parts, bias, device=device, dtype=dtype, int8=int8, pack=pack, scratch=scratch)

        self.embed = take("model.embed_tokens.weight")
        self.norm = take("model.norm.weight")
        # A tied head stays the embedding itself (packing it would keep a second copy); in 8 bits
        # it is a quarter-size copy.
        if config.tie_word_embeddings:
            self.lm_head = Int8Linear(self.embed, scratch=scratch) if int8 else Linear(self.embed)
        else:
            self.lm_head = linear(["lm_head.weight"])
        self.layers: list[dict[str, Any]] = []
        for i in range(config.num_layers):
            p = f"model.layers.{i}."
            a = p + "self_attn."
            layer: dict[str, Any] = {
                "ln1": take(p + "input_layernorm.weight"),
                "ln2": take(p + "post_attention_layernorm.weight"),
                "qkv": linear([f"{a}{n}_proj.weight" for n in "qkv"],
                              [f"{a}{n}_proj.bias" for n in "qkv"] if config.attention_bias else None),
                "o": linear([a + "o_proj.weight"], [a + "o_proj.bias"] if config.attention_bias else None),
            }
            if config.num_experts:
                m = p + "block_sparse_moe."
                layer["router"] = take(m + "gate.weight")
                layer["experts"] = [
                    (linear([f"{m}experts.{e}.w1.weight", f"{m}experts.{e}.w3.weight"]),
                     linear([f"{m}experts.{e}.w2.weight"]))
                    for e in range(config.num_experts)
                ]
            else:
                m = p + "mlp."
                bias = config.mlp_bias
                layer["gate_up"] = linear([m + "gate_proj.weight", m + "up_proj.weight"],
                                          [m + "gate_proj.bias", m + "up_proj.bias"] if bias else None)
                layer["down"] = linear([m + "down_proj.weight"], [m + "down_proj.bias"] if bias else None)
            self.layers.append(layer)
        self._rope_len = 0
        self._cos = self._sin = None

    @classmethod
    def from_folder(cls, folder: str | Path, device=None, dtype=None, pack_weights: bool | None = None,
                    int8: bool = False) -> Decoder:
        """Load ``config.json`` + safetensors weights from ``folder`` (default: CPU, float32)."""
        import torch

        config = read_config(folder)
        state = load_state(folder, config)
        return cls(config, state, device or torch.device("cpu"), dtype or torch.float32, pack_weights, int8)

    def pack(self) -> None:
        """Re-lay every projection weight out for MKL's packed GEMM (no-op where unavailable)."""
        if self.packed or not self._may_pack:
            return
        from lib_tagger.memory import return_freed_memory

        for layer in self.layers:
            for lin in self._linears(layer):
                lin.pack()
                return_freed_memory()  # the plain weight's pages, before the next packed copy takes others
        if not self.config.tie_word_embeddings:
            self.lm_head.pack()
        self.packed = True
        return_freed_memory()

    def _linears(self, layer: dict[str, Any]) -> list[Any]:
        pairs = layer.get("experts", [])
        return [layer["qkv"], layer["o"]] + [lin for pair in pairs for lin in pair] + [
            layer[k] for k in ("gate_up", "down") if k in layer
        ]

    @property
    def weight_bytes(self) -> int:
        """Bytes of all weights held (in their plain layout)."""
        tensors = [self.embed, self.norm] + [t for layer in self.layers for t in (layer["ln1"], layer["ln2"])]
        tensors += [layer["router"] for layer in self.layers if "router" in layer]
        total = sum(t.numel() * t.element_size() for t in tensors)
        total += sum(lin.nbytes for layer in self.layers for lin in self._linears(layer))
        return total + (0 if self.config.tie_word_embeddings else self.lm_head.nbytes)

    def decode_bytes(self) -> int:
        """Weight bytes one batch-1 decode step reads: all but the embedding table (one row of it),
        and of a mixture of experts only ``experts_per_tok`` experts per layer."""
        cfg = self.config
        total = self.weight_bytes - self.embed.numel() * self.embed.element_size()
        total += self.lm_head.nbytes if cfg.tie_word_embeddings else 0
        if cfg.num_experts:
            experts = sum(a.nbytes + b.nbytes for layer in self.layers for a, b in layer["experts"])
            total -= experts * (cfg.num_experts - cfg.experts_per_token) // cfg.num_experts
        return total + cfg.hidden_size * self.embed.element_size()

    def new_cache(self, batch: int, max_len: int) -> KVCache:
        """An empty cache for ``batch`` rows and at most ``max_len`` tokens per row."""
        return KVCache(self.config, batch, max_len, self.device, self.dtype)

    def _rope(self, positions, stop: int):
        """cos and signed sin (``[B, T, 1, D]``) for ``positions`` (all < ``stop``); the table grows on demand.

        The signed sin has its first half negated, so that rotating ``x`` is
        ``x * cos + x.roll(D / 2) * sin`` (HF's rotate-half, in one roll).
        """
        import torch

        needed = max(stop, self.config.max_positions)
        if needed > self._rope_len:
            d = self.config.head_dim
            inv_freq = 1.0 / (self.config.rope_theta ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
            freqs = torch.outer(torch.arange(needed, dtype=torch.float32), inv_freq)
            angles = torch.cat((freqs, freqs), dim=-1).to(self.device)
            sin = angles.sin()
            sin[:, : d // 2] *= -1
            self._cos, self._sin = angles.cos().to(self.dtype), sin.to(self.dtype)
            self._rope_len = needed
        return self._cos[positions].unsqueeze(2), self._sin[positions].unsqueeze(2)

    def _rms_norm(self, x, weight):
        import torch

        if x.dtype == torch.float32:
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.config.rms_norm_eps) * weight
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.config.rms_norm_eps)
        return weight * xf.to(x.dtype)

    def _mask(self, cache: KVCache, start: int, stop: int):
        """Boolean ``[B, 1, T, S]`` mask (True = attend) or None when every key may be seen."""
        import torch

        window = self.config.sliding_window
        t = stop - start
        if t == 1 and not cache.padded and (window is None or stop <= window):
            return None
        q = torch.arange(start, stop, device=self.device)[:, None]
        k = torch.arange(stop, device=self.device)[None, :]
        allowed = k <= q
        if window is not None:
            allowed = allowed & (q - k < window)
        mask = allowed[None] & cache.valid[:, None, :stop]
        return (mask | (k == q)[None]).unsqueeze(1)  # a padded query still sees itself: no NaN rows

    def _attention(self, layer: dict[str, Any], x, cos, sin, cache: KVCache, index: int, mask, start: int):
        import torch
        import torch.nn.functional as F

        cfg = self.config
        b, t, _ = x.shape
        d, nh, nkv = cfg.head_dim, cfg.num_heads, cfg.num_kv_heads
        qkv = layer["qkv"](x)
        # RoPE on the query and key heads at once.
        qk = qkv[..., : (nh + nkv) * d].view(b, t, nh + nkv, d)
        qk = torch.addcmul(qk * cos, qk.roll(d // 2, dims=-1), sin)
        q, k = qk[:, :, :nh], qk[:, :, nh:]
        stop = start + t
        cache.keys[index, :, :, start:stop] = k.transpose(1, 2)
        cache.values[index, :, :, start:stop] = qkv[..., (nh + nkv) * d :].view(b, t, nkv, d).transpose(1, 2)
        keys, values = cache.keys[index, :, :, :stop], cache.values[index, :, :, :stop]
        group = nh // nkv
        # Grouped-query attention without repeating K/V: the query heads that share one KV head
        # are stacked along the query axis.
        q = q.reshape(b, t, nkv, group, d).permute(0, 2, 3, 1, 4).reshape(b, nkv, group * t, d)
        if mask is not None and group > 1:
            mask = mask.unsqueeze(2).expand(b, 1, group, t, stop).reshape(b, 1, group * t, stop)
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        out = out.view(b, nkv, group, t, d).permute(0, 3, 1, 2, 4).reshape(b, t, nh * d)
        return layer["o"](out)

    def _mlp(self, layer: dict[str, Any], x):
        gate, up = layer["gate_up"](x).chunk(2, dim=-1)
        return layer["down"](self._act(gate) * up)

    def _moe(self, layer: dict[str, Any], x):
        import torch
        import torch.nn.functional as F

        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        probs = torch.softmax(F.linear(flat, layer["router"]).float(), dim=-1)
        weights, chosen = torch.topk(probs, self.config.experts_per_token, dim=-1)
        weights = (weights / weights.sum(dim=-1, keepdim=True)).to(x.dtype)
        if flat.shape[0] > _MOE_DENSE_ROWS.get(x.device.type, 1):
            # Each expert on its own rows only. The (row, choice) pairs are sorted by expert, so that
            # one gather feeds every expert a contiguous slice and one index_add_ sums the outputs:
            # a fixed handful of ops per layer, however the rows are routed.
            pair_experts = chosen.flatten()  # the expert of each (row, choice) pair
            order = torch.argsort(pair_experts, stable=True)
            counts = torch.bincount(pair_experts, minlength=self.config.num_experts).tolist()
            rows = order // chosen.shape[1]
            picked = flat[rows]
            outs, begin = [], 0
            for expert, count in enumerate(counts):
                if count:
                    outs.append(self._expert(layer, expert, picked[begin : begin + count]))
                    begin += count
            mixed = torch.cat(outs) * weights.flatten()[order, None]
            return torch.zeros_like(flat).index_add_(0, rows, mixed).view(shape)
        # Few rows: every chosen expert runs on all rows; rows that did not choose it weigh it by 0.
        dense = torch.zeros(flat.shape[0], self.config.num_experts, dtype=x.dtype, device=x.device)
        dense.scatter_(1, chosen, weights)
        out = None
        for expert in sorted(set(chosen.flatten().tolist())):
            y = self._expert(layer, expert, flat) * dense[:, expert, None]
            out = y if out is None else out + y
        return out.view(shape)

    def _expert(self, layer: dict[str, Any], expert: int, x):
        w13, w2 = layer["experts"][expert]
        gate, up = w13(x).chunk(2, dim=-1)
        return w2(self._act(gate) * up)

    def forward(self, input_ids, cache: KVCache, valid=None, all_logits: bool = False):
        """Run ``input_ids`` (``[B, T]``) after what ``cache`` holds and return float32 logits.

        ``valid`` (``[B, T]`` bool) marks real tokens; False marks left padding. Returns
        ``[B, V]`` for the last position, or ``[B, T, V]`` with ``all_logits``.
        """
        import torch
        import torch.nn.functional as F

        b, t = input_ids.shape
        if b > 1 and not self.packed:
            self.pack()
        start, stop = cache.length, cache.length + t
        if stop > cache.max_len:
            raise ValueError(f"KV cache holds {cache.max_len} tokens; {stop} requested")
        if valid is None:
            cache.valid[:, start:stop] = True
            positions = cache.next_pos[:, None] + torch.arange(t, device=self.device)
            cache.next_pos += t
        else:
            valid = valid.to(device=self.device, dtype=torch.bool)
            cache.padded = cache.padded or not bool(valid.all())
            cache.valid[:, start:stop] = valid
            positions = (cache.next_pos[:, None] + valid.long().cumsum(dim=1) - 1).clamp_(min=0)
            cache.next_pos += valid.sum(dim=1)
        cos, sin = self._rope(positions, stop)
        mask = self._mask(cache, start, stop)
        h = F.embedding(input_ids.to(self.device), self.embed)
        for index, layer in enumerate(self.layers):
            h = h + self._attention(
                layer, self._rms_norm(h, layer["ln1"]), cos, sin, cache, index, mask, start
            )
            normed = self._rms_norm(h, layer["ln2"])
            h = h + (self._moe(layer, normed) if self.config.num_experts else self._mlp(layer, normed))
        cache.length = stop
        if not all_logits:
            h = h[:, -1]
        return self.lm_head(self._rms_norm(h, self.norm)).float()

    def close(self) -> None:
        """Drop every weight reference."""
        self.layers = []
        self.embed = self.norm = self.lm_head = None
        self._cos = self._sin = None
