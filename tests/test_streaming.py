"""Streaming, constant-memory data: memory-mapped CSV/TSV splits, index shuffling, steps per epoch."""

import keras
import numpy as np
import pandas as pd
import pytest
from helpers import StopAtStep

from attngen_keras.data import DataError, load_dataset, make_tf_dataset
from attngen_keras.data import cache as cache_lib
from attngen_keras.data.errors import SequenceTooLongError
from attngen_keras.data.pipeline import epoch_permutation, make_epoch_stream, make_step_stream
from attngen_keras.synthetic import planted_motif_data
from attngen_keras.training import TrainConfig, _validation_sample, train


def _write_csv(path, n, *, ragged=False, split=False, seed=0, ids=False):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(12, 30, n) if ragged else np.full(n, 24)
    rows = {
        "seq": ["".join(rng.choice(list("ACGTN"), size=k)) for k in lengths],
        "label": rng.choice(["neg", "pos", "other"], size=n),
    }
    if ids:
        rows = {"id": [f"r{i}" for i in range(n)], **rows}
    if split:
        rows["split"] = rng.choice(["train", "test", "val"], size=n, p=[0.7, 0.2, 0.1])
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _same(a, b):
    assert a.class_names == b.class_names and a.length == b.length
    assert sorted(a.splits) == sorted(b.splits)
    for name in a.splits:
        np.testing.assert_array_equal(np.asarray(a[name].tokens), np.asarray(b[name].tokens))
        np.testing.assert_array_equal(a[name].labels, b[name].labels)
        assert [str(i) for i in a[name].ids] == [str(i) for i in b[name].ids]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"split": True, "ids": True},
        {"ragged": True},
    ],
)
def test_memory_mapped_tables_equal_the_in_memory_ones(tmp_path, options):
    csv = _write_csv(tmp_path / "data.csv", 500, **options)
    cache = tmp_path / "cache"
    mapped = load_dataset(str(csv), cache_dir=str(cache), memory_map=True, show_progress=False)
    plain = load_dataset(str(csv), cache_dir=None, memory_map=False)
    _same(mapped, plain)
    for split in mapped.splits.values():
        assert cache_lib.is_memory_mapped(split.tokens) and split.tokens.dtype == np.uint8
        assert not split.tokens.flags.writeable
    assert not cache_lib.is_memory_mapped(plain["train"].tokens)


def test_memory_mapped_crop_length_and_several_files(tmp_path):
    train = _write_csv(tmp_path / "train.csv", 300, ragged=True, seed=1)
    test = _write_csv(tmp_path / "test.csv", 100, ragged=True, seed=2)
    data = [str(train), str(test)]
    for crop in ("left", "center", "right"):
        options = {"length": 16, "crop": crop, "seed": 3}
        mapped = load_dataset(data, cache_dir=str(tmp_path / "c"), memory_map=True, **options)
        _same(mapped, load_dataset(data, cache_dir=None, memory_map=False, **options))
    too_long = r"longer than --length 16 \(\d+ such records?: \d+ in \w+\); raise --length or"
    with pytest.raises(SequenceTooLongError, match=too_long):
        load_dataset(data, cache_dir=str(tmp_path / "c"), memory_map=True, length=16)


def test_memory_mapped_cache_is_reused_and_rebuilt_when_corrupt(tmp_path, monkeypatch):
    csv = _write_csv(tmp_path / "data.csv", 200)
    cache = tmp_path / "cache"
    first = load_dataset(str(csv), cache_dir=str(cache), memory_map=True)
    (directory,) = (cache / "encoded").iterdir()
    scans = {"n": 0}
    original = cache_lib.scan_tables

    def counting(*args, **kwargs):
        scans["n"] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(cache_lib, "scan_tables", counting)
    _same(first, load_dataset(str(csv), cache_dir=str(cache), memory_map=True))
    assert scans["n"] == 0
    del first
    path = directory / "train.tokens.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # one flipped bit in the last token
    path.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="checksum mismatch"):
        again = load_dataset(str(csv), cache_dir=str(cache), memory_map=True)
    assert scans["n"] == 1
    _same(again, load_dataset(str(csv), cache_dir=None))


