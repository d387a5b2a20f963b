"""Robust as a user meets it: nothing destroyed on bad input, relocatable runs, one-line errors.

Each test drives the `attngen` command in a subprocess, as a user would, on
tiny data (1 epoch, no XLA).
"""

import hashlib
import json
import shutil
import subprocess
import sys

import keras
import pandas as pd
import pytest

from attngen_keras.synthetic import planted_motif_data
from attngen_keras.training import TrainConfig, train


def attngen(*args, cwd=None, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "attngen_keras.cli", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=cwd,
    )  # fmt: skip


def one_line_error(result, *fragments):
    """Exit 2, one line on stderr naming everything in `fragments`, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert str(fragment) in lines[0], lines[0]
    return lines[0]


def digest(directory):
    """Content hash of every file under `directory` (names and bytes)."""
    h = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(directory)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def fasta_pair(tmp_path_factory):
    """`low.fa` and `high.fa` (class = file stem), 200 sequences of 60 nt each."""
    root = tmp_path_factory.mktemp("data")
    data = planted_motif_data(n=400, length=60, motifs=("TGACTCA",), seed=3)
    for name, label in (("low", 0), ("high", 1)):
        records = [(f"{name}{i}", s) for i, (s, y) in enumerate(zip(data.sequences, data.labels)) if y == label]
        (root / f"{name}.fa").write_text("".join(f">{r}\n{s}\n" for r, s in records))
    return root


@pytest.fixture(scope="module")
def trained_run(fasta_pair, tmp_path_factory):
    """A finished run trained from inside the data directory with relative paths."""
    run = fasta_pair / "run"
    result = attngen("train", "--data", "low=low.fa", "high=high.fa", "--model", "gb-cnn", "--epochs", "1",
                     "--no-jit", "--out", "run", cwd=fasta_pair)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return run


@pytest.fixture
def run_copy(trained_run, tmp_path):
    copy = tmp_path / "runs" / "run"
    shutil.copytree(trained_run, copy)
    return copy


# 2. --overwrite destroys nothing before the new run is complete ----------------------------------


def test_overwrite_with_bad_input_keeps_the_old_run(run_copy, fasta_pair, tmp_path):
    before = digest(run_copy)
    result = attngen("train", "--data", f"low={fasta_pair / 'lwo.fa'}", f"high={fasta_pair / 'high.fa'}",
                     "--model", "gb-cnn", "--epochs", "1", "--no-jit", "--out", run_copy, "--overwrite")  # fmt: skip
    one_line_error(result, "lwo.fa", "no such file")
    assert digest(run_copy) == before  # model, config and metrics untouched
    assert sorted(p.name for p in run_copy.parent.iterdir()) == ["run"]  # no staging directory left


def test_failed_train_leaves_no_empty_out(fasta_pair, tmp_path):
    bad = tmp_path / "bad.fa"
    bad.write_text(">r1\nACGTXACGT\n")
    result = attngen("train", "--data", bad, fasta_pair / "high.fa", "--epochs", "1", "--no-jit",
                     "--out", tmp_path / "new" / "run")  # fmt: skip
    one_line_error(result, "bad.fa", "'X' at position 5")
    assert not (tmp_path / "new" / "run").exists()


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt("simulated kill")


def test_interrupted_overwrite_keeps_the_old_run_then_resumes_and_swaps(fasta_pair, tmp_path):
    data = [f"low={fasta_pair / 'low.fa'}", f"high={fasta_pair / 'high.fa'}"]
    out = tmp_path / "runs" / "run"
    first = train(TrainConfig(data=data, out=str(out), model="gb-cnn", epochs=1, patience=0, jit_compile=False),
                  verbose=0)  # fmt: skip
    before = digest(out)
    other = TrainConfig(data=data, out=str(out), model="cnn", epochs=2, patience=0, jit_compile=False)
    with pytest.raises(KeyboardInterrupt):
        train(other, overwrite=True, verbose=0, callbacks=[_Interrupt()])
    assert digest(out) == before  # the old run is whole while the new one trains beside it
    staging = out.parent / ".run.overwrite"
    assert len(pd.read_csv(staging / "history.csv")) == 1
    metrics = train(other, overwrite=True, verbose=0)  # resumes the staged run, then swaps
    assert json.loads((out / "config.json").read_text())["model"] == "cnn"
    assert pd.read_csv(out / "history.csv")["epoch"].tolist() == [0, 1]
    assert metrics != first and json.loads((out / "metrics.json").read_text()) == metrics
    assert sorted(p.name for p in out.parent.iterdir()) == ["run"]
    assert not (out / ".attngen-overwrite").exists()


def test_overwrite_refuses_a_directory_that_is_not_a_run(fasta_pair, tmp_path):
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "thesis.txt").write_text("precious")
    config = TrainConfig(data=[str(fasta_pair / "low.fa"), str(fasta_pair / "high.fa")], out=str(folder),
                         model="gb-cnn", epochs=1, patience=0)  # fmt: skip
    from attngen_keras.training import RunError

    with pytest.raises(RunError, match="not an attngen run directory"):
        train(config, overwrite=True, verbose=0)
    assert [p.name for p in folder.iterdir()] == ["thesis.txt"]
