# generated from notebooks/91_data.md by tools/export.py, do not edit

# %% notebooks/91_data.md: The data pipeline / Tokenizers
"""Tokenizers: characters and byte-level BPE, saved to and read from JSON files."""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ropelib.data.corpora import _check_positive_int
from ropelib.files import atomic_write


def _as_id_array(
    ids: Sequence[int] | np.ndarray | torch.Tensor, vocab_size: int
) -> np.ndarray:
    # Token ids as a 1-d int64 array, checked against the vocabulary.
    if isinstance(ids, torch.Tensor):
        ids = ids.detach().cpu().numpy()
    array = np.asarray(ids)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if (
        array.ndim != 1
        or not np.issubdtype(array.dtype, np.integer)
        or array.dtype == bool
    ):
        raise ValueError(
            f"ids must be a 1-d sequence of integers, got {array.dtype} {array.shape}"
        )
    if array.min() < 0 or array.max() >= vocab_size:
        bad = array[(array < 0) | (array >= vocab_size)][:5].tolist()
        raise ValueError(f"ids must be integers in [0, {vocab_size}), got {bad!r}")
    return array.astype(np.int64, copy=False)


# %% notebooks/91_data.md: The data pipeline / Tokenizers
class CharTokenizer:
    """Characters as tokens, sorted. Defined in the chapter *The data pipeline*."""

    kind = "char"

    def __init__(self, text: str) -> None:
        if not isinstance(text, str) or not text:
            raise ValueError("text must be a non-empty string")
        self.chars = sorted(set(text))
        # sorted characters are sorted code points: encoding is a binary search
        self._code_points = np.array(
            [ord(char) for char in self.chars], dtype=np.uint32
        )

    @property
    def vocab_size(self) -> int:
        """The number of distinct characters."""
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """The index of every character of `text`."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a string, got {type(text).__name__}")
        code_points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        ids = np.searchsorted(self._code_points, code_points)
        known = self._code_points[np.minimum(ids, self.vocab_size - 1)] == code_points
        if not known.all():
            unknown = sorted({chr(c) for c in code_points[~known][:1000]})
            raise ValueError(
                f"text has characters outside the vocabulary: {unknown[:10]!r}"
            )
        return ids.tolist()

    def decode(self, ids: Sequence[int] | np.ndarray | torch.Tensor) -> str:
        """The characters with indices `ids`."""
        return (
            self._code_points[_as_id_array(ids, self.vocab_size)]
            .tobytes()
            .decode("utf-32-le")
        )

    def to_json(self) -> str:
        """The vocabulary as the JSON text that `save` writes."""
        return json.dumps(
            {"type": self.kind, "chars": "".join(self.chars)}, ensure_ascii=True
        )

    def save(self, path: str | Path) -> None:
        """Write the vocabulary to a JSON file (atomically)."""
        atomic_write(Path(path), self.to_json().encode())

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        """Read a tokenizer written by `save`."""
        data = _read_json(path, "path")
        if data.get("type") != cls.kind or not isinstance(data.get("chars"), str):
            raise ValueError(f"path: {str(path)!r} is not a saved CharTokenizer")
        return cls(data["chars"])


# %% notebooks/91_data.md: The data pipeline / Tokenizers
def _read_json(path: str | Path, name: str) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(
            f"{name}: cannot read JSON from {str(path)!r}: {error}"
        ) from error
    if not isinstance(data, dict):
        raise ValueError(f"{name}: {str(path)!r} does not hold a JSON object")
    return data


# %% notebooks/91_data.md: The data pipeline / Tokenizers
_BYTE_ALPHABET = 256
_CHUNK_CHARS = (
    1 << 10
)  # `tokenizers` slows down on long inputs: 64K-character pieces cost 2x


def _chunks(text: str, size: int = _CHUNK_CHARS) -> list[str]:
    # Pieces of at most `size` characters, cut after a newline (else a space) when there is
    # one, for `tokenizers` to encode in parallel; "".join(pieces) == text.
    pieces, start = [], 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            cut = text.rfind("\n", start, end)
            cut = cut if cut >= start else text.rfind(" ", start, end)
            end = cut + 1 if cut >= start else end
        pieces.append(text[start:end])
        start = end
    return pieces


# %% notebooks/91_data.md: The data pipeline / Tokenizers
class BPETokenizer:
    """A byte-level BPE (HF `tokenizers`). Defined in the chapter *The data pipeline*."""

    kind = "bpe"

    def __init__(self, tokenizer) -> None:
        tokenizers = import_optional("tokenizers", "a BPE tokenizer")
        if not isinstance(tokenizer, tokenizers.Tokenizer):
            raise ValueError(
                f"tokenizer must be a tokenizers.Tokenizer, got {type(tokenizer)}"
            )
        self.tokenizer = tokenizer

    @property
    def vocab_size(self) -> int:
        """The number of tokens: 256 bytes plus one per merge."""
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        """The token ids of `text`; long texts are encoded in parallel pieces."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a string, got {type(text).__name__}")
        pieces = _chunks(text)
        if len(pieces) <= 1:
            return self.tokenizer.encode(text).ids
        return [
            i for encoding in self.tokenizer.encode_batch(pieces) for i in encoding.ids
        ]

    def decode(self, ids: Sequence[int] | np.ndarray | torch.Tensor) -> str:
        """The text of the token ids `ids`."""
        return self.tokenizer.decode(_as_id_array(ids, self.vocab_size).tolist())

    def to_json(self) -> str:
        """The merges and vocabulary as the JSON text (HF `tokenizers`) that `save` writes."""
        return self.tokenizer.to_str()

    def save(self, path: str | Path) -> None:
        """Write the tokenizer to a JSON file (atomically), in HF `tokenizers` format."""
        atomic_write(Path(path), self.to_json().encode())

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        """Read a tokenizer written by `save`."""
        tokenizers = import_optional("tokenizers", "a BPE tokenizer")
        try:
            return cls(tokenizers.Tokenizer.from_file(os.fspath(path)))
        except Exception as error:  # tokenizers raises a plain Exception on bad files
            raise ValueError(
                f"path: cannot read a BPE tokenizer from {str(path)!r}"
            ) from error


