"""Benchmark: what the faithfulness loss costs per training step, and what a batch fraction saves.

Train-step time (median, interleaved repeats, in-memory batches so the input
pipeline is excluded) of the plain CNN, the paper's AttnGen, and the default
(faithful) AttnGen with `faithfulness_batch_fraction` 1, 1/2 and 1/3, at the
CLI's batch size and the mask fraction the schedule reaches (0.15). Ratios are
to the CNN measured in the same run.

    python benchmarks/faithfulness_cost.py            # about 3 min on 2 cores
    python benchmarks/faithfulness_cost.py --quick    # fewer steps (a smoke run)

Writes `benchmarks/results/faithfulness_cost/faithfulness_cost.{json,md}`.
"""

import argparse
import json
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "faithfulness_cost"

# name -> (model, build options)
VARIANTS = {
    "cnn": ("cnn", {}),
    "paper": ("attngen", {"preset": "paper"}),
    "faithful (F=1, default)": ("attngen", {}),
    "faithful F=1/2": ("attngen", {"faithfulness_batch_fraction": 0.5}),
    "faithful F=1/3": ("attngen", {"faithfulness_batch_fraction": 1 / 3}),
}


def step_times(length=200, batch=128, steps=30, repeats=5):
    import tensorflow as tf

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from speed import _BatchTimer, build_compiled  # the speed benchmark's step timing

    rng = np.random.default_rng(0)
    x = np.eye(4, dtype="float32")[rng.integers(0, 4, (20 * batch, length))]
    y = rng.integers(0, 2, 20 * batch)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).repeat()
    models = {
        name: build_compiled(kind, length, **options) for name, (kind, options) in VARIANTS.items()
    }
    for model in models.values():
        model.fit(data, steps_per_epoch=5, epochs=1, verbose=0)  # trace
    times = {name: [] for name in models}
    for repeat in range(repeats):  # interleaved: drifts in machine load hit every model alike
        for name, model in models.items():
            timer = _BatchTimer()
            model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[timer])
            times[name] += timer.seconds[2:]
        print(f"repeat {repeat + 1}/{repeats} done", flush=True)
    medians = {name: float(np.median(t)) * 1000 for name, t in times.items()}
    return {
        name: {
            "step_ms_median": medians[name],
            "step_ms_p10_p90": [float(np.percentile(times[name], q) * 1000) for q in (10, 90)],
            "over_cnn": medians[name] / medians["cnn"],
            "over_paper": medians[name] / medians["paper"],
        }
        for name in models
    }


def markdown(result):
    lines = [
        "| model | step ms (median) | p10-p90 | / CNN | / paper AttnGen |",
        "|---|---|---|---|---|",
    ]
    for name, row in result.items():
        low, high = row["step_ms_p10_p90"]
        lines.append(
            f"| {name} | {row['step_ms_median']:.1f} | {low:.1f}-{high:.1f} | "
            f"{row['over_cnn']:.2f}x | {row['over_paper']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    steps, repeats = (6, 2) if args.quick else (30, 5)
    result = step_times(steps=steps, repeats=repeats)
    table = markdown(result)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "faithfulness_cost.md").write_text(table)
    details = {
        "protocol": {"length": 200, "batch": 128, "steps_per_repeat": steps, "repeats": repeats,
                     "mask_fraction": 0.15, "quick": args.quick},
        "models": result,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }  # fmt: skip
    (out / "faithfulness_cost.json").write_text(json.dumps(details, indent=2))
    print(table)
    print(f"wrote faithfulness_cost.json and faithfulness_cost.md to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
