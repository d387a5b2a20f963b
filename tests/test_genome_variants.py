"""`attngen variants`: REF/ALT windows built by hand must score exactly as `attngen predict` scores them."""

import csv
import gzip
import os

import numpy as np
import pytest
from test_genome_scan import MOTIF, K, L, motif_model, random_dna, write_genome

from attngen_keras.cli import main
from attngen_keras.genome.variants import COLUMNS, INFO_TAGS

pysam = pytest.importorskip(
    "pysam", reason='the genome extra is not installed: pip install -e ".[genome]"'
)

HALF = L // 2


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from attngen_keras.export import export_model

    root = tmp_path_factory.mktemp("model") / "motif"
    return export_model(motif_model(), root, ["background", "motif"], L)


def reference():
    rng = np.random.default_rng(3)
    chr1 = list(random_dna(rng, 800))
    chr1[400 : 400 + K] = MOTIF  # a SNP at 403 (1-based 404) breaks it
    return {"chr1": "".join(chr1), "chr2": random_dna(rng, 300)}


def write_vcf(path, records, sizes):
    header = ["##fileformat=VCFv4.2", *[f"##contig=<ID={c},length={n}>" for c, n in sizes.items()]]
    header.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")
    lines = ["\t".join([c, str(p), i, r, a, ".", ".", "."]) for c, p, i, r, a in records]
    path.write_text("\n".join(header + lines) + "\n")
    return path


def hand_windows(seq, pos, ref, alt):
    """The REF and ALT windows, built directly from the definition (1-based pos)."""
    p = pos - 1
    ref_window = seq[p - HALF : p - HALF + L]
    alt_window = (seq[p - HALF : p] + alt + seq[p + len(ref) :])[:L]
    return ref_window, alt_window


def test_effects_equal_predict_on_hand_built_windows(tmp_path, exported, capsys):
    from attngen_keras.predict import predict_file

    genome = reference()
    fasta = write_genome(tmp_path / "ref.fa.gz", genome, compression="bgzip")
    chr1, chr2 = genome["chr1"], genome["chr2"]
    records = [
        ("chr1", 404, "snp", chr1[403], "C,T,G"),  # multi-allelic: split in three rows
        ("chr1", 300, "ins", chr1[299], chr1[299] + "GATTACAG"),  # insertion that creates the motif
        ("chr1", 395, "del", chr1[394:404], chr1[394]),  # deletion of 9 bases into the motif
        ("chr1", 500, "mism", "A" if chr1[499] != "A" else "C", "G"),  # REF differs from the genome
        ("chr2", 10, "edge", chr2[9], "A" if chr2[9] != "A" else "C"),  # within L/2 of the start
        (
            "chr2",
            290,
            "edge2",
            chr2[289],
            "A" if chr2[289] != "A" else "C",
        ),  # within L/2 of the end
        ("chrZ", 100, "nochrom", "A", "C"),
        ("chr2", 150, "sym", chr2[149], "<DEL>"),
    ]
    alts = [a for r in records for a in r[4].split(",")]
    vcf = write_vcf(tmp_path / "v.vcf", records, {"chr1": 800, "chr2": 300, "chrZ": 1000})
    out, vcf_out = tmp_path / "effects.tsv", tmp_path / "annotated.vcf.gz"
    argv = ["variants", str(exported), "--vcf", str(vcf), "--fasta", str(fasta), "--out", str(out)]
    assert main([*argv, "--vcf-out", str(vcf_out)]) == 0
    err = capsys.readouterr().err
    assert "1 allele whose REF differs from the genome (ref_match false)" in err
    assert f"2 alleles within {HALF} nt of the start or end of their record, not scored" in err
    assert (
        "1 allele on chromosomes absent from the FASTA ('chrZ'; the FASTA has 'chr1', 'chr2')"
        in err
        and "1 symbolic ALT allele," in err
    )
    with open(out) as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert list(rows[0]) == COLUMNS
    assert [r["alt"] for r in rows] == alts
    assert [r["id"] for r in rows[:3]] == ["snp"] * 3
    scored = [r for r in rows if r["p_ref"]]
    assert [r["id"] for r in scored] == ["snp", "snp", "snp", "ins", "del", "mism"]
    # the same windows, built by hand, through `attngen predict`
    windows = tmp_path / "windows.fa"
    with open(windows, "w") as handle:
        for k, r in enumerate(scored):
            ref_window, alt_window = hand_windows(chr1, int(r["pos"]), r["ref"], r["alt"])
            assert len(ref_window) == len(alt_window) == L
            handle.write(f">ref{k}\n{ref_window}\n>alt{k}\n{alt_window}\n")
    predict_file(exported, windows, tmp_path / "p.tsv", show_progress=False)
    with open(tmp_path / "p.tsv") as handle:
        predicted = {r["id"]: r["prob_motif"] for r in csv.DictReader(handle, delimiter="\t")}
    for k, r in enumerate(scored):
        assert (r["p_ref"], r["p_alt"]) == (predicted[f"ref{k}"], predicted[f"alt{k}"])
        assert float(r["delta"]) == pytest.approx(float(r["p_alt"]) - float(r["p_ref"]), abs=2e-6)
    # importance_*: the export's `saliency` signature on the same windows, over the allele's bases
    from attngen_keras.genome.scoring import Scorer

    saliency = Scorer.load(exported).importance
    for r in scored:
        ref_window, alt_window = hand_windows(chr1, int(r["pos"]), r["ref"], r["alt"])
        maps = saliency([ref_window.encode(), alt_window.encode()])
        for column, allele, importance in (
            ("importance_ref", r["ref"], maps[0]), ("importance_alt", r["alt"], maps[1]),
        ):  # fmt: skip
            expected = importance[HALF : HALF + len(allele)].mean()
            assert float(r[column]) == pytest.approx(expected, rel=1e-5, abs=1e-9), column
    by_id = {(r["id"], r["alt"]): r for r in rows}
    assert (
        float(by_id[("snp", "C")]["delta"]) < -0.9 and float(by_id[("ins", alts[3])]["delta"]) > 0.9
    )
    assert float(by_id[("snp", "C")]["log_odds_ratio"]) < -5
    assert (
        by_id[("mism", "G")]["ref_match"] == "false" and by_id[("snp", "C")]["ref_match"] == "true"
    )
    assert by_id[("edge", rows[6]["alt"])]["note"].startswith("too close to the record end")
    assert by_id[("nochrom", "C")]["note"] == "chromosome not in the FASTA"
    assert by_id[("sym", "<DEL>")]["note"].startswith("symbolic")
    # the annotated VCF parses with pysam and carries the same numbers, one per ALT allele
    with pysam.VariantFile(str(vcf_out)) as reader:
        assert set(INFO_TAGS) <= set(reader.header.info)
        annotated = list(reader)
    assert len(annotated) == len(records)
    snp = annotated[0]
    assert snp.alts == ("C", "T", "G")
    assert snp.info["ATTNGEN_PALT"] == pytest.approx(
        [float(by_id[("snp", a)]["p_alt"]) for a in "CTG"], abs=1e-6
    )
    assert snp.info["ATTNGEN_DELTA"][0] == pytest.approx(
        float(by_id[("snp", "C")]["delta"]), abs=1e-6
    )
    assert "ATTNGEN_PREF" not in annotated[6].info  # chrZ: not scored
    # the REF mismatch is in the VCF too, as a flag on its record alone
    assert [r.id for r in annotated if "ATTNGEN_REF_MISMATCH" in r.info] == ["mism"]