def test_memory_mapped_bad_input_names_file_and_record(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("seq,label\nACGT,a\nACGT,b\nACXT,a\n")
    with pytest.raises(DataError) as mapped:
        load_dataset(str(csv), cache_dir=str(tmp_path / "c"), memory_map=True)
    with pytest.raises(DataError) as plain:
        load_dataset(str(csv), cache_dir=None)
    assert str(mapped.value) == str(plain.value)
    assert "record 'line 4'" in str(mapped.value) and "invalid character 'X'" in str(mapped.value)
    csv.write_text("seq,label\nACGT,a\nACGT,\n")
    with pytest.raises(DataError, match="record 'line 3': empty label"):
        load_dataset(str(csv), cache_dir=str(tmp_path / "c"), memory_map=True)
    csv.write_text("sequence,kind\nACGT,a\n")
    with pytest.raises(DataError, match="missing column"):
        load_dataset(str(csv), cache_dir=str(tmp_path / "c"), memory_map=True)


def test_epoch_visits_every_index_once_in_a_seeded_order(tmp_path):
    csv = _write_csv(tmp_path / "data.csv", 400)
    split = load_dataset(str(csv), cache_dir=str(tmp_path / "c"), memory_map=True)["train"]
    n, batch = len(split), 32
    tokens = np.asarray(split.tokens)
    row_of = {row.tobytes(): i for i, row in enumerate(tokens)}
    assert len(row_of) == n  # random rows are distinct: a row identifies its index

    def visited(stream):
        order, labels = [], []
        for x, y in stream:
            rows = np.argmax(x.numpy(), axis=-1) + 4 * (x.numpy().max(-1) < 1)  # N -> 4
            for row in rows.astype(np.uint8):
                order.append(row_of[row.tobytes()])
            labels.extend(y.numpy().tolist())
        return np.array(order), labels

    order, labels = visited(make_epoch_stream(split, batch, seed=5, start_epoch=0, end_epoch=1))
    assert sorted(order.tolist()) == list(range(n))
    np.testing.assert_array_equal(order, epoch_permutation(n, 5, 0))
    np.testing.assert_array_equal(labels, split.labels[order])
    assert not np.array_equal(order, epoch_permutation(n, 6, 0))
    # a resumed stream (epoch 1 from batch 3) continues the same order
    second, _ = visited(make_epoch_stream(split, batch, seed=5, start_epoch=1, end_epoch=2))
    resumed, _ = visited(
        make_epoch_stream(split, batch, seed=5, start_epoch=1, end_epoch=2, start_batch=3)
    )
    np.testing.assert_array_equal(resumed, second[3 * batch :])
    # the same batches as from the in-memory tokens
    plain = load_dataset(str(csv), cache_dir=None)["train"]
    for a, b in zip(
        make_epoch_stream(split, batch, seed=5, reverse_complement=True),
        make_epoch_stream(plain, batch, seed=5, reverse_complement=True),
    ):
        np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
        np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())


def test_make_tf_dataset_streams_memory_mapped_splits(tmp_path):
    csv = _write_csv(tmp_path / "data.csv", 300)
    mapped = load_dataset(str(csv), cache_dir=str(tmp_path / "c"), memory_map=True)["test"]
    plain = load_dataset(str(csv), cache_dir=None)["test"]
    for a, b in zip(make_tf_dataset(mapped, 16), make_tf_dataset(plain, 16)):
        np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
        np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())
    shuffled = make_tf_dataset(mapped, 16, shuffle=True, seed=2, include_labels=False)
    first = np.concatenate([x.numpy() for x in shuffled])
    second = np.concatenate([x.numpy() for x in shuffled])
    assert first.shape == (len(mapped), mapped.tokens.shape[1], 4)
    assert not np.array_equal(first, second)  # reshuffled each pass
    key = lambda a: sorted(map(bytes, a.reshape(len(a), -1).astype(np.uint8)))  # noqa: E731
    assert key(first) == key(second)  # the same sequences, each once


