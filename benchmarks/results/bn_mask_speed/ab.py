"""A/B: training-step time with BatchNorm called with mask=valid (current) vs without (before)."""
import time, sys, os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np, keras
from keras import layers
import attngen_keras.models.classifiers as C
from attngen_keras.models import build_cnn, build_attngen, compile_classifier

orig_call = layers.BatchNormalization.__call__
def unmasked_call(self, *args, **kwargs):
    kwargs.pop("mask", None)
    return orig_call(self, *args, **kwargs)

rng = np.random.default_rng(0)
x = np.eye(4, dtype="float32")[rng.integers(0, 4, (128 * 20, 200))]
y = (np.arange(len(x)) % 2).astype("float32")
models = {}
for variant in ("masked", "unmasked"):
    if variant == "unmasked":
        layers.BatchNormalization.__call__ = unmasked_call
    for name, build in (("cnn", build_cnn), ("attngen", build_attngen)):
        m = build(200, 2)
        compile_classifier(m, 2)
        m.fit(x[:256], y[:256], batch_size=128, epochs=1, verbose=0)  # trace
        models[(name, variant)] = m
    layers.BatchNormalization.__call__ = orig_call
times = {k: [] for k in models}
for rep in range(5):
    for k, m in models.items():
        t = time.process_time()
        m.fit(x, y, batch_size=128, epochs=1, verbose=0, shuffle=False)
        times[k].append(time.process_time() - t)
for name in ("cnn", "attngen"):
    a = np.median(times[(name, "masked")]); b = np.median(times[(name, "unmasked")])
    print(f"{name}: masked {a:.2f} CPU-s, unmasked {b:.2f} CPU-s per 20 steps; ratio {a/b:.3f}", [round(v,2) for v in times[(name,'masked')]], [round(v,2) for v in times[(name,'unmasked')]])
