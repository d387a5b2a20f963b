"""`attngen variants` checkpoints: interrupted, run again, it resumes and writes the same bytes.

The model is `test_genome_scan`'s hand-set motif detector, the reference
`test_genome_variants`'s; each run scores 4 alleles a batch and saves its
progress after every batch, so that an interruption lands mid-VCF.
"""

import json

import numpy as np
import pytest
from test_genome_scan import L, class_names, motif_model, write_genome
from test_genome_variants import reference

from attngen_keras.cli import main
from attngen_keras.files import FileError
from attngen_keras.genome.checkpoint import checkpoint_dir
from attngen_keras.genome.scoring import Scorer
from attngen_keras.genome.variants import score_variants

pytest.importorskip("pysam", reason='the genome extra is not installed: pip install -e ".[genome]"')

BATCH = 4


@pytest.fixture(scope="module")
def scorer():
    return Scorer.from_model(motif_model(), class_names(), L)


def counting(scorer, stop_after=None):
    """`scorer` counting the alleles it scores, raising KeyboardInterrupt (a Ctrl-C) in batch
    `stop_after + 1`."""
    counts = {"batches": 0, "alleles": 0}

    class Counting(Scorer):
        def probabilities_and_importance(self, sequences, both_strands=False):
            counts["batches"] += 1
            if stop_after is not None and counts["batches"] > stop_after:
                raise KeyboardInterrupt
            counts["alleles"] += len(sequences) // 2  # a REF and an ALT window each
            return super().probabilities_and_importance(sequences, both_strands)

    wrapped = Counting(scorer._predict, scorer._importance, scorer.facts,
                       scorer._predict_with_saliency)  # fmt: skip
    return wrapped, counts


def variants_vcf(path, genome, seed=0):
    """About 70 ALT alleles: SNVs, multi-allelic records, REF mismatches, alleles near a record end
    and on a chromosome the FASTA lacks, in VCF order."""
    rng = np.random.default_rng(seed)
    lines = ["##fileformat=VCFv4.2", "##contig=<ID=chr1,length=800>",
             "##contig=<ID=chr2,length=300>", "##contig=<ID=chrX,length=900>",
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]  # fmt: skip
    for chrom, positions in (("chr1", range(5, 800, 15)), ("chr2", range(20, 300, 40))):
        seq = genome[chrom]
        for pos in positions:
            ref = seq[pos - 1]
            if rng.random() < 0.1:
                ref = "ACGT"[("ACGT".index(ref.upper()) + 1) % 4]  # a REF mismatch
            alts = [b for b in "ACGT" if b != ref.upper()][: 1 + int(rng.random() < 0.2)]
            lines.append(f"{chrom}\t{pos}\tv{chrom}_{pos}\t{ref}\t{','.join(alts)}\t.\t.\t.")
    lines.append("chrX\t450\tmissing\tA\tG\t.\t.\t.")
    path.write_text("\n".join(lines) + "\n")
    return path


def run(scorer, vcf, fasta, out, vcf_out, checkpoint_seconds=0, **options):
    return score_variants(scorer, vcf, fasta, out, vcf_out=vcf_out, batch_size=BATCH,
                          show_progress=False, checkpoint_seconds=checkpoint_seconds,
                          **options)  # fmt: skip


