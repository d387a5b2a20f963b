"""Compiled paths on other Keras backends (each run in a subprocess with KERAS_BACKEND set)."""

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import numpy as np, keras
    from attngen_keras.callbacks import BatchNormRecalibration
    from attngen_keras.models import build_attngen

    assert keras.backend.backend() == "jax"
    x = np.eye(4, dtype="float32")[np.random.default_rng(0).integers(0, 4, (64, 40))]
    states = {}
    for mode in ("eager", "compiled"):
        keras.utils.set_random_seed(0)
        model = build_attngen(40, 2, filters=16, dense_units=8)
        model.get_layer("saliency_mask").mask_fraction.assign(0.4)
        for _ in range(3):
            model(x, training=True)
        recal = BatchNormRecalibration([x], steps=5)
        recal.set_model(model)
        if mode == "eager":  # uncompiled passes, the reference
            recal._training_forward = lambda x: (lambda batch: model(batch, training=True))
        recal.recalibrate()
        # a second recalibration after the weights changed (as after a training epoch) reads the
        # new weights and starts from the statistics the first one wrote back
        kernel = model.get_layer("stem_conv").kernel
        kernel.assign(kernel.value * 1.5)
        recal.recalibrate()
        states[mode] = [np.asarray(v.value) for v in model.non_trainable_variables]
        assert float(np.asarray(model.get_layer("saliency_mask").mask_fraction.value)) == np.float32(0.4)
    for a, b in zip(states["eager"], states["compiled"]):
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, atol=1e-5)
        else:
            np.testing.assert_array_equal(a, b)
    print("ok")
    """
)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_jax_recalibration_is_compiled_and_matches_the_eager_passes():
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")
