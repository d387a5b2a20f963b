"""A/B: training-step CPU time with BatchNorm called with `mask=valid` (the default) and without it.

python benchmarks/results/bn_mask_speed/ab.py
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from attngen_keras.models import build_attngen, build_cnn, compile_classifier  # noqa: E402

ORIGINAL_CALL = keras.layers.BatchNormalization.__call__


def unmasked_call(self, *args, **kwargs):
    """BatchNormalization without the mask (as before 2026-11-27, fifth session)."""
    kwargs.pop("mask", None)
    return ORIGINAL_CALL(self, *args, **kwargs)


def main(rounds=5, steps=20, batch=128, length=200):
    rng = np.random.default_rng(0)
    x = np.eye(4, dtype="float32")[rng.integers(0, 4, (batch * steps, length))]
    y = (np.arange(len(x)) % 2).astype("float32")
    models = {}
    for variant in ("masked", "unmasked"):
        if variant == "unmasked":
            keras.layers.BatchNormalization.__call__ = unmasked_call
        for name, build in (("cnn", build_cnn), ("attngen", build_attngen)):
            model = build(length, 2)
            compile_classifier(model, 2)
            model.fit(x[: 2 * batch], y[: 2 * batch], batch_size=batch, epochs=1, verbose=0)
            models[(name, variant)] = model
        keras.layers.BatchNormalization.__call__ = ORIGINAL_CALL
    times = {key: [] for key in models}
    for _ in range(rounds):  # alternating
        for key, model in models.items():
            start = time.process_time()
            model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
            times[key].append(time.process_time() - start)
    for name in ("cnn", "attngen"):
        masked, unmasked = (float(np.median(times[(name, v)])) for v in ("masked", "unmasked"))
        print(
            f"{name}: masked {masked:.2f}, unmasked {unmasked:.2f} CPU-s per {steps} steps; "
            f"ratio {masked / unmasked:.3f}"
        )


if __name__ == "__main__":
    main()
