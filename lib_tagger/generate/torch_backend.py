"""The torch :class:`~lib_tagger.generate.base.Generator`: our decoder + tokenizer + sampler, batched."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from lib_tagger.generate.bans import Bans, compile_bans
from lib_tagger.generate.base import Generation, PromptTooLongError, SamplingParams, ShouldStop
from lib_tagger.generate.sampling import Sampler, validate
from lib_tagger.generate.tokenizer import TagTokenizer, end_ids, load_tokenizer
from lib_tagger.generate.torch_model import Decoder

_DTYPE_NAMES = {"torch.float32": "fp32", "torch.bfloat16": "bf16", "torch.float16": "fp16"}


def choose_precision(precision: str, device, dtype: str = "auto") -> tuple[object, bool, str]:
    """(float dtype, 8-bit weights?, notice) for ``precision`` on ``device``.

    auto: 8-bit on a CPU that runs it (README, Benchmarks: why), float32 on other CPUs,
    ``dtype`` on a GPU, and ``dtype`` anywhere when one is named (not "auto"); fp32: float32
    anywhere; int8: 8-bit, or where it cannot run the float type with a notice saying why.
    """
    import torch

    from lib_tagger.devices import pick_dtype
    from lib_tagger.generate.linear import int8_problem
    from lib_tagger.settings import PRECISIONS

    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return torch.float32, False, ""
    float_dtype = pick_dtype(device, dtype)
    if precision == "auto" and dtype not in ("", "auto"):
        return float_dtype, False, ""
    problem = int8_problem(device)
    if problem is None:
        return torch.float32, True, ""
    notice = ""
    if precision == "int8":
        notice = f"int8 was asked for, but {problem}: running in {_DTYPE_NAMES.get(str(float_dtype), float_dtype)}"
    return float_dtype, False, notice


def _never() -> bool:
    return False


class TorchGenerator:
    """Continues prompts with a LLaMA / Mistral / Mixtral checkpoint on CPU or CUDA.

    ``ban_candidates`` (known tag names) lets wildcard / regex bans work on subword vocabularies.
    """

    def __init__(
        self, decoder: Decoder, tokenizer: TagTokenizer, name: str = "", ban_candidates: Iterable[str] = (),
        notice: str = "",
    ) -> None:
        self.decoder = decoder
        #: What the weights run in (int8, fp32, bf16, fp16), and why not what was asked for ("" if it was).
        self.precision = "int8" if decoder.int8 else _DTYPE_NAMES.get(str(decoder.dtype), str(decoder.dtype))
        self.notice = notice
        self.tokenizer = tokenizer
        self.name = name
        self.ban_candidates = tuple(ban_candidates)
        self.stop_ids = end_ids(tokenizer)
        self._bans: dict[tuple[str, ...], Bans] = {}
        # One generation at a time: the first batch re-lays the weights out (Decoder.pack).
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, device: str = "auto", dtype: str = "auto", ban_candidates: Iterable[str] = (),
        precision: str = "auto",
    ) -> TorchGenerator:
        """Load ``config.json``, the safetensors weights and the tokenizer (``tokenizer.json``, or
        SentencePiece ``tokenizer.model`` + ``added_tokens.json``) from ``folder``.

        ``precision``: auto, fp32 or int8 (see :func:`choose_precision`); ``dtype`` is the float
        type where it is not fp32 (auto: fp32 on a CPU, bf16/fp16 on a GPU).
        """
        from lib_tagger.devices import pick_device

        torch_device = pick_device(device)
        torch_dtype, int8, notice = choose_precision(precision, torch_device, dtype)
        decoder = Decoder.from_folder(folder, torch_device, torch_dtype, int8=int8)
        tokenizer = load_tokenizer(folder)
        return cls(decoder, tokenizer, name=Path(folder).name, ban_candidates=ban_candidates, notice=notice)

    def bans_for(self, patterns: Sequence[str]) -> Bans:
        """Compiled bans for ``patterns`` (cached per distinct pattern list)."""
        key = tuple(patterns)
        if key not in self._bans:
            self._bans[key] = compile_bans(key, self.tokenizer, self.ban_candidates)
        return self._bans[key]

    def _encode(self, prompts: Sequence[str]) -> list[list[int]]:
        limit = self.decoder.config.max_positions
        encoded = []
        for index, prompt in enumerate(prompts):
            ids = self.tokenizer.encode_prompt(prompt)
            if not ids:
                raise ValueError(f"prompt {index} encodes to no tokens")
            if len(ids) >= limit:
                raise PromptTooLongError(
                    f"prompt {index} has {len(ids)} tokens; the model's context is {limit}"
                )
            encoded.append(ids)
        return encoded

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, seeds: Sequence[int], *,
        should_stop: ShouldStop | None = None,
    ) -> list[Generation]:
        """Continue every prompt in one left-padded batch; a row that reaches its end token leaves it.

        ``should_stop`` is polled before every forward pass; once True, rows that have not ended are
        returned with ``stopped=True``.
        """
        with self._lock:
            return self._generate(prompts, params, seeds, should_stop or _never)

    def _generate(
        self, prompts: Sequence[str], params: SamplingParams, seeds: Sequence[int], should_stop: ShouldStop
    ) -> list[Generation]:
        import torch

        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        if not prompts:
            return []
        if self.decoder.layers == []:
            raise RuntimeError(f"model {self.name!r} was closed")
        validate(params)
        started = time.perf_counter()
        encoded = self._encode(prompts)
        width = max(len(ids) for ids in encoded)
        new_tokens = min(params.max_new_tokens, self.decoder.config.max_positions - width)
        batch = len(encoded)
        device = self.decoder.device
        pad = self.tokenizer.pad_id if self.tokenizer.pad_id is not None else 0
        ids = torch.full((batch, width), pad, dtype=torch.long)
        valid = torch.zeros(batch, width, dtype=torch.bool)
        for row, row_ids in enumerate(encoded):
            ids[row, width - len(row_ids) :] = torch.tensor(row_ids)
            valid[row, width - len(row_ids) :] = True
        bans = self.bans_for(params.banned_tags)
        sampler = Sampler(params, seeds, self.decoder.config.vocab_size, device, encoded)
        outputs: list[list[int]] = [[] for _ in range(batch)]
        done = [False] * batch
        seconds = [0.0] * batch
        stopped = should_stop()
        with torch.inference_mode():
            if new_tokens > 0 and not stopped:
                cache = self.decoder.new_cache(batch, width + new_tokens)
                logits = self.decoder.forward(ids.to(device), cache, valid.to(device))
            active = list(range(batch))  # the prompt of each row still in the batch
            for step in range(0 if stopped else new_tokens):
                banned = [sorted(bans.banned_next(outputs[row])) for row in active] if bans else None
                tokens = sampler.choose(logits, banned)
                for row, token in zip(active, tokens):
                    if token in self.stop_ids:
                        done[row] = True
                        seconds[row] = time.perf_counter() - started
                    else:
                        outputs[row].append(token)
                if all(done) or step == new_tokens - 1:
                    break
                if any(done[row] for row in active):  # ended rows leave the batch
                    keep = [i for i, row in enumerate(active) if not done[row]]
                    cache.keep_rows(keep)
                    sampler.keep_rows(keep)
                    active = [active[i] for i in keep]
                    tokens = [tokens[i] for i in keep]
                if should_stop():
                    stopped = True
                    break
                logits = self.decoder.forward(torch.tensor(tokens, device=device)[:, None], cache)
        finished = time.perf_counter() - started
        return [
            Generation(
                text=self.tokenizer.decode(out),
                pieces=[self.tokenizer.decode_piece(t) for t in out],
                token_ids=out,
                prompt_tokens=len(encoded[row]),
                seconds=seconds[row] if done[row] else finished,
                stopped=stopped and not done[row],
            )
            for row, out in enumerate(outputs)
        ]

    def close(self) -> None:
        """Free the weights; on CUDA also return cached blocks to the driver."""
        device = self.decoder.device
        self.decoder.close()
        self._bans.clear()
        if getattr(device, "type", "") == "cuda":
            import torch

            torch.cuda.empty_cache()
