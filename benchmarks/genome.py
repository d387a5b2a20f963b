"""Benchmark: `attngen scan` and `attngen variants` at genome scale, against references measured in the same run.

1. throughput: `scan` over a piece of a real genome vs `attngen predict` over
   a FASTA of exactly the same windows (same exported model, same process,
   alternating, best of `--repeats`); the outputs are checked equal;
2. memory: peak RSS (`/usr/bin/time -v`) of `attngen scan` in a fresh process
   over two real genomes of different sizes (both >= 20 Mb): the human chr22
   EPO subset (one 50.8-Mb record, N outside 21.6 Mb of sequence) and the same
   plus the *Ustilago maydis* 521 genome (19.7 Mb, 36 records), at stride 200
   (the memory does not depend on the stride; it keeps the runs short);
3. Beam: `--runner beam` on FnApiRunner with its default 2 worker threads vs
   the local runner on the same piece, and (a reference for a cluster's
   separate workers) with 2 worker processes; outputs compared byte for byte;
4. variants: `attngen variants` on random SNVs and small indels of the
   U. maydis genome (both alleles scored, with importance), against the same
   export scored with two signatures per batch (`serving_default`, then
   `saliency`: how it was before `predict_with_saliency`; alternating, best
   of 2 each) and against the
   model alone on the same REF and ALT windows, built beforehand (the bound
   for this model on this machine); and the compute bound: the model's
   float ops per window (TF profiler count of the inference graph) against
   this machine's fp32 matmul peak, i.e. the share of that peak the goal
   would need.

The model is AttnGen (the faithful default, 200 nt, 2 classes) built with
random weights and exported as a SavedModel: speed and memory do not depend
on the weights.

    python benchmarks/genome.py             # about 15 minutes on 2 shared cores
    python benchmarks/genome.py --quick     # smaller pieces

Prints a Markdown table; writes benchmarks/results/genome/genome.json (quick:
genome_quick.json) and genome.md. Needs ../shared/data/references.
"""

import argparse
import gzip
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REFERENCES = ROOT.parent / "shared" / "data" / "references"
HUMAN = REFERENCES / "hsap_chr22_epo_subset.fa.gz"
FUNGUS = REFERENCES / "umaydis_521.fa.gz"
RESULTS = ROOT / "benchmarks" / "results" / "genome"
MEMORY_STRIDE = (
    200  # memory does not depend on the stride (streaming); 4x fewer windows than the default 50
)
GOALS = {"throughput_ratio": 0.9, "rss_gib": 1.2, "beam_ratio": 0.6, "variants_per_s": 5000}


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def export_model(work):
    from attngen_keras.export import export_model as export
    from attngen_keras.models import build_model

    model = build_model("attngen", 200, 2)
    return export(model, work / "model", ["background", "target"], 200)


def write_piece(source, out, bases):
    """The first `bases` bases of `source` (whole records, N-free records first), as plain FASTA."""
    from attngen_keras.genome.windows import iter_fasta_pieces

    records, name = {}, None
    for kind, value in iter_fasta_pieces(source):
        if kind == "record":
            if sum(len(v) for v in records.values()) >= bases:
                break
            name = value
            records[name] = b""
        else:
            records[name] += value
    with open(out, "w") as handle:  # 60-column lines, as faidx wants them
        for name, seq in records.items():
            text = seq.decode()
            handle.write(
                f">{name}\n" + "".join(text[i : i + 60] + "\n" for i in range(0, len(text), 60))
            )
    return out


def windows_fasta(piece, out, length, stride):
    from attngen_keras.genome.windows import Tiler

    count = 0
    with open(out, "w") as handle:
        for chrom, start, window in Tiler(piece, length, stride):
            handle.write(f">{chrom}:{start}\n{window.decode()}\n")
            count += 1
    return count


