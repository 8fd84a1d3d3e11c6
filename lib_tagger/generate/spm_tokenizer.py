"""A SentencePiece ``tokenizer.model`` plus ``added_tokens.json`` (TIPO's tokenizer files).

Read with the ``sentencepiece`` package, which both hosts already install (open-clip-torch 2.20.0,
pinned by A1111 1.10 and Forge, requires it). Tokenization follows what llama.cpp does with the
same vocabulary in GGUF (``special=True``), so both backends see the same ids: the text is split at
every added token and control piece (each stays one id), and every other fragment is encoded on its
own, with SentencePiece's dummy-prefix space in front. Decoding keeps leading spaces and writes
specials as their text, as llama.cpp's detokenizer does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lib_tagger.generate.base import ModelLoadError
from lib_tagger.generate.tokenizer import PromptIds, read_json

MODEL_FILE = "tokenizer.model"
ADDED_FILE = "added_tokens.json"
_SIDE_FILES = ("tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "config.json")
_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")
SPACE = "\u2581"


def _token_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


class SentencePieceTokenizer(PromptIds):
    """The surface of :class:`~lib_tagger.generate.tokenizer.TagTokenizer` over SentencePiece."""

    word_level = False

    def __init__(self, processor, added: dict[str, int], side: dict[str, dict[str, Any]] | None = None,
                 source: str = "") -> None:
        self._sp = processor
        self.source = source
        side = side or {}
        size = processor.GetPieceSize()
        self._pieces = [processor.IdToPiece(i) for i in range(size)]
        self._controls = {i for i in range(size) if processor.IsControl(i)}
        self._bytes = {i: int(m.group(1), 16) for i in range(size)
                       if processor.IsByte(i) and (m := _BYTE_PIECE.fullmatch(self._pieces[i]))}
        self.added = dict(added)
        self.vocab: dict[str, int] = {piece: i for i, piece in enumerate(self._pieces)}
        self.vocab.update(self.added)
        self._id_to_tok = {i: t for t, i in self.vocab.items()}
        whole = sorted({*self.added, *(self._pieces[i] for i in self._controls)}, key=len, reverse=True)
        self._split = re.compile("(" + "|".join(map(re.escape, whole)) + ")") if whole else None
        self.bos_id = self._special_id("bos", side, processor.bos_id())
        self.pad_id = self._special_id("pad", side, processor.pad_id())
        self.unk_id = self._special_id("unk", side, processor.unk_id())
        eos: list[int] = []
        for name in _SIDE_FILES:
            data = side.get(name, {})
            value = data.get("eos_token_id")
            ids = value if isinstance(value, list) else [value]
            eos += [i for i in ids if isinstance(i, int) and not isinstance(i, bool)]
            text = _token_text(data.get("eos_token"))
            if text in self.vocab:
                eos.append(self.vocab[text])
        if processor.eos_id() >= 0:
            eos.append(processor.eos_id())
        self.eos_ids: list[int] = list(dict.fromkeys(eos))
        self.add_bos = bool(side.get("tokenizer_config.json", {}).get("add_bos_token", True))
        self.special_ids: set[int] = {*self._controls, *self.added.values(), *self.eos_ids}
        self.special_ids.update(i for i in (self.bos_id, self.unk_id) if i is not None)

    def _special_id(self, kind: str, side: dict[str, dict[str, Any]], fallback: int) -> int | None:
        for name in _SIDE_FILES:
            data = side.get(name, {})
            text = _token_text(data.get(f"{kind}_token"))
            if text is not None and text in self.vocab:
                return self.vocab[text]
            value = data.get(f"{kind}_token_id")
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        return fallback if fallback >= 0 else None

    @classmethod
    def from_folder(cls, folder: str | Path) -> SentencePieceTokenizer:
        """Load ``tokenizer.model``, ``added_tokens.json`` (optional) and the side files of ``folder``."""
        folder = Path(folder)
        path = folder / MODEL_FILE
        if not path.is_file():
            raise ModelLoadError(f"tokenizer file missing: {path}")
        try:
            import sentencepiece
        except ImportError as exc:
            raise ModelLoadError(f"the sentencepiece package is needed for {path}: {exc}") from exc
        processor = sentencepiece.SentencePieceProcessor()
        try:
            processor.Load(str(path))
        except (OSError, RuntimeError, ValueError) as exc:
            raise ModelLoadError(f"cannot load tokenizer {path}: {exc}") from exc
        added: dict[str, int] = {}
        if (folder / ADDED_FILE).is_file():
            data = read_json(folder / ADDED_FILE)
            for token, token_id in data.items():
                if isinstance(token_id, bool) or not isinstance(token_id, int) or token_id < 0:
                    raise ModelLoadError(f"{folder / ADDED_FILE}: the id of {token!r} is not a token id")
                added[token] = token_id
        side = {name: read_json(folder / name) for name in _SIDE_FILES if (folder / name).is_file()}
        return cls(processor, added, side, source=str(path))

    @property
    def vocab_size(self) -> int:
        """Number of ids (SentencePiece pieces and added tokens)."""
        return max(self._id_to_tok) + 1

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Ids of ``text``: added tokens and control pieces written in it are one id each."""
        ids: list[int] = [self.bos_id] if add_special_tokens and self.bos_id is not None else []
        parts = self._split.split(text) if self._split else [text]
        for n, part in enumerate(parts):
            if n % 2:
                ids.append(self.vocab[part])
            elif part:
                ids += self._sp.EncodeAsIds(part)
        return ids

    def _bytes_of(self, token_id: int) -> bytes:
        if token_id in self._bytes:
            return bytes([self._bytes[token_id]])
        return self.id_to_token(token_id).replace(SPACE, " ").encode("utf-8")

    def decode_piece(self, token_id: int) -> str:
        """One token on its own (specials as their text, leading space kept)."""
        return self._bytes_of(int(token_id)).decode("utf-8", errors="replace")

    def decode(self, ids: list[int]) -> str:
        """The text of ``ids`` (specials as their text, leading space kept, byte pieces joined)."""
        return b"".join(self._bytes_of(int(i)) for i in ids).decode("utf-8", errors="replace")
