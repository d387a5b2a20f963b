import os

import numpy as np
import pytest
from helpers import write_full_sequence_dir

from attngen_keras.data import cache as cache_lib
from attngen_keras.data import load_dataset, readers


@pytest.fixture
def full_dir(tmp_path):
    rows = {
        "train": [
            (i, "pos" if i % 2 else "neg", "ACGTTGCA"[i % 8 :] + "ACGTTGCA") for i in range(40)
        ],
        "test": [(100 + i, "pos" if i % 2 else "neg", "TTGACAGG") for i in range(10)],
    }
    return write_full_sequence_dir(tmp_path / "fs", rows)


def _count_reads(monkeypatch):
    calls = {"n": 0}
    original = readers.read_full_sequence_dir

    def counting(*args, **kwargs):
        calls["n"] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(readers, "read_full_sequence_dir", counting)
    return calls


def test_second_load_uses_cache_without_reading_files(full_dir, tmp_path, monkeypatch):
    calls = _count_reads(monkeypatch)
    cache = tmp_path / "cache"
    first = load_dataset(str(full_dir), cache_dir=str(cache))
    second = load_dataset(str(full_dir), cache_dir=str(cache))
    assert calls["n"] == 1
    for split in first.splits:
        np.testing.assert_array_equal(first[split].tokens, second[split].tokens)
        np.testing.assert_array_equal(first[split].labels, second[split].labels)
        np.testing.assert_array_equal(first[split].ids, second[split].ids)
    assert len(list((cache / "parsed").glob("*.npz"))) == 1


def test_cache_rebuilt_when_source_changes(full_dir, tmp_path, monkeypatch):
    calls = _count_reads(monkeypatch)
    cache = tmp_path / "cache"
    load_dataset(str(full_dir), cache_dir=str(cache))
    changed = full_dir / "test" / "pos" / "101.txt"
    stat = changed.stat()
    changed.write_text("GGGGGGGG")  # same length as before
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as `cp -p` would keep it
    assert changed.stat().st_size == stat.st_size and changed.stat().st_mtime_ns == stat.st_mtime_ns
    ds = load_dataset(str(full_dir), cache_dir=str(cache))
    assert calls["n"] == 2
    assert "GGGGGGGG" in ds["test"].sequences()


def test_corrupt_cache_detected_and_rebuilt(full_dir, tmp_path, monkeypatch):
    calls = _count_reads(monkeypatch)
    cache = tmp_path / "cache"
    expected = load_dataset(str(full_dir), cache_dir=str(cache))
    (path,) = (cache / "parsed").glob("*.npz")
    # truncated file
    path.write_bytes(path.read_bytes()[:200])
    with pytest.warns(UserWarning, match="rebuilding"):
        ds = load_dataset(str(full_dir), cache_dir=str(cache))
    assert calls["n"] == 2
    np.testing.assert_array_equal(ds["train"].tokens, expected["train"].tokens)
    # same size, flipped bytes inside the token array: caught by the checksum
    splits, meta = cache_lib.load_splits(path)
    splits["train"].flat[:5] = (splits["train"].flat[:5] + 1) % 4
    cache_lib.save_splits(path, splits, {})
    data = np.load(path)
    arrays = {k: data[k] for k in data.files}
    import json

    header = json.loads(str(arrays["meta"]))
    header["checksum"] = meta["checksum"]  # stale checksum, as after silent corruption
    arrays["meta"] = np.asarray(json.dumps(header))
    np.savez(path, **arrays)
    with pytest.warns(UserWarning, match="checksum"):
        load_dataset(str(full_dir), cache_dir=str(cache))
    assert calls["n"] == 3


def test_cache_disabled(full_dir, monkeypatch):
    calls = _count_reads(monkeypatch)
    load_dataset(str(full_dir), cache_dir=None)
    load_dataset(str(full_dir), cache_dir=None)
    assert calls["n"] == 2
