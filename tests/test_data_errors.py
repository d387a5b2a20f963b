"""Each kind of bad input gives a clear DataError naming file, record, problem."""

import gzip
import io

import pandas as pd
import pytest
import yaml
from helpers import write_fasta, write_full_sequence_dir

from attngen_keras.data import DataError, load_dataset


def _error(*args, **kwargs):
    with pytest.raises(DataError) as info:
        load_dataset(*args, **kwargs)
    return str(info.value)


def test_invalid_letter_in_fasta(tmp_path):
    write_fasta(tmp_path / "a.fa", [("ok", "ACGTACGT"), ("bad_rec", "ACGTXCGT")])
    write_fasta(tmp_path / "b.fa", [("b1", "ACGTACGT")])
    message = _error([str(tmp_path / "a.fa"), str(tmp_path / "b.fa")])
    assert "a.fa" in message and "'bad_rec'" in message and "'X' at position 5" in message


def test_invalid_letter_in_csv_names_row(tmp_path):
    pd.DataFrame({"seq": ["ACGT", "AC-T"], "label": ["x", "y"]}).to_csv(
        tmp_path / "d.csv", index=False
    )
    message = _error(str(tmp_path / "d.csv"))
    assert "d.csv" in message and "'line 3'" in message and "'-' at position 3" in message


def test_empty_files(tmp_path):
    (tmp_path / "a.fa").write_text("")
    write_fasta(tmp_path / "b.fa", [("b1", "ACGT")])
    assert "empty file" in _error([str(tmp_path / "a.fa"), str(tmp_path / "b.fa")])
    (tmp_path / "e.csv").write_text("")
    assert "e.csv" in _error(str(tmp_path / "e.csv")) and "empty" in _error(str(tmp_path / "e.csv"))
    (tmp_path / "h.csv").write_text("seq,label\n")
    assert "no rows" in _error(str(tmp_path / "h.csv"))


def test_empty_sequence_record(tmp_path):
    (tmp_path / "a.fa").write_text(">r1\nACGT\n>r2\n>r3\nAC\n")
    write_fasta(tmp_path / "b.fa", [("b1", "ACGT")])
    message = _error([str(tmp_path / "a.fa"), str(tmp_path / "b.fa")])
    assert "'r2'" in message and "empty sequence" in message


