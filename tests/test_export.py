"""SavedModel export for TF Serving, and `attngen predict`."""

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from attngen_keras.data import encode, one_hot
from attngen_keras.data.alphabet import PAD
from attngen_keras.explain import importance_scores
from attngen_keras.export import WARMUP_FILE, export_model, next_version
from attngen_keras.models import build_attngen, build_cnn, build_model

LENGTH = 40
SEQUENCES = [
    "ACGTACGTTTGACTCAGGCCAATTGGCCAAGGTTACGTAC",  # exactly the trained length
    "acgtnRYacgt",  # lower case and IUPAC codes, shorter (padded)
    "ACGT-XACGT",  # two invalid characters: encoded as N and counted
    "GATTACA" * 8,  # longer than the trained length: cropped
    "  ACGTTGCA \n",  # surrounding whitespace is stripped
    "",  # empty: all padding
]


def _expected_tokens(sequence, crop="left"):
    sequence = sequence.strip().upper().replace("-", "N").replace("X", "N")
    if len(sequence) > LENGTH:
        start = {
            "left": 0,
            "right": len(sequence) - LENGTH,
            "center": (len(sequence) - LENGTH) // 2,
        }[crop]
        sequence = sequence[start : start + LENGTH]
    tokens = np.full(LENGTH, PAD, np.uint8)
    if sequence:
        tokens[: len(sequence)] = encode(sequence)
    return tokens


KINDS = ["attngen", "attngen_paper", "cnn", "multiclass"]


