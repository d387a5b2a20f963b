"""The scratch timing run on the H200 (KERAS_BACKEND=jax), kept as it ran (only reformatted).

Recalibration ms per batch at batch 1024 x 200 nt for three ways of feeding
the batches, then `fit` ms per step and `predict` ms per batch for AttnGen
(faithful preset) and the CNN on numpy arrays. Output: recalibration_micro.log.
"""

import time

import jax
import numpy as np

from attngen_keras.callbacks import BatchNormRecalibration
from attngen_keras.models import build_attngen, build_cnn, compile_classifier

B = 1024
x = np.eye(4, dtype="float32")[np.random.default_rng(0).integers(0, 4, (B * 8, 200))]
y = np.random.default_rng(1).integers(0, 2, B * 8)
model = build_attngen(200, 2)
compile_classifier(model, 2)
model.get_layer("saliency_mask").mask_fraction.assign(0.15)


def run(name, data, n=43):
    recal = BatchNormRecalibration(data, steps=n)
    recal.set_model(model)
    recal.recalibrate()
    t = time.perf_counter()
    recal.recalibrate()
    [np.asarray(v.value) for v in model.non_trainable_variables]
    print(f"recal {name}: {(time.perf_counter() - t) / n * 1e3:.2f} ms/step")


def gen():
    rng = np.random.default_rng(2)
    while True:
        yield x[rng.permutation(len(x))[:B]]


run("numpy fancy-indexed", gen())
run("numpy contiguous", [x[i * B : (i + 1) * B] for i in range(8)])
run("device arrays", [jax.device_put(x[i * B : (i + 1) * B]) for i in range(8)])
for m in (model, build_cnn(200, 2)):
    if m is not model:
        compile_classifier(m, 2)
    m.fit(x, y, batch_size=B, epochs=1, verbose=0)
    t = time.perf_counter()
    m.fit(x, y, batch_size=B, epochs=3, verbose=0)
    print(f"fit {m.name}: {(time.perf_counter() - t) / 24 * 1e3:.2f} ms/step")
    m.predict(x, batch_size=B, verbose=0)
    t = time.perf_counter()
    m.predict(x, batch_size=B, verbose=0)
    print(f"predict {m.name}: {(time.perf_counter() - t) / 8 * 1e3:.2f} ms/batch")