def test_hand_written_and_plain_gzip_vcfs(tmp_path, exported, capfd):
    """A VCF without ##contig/##INFO lines gets its annotated copy (htslib would exit the
    process writing its records); a plain-gzip (not bgzip) VCF is read like the plain one."""

    genome = reference()
    fasta = write_genome(tmp_path / "ref.fa", genome)
    chr1 = genome["chr1"]
    lines = [
        "##fileformat=VCFv4.2",
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
        f"chr1\t404\tsnp\t{chr1[403]}\tC,T\t.\tPASS\tDP=10",
        f"chr1\t300\tins\t{chr1[299]}\t{chr1[299]}GATTACAG\t.\tPASS\tDP=7",
    ]
    bare = tmp_path / "bare.vcf"
    bare.write_text("\n".join(lines) + "\n")
    zipped = tmp_path / "bare.vcf.gz"
    zipped.write_bytes(gzip.compress(bare.read_bytes()))
    import socket
    import subprocess

    finished = subprocess.Popen(["true"])
    finished.wait()  # a process id that no longer runs
    stale = tmp_path / f".plain.tsv.partial-{socket.gethostname()}-{finished.pid}"
    elsewhere = tmp_path / ".plain.tsv.partial-otherhost-1"  # another host's work: kept
    stale.write_text("left by a killed run")
    elsewhere.write_text("in progress elsewhere")
    effects = {}
    for name, vcf in (("plain", bare), ("gzip", zipped)):
        out, annotated = tmp_path / f"{name}.tsv", tmp_path / f"{name}.vcf.gz"
        argv = ["variants", str(exported), "--vcf", str(vcf), "--fasta", str(fasta),
                "--out", str(out), "--vcf-out", str(annotated)]  # fmt: skip
        capfd.readouterr()  # (htslib's note that the previous output has no index)
        assert main(argv) == 0
        err = capfd.readouterr().err
        assert "[E::" not in err and "Traceback" not in err, err
        with open(out) as handle:
            effects[name] = list(csv.DictReader(handle, delimiter="\t"))
        with pysam.VariantFile(str(annotated)) as reader:
            assert "chr1" in reader.header.contigs and set(INFO_TAGS) <= set(reader.header.info)
            # the input's undefined DP gets a definition that says so (htslib's says "Dummy")
            assert reader.header.info["DP"].description == (
                "not defined in the input VCF; definition added by attngen variants"
            )
            records = list(reader)
        assert [r.id for r in records] == ["snp", "ins"]
        assert records[0].info["DP"] in (10, "10")  # the input's own INFO kept
        assert records[0].info["ATTNGEN_PALT"] == pytest.approx(
            [float(row["p_alt"]) for row in effects[name][:2]], abs=1e-6
        )
        # and the VCF prints the TSV's numbers (6 decimals), not more digits
        text = gzip.decompress(annotated.read_bytes()).decode()
        tags = dict(
            item.split("=")
            for item in text.splitlines()[-2].split("\t")[7].split(";")
            if "=" in item
        )
        for tag, column in (("ATTNGEN_PREF", "p_ref"), ("ATTNGEN_PALT", "p_alt"),
                            ("ATTNGEN_DELTA", "delta")):  # fmt: skip
            printed = [float(v) for v in tags[tag].split(",")]
            assert printed == [float(row[column]) for row in effects[name][:2]], (tag, text)
    assert "gzip (not bgzip)" in err  # the note of the gzip run
    assert not stale.exists() and elsewhere.exists()
    assert effects["gzip"] == effects["plain"] and len(effects["plain"]) == 3


