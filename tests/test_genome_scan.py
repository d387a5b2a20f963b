"""`attngen scan`: a synthetic genome with planted motifs; the track must peak exactly there.

The model is hand-set (no training): a Conv1D whose filter matches one
8-mer exactly, max-pooled, through a steep sigmoid, so a window scores
~0.993 when it contains the whole motif and ~0 otherwise. Where the track
must be high is then known to the base.
"""

import gzip
import math
from pathlib import Path

import keras
import numpy as np
import pytest

from attngen_keras.cli import main
from attngen_keras.data.errors import DataError
from attngen_keras.genome.scan import scan_genome
from attngen_keras.genome.scoring import Scorer, reverse_complement
from attngen_keras.genome.windows import (
    Tiler,
    fasta_records,
    iter_fasta_pieces,
    read_regions,
    regions_past_the_end,
)

L, K, S = 60, 8, 10
MOTIF = "GATTACAG"
HIGH = 1 / (1 + math.exp(-(20 * 0.5 - 5)))  # sigmoid(20 * (K - (K - 0.5)) - 5)
LOW = 1 / (1 + math.exp(5))  # sigmoid(-5): no whole motif in the window


def motif_model(classes=2):
    """Hand-set detector of MOTIF on the forward strand (binary: sigmoid; 3 classes: softmax)."""
    inputs = keras.Input((L, 4))
    conv = keras.layers.Conv1D(1, K)
    pooled = keras.layers.GlobalMaxPooling1D()(keras.layers.ReLU()(conv(inputs)))
    dense = keras.layers.Dense(
        1 if classes == 2 else classes, activation="sigmoid" if classes == 2 else "softmax"
    )
    model = keras.Model(inputs, dense(pooled))
    kernel = np.full((K, 4, 1), -1.0, np.float32)
    for i, base in enumerate(MOTIF):
        kernel[i, "ACGT".index(base), 0] = 1.0
    conv.set_weights([kernel, np.array([-(K - 0.5)], np.float32)])
    if classes == 2:
        dense.set_weights([np.array([[20.0]], np.float32), np.array([-5.0], np.float32)])
    else:
        dense.set_weights(
            [np.array([[20.0, 0.0, -20.0]], np.float32), np.array([-5.0, 0.0, 1.0], np.float32)]
        )
    return model


def class_names(classes=2):
    return ["background", "motif"] if classes == 2 else ["motif_rich", "neutral", "motif_poor"]


