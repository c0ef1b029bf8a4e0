# generated from notebooks/91_data.md by tools/export.py, do not edit

# %% notebooks/91_data.md: The data pipeline / Token files
"""Token files: a corpus tokenized once, cached on disk, memory-mapped, split by document."""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ropelib.data.corpora import (
    CORPORA,
    DOCUMENT_CORPORA,
    HF_CORPORA,
    _check_positive_int,
    load_documents,
    load_text,
)
from ropelib.data.tokenizers import (
    _BYTE_ALPHABET,
    BPETokenizer,
    CharTokenizer,
    load_tokenizer,
    train_bpe,
)
from ropelib.files import atomic_write


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 below 2**16 tokens, else uint32. Defined in the chapter *The data pipeline*."""
    vocab_size = _check_positive_int("vocab_size", vocab_size)
    if vocab_size >= 2**32:
        raise ValueError(f"vocab_size must be below 2**32, got {vocab_size}")
    return np.dtype(np.uint16) if vocab_size < 2**16 else np.dtype(np.uint32)


# %% notebooks/91_data.md: The data pipeline / Token files
TOKENIZERS = ("bpe", "char")
SPLITS = (
    "documents",
    "tail",
)  # held-out documents; the last val_fraction of the stream
_CACHE_FORMAT = 1


@dataclass
class TokenData:
    """Mapped train/val ids and their tokenizer. Defined in the chapter *The data pipeline*."""

    train: np.ndarray
    val: np.ndarray
    vocab_size: int
    tokenizer: CharTokenizer | BPETokenizer
    corpus: str
    directory: Path | None = None
    # what a checkpoint records and a resumed run compares: hashes of the text and the
    # tokenizer's file (None when unknown), and the sizes of the two splits
    fingerprint: dict = field(default_factory=dict)
    val_documents: tuple[str, ...] = ()  # the held-out documents, in corpus order


# %% notebooks/91_data.md: The data pipeline / The validation split: whole documents
def held_out_documents(names: list[str], val_fraction: float = 0.1) -> list[str]:
    """Every round(1/val_fraction)-th document from the third: the validation documents.

    Defined in the chapter *The data pipeline*.
    """
    stride = max(2, round(1 / val_fraction))
    first = min(2, stride - 1)
    return [name for index, name in enumerate(names) if index % stride == first]


def _split_tokens(tok, text, train_text, val_text, val_fraction):
    # {"train.bin", "val.bin"} arrays and their dtype; val_text None: the tail
    dtype = token_dtype(tok.vocab_size)
    if val_text is None:
        tokens = np.asarray(tok.encode(text), dtype=dtype)
        val_tokens = int(len(tokens) * val_fraction)
        if val_tokens < 1 or val_tokens == len(tokens):
            raise ValueError(
                f"val_fraction={val_fraction} of {len(tokens)} tokens leaves an empty "
                "split; use a larger corpus"
            )
        return {
            "train.bin": tokens[:-val_tokens],
            "val.bin": tokens[-val_tokens:],
        }, dtype
    splits = {"train.bin": train_text, "val.bin": val_text}
    return {k: np.asarray(tok.encode(v), dtype=dtype) for k, v in splits.items()}, dtype


# %% notebooks/91_data.md: The data pipeline / The validation split: whole documents
def _cache_name(
    corpus: str,
    text: str | None,
    tokenizer: str,
    vocab_size: int,
    val_fraction: float,
    max_documents: int | None,
    split: str = "tail",
) -> str:
    if corpus in CORPORA:
        key = corpus if max_documents is None else f"{corpus}-first{max_documents}"
        if split == "documents" and corpus in DOCUMENT_CORPORA:
            key += "-docs"  # a new split rule, a new cache: an old one is never reused
    else:  # a file: its name for people, a hash of its content for correctness
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(corpus).stem) or "text"
        key = f"{stem}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    name = f"{key}-{tokenizer}" + (f"-{vocab_size}" if tokenizer == "bpe" else "")
    return name if val_fraction == 0.1 else f"{name}-val{val_fraction:g}"


# %% notebooks/91_data.md: The data pipeline / The validation split: whole documents
def _read_cache(directory: Path) -> dict | None:
    # The cache's metadata when every file it lists is present with the recorded size, else None.
    meta_path = directory / "meta.json"
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        itemsize = np.dtype(meta["dtype"]).itemsize
        problems = [
            name
            for name, size in meta["files"].items()
            if not (directory / name).is_file()
            or (directory / name).stat().st_size != size
        ]
        for split in ("train", "val"):
            if meta["files"][f"{split}.bin"] != meta[f"{split}_tokens"] * itemsize:
                problems.append(f"{split}.bin")
        ok = meta["format"] == _CACHE_FORMAT and not problems
    except (OSError, ValueError, KeyError, TypeError) as error:
        problems, ok = [f"meta.json ({error})"], False
    if not ok:
        warnings.warn(
            f"the data cache {directory} is incomplete or corrupt ({', '.join(problems)}); "
            "rebuilding it",
            stacklevel=3,
        )
        return None
    return meta


# %% notebooks/91_data.md: The data pipeline / The validation split: whole documents
def _build_cache(
    directory: Path,
    text: str,
    corpus: str,
    tokenizer: str,
    vocab_size: int,
    val_fraction: float,
    documents: list[tuple[str, str]] | None = None,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "meta.json").unlink(
        missing_ok=True
    )  # invalid until the new files are complete
    held_out = held_out_documents([n for n, _ in documents or []], val_fraction)
    if documents:
        train_text = "".join(t for n, t in documents if n not in held_out)
        val_text = "".join(t for n, t in documents if n in held_out)
    else:  # the tail: the last val_fraction of the text, cut where the tokens are cut
        train_text, val_text = text[: int(len(text) * (1 - val_fraction))], None
    # BPE learns from the training text only; characters from all of it (none unknown)
    if tokenizer == "bpe":
        tok = train_bpe(train_text or text, vocab_size)
    else:
        tok = CharTokenizer(text)
    splits, dtype = _split_tokens(tok, text, train_text, val_text, val_fraction)
    tok.save(directory / "tokenizer.json")
    for name, array in splits.items():
        atomic_write(
            directory / name, memoryview(np.ascontiguousarray(array)).cast("B")
        )
    meta = {
        "format": _CACHE_FORMAT,
        "corpus": corpus,
        "tokenizer": tokenizer,
        "vocab_size": tok.vocab_size,
        "requested_vocab_size": vocab_size if tokenizer == "bpe" else None,
        "dtype": dtype.name,
        "val_fraction": val_fraction,
        "split": "documents" if documents else "tail",
        "val_documents": held_out,
        "text_bytes": len(text.encode()),
        "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "train_tokens": len(splits["train.bin"]),
        "val_tokens": len(splits["val.bin"]),
        "files": {
            name: (directory / name).stat().st_size
            for name in ("tokenizer.json", "train.bin", "val.bin")
        },
    }
    atomic_write(directory / "meta.json", json.dumps(meta, indent=1).encode())


# %% notebooks/91_data.md: The data pipeline / The validation split: whole documents
def _check_dataset_arguments(
    corpus: str,
    tokenizer: str,
    vocab_size: int,
    data_dir: str | Path,
    val_fraction: float,
    max_documents: int | None,
    split: str = "documents",
) -> int:
    # The arguments of prepare_dataset, checked before any text is read; the vocabulary size.
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"tokenizer must be one of {TOKENIZERS}, got {tokenizer!r}")
    if tokenizer == "bpe":
        vocab_size = _check_positive_int("vocab_size", vocab_size)
        if vocab_size < _BYTE_ALPHABET:
            raise ValueError(
                f"vocab_size must be at least {_BYTE_ALPHABET} for tokenizer='bpe', "
                f"got {vocab_size}"
            )
        token_dtype(vocab_size)  # checks the upper bound
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)):
        raise ValueError(
            f"val_fraction must be a number in (0, 1), got {val_fraction!r}"
        )
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    if not isinstance(data_dir, (str, os.PathLike)):
        raise ValueError(f"data_dir must be a path, got {data_dir!r}")
    if max_documents is not None and corpus not in HF_CORPORA:
        raise ValueError(
            f"max_documents applies to the corpora {tuple(HF_CORPORA)} only, not {corpus!r}"
        )
    return vocab_size


# %% notebooks/91_data.md: The data pipeline / The validation split: whole documents
def _fingerprint(directory: Path, meta: dict, train, val) -> dict:
    """What a checkpoint records of its data: hashes of the text and tokenizer, sizes."""
    tokenizer_file = (directory / "tokenizer.json").read_bytes()
    return {
        "text_sha256": meta.get("text_sha256"),  # absent from caches of older versions
        "tokenizer_sha256": hashlib.sha256(tokenizer_file).hexdigest(),
        "train_tokens": len(train),
        "val_tokens": len(val),
    }


# %% notebooks/91_data.md: The data pipeline / The validation split: whole documents
def prepare_dataset(
    corpus: str = "shakespeare",
    tokenizer: str = "bpe",
    vocab_size: int = 4096,
    data_dir: str | Path = "data",
    val_fraction: float = 0.1,
    *,
    max_documents: int | None = None,
    split: str = "documents",
) -> TokenData:
    """Tokenize `corpus` once, cache it under `data_dir`, and memory-map its train/val ids.

    `split="documents"`: whole documents held out (`held_out_documents`) where the
    corpus has them, else, and for `split="tail"`, the last `val_fraction` of the
    token stream.
    `vocab_size` applies to "bpe" (characters use the corpus's character set).
    Defined in the chapter *The data pipeline*.
    """
    vocab_size = _check_dataset_arguments(
        corpus, tokenizer, vocab_size, data_dir, val_fraction, max_documents, split
    )
    # Named corpora are cached by name, so a cached one loads without reading (or downloading)
    # its text; a file is read first, to key the cache by its content.
    text = None if corpus in CORPORA else load_text(corpus)
    name = _cache_name(
        corpus, text, tokenizer, vocab_size, val_fraction, max_documents, split
    )
    directory = Path(data_dir) / name
    meta = _read_cache(directory)
    if meta is None:
        documents = load_documents(corpus) if split == "documents" else None
        if documents:
            text = "".join(body for _, body in documents)
        elif text is None:
            text = load_text(corpus, max_documents=max_documents)
        _build_cache(
            directory, text, str(corpus), tokenizer, vocab_size, val_fraction, documents
        )
        meta = _read_cache(directory)
        if meta is None:  # another process rebuilt it meanwhile with different results
            raise RuntimeError(
                f"the data cache {directory} changed while it was written"
            )
    train, val = (
        np.memmap(directory / f"{part}.bin", dtype=meta["dtype"], mode="r")
        for part in ("train", "val")
    )
    return TokenData(
        train=train,
        val=val,
        vocab_size=meta["vocab_size"],
        tokenizer=load_tokenizer(directory / "tokenizer.json"),
        corpus=str(corpus),
        directory=directory,
        fingerprint=_fingerprint(directory, meta, train, val),
        val_documents=tuple(meta.get("val_documents") or ()),
    )


__all__ = [
    "held_out_documents",
    "prepare_dataset",
    "SPLITS",
    "token_dtype",
    "TokenData",
    "TOKENIZERS",
]
