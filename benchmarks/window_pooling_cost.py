"""Benchmark: training-step cost of the default AttnGen's window pooling, as ratios in one run.

Times `train_on_batch` (batch 128, 200 nt, masking active at 0.15) of:

- `default`: the default AttnGen (`--preset faithful`: log-mean-exp window at sharpness 2,
  window weight learned per position, loss weight 2; before the thirteenth session a fixed
  weight: `benchmarks/results/window_pooling_cost.json` holds that run, `_gate.json` the
  learned weight's, `_loop.json` the same after 2026-11-29's cheaper log-mean-exp, whose
  inference cost `window_pooling_forward.py` measures);
- `mean_window`: the default until 2026-11-28 (the window's mean, loss weight 1.5;
  the loss weight does not change the computation);
- `cnn`: the same backbone without SaliencyMask;

interleaved (one block of steps of each model in turn, `--rounds` times), so that load
on the shared cores falls on all three alike; reports each model's median step time
and the ratios to `mean_window` and to `cnn`.

    python benchmarks/window_pooling_cost.py --out benchmarks/results/window_pooling_cost.json
"""

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

BATCH, LENGTH = 128, 200
MODELS = {
    "default": ("attngen", {}),
    "mean_window": (
        "attngen",
        {
            "attention_window_pooling": "mean",
            "faithfulness_weight": 1.5,
            "attention_window_sharpness": 1.0,
            "attention_window_gate": False,
        },
    ),
    "cnn": ("cnn", {}),
}


def build(kind, options):
    import keras

    from attngen_keras.models import build_model, compile_classifier

    keras.utils.set_random_seed(0)
    model = build_model(kind, LENGTH, 2, **options)
    compile_classifier(model, 2)
    if kind == "attngen":
        model.get_layer("saliency_mask").mask_fraction.assign(0.15)
    return model


def measure(rounds=5, steps=20, warmup=5, seed=0):
    """`{model: [seconds per step of each block]}`, blocks interleaved across models."""
    rng = np.random.default_rng(seed)
    x = np.eye(4, dtype="float32")[rng.integers(0, 4, (BATCH, LENGTH))]
    y = rng.integers(0, 2, (BATCH, 1)).astype("float32")
    models = {name: build(*spec) for name, spec in MODELS.items()}
    for model in models.values():
        for _ in range(warmup):
            model.train_on_batch(x, y)
    times = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            start = time.perf_counter()
            for _ in range(steps):
                model.train_on_batch(x, y)
            times[name].append((time.perf_counter() - start) / steps)
    return times


def summarize(times):
    median = {name: float(np.median(block)) for name, block in times.items()}
    return {
        "median_step_seconds": median,
        "ratio_to_mean_window": {n: median[n] / median["mean_window"] for n in median},
        "ratio_to_cnn": {n: median[n] / median["cnn"] for n in median},
        "block_step_seconds": times,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="steps per timed block")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args(argv)
    result = summarize(measure(args.rounds, args.steps))
    result.update(
        batch=BATCH, length=LENGTH, rounds=args.rounds, steps=args.steps,
        machine=platform.processor() or platform.machine(), cpus=os.cpu_count(),
    )  # fmt: skip
    if args.out:
        from attngen_keras.files import write_json_atomic

        write_json_atomic(args.out, result)
    print("| model | median step (ms) | vs mean_window | vs cnn |\n|---|---|---|---|")
    for name, seconds in result["median_step_seconds"].items():
        print(
            f"| {name} | {seconds * 1000:.1f} | {result['ratio_to_mean_window'][name]:.2f}x "
            f"| {result['ratio_to_cnn'][name]:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
