"""The diagnostic tasks' generators (chapter *Diagnostics*): each task's invariants."""

from __future__ import annotations

import pytest
import torch

from ropelib.tasks import (
    COPY_BOS,
    COPY_SEP,
    COPY_SYMBOLS,
    COPY_VOCAB,
    FLIP_BIT,
    FLIP_READ,
    FLIP_VOCAB,
    FLIP_WRITE,
    MQAR_KEYS,
    MQAR_VOCAB,
    PASSKEY_DIGITS,
    PASSKEY_VOCAB,
    PASSKEY_WORDS,
    copy_task,
    flip_flop_task,
    mqar_task,
    passkey_min_length,
    passkey_task,
)

GENERATORS = [
    (copy_task, 7, COPY_VOCAB),
    (mqar_task, 9, MQAR_VOCAB),
    (flip_flop_task, 20, FLIP_VOCAB),
    (passkey_task, 90, PASSKEY_VOCAB),
]


@pytest.mark.parametrize(("task", "size", "vocab"), GENERATORS)
def test_shapes_vocab_mask_and_seed(task, size, vocab):
    batch = task(16, size, 4)
    assert batch.inputs.shape == batch.targets.shape == batch.mask.shape
    assert batch.inputs.dtype == batch.targets.dtype == torch.int64
    assert batch.mask.dtype == torch.bool and batch.mask.any(dim=1).all()
    assert 0 <= batch.inputs.min() and batch.inputs.max() < vocab
    assert torch.equal(batch.mask, batch.targets >= 0)
    scored = batch.targets[batch.mask]
    assert scored.max() < vocab
    # a target is the next input token (teacher forcing), never the token itself
    t = batch.mask.nonzero()
    assert torch.equal(batch.targets[t[:, 0], t[:, 1]], batch.inputs[t[:, 0], t[:, 1] + 1])
    again, other = task(16, size, 4), task(16, size, 5)
    assert all(torch.equal(a, b) for a, b in zip(batch, again, strict=True))
    assert not torch.equal(batch.inputs, other.inputs)
    g1, g2 = torch.Generator().manual_seed(8), torch.Generator().manual_seed(8)
    assert torch.equal(task(4, size, g1).inputs, task(4, size, g2).inputs)
    assert not torch.equal(task(4, size, g1).inputs, task(4, size, g1).inputs)


@pytest.mark.parametrize("reverse", [False, True])
def test_copy_scores_the_copy(reverse):
    n = 11
    b = copy_task(50, n, 0, reverse=reverse)
    assert b.inputs.shape == (50, 2 * n + 2)
    assert (b.inputs[:, 0] == COPY_BOS).all() and (b.inputs[:, n + 1] == COPY_SEP).all()
    x = b.inputs[:, 1 : n + 1]
    assert x.max() < COPY_SYMBOLS
    assert torch.equal(b.targets[:, n + 1 : 2 * n + 1], x.flip(1) if reverse else x)
    assert b.mask.sum().item() == 50 * n and not b.mask[:, : n + 1].any()
    assert not b.mask[:, -1].any()


def test_mqar_answers_are_the_context_values():
    pairs = 10
    b = mqar_task(40, pairs, 1)
    assert b.inputs.shape == (40, 4 * pairs)
    for row, target, mask in zip(b.inputs, b.targets, b.mask, strict=True):
        keys, values = row[: 2 * pairs : 2].tolist(), row[1 : 2 * pairs : 2].tolist()
        assert len(set(keys)) == pairs and max(keys) < MQAR_KEYS <= min(values)
        lookup = dict(zip(keys, values, strict=True))
        queries = row[2 * pairs :: 2].tolist()
        assert sorted(queries) == sorted(keys)
        assert target[2 * pairs :: 2].tolist() == [lookup[q] for q in queries]
        assert mask.nonzero().flatten().tolist() == list(range(2 * pairs, 4 * pairs, 2))
    assert not torch.equal(b.inputs[:, 2 * pairs :: 2], b.inputs[:, : 2 * pairs : 2])


@pytest.mark.parametrize("p_ignore", [0.1, 0.8, 0.98])
def test_flip_flop_reads_return_the_last_write(p_ignore):
    n = 60
    b = flip_flop_task(100, n, 2, p_ignore=p_ignore)
    ops, bits = b.inputs[:, 0::2], b.inputs[:, 1::2] - FLIP_BIT
    assert bits.min() >= 0 and bits.max() <= 1
    assert (ops[:, 0] == FLIP_WRITE).all() and (ops[:, -1] == FLIP_READ).all()
    for row_ops, row_bits, row_targets in zip(ops, bits, b.targets[:, 0::2], strict=True):
        register = None
        for op, bit, target in zip(row_ops.tolist(), row_bits.tolist(), row_targets, strict=True):
            register = bit if op == FLIP_WRITE else register
            expected = FLIP_BIT + register if op == FLIP_READ else -1
            assert target.item() == expected and (op != FLIP_READ or bit == register)
    assert not b.mask[:, 1::2].any()
    drawn = ops[:, 1:-1]
    share = drawn.ne(FLIP_WRITE).logical_and(drawn.ne(FLIP_READ)).float().mean().item()
    assert abs(share - p_ignore) < 0.03
    reads, writes = drawn.eq(FLIP_READ).float().mean(), drawn.eq(FLIP_WRITE).float().mean()
    assert abs(reads - writes) < 0.03


def test_passkey_hides_the_key_and_asks_for_it():
    length = 200
    b = passkey_task(30, length, 3)
    assert b.inputs.shape == (30, length) and b.mask.sum(1).eq(PASSKEY_DIGITS).all()
    depths = set()
    for row in b.inputs.tolist():
        words = [PASSKEY_WORDS[i] for i in row]
        text = " ".join(words)
        answer = " ".join(words[-PASSKEY_DIGITS:])
        assert text.count(f"the pass key is {answer} . remember it . {answer} is") == 1
        assert text.endswith(f"what is the pass key ? the pass key is {answer}")
        depths.add(text.index("pass key"))
    assert len(depths) > 10
    assert passkey_task(2, passkey_min_length(), 0).inputs.shape[1] == passkey_min_length()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: copy_task(0, 3), "batch must be an integer >= 1"),
        (lambda: copy_task(2, 0), "n must be an integer >= 1"),
        (lambda: copy_task(2, 3, seed=1.5), "seed must be an int or a torch.Generator"),
        (lambda: mqar_task(2, MQAR_KEYS + 1), "pairs must be <= 64"),
        (lambda: flip_flop_task(2, 1), "n must be an integer >= 2"),
        (lambda: flip_flop_task(2, 8, p_ignore=1.0), "p_ignore must be a number in"),
        (lambda: passkey_task(2, 37), "length must be an integer >= 38"),
    ],
)
def test_bad_input_is_a_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
