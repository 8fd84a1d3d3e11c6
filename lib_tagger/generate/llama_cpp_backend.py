"""GGUF files through llama-cpp-python (``llama_cpp.Llama``), one prompt at a time: DanTagGen's and TIPO's
own, and safetensors checkpoints converted to Q8_0 (:mod:`~lib_tagger.generate.gguf_convert`), whose
prompts go in as our tokenizer's ids.

Sampling is llama.cpp's chain: (ban processor) → repetition penalty → top-k → top-p → min-p →
temperature → draw with the per-prompt seed (taken modulo 2**32); temperature 0 is greedy. Note
that top-p/min-p see the distribution before temperature (unlike transformers). The repetition
penalty covers the tokens generated so far (llama.cpp semantics), not the prompt. A fixed seed
repeats exactly on the same build and device.

Prefix reuse: a call may name the earlier rounds its prompts continue (DanTagGen's top-up
rounds each re-send the round before's input with the tags it found after it): each round's input
and the tokens generated after it. The context is then always built the same way, a function of
those rounds and the prompt alone: the context of the last round the prompt begins with (built
the same way, recursively; the first round's input evaluated in one go from an empty context),
then the generated tokens of that round the prompt goes on with, one at a time as they were
generated, then the prompt's rest in one go. After a call the context keeps its prompt and its
generated tokens, so the next round evaluates only its new tokens; when something else ran in
between, the context is rebuilt in the same steps, so a result does not depend on which calls
ran before it.

Threads: one per physical core for decoding, every logical CPU for prompt evaluation
(:func:`lib_tagger.devices.cpu_threads`), not llama-cpp-python's half of the logical CPUs.
"""

from __future__ import annotations

import functools
import math
import struct
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib_tagger.generate.base import Generation, ModelLoadError, PromptTooLongError, SamplingParams, ShouldStop

_HEADER_CHUNK = 4 * 2**20  # DanTagGen's header (metadata, vocabulary, tensor list) is about 1 MiB
# DanTagGen's first input is ~100-200 tokens; its fourth round's input holds the tags of three
# rounds more (~450 tokens) and needs room for 128+ new ones: growing the context mid-prompt
# re-opens the model, so the first context already holds that.
DEFAULT_CONTEXT = 1024
_CONTEXT_STEP = 256

# ggml type id -> (elements per block, bytes per block), to find the bytes a tensor needs. Types
# not listed (rare, or intermediate like Q8_1) are left to llama.cpp's own bounds check.
_GGML_BLOCKS: dict[int, tuple[int, int]] = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
    10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210),
    15: (256, 292), 16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18),
    21: (256, 110), 22: (256, 82), 23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8),
    28: (1, 8), 29: (256, 56), 30: (1, 2),
}
# GGUF metadata value type -> struct format of one scalar (8 = string, 9 = array).
_GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


@dataclass(frozen=True)
class GGUFHeader:
    """What :func:`read_gguf_header` learns from a GGUF file without loading it."""

    version: int
    architecture: str
    context_length: int  # 0 when the file does not say
    n_tensors: int
    data_bytes: int  # bytes the tensor data needs (known ggml types only)


class _ReadMore(Exception):
    """The header goes on past the bytes read so far."""


class _Reader:
    """Little-endian reads from the first bytes of a file (``complete``: all of it), with a clear error past
    its end."""

    def __init__(self, buf: bytes, path: Path, complete: bool) -> None:
        self.buf, self.pos, self.path, self.complete = buf, 0, path, complete

    def short(self) -> Exception:
        """What to raise past the end: read more, or (the whole file was read) it is truncated."""
        if not self.complete:
            return _ReadMore()
        return ModelLoadError(f"{self.path} is truncated: its GGUF header ends early")

    def take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise self.short()
        value = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += size
        return value[0] if len(value) == 1 else value

    def string(self) -> str:
        n = self.take("Q")
        if self.pos + n > len(self.buf):
            raise self.short()
        raw = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        buf, pos, end, unpack = self.buf, self.pos, len(self.buf) - 8, struct.unpack_from
        for _ in range(count):
            if pos > end:
                raise self.short()
            pos += 8 + unpack("<Q", buf, pos)[0]
        self.pos = pos

    def value(self, vtype: int) -> Any:
        if vtype == 8:
            return self.string()
        if vtype == 9:
            item_type, count = self.take("I"), self.take("Q")
            if item_type in _GGUF_SCALARS:  # skip fixed-size arrays in one step
                self.pos += count * struct.calcsize(_GGUF_SCALARS[item_type])
            elif item_type == 8:  # string arrays (the vocabulary): skip without decoding
                self.skip_strings(count)
            else:
                for _ in range(count):
                    self.value(item_type)
            if self.pos > len(self.buf):
                raise self.short()
            return None
        if vtype not in _GGUF_SCALARS:
            raise ModelLoadError(f"{self.path} is corrupt: unknown GGUF value type {vtype}")
        return self.take(_GGUF_SCALARS[vtype])


