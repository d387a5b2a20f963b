"""Where does an attention map lose AUPRC against planted motifs? Rank percentile by motif offset.

For each sequence with a planted interval, every position's rank percentile
within that sequence's importance map (the share of the sequence's positions
scoring strictly lower), averaged by offset from the interval start, from
`--flank` bases before it to `--flank` bases after its end. A base that ranks
above every background base of its sequence sits near 1; a random ranking
gives 0.5.

    python benchmarks/planted_rank_profile.py RUN/explain SET/planted.csv \
        --out benchmarks/results/planted_rank_profile/NAME.json

`RUN/explain` is the output of `attngen explain RUN --method attention
--ground-truth SET/planted.csv` (its `importance.npz`). Prints a table and
writes JSON.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def rank_profile(scores, ids, intervals, flank=3):
    """Mean rank percentile by offset from each planted interval's start.

    Args:
        scores: `(n, length)` importance maps.
        ids: `(n,)` sequence ids, matched against `intervals["id"]`.
        intervals: DataFrame with `id`, `start`, `end` (0-based, half-open);
            all intervals must have the same width.
        flank: bases before and after the interval to include.

    Returns:
        `(offsets, means, counts)`: offset `0` is the interval's first base.

    Example:

    >>> scores = np.array([[0.0, 1.0, 3.0, 2.0]])
    >>> frame = pd.DataFrame({"id": ["a"], "start": [1], "end": [3]})
    >>> offsets, means, _ = rank_profile(scores, np.array(["a"]), frame, flank=1)
    >>> offsets.tolist(), means.tolist()
    ([-1, 0, 1, 2], [0.0, 0.25, 0.75, 0.5])
    """
    widths = (intervals["end"] - intervals["start"]).unique()
    if len(widths) != 1:
        raise ValueError(f"planted intervals of several widths: {sorted(widths)}")
    offsets = np.arange(-flank, int(widths[0]) + flank)
    sums, counts = np.zeros(len(offsets)), np.zeros(len(offsets), dtype=int)
    row_of = {str(name): i for i, name in enumerate(ids)}
    for record in intervals.itertuples(index=False):
        row = row_of.get(str(record.id))
        if row is None:
            continue
        map_ = np.asarray(scores[row], dtype=float)
        positions = record.start + offsets
        inside = (positions >= 0) & (positions < len(map_))
        below = (map_[None, :] < map_[positions[inside], None]).mean(axis=1)
        sums[inside] += below
        counts[inside] += 1
    means = np.divide(sums, counts, out=np.full(len(offsets), np.nan), where=counts > 0)
    return offsets, means, counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("explain_dir", help="an `attngen explain` output directory")
    parser.add_argument("planted", help="the planted intervals (id,start,end)")
    parser.add_argument("--flank", type=int, default=3)
    parser.add_argument("--out", help="JSON file to write")
    args = parser.parse_args(argv)
    npz = Path(args.explain_dir) / "importance.npz"
    if not npz.exists():
        print(
            f"{npz}: not found (run `attngen explain ... --out {args.explain_dir}`)",
            file=sys.stderr,
        )
        return 2
    with np.load(npz, allow_pickle=False) as arrays:
        scores, ids = arrays["scores"], arrays["ids"]
    intervals = pd.read_csv(args.planted)
    offsets, means, counts = rank_profile(scores, ids, intervals, args.flank)
    width = int((intervals["end"] - intervals["start"]).iloc[0])
    print("| offset from motif start | in motif | mean rank percentile | n |")
    print("|---|---|---|---|")
    for offset, mean, count in zip(offsets, means, counts):
        print(f"| {offset} | {'yes' if 0 <= offset < width else 'no'} | {mean:.3f} | {count} |")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({
            "explain_dir": str(args.explain_dir), "planted": str(args.planted), "width": width,
            "offsets": offsets.tolist(), "mean_rank_percentile": means.tolist(),
            "counts": counts.tolist(),
        }, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
