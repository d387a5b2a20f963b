"""Milliseconds per recalibration batch (AttnGen, 64 x 200 nt), three timed recalibrations.

Run with KERAS_BACKEND set, once per version of batch_norm_recalibration.py:

    KERAS_BACKEND=torch python benchmarks/results/backends_cpu_recalibration/recalibration_step.py
"""

import time

import keras
import numpy as np

from attngen_keras.callbacks import BatchNormRecalibration
from attngen_keras.models import build_attngen

x = np.eye(4, dtype="float32")[np.random.default_rng(0).integers(0, 4, (64, 200))]
model = build_attngen(200, 2)
model.get_layer("saliency_mask").mask_fraction.assign(0.15)
model(x, training=True)
recal = BatchNormRecalibration([x], steps=50)
recal.set_model(model)
recal.recalibrate()
for _ in range(3):
    t = time.perf_counter()
    recal.recalibrate()
    [keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables]
    print(f"{(time.perf_counter() - t) / 50 * 1e3:.2f} ms/step")