def test_corrupt_gzip(tmp_path):
    data = gzip.compress(b">r1\nACGT\n" * 200)
    (tmp_path / "a.fa.gz").write_bytes(data[: len(data) // 2])
    write_fasta(tmp_path / "b.fa", [("b1", "ACGT")])
    message = _error([str(tmp_path / "a.fa.gz"), str(tmp_path / "b.fa")])
    assert "a.fa.gz" in message and "corrupt gzip" in message


def test_not_fasta_and_missing_columns(tmp_path):
    (tmp_path / "a.fa").write_text("ACGT\n")
    write_fasta(tmp_path / "b.fa", [("b1", "ACGT")])
    assert "not a FASTA file" in _error([str(tmp_path / "a.fa"), str(tmp_path / "b.fa")])
    pd.DataFrame({"sequence_text": ["ACGT"], "y": [1]}).to_csv(tmp_path / "c.csv", index=False)
    message = _error(str(tmp_path / "c.csv"))
    assert "missing column(s) ['seq', 'label']" in message and "sequence_text" in message
    # the file's own header is shown, not its normalized names
    (tmp_path / "typo.csv").write_text("id,Sequence,lable\na,ACGT,x\n")
    message = _error(str(tmp_path / "typo.csv"))
    assert "missing column(s) ['label']; the header is ['id', 'Sequence', 'lable']" in message


def test_sequence_longer_than_length(tmp_path):
    rows = {"train": [(1, "a", "ACGTACGT"), (2, "b", "ACGTACGTACGT"), (3, "a", "ACG"), (4, "b", "ACG")],
            "test": [(5, "a", "ACGT"), (6, "b", "ACGT")]}  # fmt: skip
    root = write_full_sequence_dir(tmp_path / "fs", rows)
    message = _error(str(root), length=8, val_fraction=0.0)
    # the class directory and the record id (= file stem, here 2.txt)
    assert (
        "fs/train/b" in message
        and "'2'" in message
        and "length 12" in message
        and "--crop" in message
    )
    # too long in two splits: one error that counts both
    rows["test"].append((7, "a", "ACGTACGTACGTACGT"))
    root = write_full_sequence_dir(tmp_path / "fs2", rows)
    assert "(2 such records: 1 in train, 1 in test)" in _error(
        str(root), length=8, val_fraction=0.0
    )


def test_label_class_mismatch(tmp_path):
    frame = pd.DataFrame({"seq": ["ACGT"] * 6, "label": ["a", "b", "a", "b", "a", "c"],
                          "split": ["train"] * 4 + ["test"] * 2})  # fmt: skip
    frame.to_csv(tmp_path / "d.csv", index=False)
    message = _error(str(tmp_path / "d.csv"), val_fraction=0.0)
    assert "label/class mismatch" in message and "['c']" in message and "test split" in message
    assert "'line 7'" in message  # the line of the file, header = line 1
    # evaluating with a run's classes: unknown class in the data
    frame.assign(label=["x"] * 6).to_csv(tmp_path / "e.csv", index=False)
    assert "['x']" in _error(str(tmp_path / "e.csv"), class_names=["a", "b"], val_fraction=0.0)


def test_single_class_and_single_fasta(tmp_path):
    pd.DataFrame({"seq": ["ACGT"] * 4, "label": ["a"] * 4}).to_csv(tmp_path / "d.csv", index=False)
    assert "at least two classes" in _error(str(tmp_path / "d.csv"))
    write_fasta(tmp_path / "a.fa", [("r", "ACGT")])
    assert "one FASTA file per class" in _error(str(tmp_path / "a.fa"))


def test_unknown_dataset_name_and_missing_path(tmp_path):
    message = _error("demo_human_or_wurm")
    assert "demo_human_or_wurm" in message and "demo_human_or_worm" in message  # lists known names
    assert "no such file" in _error(str(tmp_path / "nope.csv"))


def test_named_dataset_offline_says_how_to_provide_data(tmp_path, monkeypatch):
    import genomic_benchmarks.loc2seq as loc2seq

    def offline(*args, **kwargs):
        raise ConnectionError("Failed to resolve 'raw.githubusercontent.com'")

    monkeypatch.setattr(loc2seq, "download_dataset", offline)
    message = _error("demo_human_or_worm", cache_dir=str(tmp_path))
    assert (
        "could not download" in message and "--references" in message and "full-sequence" in message
    )


def _interval_list(root, url="http://x/genome.fa.gz"):
    root.mkdir()
    (root / "metadata.yaml").write_text(yaml.safe_dump({"version": 0, "classes": {
        "a": {"type": "fa.gz", "url": url}, "b": {"type": "fa.gz", "url": url}}}))  # fmt: skip
    for split in ("train", "test"):
        (root / split).mkdir()
        for name in ("a", "b"):
            with gzip.open(root / split / f"{name}.csv.gz", "wt") as out:
                out.write("id,region,start,end,strand\n0,chrA,0,10,+\n")
    return root


def test_interval_list_missing_reference_and_references_flag(tmp_path):
    root = _interval_list(tmp_path / "il")
    assert "--references" in _error(str(root))
    (tmp_path / "refs").mkdir()
    message = _error(str(root), str(tmp_path / "refs"))
    assert "missing reference genome" in message and "genome.fa.gz" in message


def test_interval_list_region_absent_from_reference(tmp_path):
    root = _interval_list(tmp_path / "il")
    (tmp_path / "refs").mkdir()
    write_fasta(tmp_path / "refs" / "genome.fa.gz", [("chrB", "ACGT" * 10)])
    message = _error(str(root), str(tmp_path / "refs"))
    assert "could not cut the intervals" in message and "chrA" in message


def test_interval_list_corrupt_interval_file(tmp_path):
    root = _interval_list(tmp_path / "il")
    (root / "test" / "b.csv.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    (tmp_path / "refs").mkdir()
    write_fasta(tmp_path / "refs" / "genome.fa.gz", [("chrA", "ACGT" * 10)])
    message = _error(str(root), str(tmp_path / "refs"))
    assert "b.csv.gz" in message and "corrupt gzip" in message


def test_missing_file_among_several_inputs(tmp_path):
    write_fasta(tmp_path / "a.fa", [("r", "ACGT")])
    message = _error([str(tmp_path / "a.fa"), str(tmp_path / "nothere.fa")])
    assert "nothere.fa" in message and "no such file" in message
    pd.DataFrame({"seq": ["ACGT"], "label": ["a"]}).to_csv(tmp_path / "train.csv", index=False)
    assert "missing.csv" in _error([str(tmp_path / "train.csv"), str(tmp_path / "missing.csv")])


def test_data_items_of_the_wrong_kind_are_named(tmp_path):
    """Each error names the item at fault (several items once said only "cannot combine these
    inputs", and a directory holding FASTA and CSV files was read as its CSV files alone)."""
    import os

    write_fasta(tmp_path / "a.fa", [("r", "ACGT")])
    write_fasta(tmp_path / "b.faa", [("p", "MKV")])
    (tmp_path / "dir").mkdir()
    message = _error([str(tmp_path / "a.fa"), str(tmp_path / "b.faa")])
    assert message.startswith(f"{tmp_path / 'b.faa'}: unrecognized file type (expected .csv")
    assert ".fas FASTA" in message
    assert _error(str(tmp_path / "b.faa")).startswith(f"{tmp_path / 'b.faa'}: unrecognized")
    message = _error([f"x={tmp_path / 'dir'}", str(tmp_path / "a.fa")])
    assert message.startswith(f"{tmp_path / 'dir'}: is a directory: several --data items")
    assert _error([f"={tmp_path / 'a.fa'}", f"b={tmp_path / 'a.fa'}"]) == (
        f"={tmp_path / 'a.fa'}: empty class name before '=' (write class=path)"
    )
    os.mkfifo(tmp_path / "pipe.csv")
    assert "pipe.csv: not a regular file (a pipe" in _error(str(tmp_path / "pipe.csv"))
    write_fasta(tmp_path / "dir" / "pos.fa", [("p1", "ACGT")])
    write_fasta(tmp_path / "dir" / "neg.fa", [("n1", "ACGA")])
    (tmp_path / "dir" / "samples.csv").write_text("seq,label\nACGT,a\n")
    assert _error(str(tmp_path / "dir")) == (
        f"{tmp_path / 'dir'}: holds both CSV/TSV files (samples.csv) and FASTA files (neg.fa, "
        "pos.fa): give the files you mean as --data items"
    )


def test_a_txt_table_is_tab_separated_alone_or_with_others(tmp_path):
    """One `.txt` file was refused while two were read as TSV; both are tables now, and a
    comma-separated `.txt` is told why its header is one column."""
    rows = [(f"r{i}", "ACGT" if i % 2 else "GGCA", "ab"[i % 2]) for i in range(40)]
    text = "id\tseq\tlabel\n" + "".join("\t".join(row) + "\n" for row in rows)
    (tmp_path / "all.txt").write_text(text)
    assert load_dataset(str(tmp_path / "all.txt"), cache_dir=None).class_names == ["a", "b"]
    (tmp_path / "train.txt").write_text(text)
    (tmp_path / "test.txt").write_text(text)
    dataset = load_dataset(
        [str(tmp_path / "train.txt"), str(tmp_path / "test.txt")], cache_dir=None
    )
    assert len(dataset["test"]) == 40
    (tmp_path / "commas.txt").write_text(text.replace("\t", ","))
    assert _error(str(tmp_path / "commas.txt")).endswith(
        "; it looks comma-separated, but a .txt file is read as tab-separated"
    )
    (tmp_path / "tabs.csv").write_text(text)
    assert _error(str(tmp_path / "tabs.csv")).endswith(
        "; it looks tab-separated, but a .csv file is read as comma-separated"
    )


def test_split_from_file_name_uses_whole_words(tmp_path):
    frame = pd.DataFrame({"seq": ["ACGT", "TTGA"] * 4, "label": ["a", "b"] * 4})
    frame.to_csv(tmp_path / "interval_train.csv", index=False)
    frame.to_csv(tmp_path / "test_intervals.csv", index=False)
    ds = load_dataset(
        [str(tmp_path / "interval_train.csv"), str(tmp_path / "test_intervals.csv")],
        val_fraction=0.0,
    )
    assert len(ds["train"]) == 8 and len(ds["test"]) == 8
    frame.to_csv(tmp_path / "retrain_test.csv", index=False)  # "retrain" is not "train"
    frame.to_csv(tmp_path / "train_or_test.csv", index=False)
    message = _error([str(tmp_path / "interval_train.csv"), str(tmp_path / "train_or_test.csv")])
    assert "train_or_test.csv" in message and "exactly one" in message
    ds = load_dataset(
        [str(tmp_path / "interval_train.csv"), str(tmp_path / "retrain_test.csv")], val_fraction=0.0
    )
    assert len(ds["test"]) == 8


def test_byte_order_mark_and_duplicate_sequence_columns(tmp_path):
    (tmp_path / "a.fa").write_bytes(b"\xef\xbb\xbf>r1\nACGT\n>r2\nACGG\n")
    write_fasta(tmp_path / "b.fa", [("b1", "TTGA"), ("b2", "TTGC")])
    ds = load_dataset(
        [str(tmp_path / "a.fa"), str(tmp_path / "b.fa")], test_fraction=0.5, val_fraction=0.0
    )
    assert sorted(ds["train"].sequences() + ds["test"].sequences()) == [
        "ACGG",
        "ACGT",
        "TTGA",
        "TTGC",
    ]
    frame = pd.DataFrame(
        {"seq": ["ACGT", "TTGA"] * 3, "sequence": ["name"] * 6, "label": ["a", "b"] * 3}
    )
    frame.to_csv(tmp_path / "d.csv", index=False)
    assert load_dataset(str(tmp_path / "d.csv"), val_fraction=0.0)["train"].sequences()[0] in (
        "ACGT",
        "TTGA",
    )


def test_too_small_to_carve_validation_warns_and_drops_it(tmp_path):
    frame = pd.DataFrame({"seq": ["ACGT", "TTGA", "ACGA", "TTGG"], "label": ["a", "b", "a", "b"],
                          "split": ["train", "train", "test", "test"]})  # fmt: skip
    frame.to_csv(tmp_path / "d.csv", index=False)
    with pytest.warns(UserWarning, match="val split is empty"):
        ds = load_dataset(str(tmp_path / "d.csv"), val_fraction=0.1)
    assert "val" not in ds.splits and len(ds["train"]) == 2


@pytest.mark.parametrize(
    "labels, warning, classes",
    [  # a typo in 3 rows; `1.0` beside `1` (a spreadsheet's export; once only a split warning)
        (["bound", "unbound"] * 40 + ["Bound"] * 3,
         r"classes 'Bound' \(3 sequences\), 'bound' \(40 sequences\) differ only in case",
         ["Bound", "bound", "unbound"]),
        (["0", "1"] * 40 + ["1.0"] * 3,
         r"classes '1' \(40 sequences\), '1.0' \(3 sequences\) are the same number written "
         "differently", ["0", "1", "1.0"]),
    ],
)  # fmt: skip
def test_classes_that_look_like_one_written_differently_are_warned_of(
    tmp_path, labels, warning, classes
):
    import numpy as np

    rng = np.random.default_rng(1)
    rows = [("".join(rng.choice(list("ACGT"), 20)), label) for label in labels]
    path = tmp_path / "labels.csv"
    pd.DataFrame(rows, columns=["seq", "label"]).to_csv(path, index=False)
    with pytest.warns(UserWarning, match=warning):
        dataset = load_dataset(str(path), cache_dir=None, seed=0)
    assert dataset.class_names == classes


def test_labels_that_look_missing_and_classes_absent_from_a_split_are_warned_of(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    rows = [("".join(rng.choice(list("ACGT"), 20)), "pos" if i % 2 else "neg") for i in range(60)]
    rows += [("".join(rng.choice(list("ACGT"), 20)), "NA") for _ in range(2)]
    path = tmp_path / "labels.csv"
    pd.DataFrame(rows, columns=["seq", "label"]).to_csv(path, index=False)
    with pytest.warns(UserWarning) as caught:
        dataset = load_dataset(str(path), cache_dir=None, seed=0)
    messages = [str(w.message) for w in caught]
    assert dataset.class_names == ["NA", "neg", "pos"]  # still a class: the warning says so
    assert any("label 'NA' (2 sequences) looks like a missing value" in m for m in messages)
    # 2 'NA' sequences cannot reach every split: the empty one is named
    assert any("split has no sequences of class 'NA' (2 in all)" in m for m in messages), messages
    for attempt in ("build", "reuse"):  # memory-mapped: the same warnings, also from its cache
        with pytest.warns(UserWarning) as caught:
            mapped = load_dataset(str(path), cache_dir=str(tmp_path / "c"), seed=0, memory_map=True)
        assert mapped.info.get("memory_mapped") and mapped.class_names == dataset.class_names
        mapped_messages = [str(w.message) for w in caught]
        for expected in ("label 'NA' (2 sequences) looks like a missing value",
                         "split has no sequences of class 'NA' (2 in all)"):  # fmt: skip
            assert any(expected in m for m in mapped_messages), (attempt, mapped_messages)
    clean = tmp_path / "clean.csv"
    pd.DataFrame(rows[:60], columns=["seq", "label"]).to_csv(clean, index=False)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_dataset(str(clean), cache_dir=None, seed=0)  # balanced, no odd labels: no warning


@pytest.mark.parametrize("memory_map", [False, True])
def test_an_unknown_split_value_names_its_record(tmp_path, memory_map):
    """The first record with a split value that is not train, val or test: by id, else by line."""
    from attngen_keras.data import load_dataset

    rows = [("r0", "ACGT", "a", "train"), ("r1", "ACGA", "b", "train"), ("r2", "ACGG", "a", "Test"),
            ("r3", "ACGC", "b", "foo"), ("r4", "ACTT", "a", "bar")]  # fmt: skip
    with_ids = tmp_path / "ids.csv"
    pd.DataFrame(rows, columns=["id", "seq", "label", "split"]).to_csv(with_ids, index=False)
    without = tmp_path / "lines.csv"
    pd.DataFrame([r[1:] for r in rows], columns=["seq", "label", "split"]).to_csv(
        without, index=False
    )
    for path, record in ((with_ids, "r3"), (without, "line 5")):
        with pytest.raises(DataError) as error:
            load_dataset(str(path), cache_dir=tmp_path / "cache", memory_map=memory_map)
        assert str(error.value) == (
            f"{path}: record {record!r}: unknown split value 'foo' in column 'split' "
            "(use train, val, test); also ['bar']"
        )


class _Trickle:
    """A text stream returning at most a few characters per read, as a slow pipe would."""

    def __init__(self, text, seed):
        import random

        self._text, self._random = io.StringIO(text), random.Random(seed)

    def read(self, size=-1):
        return self._text.read(self._random.randint(1, 7))


@pytest.mark.parametrize("seed", range(40))
def test_table_lines_name_every_row_by_its_file_line(seed):
    """However skipped lines (empty, spaces and tabs; LF or CRLF), quoted fields spanning lines
    and read boundaries fall, each row is named by the line it starts on, pandas reads the same
    rows as without the stream, and pandas' own error messages keep the file's line numbers."""
    import random

    import numpy as np

    from attngen_keras.data.readers import TableLines

    rng = random.Random(seed)
    separator, newline = rng.choice([",", "\t"]), rng.choice(["\n", "\r\n"])
    spaces = " " if separator == "\t" else rng.choice([" ", "\t", " \t "])
    skipped = ["", spaces, "  "]
    lines, expected, ids = [*rng.choices(skipped, k=rng.randint(0, 2)), f"seq{separator}id"], [], []
    for row in range(rng.randint(1, 30)):
        lines += rng.choices(skipped, k=rng.choice([0, 0, 0, 1, 2]))
        expected.append(len(lines) + 1)  # the 1-based line it starts on
        sequence = "".join(rng.choice("ACGT") for _ in range(rng.randint(1, 9)))
        if rng.random() < 0.2:  # a quoted id over several lines, perhaps with an empty one
            ids.append(f"r{row}\n{rng.choice(['', 'x'])}\nend")
            lines += f'{sequence}{separator}"{ids[-1]}"'.split("\n")
        else:
            ids.append(f"r{row}")
            lines.append(f"{sequence}{separator}{ids[-1]}")
    text = newline.join(lines) + newline * rng.randint(0, 3)
    plain = pd.read_csv(io.StringIO(text), sep=separator, dtype=str, keep_default_na=False)
    assert plain["id"].str.replace("\r", "").tolist() == ids  # what pandas reads, as generated
    for handle in (
        TableLines(_Trickle(text, seed), separator),
        TableLines(io.StringIO(text), separator),
    ):
        frame = pd.read_csv(handle, sep=separator, dtype=str, keep_default_na=False)
        pd.testing.assert_frame_equal(frame, plain)
        assert (handle.data_lines(np.arange(len(frame))) + 2).tolist() == expected
    # pandas' own messages (a malformed row) name the file's line, as without the stream
    bad = text.rstrip("\r\n") + newline + newline + f"A{separator}b{separator}c" + newline
    messages = []
    for source in (io.StringIO(bad), TableLines(io.StringIO(bad), separator)):
        with pytest.raises(pd.errors.ParserError) as error:
            pd.read_csv(source, sep=separator, dtype=str)
        messages.append(str(error.value))
    assert messages[0] == messages[1]


def test_table_lines_in_chunks_count_each_skipped_line_once():
    """Rows asked for chunk by chunk (the cache and `predict`) get the same lines as all at once."""
    import numpy as np

    from attngen_keras.data.readers import TableLines

    text = "seq\n" + "".join(f"A\n{'' if i % 3 else chr(10)}" for i in range(2000))
    whole = TableLines(io.StringIO(text))
    frame = pd.read_csv(whole, dtype=str)
    expected = whole.data_lines(np.arange(len(frame)))
    chunked = TableLines(io.StringIO(text))
    lines = [chunked.data_lines(np.arange(c.index.start, c.index.stop))
             for c in pd.read_csv(chunked, dtype=str, chunksize=97)]  # fmt: skip
    np.testing.assert_array_equal(np.concatenate(lines), expected)
    assert expected[:3].tolist() == [0, 2, 3] and len(expected) == 2000


@pytest.mark.parametrize("memory_map", [False, True])
def test_rows_after_empty_lines_are_named_by_their_file_line(tmp_path, memory_map):
    csv = tmp_path / "d.csv"
    csv.write_text("seq,label\nACGT,a\n\nACGT,b\n\r\n\nACXT,a\n")  # the bad record on line 7
    message = _error(str(csv), cache_dir=str(tmp_path / "c"), memory_map=memory_map)
    assert "record 'line 7': invalid character 'X'" in message, message
    # line 2 is empty; the unknown class is on line 6
    csv.write_text("seq,label,split\n\nACGT,a,train\nACGT,b,train\nACGT,a,test\nACGT,c,test\n")
    message = _error(str(csv), val_fraction=0.0, cache_dir=None)
    assert "label/class mismatch" in message and "'line 6'" in message, message


def test_a_cache_directory_that_cannot_be_made_says_how_to_choose_another(tmp_path):
    from attngen_keras.files import FileError

    csv = tmp_path / "d.csv"
    csv.write_text("seq,label\nACGT,a\nACGT,b\n")
    with pytest.raises(FileError) as error:
        load_dataset(str(csv), cache_dir=str(csv))  # a file given as --cache-dir
    assert str(error.value) == (
        f"{csv}: cannot be the parsed-data cache directory (file exists); choose another with "
        "--cache-dir DIR (or ATTNGEN_CACHE), or --cache-dir none to read without a cache"
    )