@pytest.fixture(scope="module")
def scorer():
    return Scorer.from_model(motif_model(), class_names(), L)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The same model exported as a SavedModel (what `attngen scan` / `predict` take by path)."""
    from attngen_keras.export import export_model

    return export_model(motif_model(), tmp_path_factory.mktemp("model") / "motif", class_names(), L)


def random_dna(rng, n):
    return "".join(rng.choice(list("ACGT"), n))


def genome(seed=0):
    """Records with planted motifs (positions chosen to cross chunk boundaries), an N run, a short record."""
    rng = np.random.default_rng(seed)
    records, planted = {}, []
    chr1 = list(random_dna(rng, 2400))
    for m in (500, 1011, 1990):
        chr1[m : m + K] = MOTIF
        planted.append(("chr1", m))
    records["chr1"] = "".join(chr1)
    chr2 = list(random_dna(rng, 1500).lower())  # soft-masked: case must not matter
    chr2[700:760] = "N" * 60
    for m in (90, 1200):
        chr2[m : m + K] = MOTIF
        planted.append(("chr2", m))
    records["chr2"] = "".join(chr2)
    records["chr0_short"] = random_dna(rng, L - 1)
    return records, planted


def write_genome(path, records, width=60, compression="plain"):
    text = "".join(
        f">{name} description\n"
        + "".join(seq[i : i + width] + "\n" for i in range(0, len(seq), width))
        for name, seq in records.items()
    )
    if compression == "plain":
        path.write_text(text)
    elif compression == "gzip":
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        import pysam

        plain = path.with_name(path.name + ".plain")
        plain.write_text(text)
        pysam.tabix_compress(str(plain), str(path), force=True)
    return path


def expected_windows(records, stride=S, max_n_fraction=0.1):
    """Brute force over whole in-memory sequences: `{(chrom, start): high?}` of the kept windows."""
    out = {}
    for name, seq in records.items():
        for w in range(0, len(seq) - L + 1, stride):
            window = seq[w : w + L]
            if window.upper().count("N") > max_n_fraction * L:
                continue
            out[(name, w)] = MOTIF in window.upper()
    return out


def read_bedgraph(path):
    rows = []
    for line in path.read_text().splitlines():
        chrom, start, end, value = line.split("\t")
        rows.append((chrom, int(start), int(end), float(value)))
    return rows


@pytest.mark.parametrize("compression", ["plain", "gzip", "bgzip"])
def test_track_peaks_exactly_at_the_planted_motifs(tmp_path, scorer, compression):
    records, _ = genome()
    fasta = write_genome(
        tmp_path / f"g.fa{'' if compression == 'plain' else '.gz'}", records, 60, compression
    )
    out = tmp_path / "track.bedGraph"
    summary = scan_genome(scorer, fasta, out, stride=S, show_progress=False, chunk_bases=97)
    rows = read_bedgraph(out)
    expected = expected_windows(records)
    offset = (L - S) // 2
    assert [(c, s, e) for c, s, e, _ in rows] == sorted(
        (chrom, w + offset, w + offset + S) for chrom, w in expected
    )  # sorted by chrom then start: chr0_short has no window, chr1 before chr2
    for chrom, start, _, value in rows:
        high = expected[(chrom, start - offset)]
        assert value == pytest.approx(HIGH if high else LOW, abs=1e-5)
    assert summary["windows"] == len(expected)
    assert summary["skipped_n"] == 11  # chr2 windows 650..750 hold more than 6 of the run's 60 N's
    assert summary["short"] == 1
    # to the base: the motif at chr1:500-508 lies whole in windows 450..500, whose centres are 475..535
    high = [(s, e) for c, s, e, v in rows if c == "chr1" and v > 0.5 and s < 700]
    assert (high[0][0], high[-1][1]) == (475, 535) and len(high) == 6
    ends = [(c, e) for c, _, e, _ in rows]
    assert all(a[1] <= b[1] for a, b in zip(rows, rows[1:]) if a[0] == b[0])  # non-overlapping
    assert len(set(ends)) == len(ends)


def test_chunks_and_blocks_do_not_change_windows(tmp_path):
    records, _ = genome(1)
    records["long_line"] = random_dna(np.random.default_rng(5), 700)
    fasta = write_genome(tmp_path / "g.fa", records, width=10_000)  # one line per record
    pieces, name = {}, None
    for kind, value in iter_fasta_pieces(
        fasta, block_bytes=7
    ):  # headers and lines split across blocks
        if kind == "record":
            name = value
            pieces[name] = b""
        else:
            pieces[name] += value
    assert {k: v.decode() for k, v in pieces.items()} == records
    for chunk in (1, 59, 61, 1 << 20):
        tiler = Tiler(fasta, L, 7, chunk_bases=chunk)
        windows = [(c, s, w.decode()) for c, s, w in tiler]
        assert windows == [
            (c, s, records[c][s : s + L])
            for c in records
            for s in range(0, len(records[c]) - L + 1, 7)
            if records[c][s : s + L].upper().count("N") <= 6
        ]
    assert tiler.sizes == {k: len(v) for k, v in records.items()}


def test_a_genome_with_lone_cr_line_ends_is_refused_not_read_as_one_header(tmp_path):
    """An old-Mac FASTA read as one header line: chr1 with no bases, chr2 lost, without a word."""
    from attngen_keras.data import DataError

    fasta = tmp_path / "mac.fa"
    fasta.write_bytes(b">chr1 x\rACGT\rACGG\r>chr2\rTTTT\r")
    with pytest.raises(DataError) as error:
        list(iter_fasta_pieces(fasta))
    assert str(error.value).startswith(f"{fasta}: record 1: a carriage return inside the header")
    fasta.write_bytes(b">chr1 x\r\nACGT\r\n>chr2\r\nTT\r\n")  # CRLF is read
    assert [v for kind, v in iter_fasta_pieces(fasta) if kind == "record"] == ["chr1", "chr2"]


def test_both_strands_averages_a_window_and_its_reverse_complement(tmp_path, scorer):
    rng = np.random.default_rng(2)
    seq = list(random_dna(rng, 400))
    seq[200 : 200 + K] = reverse_complement(MOTIF.encode()).decode()
    fasta = write_genome(tmp_path / "g.fa", {"chrR": "".join(seq)})
    forward, both = tmp_path / "f.bedGraph", tmp_path / "b.bedGraph"
    scan_genome(scorer, fasta, forward, stride=S, show_progress=False)
    scan_genome(scorer, fasta, both, stride=S, both_strands=True, show_progress=False)
    assert max(v for *_, v in read_bedgraph(forward)) == pytest.approx(LOW, abs=1e-5)
    values = {s: v for _, s, _, v in read_bedgraph(both)}
    high = sorted(s for s, v in values.items() if v > 0.25)
    assert min(values.values()) == pytest.approx(LOW, abs=1e-5)
    # the reverse-strand motif at 200-208: windows 150..200, centres 175..225, each (HIGH + 0) / 2
    assert high == list(range(175, 226, 10))
    assert all(values[s] == pytest.approx((HIGH + LOW) / 2, abs=1e-5) for s in high)


def test_regions_multiclass_tsv_and_bigwig(tmp_path, capsys):
    import pyBigWig

    records, _ = genome()
    fasta = write_genome(tmp_path / "g.fa.gz", records, compression="gzip")
    bed = tmp_path / "r.bed"
    bed.write_text("track name=x\nchr1\t400\t600\nchr1\t550\t700\nchr2\t0\t100\nchrX\t0\t100\n")
    assert read_regions(bed) == {"chr1": [(400, 700)], "chr2": [(0, 100)], "chrX": [(0, 100)]}
    three = Scorer.from_model(motif_model(3), class_names(3), L)
    out = tmp_path / "track.bedGraph"
    summary = scan_genome(
        three, fasta, out, stride=S, regions=bed, tsv=tmp_path / "w.tsv.gz", bigwig=tmp_path / "t.bw",
        show_progress=False,
    )  # fmt: skip
    assert not out.exists()
    # chrX is not a record of the genome: said so, with a hint at the naming
    assert summary["missing_regions"] == ["chrX"]
    err = capsys.readouterr().err
    assert "--regions names 1 chromosome absent from the FASTA ('chrX'), not scored" in err
    paths = {n: tmp_path / f"track.{n}.bedGraph" for n in class_names(3)}
    rows = {n: read_bedgraph(p) for n, p in paths.items()}
    # windows 400..640 of chr1 and 0..40 of chr2; centres +25
    starts = [("chr1", w + 25) for w in range(400, 641, 10)] + [
        ("chr2", w + 25) for w in range(0, 41, 10)
    ]
    assert [(c, s) for c, s, _, _ in rows["motif_rich"]] == starts
    assert summary["windows"] == len(starts)
    for i in range(len(starts)):
        total = sum(rows[n][i][3] for n in rows)
        assert total == pytest.approx(1, abs=2e-6)
    rich = {s: v for c, s, _, v in rows["motif_rich"] if c == "chr1"}
    assert [s for s, v in rich.items() if v > 0.5] == list(range(475, 526, 10))
    with gzip.open(tmp_path / "w.tsv.gz", "rt") as handle:
        lines = handle.read().splitlines()
    assert lines[0].split("\t") == [
        "chrom",
        "start",
        "end",
        "prob_motif_rich",
        "prob_neutral",
        "prob_motif_poor",
    ]
    assert lines[1].split("\t")[:3] == ["chr1", "400", "460"] and len(lines) == len(starts) + 1
    bigwig = pyBigWig.open(str(tmp_path / "t.motif_rich.bw"))
    assert bigwig.chroms() == {"chr0_short": L - 1, "chr1": 2400, "chr2": 1500}
    assert bigwig.values("chr1", 475, 476)[0] == pytest.approx(rich[475], abs=1e-6)
    assert bigwig.intervals("chr1")[0] == (425, 435, pytest.approx(rich[425], abs=1e-6))
    bigwig.close()


def test_scan_command_matches_predict_on_the_same_windows(tmp_path, exported, capsys):
    from attngen_keras.predict import predict_file

    records, _ = genome()
    fasta = write_genome(tmp_path / "g.fa", records)
    out, tsv = tmp_path / "t.bedGraph", tmp_path / "w.tsv"
    argv = [
        "scan",
        str(exported.parent),
        "--fasta",
        str(fasta),
        "--out",
        str(out),
        "--tsv",
        str(tsv),
    ]
    assert main([*argv, "--stride", "10", "--batch-size", "33"]) == 0
    captured = capsys.readouterr()
    assert (
        "11 windows skipped for N's" in captured.err
        and "1 record or region shorter than the window (60) has no score" in captured.err
    )
    windows = tmp_path / "windows.fa"
    expected = expected_windows(records)
    windows.write_text("".join(f">{c}:{w}\n{records[c][w : w + L]}\n" for c, w in expected))
    predict_file(exported, windows, tmp_path / "p.tsv", show_progress=False)
    predicted = [line.split("\t")[3] for line in (tmp_path / "p.tsv").read_text().splitlines()[1:]]
    scanned = [line.split("\t")[4] for line in tsv.read_text().splitlines()[1:]]
    assert scanned == predicted
    assert [
        line.split("\t")[3] for line in out.read_text().splitlines()
    ] == predicted  # chr1 < chr2 as in FASTA


def test_scan_bad_input_is_one_line_exit_2(tmp_path, exported, capsys):
    fasta = tmp_path / "g.fa"
    fasta.write_text("ACGT\n>chr1\nACGT\n")
    out = tmp_path / "t.bedGraph"
    assert main(["scan", str(exported), "--fasta", str(fasta), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()  # after the progress bar's line
    assert err[-1] == f"attngen scan: error: {fasta}: sequence before the first '>' header line"
    assert "Traceback" not in "".join(err)
    assert not out.exists()
    fasta.write_text(">chr1\n" + "ACGT" * 40 + "\n")
    bed = tmp_path / "r.bed"
    bed.write_text("chr1\t10\n")
    out.write_text("an earlier track\n")  # kept as it is when the new scan fails
    assert (
        main(
            [
                "scan",
                str(exported),
                "--fasta",
                str(fasta),
                "--out",
                str(out),
                "--regions",
                str(bed),
                "--force",
            ]
        )
        == 2
    )
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"attngen scan: error: {bed}: record 'line 1': not a BED line (expected chrom, start, end: "
        "tab-separated, integers)"
    )
    assert out.read_text() == "an earlier track\n" and sorted(
        p.name for p in tmp_path.iterdir()
    ) == ["g.fa", "r.bed", "t.bedGraph"]
    assert (
        main(
            [
                "scan",
                str(exported),
                "--fasta",
                str(fasta),
                "--out",
                str(out),
                "--stride",
                "61",
                "--force",
            ]
        )
        == 2
    )
    assert "--stride must be between 1 and the model's length 60, got 61" in capsys.readouterr().err
    # an error in the middle of the scan (windows of record a already scored): the earlier track stays
    fasta.write_text(">a\n" + "ACGT" * 400 + "\n>a\nACGT\n")
    assert main(["scan", str(exported), "--fasta", str(fasta), "--out", str(out), "--force"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"attngen scan: error: {fasta}: record 'a': duplicate record name in the FASTA"
    )
    assert out.read_text() == "an earlier track\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.fa", "r.bed", "t.bedGraph"]
    with pytest.raises(DataError, match="duplicate record name"):
        list(Tiler(fasta, 4, 1))
    # a header without a name: no chromosome name is made up for the track
    fasta.write_text(">chr1\n" + "ACGT" * 40 + "\n>\n" + "ACGT" * 40 + "\n")
    assert main(["scan", str(exported), "--fasta", str(fasta), "--out", str(out), "--force"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"attngen scan: error: {fasta}: record 2 has a header line without a name ('>' alone)"
    )
    assert out.read_text() == "an earlier track\n"


# A directory where no file can be made although os.access says yes to root: sysfs.
UNWRITABLE = Path("/sys")


@pytest.mark.skipif(not UNWRITABLE.is_dir(), reason="needs /sys (Linux), where no file can be made")
@pytest.mark.parametrize("option", ["--out", "--bigwig", "--tsv"])
def test_a_place_where_no_file_can_be_made_is_refused_before_scanning(
    tmp_path, exported, capsys, option
):
    fasta = tmp_path / "g.fa"
    fasta.write_text(">chr1\n" + "ACGT" * 40 + "\n")
    outputs = {"--out": tmp_path / "t.bedGraph", option: UNWRITABLE / "attngen-test.out"}
    argv = ["scan", str(exported), "--fasta", str(fasta)]
    for name, path in outputs.items():
        argv += [name, str(path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    # checked before any window is scored, so there is no progress bar and no temporary name
    assert err == [
        f"attngen scan: error: {UNWRITABLE}: directory is not writable (permission denied)"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.fa"]


def test_a_bigwig_that_cannot_be_created_is_an_error_not_a_crash(tmp_path):
    from attngen_keras.genome.tracks import _write_bigwig

    pytest.importorskip("pyBigWig")
    bedgraph = tmp_path / "t.bedGraph"
    bedgraph.write_text("chr1\t0\t10\t0.5\n")
    # pyBigWig itself would print "[urlOpen] Couldn't open" and crash the process (SIGSEGV)
    with pytest.raises(FileNotFoundError):
        _write_bigwig(bedgraph, tmp_path / "missing" / "t.bw", {"chr1": 100})
    _write_bigwig(bedgraph, tmp_path / "t.bw", {"chr1": 100})
    assert (tmp_path / "t.bw").stat().st_size > 0


def test_characters_that_are_not_nucleotides_are_counted_and_reported(tmp_path, capsys):
    from attngen_keras.genome.scan import _report, _summary

    fasta = tmp_path / "mixed.fa"
    fasta.write_text(">dna\nACGTRYNNacgtXX\n>protein\nMKVLAAGQWE\n")
    tiler = Tiler(fasta, 4, 2)
    list(tiler)
    # unusual: R Y X X, then M K V L Q W E (A and G are also nucleotides); invalid: X X, then L Q E
    assert (tiler.unusual, tiler.invalid) == (11, 5) == fasta_records(fasta)[1:]  # local and Beam
    _report(fasta, _summary(tiler, [], 2, 4))
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"attngen scan: warning: {fasta}: ")
    assert "5 of 24 characters are not nucleotides or IUPAC codes (read as N)" in err[0]
    assert "46% of the characters are not A, C, G, T or N: this does not look like DNA" in err[0]
    clean = tmp_path / "clean.fa"
    clean.write_text(">dna\nACGTACGTNNacgtRY\n>rna\nACGUUUUUacgu\n")  # soft-masked, N, IUPAC, U
    tiler = Tiler(clean, 4, 2, max_n_fraction=1.0)
    list(tiler)
    _report(clean, _summary(tiler, [], 2, 4))
    assert (tiler.unusual, tiler.invalid) == (2, 0) and capsys.readouterr().err == ""


def test_a_killed_scans_part_files_are_removed_by_the_next_scan(tmp_path):
    import os
    import socket

    from attngen_keras.genome.tracks import TrackWriter

    out = tmp_path / "track.bedGraph"
    stale = tmp_path / f".track.bedGraph.parts-{socket.gethostname()}-999999999"  # no such process
    live = tmp_path / f".track.bedGraph.parts-{socket.gethostname()}-{os.getppid()}"  # running
    other_host = tmp_path / ".track.bedGraph.parts-elsewhere-999999999"  # another host's: kept
    for directory in (stale, live, other_host):
        directory.mkdir()
        (directory / "0.1").write_text("chr1\t0\t10\t0.5\n")
    # a killed scan's partial outputs (the window TSV can be large): removed too, but not a live one's
    host = socket.gethostname()
    stale_files = [
        tmp_path / f".w.tsv.gz.partial-{host}-999999999",
        tmp_path / f".track.bedGraph.partial-{host}-999999999",
    ]
    live_file = tmp_path / f".w.tsv.gz.partial-{host}-{os.getppid()}"
    for path in (*stale_files, live_file):
        path.write_text("partial")
    with TrackWriter(out, ["bg", "target"], 20, 10, tsv=tmp_path / "w.tsv.gz") as tracks:
        tracks.add_batch([("chr1", 0)], [[0.4, 0.6]])
        tracks.finish({"chr1": 40})
    assert not stale.exists() and (live / "0.1").exists() and (other_host / "0.1").exists()
    assert not any(p.exists() for p in stale_files) and live_file.exists()
    assert out.read_text().startswith("chr1\t5\t15\t0.6")


def test_gzipped_window_tsv_is_the_same_bytes_for_the_same_rows(tmp_path):
    """No time stamp or file name in the gzip header: two scans' TSVs compare equal with `cmp`."""
    import gzip
    import time

    from attngen_keras.genome.tracks import TrackWriter

    def write(name):
        with TrackWriter(
            tmp_path / f"{name}.bg", ["bg", "target"], 20, 10, tsv=tmp_path / f"{name}.tsv.gz"
        ) as tracks:
            tracks.add_batch([("chr1", 0), ("chr1", 10)], [[0.4, 0.6], [0.3, 0.7]])
            tracks.finish({"chr1": 40})
        return (tmp_path / f"{name}.tsv.gz").read_bytes()

    first = write("a")
    time.sleep(1.1)  # the gzip header's time stamp has a resolution of one second
    assert write("b") == first
    assert gzip.decompress(first).decode().splitlines() == [
        "chrom\tstart\tend\tprob_bg\tprob_target",
        "chr1\t0\t20\t0.400000\t0.600000",
        "chr1\t10\t30\t0.300000\t0.700000",
    ]


