"""Load a Hugging Face ``tokenizer.json`` (plus its side files) with the ``tokenizers`` library.

Works on tokenizers 0.13.3 (what A1111 pins) as well as on current releases: files written by
newer releases carry fields 0.13.3 rejects (BPE ``ignore_merges``, merges as pairs, Metaspace
``prepend_scheme``/``split``); when the file does not load as it is, those are rewritten into
their old form and loading is retried.

Special token ids come from ``tokenizer_config.json``, ``special_tokens_map.json``,
``generation_config.json`` and ``config.json`` (first file that names one wins; end-of-sequence
ids are the union of all).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lib_tagger.generate.base import ModelLoadError
from lib_tagger.models import files

TOKENIZER_FILE = "tokenizer.json"
_SIDE_FILES = ("tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "config.json")


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; ModelLoadError naming the file when it is not one."""
    return files.read_json(path, ModelLoadError)


def _downgrade_metaspace(node: dict[str, Any]) -> None:
    if "prepend_scheme" in node:
        node["add_prefix_space"] = node.pop("prepend_scheme") != "never"
    node.pop("split", None)


def _downgrade(data: Any) -> Any:
    """Rewrite fields newer tokenizers releases write into the form 0.13.x reads (in place)."""
    if isinstance(data, list):
        for item in data:
            _downgrade(item)
    elif isinstance(data, dict):
        kind = data.get("type")
        if kind == "Metaspace":
            _downgrade_metaspace(data)
        if kind == "BPE":
            data.pop("ignore_merges", None)
            merges = data.get("merges") or []
            data["merges"] = [" ".join(m) if isinstance(m, list) else m for m in merges]
        for value in data.values():
            _downgrade(value)
    return data


def load_tokenizers_json(path: Path):
    """A ``tokenizers.Tokenizer`` from ``path``; newer fields are rewritten when this release needs it."""
    from tokenizers import Tokenizer

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc
    try:
        return Tokenizer.from_str(text)
    except Exception as first:  # tokenizers raises a bare Exception on schema mismatch
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelLoadError(f"{path} is not valid JSON: {exc}") from exc
        try:
            return Tokenizer.from_str(json.dumps(_downgrade(data)))
        except Exception:
            raise ModelLoadError(f"cannot load tokenizer {path}: {first}") from first


#: Dart's completions end with this tag (then eos): generation stops at either.
DART_STOP_TAG = "</general>"


def end_ids(tokenizer) -> frozenset[int]:
    """The ids generation stops at: the tokenizer's eos ids, and Dart's closing tag where it has one."""
    stops = set(tokenizer.eos_ids)
    if tokenizer.word_level and DART_STOP_TAG in tokenizer.vocab:
        stops.add(tokenizer.vocab[DART_STOP_TAG])
    if not stops:
        raise ValueError(f"{tokenizer.source or 'tokenizer'}: no end-of-sequence token is configured")
    return frozenset(stops)


def load_tokenizer(folder: str | Path):
    """The folder's tokenizer: ``tokenizer.json`` (:class:`TagTokenizer`), else a SentencePiece
    ``tokenizer.model`` with ``added_tokens.json`` (TIPO's files)."""
    folder = Path(folder)
    if (folder / TOKENIZER_FILE).is_file():
        return TagTokenizer.from_folder(folder)
    from lib_tagger.generate.spm_tokenizer import MODEL_FILE, SentencePieceTokenizer

    if (folder / MODEL_FILE).is_file():
        return SentencePieceTokenizer.from_folder(folder)
    raise ModelLoadError(f"tokenizer file missing: {folder / TOKENIZER_FILE} (or {MODEL_FILE})")


def _token_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def _id_list(value: Any) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, int) and not isinstance(v, bool)]
    return []


