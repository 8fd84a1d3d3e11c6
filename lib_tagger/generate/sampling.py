"""Next-token choice with Hugging Face semantics, one seeded ``torch.Generator`` per batch row.

Order (as transformers' ``generate``): repetition penalty, bans, temperature, top-k, top-p, min-p,
then a draw from the row's own generator. ``temperature == 0`` is greedy (argmax after penalty and
bans). Every step is row-wise, so row ``i`` with seed ``s`` picks what a batch-1 run with seed
``s`` picks. Deviations from transformers, on purpose: top-k keeps exactly ``k`` tokens (ties at
the k-th logit are cut), and the repetition penalty sees each row's own prompt and output only
(transformers also penalises the pad ids of left-padded rows).
"""

from __future__ import annotations

from collections.abc import Sequence

from lib_tagger.generate.base import SamplingParams


def validate(params: SamplingParams) -> None:
    """ValueError naming the field when ``params`` are out of range."""
    checks = (
        ("temperature", params.temperature >= 0),
        ("top_p", 0 < params.top_p <= 1),
        ("top_k", params.top_k >= 0),
        ("min_p", 0 <= params.min_p <= 1),
        ("repetition_penalty", params.repetition_penalty > 0),
        ("max_new_tokens", params.max_new_tokens >= 0),
    )
    for name, ok in checks:
        if not ok:
            raise ValueError(f"sampling field {name} is out of range: {getattr(params, name)!r}")


def make_generators(seeds: Sequence[int], device) -> list:
    """One ``torch.Generator`` per seed (any int; taken modulo 2**64)."""
    import torch

    return [torch.Generator(device=device).manual_seed(int(s) % (1 << 64)) for s in seeds]


class Sampler:
    """Picks one token per row from ``[B, V]`` logits, keeping per-row repetition state."""

    def __init__(
        self,
        params: SamplingParams,
        seeds: Sequence[int],
        vocab_size: int,
        device,
        prompts: Sequence[Sequence[int]] = (),
    ) -> None:
        import torch

        validate(params)
        self.params = params
        self.generators = make_generators(seeds, device)
        self.seen = None
        if params.repetition_penalty != 1.0:
            self.seen = torch.zeros(len(seeds), vocab_size, dtype=torch.bool, device=device)
            for row, ids in enumerate(prompts):
                if ids:
                    self.seen[row, torch.tensor(list(ids), device=device)] = True

    def keep_rows(self, rows: Sequence[int]) -> None:
        """Keep the state of rows ``rows`` only, in that order (rows that ended leave the batch)."""
        self.generators = [self.generators[row] for row in rows]
        if self.seen is not None:
            self.seen = self.seen[list(rows)]

    def process(self, logits, banned: Sequence[Sequence[int]] | None = None):
        """Logits after repetition penalty and bans (float32, a new tensor)."""
        import torch

        logits = logits.float().clone()
        if self.seen is not None:
            p = self.params.repetition_penalty
            penalised = torch.where(logits < 0, logits * p, logits / p)
            logits = torch.where(self.seen, penalised, logits)
        if banned:
            for row, ids in enumerate(banned):
                if ids:
                    logits[row, torch.tensor(list(ids), device=logits.device)] = float("-inf")
        return logits

    def choose(self, logits, banned: Sequence[Sequence[int]] | None = None) -> list[int]:
        """The next token of every row; ``banned[i]`` are ids row ``i`` must not pick."""
        import torch

        params = self.params
        logits = self.process(logits, banned)
        if params.temperature == 0:
            tokens = logits.argmax(dim=-1)
        else:
            logits = logits / params.temperature
            vocab = logits.shape[-1]
            if 0 < params.top_k < vocab:
                values, index = torch.topk(logits, params.top_k, dim=-1)  # sorted, descending
            else:
                values, index = torch.sort(logits, dim=-1, descending=True)
            probs = torch.softmax(values, dim=-1)
            if params.top_p < 1.0:
                # HF: drop the low tail whose total mass is <= 1 - top_p; always keep the best token.
                tail_mass = probs.flip(-1).cumsum(-1).flip(-1)
                drop = tail_mass <= 1.0 - params.top_p
                drop[..., 0] = False
                probs = probs.masked_fill(drop, 0.0)
            if params.min_p > 0.0:
                probs = probs.masked_fill(probs < params.min_p * probs[..., :1], 0.0)
            picks = [
                torch.multinomial(probs[row], 1, generator=gen) for row, gen in enumerate(self.generators)
            ]
            tokens = index.gather(1, torch.stack(picks))[:, 0]
        if self.seen is not None:
            self.seen[torch.arange(len(tokens), device=tokens.device), tokens] = True
        return tokens.tolist()