def test_an_undeclared_end_of_a_symbolic_allele_is_declared_an_integer(tmp_path, exported, capfd):
    """htslib declares an undefined END a String, and pysam crashed writing such a record (a
    TypeError, exit 1); the specification's reserved structural-variant tags get their types."""
    genome = reference()
    fasta = write_genome(tmp_path / "ref.fa", genome)
    chr1 = genome["chr1"]
    vcf = tmp_path / "sv.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=800>\n"
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        f"chr1\t200\tsym\t{chr1[199]}\t<DEL>\t.\t.\tEND=260;SVTYPE=DEL;SVLEN=-60;IMPRECISE\n"
        f"chr1\t404\tsnp\t{chr1[403]}\tC\t.\t.\t.\n"
    )
    out, annotated = tmp_path / "e.tsv", tmp_path / "a.vcf.gz"
    argv = ["variants", str(exported), "--vcf", str(vcf), "--fasta", str(fasta),
            "--out", str(out), "--vcf-out", str(annotated)]  # fmt: skip
    assert main(argv) == 0, capfd.readouterr().err
    with open(out) as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert rows[0]["note"].startswith("symbolic") and rows[1]["p_alt"]
    with pysam.VariantFile(str(annotated)) as reader:
        info = reader.header.info
        assert (info["END"].number, info["END"].type) == (1, "Integer")
        assert (info["SVLEN"].type, info["SVTYPE"].type, info["IMPRECISE"].type) == (
            "Integer", "String", "Flag",
        )  # fmt: skip
        assert "not defined in the input VCF" in info["END"].description
        records = list(reader)
    assert records[0].stop == 260 and records[0].info["SVLEN"] == (-60,)
    assert records[0].info["SVTYPE"] == "DEL" and records[0].info["IMPRECISE"] is True
    assert "ATTNGEN_PALT" not in records[0].info and "ATTNGEN_PALT" in records[1].info


def test_a_record_htslib_cannot_write_back_is_a_one_line_error(
    tmp_path, exported, capfd, monkeypatch
):
    """Without the reserved tags' types (htslib's String END): an error naming the record, exit 2."""
    from attngen_keras.genome import variants

    monkeypatch.setattr(variants, "RESERVED_INFO", {})
    fasta = write_genome(tmp_path / "ref.fa", reference())
    vcf = tmp_path / "sv.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=800>\n"
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        f"chr1\t200\tsym\t{reference()['chr1'][199]}\t<DEL>\t.\t.\tEND=260\n"
    )
    argv = ["variants", str(exported), "--vcf", str(vcf), "--fasta", str(fasta),
            "--out", str(tmp_path / "e.tsv"), "--vcf-out", str(tmp_path / "a.vcf.gz")]  # fmt: skip
    assert main(argv) == 2
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith(
            f"attngen variants: error: {vcf}: record chr1:200: cannot be written to the annotated VCF ("
        )
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.fa", "sv.vcf"]


def test_a_reference_with_a_duplicate_record_name_is_refused(tmp_path, exported, capsys):
    """faidx indexes the first record of a name and ignores the rest: the variant would be scored
    on whichever copy came first."""
    genome = reference()
    fasta = write_genome(tmp_path / "ref.fa", {**genome, "chr3": genome["chr2"]})
    fasta.write_text(fasta.read_text().replace(">chr3", ">chr1"))
    vcf = write_vcf(tmp_path / "v.vcf", [("chr1", 404, "snp", genome["chr1"][403], "C")],
                    {"chr1": 800, "chr2": 300})  # fmt: skip
    argv = ["variants", str(exported), "--vcf", str(vcf), "--fasta", str(fasta),
            "--out", str(tmp_path / "e.tsv")]  # fmt: skip
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"attngen variants: error: {fasta}: record 'chr1': duplicate record name in the FASTA"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.fa", "v.vcf"]


def test_a_plain_fastas_own_index_is_checked_for_duplicates_and_staleness(tmp_path):
    """`samtools faidx` skipped the second record of a name when it built the `.fai` beside the
    FASTA: the header lines between the indexed records tell."""
    from attngen_keras.data.errors import DataError
    from attngen_keras.genome.reference import check_index, random_access_path

    def indexed(name, text):
        path = tmp_path / name
        path.write_text(text)
        pysam.faidx(str(path))
        return path

    good = indexed("good.fa", ">chr1 desc\n" + "A" * 60 + "\n" + "C" * 7 + "\n\n>chr2\n" + "G" * 9)
    assert random_access_path(good)[1] == f"{good}.fai"  # its own index, checked and used
    crlf = tmp_path / "crlf.fa"
    crlf.write_bytes(b">a\r\n" + b"ACGT" * 15 + b"\r\nAC\r\n>b\r\nGG\r\n")
    pysam.faidx(str(crlf))
    assert check_index(crlf, f"{crlf}.fai")
    for order in (("chr1", "chr2", "chr1"), ("chr1", "chr1", "chr2")):
        text = "".join(f">{name}\n{'ACGT' * (5 + i)}\n" for i, name in enumerate(order))
        dup = indexed(f"dup{order[1]}.fa", text)
        with pytest.raises(DataError) as error:
            random_access_path(dup)
        assert str(error.value) == f"{dup}: record 'chr1': duplicate record name in the FASTA"
    stale = indexed("stale.fa", ">chr1\nACGT\n>chr2\nGGGG\n")
    stale.write_text(">chr1\nACGT\n>new\nTT\n>chr2\nGGGG\n")
    with pytest.raises(DataError, match="does not match the FASTA .made before it changed"):
        random_access_path(stale)


