"""Tests of ropelib.data (appendix *The data pipeline*): tokenizers, the token cache, batches."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from ropelib.data import (
    CORPORA,
    DOCUMENT_CORPORA,
    HF_CORPORA,
    BPETokenizer,
    CharTokenizer,
    TokenData,
    get_batch,
    held_out_documents,
    iter_eval_batches,
    iter_tail_batches,
    load_documents,
    load_hf_text,
    load_text,
    load_tokenizer,
    prepare_dataset,
    tail_window_ends,
    token_dtype,
    train_bpe,
)

TEXT = (
    "From fairest creatures we desire increase,\n"
    "That thereby beauty's rose might never die,\n"
    "But as the riper should by time decease,\n"
    "His tender heir might bear his memory:\n\n"
) * 200


@pytest.fixture(scope="module")
def shakespeare_excerpt() -> str:
    return load_text("shakespeare")[:100_000]


@pytest.fixture(scope="module")
def bpe(shakespeare_excerpt: str) -> BPETokenizer:
    return train_bpe(shakespeare_excerpt, vocab_size=400)


@pytest.fixture
def corpus_file(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


# corpora


def test_corpora_names():
    assert CORPORA == ("shakespeare", "bible", "tinystories", "wikitext103", "openwebtext")
    assert set(HF_CORPORA) == {"tinystories", "wikitext103", "openwebtext"}


def test_shakespeare_is_the_gutenberg_texts():
    text = load_text("shakespeare")
    assert 4_500_000 < len(text.encode()) < 5_500_000
    assert "To be, or not to be" in text


def test_bible_loads_or_says_how_to_install(monkeypatch):
    import ropelib.data.corpora
    import ropelib.data.tokens

    monkeypatch.setattr(ropelib.data.corpora.shutil, "which", lambda name: None)
    with pytest.raises(ValueError, match="apt-get install bible-kjv"):
        load_text("bible")


@pytest.mark.skipif(shutil.which("bible") is None, reason="Debian's bible-kjv is not installed")
def test_bible_is_the_king_james_version():
    text = load_text("bible")
    assert 4_000_000 < len(text.encode()) < 4_600_000
    assert text.startswith(
        "Genesis 1\n\n  1 In the beginning God created the heaven and the earth."
    )
    assert load_text("bible") == text


def test_load_text_reads_a_file(corpus_file):
    assert load_text(str(corpus_file)) == TEXT
    assert load_text(corpus_file) == TEXT


@pytest.mark.parametrize("corpus", ["shakespear", "/no/such/file.txt"])
def test_load_text_unknown_corpus_lists_accepted_names(corpus):
    with pytest.raises(ValueError, match="corpus must be one of") as error:
        load_text(corpus)
    assert all(name in str(error.value) for name in CORPORA)


def test_load_text_rejects_binary_and_empty_files(tmp_path):
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00bad")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="corpus"):
        load_text(str(tmp_path / "binary"))
    with pytest.raises(ValueError, match="corpus.*empty"):
        load_text(str(tmp_path / "empty.txt"))
    with pytest.raises(ValueError, match="corpus"):
        load_text(str(tmp_path))  # a directory


def test_max_documents_only_for_hf_corpora():
    with pytest.raises(ValueError, match="max_documents"):
        load_text("shakespeare", max_documents=3)


# the Hugging Face loader, on local files through the same code path


@pytest.fixture
def jsonl_file(tmp_path: Path) -> Path:
    path = tmp_path / "docs.jsonl"
    rows = [{"text": f"document {i}\nsecond line", "id": i} for i in range(7)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_load_hf_text_on_local_json(jsonl_file):
    text = load_hf_text("json", data_files=jsonl_file)
    assert text == "\n\n".join(f"document {i}\nsecond line" for i in range(7))
    assert load_hf_text("json", data_files=[str(jsonl_file)], max_documents=2, separator="|") == (
        "document 0\nsecond line|document 1\nsecond line"
    )


def test_load_hf_text_on_local_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"story": ["one", "two", "three"]}), path)
    assert load_hf_text("parquet", data_files=path, text_field="story", separator=" ") == (
        "one two three"
    )


def test_load_hf_text_bad_inputs(jsonl_file, tmp_path):
    with pytest.raises(ValueError, match="text_field='body'.*columns: \\['id', 'text'\\]"):
        load_hf_text("json", data_files=jsonl_file, text_field="body")
    with pytest.raises(ValueError, match="max_documents"):
        load_hf_text("json", data_files=jsonl_file, max_documents=0)
    with pytest.raises(ValueError, match="data_files"):
        load_hf_text("json", data_files=tmp_path / "missing.jsonl")


def test_hf_corpora_use_the_same_loader(monkeypatch, jsonl_file):
    import ropelib.data.corpora
    import ropelib.data.tokens

    calls = []

    def fake_load_hf_text(path_or_name, **kwargs):
        calls.append((path_or_name, kwargs))
        return load_hf_text("json", data_files=jsonl_file, max_documents=kwargs["max_documents"])

    monkeypatch.setattr(ropelib.data.corpora, "load_hf_text", fake_load_hf_text)
    assert load_text("tinystories", max_documents=1) == "document 0\nsecond line"
    load_text("wikitext103")
    load_text("openwebtext", max_documents=5)
    assert [name for name, _ in calls] == [
        "roneneldan/TinyStories",
        "Salesforce/wikitext",
        "Skylion007/openwebtext",
    ]
    assert calls[1][1]["config"] == "wikitext-103-raw-v1" and calls[1][1]["separator"] == ""
    assert calls[0][1]["max_documents"] == 1 and calls[2][1]["max_documents"] == 5


# tokenizers


def test_char_round_trip_and_vocabulary():
    tokenizer = CharTokenizer("héllo wörld 🙂\n")
    assert tokenizer.chars == sorted(set("héllo wörld 🙂\n"))
    assert tokenizer.vocab_size == len(set("héllo wörld 🙂\n"))
    for text in ["", "wörld", "🙂 héllo\n", "héllo wörld 🙂\n" * 3]:
        ids = tokenizer.encode(text)
        assert all(0 <= i < tokenizer.vocab_size for i in ids)
        assert tokenizer.decode(ids) == text
        assert tokenizer.decode(np.array(ids, dtype=np.uint16)) == text
        assert tokenizer.decode(torch.tensor(ids, dtype=torch.int64)) == text


def test_char_errors():
    tokenizer = CharTokenizer("abc")
    with pytest.raises(ValueError, match="text has characters outside the vocabulary: \\['z'\\]"):
        tokenizer.encode("abz")
    with pytest.raises(ValueError, match="ids"):
        tokenizer.decode([3])
    with pytest.raises(ValueError, match="ids"):
        tokenizer.decode([-1])
    with pytest.raises(ValueError, match="text"):
        CharTokenizer("")


def test_bpe_round_trip(bpe, shakespeare_excerpt):
    samples = [
        shakespeare_excerpt,
        "",
        "naïve café 日本語 🙂 — unseen characters",
        "  leading spaces\ttabs\r\nCRLF\n\n\ntrailing  ",
        "\x00\x01\x7f",
    ]
    for text in samples:
        assert bpe.decode(bpe.encode(text)) == text
    assert bpe.vocab_size == 400


def test_bpe_compresses_better_than_characters(bpe, shakespeare_excerpt):
    held_out = load_text("shakespeare")[-20_000:]
    assert len(bpe.encode(shakespeare_excerpt)) < len(shakespeare_excerpt) / 1.5
    assert len(bpe.encode(held_out)) < len(held_out) / 1.5


def test_bpe_training_is_deterministic(shakespeare_excerpt):
    first = train_bpe(shakespeare_excerpt[:30_000], 300)
    second = train_bpe(shakespeare_excerpt[:30_000], 300)
    assert first.tokenizer.to_str() == second.tokenizer.to_str()


@pytest.mark.parametrize("vocab_size", [0, 255, -5, 2.5, True])
def test_train_bpe_rejects_small_vocab(vocab_size):
    with pytest.raises(ValueError, match="vocab_size"):
        train_bpe("some text", vocab_size)


def test_tokenizers_save_and_load(tmp_path, bpe):
    chars = CharTokenizer(TEXT)
    chars.save(tmp_path / "chars.json")
    bpe.save(tmp_path / "bpe.json")
    for original, path in [(chars, "chars.json"), (bpe, "bpe.json")]:
        loaded = load_tokenizer(tmp_path / path)
        assert type(loaded) is type(original) and loaded.vocab_size == original.vocab_size
        assert loaded.encode(TEXT) == original.encode(TEXT)
    assert not list(tmp_path.glob("*.tmp"))  # the temporary files were renamed
    (tmp_path / "broken.json").write_text('{"model": ')
    with pytest.raises(ValueError, match="path"):
        load_tokenizer(tmp_path / "broken.json")
    with pytest.raises(ValueError, match="path"):
        BPETokenizer.load(tmp_path / "chars.json")


# storage dtype


def test_token_dtype():
    assert token_dtype(256) == np.uint16
    assert token_dtype(65_535) == np.uint16
    assert token_dtype(65_536) == np.uint32
    assert token_dtype(200_019) == np.uint32
    for bad in (0, -1, 2**32, 1.5):
        with pytest.raises(ValueError, match="vocab_size"):
            token_dtype(bad)


# prepare_dataset: cache, split, atomicity


def test_prepare_dataset_split_is_deterministic_and_disjoint(tmp_path, corpus_file):
    data = prepare_dataset(str(corpus_file), "char", data_dir=tmp_path / "a")
    other = prepare_dataset(str(corpus_file), "char", data_dir=tmp_path / "b")
    assert isinstance(data, TokenData) and data.corpus == str(corpus_file)
    assert np.array_equal(data.train, other.train) and np.array_equal(data.val, other.val)
    stream = np.asarray(data.tokenizer.encode(TEXT))
    assert len(data.val) == int(len(stream) * 0.1)
    assert np.array_equal(np.concatenate([data.train, data.val]), stream)
    assert data.train.dtype == np.uint16 and data.vocab_size == len(set(TEXT))


def test_prepare_dataset_bpe_and_cache_reuse(tmp_path, corpus_file):
    data = prepare_dataset(corpus_file, "bpe", 300, tmp_path, val_fraction=0.2)
    assert data.directory.parent == tmp_path
    assert data.directory.name.startswith("corpus-") and data.directory.name.endswith(
        "-bpe-300-val0.2"
    )
    assert sorted(p.name for p in data.directory.iterdir()) == [
        "meta.json",
        "tokenizer.json",
        "train.bin",
        "val.bin",
    ]
    meta = json.loads((data.directory / "meta.json").read_text())
    assert meta["train_tokens"] == len(data.train) and meta["val_tokens"] == len(data.val)
    assert all(p.stat().st_mode & 0o444 == 0o444 for p in data.directory.iterdir())  # readable
    assert meta["dtype"] == "uint16"
    stamps = {p.name: p.stat().st_mtime_ns for p in data.directory.iterdir()}
    again = prepare_dataset(corpus_file, "bpe", 300, tmp_path, val_fraction=0.2)
    assert {p.name: p.stat().st_mtime_ns for p in data.directory.iterdir()} == stamps
    assert isinstance(again.train, np.memmap) and again.train.mode == "r"
    assert np.array_equal(again.val, data.val)
    assert data.tokenizer.decode(np.concatenate([data.train, data.val])) == TEXT


def test_file_corpora_are_keyed_by_content(tmp_path, corpus_file):
    first = prepare_dataset(corpus_file, "char", data_dir=tmp_path / "cache")
    corpus_file.write_text(TEXT + "Coda.\n", encoding="utf-8")
    second = prepare_dataset(corpus_file, "char", data_dir=tmp_path / "cache")
    assert first.directory != second.directory
    assert second.tokenizer.decode(second.val).endswith("Coda.\n")


def test_named_corpora_are_keyed_by_name_and_slice(tmp_path, jsonl_file, monkeypatch):
    import ropelib.data.corpora
    import ropelib.data.tokens

    loads = []

    def fake_load_text(corpus, *, max_documents=None):
        loads.append((corpus, max_documents))
        return load_hf_text("json", data_files=jsonl_file, max_documents=max_documents)

    monkeypatch.setattr(ropelib.data.tokens, "load_text", fake_load_text)
    data = prepare_dataset("tinystories", "char", data_dir=tmp_path, max_documents=3)
    assert data.directory.name == "tinystories-first3-char" and data.corpus == "tinystories"
    whole = data.tokenizer.decode(np.concatenate([data.train, data.val]))
    assert whole == "\n\n".join(f"document {i}\nsecond line" for i in range(3))
    prepare_dataset("tinystories", "char", data_dir=tmp_path, max_documents=3)
    assert loads == [("tinystories", 3)]  # the cached corpus is not loaded again


def test_stale_temporary_files_are_ignored(tmp_path, corpus_file):
    data = prepare_dataset(corpus_file, "char", data_dir=tmp_path)
    expected = np.array(data.train)
    directory = data.directory
    del data
    (directory / ".train.bin.abc.tmp").write_bytes(b"\x00" * 3)
    (directory / ".meta.json.def.tmp").write_text('{"format": 1')
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a valid cache is reused without a warning
        again = prepare_dataset(corpus_file, "char", data_dir=tmp_path)
    assert np.array_equal(again.train, expected)


@pytest.mark.parametrize("damage", ["truncate train", "truncate val", "drop meta", "bad meta"])
def test_damaged_cache_is_rebuilt(tmp_path, corpus_file, damage):
    data = prepare_dataset(corpus_file, "char", data_dir=tmp_path)
    expected_train, expected_val = np.array(data.train), np.array(data.val)
    directory = data.directory
    del data  # never damage a file this process still maps
    if damage.startswith("truncate"):
        path = directory / f"{damage.split()[1]}.bin"
        with open(path, "r+b") as handle:
            handle.truncate(path.stat().st_size - 2)
    elif damage == "drop meta":  # killed after writing the data files, before meta.json
        (directory / "meta.json").unlink()
    else:
        (directory / "meta.json").write_text('{"format": 1, "dtype"')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rebuilt = prepare_dataset(corpus_file, "char", data_dir=tmp_path)
    if damage != "drop meta":  # no meta.json means "not built yet", silently
        assert any("incomplete or corrupt" in str(w.message) for w in caught)
    assert np.array_equal(rebuilt.train, expected_train)
    assert np.array_equal(rebuilt.val, expected_val)


def test_interrupted_build_leaves_no_trusted_cache(tmp_path, corpus_file, monkeypatch):
    import ropelib.data.corpora
    import ropelib.data.tokens

    original = ropelib.data.tokens.atomic_write

    def crash_on_val(path, data):
        if Path(path).name == "val.bin":
            raise KeyboardInterrupt
        original(path, data)

    monkeypatch.setattr(ropelib.data.tokens, "atomic_write", crash_on_val)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(corpus_file, "char", data_dir=tmp_path / "cache")
    (directory,) = (tmp_path / "cache").iterdir()
    assert (directory / "train.bin").exists() and not (directory / "val.bin").exists()
    assert not (directory / "meta.json").exists() and not list(directory.glob("*.tmp"))
    monkeypatch.setattr(ropelib.data.tokens, "atomic_write", original)
    data = prepare_dataset(corpus_file, "char", data_dir=tmp_path / "cache")
    assert data.tokenizer.decode(np.concatenate([data.train, data.val])) == TEXT


def test_prepare_dataset_bad_inputs(tmp_path, corpus_file):
    with pytest.raises(ValueError, match="tokenizer must be one of \\('bpe', 'char'\\)"):
        prepare_dataset(corpus_file, "wordpiece", data_dir=tmp_path)
    with pytest.raises(ValueError, match="vocab_size"):
        prepare_dataset(corpus_file, "bpe", 100, tmp_path)
    with pytest.raises(ValueError, match="vocab_size"):
        prepare_dataset(corpus_file, "bpe", 2**32, tmp_path)
    for fraction in (0, 1, -0.1, 1.5, "0.1"):
        with pytest.raises(ValueError, match="val_fraction"):
            prepare_dataset(corpus_file, "char", data_dir=tmp_path, val_fraction=fraction)
    with pytest.raises(ValueError, match="corpus must be one of"):
        prepare_dataset("no-such-corpus", "char", data_dir=tmp_path)
    with pytest.raises(ValueError, match="max_documents"):
        prepare_dataset(corpus_file, "char", data_dir=tmp_path, max_documents=3)
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("abcde")
    with pytest.raises(ValueError, match="val_fraction"):
        prepare_dataset(tiny, "char", data_dir=tmp_path)  # 10% of 5 tokens is no token


# batches


@pytest.fixture
def tokens() -> np.ndarray:
    return np.arange(1000, dtype=np.uint16) % 997


def test_get_batch_shapes_and_shift(tokens):
    x, y = get_batch(tokens, 8, 32, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (8, 32)
    assert x.dtype == y.dtype == torch.int64 and x.device.type == "cpu"
    assert torch.equal(x[:, 1:], y[:, :-1])
    for row_x, row_y in zip(x, y, strict=True):
        start = int(row_x[0])  # tokens[i] == i here, before the wrap at 997
        assert torch.equal(row_x, torch.from_numpy(tokens[start : start + 32].astype(np.int64)))
        assert torch.equal(row_y, torch.from_numpy(tokens[start + 1 : start + 33].astype(np.int64)))


def test_get_batch_reproducible_from_generator(tokens):
    a = [get_batch(tokens, 4, 16, g) for g in [torch.Generator().manual_seed(7)] * 3]
    g = torch.Generator().manual_seed(7)
    b = [get_batch(tokens, 4, 16, g) for _ in range(3)]
    assert all(
        torch.equal(p[0], q[0]) and torch.equal(p[1], q[1]) for p, q in zip(a, b, strict=True)
    )
    state = g.get_state()
    x1, _ = get_batch(tokens, 4, 16, g)
    g.set_state(state)
    assert torch.equal(get_batch(tokens, 4, 16, g)[0], x1)
    assert not torch.equal(get_batch(tokens, 4, 16, torch.Generator().manual_seed(8))[0], a[0][0])


def test_get_batch_reaches_every_window(tokens):
    short = tokens[:20]
    g = torch.Generator().manual_seed(0)
    starts = {int(get_batch(short, 64, 19, g)[0][i, 0]) for i in range(64)}
    assert starts == {0}  # 20 tokens hold exactly one window of 19 + 1
    starts = set()
    for _ in range(20):
        starts |= set(get_batch(short, 16, 10, g)[0][:, 0].tolist())
    assert starts == set(range(10))  # every start 0..len-T-1 is drawn, none beyond


def test_get_batch_works_on_a_memmap(tmp_path, corpus_file):
    data = prepare_dataset(corpus_file, "char", data_dir=tmp_path)
    x, y = get_batch(data.val, 2, 8, torch.Generator().manual_seed(0))
    assert data.tokenizer.decode(x[0]) in TEXT and data.tokenizer.decode(y[0]) in TEXT


def test_get_batch_bad_inputs(tokens):
    g = torch.Generator()
    with pytest.raises(ValueError, match="^block_size=1000"):
        get_batch(tokens, 2, 1000, g)
    get_batch(tokens, 2, 999, g)  # exactly one window fits
    for name, args in [
        ("batch_size", (tokens, 0, 8, g)),
        ("block_size", (tokens, 2, 0, g)),
        ("block_size", (tokens, 2, 1.5, g)),
        ("generator", (tokens, 2, 8, 0)),
        ("tokens", (tokens.reshape(10, 100), 2, 8, g)),
        ("tokens", (tokens.astype(np.float32), 2, 8, g)),
        ("tokens", (list(tokens), 2, 8, g)),
    ]:
        with pytest.raises(ValueError, match=name):
            get_batch(*args)


def test_iter_eval_batches_fixed_and_evenly_spaced(tokens):
    batches = list(iter_eval_batches(tokens, 4, 50, max_batches=3))
    assert len(batches) == 3 and all(x.shape == (4, 50) for x, _ in batches)
    again = list(iter_eval_batches(tokens, 4, 50, max_batches=3))
    assert all(
        torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        for a, b in zip(batches, again, strict=True)
    )
    assert all(torch.equal(x[:, 1:], y[:, :-1]) for x, y in batches)
    starts = torch.cat([x[:, 0] for x, _ in batches]).tolist()  # tokens[i] == i below 997
    assert starts[0] == 0 and starts[-1] == len(tokens) - 51
    gaps = np.diff(starts)
    assert gaps.min() >= 50 and gaps.max() - gaps.min() <= 1


def test_iter_eval_batches_caps_at_non_overlapping_windows(tokens):
    windows = torch.cat([x for x, _ in iter_eval_batches(tokens, 8, 100, max_batches=50)])
    assert len(windows) == 999 // 100
    last = list(iter_eval_batches(tokens[:201], 3, 100, max_batches=10))
    assert [len(x) for x, _ in last] == [2]


def test_iter_eval_batches_bad_inputs(tokens):
    with pytest.raises(ValueError, match="^block_size=1000"):  # at the call, not the first batch
        iter_eval_batches(tokens, 4, 1000, 2)
    with pytest.raises(ValueError, match="max_batches"):
        iter_eval_batches(tokens, 4, 10, 0)
    with pytest.raises(ValueError, match="batch_size"):
        iter_eval_batches(tokens, -1, 10, 2)


# --- the validation split by document and the protocol's windows --------------------------


def test_documents_join_to_the_corpus_text():
    plays = load_documents("shakespeare")
    assert len(plays) == 42 and "".join(t for _, t in plays) == load_text("shakespeare")
    assert load_documents("wikitext103") is None and set(DOCUMENT_CORPORA) <= set(CORPORA)


@pytest.mark.skipif(not shutil.which("bible"), reason="needs Debian's bible-kjv")
def test_bible_books_span_the_canon():
    books = load_documents("bible")
    names = [name for name, _ in books]
    assert len(books) == 66 and names[0] == "Genesis" and names[-1] == "Revelation"
    held = held_out_documents(names)
    assert held == ["Leviticus", "1 Chronicles", "Isaiah", "Micah", "John",
                    "2 Thessalonians", "2 John"]  # fmt: skip
    assert names.index("Matthew") < names.index("John")  # the New Testament too


def test_held_out_documents_rule():
    names = [f"d{i}" for i in range(25)]
    assert held_out_documents(names) == ["d2", "d12", "d22"]
    assert held_out_documents(names, 0.2) == ["d2", "d7", "d12", "d17", "d22"]
    assert held_out_documents(["a", "b"], 0.5) == ["b"]


def test_prepare_dataset_holds_out_whole_plays(tmp_path):
    data = prepare_dataset("shakespeare", "char", data_dir=tmp_path)
    plays = dict(load_documents("shakespeare"))
    held = ["as_you_like_it", "henry_vi_part_3", "merry_wives_of_windsor", "romeo_and_juliet"]
    assert list(data.val_documents) == held and data.directory.name == "shakespeare-docs-char"
    assert data.tokenizer.decode(data.val) == "".join(plays[name] for name in held)
    train_text = "".join(t for n, t in plays.items() if n not in held)
    assert data.tokenizer.decode(data.train) == train_text
    meta = json.loads((data.directory / "meta.json").read_text())
    assert meta["split"] == "documents" and meta["val_documents"] == held
    tail = prepare_dataset("shakespeare", "char", data_dir=tmp_path, split="tail")
    assert tail.directory.name == "shakespeare-char" and tail.val_documents == ()
    assert len(tail.val) == int(len(load_text("shakespeare")) * 0.1)  # the old rule


def test_file_corpora_keep_the_tail_split(tmp_path, corpus_file):
    by_default = prepare_dataset(corpus_file, "char", data_dir=tmp_path)
    tail = prepare_dataset(corpus_file, "char", data_dir=tmp_path, split="tail")
    assert by_default.directory == tail.directory and by_default.val_documents == ()
    with pytest.raises(ValueError, match="split must be one of"):
        prepare_dataset(corpus_file, "char", data_dir=tmp_path, split="random")


def test_tail_windows_score_the_same_targets(tokens):
    T, K = 16, 4
    ends = tail_window_ends(tokens, T, K)
    assert ends[0] == K * T + 1 and ends[-1] <= len(tokens) and np.all(np.diff(ends) == T)
    targets = {}
    for k in (1, 2, 4):
        batches = list(iter_tail_batches(tokens, ends, k * T, batch_size=5))
        assert all(x.shape[1] == k * T and torch.equal(x[:, 1:], y[:, :-1]) for x, y in batches)
        targets[k] = torch.cat([y[:, -T:] for _, y in batches])
    assert torch.equal(targets[1], targets[2]) and torch.equal(targets[1], targets[4])
    every = np.concatenate([np.asarray(tokens[e - T : e]) for e in ends])
    assert np.array_equal(targets[1].flatten().numpy(), every)


def test_tail_window_ends_cap_and_errors(tokens):
    capped = tail_window_ends(tokens, 16, 2, max_targets=100)
    assert len(capped) == 7 and set(capped) <= set(tail_window_ends(tokens, 16, 2))
    with pytest.raises(ValueError, match="block_size"):
        tail_window_ends(tokens[:40], 16, 4)
    with pytest.raises(ValueError, match="max_targets"):
        tail_window_ends(tokens, 16, 2, max_targets=0)
    with pytest.raises(ValueError, match="leaves the split"):
        list(iter_tail_batches(tokens, np.array([10]), 16, 4))