def test_an_interrupted_variants_run_resumes_to_the_same_bytes(tmp_path, scorer, capsys):
    genome = reference()
    fasta = write_genome(tmp_path / "ref.fa", genome)
    vcf = variants_vcf(tmp_path / "v.vcf", genome)
    expected = run(scorer, vcf, fasta, tmp_path / "ref.tsv", tmp_path / "ref.vcf.gz")
    assert expected["ref_mismatch"] and expected["near_end"] and expected["missing_chrom"] == 1
    out, annotated = tmp_path / "e.tsv", tmp_path / "e.vcf.gz"
    stopping, _ = counting(scorer, stop_after=6)
    with pytest.raises(KeyboardInterrupt):
        run(stopping, vcf, fasta, out, annotated)
    checkpoint = checkpoint_dir(out, "variants")
    progress = json.loads((checkpoint / "progress.json").read_text())
    assert progress["rows"] % BATCH == 0 and 0 < progress["rows"] < expected["alleles"]
    assert not out.exists() and not annotated.exists()
    with open(checkpoint / "effects.tsv", "a") as rows:  # what a kill after the save leaves
        rows.write("chr1\t999\tv\tA\tC\ttrue\tmotif\t0.5\t0.5\t0\t0\t0\t0\t\n")
    capsys.readouterr()
    resuming, counts = counting(scorer)
    summary = run(resuming, vcf, fasta, out, annotated)
    assert out.read_bytes() == (tmp_path / "ref.tsv").read_bytes()
    assert annotated.read_bytes() == (tmp_path / "ref.vcf.gz").read_bytes()
    assert summary["resumed_alleles"] == progress["rows"]
    assert {k: v for k, v in summary.items() if k not in ("outputs", "resumed_alleles")} == {
        k: v for k, v in expected.items() if k not in ("outputs", "resumed_alleles")
    }  # the counts of the alleles before the interruption are restored
    assert counts["alleles"] <= expected["alleles"] - progress["rows"]  # (unscorable ones aside)
    assert f"after {progress['rows']} ALT alleles" in capsys.readouterr().err
    assert not checkpoint.exists()


def test_another_vcf_is_refused_force_starts_afresh_and_bad_input_leaves_nothing(
    tmp_path, scorer, capsys
):
    from attngen_keras.export import export_model

    genome = reference()
    fasta = write_genome(tmp_path / "ref.fa", genome)
    vcf = variants_vcf(tmp_path / "v.vcf", genome)
    out = tmp_path / "e.tsv"
    stopping, _ = counting(scorer, stop_after=3)
    with pytest.raises(KeyboardInterrupt):
        run(stopping, vcf, fasta, out, None)
    checkpoint = checkpoint_dir(out, "variants")
    other = variants_vcf(tmp_path / "other.vcf", genome, seed=1)
    with pytest.raises(FileError, match="but the VCF differs; run it again as it was"):
        run(scorer, other, fasta, out, None)
    assert checkpoint.is_dir()
    # the same run through the CLI and an exported copy of the model: resumed
    exported = export_model(motif_model(), tmp_path / "model", class_names(), L)
    argv = ["variants", str(exported), "--vcf", str(vcf), "--fasta", str(fasta), "--out",
            str(out), "--batch-size", str(BATCH)]  # fmt: skip
    assert main(argv) == 0
    assert "resuming the interrupted run" in capsys.readouterr().err
    assert not checkpoint.exists()
    out.unlink()
    with pytest.raises(KeyboardInterrupt):
        run(counting(scorer, stop_after=3)[0], vcf, fasta, out, None)
    summary = run(scorer, other, fasta, out, None, force=True)
    assert summary["resumed_alleles"] == 0 and not checkpoint.exists()
    # a VCF record that cannot be read, met mid-run: an error that would recur, no checkpoint kept
    broken = tmp_path / "broken.vcf"
    broken.write_text(vcf.read_text() + "chr2\tnot-a-position\tx\tA\tC\t.\t.\t.\n")
    with pytest.raises(ValueError, match="broken.vcf"):
        run(scorer, broken, fasta, tmp_path / "b.tsv", None)
    assert not checkpoint_dir(tmp_path / "b.tsv", "variants").exists()
    assert not list(tmp_path.glob(".b.tsv*"))


def test_an_interruption_between_rows_saves_only_whole_batches(tmp_path, scorer, monkeypatch):
    """Stopped after row 10 of batches of 4: the progress says 8 rows, so the resumed run scores
    the same batches (a model's last bits can depend on its batch) and writes the same bytes."""
    from attngen_keras.genome import variants

    genome = reference()
    fasta = write_genome(tmp_path / "ref.fa", genome)
    vcf = variants_vcf(tmp_path / "v.vcf", genome)
    run(scorer, vcf, fasta, tmp_path / "ref.tsv", tmp_path / "ref.vcf.gz")
    add = variants.EffectsTable.add

    def stop_after_ten(table, result):
        if table.rows == 10:
            raise KeyboardInterrupt
        add(table, result)

    monkeypatch.setattr(variants.EffectsTable, "add", stop_after_ten)
    out, annotated = tmp_path / "e.tsv", tmp_path / "e.vcf.gz"
    with pytest.raises(KeyboardInterrupt):
        run(scorer, vcf, fasta, out, annotated, checkpoint_seconds=3600)  # saved on the way out
    monkeypatch.undo()
    checkpoint = checkpoint_dir(out, "variants")
    assert json.loads((checkpoint / "progress.json").read_text())["rows"] == 8
    assert not (checkpoint / "owner").exists()  # released: another host may resume it
    assert run(scorer, vcf, fasta, out, annotated)["resumed_alleles"] == 8
    assert out.read_bytes() == (tmp_path / "ref.tsv").read_bytes()
    assert annotated.read_bytes() == (tmp_path / "ref.vcf.gz").read_bytes()


