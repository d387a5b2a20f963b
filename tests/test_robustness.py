"""Robust as a user meets it: nothing destroyed on bad input, relocatable runs, one-line errors.

Each test drives the `attngen` command as a user would, on tiny data (1 epoch,
no XLA): in a subprocess where the process matters (its whole stderr, its
working directory), otherwise the console script's `main` in this process.
"""

import hashlib
import json
import shutil
import subprocess
import sys

import keras
import pandas as pd
import pytest
from helpers import run_cli as run_cli_result

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
        records = [
            (f"{name}{i}", s)
            for i, (s, y) in enumerate(zip(data.sequences, data.labels))
            if y == label
        ]
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


def test_overwrite_with_bad_input_keeps_the_old_run(run_copy, fasta_pair, tmp_path, capsys):
    before = digest(run_copy)
    result = run_cli_result(capsys, "train", "--data", f"low={fasta_pair / 'lwo.fa'}", f"high={fasta_pair / 'high.fa'}",
                     "--model", "gb-cnn", "--epochs", "1", "--no-jit", "--out", run_copy, "--overwrite")  # fmt: skip
    one_line_error(result, "lwo.fa", "no such file")
    assert digest(run_copy) == before  # model, config and metrics untouched
    assert sorted(p.name for p in run_copy.parent.iterdir()) == ["run"]  # no staging directory left


