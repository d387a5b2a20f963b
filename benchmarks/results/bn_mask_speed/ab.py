"""A/B/C: training-step CPU time of the backbone's masked BatchNorm statistics.

Three builds of the same models: `MaskedBatchNormalization` (the default: mask-weighted
sums, since the sixth session), Keras' own masked moments (the default of the fifth
session), and BatchNorm called without the mask (before the fifth session).

python benchmarks/results/bn_mask_speed/ab.py   # prints a table, writes ab.json beside it
"""

import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from attngen_keras.layers import MaskedBatchNormalization  # noqa: E402
from attngen_keras.models import build_attngen, build_cnn, compile_classifier  # noqa: E402

VARIANTS = ("weighted sums", "keras masked", "unmasked")
OURS_CALL, OURS_MOMENTS = MaskedBatchNormalization.__call__, MaskedBatchNormalization._moments


def unmasked_call(self, *args, **kwargs):
    kwargs.pop("mask", None)
    return OURS_CALL(self, *args, **kwargs)


def main(rounds=9, steps=20, batch=128, length=200):
    rng = np.random.default_rng(0)
    x = np.eye(4, dtype="float32")[rng.integers(0, 4, (batch * steps, length))]
    y = (np.arange(len(x)) % 2).astype("float32")
    models = {}
    for name, builder in (("cnn", build_cnn), ("attngen", build_attngen)):
        for variant in VARIANTS:
            model = builder(length, 2)
            compile_classifier(model, 2)
            # the swap must be in place while the train function is traced (first fit)
            if variant == "keras masked":
                MaskedBatchNormalization._moments = keras.layers.BatchNormalization._moments
            if variant == "unmasked":
                MaskedBatchNormalization.__call__ = unmasked_call
            model.fit(x[: 2 * batch], y[: 2 * batch], batch_size=batch, epochs=1, verbose=0)
            MaskedBatchNormalization.__call__ = OURS_CALL
            MaskedBatchNormalization._moments = OURS_MOMENTS
            models[(name, variant)] = model
    times = {key: [] for key in models}
    for _ in range(rounds):  # alternating
        for key, model in models.items():
            start = time.process_time()
            model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
            times[key].append(time.process_time() - start)
    print(
        f"CPU seconds per {steps} training steps (batch {batch}, {length} nt), median of {rounds}"
    )
    print("| model | " + " | ".join(VARIANTS) + " | weighted / unmasked | keras / unmasked |")
    print("|---" * (len(VARIANTS) + 3) + "|")
    results = {"steps": steps, "batch": batch, "length": length, "rounds": rounds,
               "cpu_seconds": {f"{n}/{v}": t for (n, v), t in times.items()}, "ratios": {}}  # fmt: skip
    for name in ("cnn", "attngen"):
        med = {v: float(np.median(times[(name, v)])) for v in VARIANTS}
        spread = {v: (min(times[(name, v)]), max(times[(name, v)])) for v in VARIANTS}
        cells = [f"{med[v]:.2f} ({spread[v][0]:.2f}-{spread[v][1]:.2f})" for v in VARIANTS]
        print(
            f"| {name} | "
            + " | ".join(cells)
            + f" | {med['weighted sums'] / med['unmasked']:.3f}"
            + f" | {med['keras masked'] / med['unmasked']:.3f} |"
        )
        results["ratios"][name] = {v: med[v] / med["unmasked"] for v in VARIANTS}
    out = Path(__file__).with_name("ab.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