def read_gguf_header(path: str | Path) -> GGUFHeader:
    """Check that ``path`` is a whole GGUF file and read its header.

    Raises ModelLoadError naming the file when it is missing, not GGUF, corrupt or truncated. The header is
    read (4 MiB, then more while it goes on), not mapped: a file cut short meanwhile is an error, not SIGBUS.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"GGUF model file not found: {path}")
    try:
        with path.open("rb") as fh:
            size = path.stat().st_size
            if size < 24:
                raise ModelLoadError(f"{path} is not a GGUF file: only {size} bytes")
            chunk = _HEADER_CHUNK
            while True:
                fh.seek(0)
                buf = fh.read(min(size, chunk))
                try:
                    return _parse_header(_Reader(buf, path, complete=len(buf) >= size), size)
                except _ReadMore:
                    chunk *= 4
    except OSError as exc:
        raise ModelLoadError(f"cannot read GGUF model file {path}: {exc}") from exc


def _parse_header(r: _Reader, size: int) -> GGUFHeader:
    path = r.path
    if bytes(r.buf[:4]) != b"GGUF":
        raise ModelLoadError(f"{path} is not a GGUF file (it does not start with 'GGUF')")
    r.pos = 4
    version, n_tensors, n_kv = r.take("I"), r.take("Q"), r.take("Q")
    if version not in (2, 3):
        raise ModelLoadError(f"{path}: unsupported GGUF version {version}")
    if n_tensors > size or n_kv > size:
        raise ModelLoadError(f"{path} is corrupt: implausible header counts")
    meta: dict[str, Any] = {}
    for _ in range(n_kv):
        key = r.string()
        meta[key] = r.value(r.take("I"))
    arch = str(meta.get("general.architecture") or "")
    alignment = int(meta.get("general.alignment") or 32)
    data_end = 0
    for _ in range(n_tensors):
        name = r.string()
        dims = [r.take("Q") for _ in range(r.take("I"))]
        ggml_type, offset = r.take("I"), r.take("Q")
        block = _GGML_BLOCKS.get(ggml_type)
        if block is None:
            continue
        n_elements = math.prod(dims)
        if n_elements % block[0]:
            raise ModelLoadError(f"{path} is corrupt: tensor {name!r} does not fill whole blocks")
        data_end = max(data_end, offset + n_elements // block[0] * block[1])
    data_start = -(-r.pos // alignment) * alignment
    if data_start + data_end > size:
        raise ModelLoadError(
            f"{path} is truncated: {size} bytes, its tensors need {data_start + data_end} "
            "(an interrupted download? delete the file and fetch it again)"
        )
    return GGUFHeader(version, arch, int(meta.get(f"{arch}.context_length") or 0), n_tensors, data_end)


class LlamaCppVocab:
    """The model's vocabulary with the surface of the HF ``TagTokenizer`` that ban compilation needs.

    The token tables are read from llama.cpp on first use (bans), not at load.
    """

    word_level = False

    def __init__(self, llm) -> None:
        import llama_cpp

        self._llm = llm
        self._ptr = llama_cpp.llama_model_get_vocab(llm.model)
        self.bos_id: int = llm.token_bos()

    @functools.cached_property
    def _texts(self) -> list[str]:
        import llama_cpp

        get_text, ptr = llama_cpp.llama_vocab_get_text, self._ptr
        n = llama_cpp.llama_vocab_n_tokens(ptr)
        return [get_text(ptr, i).decode("utf-8", errors="replace") for i in range(n)]

    @functools.cached_property
    def vocab(self) -> dict[str, int]:
        """Vocabulary entry (e.g. ``▁long``) -> token id."""
        return {t: i for i, t in enumerate(self._texts)}

    @functools.cached_property
    def special_ids(self) -> set[int]:
        """Ids of control tokens (bos, eos, ...)."""
        import llama_cpp

        return {i for i in range(self.vocab_size) if llama_cpp.llama_vocab_is_control(self._ptr, i)}

    @property
    def vocab_size(self) -> int:
        """Number of tokens."""
        return len(self._texts)

    def is_end(self, token_id: int) -> bool:
        """True for end-of-generation tokens (eos, eot, ...)."""
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self._ptr, token_id))

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Token ids of ``text``; special tokens written in it stay whole."""
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_special_tokens, special=True)

    def id_to_token(self, token_id: int) -> str:
        """The vocabulary entry of ``token_id`` (e.g. ``▁long``); '' when out of range."""
        return self._texts[token_id] if 0 <= token_id < len(self._texts) else ""

    def decode_piece(self, token_id: int) -> str:
        """One token decoded on its own (specials as their text)."""
        return self.decode([token_id])

    def decode(self, ids: list[int]) -> str:
        """``ids`` as text (specials as their text)."""
        return self._llm.detokenize(ids, special=True).decode("utf-8", errors="replace")


