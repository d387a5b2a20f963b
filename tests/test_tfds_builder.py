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