def test_failed_train_leaves_no_empty_out(fasta_pair, tmp_path, capsys):
    bad = tmp_path / "bad.fa"
    bad.write_text(">r1\nACGTXACGT\n")
    result = run_cli_result(capsys, "train", "--data", bad, fasta_pair / "high.fa", "--epochs", "1", "--no-jit",
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
    other = TrainConfig(
        data=data, out=str(out), model="cnn", epochs=2, patience=0, jit_compile=False
    )
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


def run_cli(capsys, *args):
    """`attngen ARGS` in this process (same code path as the console script): `(rc, stdout, stderr)`."""
    from attngen_keras.cli import main

    rc = main([str(a) for a in args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def in_process_error(capsys, *args):
    rc, _, err = run_cli(capsys, *args)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# 1. runs are relocatable; --split is never silently ignored ---------------------------------------


def test_run_records_absolute_data_paths_and_a_fingerprint(trained_run, fasta_pair):
    config = json.loads((trained_run / "config.json").read_text())
    assert config["data"] == [f"low={fasta_pair / 'low.fa'}", f"high={fasta_pair / 'high.fa'}"]
    record = json.loads((trained_run / "dataset.json").read_text())
    assert set(record["data_fingerprint"]) == {"train", "val", "test"}


def test_evaluate_from_another_directory_uses_the_runs_own_test_split(trained_run, tmp_path):
    """The issue's report: `cd work && attngen train ... --out run`, then evaluate from elsewhere."""
    metrics = json.loads((trained_run / "metrics.json").read_text())
    result = attngen("evaluate", trained_run, "--split", "test", "--out", "e.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ""  # no TensorFlow start-up noise either
    evaluated = json.loads((tmp_path / "e.json").read_text())
    assert evaluated["n"] == metrics["test"]["n"] == 80
    assert evaluated["accuracy"] == pytest.approx(metrics["test"]["accuracy"])


def test_same_data_at_another_path_is_split_as_in_training(
    trained_run, fasta_pair, tmp_path, monkeypatch
):
    from attngen_keras.training import evaluate_run

    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("low.fa", "high.fa"):
        shutil.copy(fasta_pair / name, copy / name)
    monkeypatch.chdir(tmp_path)  # relative paths, another directory
    metrics = json.loads((trained_run / "metrics.json").read_text())
    result = evaluate_run(
        trained_run, ["low=copy/low.fa", "high=copy/high.fa"], split="test", out="e.json"
    )
    assert (
        result["n"] == metrics["test"]["n"] == 80
    )  # not all 400 sequences, training ones included
    assert result["accuracy"] == pytest.approx(metrics["test"]["accuracy"])


@pytest.fixture
def other_fasta(tmp_path):
    data = planted_motif_data(n=60, length=60, motifs=("TGACTCA",), seed=11)
    paths = []
    for name, label in (("low", 0), ("high", 1)):
        path = tmp_path / f"other_{name}.fa"
        path.write_text(
            "".join(
                f">o{i}\n{s}\n"
                for i, (s, y) in enumerate(zip(data.sequences, data.labels))
                if y == label
            )
        )
        paths.append(f"{name}={path}")
    return paths


def test_split_of_other_data_is_an_error_when_it_has_none(run_copy, other_fasta, capsys):
    line = in_process_error(capsys, "evaluate", run_copy, "--data", *other_fasta, "--split", "test")
    assert "other_low.fa" in line and "no 'test' split" in line and "--split all" in line
    rc, out, _ = run_cli(capsys, "evaluate", run_copy, "--data", *other_fasta, "--split", "all")
    assert rc == 0 and "n=60" in out
    rc, out, _ = run_cli(
        capsys, "evaluate", run_copy, "--data", *other_fasta
    )  # no --split: all of it, said so
    assert rc == 0 and "no splits of its own: using all 60 sequences" in out


def test_moved_training_data_is_a_clear_error_then_found_by_content(fasta_pair, tmp_path, capsys):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for name in ("low.fa", "high.fa"):
        shutil.copy(fasta_pair / name, data_dir / name)
    run = tmp_path / "run"
    train(TrainConfig(data=[str(data_dir / "low.fa"), str(data_dir / "high.fa")], out=str(run), model="gb-cnn",
                      epochs=1, patience=0, jit_compile=False), verbose=0)  # fmt: skip
    data_dir.rename(tmp_path / "moved")
    line = in_process_error(capsys, "evaluate", run)
    assert str(data_dir / "low.fa") in line and "not there any more" in line and "--data" in line
    rc, out, err = run_cli(
        capsys,
        "evaluate",
        run,
        "--data",
        tmp_path / "moved" / "low.fa",
        tmp_path / "moved" / "high.fa",
    )
    assert rc == 0 and "same content" in out and "n=80" in out, err
    # the files in another order are the same content: split as in training too
    rc, swapped, err = run_cli(
        capsys,
        "evaluate",
        run,
        "--data",
        tmp_path / "moved" / "high.fa",
        tmp_path / "moved" / "low.fa",
    )
    assert rc == 0 and "same content" in swapped and "n=80" in swapped, err
    metrics = [[line for line in text.splitlines() if "n=80" in line] for text in (out, swapped)]
    assert metrics[0] and metrics[0] == metrics[1]


# 3. one-line errors for every file the tool reads or writes ----------------------------------------


def test_export_to_an_existing_file_is_one_line(run_copy, tmp_path, capsys):
    target = tmp_path / "not_a_dir"
    target.write_text("x")
    line = in_process_error(capsys, "export", run_copy, "--out", target)
    assert str(target) in line and "is a file, not a directory" in line
    assert target.read_text() == "x"


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_model_files_are_one_line_errors(run_copy, tmp_path, capsys):
    reads = tmp_path / "reads.fa"
    reads.write_text(">r1\nACGTACGTTGACTCAACGT\n")
    from attngen_keras.export import export_run

    exported = export_run(run_copy, tmp_path / "served")
    _truncate(exported / "saved_model.pb")
    line = in_process_error(
        capsys, "predict", tmp_path / "served", "--fasta", reads, "--out", tmp_path / "a.tsv"
    )
    assert "saved_model.pb" in line and "corrupt or truncated" in line
    _truncate(run_copy / "model.keras")
    for command in (["predict", run_copy, "--fasta", reads, "--out", tmp_path / "b.tsv"], ["evaluate", run_copy],
                    ["export", run_copy, "--out", tmp_path / "served2"]):  # fmt: skip
        line = in_process_error(capsys, *command)
        assert (
            "model.keras" in line
            and "corrupt or truncated" in line
            and "not found" not in line.lower()
        )
    assert not (tmp_path / "served2").exists() and not (tmp_path / "a.tsv").exists()
    (run_copy / "dataset.json").write_text('{"length": 6')
    line = in_process_error(capsys, "evaluate", run_copy)
    assert "dataset.json" in line and "corrupt or truncated" in line


def test_existing_outputs_are_kept_unless_forced(run_copy, tmp_path, capsys):
    reads = tmp_path / "reads.fa"
    reads.write_text(">r1\nACGTACGTTGACTCAACGT\n")
    preds = tmp_path / "preds.tsv"
    preds.write_text("earlier results")
    line = in_process_error(capsys, "predict", run_copy, "--fasta", reads, "--out", preds)
    assert str(preds) in line and "--force" in line and preds.read_text() == "earlier results"
    rc, _, err = run_cli(capsys, "predict", run_copy, "--fasta", reads, "--out", preds, "--force")
    assert rc == 0 and preds.read_text().startswith("id\t"), err
    # --force replaces an earlier output, never the input itself
    line = in_process_error(
        capsys, "predict", run_copy, "--fasta", reads, "--out", reads, "--force"
    )
    assert (
        line
        == f"attngen predict: error: {reads}: --out names the same file as the input file, which it would overwrite"
    )
    assert reads.read_text() == ">r1\nACGTACGTTGACTCAACGT\n"
    line = in_process_error(
        capsys, "predict", run_copy, "--fasta", reads, "--out", tmp_path / "reads.fa" / "p.tsv"
    )
    assert "reads.fa" in line and "is a file, not a directory" in line
    line = in_process_error(
        capsys, "predict", run_copy, "--fasta", reads, "--out", "/proc/attngen/p.tsv"
    )
    assert "/proc/attngen" in line and "cannot create the directory" in line
    # evaluate: the default name never replaces an earlier evaluation; --out needs --force
    first = run_cli(capsys, "evaluate", run_copy)
    second = run_cli(capsys, "evaluate", run_copy)
    assert first[0] == second[0] == 0
    assert f"wrote {run_copy / 'evaluation_test.json'}" in first[1]
    assert f"wrote {run_copy / 'evaluation_test.2.json'}" in second[1]
    line = in_process_error(
        capsys, "evaluate", run_copy, "--out", run_copy / "evaluation_test.json"
    )
    assert "already exists" in line and "--force" in line
    assert (
        run_cli(
            capsys, "evaluate", run_copy, "--out", run_copy / "evaluation_test.json", "--force"
        )[0]
        == 0
    )


def test_predict_errors_start_on_their_own_line(run_copy, tmp_path, capsys):
    """A gzip file that breaks after several batches: the error is not glued to the progress bar."""
    import gzip

    data = gzip.compress("".join(f">r{i}\nACGTACGTTGACTCA\n" for i in range(20000)).encode())
    reads = tmp_path / "reads.fa.gz"
    reads.write_bytes(data[: len(data) * 2 // 3])
    result = run_cli_result(
        capsys,
        "predict",
        run_copy,
        "--fasta",
        reads,
        "--batch-size",
        "500",
        "--out",
        tmp_path / "p.tsv",
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.replace("\r", "\n").splitlines()
    errors = [line for line in lines if "error:" in line]
    assert (
        len(errors) == 1
        and errors[0].startswith("attngen predict: error: ")
        and "reads.fa.gz" in errors[0]
    )
    assert "predicting reads.fa.gz" in result.stderr  # the progress bar was shown, on its own line
    assert not (tmp_path / "p.tsv").exists()


# warnings for the friction a user meets ------------------------------------------------------------


def test_a_few_very_long_sequences_warn_and_suggest_length_and_crop(fasta_pair, tmp_path, capsys):
    long = tmp_path / "high_with_outlier.fa"
    long.write_text((fasta_pair / "high.fa").read_text() + ">giant\n" + "ACGT" * 500 + "\n")
    result = run_cli_result(capsys, "train", "--data", f"low={fasta_pair / 'low.fa'}", f"high={long}", "--model", "gb-cnn",
                     "--epochs", "1", "--no-jit", "--out", tmp_path / "run")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    warnings = [line for line in result.stderr.splitlines() if "warning:" in line]
    assert len(warnings) == 1, result.stderr
    line = warnings[0]
    assert line.startswith("attngen train: warning: ") and "'giant'" in line and "2,000 nt" in line
    assert "--length 60" in line and "--crop" in line


def test_identical_class_files_warn(fasta_pair, tmp_path, capsys):
    copy = tmp_path / "high_copy.fa"
    shutil.copy(fasta_pair / "high.fa", copy)
    rc, _, err = run_cli(capsys, "train", "--data", f"low={copy}", f"high={fasta_pair / 'high.fa'}", "--model",
                         "gb-cnn", "--epochs", "1", "--no-jit", "--out", tmp_path / "run")  # fmt: skip
    assert rc == 0
    warnings = [line for line in err.splitlines() if "warning:" in line]
    files = [line for line in warnings if "identical content" in line]
    assert len(files) == 1 and "high_copy.fa" in files[0], err
    # and, as the copies land in every split, the held-out ones are counted
    counted = [line for line in warnings if "identical to training sequences" in line]
    assert len(counted) == 1 and len(warnings) == 2, err


def test_predict_on_protein_says_so_on_stderr(run_copy, tmp_path, capsys):
    protein = tmp_path / "proteins.fa"
    protein.write_text(
        ">p1\nMKVLAAGIVGLLLAQWERTYPSDFGHKLIVNM\n>p2\nMSTNPKPQRKTKRNTNRRPQDVKFPGG\n>d1\nACGTACGTTGACTCA\n"
    )
    rc, _, err = run_cli(
        capsys, "predict", run_copy, "--fasta", protein, "--out", tmp_path / "p.tsv"
    )
    assert rc == 0
    summary = [line for line in err.splitlines() if "warning:" in line]
    assert len(summary) == 1, err
    assert "2 of 3 sequences" in summary[0] and "does not look like DNA" in summary[0]
    length = json.loads((run_copy / "dataset.json").read_text())["length"]
    dna = tmp_path / "dna.fa"  # as long as the training sequences: nothing to say
    first, second = ("ACGTACGTTGACTCA" * length)[:length], ("ACGTNNRYACGT" * length)[:length]
    dna.write_text(f">d1\n{first}\n>d2\n{second}\n")
    rc, _, err = run_cli(capsys, "predict", run_copy, "--fasta", dna, "--out", tmp_path / "d.tsv")
    assert rc == 0 and "warning" not in err


def test_predict_says_when_sequences_were_cropped_padded_or_empty(run_copy, tmp_path, capsys):
    import json

    length = json.loads((run_copy / "dataset.json").read_text())["length"]
    records = tmp_path / "mixed.fa"
    records.write_text(
        f">long1\n{'ACGT' * length}\n>long2\n{'TTGA' * length}\n>empty\n\n>ok\nACGTAC\n"
    )
    rc, _, err = run_cli(
        capsys, "predict", run_copy, "--fasta", records, "--out", tmp_path / "p.tsv"
    )
    assert rc == 0
    summary = [line for line in err.splitlines() if "warning:" in line]
    assert len(summary) == 1, err
    assert f"2 sequences longer than the model's {length} nt, cropped to {length} nt" in summary[0]
    assert "1 empty sequence, predicted as an input with no nucleotides" in summary[0]
    # "ok" (6 nt) is shorter than every training sequence; the empty one counts as empty only
    assert (
        f"1 sequence shorter than any the model was trained on ({length} nt), padded to {length} nt"
        in summary[0]
    )
    rows = (tmp_path / "p.tsv").read_text().splitlines()[1:]
    assert [row.split("\t")[-1] for row in rows] == ["True", "True", "False", "False"]


def test_short_inputs_are_judged_against_the_training_datas_shortest_sequence(
    run_copy, tmp_path, capsys
):
    """The run records its training data's shortest length; `predict` (on the run or its export)
    warns only of inputs shorter than that, and not at all for a run that did not record it."""
    record_file = run_copy / "dataset.json"
    record = json.loads(record_file.read_text())
    length = record["length"]
    assert record["shortest_sequence"] == length  # the fixture's sequences are all 60 nt
    inputs = tmp_path / "short.fa"
    inputs.write_text(f">a\n{'ACGT' * 10}\n>b\n{'TTGCA' * 10}\n>c\n{'GATC' * 8}\n")  # 40, 50, 32 nt

    def short_warning(model):
        out = tmp_path / "p.tsv"
        rc, _, err = run_cli(capsys, "predict", model, "--fasta", inputs, "--out", out, "--force")
        assert rc == 0, err
        return [line for line in err.splitlines() if "shorter than any" in line]

    assert (
        "3 sequences shorter than any the model was trained on (60 nt)"
        in short_warning(run_copy)[0]
    )
    record_file.write_text(json.dumps({**record, "shortest_sequence": 40}))  # variable-length data
    assert (
        "1 sequence shorter than any the model was trained on (40 nt)" in short_warning(run_copy)[0]
    )
    exported = tmp_path / "exported"
    rc, _, err = run_cli(capsys, "export", run_copy, "--out", exported)
    assert rc == 0, err
    assert (
        "1 sequence shorter than any the model was trained on (40 nt)" in short_warning(exported)[0]
    )
    del record["shortest_sequence"]  # a run made before the length was recorded
    record_file.write_text(json.dumps(record))
    assert short_warning(run_copy) == []


def test_synthetic_keeps_earlier_data_unless_forced(tmp_path, capsys):
    out = tmp_path / "synthetic"
    assert run_cli(capsys, "synthetic", "--n", "20", "--length", "30", "--out", out)[0] == 0
    before = (out / "sequences.csv").read_text()
    line = in_process_error(
        capsys, "synthetic", "--n", "20", "--length", "30", "--seed", "1", "--out", out
    )
    assert (
        "sequences.csv" in line
        and "--force" in line
        and (out / "sequences.csv").read_text() == before
    )
    assert (
        run_cli(
            capsys,
            "synthetic",
            "--n",
            "20",
            "--length",
            "30",
            "--seed",
            "1",
            "--out",
            out,
            "--force",
        )[0]
        == 0
    )
    assert (out / "sequences.csv").read_text() != before


def test_run_files_get_the_umask_mode_not_mkstemps_private_one(trained_run):
    import os

    umask = os.umask(0)
    os.umask(umask)
    for name in ("config.json", "metrics.json", "dataset.json"):
        mode = (trained_run / name).stat().st_mode & 0o777
        assert mode == 0o666 & ~umask, (name, oct(mode))


def test_held_out_sequences_identical_to_training_ones_are_counted_and_warned(fasta_pair, tmp_path):
    from attngen_keras.data import load_dataset
    from attngen_keras.training import warn_split_overlap

    low, high = (fasta_pair / "low.fa").read_text(), (fasta_pair / "high.fa").read_text()
    (tmp_path / "low.fa").write_text(low + low.replace(">low", ">again_low"))  # every record twice
    (tmp_path / "high.fa").write_text(high)
    data = [str(tmp_path / "low.fa"), str(tmp_path / "high.fa")]
    dataset = load_dataset(data, length=60, seed=0)
    with pytest.warns(UserWarning, match="sequences are identical to training sequences") as caught:
        found = warn_split_overlap(dataset, "low.fa high.fa")
    train_rows = {row.tobytes() for row in dataset["train"].tokens}
    expected = {
        name: sum(row.tobytes() in train_rows for row in dataset[name].tokens)
        for name in ("val", "test")
    }
    assert found == {name: c for name, c in expected.items() if c} and found.get("test", 0) > 0
    message = str(caught[0].message)
    assert message.startswith("low.fa high.fa: ")
    assert f"{found['test']} of {len(dataset['test'].tokens)} test" in message
    # without duplicates: nothing to say
    clean = load_dataset([str(fasta_pair / "low.fa"), str(fasta_pair / "high.fa")], length=60)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_split_overlap(clean, "clean") == {}
    # `train` says it before training, and records the counts with the run
    run = tmp_path / "run"
    with pytest.warns(UserWarning, match="identical to training sequences"):
        train(TrainConfig(data=data, out=str(run), model="gb-cnn", epochs=1, patience=0,
                          jit_compile=False), verbose=0)  # fmt: skip
    assert json.loads((run / "config.json").read_text())["held_out_duplicates"] == found


def test_an_error_about_a_temporary_file_names_the_users_path(tmp_path):
    from attngen_keras.cli import _describe
    from attngen_keras.files import partial_path

    out = tmp_path / "p.tsv"
    error = PermissionError(13, "Permission denied", str(partial_path(out)))
    assert _describe(error) == f"{out}: permission denied"
    parts = tmp_path / ".t.bedGraph.parts-my-host-42"
    assert _describe(OSError(28, "No space left on device", str(parts))) == (
        f"{tmp_path / 't.bedGraph'}: no space left on device"
    )
    # any other name is the file's own, even one that looks temporary
    for name in ("reads.fa.partial", ".config.partial-2024", ".partial-1-2"):
        error = FileNotFoundError(2, "No such file or directory", str(tmp_path / name))
        assert _describe(error) == f"{tmp_path / name}: no such file or directory"


def test_staged_files_move_all_new_files_or_none(tmp_path):
    """A directory where one result file goes (made after the command's early check) stops the
    move before any new file replaces an old one; the old results and the staging are as before."""
    from attngen_keras.files import FileError, staged_files

    out = tmp_path / "out"
    out.mkdir()
    (out / "a.json").write_text("old")
    refused = pytest.raises(FileError, match=r"b.png: is a directory, not a result file")
    with refused, staged_files(out) as staging:
        (staging / "a.json").write_text("new")
        (staging / "b.png").write_text("new")
        (out / "b.png").mkdir()
    assert (out / "a.json").read_text() == "old"
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "b.png"]
