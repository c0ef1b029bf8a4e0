"""The data pipeline: corpora, tokenizers, cached token files, batches and evaluation windows.

`from ropelib.data import prepare_dataset, get_batch, ...` keeps working: this package re-exports
the public names of its modules, which are generated from the notebooks by `tools/export.py`
(this file is written by hand). It imports no method, model or trainer.
"""

from ropelib.data.batches import (
    get_batch,
    iter_eval_batches,
    iter_tail_batches,
    tail_window_ends,
)
from ropelib.data.corpora import (
    CORPORA,
    DOCUMENT_CORPORA,
    HF_CORPORA,
    load_documents,
    load_hf_text,
    load_text,
)
from ropelib.data.tokenizers import BPETokenizer, CharTokenizer, load_tokenizer, train_bpe
from ropelib.data.tokens import (
    SPLITS,
    TOKENIZERS,
    TokenData,
    held_out_documents,
    prepare_dataset,
    token_dtype,
)

__all__ = [
    "BPETokenizer",
    "CharTokenizer",
    "CORPORA",
    "DOCUMENT_CORPORA",
    "get_batch",
    "HF_CORPORA",
    "held_out_documents",
    "iter_eval_batches",
    "iter_tail_batches",
    "load_documents",
    "load_hf_text",
    "load_text",
    "load_tokenizer",
    "prepare_dataset",
    "SPLITS",
    "tail_window_ends",
    "token_dtype",
    "TokenData",
    "TOKENIZERS",
    "train_bpe",
]