BannedNext = Callable[[Sequence[int]], Collection[int]]


class _BanProcessor:
    """A llama-cpp-python logits processor: sets the logits of banned next tokens to -inf."""

    def __init__(self, banned_next: BannedNext, prompt_len: int) -> None:
        self.banned_next, self.prompt_len = banned_next, prompt_len

    def __call__(self, input_ids, scores):
        banned = self.banned_next(input_ids[self.prompt_len:].tolist())
        if banned:
            scores[list(banned)] = -math.inf
        return scores


def _model_context(llm) -> int:
    import llama_cpp

    return int(llama_cpp.llama_model_n_ctx_train(llm.model))


def _gpu_layers(requested: int | None) -> int:
    """Layers to offload: all (-1) or ``requested`` when llama.cpp was built with GPU support, else 0."""
    import llama_cpp

    if not llama_cpp.llama_supports_gpu_offload():
        return 0
    return -1 if requested is None else requested


class LlamaCppGenerator:
    """A GGUF LLaMA model (DanTagGen) in llama.cpp; implements the ``Generator`` protocol."""

    #: ``generate()`` takes ``prefix=``: the evaluated prompt prefix is kept between calls.
    reuses_prefix = True

    def __init__(self, path: Path, header: GGUFHeader, options: dict[str, Any], name: str,
                 ban_candidates: Iterable[str] = (), tokenizer=None) -> None:
        self.path, self.header, self.name = path, header, name
        #: Our tokenizer for the prompts and the output (a file converted from safetensors), or None: llama.cpp's.
        self.tokenizer = tokenizer
        #: What the weights run in, when the file was converted for a precision ("" otherwise).
        self.precision = ""
        self.notice = ""
        self._options = options
        self.ban_candidates = tuple(ban_candidates)
        self._bans: dict[tuple[str, ...], BannedNext | None] = {}
        self._lock = threading.Lock()
        # (ids, boundaries): the context holds ``ids``, built in steps that ended at each boundary
        # (see the module notes); the only state a later call may reuse. None when unknown.
        self._kept: tuple[list[int], tuple[int, ...]] | None = None
        self._llm = self._open(options["n_ctx"])
        self.n_ctx_train: int = header.context_length or _model_context(self._llm)
        self.vocab = LlamaCppVocab(self._llm) if tokenizer is None else tokenizer
        if tokenizer is not None:
            from lib_tagger.generate.tokenizer import end_ids

            self.stop_ids = end_ids(tokenizer)

    @classmethod
    def load(
        cls,
        path: str | Path,
        n_gpu_layers: int | None = None,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        name: str | None = None,
        ban_candidates: Iterable[str] = (),
        tokenizer=None,
    ) -> LlamaCppGenerator:
        """Load ``path`` (ModelLoadError naming it when it is missing, truncated or corrupt).

        ``n_gpu_layers``: None offloads every layer, 0 keeps the model on the CPU; a llama.cpp
        build without GPU support always runs on the CPU. ``n_ctx``: the first context size
        (None: 1024, capped by the model's training context); it grows when a prompt needs more.
        ``n_threads``: decoding threads (None: one per physical core).
        ``ban_candidates`` (known tag names) lets wildcard and regex bans expand to whole tags.
        ``tokenizer`` (ours, as :func:`~lib_tagger.generate.tokenizer.load_tokenizer` reads it) encodes the
        prompts and decodes the output instead of the file's own vocabulary (a converted checkpoint).
        """
        path = Path(path)
        header = read_gguf_header(path)
        from lib_tagger.devices import cpu_threads

        limit = header.context_length or DEFAULT_CONTEXT
        first_ctx = min(n_ctx or DEFAULT_CONTEXT, limit)
        cores, logical = cpu_threads()
        options = {
            "n_gpu_layers": _gpu_layers(n_gpu_layers),
            "n_threads": n_threads or cores,
            "n_threads_batch": max(n_threads or 0, logical),
            "n_ctx": first_ctx,
        }
        return cls(path, header, options, name or path.stem, ban_candidates, tokenizer)

    def _open(self, n_ctx: int):
        try:
            import llama_cpp
        except ImportError as exc:
            raise ModelLoadError(f"llama-cpp-python is not installed, needed for {self.path}: {exc}") from exc
        try:
            llm = llama_cpp.Llama(
                model_path=str(self.path),
                n_gpu_layers=self._options["n_gpu_layers"],
                n_ctx=n_ctx,
                n_batch=min(512, n_ctx),
                n_threads=self._options["n_threads"],
                n_threads_batch=self._options["n_threads_batch"],
                last_n_tokens_size=n_ctx,
                use_mmap=False,  # read into memory of its own: a file replaced under it cannot end the process
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(f"llama.cpp could not load {self.path}: {exc}") from exc
        self._options["n_ctx"] = n_ctx
        return llm

    @property
    def n_ctx(self) -> int:
        """The current context size (prompt + new tokens)."""
        return self._options["n_ctx"]

    @property
    def gpu_offload(self) -> bool:
        """True when layers are offloaded to the GPU."""
        return self._options["n_gpu_layers"] != 0

    def _require_open(self):
        if self._llm is None:
            raise RuntimeError(f"the llama.cpp model {self.path.name} was closed; load it again")
        return self._llm

    def _fit_context(self, need: int) -> None:
        """Re-create the model with a larger context when ``need`` tokens do not fit."""
        if need <= self.n_ctx:
            return
        target = min(self.n_ctx_train, -(-need // _CONTEXT_STEP) * _CONTEXT_STEP)
        self._kept = None
        self._llm.close()
        self._llm = None
        self._llm = self._open(target)
        if self.tokenizer is None:
            self.vocab = LlamaCppVocab(self._llm)

    def tokenize_prompt(self, prompt: str) -> list[int]:
        """Prompt ids with specials kept whole and exactly one bos in front."""
        llm = self._require_open()
        if self.tokenizer is not None:
            return list(self.tokenizer.encode_prompt(prompt))
        ids = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        bos = self.vocab.bos_id
        while len(ids) > 1 and ids[0] == bos and ids[1] == bos:
            ids.pop(0)
        return ids

    def generate(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        seeds: Sequence[int],
        banned_next: BannedNext | None = None,
        *,
        prefix: str | Sequence[EarlierRound] | None = None,
        should_stop: ShouldStop | None = None,
    ) -> list[Generation]:
        """Continue each prompt with its seed until eos or ``params.max_new_tokens``.

        ``banned_next(generated_ids)`` may return token ids that must not come next; without it,
        ``params.banned_tags`` are compiled against this vocabulary when any are given.
        ``prefix``: the earlier rounds these prompts continue, first round first, each as its
        input text and the token ids generated after it (a text alone: nothing generated). The
        context is built from them (see the module notes) and only what it does not already hold
        is evaluated; a round whose input the prompt's tokens do not begin with is skipped.
        Without a prefix every prompt is evaluated whole from an empty context.
        ``should_stop`` is polled before each prompt and after each token: once True, the prompt being
        continued and those not begun come back with ``stopped=True``.
        """
        if len(prompts) != len(seeds):
            raise ValueError(f"got {len(prompts)} prompts but {len(seeds)} seeds")
        if params.temperature < 0 or params.max_new_tokens < 0:
            raise ValueError("temperature and max_new_tokens must not be negative")
        earlier = [prefix] if isinstance(prefix, str) else list(prefix or ())
        with self._lock:
            self._require_open()
            if banned_next is None and params.banned_tags:
                banned_next = self._bans_for(params.banned_tags)  # None when nothing to ban
            chain = [(self.tokenize_prompt(text), list(generated)) for text, generated in
                     ((r, ()) if isinstance(r, str) else r for r in earlier) if text]
            stop = should_stop or _never
            return [Generation("", stopped=True) if stop() else
                    self._generate_one(prompt, params, _llama_seed(seed), banned_next, chain, stop)
                    for prompt, seed in zip(prompts, seeds)]

    def _generate_one(
        self, prompt: str, params: SamplingParams, seed: int, banned_next: BannedNext | None,
        chain: list[tuple[list[int], list[int]]], should_stop: ShouldStop,
    ) -> Generation:
        start = time.perf_counter()
        ids = self.tokenize_prompt(prompt)
        if len(ids) >= self.n_ctx_train:
            raise PromptTooLongError(f"the prompt is {len(ids)} tokens; {self.name} reads at most {self.n_ctx_train}")
        max_new = min(params.max_new_tokens, self.n_ctx_train - len(ids))
        self._fit_context(len(ids) + max_new)
        llm = self._llm
        out: list[int] = []
        stopped = False
        if max_new > 0:
            processors = [_BanProcessor(banned_next, len(ids))] if banned_next is not None else None
            bounds = _plan(ids, chain)
            self._start_context(ids, bounds)
            llm.set_seed(seed)
            is_end = self.vocab.is_end if self.tokenizer is None else self.stop_ids.__contains__
            for token in llm.generate(
                ids,
                top_k=params.top_k,
                top_p=params.top_p,
                min_p=params.min_p,
                temp=params.temperature,
                repeat_penalty=params.repetition_penalty,
                logits_processor=processors,
            ):
                if is_end(token):
                    break
                out.append(token)
                if len(out) >= max_new:
                    break
                if should_stop():
                    stopped = True
                    break
            # The context holds the prompt built in ``bounds``, then generated tokens one at a time.
            held = llm.n_tokens
            self._kept = (ids + out[:held - len(ids)], (*bounds, *range(len(ids), held + 1)))
        text = self.vocab.decode(out)
        pieces = [self.vocab.decode_piece(t) for t in out]
        return Generation(text=text, pieces=pieces, token_ids=out, prompt_tokens=len(ids),
                          seconds=time.perf_counter() - start, stopped=stopped)

    def _start_context(self, ids: list[int], bounds: tuple[int, ...]) -> None:
        """Leave in the context ``ids[:bounds[-1]]``, built in steps ending at ``bounds`` (nothing
        without bounds); ``llm.generate(ids)`` then evaluates the rest in one go.

        What the context already holds, built in the same first steps, is kept; the rest is
        evaluated now.
        """
        llm = self._llm
        kept, self._kept = self._kept, None  # unknown until the generation ends normally
        reuse = 0
        if kept is not None and bounds:
            kept_ids, kept_bounds = kept
            same = _common_length(kept_ids, ids)
            for index, bound in enumerate(bounds):
                if index >= len(kept_bounds) or kept_bounds[index] != bound or bound > same:
                    break
                reuse = index + 1
        done = bounds[reuse - 1] if reuse else 0
        if reuse:
            llm.n_tokens = done  # keep that much; the next eval drops the rest
        else:
            llm.reset()
        for bound in bounds[reuse:]:
            llm.eval(ids[done:bound])
            done = bound

    def _bans_for(self, patterns: Sequence[str]) -> BannedNext | None:
        key = tuple(patterns)
        if key not in self._bans:
            self._bans[key] = _compile_bans(key, self.vocab, self.ban_candidates)
        return self._bans[key]

    def close(self) -> None:
        """Free the weights and the context (RAM and VRAM). Safe to call twice."""
        with self._lock:
            if self._llm is not None:
                self._llm.close()
                self._llm = None
                self._kept = None


def _never() -> bool:
    return False


#: An earlier round a prompt continues: its input text and the token ids generated after it.
EarlierRound = str | tuple[str, Sequence[int]]


def _common_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _plan(ids: list[int], rounds: list[tuple[list[int], list[int]]]) -> tuple[int, ...]:
    """Where the steps that build the context for ``ids`` end (see the module notes), the last
    one short of ``ids``; () when ``ids`` continues none of the ``rounds``."""
    for index in range(len(rounds) - 1, -1, -1):
        text, generated = rounds[index]
        n = len(text)
        if n < len(ids) and ids[:n] == text:
            bounds = (*_plan(text, rounds[:index]), n)
            follows = _common_length(generated, ids[n:len(ids) - 1])  # generated tokens the prompt goes on with
            return bounds + tuple(range(n + 1, n + follows + 1))
    return ()


def _llama_seed(seed: int) -> int:
    """``seed`` as the uint32 llama.cpp takes; 0xFFFFFFFF (llama.cpp's "random") becomes 0xFFFFFFFE."""
    return min(int(seed) & 0xFFFFFFFF, 0xFFFFFFFE)


def _compile_bans(patterns: Sequence[str], vocab: LlamaCppVocab, candidates: Sequence[str]) -> BannedNext | None:
    """Bans over this vocabulary; wildcard and regex patterns expand against ``candidates``."""
    from lib_tagger.generate.bans import compile_bans

    bans = compile_bans(patterns, vocab, candidates)
    return bans.banned_next if bans else None
