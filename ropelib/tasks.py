# generated from notebooks/11_diagnostics.md by tools/export.py, do not edit

# %% notebooks/11_diagnostics.md: Diagnostics: tasks where position schemes separate / A batch
#    of a task
"""Synthetic diagnostic tasks: copy, associative recall, flip-flop and passkey."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class TaskBatch(NamedTuple):
    """Inputs, targets (-1: no loss), mask. Defined in the chapter *Diagnostics*."""

    inputs: Tensor  # [B, T] token ids
    targets: Tensor  # [B, T] the next token where the task determines it, else -1
    mask: Tensor  # [B, T] True where the prediction is scored


def _generator(seed: int | torch.Generator) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int or a torch.Generator, got {seed!r}")
    return torch.Generator().manual_seed(seed)


def _check_size(name: str, value: object, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")


def _scored(inputs: Tensor, targets: Tensor) -> TaskBatch:
    return TaskBatch(inputs, targets, targets >= 0)


# %% notebooks/11_diagnostics.md: Diagnostics: tasks where position schemes separate / Copying,
#    and generalising to longer strings
COPY_SYMBOLS = 16  # the alphabet: ids 0..15
COPY_BOS, COPY_SEP = 16, 17
COPY_VOCAB = 18


def copy_task(
    batch: int, n: int, seed: int | torch.Generator = 0, *, reverse: bool = False
) -> TaskBatch:
    """`BOS x SEP x` (or reversed). Defined in the chapter *Diagnostics*."""
    _check_size("batch", batch, 1)
    _check_size("n", n, 1)
    x = torch.randint(0, COPY_SYMBOLS, (batch, n), generator=_generator(seed))
    bos = torch.full((batch, 1), COPY_BOS)
    sep = torch.full((batch, 1), COPY_SEP)
    inputs = torch.cat((bos, x, sep, x.flip(1) if reverse else x), dim=1)
    targets = torch.full_like(inputs, -1)
    targets[:, n + 1 : 2 * n + 1] = inputs[:, n + 2 :]  # SEP and the copy predict it
    return _scored(inputs, targets)


# %% notebooks/11_diagnostics.md: Diagnostics: tasks where position schemes separate / Multi-
#    query associative recall
MQAR_KEYS, MQAR_VALUES = 64, 32  # keys: ids 0..63, values: 64..95
MQAR_VOCAB = MQAR_KEYS + MQAR_VALUES


def mqar_task(batch: int, pairs: int, seed: int | torch.Generator = 0) -> TaskBatch:
    """Key-value pairs, then the keys. Defined in the chapter *Diagnostics*."""
    _check_size("batch", batch, 1)
    _check_size("pairs", pairs, 1)
    if pairs > MQAR_KEYS:
        raise ValueError(f"pairs must be <= {MQAR_KEYS} (distinct keys), got {pairs}")
    g = _generator(seed)
    keys = torch.rand(batch, MQAR_KEYS, generator=g).argsort(dim=1)[:, :pairs]
    values = MQAR_KEYS + torch.randint(0, MQAR_VALUES, (batch, pairs), generator=g)
    order = torch.rand(batch, pairs, generator=g).argsort(dim=1)  # the queries' order
    queries, answers = keys.gather(1, order), values.gather(1, order)
    context = torch.stack((keys, values), dim=2).flatten(1)
    asked = torch.stack((queries, answers), dim=2).flatten(1)
    inputs = torch.cat((context, asked), dim=1)
    targets = torch.full_like(inputs, -1)
    targets[:, 2 * pairs :: 2] = answers  # each queried key predicts its value
    return _scored(inputs, targets)


# %% notebooks/11_diagnostics.md: Diagnostics: tasks where position schemes separate / Flip-flop
#    language modelling
FLIP_WRITE, FLIP_IGNORE, FLIP_READ = 0, 1, 2
FLIP_BIT = 3  # bits are the ids 3 (0) and 4 (1)
FLIP_VOCAB = 5


def flip_flop_task(
    batch: int, n: int, seed: int | torch.Generator = 0, *, p_ignore: float = 0.8
) -> TaskBatch:
    """n (instruction, bit) pairs. Defined in the chapter *Diagnostics*."""
    _check_size("batch", batch, 1)
    _check_size("n", n, 2)
    if not (isinstance(p_ignore, (int, float)) and 0 <= p_ignore < 1):
        raise ValueError(f"p_ignore must be a number in [0, 1), got {p_ignore!r}")
    g = _generator(seed)
    u = torch.rand(batch, n, generator=g)
    p_write = (1 - p_ignore) / 2  # writes and reads are equally likely
    ops = torch.where(u < p_write, FLIP_WRITE, FLIP_IGNORE)
    ops = torch.where(u >= 1 - p_write, FLIP_READ, ops)
    ops[:, 0], ops[:, -1] = FLIP_WRITE, FLIP_READ
    bits = torch.randint(0, 2, (batch, n), generator=g)
    step = torch.arange(n).expand(batch, n)
    last_write = torch.where(ops == FLIP_WRITE, step, 0).cummax(dim=1).values
    bits = torch.where(ops == FLIP_READ, bits.gather(1, last_write), bits)
    inputs = torch.stack((ops, FLIP_BIT + bits), dim=2).flatten(1)
    targets = torch.full_like(inputs, -1)
    targets[:, 0::2] = torch.where(ops == FLIP_READ, FLIP_BIT + bits, -1)
    return _scored(inputs, targets)


# %% notebooks/11_diagnostics.md: Diagnostics: tasks where position schemes separate / Passkey
#    retrieval in filler text
PASSKEY_WORDS = (
    "the grass is green sky blue sun yellow here we go there and back again"
    " pass key remember it what . ? 0 1 2 3 4 5 6 7 8 9"
).split()
PASSKEY_VOCAB = len(PASSKEY_WORDS)
PASSKEY_DIGITS = 5
PASSKEY_FILLER = (
    "the grass is green . the sky is blue . the sun is yellow . here we go ."
    " there and back again ."
)
PASSKEY_KEY = "the pass key is # . remember it . # is the pass key ."
PASSKEY_QUESTION = "what is the pass key ? the pass key is"


def passkey_ids(text: str) -> Tensor:
    """Word ids of `text`, -1 per digit. Defined in the chapter *Diagnostics*."""
    words = text.replace("#", " ".join("#" * PASSKEY_DIGITS)).split()
    return torch.tensor([-1 if w == "#" else PASSKEY_WORDS.index(w) for w in words])


def passkey_min_length() -> int:
    """Tokens without filler. Defined in the chapter *Diagnostics*."""
    key, question = passkey_ids(PASSKEY_KEY), passkey_ids(PASSKEY_QUESTION)
    return len(key) + len(question) + PASSKEY_DIGITS


# %% notebooks/11_diagnostics.md: Diagnostics: tasks where position schemes separate / Passkey
#    retrieval in filler text
def passkey_task(batch: int, length: int, seed: int | torch.Generator = 0) -> TaskBatch:
    """A key in filler, asked for at the end. Defined in the chapter *Diagnostics*."""
    _check_size("batch", batch, 1)
    _check_size("length", length, passkey_min_length())
    filler, key = passkey_ids(PASSKEY_FILLER), passkey_ids(PASSKEY_KEY)
    g = _generator(seed)
    digits = PASSKEY_WORDS.index("0") + torch.randint(
        0, 10, (batch, PASSKEY_DIGITS), generator=g
    )
    n_filler = length - passkey_min_length()
    depth = torch.randint(0, n_filler + 1, (batch, 1), generator=g)  # key's start
    t = torch.arange(n_filler + len(key)).expand(batch, -1)
    inside = (t >= depth) & (t < depth + len(key))
    words = filler[(t - len(key) * (t >= depth)) % len(filler)]
    hay = torch.where(inside, key[(t - depth).clamp(0, len(key) - 1)], words)
    slot = (hay.eq(-1).cumsum(dim=1) - 1).clamp(min=0) % PASSKEY_DIGITS
    hay = torch.where(hay == -1, digits.gather(1, slot), hay)
    question = passkey_ids(PASSKEY_QUESTION).expand(batch, -1)
    inputs = torch.cat((hay, question, digits), dim=1)
    targets = torch.full_like(inputs, -1)
    targets[:, -PASSKEY_DIGITS - 1 : -1] = digits
    return _scored(inputs, targets)


__all__ = [
    "COPY_SYMBOLS",
    "copy_task",
    "COPY_VOCAB",
    "FLIP_BIT",
    "flip_flop_task",
    "FLIP_VOCAB",
    "mqar_task",
    "MQAR_VOCAB",
    "PASSKEY_DIGITS",
    "PASSKEY_FILLER",
    "passkey_ids",
    "PASSKEY_KEY",
    "passkey_min_length",
    "PASSKEY_QUESTION",
    "passkey_task",
    "PASSKEY_VOCAB",
    "PASSKEY_WORDS",
    "TaskBatch",
]
