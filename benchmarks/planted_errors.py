"""Where an attention map loses AUPRC against planted positions.

Reads the `importance.npz` that `attngen explain RUN --ground-truth planted.csv`
wrote (a binary run) and, for the sequences with planted positions, prints a
table and writes JSON with:

- the per-sequence AUPRC over the real positions (as `explain` reports it) by
  the model's probability of the second class, the positive one (a missed
  motif cannot be localized);
- the false positives among each sequence's top-k positions (k = its number
  of planted positions): how far they lie from the planted interval, and, for
  those 10 nt or more away, how well the sequence around them matches a
  planted consensus (the best of the consensus-length windows that cover the
  position), against random positions as far away;
- the median rank of a planted interval's edge bases and of its inner ones.

    python benchmarks/planted_errors.py runs/X/explain/importance.npz SET/planted.csv \\
        --motifs CATTGCGGTA TTAGGCACCT --out runs/X/planted_errors.json
"""

import argparse
import sys

import numpy as np
from sklearn.metrics import average_precision_score

from attngen_keras.explain.ground_truth import read_intervals
from attngen_keras.files import write_json_atomic

FAR = 10  # nt: a false positive this far from the planted interval is not an edge effect
CONFIDENCE_BINS = ((0.0, 0.5), (0.5, 0.9), (0.9, 1.0))


def best_match(sequence, position, motifs):
    """Most bases of any motif matched by a motif-length window covering `position`."""
    best = 0
    for motif in motifs:
        width = len(motif)
        for start in range(max(0, position - width + 1), min(position, len(sequence) - width) + 1):
            best = max(best, sum(a == b for a, b in zip(sequence[start : start + width], motif)))
    return best


def _mean(values):
    return float(np.mean(values)) if len(values) else None


def _median(values):
    return float(np.median(values)) if len(values) else None


def analyse(importance, planted, motifs, seed=0):
    """The figures described in the module docstring, as a dict.

    Args:
        importance: the arrays of `importance.npz` (`ids`, `scores`,
            `sequences`, `probs`).
        planted: `id, start, end` rows (`read_intervals`).
        motifs: the planted consensus sequences (may be empty).
        seed: seeds the random far positions.
    """
    rng = np.random.default_rng(seed)
    intervals = {}
    for row in planted.itertuples():
        intervals.setdefault(str(row.id), []).append((int(row.start), int(row.end)))
    aps, confidence, distances, far_matches, random_matches = [], [], [], [], []
    edge_ranks, inner_ranks = [], []
    for i, record_id in enumerate(importance["ids"]):
        record_id = str(record_id)
        if record_id not in intervals:
            continue
        sequence = str(importance["sequences"][i])
        scores = importance["scores"][i][: len(sequence)]  # the real positions, not padding
        truth = np.zeros(len(scores), bool)
        for start, end in intervals[record_id]:
            truth[start:end] = True
        if truth.all() or not truth.any():
            continue  # nothing to rank against (as explain's localization skips it)
        aps.append(average_precision_score(truth, scores))
        probs = np.atleast_1d(importance["probs"][i])
        confidence.append(float(probs[-1]))
        order = np.argsort(-scores)
        ranks = np.empty(len(scores), int)
        ranks[order] = np.arange(len(scores))
        planted_positions = np.flatnonzero(truth)
        # each position's distance to the nearest planted base
        distance = np.abs(np.arange(len(scores))[:, None] - planted_positions).min(axis=1)
        far_away = np.flatnonzero(distance >= FAR)
        for position in order[: truth.sum()]:
            if truth[position]:
                continue
            distances.append(int(distance[position]))
            if distance[position] >= FAR and motifs:
                far_matches.append(best_match(sequence, int(position), motifs))
        if motifs and len(far_away):
            for position in rng.choice(far_away, min(3, len(far_away)), replace=False):
                random_matches.append(best_match(sequence, int(position), motifs))
        for start, end in intervals[record_id]:
            edge_ranks += [ranks[start], ranks[end - 1]]
            inner_ranks += list(ranks[start + 1 : end - 1])
    aps, confidence, distances = np.array(aps), np.array(confidence), np.array(distances)
    result = {
        "sequences": len(aps),
        "auprc": _mean(aps),
        "by_confidence": [
            {
                "p_positive": [lo, hi],
                "n": int(inside.sum()),
                "auprc": _mean(aps[inside]),
            }
            for lo, hi in CONFIDENCE_BINS
            for inside in [(confidence >= lo) & ((confidence < hi) | (hi == 1.0))]
        ],
        "false_positives_in_top_k_per_sequence": float(len(distances) / max(len(aps), 1)),
        "false_positive_share_at_least_10_nt_away": _mean(distances >= FAR),
        "median_rank_edge": _median(edge_ranks),
        "median_rank_inner": _median(inner_ranks),
    }
    if motifs:
        threshold = int(np.ceil(0.7 * min(map(len, motifs))))
        result["motif_match"] = {
            "bases_needed": threshold,
            "far_false_positives": len(far_matches),
            "far_false_positive_share": _mean(np.array(far_matches) >= threshold),
            "random_far_share": _mean(np.array(random_matches) >= threshold),
            "far_false_positive_mean_match": _mean(far_matches),
            "random_far_mean_match": _mean(random_matches),
        }
    return result


def _shown(value, spec):
    return "-" if value is None else format(value, spec)


def print_table(result, out=sys.stdout):
    print(
        f"{result['sequences']} sequences with planted positions, AUPRC "
        f"{_shown(result['auprc'], '.3f')}",
        file=out,
    )
    print("| P(positive) | sequences | AUPRC |\n|---|---|---|", file=out)
    for row in result["by_confidence"]:
        lo, hi = row["p_positive"]
        print(f"| {lo:.1f}-{hi:.1f} | {row['n']} | {_shown(row['auprc'], '.3f')} |", file=out)
    print(
        f"false positives in each top k: {result['false_positives_in_top_k_per_sequence']:.2f} per "
        f"sequence, {_shown(result['false_positive_share_at_least_10_nt_away'], '.0%')} of them "
        f">= {FAR} nt from the planted interval",
        file=out,
    )
    print(
        f"median rank: edge bases {_shown(result['median_rank_edge'], '.0f')}, inner bases "
        f"{_shown(result['median_rank_inner'], '.0f')}",
        file=out,
    )
    match = result.get("motif_match")
    if match and match["far_false_positives"]:
        print(
            f"far false positives covered by a window matching a consensus at >= "
            f"{match['bases_needed']} bases: {match['far_false_positive_share']:.0%} (random far "
            f"positions: {_shown(match['random_far_share'], '.0%')}); mean best match "
            f"{match['far_false_positive_mean_match']:.2f} vs "
            f"{_shown(match['random_far_mean_match'], '.2f')}",
            file=out,
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("importance", help="importance.npz written by attngen explain")
    parser.add_argument("planted", help="ground truth: planted.csv (id,start,end), TSV or BED")
    parser.add_argument("--motifs", nargs="*", default=[], help="the planted consensus sequences")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args(argv)
    with np.load(args.importance, allow_pickle=False) as arrays:
        importance = {key: arrays[key] for key in arrays.files}
    result = analyse(importance, read_intervals(args.planted), [m.upper() for m in args.motifs])
    if args.out:  # written first (complete or not at all): the table is only a view of it
        write_json_atomic(args.out, result)
    print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