def test_step_stream_runs_on_across_passes(tmp_path):
    csv = _write_csv(tmp_path / "data.csv", 200)
    split = load_dataset(str(csv), cache_dir=str(tmp_path / "c"), memory_map=True)["train"]
    batch = 32
    per_pass = -(-len(split) // batch)
    passes = [
        y.numpy() for y in (b[1] for b in make_epoch_stream(split, batch, seed=1, end_epoch=3))
    ]
    steps = [
        y.numpy()
        for _, y in make_step_stream(split, batch, seed=1, start_step=0, end_step=2 * per_pass + 2)
    ]
    assert len(steps) == 2 * per_pass + 2
    for a, b in zip(steps, passes):
        np.testing.assert_array_equal(a, b)
    middle = [
        y.numpy()
        for _, y in make_step_stream(
            split, batch, seed=1, start_step=per_pass - 1, end_step=per_pass + 3
        )
    ]
    assert len(middle) == 4
    for a, b in zip(middle, passes[per_pass - 1 :]):
        np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def motif_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("streaming")
    path = folder / "motifs.csv"
    planted_motif_data(n=400, length=50, motifs=("TGACTCA",), seed=5).to_frame().to_csv(
        path, index=False
    )
    dataset = load_dataset(str(path), cache_dir=str(folder / "cache"), memory_map=True)
    assert cache_lib.is_memory_mapped(dataset["train"].tokens)
    return str(path), dataset


class _FinalWeights(keras.callbacks.Callback):
    def on_train_end(self, logs=None):
        self.weights = [np.array(w) for w in self.model.get_weights()]


def _train(motif_data, out, callbacks=(), **overrides):
    path, dataset = motif_data
    options = dict(data=[path], out=str(out), model="cnn", epochs=3, batch_size=32, patience=0,
                   jit_compile=False, seed=3, reverse_complement=True, steps_per_epoch=4)  # fmt: skip
    options.update(overrides)
    return train(TrainConfig(**options), verbose=0, dataset=dataset, callbacks=list(callbacks))


def test_steps_per_epoch_continues_the_data_order_and_resumes_exactly(motif_data, tmp_path):
    # 288 train sequences / 32 = 9 batches per pass; 3 epochs of 4 steps are 12 steps of one run
    assert -(-len(motif_data[1]["train"]) // 32) == 9
    by_epochs, at_once = _FinalWeights(), _FinalWeights()
    metrics = _train(motif_data, tmp_path / "epochs", [by_epochs])
    _train(motif_data, tmp_path / "once", [at_once], epochs=1, steps_per_epoch=12)
    history = pd.read_csv(tmp_path / "epochs" / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2] and metrics["epochs_trained"] == 3
    for a, b in zip(by_epochs.weights, at_once.weights):
        np.testing.assert_allclose(a, b, atol=1e-6)  # no epoch restarted the data at batch 0
    # killed at step 7 (epoch 2, batch 3), last checkpoint at step 6; resumed: the same end
    with pytest.raises(KeyboardInterrupt):
        _train(motif_data, tmp_path / "run", [StopAtStep(7)], checkpoint_every=2)
    resumed = _FinalWeights()
    _train(motif_data, tmp_path / "run", [resumed], checkpoint_every=2)
    for a, b in zip(resumed.weights, by_epochs.weights):
        np.testing.assert_allclose(a, b, atol=1e-5)
    got = pd.read_csv(tmp_path / "run" / "history.csv")
    np.testing.assert_allclose(got["loss"], history["loss"], atol=1e-4)
    with pytest.raises(
        Exception, match="steps_per_epoch"
    ):  # another --steps-per-epoch is another run
        _train(motif_data, tmp_path / "run", steps_per_epoch=5)


def test_validation_steps_use_a_fixed_seeded_sample(motif_data, tmp_path):
    val = motif_data[1]["val"]
    sample = _validation_sample(val, 1, 16, seed=3)
    assert len(sample) == 16 and cache_lib.is_memory_mapped(val.tokens)
    chosen = np.sort(epoch_permutation(len(val), 3, 0)[:16])
    np.testing.assert_array_equal(sample.tokens, np.asarray(val.tokens)[chosen])
    assert _validation_sample(val, 100, 16, seed=3) is val
    _train(
        motif_data, tmp_path / "val", epochs=1, steps_per_epoch=2, validation_steps=1, batch_size=16
    )
    history = pd.read_csv(tmp_path / "val" / "history.csv")
    assert np.isfinite(history["val_loss"]).all()


def test_epoch_permutation_is_int32_and_the_same_order_as_int64():
    import tensorflow as tf

    for n, seed, epoch in [(1, 0, 0), (1000, 5, 0), (65_537, 3, 7)]:
        order = epoch_permutation(n, seed, epoch)
        assert order.dtype == np.int32  # 4 bytes a sequence, not 8
        seeds = tf.constant([seed, epoch], tf.int64)
        wide = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=seeds)
        np.testing.assert_array_equal(order, wide.numpy())  # runs resume in the same order


def test_memory_mapped_build_holds_few_bytes_per_record(tmp_path, monkeypatch):
    import tracemalloc

    from attngen_keras.data import loading

    n = 50_000
    csv = tmp_path / "data.csv"
    pd.DataFrame({"seq": ["ACGTACGTAC"] * n, "label": ["a", "b"] * (n // 2)}).to_csv(
        csv, index=False
    )
    seen = {}
    scan_tables, write_split = cache_lib.scan_tables, loading._write_memmap_split

    def scanned(*args, **kwargs):
        scan = scan_tables(*args, **kwargs)
        seen["scan"] = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        return scan

    def writing(*args, **kwargs):
        if "held" not in seen:  # the index arrays of every split exist, no record is written yet
            seen["held"], seen["peak"] = tracemalloc.get_traced_memory()
        return write_split(*args, **kwargs)

    monkeypatch.setattr(cache_lib, "scan_tables", scanned)
    monkeypatch.setattr(loading, "_write_memmap_split", writing)
    tracemalloc.start()
    try:
        dataset = load_dataset(str(csv), cache_dir=str(tmp_path / "c"), memory_map=True)
    finally:
        tracemalloc.stop()
    assert sum(len(s) for s in dataset.splits.values()) == n
    # int32 row indices, intermediates dropped: ~11 bytes a record held, ~23 at the peak
    # of the carving (with int64 indices kept alive: 34 and 43)
    assert (seen["held"] - seen["scan"]) / n < 20
    assert (seen["peak"] - seen["scan"]) / n < 32


def _rss_file_mib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("RssFile:"))


def test_validation_sample_releases_the_pages_it_maps(tmp_path):
    import os

    from attngen_keras.data import EncodedSplit

    if not os.path.exists("/proc/self/status"):
        pytest.skip("reads RssFile from /proc/self/status (Linux)")

    n, length = 100_000, 200  # a 19 MiB token file
    rng = np.random.default_rng(0)
    np.save(tmp_path / "tokens.npy", rng.integers(0, 4, (n, length), dtype=np.uint8))
    np.save(tmp_path / "ids.npy", np.array([f"r{i}" for i in range(n)]))
    split = EncodedSplit(
        np.load(tmp_path / "tokens.npy", mmap_mode="r"),
        np.arange(n, dtype=np.int32) % 2,
        np.load(tmp_path / "ids.npy", mmap_mode="r"),
    )
    before = _rss_file_mib()
    sample = _validation_sample(split, steps=16, batch_size=128, seed=3)  # 2,048 rows: 0.4 MiB
    grown = _rss_file_mib() - before
    chosen = np.sort(epoch_permutation(n, 3, 0)[:2048])
    np.testing.assert_array_equal(sample.tokens, split.tokens[chosen])
    assert [str(i) for i in sample.ids] == [f"r{i}" for i in chosen]
    assert grown < 4, f"{grown:.1f} MiB of file pages still mapped"  # unreleased: ~20 MiB


def _write_fasta(path, n, prefix, seed, gz=False):
    import gzip

    rng = np.random.default_rng(seed)
    records = [
        f">{prefix}{i} some description\n{''.join(rng.choice(list('ACGTN'), rng.integers(15, 40)))}\n"
        for i in range(n)
    ]
    records[3] = f">\n{records[3].split(chr(10))[1]}\n"  # an empty title: the id is '#4'
    text = "".join(records)
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return str(path)


@pytest.mark.parametrize("layout", ["files", "named_cropped", "directory", "split_dirs"])
def test_memory_mapped_fasta_equals_the_in_memory_reader(tmp_path, layout):
    """FASTA per class is streamed (plain and gzip) into memory-mapped splits equal to the
    in-memory reader's: same classes, splits, order, tokens, labels and ids."""
    options = {}
    if layout == "split_dirs":
        for split, n in (("train", 150), ("test", 40)):
            (tmp_path / "d" / split).mkdir(parents=True)
            _write_fasta(tmp_path / "d" / split / "human.fa", n, "h", seed=n)
            _write_fasta(tmp_path / "d" / split / "fungus.fa.gz", n - 10, "f", seed=n + 1, gz=True)
        data = str(tmp_path / "d")
    else:
        (tmp_path / "d").mkdir()
        human = _write_fasta(tmp_path / "d" / "human.fa", 160, "h", seed=1)
        fungus = _write_fasta(tmp_path / "d" / "fungus.fa.gz", 120, "f", seed=2, gz=True)
        data = {
            "files": [human, fungus],
            "named_cropped": [f"pos={human}", f"neg={fungus}"],
            "directory": str(tmp_path / "d"),
        }[layout]
        if layout == "named_cropped":
            options = {"length": 25, "crop": "center"}
    mapped = load_dataset(data, cache_dir=str(tmp_path / "c"), memory_map=True, **options)
    plain = load_dataset(data, cache_dir=None, memory_map=False, **options)
    _same(mapped, plain)
    assert mapped.kind == plain.kind == "fasta"
    assert all(cache_lib.is_memory_mapped(split.tokens) for split in mapped.splits.values())
    assert "#4" in set(np.concatenate([np.asarray(s.ids) for s in mapped.splits.values()]))


def test_memory_mapped_fasta_bad_input_is_the_same_one_line_error(tmp_path):
    import gzip

    good = tmp_path / "good.fa"
    good.write_text(">g1\nACGT\n>g2\nACGG\n")
    bad = tmp_path / "bad.fa"
    bad.write_text(">b1\nACGT\n>b2 x\nACXT\n")
    cases = {
        "invalid character 'X'": [str(good), str(bad)],
        "a single FASTA file has no classes": [str(good)],
        "given twice": [f"a={good}", f"a={bad}"],
    }
    truncated = tmp_path / "cut.fa.gz"
    truncated.write_bytes(gzip.compress(b">c1\nACGT\n" * 2000)[:-40])
    cases["corrupt gzip file"] = [str(good), str(truncated)]
    empty = tmp_path / "empty.fa"
    empty.write_text("")
    cases["empty file"] = [str(good), str(empty)]
    latin = tmp_path / "latin.fa"
    latin.write_bytes(b">l1\nACGT\n>l2 caf\xe9\nACGG\n")
    cases["line 3: not UTF-8 text (byte 0xe9"] = [str(good), str(latin)]
    for problem, data in cases.items():
        with pytest.raises(DataError) as mapped:
            load_dataset(data, cache_dir=str(tmp_path / "c"), memory_map=True)
        with pytest.raises(DataError) as plain:
            load_dataset(data, cache_dir=None, memory_map=False)
        assert problem in str(mapped.value), str(mapped.value)
        if problem != "corrupt gzip file":  # the in-memory reader words zlib's error otherwise
            assert str(mapped.value) == str(plain.value)
        else:
            assert problem in str(plain.value) and str(truncated) in str(mapped.value)
    with pytest.raises(DataError) as error:
        load_dataset([str(good), str(bad)], cache_dir=str(tmp_path / "c"), memory_map=True)
    assert str(bad) in str(error.value) and "record 'b2'" in str(error.value)


def test_large_fasta_is_memory_mapped_automatically(tmp_path, monkeypatch):
    from attngen_keras.data import loading

    human = _write_fasta(tmp_path / "human.fa", 50, "h", seed=3)
    fungus = _write_fasta(tmp_path / "fungus.fa", 50, "f", seed=4)
    monkeypatch.setattr(loading, "MEMORY_MAP_MIN_BYTES", 1000)  # the files hold ~3 kB
    dataset = load_dataset([human, fungus], cache_dir=str(tmp_path / "c"))
    assert dataset.info.get("memory_mapped") and cache_lib.is_memory_mapped(dataset["train"].tokens)
    monkeypatch.setattr(loading, "MEMORY_MAP_MIN_BYTES", 10**9)
    dataset = load_dataset([human, fungus], cache_dir=str(tmp_path / "c2"))
    assert not cache_lib.is_memory_mapped(dataset["train"].tokens)


def test_memory_mapped_fasta_splits_lines_as_the_in_memory_reader(tmp_path):
    """CRLF and a lone CR (old Mac files) are line ends in both readers."""
    rng = np.random.default_rng(7)
    sequences = {}
    for name, end in (("a", "\r\n"), ("b", "\r")):
        sequences[name] = ["".join(rng.choice(list("ACGT"), 30)) for _ in range(30)]
        text = "".join(f">{name}{i} title{end}{s[:20]}{end}{s[20:]}{end}"
                       for i, s in enumerate(sequences[name]))  # fmt: skip
        (tmp_path / f"{name}.fa").write_bytes(text.encode())
    data = [str(tmp_path / "a.fa"), str(tmp_path / "b.fa")]
    mapped = load_dataset(data, cache_dir=str(tmp_path / "c"), memory_map=True)
    plain = load_dataset(data, cache_dir=None, memory_map=False)
    _same(mapped, plain)
    read = {i: s for split in plain.splits.values() for i, s in zip(split.ids, split.sequences())}
    assert read == {f"{n}{i}": s for n, seqs in sequences.items() for i, s in enumerate(seqs)}


def _fasta_with_one_long_record(tmp_path, long_length, seed):
    """`pos.fa` and `neg.fa`, 40 records of 30 nt each, but `pos5` of `long_length` nt."""
    rng = np.random.default_rng(seed)
    for name in ("pos", "neg"):
        lengths = [long_length if (name, i) == ("pos", 5) else 30 for i in range(40)]
        text = "".join(
            f">{name}{i}\n{''.join(rng.choice(list('ACGT'), k))}\n" for i, k in enumerate(lengths)
        )
        (tmp_path / f"{name}.fa").write_text(text)
    return [str(tmp_path / "pos.fa"), str(tmp_path / "neg.fa")]


def test_memory_mapped_loads_warn_of_length_outliers_like_the_in_memory_ones(tmp_path):
    """A few very long records set the padded length: the same warning from both readers, also
    when the memory-mapped cache is reused."""
    data = _fasta_with_one_long_record(tmp_path, 500, seed=8)
    with pytest.warns(UserWarning, match="twice the typical length") as plain:
        load_dataset(data, cache_dir=None, memory_map=False)
    for _ in range(2):  # built, then reused
        with pytest.warns(UserWarning, match="twice the typical length") as mapped:
            load_dataset(data, cache_dir=str(tmp_path / "c"), memory_map=True)
        messages = [str(w.message) for w in mapped if "typical length" in str(w.message)]
        expected = [str(w.message) for w in plain if "typical length" in str(w.message)]
        assert messages == expected and "record 'pos5'" in messages[0]


def test_an_inferred_length_far_past_the_typical_one_is_refused_by_both_readers(tmp_path):
    """A chromosome left among short records would be the padded length of all (the user trial's
    3 Mb record: a crash after 17 GB); past 100x the typical length it is an error naming it,
    and an explicit length is still taken."""
    data = _fasta_with_one_long_record(tmp_path, 3_101, seed=9)
    messages = []
    for options in ({"memory_map": False, "cache_dir": None},
                    {"memory_map": True, "cache_dir": str(tmp_path / "c")}):  # fmt: skip
        with pytest.raises(DataError) as error:
            load_dataset(data, **options)
        messages.append(str(error.value))
        dataset = load_dataset(data, length=30, crop="left", **options)
        assert dataset["train"].tokens.shape[1] == 30
    assert messages[0] == messages[1]
    assert "record 'pos5'" in messages[0] and "3,101 nt" in messages[0]
    assert "--length 30 with --crop" in messages[0] and "--length 3101 to pad" in messages[0]
    (tmp_path / "pos.fa").write_text(  # 3,000 nt: 100x the typical 30, still only a warning
        "".join(f">pos{i}\n{'ACGT' * 750 if i == 5 else 'ACGTTG' * 5}\n" for i in range(40))
    )
    with pytest.warns(UserWarning, match="twice the typical length"):
        assert load_dataset(data, memory_map=False, cache_dir=None)["train"].tokens.shape[1] == 3000


def test_fasta_chunks_are_bounded_by_bases_as_well_as_records(tmp_path):
    path = tmp_path / "long.fa"
    path.write_text("".join(f">r{i}\n{'ACGT' * 250}\n" for i in range(10)))  # 1,000 nt each
    chunks = list(cache_lib._fasta_chunks(str(path), chunk_records=100, chunk_bases=2_500))
    assert [len(ids) for ids, _ in chunks] == [3, 3, 3, 1]
    assert [i for ids, _ in chunks for i in ids] == [f"r{i}" for i in range(10)]


def test_shortest_length_reads_a_memory_mapped_split_in_chunks(tmp_path):
    """`EncodedSplit.shortest_length` and `count_shorter` see every row whatever the chunk size
    (the shortest is in the last, partial chunk here); an empty split's shortest length is 0."""
    from attngen_keras.data import EncodedSplit
    from attngen_keras.data.alphabet import PAD

    tokens = np.lib.format.open_memmap(tmp_path / "t.npy", mode="w+", dtype=np.uint8, shape=(7, 10))
    tokens[:] = 0  # all full-length (A)
    tokens[2, 8:] = PAD  # 8 nt
    tokens[6, 3:] = PAD  # 3 nt, in the last chunk of 3 rows
    split = EncodedSplit(tokens=tokens, labels=np.zeros(7, np.int32), ids=np.arange(7).astype(str))
    # chunks of 1, 3 and all rows (10 bytes a row)
    assert [split.shortest_length(chunk_bytes) for chunk_bytes in (10, 30, 1000)] == [3, 3, 3]
    assert [split.count_shorter(9, chunk_bytes) for chunk_bytes in (10, 30, 1000)] == [2, 2, 2]
    empty = EncodedSplit(
        tokens=np.zeros((0, 10), np.uint8), labels=np.zeros(0, np.int32), ids=np.zeros(0, str)
    )
    assert empty.shortest_length() == 0