def test_class_option_tracks_the_chosen_class(tmp_path, exported, capsys):
    """`--class`: a binary model's track of its first class is 1 - the default track; a multi-class
    model's chosen class goes to OUT itself; an unknown class is a one-line error."""
    records, _ = genome()
    fasta = write_genome(tmp_path / "g.fa", records)
    argv = ["scan", str(exported), "--fasta", str(fasta), "--stride", "10"]
    assert main([*argv, "--out", str(tmp_path / "motif.bedGraph")]) == 0
    assert main([*argv, "--out", str(tmp_path / "bg.bedGraph"), "--class", "background"]) == 0
    motif, background = (read_bedgraph(tmp_path / f"{n}.bedGraph") for n in ("motif", "bg"))
    assert [r[:3] for r in background] == [r[:3] for r in motif] and len(motif) > 100
    assert all(b[3] == pytest.approx(1 - m[3], abs=2e-6) for b, m in zip(background, motif))
    assert max(m[3] for m in motif) > 0.9  # the planted motifs: the two tracks differ
    capsys.readouterr()
    out = tmp_path / "none.bedGraph"
    assert main([*argv, "--out", str(out), "--class", "Motif"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"attngen scan: error: {exported}: --class 'Motif' is not one of the model's classes "
        "(background, motif)"
    )
    assert not out.exists()
    # a multi-class model: the chosen class's track is OUT, and equals its per-class track
    three = Scorer.from_model(motif_model(3), class_names(3), L)
    scan_genome(three, fasta, tmp_path / "all.bedGraph", stride=10, show_progress=False)
    summary = scan_genome(three, fasta, tmp_path / "neutral.bedGraph", stride=10,
                          show_progress=False, target_class="neutral")  # fmt: skip
    assert summary["outputs"] == [str(tmp_path / "neutral.bedGraph")]
    assert (tmp_path / "neutral.bedGraph").read_text() == (
        tmp_path / "all.neutral.bedGraph"
    ).read_text()


def test_an_output_that_names_an_input_or_another_output_is_refused(tmp_path, exported, capsys):
    """`--out genome.fa` (a slip of tab completion) must not destroy the genome; nor two outputs one file."""
    records, _ = genome()
    fasta = write_genome(tmp_path / "g.fa", records)
    original = fasta.read_bytes()
    bed = tmp_path / "r.bed"
    bed.write_text("chr1\t0\t500\n")
    (tmp_path / "old.bg").write_text("an earlier track\n")
    (tmp_path / "link.fa").symlink_to(fasta)
    base = ["scan", str(exported), "--fasta", str(fasta)]
    cases = [
        (["--out", str(fasta)], fasta, "--out names the same file as --fasta"),
        (["--out", str(tmp_path / "link.fa")], tmp_path / "link.fa", "--out names the same file as --fasta"),
        (["--out", str(bed), "--regions", str(bed)], bed, "--out names the same file as --regions"),
        (["--out", str(tmp_path / "t.bg"), "--tsv", str(fasta)], fasta, "--tsv names the same file as --fasta"),
        (["--out", str(tmp_path / "old.bg"), "--tsv", str(tmp_path / "old.bg")], tmp_path / "old.bg",
         "--tsv and --out name the same file"),
        (["--out", str(tmp_path / "old.bg"), "--bigwig", str(tmp_path / "old.bg")], tmp_path / "old.bg",
         "--bigwig and --out name the same file"),
    ]  # fmt: skip
    for extra, path, problem in cases:
        assert main([*base, *extra]) == 2, extra
        assert capsys.readouterr().err.strip().splitlines()[
            -1
        ] == f"attngen scan: error: {path}: {problem}" + (
            ", which it would overwrite" if "same file as" in problem else ""
        )
    assert fasta.read_bytes() == original and bed.read_text() == "chr1\t0\t500\n"
    assert (tmp_path / "old.bg").read_text() == "an earlier track\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.fa", "link.fa", "old.bg", "r.bed"]