# %% notebooks/91_data.md: The data pipeline / Tokenizers
def train_bpe(text: str, vocab_size: int) -> BPETokenizer:
    """Train a byte-level BPE tokenizer with `vocab_size` tokens on `text`.

    The vocabulary is smaller when `text` has too few distinct pairs to merge.
    Defined in the chapter *The data pipeline*.
    """
    hf = import_optional("tokenizers", "training a BPE tokenizer")
    Tokenizer, decoders, models = hf.Tokenizer, hf.decoders, hf.models
    pre_tokenizers, trainers = hf.pre_tokenizers, hf.trainers
    if not isinstance(text, str) or not text:
        raise ValueError("text must be a non-empty string")
    vocab_size = _check_positive_int("vocab_size", vocab_size)
    if vocab_size < _BYTE_ALPHABET:
        raise ValueError(
            f"vocab_size must be at least {_BYTE_ALPHABET} (the byte alphabet), got {vocab_size}"
        )
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    tokenizer.train_from_iterator(_chunks(text), trainer=trainer)
    return BPETokenizer(tokenizer)


def load_tokenizer(path: str | Path) -> CharTokenizer | BPETokenizer:
    """A tokenizer saved by `save`. Defined in the chapter *The data pipeline*."""
    data = _read_json(path, "path")
    return (
        CharTokenizer.load(path)
        if data.get("type") == "char"
        else BPETokenizer.load(path)
    )


# %% notebooks/91_data.md: The data pipeline / Tokenizers
EXTRAS = {  # an optional package -> the extra of pyproject.toml that installs it
    "tokenizers": "train",
    "safetensors": "train",
    "tqdm": "train",
    "matplotlib": "train",
    "datasets": "online",
    "sklearn": "book",
    "transformers": "hf",
}


class MissingExtra(ModuleNotFoundError):
    """An optional package is not installed. Defined in the chapter *The data pipeline*."""


def install_hint(module: str) -> str:
    """The `pip install` that provides `module`. Defined in the chapter *The data pipeline*."""
    top = module.split(".")[0]
    return (
        f"pip install 'ropelib[{EXTRAS[top]}]'"
        if top in EXTRAS
        else f"pip install {top}"
    )


def import_optional(module: str, purpose: str):
    """`module`, or MissingExtra naming its install. Defined in *The data pipeline*."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name != module.split(".")[0] and error.name != module:
            raise  # a module that `module` itself imports: a broken install, not an extra
        package = module.split(".")[0]
        message = f"{purpose} needs the package {package!r}: {install_hint(module)}"
        raise MissingExtra(message, name=error.name) from None


__all__ = [
    "BPETokenizer",
    "CharTokenizer",
    "EXTRAS",
    "import_optional",
    "install_hint",
    "load_tokenizer",
    "MissingExtra",
    "train_bpe",
]
