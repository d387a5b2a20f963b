"""Every data source on small generated data."""

import gzip

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import write_fasta, write_full_sequence_dir

from attngen_keras.data import detect_source, load_dataset
from attngen_keras.data.alphabet import PAD
from attngen_keras.synthetic import planted_motif_data


@pytest.fixture
def synthetic():
    return planted_motif_data(n=200, length=60, seed=3)


def test_single_csv_carves_stratified_test_and_val(tmp_path, synthetic):
    path = tmp_path / "data.csv"
    synthetic.to_frame().to_csv(path, index=False)
    assert detect_source(str(path))[0] == "table"
    ds = load_dataset(str(path), test_fraction=0.2, val_fraction=0.1, seed=1)
    assert ds.class_names == ["neg", "pos"]
    sizes = {k: len(v) for k, v in ds.splits.items()}
    assert sizes == {"train": 144, "val": 16, "test": 40}
    for split in ds.splits.values():  # stratified: balanced classes in every split
        assert abs(int(split.labels.sum()) * 2 - len(split)) <= 1
    all_ids = np.concatenate([s.ids for s in ds.splits.values()])
    assert len(set(all_ids)) == 200  # disjoint
    again = load_dataset(str(path), test_fraction=0.2, val_fraction=0.1, seed=1)
    assert np.array_equal(again["test"].ids, ds["test"].ids)  # seeded


def test_csv_per_split_and_tsv(tmp_path, synthetic):
    frame = synthetic.to_frame()
    frame.iloc[:150].to_csv(tmp_path / "train.tsv", sep="\t", index=False)
    frame.iloc[150:].to_csv(tmp_path / "test.tsv.gz", sep="\t", index=False)
    files = [str(tmp_path / "train.tsv"), str(tmp_path / "test.tsv.gz")]
    ds = load_dataset(files, val_fraction=0.0)
    assert len(ds["train"]) == 150 and len(ds["test"]) == 50 and "val" not in ds.splits
    assert ds["test"].sequences()[0] == frame.seq.iloc[150]
    # a directory of tables works the same way
    assert len(load_dataset(str(tmp_path), val_fraction=0.0)["test"]) == 50


def test_csv_split_column_and_integer_labels(tmp_path):
    frame = pd.DataFrame(
        {
            "seq": ["ACGT", "ACGA", "TTTT", "GGGG", "CCCC", "ACGG"] * 3,
            "label": ["0", "2", "10"] * 6,
            "split": ["train"] * 12 + ["val"] * 3 + ["test"] * 3,
        }
    )
    frame.to_csv(tmp_path / "d.csv", index=False)
    ds = load_dataset(str(tmp_path / "d.csv"))
    assert ds.class_names == ["0", "2", "10"]  # numeric order for integer labels
    assert [len(ds[s]) for s in ("train", "val", "test")] == [12, 3, 3]


def test_table_column_aliases_name_sequence_class(tmp_path):
    """`name`, `sequence` and `class` are read as `id`, `seq` and `label` (any case), in
    training data and in `predict`; a column that is present wins over its alias."""
    from attngen_keras.predict import iter_records

    frame = pd.DataFrame({"Name": [f"r{i}" for i in range(12)], "Sequence": ["ACGT", "TTGA"] * 6,
                          "CLASS": ["a", "b"] * 6, "split": ["train"] * 8 + ["test"] * 4})  # fmt: skip
    frame.to_csv(tmp_path / "d.csv", index=False)
    ds = load_dataset(str(tmp_path / "d.csv"))
    assert ds.class_names == ["a", "b"] and list(ds["test"].ids) == ["r8", "r9", "r10", "r11"]
    assert list(iter_records(tmp_path / "d.csv"))[:2] == [("r0", "ACGT"), ("r1", "TTGA")]
    frame.assign(id=[f"x{i}" for i in range(12)]).to_csv(tmp_path / "both.csv", index=False)
    assert list(load_dataset(str(tmp_path / "both.csv"))["test"].ids)[0] == "x8"


def test_predict_names_rows_without_an_id_by_their_file_line(tmp_path):
    """Users join predictions back to their file by these ids: empty lines are counted."""
    import gzip

    from attngen_keras.predict import iter_records

    text = "seq\r\nACGT\r\n\r\nTTGA\r\n\r\n\r\nGGCC\r\n"
    (tmp_path / "d.csv.gz").write_bytes(gzip.compress(text.encode()))
    expected = [("line 2", "ACGT"), ("line 4", "TTGA"), ("line 7", "GGCC")]
    assert list(iter_records(tmp_path / "d.csv.gz")) == expected


