"""Benchmark: inference cost of the default AttnGen's window pooling, before and after 2026-11-29.

The default model pools its attention logits over a 9-nt window with a
log-mean-exp (`saliency_mask.window_log_mean_exp`). Until 2026-11-29 it
stacked the window's shifted copies into one `(batch, length, window)` array;
it now accumulates one `(batch, length)` array per offset. This script keeps
the stacked version as the reference and times, interleaved in one process
(`--rounds` rounds, each running both in turn, order alternating):

- `pooling`: the function alone on `(batch, 200)` values, window 9;
- `forward`: the default model's whole forward pass (`tf.function`, inference
  mode) with either function in its SaliencyMask;

and checks that the two give the same outputs (largest absolute difference).

    python benchmarks/window_pooling_forward.py --out benchmarks/results/window_pooling_forward.json
"""

import argparse
import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

LENGTH, WINDOW = 200, 9


def stacked_window_log_mean_exp(values, weights, window):
    """The reference: `window_log_mean_exp` as it was until 2026-11-29 (the window stacked)."""
    from keras import ops

    values = ops.cast(values, "float32")
    weights = ops.cast(weights, "float32")
    half = window // 2
    padded_values = ops.pad(values, [[0, 0], [half, half]])
    padded_weights = ops.pad(weights, [[0, 0], [half, half]])

    def shifted(padded, k):
        stop = k - (window - 1)
        return padded[:, k:stop] if stop < 0 else padded[:, k:]

    stacked = ops.stack([shifted(padded_values, k) for k in range(window)], axis=-1)
    counted = ops.stack([shifted(padded_weights, k) for k in range(window)], axis=-1)
    present = counted > 0
    top = ops.max(ops.where(present, stacked, -3.0e38), axis=-1, keepdims=True)
    top = ops.stop_gradient(ops.where(top > -1.0e38, top, 0.0))
    terms = ops.exp(ops.where(present, stacked - top, 0.0)) * counted
    total = ops.sum(counted, axis=-1)
    mean_exp = ops.sum(terms, axis=-1) / ops.maximum(total, 1e-6)
    pooled = ops.squeeze(top, -1) + ops.log(ops.maximum(mean_exp, 1e-30))
    return ops.where(total > 0, pooled, 0.0)


def timed(function, calls, *args):
    """Seconds per call of `function(*args)` (its output fetched), over `calls` calls."""
    start = time.perf_counter()
    for _ in range(calls):
        function(*args).numpy()
    return (time.perf_counter() - start) / calls


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=5, help="calls per timed block")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()

    import tensorflow as tf

    import attngen_keras.layers.saliency_mask as saliency_mask
    from attngen_keras.models import build_model

    current = saliency_mask.window_log_mean_exp
    versions = {"stacked": stacked_window_log_mean_exp, "accumulated": current}
    rng = np.random.default_rng(0)
    values = tf.constant(rng.normal(size=(args.batch, LENGTH)).astype("float32") * 3)
    weights = np.ones((args.batch, LENGTH), "float32")
    weights[:, LENGTH - 30 :] = 0.0  # padding at the end, as for shorter sequences
    weights = tf.constant(weights)
    one_hot = tf.one_hot(rng.integers(0, 4, (args.batch, LENGTH)), 4)

    model = build_model("attngen", LENGTH, 2)
    pooling, forward = {}, {}
    for name, function in versions.items():
        pooling[name] = tf.function(lambda f=function: f(values, weights, WINDOW))
        # the SaliencyMask looks the function up in its module when it is traced
        saliency_mask.window_log_mean_exp = function
        forward[name] = tf.function(lambda x: model(x, training=False))
        forward[name].get_concrete_function(tf.TensorSpec(one_hot.shape, one_hot.dtype))
    saliency_mask.window_log_mean_exp = current

    outputs = {name: (pooling[name]().numpy(), forward[name](one_hot).numpy()) for name in versions}
    pooling_diff = float(np.abs(outputs["stacked"][0] - outputs["accumulated"][0]).max())
    forward_diff = float(np.abs(outputs["stacked"][1] - outputs["accumulated"][1]).max())

    seconds = {f"{part}_{name}": [] for part in ("pooling", "forward") for name in versions}
    for r in range(args.rounds):
        order = list(versions) if r % 2 == 0 else list(reversed(versions))
        for name in order:
            seconds[f"pooling_{name}"].append(timed(pooling[name], args.calls))
            seconds[f"forward_{name}"].append(timed(forward[name], args.calls, one_hot))
    median = {key: float(np.median(v)) for key, v in seconds.items()}
    result = {
        "batch": args.batch, "length": LENGTH, "window": WINDOW, "rounds": args.rounds,
        "calls": args.calls, "median_seconds": median, "seconds": seconds,
        "pooling_ratio": median["pooling_stacked"] / median["pooling_accumulated"],
        "forward_ratio": median["forward_stacked"] / median["forward_accumulated"],
        "pooling_max_abs_difference": pooling_diff, "forward_max_abs_difference": forward_diff,
        "machine": platform.machine(), "cpus": os.cpu_count(), "load_avg": os.getloadavg(),
    }  # fmt: skip
    print(
        f"| part (batch {args.batch} x {LENGTH}) | stacked (ms) | accumulated (ms) | ratio | max abs difference |"
    )
    print("|---|---|---|---|---|")
    for part, diff in (("pooling", pooling_diff), ("forward", forward_diff)):
        a, b = median[f"{part}_stacked"], median[f"{part}_accumulated"]
        print(f"| {part} | {a * 1e3:.1f} | {b * 1e3:.1f} | {a / b:.2f}x | {diff:.1e} |")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