def test_a_bgzip_fastas_own_index_older_than_it_is_not_used(tmp_path, exported, capsys):
    """A bgzip FASTA rewritten after `samtools faidx`: its `.fai`/`.gzi` would be read at stale
    offsets (a new-user trial got a different track on Beam and 0 of 20 alleles scored). An index
    older than its FASTA is replaced by a fresh one, with a note."""
    from attngen_keras.genome.reference import random_access_path

    genome = reference()
    path = tmp_path / "g.fa.gz"
    other = {"chr1": genome["chr2"] + genome["chr1"][:500], "chr2": genome["chr1"][500:]}
    pysam.tabix_compress(str(write_genome(tmp_path / "old.fa", other)), str(path))
    pysam.faidx(str(path))  # the index of another genome, then the FASTA replaced
    assert random_access_path(path)[1:] == (f"{path}.fai", f"{path}.gzi")  # its own, used
    os.remove(path)
    pysam.tabix_compress(str(write_genome(tmp_path / "g.fa", genome)), str(path))
    later = os.stat(f"{path}.fai").st_mtime + 5
    os.utime(path, (later, later))  # (the file system's clock may be coarse)
    fresh = random_access_path(path, quiet=True)
    assert fresh[1] != f"{path}.fai" and fresh[2] != f"{path}.gzi"
    chr1 = genome["chr1"]
    snv = ("chr1", 404, "a", chr1[403], "A" if chr1[403] != "A" else "C")
    vcf = write_vcf(tmp_path / "v.vcf", [snv], {"chr1": 800, "chr2": 300})
    argv = ["variants", str(exported), "--vcf", str(vcf), "--fasta", str(path)]
    assert main([*argv, "--out", str(tmp_path / "e.tsv")]) == 0
    captured = capsys.readouterr()
    assert f"its index {path}.fai is older than it" in captured.err
    assert "scored 1 of 1 ALT alleles" in captured.out
    with open(tmp_path / "e.tsv") as handle:
        assert next(csv.DictReader(handle, delimiter="\t"))["ref_match"] == "true"


def test_gzip_vcf_edited_or_corrupt(tmp_path, exported, capfd):
    """An edited plain-gzip VCF is read again (not an earlier copy); a corrupt one is a one-line error."""
    import os

    genome = reference()
    fasta = write_genome(tmp_path / "ref.fa", genome)
    vcf = tmp_path / "calls.vcf.gz"
    argv = ["variants", str(exported), "--vcf", str(vcf), "--fasta", str(fasta),
            "--out", str(tmp_path / "e.tsv"), "--force"]  # fmt: skip
    ids = []
    for ident, pos in (("first", 404), ("second", 300)):
        text = write_vcf(tmp_path / "v.vcf", [("chr1", pos, ident, genome["chr1"][pos - 1], "G")],
                         {"chr1": 800})  # fmt: skip
        vcf.write_bytes(gzip.compress(text.read_bytes()))
        os.utime(vcf, ns=(1, len(ids) + 1))  # the same size, another time
        assert main(argv) == 0
        with open(tmp_path / "e.tsv") as handle:
            ids.append([row["id"] for row in csv.DictReader(handle, delimiter="\t")])
    assert ids == [["first"], ["second"]]
    capfd.readouterr()
    vcf.write_bytes(gzip.compress(text.read_bytes())[:-12] + b"\x00" * 12)  # a damaged stream
    os.utime(vcf, ns=(1, 9))
    assert main(argv) == 2
    err = capfd.readouterr().err
    assert "Traceback" not in err
    errors = [e for e in err.splitlines() if e.startswith("attngen variants: error:")]
    assert len(errors) == 1 and errors[0].startswith(
        f"attngen variants: error: {vcf}: cannot decompress the VCF"
    ), err