class PromptIds:
    """What both tokenizers build on their own ``encode``, ``add_bos``, ``bos_id`` and id → token map."""

    add_bos: bool
    bos_id: int | None
    _id_to_tok: dict[int, str]

    def encode_prompt(self, text: str) -> list[int]:
        """Ids for a model prompt that start with exactly one bos (when the model uses one)."""
        ids = self.encode(text)
        if self.add_bos and self.bos_id is not None and (not ids or ids[0] != self.bos_id):
            ids.insert(0, self.bos_id)
        return ids

    def id_to_token(self, token_id: int) -> str:
        """The vocabulary entry of ``token_id`` (e.g. ``long hair`` or ``▁long``); '' when unknown."""
        return self._id_to_tok.get(int(token_id), "")


class TagTokenizer(PromptIds):
    """A loaded tokenizer: encode, decode (whole or per token), vocabulary and special ids.

    ``word_level`` is True for Dart-style vocabularies (one tag = one token, no decoder).
    """

    def __init__(self, tokenizer, side: dict[str, dict[str, Any]] | None = None, source: str = "") -> None:
        self._tok = tokenizer
        self.source = source
        side = side or {}
        self.vocab: dict[str, int] = dict(tokenizer.get_vocab(with_added_tokens=True))
        self._id_to_tok = {i: t for t, i in self.vocab.items()}
        layout = json.loads(tokenizer.to_str())
        self.word_level: bool = layout.get("model", {}).get("type") == "WordLevel"
        self.bos_id = self._special_id("bos", side)
        self.pad_id = self._special_id("pad", side)
        self.unk_id = self._special_id("unk", side)
        eos: list[int] = []
        for name in _SIDE_FILES:
            data = side.get(name, {})
            ids = _id_list(data.get("eos_token_id"))
            text = _token_text(data.get("eos_token"))
            if text is not None and text in self.vocab:
                ids.append(self.vocab[text])
            eos.extend(i for i in ids if i not in eos)
        self.eos_ids: list[int] = eos
        self.add_bos: bool = bool(side.get("tokenizer_config.json", {}).get("add_bos_token", True))
        added = layout.get("added_tokens") or []
        self.special_ids: set[int] = {a["id"] for a in added if a.get("special")}
        self.special_ids.update(i for i in (self.bos_id, self.pad_id, self.unk_id, *eos) if i is not None)

    def _special_id(self, kind: str, side: dict[str, dict[str, Any]]) -> int | None:
        for name in _SIDE_FILES:
            data = side.get(name, {})
            text = _token_text(data.get(f"{kind}_token"))
            if text is not None and text in self.vocab:
                return self.vocab[text]
            ids = _id_list(data.get(f"{kind}_token_id"))
            if ids:
                return ids[0]
        return None

    @classmethod
    def from_folder(cls, folder: str | Path) -> TagTokenizer:
        """Load ``tokenizer.json`` and the optional side files of ``folder``."""
        folder = Path(folder)
        path = folder / TOKENIZER_FILE
        if not path.is_file():
            raise ModelLoadError(f"tokenizer file missing: {path}")
        side = {name: read_json(folder / name) for name in _SIDE_FILES if (folder / name).is_file()}
        return cls(load_tokenizers_json(path), side, source=str(path))

    @property
    def vocab_size(self) -> int:
        """Number of tokens, added tokens included."""
        return len(self.vocab)

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Token ids of ``text``; special tokens written in the text are recognised either way."""
        return list(self._tok.encode(text, add_special_tokens=add_special_tokens).ids)


    def decode_piece(self, token_id: int) -> str:
        """One token on its own: the tag for word-level vocabularies, else decoded text; specials kept."""
        if self.word_level:
            return self.id_to_token(token_id)
        return self._tok.decode([int(token_id)], skip_special_tokens=False)

    def decode(self, ids: list[int]) -> str:
        """Whole text of ``ids``: word-level, non-special tags joined by ", "; else via the decoder."""
        if self.word_level:
            pieces = (self.id_to_token(i) for i in ids if int(i) not in self.special_ids)
            return ", ".join(p for p in pieces if p)
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=False)