@pytest.mark.parametrize("option", ["--out", "--bigwig", "--tsv"])
def test_an_existing_output_is_replaced_only_with_force(tmp_path, exported, capsys, option):
    """Refused before any work (as `predict`), replaced with --force when the new one is complete."""
    records, _ = genome()
    fasta = write_genome(tmp_path / "g.fa", records)
    paths = {"--out": tmp_path / "t.bedGraph", "--bigwig": tmp_path / "t.bw",
             "--tsv": tmp_path / "w.tsv"}  # fmt: skip
    argv = ["scan", str(exported), "--fasta", str(fasta)]
    for name, path in paths.items():
        argv += [name, str(path)]
    paths[option].write_text("an earlier result\n")
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"attngen scan: error: {paths[option]}: already exists; use --force to replace it, "
        "or choose another name"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.fa", paths[option].name]
    assert paths[option].read_text() == "an earlier result\n"
    assert main([*argv, "--force"]) == 0
    assert all(p.stat().st_size > 0 for p in paths.values())
    assert paths[option].read_bytes()[:18] != b"an earlier result\n"


@pytest.mark.parametrize("chunk", [16, 1 << 20])
def test_every_short_or_out_of_range_region_is_counted(tmp_path, chunk):
    """A short region far into a record (not yet read when it is met) is counted as short; a region
    past its record's end is counted apart; the Beam runner's counts agree."""
    from attngen_keras.genome.beam import _beyond, _short

    rng = np.random.default_rng(4)
    records = {"chr1": random_dna(rng, 1000), "chr2": random_dna(rng, 300)}
    fasta = write_genome(tmp_path / "g.fa", records)
    bed = tmp_path / "r.bed"
    bed.write_text(
        "\ufeffchr1\t100\t150\n"  # short, near the start (and the file starts with a BOM)
        "chr1\t300\t400\n"  # long: windows 300, 320, 340
        "chr1\t800\t850\n"  # short, far in
        "chr1\t990\t1200\n"  # clipped to 10 bases: short
        "chr1\t2000\t2100\n"  # past the end
        "chr2\t500\t600\n",  # past the end
        encoding="utf-8",
    )
    regions = read_regions(bed)
    assert sorted(regions) == ["chr1", "chr2"]
    tiler = Tiler(fasta, L, 20, regions, chunk_bases=chunk)
    assert [(c, s) for c, s, _ in tiler] == [("chr1", 300), ("chr1", 320), ("chr1", 340)]
    assert (tiler.short, tiler.beyond) == (3, 2)
    sizes = {c: len(v) for c, v in records.items()}
    assert (_short(sizes, regions, L), _beyond(sizes, regions)) == (3, 2)
    # chr1 990-1200 runs past the end with 10 bases inside: short, not scored up to the end
    assert regions_past_the_end(regions, sizes, L) == 0
    assert regions_past_the_end({"chr1": [(900, 1200)]}, sizes, L) == 1  # 100 bases inside