def test_variants_bad_vcf_is_one_line_exit_2(tmp_path, exported, capfd):
    """capfd: htslib writes its own warnings to file descriptor 2, past sys.stderr."""
    fasta = write_genome(tmp_path / "ref.fa", reference())
    vcf = tmp_path / "bad.vcf"
    vcf.write_text("this is not a VCF\n")
    argv = [
        "variants",
        str(exported),
        "--vcf",
        str(vcf),
        "--fasta",
        str(fasta),
        "--out",
        str(tmp_path / "e.tsv"),
    ]
    assert main(argv) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert not any("Traceback" in e or "[W::" in e for e in err)
    assert [e for e in err if e.startswith("attngen")] == [
        f"attngen variants: error: {vcf}: record 'line 1': not a VCF: no '#CHROM' header line "
        "before the records"
    ]
    assert not (tmp_path / "e.tsv").exists()
    vcf.write_text("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchr1\t100\tv1\tA\tC\t.\t.\t.\n")
    assert main(argv) == 2  # no ##fileformat line
    err = capfd.readouterr().err.strip().splitlines()
    assert [e for e in err if e.startswith("attngen")] == [
        f"attngen variants: error: {vcf}: record 'line 1': not a VCF: its first line must be "
        "'##fileformat=VCFv4.x' (add it above the header)"
    ]
    header = "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=800>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    good = "chr1\t100\tv1\tA\tC\t.\t.\t.\n"
    for line, problem in [
        (
            "chr1\tabc\tv2\tA\tC\t.\t.\t.",
            "record 'line 5': POS 'abc' is not a position (a whole number)",
        ),
        (
            "chr1\t120\tv2\tA",
            "record 'line 5': 4 tab-separated field(s); a VCF record has at least 8",
        ),
        ("chr1 120 v2 A C . . .", "record 'line 5': 1 tab-separated field(s)"),
    ]:
        vcf.write_text(header + good + line + "\n")
        assert main(argv) == 2
        err = capfd.readouterr().err.strip().splitlines()
        messages = [e for e in err if e.startswith("attngen")]
        assert not any("Traceback" in e or "[W::" in e for e in err), err
        assert len(messages) == 1, err
        assert messages[0].startswith(f"attngen variants: error: {vcf}: {problem}"), err
        assert not (tmp_path / "e.tsv").exists()
    # a byte-order mark before '##fileformat', and a damaged BCF, are named as such
    for content, problem in [
        (b"\xef\xbb\xbf" + (header + good).encode(), "record 'line 1': starts with a UTF-8 byte-order mark"),
        (gzip.compress(b"BCF\x02\x02" + b"\x00" * 40), "a BCF file that htslib cannot read"),
    ]:  # fmt: skip
        vcf.write_bytes(content)
        assert main(argv) == 2
        err = capfd.readouterr().err.splitlines()
        messages = [e for e in err if e.startswith("attngen variants: error:")]
        assert len(messages) == 1 and messages[0].startswith(
            f"attngen variants: error: {vcf}: {problem}"
        ), messages


def test_reference_with_ragged_lines_is_rewritten_and_scores_the_same(tmp_path, capsys):
    """faidx cannot index lines of unequal length: the reference is rewritten once, with a note."""
    from attngen_keras.genome.scoring import Scorer
    from attngen_keras.genome.variants import score_variants

    genome = reference()
    regular = write_genome(tmp_path / "regular.fa", genome)
    ragged = tmp_path / "ragged.fa"
    chr1 = genome["chr1"]
    ragged.write_text(
        ">chr1\n"
        + chr1[:7]
        + "\n"
        + chr1[7:500]
        + "\n"
        + chr1[500:]
        + "\n>chr2\n"
        + genome["chr2"]
        + "\n"
    )
    vcf = write_vcf(tmp_path / "v.vcf", [("chr1", 404, "snp", chr1[403], "C")], {"chr1": 800})
    scorer = Scorer.from_model(motif_model(), ["background", "motif"], L)
    for fasta in (regular, ragged):
        score_variants(scorer, vcf, fasta, tmp_path / f"{fasta.stem}.tsv", show_progress=False)
    assert "lines of unequal length" in capsys.readouterr().err
    assert (tmp_path / "ragged.tsv").read_text() == (tmp_path / "regular.tsv").read_text()
    assert "\tfalse\t" not in (tmp_path / "regular.tsv").read_text()


@pytest.fixture(scope="module")
def exported_attngen(tmp_path_factory):
    """A default AttnGen (attention importance), random weights, exported."""
    import keras

    from attngen_keras.export import export_model
    from attngen_keras.models import build_attngen

    keras.utils.set_random_seed(5)
    root = tmp_path_factory.mktemp("attngen") / "attngen"
    return export_model(build_attngen(L, 2), root, ["background", "motif"], L)


@pytest.mark.parametrize("both_strands", [False, True])
@pytest.mark.parametrize("importance", ["input_x_gradient", "attention"])
def test_one_forward_pass_scores_as_the_two_signatures(
    tmp_path, exported, exported_attngen, both_strands, importance
):
    """`predict_with_saliency` (one pass) and `serving_default` + `saliency` (an export made
    before the combined signature) give the same effects, for both kinds of importance."""
    from attngen_keras.genome.scoring import Scorer
    from attngen_keras.genome.variants import score_variants

    genome = reference()
    fasta = write_genome(tmp_path / "ref.fa", genome)
    chr1 = genome["chr1"]
    # SNVs across chr1, and at every base of the planted motif (400-407), where the hand-set
    # detector's gradient is not zero
    positions = [*range(150, 650, 37), *range(401, 409)]
    records = [("chr1", p, f"v{p}", chr1[p - 1], "ACGT"[(p * 7) % 4]) for p in positions]
    records = [r for r in records if r[3] != r[4]]
    vcf = write_vcf(tmp_path / "v.vcf", records, {"chr1": 800, "chr2": 300})
    one_pass = Scorer.load(exported if importance == "input_x_gradient" else exported_attngen)
    assert one_pass.facts["importance"] == importance
    assert one_pass._predict_with_saliency is not None
    two_calls = Scorer(one_pass._predict, one_pass._importance, one_pass.facts)
    tables = []
    for name, scorer in (("one", one_pass), ("two", two_calls)):
        out = tmp_path / f"{name}.tsv"
        score_variants(scorer, vcf, fasta, out, both_strands=both_strands, show_progress=False)
        with open(out) as handle:
            tables.append(list(csv.DictReader(handle, delimiter="\t")))
    assert len(tables[0]) == len(records) == len(tables[1])
    assert sum(float(r["importance_ref"]) > 0 for r in tables[0]) >= 3  # not all zero
    for one, two in zip(*tables):
        for column in ("p_ref", "p_alt", "delta", "importance_ref", "importance_alt"):
            assert float(one[column]) == pytest.approx(float(two[column]), rel=1e-5, abs=2e-6)


