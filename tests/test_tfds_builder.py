import numpy as np
import tensorflow_datasets as tfds
from helpers import write_full_sequence_dir

import attngen_keras.data.tfds_builder  # noqa: F401  (registers the builder)


def test_tfds_load_from_manual_full_sequence_dir(tmp_path):
    rows = {
        "train": [(i, "human" if i % 2 else "worm", "ACGTN" * 4) for i in range(12)],
        "test": [(100 + i, "human" if i % 2 else "worm", "TTGCA" * 4) for i in range(4)],
    }
    manual = tmp_path / "manual"
    write_full_sequence_dir(manual / "demo_human_or_worm", rows)
    kwargs = {"download_config": tfds.download.DownloadConfig(manual_dir=str(manual))}
    train, info = tfds.load(
        "genomic_benchmarks/demo_human_or_worm", split="train", data_dir=str(tmp_path / "tfds"),
        download_and_prepare_kwargs=kwargs, with_info=True,
    )  # fmt: skip
    assert info.splits["train"].num_examples == 12 and info.splits["test"].num_examples == 4
    assert info.features["label"].names == ["human", "worm"]
    examples = list(tfds.as_numpy(train))
    assert {e["sequence"].decode() for e in examples} == {"ACGTN" * 4}
    labels = {e["id"].decode(): int(e["label"]) for e in examples}
    assert labels["1"] == 0 and labels["2"] == 1  # human=0, worm=1
    supervised = tfds.load(
        "genomic_benchmarks/demo_human_or_worm", split="test", data_dir=str(tmp_path / "tfds"),
        as_supervised=True,
    )  # fmt: skip
    assert sorted(int(y) for _, y in tfds.as_numpy(supervised)) == [0, 0, 1, 1]
    assert np.all([len(x) == 20 for x, _ in tfds.as_numpy(supervised)])


def test_tfds_examples_to_batches_for_fit(tmp_path):
    """The data guide's path from TFDS examples to `make_tf_dataset` batches."""
    import pytest

    from attngen_keras.data import DataError, EncodedSplit, make_tf_dataset

    rows = {"train": [(i, "human" if i % 2 else "worm", "ACGTN" * (2 + i % 3)) for i in range(10)],
            "test": [(100, "worm", "ACGT")]}  # fmt: skip
    manual = tmp_path / "manual"
    write_full_sequence_dir(manual / "demo_human_or_worm", rows)
    kwargs = {"download_config": tfds.download.DownloadConfig(manual_dir=str(manual))}
    train = tfds.load(
        "genomic_benchmarks/demo_human_or_worm", split="train", data_dir=str(tmp_path / "tfds"),
        download_and_prepare_kwargs=kwargs,
    )  # fmt: skip
    examples = list(tfds.as_numpy(train))
    split = EncodedSplit.from_sequences(
        [e["sequence"] for e in examples], [e["label"] for e in examples], length=20,
        ids=[e["id"] for e in examples],
    )  # fmt: skip
    by_id = dict(zip(split.ids, split.sequences()))
    assert by_id["4"] == "ACGTN" * 3 and by_id["5"] == "ACGTN" * 4
    x, y = next(iter(make_tf_dataset(split, batch_size=10)))
    assert tuple(x.shape) == (10, 20, 4) and sorted(y.numpy().tolist()) == [0] * 5 + [1] * 5
    assert np.allclose(x.numpy().sum(-1)[list(split.ids).index("4"), 15:], 0)  # padding
    with pytest.raises(DataError, match="longer than"):
        EncodedSplit.from_sequences([e["sequence"] for e in examples], [0] * 10, length=12)
    with pytest.raises(DataError, match="record '1': invalid character 'X'"):
        EncodedSplit.from_sequences(["ACGT", "AXGT"], [0, 1], length=12)
    for labels in ([[0], [1]], [0, -1], [0.0, 1.0]):
        with pytest.raises(ValueError, match="one non-negative integer class index per sequence"):
            EncodedSplit.from_sequences(["ACGT", "ACGT\r\n"], labels, length=12)
    assert EncodedSplit.from_sequences([b"ACGT\r\n"], [1], length=6).sequences() == ["ACGT"]


def test_tfds_offline_without_the_dataset_says_where_tfds_reads_it(tmp_path, monkeypatch):
    import genomic_benchmarks.loc2seq as loc2seq
    import pytest

    from attngen_keras.data.errors import DataError

    def offline(*args, **kwargs):
        raise ConnectionError("Failed to resolve 'raw.githubusercontent.com'")

    monkeypatch.setattr(loc2seq, "download_dataset", offline)
    monkeypatch.setenv("ATTNGEN_CACHE", str(tmp_path / "cache"))
    manual = tmp_path / "manual"
    manual.mkdir()
    kwargs = {"download_config": tfds.download.DownloadConfig(manual_dir=str(manual))}
    with pytest.raises(DataError) as info:
        tfds.load("genomic_benchmarks/demo_human_or_worm", split="train",
                  data_dir=str(tmp_path / "tfds"), download_and_prepare_kwargs=kwargs)  # fmt: skip
    message = str(info.value)
    assert "could not download" in message  # the loader's own message, then where TFDS looks
    assert "with TFDS, offline: put the full-sequence dataset" in message
    # (TFDS treats an empty manual_dir as none given: the message names the place generically)
    assert "in <manual_dir>/demo_human_or_worm/ and pass" in message