def time_rss(argv):
    """`(wall_s, max_rss_gib, stdout)` of a command in a fresh process."""
    result = subprocess.run(["/usr/bin/time", "-v", *argv], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{result.stderr[-3000:]}")
    rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    clock = re.search(
        r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", result.stderr
    ).group(1)
    seconds = sum(float(part) * 60**i for i, part in enumerate(reversed(clock.split(":"))))
    return seconds, rss_kib / 2**20, result.stdout


def throughput(model, piece, work, repeats, stride):
    from attngen_keras.genome.scan import scan_genome
    from attngen_keras.predict import predict_file

    windows = work / "windows.fa"
    n = windows_fasta(piece, windows, 200, stride)
    scan_s, predict_s = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        predict_file(model, windows, work / "p.tsv", show_progress=False, force=True)
        predict_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        scan_genome(
            model,
            piece,
            work / "s.bedGraph",
            stride=stride,
            tsv=work / "s.tsv",
            show_progress=False,
            force=True,
        )
        scan_s.append(time.perf_counter() - start)
        log(f"throughput: predict {predict_s[-1]:.1f} s, scan {scan_s[-1]:.1f} s for {n} windows")
    predicted = [line.split("\t")[3] for line in (work / "p.tsv").read_text().splitlines()[1:]]
    scanned = [line.split("\t")[4] for line in (work / "s.tsv").read_text().splitlines()[1:]]
    return {
        "windows": n, "stride": stride, "predict_s": predict_s, "scan_s": scan_s,
        "predict_windows_per_s": n / min(predict_s), "scan_windows_per_s": n / min(scan_s),
        "ratio": min(predict_s) / min(scan_s),
        "pair_ratios": [p / q for p, q in zip(predict_s, scan_s)],
        "median_pair_ratio": float(np.median([p / q for p, q in zip(predict_s, scan_s)])),
        "probabilities_equal": predicted == scanned,
    }  # fmt: skip


def memory(model, genomes, work):
    rows = []
    for name, path in genomes:
        argv = [sys.executable, "-m", "attngen_keras.cli", "scan", str(model), "--fasta", str(path)]
        argv += ["--out", str(work / f"{name}.bedGraph"), "--stride", str(MEMORY_STRIDE), "--force"]
        wall, rss, stdout = time_rss(argv)
        windows = int(re.search(r"scored (\d+) windows", stdout).group(1))
        records = int(re.search(r"of (\d+) records?\b", stdout).group(1))
        size = _genome_size(path)
        rows.append(
            {
                "genome": name,
                "stride": MEMORY_STRIDE,
                "bases": size,
                "records": records,
                "windows": windows,
                "wall_s": wall,
                "max_rss_gib": rss,
            }
        )
        log(
            f"memory: {name} {size / 1e6:.1f} Mb, {windows} windows, {wall:.0f} s, peak RSS {rss:.2f} GiB"
        )
    return rows


def _genome_size(path):
    from attngen_keras.genome.windows import iter_fasta_pieces

    return sum(len(v) for k, v in iter_fasta_pieces(path) if k == "seq")


def beam(model, piece, work, stride):
    from attngen_keras.genome.scan import scan_genome

    runs = {
        "local": ("local", ()),
        "beam": ("beam", ()),  # the default: 2 worker threads
        "beam_processes": ("beam", ("--direct_running_mode=multi_processing",)),
    }
    out = {}
    for name, (runner, options) in runs.items():
        start = time.perf_counter()
        summary = scan_genome(
            model, piece, work / f"{name}.bedGraph", stride=stride, tsv=work / f"{name}.tsv",
            runner=runner, beam_options=options, show_progress=False, force=True,
        )  # fmt: skip
        out[f"{name}_s"] = time.perf_counter() - start
        out["windows"] = summary["windows"]
        log(f"beam: {name} {out[f'{name}_s']:.1f} s")

    def same(name):
        return all(
            (work / f"local{suffix}").read_bytes() == (work / f"{name}{suffix}").read_bytes()
            for suffix in (".bedGraph", ".tsv")
        )

    out.update(
        {
            "ratio": out["local_s"] / out["beam_s"],
            "identical_output": same("beam"),
            "workers": 2,
            "runner": "FnApiRunner (multi_threading, the default)",
            "processes_ratio": out["local_s"] / out["beam_processes_s"],
            "processes_identical_output": same("beam_processes"),
        }
    )
    return out


def variants(model, work, count, seed=0):
    from attngen_keras.genome.reference import open_fasta, random_access_path
    from attngen_keras.genome.scoring import Scorer
    from attngen_keras.genome.variants import (
        DEFAULT_BATCH_SIZE,
        _windows,
        read_alleles,
        score_variants,
    )

    plain = work / "umaydis.fa"
    with gzip.open(FUNGUS, "rb") as source, open(plain, "wb") as target:
        shutil.copyfileobj(source, target)
    fasta = open_fasta(random_access_path(plain))
    sizes = dict(zip(fasta.references, fasta.lengths))
    rng = np.random.default_rng(seed)
    chroms = [c for c in sizes if sizes[c] > 10_000]
    weights = np.array([sizes[c] for c in chroms], float)
    picks = sorted(
        (chroms.index(c), int(p)) for c, p in zip(rng.choice(chroms, count, p=weights / weights.sum()),
                                                   rng.integers(200, 5000, count))
    )  # fmt: skip
    lines = ["##fileformat=VCFv4.2", *[f"##contig=<ID={c},length={n}>" for c, n in sizes.items()]]
    lines.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")
    for k, (ci, p) in enumerate(picks):
        chrom = chroms[ci]
        pos = min(p * 37 % (sizes[chrom] - 400) + 200, sizes[chrom] - 200)
        ref = fasta.fetch(chrom, pos - 1, pos).upper()
        kind = k % 10
        if kind == 8:  # insertion
            alt = ref + "".join(rng.choice(list("ACGT"), 3))
        elif kind == 9:  # deletion
            ref = fasta.fetch(chrom, pos - 1, pos + 3).upper()
            alt = ref[0]
        else:
            alt = "ACGT"[("ACGT".index(ref) + 1) % 4] if ref in "ACGT" else "A"
        lines.append(f"{chrom}\t{pos}\tv{k}\t{ref}\t{alt}\t.\t.\t.")
    vcf = work / "variants.vcf"
    vcf.write_text("\n".join(lines) + "\n")
    one_pass = Scorer.load(model)
    # the same export scored as before `predict_with_saliency`: `serving_default`, then `saliency`
    two_calls = Scorer(one_pass._predict, one_pass._importance, one_pass.facts)
    seconds = {"two_signatures": [], "one_pass": []}
    # alternating, so that neither gets the warmer caches: two, one, one, two
    order = ["two_signatures", "one_pass", "one_pass", "two_signatures"]
    for name in order:
        scorer = one_pass if name == "one_pass" else two_calls
        start = time.perf_counter()
        summary = score_variants(
            scorer, vcf, plain, work / f"effects_{name}.tsv",
            vcf_out=work / f"annotated_{name}.vcf.gz", show_progress=False, force=True,
        )  # fmt: skip
        seconds[name].append(time.perf_counter() - start)
        log(f"variants ({name}): {summary['alleles']} alleles in {seconds[name][-1]:.1f} s")
    out = {f"{name}_s": min(times) for name, times in seconds.items()}
    # the bound: the model alone (one pass) on the same REF and ALT windows, built beforehand
    alleles = list(read_alleles(vcf))
    built = [_windows(fasta, sizes, allele, one_pass.length) for allele in alleles]
    windows = [w for b in built if b[0] is not None for w in b[:2]]
    start = time.perf_counter()
    per_call = 2 * DEFAULT_BATCH_SIZE  # the tool's model calls: REF and ALT windows of a batch
    for k in range(0, len(windows), per_call):
        one_pass.probabilities_and_importance(windows[k : k + per_call])
    model_s = time.perf_counter() - start
    best = out["one_pass_s"]
    return {"alleles": summary["alleles"], "scored": summary["scored"], "seconds": best,
            "repeats_s": seconds, "load_avg": os.getloadavg(),
            "variants_per_s": summary["alleles"] / best,
            "two_signatures_variants_per_s": summary["alleles"] / out["two_signatures_s"],
            "model_only_s": model_s, "model_only_windows_per_s": len(windows) / model_s,
            "model_only_variants_per_s": summary["alleles"] / model_s}  # fmt: skip


def inference_flops_per_window(length=200):
    """Float ops of one inference forward pass of the benchmark's model on one window (TF profiler)."""
    import tensorflow as tf

    from attngen_keras.models import build_model

    model = build_model("attngen", length, 2)
    forward = tf.function(lambda x: model(x, training=False))
    graph = forward.get_concrete_function(tf.TensorSpec((1, length, 4), tf.float32)).graph
    return _speed().graph_float_ops(graph)


def _speed():
    """benchmarks/speed.py (its fp32 matmul peak and float-op count)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import speed

    return speed


def compute_bound(variants_result):
    """What the variants goal asks of this machine: GFLOP/s needed vs the fp32 matmul peak."""
    flops = inference_flops_per_window()
    peak = _speed().matmul_peak_gflops()
    needed = 2 * GOALS["variants_per_s"] * flops / 1e9  # both alleles: two windows a variant
    achieved = variants_result["model_only_windows_per_s"] * flops / 1e9
    return {"flops_per_window": flops, "matmul_peak_gflops": peak,
            "goal_gflops": needed, "goal_fraction_of_peak": needed / peak,
            "model_only_gflops": achieved, "model_only_fraction_of_peak": achieved / peak}  # fmt: skip


def table(results):
    t, m, b, v = results["throughput"], results["memory"], results["beam"], results["variants"]
    rows = [
        ("scan vs `attngen predict` on the same windows",
         f"{t['scan_windows_per_s']:,.0f} vs {t['predict_windows_per_s']:,.0f} windows/s (best of {len(t['scan_s'])}): **{t['ratio']:.2f}x**; median of alternating pairs {t['median_pair_ratio']:.2f}x ({t['windows']:,} windows; probabilities equal: {t['probabilities_equal']})",
         f">= {GOALS['throughput_ratio']}x: {'met' if t['ratio'] >= GOALS['throughput_ratio'] else 'missed'}"),
    ]  # fmt: skip
    for row in m:
        rows.append((
            f"peak RSS, scan of {row['genome']} ({row['bases'] / 1e6:.1f} Mb, {row['windows']:,} windows at stride {row['stride']})",
            f"{row['max_rss_gib']:.2f} GiB ({row['wall_s']:.0f} s wall)",
            f"<= {GOALS['rss_gib']} GiB: {'met' if row['max_rss_gib'] <= GOALS['rss_gib'] else 'missed'}",
        ))  # fmt: skip
    # result files from before 2026-11-29 timed worker processes only
    threads = "beam_processes_s" in b
    rows.append((
        f"Beam FnApiRunner, 2 worker {'threads (the default)' if threads else 'processes'}, vs local runner",
        f"{b['beam_s']:.1f} s vs {b['local_s']:.1f} s ({b['windows']:,} windows): **{b['ratio']:.2f}x**; identical output: {b['identical_output']}",
        f">= {GOALS['beam_ratio']}x and identical: {'met' if b['ratio'] >= GOALS['beam_ratio'] and b['identical_output'] else 'missed'}",
    ))  # fmt: skip
    if threads:
        rows.append((
            "the same with 2 worker processes (`--beam-option=--direct_running_mode=multi_processing`)",
            f"{b['beam_processes_s']:.1f} s vs {b['local_s']:.1f} s: {b['processes_ratio']:.2f}x; identical output: {b['processes_identical_output']}",
            "(a reference)",
        ))  # fmt: skip
    rows.append((
        "variants (REF and ALT windows, importance, VCF out)",
        f"{v['variants_per_s']:,.0f} variants/s ({v['alleles']:,} in {v['seconds']:.1f} s, best of 2){_variant_references(v)}",
        f">= {GOALS['variants_per_s']:,}/s: {'met' if v['variants_per_s'] >= GOALS['variants_per_s'] else 'missed'}",
    ))  # fmt: skip
    lines = ["| measure | result | goal |", "|---|---|---|"]
    lines += [f"| {a} | {b_} | {c} |" for a, b_, c in rows]
    return "\n".join(lines)


def _variant_references(v):
    if "model_only_variants_per_s" not in v:  # a result file from before these references
        return ""
    text = (
        f"; before the one-pass signature {v['two_signatures_variants_per_s']:,.0f}/s; the model "
        f"alone on the same windows {v['model_only_windows_per_s']:,.0f} windows/s = "
        f"{v['model_only_variants_per_s']:,.0f} variants/s"
    )
    bound = v.get("compute_bound")
    if bound:
        text += (
            f"; the goal needs {bound['goal_gflops']:.0f} GFLOP/s "
            f"({bound['flops_per_window'] / 1e6:.1f} MFLOP a window), "
            f"{bound['goal_fraction_of_peak']:.0%} of this machine's "
            f"{bound['matmul_peak_gflops']:.0f} GFLOP/s fp32 matmul peak (the model alone: "
            f"{bound['model_only_fraction_of_peak']:.0%})"
        )
    return text


def _saver(args, results):
    """Writes the results so far (a crash in a later section keeps the earlier ones)."""

    def save():
        RESULTS.mkdir(parents=True, exist_ok=True)
        name = "genome_quick" if args.quick else "genome"
        name = f"genome_beam_{args.beam_bases}" if args.beam_bases else name
        (RESULTS / f"{name}.partial.json").write_text(json.dumps(results, indent=2, default=float))

    return save


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller pieces, one repeat")
    parser.add_argument("--workdir", default="/tmp/attngen-genome-bench")
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["throughput", "memory", "beam", "variants"]
    )
    parser.add_argument("--repeats", type=int, default=3, help="alternating predict/scan pairs")
    parser.add_argument(
        "--beam-bases", type=int,
        help="size of the Beam comparison's piece of U. maydis (default 4 Mb; results then go to "
        "genome_beam_<N>.json)",
    )  # fmt: skip
    parser.add_argument(
        "--update", action="store_true",
        help="keep the sections of an earlier result file that --skip leaves out",
    )  # fmt: skip
    args = parser.parse_args()
    if not HUMAN.exists() or not FUNGUS.exists():
        raise SystemExit(f"shared data not available: {REFERENCES} (see ../shared/data/README.md)")
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    model = export_model(work)
    piece = write_piece(FUNGUS, work / "piece.fa", 500_000 if args.quick else 2_000_000)
    results = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg_start": os.getloadavg()},
        "model": "AttnGen faithful default, 200 nt, 2 classes, random weights, exported SavedModel",
        "goals": GOALS,
    }  # fmt: skip
    save = _saver(args, results)
    repeats = 1 if args.quick else args.repeats
    results["throughput"] = (
        {} if "throughput" in args.skip else throughput(model, piece, work, repeats, 50)
    )
    combined = work / "chr22_plus_umaydis.fa.gz"
    with open(combined, "wb") as out:
        out.write(HUMAN.read_bytes())  # concatenated gzip members read as one gzip stream
        with gzip.open(FUNGUS, "rb") as source, gzip.open(out, "wb") as target:
            for line in source:  # U. maydis names its chromosomes chr1..chr23: prefix them
                target.write(b">um_" + line[1:] if line.startswith(b">") else line)
    genomes = [("human chr22 EPO subset", HUMAN), ("chr22 subset + U. maydis", combined)]
    save()
    results["memory"] = [] if "memory" in args.skip else memory(model, genomes, work)
    save()
    beam_bases = args.beam_bases or (1_000_000 if args.quick else 4_000_000)
    beam_piece = write_piece(FUNGUS, work / "beam_piece.fa", beam_bases)
    results["beam"] = {} if "beam" in args.skip else beam(model, beam_piece, work, 50)
    save()
    count = 3_000 if args.quick else 20_000
    results["variants"] = {} if "variants" in args.skip else variants(model, work, count)
    if results["variants"]:
        results["variants"]["compute_bound"] = compute_bound(results["variants"])
        bound = results["variants"]["compute_bound"]
        log(f"compute bound: {bound['flops_per_window'] / 1e6:.1f} MFLOP a window; the goal needs "
            f"{bound['goal_gflops']:.0f} GFLOP/s = {bound['goal_fraction_of_peak']:.0%} of the "
            f"{bound['matmul_peak_gflops']:.0f} GFLOP/s matmul peak; the model alone reaches "
            f"{bound['model_only_fraction_of_peak']:.0%}")  # fmt: skip
    results["machine"]["load_avg_end"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "genome_quick" if args.quick else "genome"
    if args.beam_bases:
        name = f"genome_beam_{args.beam_bases}"
    earlier = RESULTS / f"{name}.json"
    if args.update and earlier.exists():
        previous = json.loads(earlier.read_text())
        for section in ("throughput", "memory", "beam", "variants"):
            if not results[section] and previous.get(section):
                results[section] = previous[section]
                results.setdefault("kept_from_earlier_run", []).append(section)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2, default=float))
    (RESULTS / f"{name}.partial.json").unlink(missing_ok=True)
    if all(results[k] for k in ("throughput", "memory", "beam", "variants")):
        text = table(results)
        (RESULTS / f"{name}.md").write_text(text + "\n")
        print(text)


if __name__ == "__main__":
    main()