def test_cli_batch_size_default_is_the_library_default():
    from attngen_keras.cli import _parser
    from attngen_keras.genome.variants import DEFAULT_BATCH_SIZE

    args = _parser().parse_args(["variants", "m", "--vcf", "v", "--fasta", "f", "--out", "o"])
    assert args.batch_size == DEFAULT_BATCH_SIZE


def test_class_option_reports_that_classs_probabilities(tmp_path, exported, capsys):
    """`--class background`: p_ref/p_alt are 1 - the default's (the motif class's), the `class`
    column and the VCF's INFO descriptions name it; an unknown class is a one-line error."""
    genome = reference()
    fasta = write_genome(tmp_path / "ref.fa", genome)
    chr1 = genome["chr1"]
    records = [
        ("chr1", 404, "snp", chr1[403], "C,T"),
        ("chr1", 300, "ins", chr1[299], chr1[299] + "GATTACAG"),
    ]
    vcf = write_vcf(tmp_path / "v.vcf", records, {"chr1": 800, "chr2": 300})
    argv = ["variants", str(exported), "--vcf", str(vcf), "--fasta", str(fasta)]
    rows = {}
    for name, extra in (("default", []), ("background", ["--class", "background"])):
        out = tmp_path / f"{name}.tsv"
        assert (
            main([*argv, "--out", str(out), "--vcf-out", str(tmp_path / f"{name}.vcf"), *extra])
            == 0
        )
        with open(out) as handle:
            rows[name] = list(csv.DictReader(handle, delimiter="\t"))
    assert [r["class"] for r in rows["default"]] == ["motif"] * 3
    assert [r["class"] for r in rows["background"]] == ["background"] * 3
    for default, chosen in zip(rows["default"], rows["background"]):
        for column in ("p_ref", "p_alt"):
            assert float(chosen[column]) == pytest.approx(1 - float(default[column]), abs=2e-6)
        assert float(chosen["log_odds_ratio"]) == pytest.approx(
            -float(default["log_odds_ratio"]), abs=1e-3
        )
    assert max(abs(float(r["delta"])) for r in rows["default"]) > 0.5  # the classes differ here
    with pysam.VariantFile(str(tmp_path / "background.vcf")) as reader:
        assert "probability of class background" in reader.header.info["ATTNGEN_PREF"].description
    with pysam.VariantFile(str(tmp_path / "default.vcf")) as reader:
        assert "probability of class motif" in reader.header.info["ATTNGEN_PALT"].description
    capsys.readouterr()
    out = tmp_path / "none.tsv"
    assert main([*argv, "--out", str(out), "--class", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"attngen variants: error: {exported}: --class '2' is not one of the model's classes (background, motif)"
    )
    assert not out.exists()


def test_variants_outputs_that_name_an_input_or_each_other_are_refused(tmp_path, exported, capsys):
    genome = reference()
    fasta = write_genome(tmp_path / "ref.fa", genome)
    vcf = write_vcf(
        tmp_path / "v.vcf", [("chr1", 404, "snp", genome["chr1"][403], "C")], {"chr1": 800}
    )
    before = {p: p.read_bytes() for p in (fasta, vcf)}
    base = ["variants", str(exported), "--vcf", str(vcf), "--fasta", str(fasta)]
    same = tmp_path / "x.out"
    same.write_text("kept\n")
    cases = [
        (["--out", str(vcf)], vcf, "--out names the same file as --vcf, which it would overwrite"),
        (["--out", str(fasta)], fasta, "--out names the same file as --fasta, which it would overwrite"),
        (["--out", str(tmp_path / "e.tsv"), "--vcf-out", str(vcf)], vcf,
         "--vcf-out names the same file as --vcf, which it would overwrite"),
        (["--out", str(same), "--vcf-out", str(same)], same, "--vcf-out and --out name the same file"),
    ]  # fmt: skip
    for extra, path, problem in cases:
        assert main([*base, *extra]) == 2, extra
        assert capsys.readouterr().err.strip() == f"attngen variants: error: {path}: {problem}"
    assert all(p.read_bytes() == b for p, b in before.items()) and same.read_text() == "kept\n"
    assert not (tmp_path / "e.tsv").exists()


@pytest.mark.parametrize("option", ["--out", "--vcf-out"])
def test_an_existing_output_is_replaced_only_with_force(tmp_path, exported, capsys, option):
    """Refused before any work (as `predict`), replaced with --force when the new one is complete."""
    genome = reference()
    fasta = write_genome(tmp_path / "ref.fa", genome)
    vcf = write_vcf(
        tmp_path / "v.vcf", [("chr1", 404, "snp", genome["chr1"][403], "C")], {"chr1": 800}
    )
    paths = {"--out": tmp_path / "e.tsv", "--vcf-out": tmp_path / "a.vcf"}
    argv = ["variants", str(exported), "--vcf", str(vcf), "--fasta", str(fasta),
            "--out", str(paths["--out"]), "--vcf-out", str(paths["--vcf-out"])]  # fmt: skip
    paths[option].write_text("an earlier result\n")
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        f"attngen variants: error: {paths[option]}: already exists; use --force to replace it, "
        "or choose another name"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["ref.fa", "v.vcf", paths[option].name]
    )
    assert paths[option].read_text() == "an earlier result\n"
    assert main([*argv, "--force"]) == 0
    assert paths["--out"].read_text().startswith("chrom\tpos\tid\tref\talt")
    assert paths["--vcf-out"].read_text().startswith("##fileformat=VCF")


