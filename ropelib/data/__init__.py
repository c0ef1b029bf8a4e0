"""The data pipeline: corpora, tokenizers, cached token files, batches and evaluation windows.

`from ropelib.data import prepare_dataset, get_batch, ...` keeps working: this package re-exports
the public names of its modules, which are generated from the notebooks by `tools/export.py`
(this file is written by hand). It imports no method, model or trainer.
"""

from ropelib.data.batches import get_batch, iter_eval_batches
from ropelib.data.corpora import CORPORA, HF_CORPORA, load_hf_text, load_text
from ropelib.data.tokenizers import BPETokenizer, CharTokenizer, load_tokenizer, train_bpe
from ropelib.data.tokens import TOKENIZERS, TokenData, prepare_dataset, token_dtype

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