def test_scan_warns_of_regions_past_the_end_and_of_an_empty_track(tmp_path, exported, capsys):
    records, _ = genome()
    fasta = write_genome(tmp_path / "g.fa", records)
    bed = tmp_path / "r.bed"
    bed.write_text("chr1\t90000000\t90001000\n")
    out = tmp_path / "t.bedGraph"
    assert (
        main(
            ["scan", str(exported), "--fasta", str(fasta), "--out", str(out), "--regions", str(bed)]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert (
        "1 region of --regions starts at or past the end of its record, not scored (another reference "
        "build?); no window was scored: the tracks are empty" in err
    )
    assert out.read_text() == ""
    size = len(records["chr1"])  # a region running past the end is scored up to it, and said
    bed.write_text(f"chr1\t{size - 500}\t{size + 1000}\n")
    argv = ["scan", str(exported), "--fasta", str(fasta), "--out", str(out), "--regions", str(bed)]
    assert main([*argv, "--force"]) == 0
    assert (
        "1 region of --regions runs past the end of its record, scored up to that end (another "
        "reference build?)" in capsys.readouterr().err
    )
    assert int(out.read_text().strip().splitlines()[-1].split("\t")[2]) <= size
    assert main(["scan", str(exported), "--fasta", str(tmp_path), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"attngen scan: error: {tmp_path}: is a directory, not a file"
    )


def test_an_empty_record_is_short_not_a_region_past_the_end(tmp_path):
    """Without --regions, a header with no sequence is a record shorter than the window (as Beam counts)."""
    from attngen_keras.genome.beam import _beyond, _short

    rng = np.random.default_rng(1)
    records = {"empty": "", "chr1": random_dna(rng, 200), "tiny": "ACGT"}
    fasta = tmp_path / "g.fa"
    fasta.write_text("".join(f">{name}\n{seq}\n" for name, seq in records.items()))
    tiler = Tiler(fasta, L, 20)
    assert len(list(tiler)) == len(range(0, 200 - L + 1, 20))
    assert (tiler.short, tiler.beyond) == (2, 0)
    sizes = {name: len(seq) for name, seq in records.items()}
    assert (_short(sizes, None, L), _beyond(sizes, None)) == (2, 0)


def test_a_scan_that_fails_while_finishing_leaves_no_partial_files(tmp_path, monkeypatch):
    from attngen_keras.genome import tracks

    def broken(bedgraph, out, sizes):
        out.write_bytes(b"half a bigwig")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tracks, "_write_bigwig", broken)
    (tmp_path / "t.bw").write_text("an earlier bigwig")
    with (
        pytest.raises(OSError, match="No space"),
        tracks.TrackWriter(
            tmp_path / "t.bg",
            ["bg", "target"],
            20,
            10,
            bigwig=tmp_path / "t.bw",
            tsv=tmp_path / "w.tsv.gz",
            force=True,
        ) as writer,
    ):
        writer.add_batch([("chr1", 0)], [[0.4, 0.6]])
        writer.finish({"chr1": 40})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.bw"]
    assert (tmp_path / "t.bw").read_text() == "an earlier bigwig"
