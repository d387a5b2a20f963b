"""Where the AttnGen/CNN epoch gap goes on JAX: per-step times of variants (scratch diagnostic).

Each variant is built and compiled as `benchmarks/backends.py` does; then, on
batches already on the device, the mean milliseconds of `train_on_batch` and
`test_on_batch` (30 calls each after warm-up, waiting for the result), and the
seconds per epoch of `fit` from numpy (no validation, no callbacks; 2 epochs after a
warm-up one). Variants isolate the masked BatchNorm statistics (unmasked
instead) and the per-sequence sort of `lowest_fraction_mask` (a sort-free stand-in).

    KERAS_BACKEND=jax python step_breakdown.py --sequences 48000 --batch 1024 --out out.json
"""

import argparse
import json
import sys
import time

import keras
import numpy as np
from keras import ops

import attngen_keras.layers.saliency_mask as saliency_mask_module
import attngen_keras.models.classifiers as classifiers
from attngen_keras.models import build_model, compile_classifier
from attngen_keras.synthetic import planted_motif_data


class UnmaskedStatisticsBN(classifiers.MaskedBatchNormalization):
    def _moments(self, inputs, mask):
        return keras.layers.BatchNormalization._moments(self, inputs, None)


def sort_free_mask(ranking, is_valid, fraction):
    # a data-dependent stand-in of the same shape with no sort (wrong selection; timing only)
    ranking = ops.cast(ranking, "float32")
    cut = ops.mean(ranking, axis=-1, keepdims=True) - ops.cast(fraction, "float32")
    return ops.logical_and(ranking < cut, is_valid)


VARIANTS = {
    "cnn": ("cnn", None, {}),
    "faithful": ("attngen", "faithful", {}),
    "paper": ("attngen", "paper", {}),
    "faithful_unmasked_bn": ("attngen", "faithful", {"bn": True}),
    "faithful_no_sort": ("attngen", "faithful", {"sort": True}),
    "paper_no_sort_unmasked_bn": ("attngen", "paper", {"bn": True, "sort": True}),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sequences", type=int, default=48000)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    data = planted_motif_data(n=args.sequences, length=200, seed=0)
    table = np.zeros((256, 4), np.float32)
    for i, base in enumerate(b"ACGT"):
        table[base] = np.eye(4, dtype=np.float32)[i]
    tokens = np.frombuffer("".join(data.sequences).encode(), np.uint8).reshape(
        len(data.sequences), -1
    )
    x, y = table[tokens], np.asarray(data.labels, np.int32)
    xb = ops.convert_to_tensor(x[: args.batch])
    yb = ops.convert_to_tensor(y[: args.batch])
    original_bn, original_mask = (
        classifiers.MaskedBatchNormalization,
        saliency_mask_module.lowest_fraction_mask,
    )
    rows = {}
    for name in args.variants:
        kind, preset, patch = VARIANTS[name]
        classifiers.MaskedBatchNormalization = (
            UnmaskedStatisticsBN if patch.get("bn") else original_bn
        )
        mask_fn = sort_free_mask if patch.get("sort") else original_mask
        saliency_mask_module.lowest_fraction_mask = mask_fn
        classifiers.lowest_fraction_mask = mask_fn
        keras.utils.set_random_seed(0)
        options = {"mask_fraction": 0.15, "seed": 0, "preset": preset} if preset else {}
        model = build_model(kind, 200, 2, **options)
        compile_classifier(model, 2)
        row = {}
        for label, call in (("train_ms", model.train_on_batch), ("test_ms", model.test_on_batch)):
            for _ in range(3):
                out = call(xb, yb)
            float(np.asarray(out[0] if isinstance(out, list) else out))
            start = time.perf_counter()
            for _ in range(args.calls):
                out = call(xb, yb)
            float(np.asarray(out[0] if isinstance(out, list) else out))
            row[label] = 1000 * (time.perf_counter() - start) / args.calls

        class Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.times = []

            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.times.append(time.perf_counter() - self.start)

        timer = Timer()
        model.fit(x, y, batch_size=args.batch, epochs=3, verbose=0, callbacks=[timer])
        row["fit_epoch_s"] = float(np.mean(timer.times[1:]))
        row["steps_per_epoch"] = int(np.ceil(len(x) / args.batch))
        rows[name] = row
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)
        keras.backend.clear_session()
    result = {
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "batch": args.batch,
        "sequences": args.sequences,
        "calls": args.calls,
        "rows": rows,
    }
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=1)
    cnn = rows.get("cnn")
    if cnn:
        print("| variant | train ms/step | test ms/step | fit s/epoch | fit / CNN |")
        print("|---|---|---|---|---|")
        for name, row in rows.items():
            print(
                f"| {name} | {row['train_ms']:.2f} | {row['test_ms']:.2f} | {row['fit_epoch_s']:.3f} | "
                f"{row['fit_epoch_s'] / cnn['fit_epoch_s']:.2f}x |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