def test_force_discards_a_damaged_variants_checkpoint(tmp_path, scorer):
    genome = reference()
    fasta = write_genome(tmp_path / "ref.fa", genome)
    vcf = variants_vcf(tmp_path / "v.vcf", genome)
    out = tmp_path / "e.tsv"
    with pytest.raises(KeyboardInterrupt):
        run(counting(scorer, stop_after=3)[0], vcf, fasta, out, None)
    checkpoint = checkpoint_dir(out, "variants")
    (checkpoint / "effects.tsv").write_text("")
    with pytest.raises(FileError, match="damaged variants checkpoint"):
        run(scorer, vcf, fasta, out, None)
    assert run(scorer, vcf, fasta, out, None, force=True)["resumed_alleles"] == 0
    assert not checkpoint.exists()


def test_the_beam_runner_runs_its_pipeline_once_and_cleans_up(tmp_path, scorer, monkeypatch):
    """(A leftover of the checkpoint change ran the Beam pipeline twice, leaking one's task files.)"""
    from attngen_keras.genome import beam, variants

    genome = reference()
    fasta = write_genome(tmp_path / "ref.fa", genome)
    vcf = variants_vcf(tmp_path / "v.vcf", genome)
    calls = {"pipelines": 0, "cleanups": 0}

    def pipeline(model, paths, alleles, length, batch_size, both_strands, options, target, max_n):
        calls["pipelines"] += 1
        reference_file = variants.open_fasta(paths)
        sizes = dict(zip(reference_file.references, reference_file.lengths))

        def cleanup():
            calls["cleanups"] += 1

        results = variants.score_alleles(
            scorer, reference_file, sizes, alleles, both_strands, max_n
        )
        return iter(results), cleanup

    monkeypatch.setattr(beam, "require_beam", lambda: None)
    monkeypatch.setattr(beam, "check_beam_options", lambda options: None)
    monkeypatch.setattr(beam, "variants_with_beam", pipeline)
    out = tmp_path / "beam.tsv"
    score_variants(scorer, vcf, fasta, out, batch_size=BATCH, runner="beam", show_progress=False)
    assert calls == {"pipelines": 1, "cleanups": 1}
    run(scorer, vcf, fasta, tmp_path / "local.tsv", None)
    assert out.read_bytes() == (tmp_path / "local.tsv").read_bytes()
    assert not checkpoint_dir(out, "variants").exists()
    # a stopped local run's checkpoint for the Beam run's output: refused, --force discards it
    out.unlink()
    with pytest.raises(KeyboardInterrupt):
        run(counting(scorer, stop_after=3)[0], vcf, fasta, out, None)
    checkpoint = checkpoint_dir(out, "variants")
    with pytest.raises(FileError, match="--runner beam cannot resume: run with --runner local"):
        score_variants(scorer, vcf, fasta, out, batch_size=BATCH, runner="beam")
    assert calls["pipelines"] == 1 and (checkpoint / "progress.json").exists()
    with pytest.raises(ValueError, match="--max-n-fraction must be between 0 and 1"):
        score_variants(scorer, vcf, fasta, out, runner="beam", force=True, max_n_fraction=2.0)
    assert (checkpoint / "progress.json").exists()  # bad input discards nothing, even with --force
    score_variants(scorer, vcf, fasta, out, batch_size=BATCH, runner="beam", force=True,
                   show_progress=False)  # fmt: skip
    assert not checkpoint.exists() and calls["pipelines"] == 2
    assert out.read_bytes() == (tmp_path / "local.tsv").read_bytes()