@pytest.fixture(scope="module")
def exported_models(tmp_path_factory):
    """Every kind of model, exported, and what one fresh TensorFlow-only process makes of them.

    One process for all four (each costs TensorFlow's start-up): it serves
    every SavedModel and shows it with `saved_model_cli show --all`.
    """
    models = {}
    for kind in KINDS:
        keras.utils.set_random_seed(0)
        classes = ["a", "b", "c"] if kind == "multiclass" else ["neg", "pos"]
        if kind == "attngen_paper":  # attention on stem features, projected to nucleotides
            model = build_model("attngen", LENGTH, len(classes), preset="paper")
        else:
            model = build_model("cnn" if kind == "multiclass" else kind, LENGTH, len(classes))
        path = export_model(model, tmp_path_factory.mktemp("export") / "motif", classes, LENGTH)
        models[kind] = (model, path, classes)
    paths = [str(path) for _, path, _ in models.values()]
    script = textwrap.dedent(
        f"""
        import contextlib, io, json, sys
        import numpy as np
        import tensorflow as tf
        from tensorflow.python.tools import saved_model_cli
        served = []
        for path in {paths!r}:
            loaded = tf.saved_model.load(path)
            strings = tf.constant({SEQUENCES!r})
            out = {{k: v.numpy().tolist() for k, v in loaded.signatures["serving_default"](sequences=strings).items()}}
            out["importance"] = loaded.signatures["saliency"](sequences=strings)["importance"].numpy().tolist()
            both = loaded.signatures["predict_with_saliency"](sequences=strings)
            out["with_saliency"] = {{k: v.numpy().tolist() for k, v in both.items()}}
            out["imported_attngen"] = any(name.startswith("attngen_keras") for name in sys.modules)
            shown = io.StringIO()
            with contextlib.redirect_stdout(shown):  # what `saved_model_cli show --all --dir` prints
                saved_model_cli._show_all(path)
            out["saved_model_cli"] = shown.getvalue()
            served.append(out)
        print(json.dumps(served))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    return {kind: (*models[kind], out) for kind, out in zip(KINDS, served)}


@pytest.fixture(params=KINDS)
def exported(request, exported_models):
    return exported_models[request.param]


def test_fresh_tensorflow_only_process_matches_keras(exported, tmp_path):
    model, path, classes, served = exported
    assert served["imported_attngen"] is False

    x = one_hot(np.stack([_expected_tokens(s) for s in SEQUENCES]))
    probs = model.predict(x, verbose=0)
    if probs.shape[1] == 1:
        probs = np.concatenate([1 - probs, probs], axis=1)
    np.testing.assert_allclose(served["probabilities"], probs, atol=1e-5)
    assert np.array(served["probabilities"]).shape == (len(SEQUENCES), len(classes))
    assert served["class_index"] == probs.argmax(1).tolist()
    assert served["invalid_characters"] == [0, 0, 2, 0, 0, 0]
    assert served["truncated"] == [False, False, False, True, False, False]
    # characters read (after stripping and cropping): an empty string reads none
    assert served["length"] == [40, 11, 10, 40, 8, 0]
    method = "attention" if model.name == "attngen" else "input_x_gradient"
    expected = importance_scores(model, x, method)
    np.testing.assert_allclose(served["importance"], expected, atol=1e-5)
    assert np.all(np.array(served["importance"])[1, 11:] == 0)  # padding gets no importance
    # predict_with_saliency: both from one forward pass, the same values
    both = served["with_saliency"]
    assert set(both) == {"probabilities", "class_index", "invalid_characters", "truncated",
                         "length", "importance"}  # fmt: skip
    np.testing.assert_allclose(both["probabilities"], served["probabilities"], atol=1e-6)
    np.testing.assert_allclose(both["importance"], served["importance"], atol=1e-6)
    for key in ("class_index", "invalid_characters", "truncated", "length"):
        assert both[key] == served[key], key


def test_signatures_warmup_and_versions(exported):
    _, path, _, served = exported
    shown = served["saved_model_cli"]
    for signature in (
        "signature_def['serving_default']",
        "signature_def['saliency']",
        "signature_def['predict_with_saliency']",
    ):
        block = shown.split(signature, 1)[1].split("signature_def[", 1)[0]
        assert "inputs['sequences']" in block and "DT_STRING" in block
    assert "outputs['probabilities']" in shown and "outputs['importance']" in shown

    from tensorflow_serving.apis import prediction_log_pb2

    records = list(tf.data.TFRecordDataset(str(path / WARMUP_FILE)).as_numpy_iterator())
    logs = [prediction_log_pb2.PredictionLog.FromString(r) for r in records]
    assert {log.predict_log.request.model_spec.signature_name for log in logs} == {
        "serving_default",
        "saliency",
        "predict_with_saliency",
    }
    assert all(
        log.predict_log.request.inputs["sequences"].dtype == tf.string.as_datatype_enum
        for log in logs
    )
    assert path.name == "1" and next_version(path.parent) == 2
    assert 'base_path: "/models/motif"' in (path.parent / "models.config").read_text()


def test_a_request_that_is_not_a_batch_is_an_error_and_an_empty_batch_gives_empty_outputs(exported):
    """A scalar or 2-D request crashed the serving process (abort in a kernel); now it is refused."""
    _, path, classes, _ = exported
    loaded = tf.saved_model.load(str(path))
    for name in ("serving_default", "saliency", "predict_with_saliency"):
        signature = loaded.signatures[name]
        for bad in (tf.constant("ACGT"), tf.constant([["ACGT", "ACGG"]])):
            with pytest.raises(
                tf.errors.InvalidArgumentError, match="sequences_must_be_a_1d_batch"
            ):
                signature(sequences=bad)
        empty = signature(sequences=tf.constant([], tf.string))
        one = signature(sequences=tf.constant(SEQUENCES[:1]))
        assert set(empty) == set(one)
        for key, value in empty.items():
            assert value.shape[0] == 0 and value.shape[1:] == one[key].shape[1:], key
        if name != "saliency":
            assert empty["probabilities"].shape == (0, len(classes))


def test_versions_increment_and_are_never_overwritten(tmp_path):
    model = build_cnn(LENGTH, 2)
    first = export_model(model, tmp_path / "m", ["a", "b"], LENGTH)
    second = export_model(model, tmp_path / "m", ["a", "b"], LENGTH)
    assert (first.name, second.name) == ("1", "2")
    with pytest.raises(FileExistsError, match="already exists"):
        export_model(model, tmp_path / "m", ["a", "b"], LENGTH, version=2)
    # a run directory is not an export base: predict would find two models there
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(b"a run's model")
    with pytest.raises(FileExistsError, match="holds a trained run .*choose another --out"):
        export_model(model, run, ["a", "b"], LENGTH)
    assert sorted(p.name for p in run.iterdir()) == ["model.keras"]


def test_failure_mid_export_leaves_no_version_directory(tmp_path, monkeypatch):
    model = build_cnn(LENGTH, 2)
    archive_class = type(keras.export.ExportArchive())  # the backend's subclass
    original = archive_class.write_out

    def write_then_fail(self, filepath, *args, **kwargs):
        original(self, filepath, *args, **kwargs)  # a complete SavedModel in the staging dir...
        raise OSError("disk full")  # ...then the export fails before the rename

    monkeypatch.setattr(archive_class, "write_out", write_then_fail)
    with pytest.raises(OSError, match="disk full"):
        export_model(model, tmp_path / "m", ["a", "b"], LENGTH)
    assert not (
        tmp_path / "m"
    ).exists()  # no version, no staging leftovers, no empty base directory


@pytest.mark.parametrize("crop", ["right", "center"])
def test_long_sequences_are_cropped_like_training(tmp_path, crop):
    model = build_attngen(LENGTH, 2)
    path = export_model(model, tmp_path / "m", ["a", "b"], LENGTH, crop=crop)
    long = "".join(np.random.default_rng(1).choice(list("ACGT"), 100))
    out = tf.saved_model.load(str(path)).signatures["serving_default"](
        sequences=tf.constant([long])
    )
    expected = model.predict(one_hot(_expected_tokens(long, crop)[None]), verbose=0)[0, 0]
    assert out["probabilities"].numpy()[0, 1] == pytest.approx(expected, abs=1e-5)
    assert bool(out["truncated"].numpy()[0])


def test_predict_writes_gzip_or_standard_output_and_flags_nul_tabs_and_repeated_ids(
    exported_models, tmp_path, capsys, monkeypatch
):
    """`--out X.gz` was plain text under a .gz name and `--out -` a file named '-'; a NUL inside a
    sequence was read as padding, uncounted; a tab inside a FASTA line was an invalid character
    (spaces were dropped); repeated ids were not mentioned."""
    import gzip

    from attngen_keras.predict import predict_file

    _, path, _, _ = exported_models["cnn"]
    fasta = tmp_path / "reads.fa"
    fasta.write_bytes(b">a\nACG\tTT GA\n>a x\nAC\x00GT\n>b\nACGTTGA\n>a\nTT\n")
    assert predict_file(path, fasta, tmp_path / "p.tsv.gz", show_progress=False) == 4
    warning = capsys.readouterr().err
    assert "2 records with an id used before (the first: 'a')" in warning
    text = gzip.decompress((tmp_path / "p.tsv.gz").read_bytes()).decode()
    table = pd.read_csv(io.StringIO(text), sep="\t")
    assert table["id"].tolist() == ["a", "a", "b", "a"]
    assert table["invalid_characters"].tolist() == [0, 1, 0, 0]
    assert table.loc[0, "prob_pos"] == table.loc[2, "prob_pos"]  # ACGTTGA either way
    header = (tmp_path / "p.tsv.gz").read_bytes()[:10]
    assert header[3] == 0 and header[4:8] == bytes(
        4
    )  # no file name, no time: same input, same bytes
    upper = tmp_path / "P.TSV.GZ"
    predict_file(path, fasta, upper, show_progress=False)
    assert gzip.decompress(upper.read_bytes()).decode() == text
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    assert predict_file(path, fasta, "-", show_progress=False) == 4
    assert capsys.readouterr().out == text and not (tmp_path / "-").exists()


def test_predict_to_a_closed_pipe_ends_quietly(exported_models, tmp_path):
    """`attngen predict ... --out - | head -1` printed 'error: [Errno 32] Broken pipe', exit 2."""
    import shutil

    _, path, _, _ = exported_models["cnn"]
    fasta = tmp_path / "many.fa"
    fasta.write_text("".join(f">r{i}\nACGTTGCAACGT\n" for i in range(20_000)))  # > a pipe's buffer
    attngen = shutil.which("attngen") or str(Path(sys.executable).with_name("attngen"))
    process = subprocess.Popen(
        [attngen, "predict", str(path), "--fasta", str(fasta), "--out", "-"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout.readline().startswith(b"id\tpredicted_class")
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=300) == 141, stderr
    assert "error" not in stderr and "Traceback" not in stderr, stderr


def test_predict_cli_streams_fasta_through_export_and_run_dir(tmp_path, capsys):
    from helpers import run_cli

    from attngen_keras.synthetic import planted_motif_data

    data = planted_motif_data(n=300, length=LENGTH, motifs=("TGACTCA",), seed=1)
    csv_path = tmp_path / "train.csv"
    data.to_frame().to_csv(csv_path, index=False)
    run = tmp_path / "run"

    def attngen(*args):  # the console script's main, in this process
        return run_cli(capsys, *args)

    assert attngen("train", "--data", csv_path, "--epochs", "1", "--out", run).returncode == 0
    exported = attngen("export", run, "--out", tmp_path / "served" / "motif")
    assert exported.returncode == 0 and "version 1" in exported.stdout, exported.stderr[-2000:]
    fasta = tmp_path / "reads.fa"
    fasta.write_text(
        "".join(
            f">r{i} some description\n{s[:20]}\n{s[20:]}\n"
            for i, s in enumerate(data.sequences[:70])
        )
    )
    by_export = attngen("predict", tmp_path / "served" / "motif", "--fasta", fasta, "--saliency",
                        "--batch-size", "32", "--out", tmp_path / "a.tsv")  # fmt: skip
    by_run = attngen("predict", run, "--fasta", fasta, "--saliency", "--batch-size", "32",
                     "--out", tmp_path / "b.tsv")  # fmt: skip
    assert by_export.returncode == 0 and by_run.returncode == 0, (
        by_export.stderr[-2000:] + by_run.stderr[-2000:]
    )
    a, b = pd.read_csv(tmp_path / "a.tsv", sep="\t"), pd.read_csv(tmp_path / "b.tsv", sep="\t")
    assert a["id"].tolist() == [f"r{i}" for i in range(70)] and list(b.columns[:4]) == [
        "id",
        "predicted_class",
        "prob_neg",
        "prob_pos",
    ]
    np.testing.assert_allclose(a["prob_pos"], b["prob_pos"], atol=1e-5)
    assert all(len(row.split(",")) == LENGTH for row in a["importance"])
    # --saliency (one pass, predict_with_saliency) = `explain --method attention` of the run's model
    from attngen_keras.training import load_run

    model, _ = load_run(run)
    x = one_hot(np.stack([encode(s) for s in data.sequences[:70]]))
    expected = importance_scores(model, x, "attention")
    got = np.array([[float(v) for v in row.split(",")] for row in a["importance"]])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-7)
    from_run = np.array([[float(v) for v in row.split(",")] for row in b["importance"]])
    np.testing.assert_allclose(from_run, expected, rtol=1e-4, atol=1e-7)

    # an export without predict_with_saliency (made before it existed): the two signatures
    import attngen_keras.predict as predict_module

    real = predict_module.resolve_endpoints

    def without_one_pass(path):
        return {**real(path), "predict_with_saliency": None}

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(predict_module, "resolve_endpoints", without_one_pass)
        older = attngen("predict", tmp_path / "served" / "motif", "--fasta", fasta, "--saliency",
                        "--batch-size", "32", "--out", tmp_path / "older.tsv")  # fmt: skip
    assert older.returncode == 0, older.stderr[-2000:]
    older_tsv = pd.read_csv(tmp_path / "older.tsv", sep="\t")
    np.testing.assert_allclose(older_tsv["prob_pos"], a["prob_pos"], atol=1e-6)
    two_calls = np.array([[float(v) for v in row.split(",")] for row in older_tsv["importance"]])
    np.testing.assert_allclose(two_calls, got, rtol=1e-4, atol=1e-7)

    broken = tmp_path / "broken.fa"
    broken.write_text("ACGT\nACGT\n")
    result = attngen("predict", run, "--fasta", broken, "--out", tmp_path / "c.tsv")
    assert (
        result.returncode == 2 and "broken.fa" in result.stderr and "Traceback" not in result.stderr
    )
    assert not (tmp_path / "c.tsv").exists()
    assert not [p.name for p in tmp_path.iterdir() if ".partial" in p.name]  # no temporary file
    # a directory of runs (a tune project's best_run, a demo's): the error says to give one
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "best_run").symlink_to(run, target_is_directory=True)
    result = attngen("predict", tmp_path / "project", "--fasta", fasta, "--out", tmp_path / "d.tsv")
    assert result.returncode == 2 and result.stderr.strip().endswith(
        "not a run directory (model.keras) nor an exported SavedModel (saved_model.pb); it holds "
        "runs (best_run): give one of them"
    ), result.stderr