def test_an_allele_beyond_the_record_end_is_told_apart_from_one_near_it(tmp_path, exported, capsys):
    """The symptom of a VCF of another build: POS past the record's end is not a REF mismatch."""
    genome = reference()
    fasta = write_genome(tmp_path / "ref.fa", genome)
    chr2 = genome["chr2"]
    records = [
        ("chr2", 290, "near", chr2[289], "A" if chr2[289] != "A" else "C"),
        ("chr2", 300, "straddles", chr2[299] + "A", "A"),  # its REF's second base is past the end
        ("chr2", 5000, "past", "A", "G"),
    ]
    vcf = write_vcf(tmp_path / "v.vcf", records, {"chr1": 800, "chr2": 6000})
    out = tmp_path / "e.tsv"
    assert (
        main(
            ["variants", str(exported), "--vcf", str(vcf), "--fasta", str(fasta), "--out", str(out)]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert (
        "2 alleles beyond the end of their record, e.g. chr2:300 on a record of 300 bp: is the FASTA "
        "the VCF's reference build? not scored" in err
    )
    assert (
        "1 allele within 30 nt of the start or end of their record" in err
        and "ref_match false" not in err
    )
    with open(out) as handle:
        rows = {r["id"]: r for r in csv.DictReader(handle, delimiter="\t")}
    assert (
        rows["near"]["note"].startswith("too close to the record end")
        and rows["near"]["ref_match"] == "true"
    )
    for name in ("straddles", "past"):
        assert rows[name]["note"].startswith("REF allele beyond the end of the record")
        assert rows[name]["ref_match"] == "" and rows[name]["p_ref"] == ""


@pytest.mark.skipif(
    not os.path.isdir("/sys"), reason="needs /sys (Linux), where no file can be made"
)
@pytest.mark.parametrize("option", ["--out", "--vcf-out"])
def test_a_place_where_no_file_can_be_made_is_refused_before_scoring(
    tmp_path, exported, capsys, option
):
    genome = reference()
    fasta = write_genome(tmp_path / "ref.fa", genome)
    vcf = write_vcf(
        tmp_path / "v.vcf", [("chr1", 404, "snp", genome["chr1"][403], "C")], {"chr1": 800}
    )
    paths = {"--out": tmp_path / "e.tsv", "--vcf-out": tmp_path / "a.vcf.gz"}
    paths[option] = "/sys/attngen-test.out"  # os.access says yes to root; no file can be made
    argv = ["variants", str(exported), "--vcf", str(vcf), "--fasta", str(fasta)]
    for name, path in paths.items():
        argv += [name, str(path)]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        "attngen variants: error: /sys: directory is not writable (permission denied)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.fa", "v.vcf"]


def test_a_vcf_writer_that_cannot_create_its_file_names_the_users_path(tmp_path, monkeypatch):
    import pysam

    from attngen_keras.files import FileError, partial_path
    from attngen_keras.genome import variants

    genome = reference()
    vcf = write_vcf(
        tmp_path / "v.vcf", [("chr1", 404, "snp", genome["chr1"][403], "C")], {"chr1": 800}
    )
    out = tmp_path / "a.vcf.gz"

    def refuse(path, mode="r", **kwargs):
        if "w" in mode:  # what pysam raises when htslib cannot open the file
            raise OSError(f"could not open file `{path}` (mode='{mode}')")
        return real(path, mode, **kwargs)

    real = pysam.VariantFile
    monkeypatch.setattr(pysam, "VariantFile", refuse)
    with pytest.raises(FileError) as caught:
        variants._write_vcf(vcf, partial_path(out), {}, compressed=True)
    assert str(caught.value) == f"{out}: cannot be created (VCF writer)"


def test_invalid_characters_in_a_ref_window_are_counted_and_read_as_n(tmp_path, exported, capsys):
    """A REF window holding characters that are neither nucleotides nor IUPAC codes is scored as if
    they were N, and the alleles with such windows are counted on stderr."""
    genome = reference()
    chr1 = genome["chr1"]
    bad = dict(genome, chr1=chr1[:398] + "JJ" + chr1[400:])  # 2 bytes inside the SNP's window
    as_n = dict(genome, chr1=chr1[:398] + "NN" + chr1[400:])
    records = [
        ("chr1", 404, "inside", chr1[403], "A" if chr1[403] != "A" else "C"),
        ("chr1", 700, "outside", chr1[699], "A" if chr1[699] != "A" else "C"),
    ]
    vcf = write_vcf(tmp_path / "v.vcf", records, {"chr1": 800, "chr2": 300})
    rows, errors = {}, {}
    for name, sequences in (("bad", bad), ("as_n", as_n)):
        fasta = write_genome(tmp_path / f"{name}.fa", sequences)
        out = tmp_path / f"{name}.tsv"
        argv = [
            "variants",
            str(exported),
            "--vcf",
            str(vcf),
            "--fasta",
            str(fasta),
            "--out",
            str(out),
        ]
        assert main(argv) == 0
        errors[name] = capsys.readouterr().err
        with open(out) as handle:
            rows[name] = {r["id"]: r for r in csv.DictReader(handle, delimiter="\t")}
    assert (
        "1 allele whose REF window holds characters that are not nucleotides or IUPAC codes "
        "(read as N)" in errors["bad"]
    )
    assert "not nucleotides" not in errors["as_n"]
    for ident in ("inside", "outside"):
        for column in ("p_ref", "p_alt", "delta"):
            assert rows["bad"][ident][column] == rows["as_n"][ident][column] != ""


def test_alleles_whose_ref_window_is_mostly_n_are_not_scored(tmp_path, exported, capsys):
    """As `scan` skips windows with more than `--max-n-fraction` N's (an assembly gap), `variants`
    does not score alleles whose REF window has more: the row is written with a note, counted on
    stderr; `--max-n-fraction 1` scores them. The limit is floor(0.1 * 60) = 6 N's."""
    from attngen_keras.genome.variants import NOTE_N

    genome = reference()
    chr1 = genome["chr1"][:100] + "N" * 40 + genome["chr1"][140:]  # a gap at 100..139
    genome["chr1"] = chr1
    fasta = write_genome(tmp_path / "gap.fa", genome)
    records = [
        ("chr1", 121, "in_gap", "N", "A"),  # its window, 90..149, is 40 N's
        ("chr1", 77, "six_n", chr1[76], "A" if chr1[76] != "A" else "C"),  # 46..105: 6 N's
        ("chr1", 78, "seven_n", chr1[77], "A" if chr1[77] != "A" else "C"),  # 47..106: 7 N's
        ("chr1", 404, "clear", chr1[403], "A" if chr1[403] != "A" else "C"),
    ]
    vcf = write_vcf(tmp_path / "v.vcf", records, {"chr1": 800, "chr2": 300})
    rows, errors = {}, {}
    for name, extra in (("default", []), ("all", ["--max-n-fraction", "1"])):
        out = tmp_path / f"{name}.tsv"
        argv = ["variants", str(exported), "--vcf", str(vcf), "--fasta", str(fasta)]
        assert main([*argv, "--out", str(out), *extra]) == 0
        errors[name] = capsys.readouterr()
        with open(out) as handle:
            rows[name] = {r["id"]: r for r in csv.DictReader(handle, delimiter="\t")}
    default = rows["default"]
    for ident in ("in_gap", "seven_n"):
        assert default[ident]["note"] == NOTE_N
        assert default[ident]["p_ref"] == default[ident]["p_alt"] == ""
    assert default["in_gap"]["ref_match"] == "true"  # the VCF's REF is the genome's N
    for ident in ("six_n", "clear"):
        assert default[ident]["note"] == "" and default[ident]["p_ref"] != ""
    assert (
        "2 alleles whose REF window is more than --max-n-fraction N (an assembly gap?), not scored"
        in errors["default"].err
    )
    assert "scored 2 of 4 ALT alleles" in errors["default"].out
    assert all(r["note"] == "" and r["p_ref"] != "" for r in rows["all"].values())
    for ident in ("six_n", "clear"):  # the limit changes which alleles are scored, not how
        assert rows["all"][ident]["p_ref"] == default[ident]["p_ref"]
    assert "max-n-fraction" not in errors["all"].err
    bad = ["variants", str(exported), "--vcf", str(vcf), "--fasta", str(fasta), "--force"]
    assert main([*bad, "--out", str(tmp_path / "x.tsv"), "--max-n-fraction", "1.5"]) == 2
    assert "--max-n-fraction must be between 0 and 1, got 1.5" in capsys.readouterr().err


def test_a_broken_fasta_gets_its_error_alone(tmp_path, exported, capsys):
    """faidx cannot index it either: the note about rewriting it for random access came first, as
    if that were the problem; the FASTA's own error is now the only line."""
    vcf = write_vcf(tmp_path / "v.vcf", [], {"chr1": 800})
    for name, text, problem in (
        ("before.fa", "ACGT\n>a\nACGT\n", "sequence before the first '>' header line"),
        ("empty.fa", "", "no FASTA records (expected '>id' header lines)"),
    ):
        fasta = tmp_path / name
        fasta.write_text(text)
        argv = ["variants", str(exported), "--vcf", str(vcf), "--fasta", str(fasta)]
        assert main([*argv, "--out", str(tmp_path / "e.tsv")]) == 2
        assert capsys.readouterr().err.strip() == f"attngen variants: error: {fasta}: {problem}"
    ragged = tmp_path / "ragged.fa"
    ragged.write_text(">chr1\n" + "ACGT" * 10 + "\nAC\n" + "ACGT" * 10 + "\n")
    argv = ["variants", str(exported), "--vcf", str(vcf), "--fasta", str(ragged)]
    assert main([*argv, "--out", str(tmp_path / "r.tsv")]) == 0
    assert "rewriting it to a temporary file for random access" in capsys.readouterr().err