def test_old_mac_line_ends_are_read_alike_by_training_and_predict(tmp_path):
    """A lone CR ends a line in FASTA and tables, in both training readers and in `predict`
    (training read a CR-only FASTA as one title line: 'empty sequence'), and table rows are
    named by the same file lines."""
    from attngen_keras.data.readers import _read_table, fasta_records, open_text
    from attngen_keras.predict import iter_records

    (tmp_path / "cr.fa").write_bytes(b">a x\rACGT\rAC\r\r>b\rGGTT\r")
    expected = [("a", "ACGTAC"), ("b", "GGTT")]
    assert list(fasta_records(open_text(tmp_path / "cr.fa"), "cr.fa")) == expected
    assert list(iter_records(tmp_path / "cr.fa")) == expected
    (tmp_path / "cr.csv").write_bytes(b"seq,label\rACGT,a\r\rGGCC,b\r")
    assert list(_read_table(tmp_path / "cr.csv").index + 2) == [2, 4]
    assert list(iter_records(tmp_path / "cr.csv")) == [("line 2", "ACGT"), ("line 4", "GGCC")]


def test_spaces_and_tabs_inside_fasta_lines_are_dropped_by_every_reader(tmp_path):
    """Biopython drops spaces; a tab was an invalid character ('\\t' at position 6)."""
    from attngen_keras.data.cache import _fasta_chunks
    from attngen_keras.data.readers import fasta_records, open_text

    (tmp_path / "t.fa").write_text(">a\nACG TA\tC\t\n>b\n\tGG\n")
    expected = [("a", "ACGTAC"), ("b", "GG")]
    assert list(fasta_records(open_text(tmp_path / "t.fa"), "t.fa")) == expected
    [(ids, tokens)] = list(_fasta_chunks(str(tmp_path / "t.fa"), 10))
    assert ids == ["a", "b"] and [len(t) for t in tokens] == [6, 2]


def test_text_that_is_not_utf8_is_refused_naming_its_line(tmp_path):
    """`predict` read such files with replacement characters (ids silently changed); every
    reader now names the first line that is not UTF-8, and UTF-16 (Excel's "Unicode Text")."""
    import gzip

    from attngen_keras.data.errors import DataError
    from attngen_keras.predict import iter_records

    latin = "id,seq,label\nr1,ACGT,a\nr2_\u00b5,GGCC,b\n"
    inputs = {
        "latin.csv": (latin.encode("latin-1"), "line 3: not UTF-8 text (byte 0xb5"),
        "latin.csv.gz": (gzip.compress(latin.encode("latin-1")), "line 3: not UTF-8 text"),
        "excel.tsv": (latin.replace(",", "\t").encode("utf-16"), "line 1: UTF-16 text, not UTF-8"),
        "latin.fa": (b">a\nACGT\n>b_\xb5\nGG\n", "line 3: not UTF-8 text (byte 0xb5"),
        "mac.csv": (latin.replace("\n", "\r").encode("latin-1"), "line 3: not UTF-8 text"),
        "mixed.csv": (b"id,seq,label\r\nr1,ACGT,a\rr2,GG,b\nr3\xb5,GG,b\n", "line 4: not UTF-8"),
    }
    for name, (data, problem) in inputs.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(DataError) as error:
            list(iter_records(path))
        assert str(error.value).startswith(f"{path}: {problem}"), str(error.value)
        if not name.endswith(".fa"):
            with pytest.raises(DataError) as error:
                load_dataset(str(path))
            assert str(error.value).startswith(f"{path}: {problem}"), str(error.value)


def test_predict_refuses_sequence_before_the_first_fasta_header(tmp_path):
    """Biopython's parser skips text before the first `>`: `predict` would lose it without a word."""
    import gzip

    from attngen_keras.data.errors import DataError
    from attngen_keras.predict import iter_records

    (tmp_path / "blank.fa").write_text("\n;comment\n>a desc\nACGT\n>b\nTT\n")  # blank, ';': fine
    assert list(iter_records(tmp_path / "blank.fa")) == [("a", "ACGT"), ("b", "TT")]
    for name, text in (("noheader.fa", "ACGT\n>a\nACGT\n"), ("late.fa.gz", "\n  \nAC\n>a\nGT\n")):
        path = tmp_path / name
        data = text.encode()
        path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        line = 1 if name == "noheader.fa" else 3
        with pytest.raises(DataError) as error:
            list(iter_records(path))
        assert str(error.value) == f"{path}: line {line}: sequence before the first '>' header line"


def test_fasta_one_file_per_class(tmp_path, synthetic):
    pos = [(f"p{i}", s) for i, s in enumerate(synthetic.sequences) if synthetic.labels[i]]
    neg = [(f"n{i}", s) for i, s in enumerate(synthetic.sequences) if not synthetic.labels[i]]
    write_fasta(tmp_path / "bound.fa.gz", pos)
    write_fasta(tmp_path / "unbound.fasta", neg)
    ds = load_dataset([str(tmp_path / "bound.fa.gz"), str(tmp_path / "unbound.fasta")], seed=0)
    assert ds.class_names == ["bound", "unbound"] and ds.length == 60
    assert sum(len(s) for s in ds.splits.values()) == 200
    # records spanning several lines are joined; ids are the first word of the title
    train = ds["train"]
    first = train.ids[0]
    original = dict(pos + neg)[first]
    assert train.sequences()[0] == original
    # class=path naming and a directory of FASTA files
    named = load_dataset([f"yes={tmp_path / 'bound.fa.gz'}", f"no={tmp_path / 'unbound.fasta'}"])
    assert named.class_names == ["no", "yes"]
    assert load_dataset(str(tmp_path)).class_names == ["bound", "unbound"]


