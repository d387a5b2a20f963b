"""Draws the bundled demo sample from the two real reference genomes.

Reproduces `attngen_keras/demo_data/human_or_fungus_demo.csv.gz` from the
genomes in `../shared/data/references` (human chr22 EPO subset and Ustilago
maydis 521, from Debian's maffilter-examples package), with the protocol of
`human_or_fungus`: 200 bp windows without N, random strand (minus strand
reverse-complemented), train and test windows from disjoint 200 kb segments
(even segments train, odd segments test); no (record, start) window is drawn
twice (identical windows from two places would be kept; the test of the
bundled file checks it has none).

    python scripts/make_demo_sample.py --references ../shared/data/references
"""

import argparse
import gzip
from pathlib import Path

import numpy as np
import pandas as pd
from Bio.SeqIO.FastaIO import SimpleFastaParser

GENOMES = {"human": "hsap_chr22_epo_subset.fa.gz", "fungus": "umaydis_521.fa.gz"}
WINDOW = 200
SEGMENT = 200_000
COMPLEMENT = str.maketrans("ACGT", "TGCA")


def windows(path, n_per_split, rng):
    with gzip.open(path, "rt") as handle:
        records = [(title.split()[0], seq.upper()) for title, seq in SimpleFastaParser(handle)]
    out = {"train": [], "test": []}
    drawn = set()  # (record, start): a short record would otherwise give the same window twice
    while any(len(v) < n_per_split[k] for k, v in out.items()):
        name, seq = records[rng.integers(len(records))]
        if len(seq) < WINDOW:
            continue
        start = int(rng.integers(0, len(seq) - WINDOW))
        if (start % SEGMENT) > SEGMENT - WINDOW:
            continue  # would straddle two segments
        split = "train" if (start // SEGMENT) % 2 == 0 else "test"
        window = seq[start : start + WINDOW]
        if len(out[split]) >= n_per_split[split] or set(window) - set("ACGT"):
            continue
        if (name, start) in drawn:
            continue
        drawn.add((name, start))
        strand = "+" if rng.random() < 0.5 else "-"
        if strand == "-":
            window = window.translate(COMPLEMENT)[::-1]
        out[split].append((f"{name}:{start}-{start + WINDOW}({strand})", window))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--references", default="../shared/data/references")
    parser.add_argument("--train-per-class", type=int, default=1500)
    parser.add_argument("--test-per-class", type=int, default=500)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--out",
        default=str(
            Path(__file__).parents[1] / "attngen_keras/demo_data/human_or_fungus_demo.csv.gz"
        ),
    )
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    rows = []
    for label, file in GENOMES.items():
        drawn = windows(
            Path(args.references) / file,
            {"train": args.train_per_class, "test": args.test_per_class},
            rng,
        )
        for split, items in drawn.items():
            rows += [{"id": i, "seq": s, "label": label, "split": split} for i, s in items]
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=args.seed)
    frame.to_csv(args.out, index=False, compression={"method": "gzip", "mtime": 0})
    print(f"wrote {len(frame)} sequences to {args.out} ({Path(args.out).stat().st_size} bytes)")


if __name__ == "__main__":
    main()