def test_fasta_in_split_directories(tmp_path):
    for split in ("train", "test"):
        (tmp_path / split).mkdir()
        write_fasta(tmp_path / split / "a.fa", [(f"{split}a{i}", "ACGTAC") for i in range(5)])
        write_fasta(tmp_path / split / "b.fa", [(f"{split}b{i}", "TTGACA") for i in range(5)])
    ds = load_dataset(str(tmp_path), val_fraction=0.2)
    assert [len(ds[s]) for s in ("train", "val", "test")] == [8, 2, 10]


def test_full_sequence_dir_and_variable_lengths(tmp_path):
    rows = {
        "train": [(i, "pos" if i % 2 else "neg", "ACGT" * (5 + i % 3)) for i in range(20)],
        "test": [(100 + i, "pos" if i % 2 else "neg", "TTGCA" * 4) for i in range(6)],
    }
    root = write_full_sequence_dir(tmp_path / "fs", rows)
    assert detect_source(str(root))[0] == "full_sequence_dir"
    ds = load_dataset(str(root), val_fraction=0.0)
    assert ds.length == 28  # longest sequence
    lengths = ds["train"].lengths
    assert set(lengths.tolist()) == {20, 24, 28}
    row = ds["train"].tokens[np.argmin(lengths)]
    assert np.all(row[20:] == PAD) and np.all(row[:20] != PAD)  # right-padded
    cropped = load_dataset(str(root), length=22, crop="center", val_fraction=0.0)
    assert cropped.length == 22 and set(cropped["train"].lengths.tolist()) == {20, 22}


def test_interval_list_with_references(tmp_path):
    rng = np.random.default_rng(0)
    refs = tmp_path / "refs"
    refs.mkdir()
    genomes = {}
    for name, gc in (("alpha", 0.3), ("beta", 0.7)):
        seq = "".join(
            rng.choice(list("ACGT"), 3000, p=[(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2])
        )
        genomes[name] = seq
        write_fasta(refs / f"{name}.fa.gz", [("chrA", seq)])
    root = tmp_path / "intervals"
    metadata = {
        "version": 0,
        "classes": {n: {"type": "fa.gz", "url": f"http://x/{n}.fa.gz"} for n in genomes},
    }
    root.mkdir()
    (root / "metadata.yaml").write_text(yaml.safe_dump(metadata))
    for split, count in (("train", 30), ("test", 10)):
        (root / split).mkdir()
        for name in genomes:
            starts = rng.integers(0, 2900, count)
            frame = pd.DataFrame(
                {"id": range(count), "region": "chrA", "start": starts, "end": starts + 50,
                 "strand": rng.choice(["+", "-"], count)}
            )  # fmt: skip
            with gzip.open(root / split / f"{name}.csv.gz", "wt") as out:
                frame.to_csv(out, index=False)
    assert detect_source(str(root))[0] == "interval_list"
    ds = load_dataset(str(root), str(refs))
    assert ds.class_names == ["alpha", "beta"] and ds.length == 50
    assert len(ds["test"]) == 20 and len(ds["train"]) + len(ds["val"]) == 60
    # the sequences are the reference intervals (reverse-complemented on -)
    frame = pd.read_csv(root / "test" / "alpha.csv.gz")
    test = ds["test"]
    index = {i: k for k, i in enumerate(test.ids) if test.labels[k] == 0}
    row = frame.iloc[0]
    expected = genomes["alpha"][row.start : row.end]
    if row.strand == "-":
        expected = expected[::-1].translate(str.maketrans("ACGT", "TGCA"))
    assert test.sequences()[index[str(row.id)]] == expected


def test_genomic_benchmarks_name_uses_local_copy(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    rows = {"train": [(i, "a" if i % 2 else "b", "ACGTTG") for i in range(10)],
            "test": [(i, "a" if i % 2 else "b", "ACGTTG") for i in range(4)]}  # fmt: skip
    write_full_sequence_dir(cache / "genomic_benchmarks" / "demo_human_or_worm", rows)
    import attngen_keras.data.genomic_benchmarks as gb

    def offline(*args, **kwargs):
        raise AssertionError("must not download when a local copy exists")

    monkeypatch.setattr(gb, "download_named", offline)
    ds = load_dataset("demo_human_or_worm", cache_dir=str(cache), val_fraction=0.0)
    assert len(ds["train"]) == 10 and ds.kind == "genomic_benchmarks_name"


def test_without_carving_everything_stays_in_one_split(tmp_path, synthetic):
    path = tmp_path / "external.csv"
    synthetic.to_frame().to_csv(path, index=False)
    ds = load_dataset(str(path), carve=False, class_names=["neg", "pos"])
    assert list(ds.splits) == ["all"] and len(ds["all"]) == 200
