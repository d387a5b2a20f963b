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

    backend = keras.backend.backend()
    x = np.eye(4, dtype="float32")[np.random.default_rng(0).integers(0, 4, (64, 40))]
    small = np.eye(4, dtype="float32")[np.random.default_rng(1).integers(0, 4, (20, 40))]
    states = {}
    for mode in ("eager", "compiled"):
        keras.utils.set_random_seed(0)
        model = build_attngen(40, 2, filters=16, dense_units=8)
        model.get_layer("saliency_mask").mask_fraction.assign(0.4)
        for _ in range(3):
            model(x, training=True)
        recal = BatchNormRecalibration([x, small], steps=5)  # unequal batches: weights matter
        recal.set_model(model)
        if mode == "eager":  # uncompiled passes, the reference
            recal._training_forward = lambda x: (lambda batch: model(batch, training=True))
        recal.recalibrate()
        # a second recalibration after the weights changed (as after a training epoch) reads the
        # new weights and starts from the statistics the first one wrote back
        kernel = model.get_layer("stem_conv").kernel
        kernel.assign(kernel.value * 1.5)
        recal.recalibrate()
        if mode == "compiled" and backend == "jax":  # the jitted pass ran, left no carried state
            assert type(recal._forward).__name__ == "_JaxTrainingForward"
            assert recal._forward._state is None
        if mode == "compiled" and backend == "torch":  # the pass without autograd ran
            assert recal._forward.__qualname__.startswith("_torch_training_forward")
        states[mode] = [np.asarray(v.value) for v in model.non_trainable_variables]
        assert float(np.asarray(model.get_layer("saliency_mask").mask_fraction.value)) == np.float32(0.4)
    for a, b in zip(states["eager"], states["compiled"]):
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, atol=1e-5)
        else:
            np.testing.assert_array_equal(a, b)
    print("ok", backend)
    """
)


def _run_on_backend(backend, script, *args):
    """Runs `script` in a subprocess with `KERAS_BACKEND=backend`; it must end by printing `ok`."""
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    env = {**os.environ, "KERAS_BACKEND": backend}
    result = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith(f"ok {backend}")


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_recalibration_pass_matches_the_eager_passes(backend):
    """JAX: a jitted pass that carries the statistics; torch: a pass without autograd."""
    _run_on_backend(backend, SCRIPT)


IMPORTANCE_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, keras
    import attngen_keras
    from attngen_keras.explain.importance import importance_scores

    path, reference = sys.argv[1], np.load(sys.argv[2])
    x = reference["x"]
    for name in ("cnn", "attngen"):
        model = keras.saving.load_model(f"{path}/{name}.keras")
        for method in ("saliency", "input_x_gradient", "ism"):
            got = importance_scores(model, x, method, batch_size=4)
            np.testing.assert_allclose(got, reference[f"{name}_{method}"], atol=2e-5, rtol=1e-4)
        smooth = importance_scores(model, x, "smoothgrad", batch_size=4, smooth_samples=3)
        assert smooth.shape == x.shape[:2] and np.isfinite(smooth).all() and smooth.max() > 0
        try:
            importance_scores(model, x, "gradcam")
        except ValueError as error:
            assert "TensorFlow backend" in str(error)
        else:
            raise AssertionError("gradcam ran without TensorFlow")
    print("ok", keras.backend.backend())
    """
)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_gradients_and_ism_on_other_backends_equal_tensorflows(backend, tmp_path):
    """The same saved models give the same saliency, input x gradient and ISM maps on JAX/torch."""
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    import numpy as np

    from attngen_keras.explain.importance import importance_scores
    from attngen_keras.models import build_attngen, build_cnn

    rng = np.random.default_rng(0)
    x = np.eye(4, dtype="float32")[rng.integers(0, 4, (6, 24))]
    x[5, 20:] = 0.0  # a padded sequence
    reference = {"x": x}
    for name, model in (("cnn", build_cnn(24, 2)), ("attngen", build_attngen(24, 2, filters=8))):
        model.save(tmp_path / f"{name}.keras")
        for method in ("saliency", "input_x_gradient", "ism"):
            reference[f"{name}_{method}"] = importance_scores(model, x, method, batch_size=4)
    np.savez(tmp_path / "reference.npz", **reference)
    _run_on_backend(backend, IMPORTANCE_SCRIPT, tmp_path, tmp_path / "reference.npz")


WINDOW_SCRIPT = textwrap.dedent(
    """
    import numpy as np, keras
    from attngen_keras.layers.saliency_mask import window_log_mean_exp

    backend = keras.backend.backend()
    rng = np.random.default_rng(4)
    values = rng.normal(size=(2, 10)).astype("float32") * 3
    valid = np.ones((2, 10), "float32")
    valid[1, 7:] = 0.0
    upstream = rng.normal(size=(2, 10)).astype("float32") * valid

    def loss(v):
        return keras.ops.sum(window_log_mean_exp(v, valid, 3) * upstream)

    if backend == "jax":
        import jax
        grad = np.asarray(jax.grad(loss)(values))
    else:
        import torch
        v = torch.tensor(values, requires_grad=True)
        loss(v).backward()
        grad = v.grad.numpy()
    expected = np.zeros((2, 10))
    for b in range(2):
        for i in range(10):
            lo, hi = max(0, i - 1), min(10, i + 2)
            w = valid[b, lo:hi].astype("float64")
            if w.sum():
                e = np.exp(values[b, lo:hi] - values[b, lo:hi].max()) * w
                expected[b, lo:hi] += upstream[b, i] * e / e.sum()
    np.testing.assert_allclose(grad, expected, atol=1e-5)
    print("ok", backend)
    """
)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_window_log_mean_exp_gradient_on_other_backends(backend):
    """Each window's maximum takes its whole gradient (JAX and torch split a tied minimum's)."""
    _run_on_backend(backend, WINDOW_SCRIPT)


FIT_SCRIPT = textwrap.dedent(
    """
    import numpy as np, keras
    from attngen_keras.models import build_attngen, compile_classifier

    backend = keras.backend.backend()
    x = np.eye(4, dtype="float32")[np.random.default_rng(0).integers(0, 4, (5, 30))]
    model = build_attngen(30, 2, seed=1, filters=8, dense_units=8)  # the faithful default
    compile_classifier(model, 2)
    for batch_size in (1, 2, 4):  # the faithfulness loss's groups turn in batches under 3 rows
        history = model.fit(x, np.array([0, 1, 0, 1, 1]), batch_size=batch_size, verbose=0)
        assert np.isfinite(history.history["loss"]).all(), history.history
    first = [int(np.asarray(model.faithfulness_inputs(x[:1])[1])[0]) for _ in range(3)]
    assert sorted(first) == [0, 1, 2], first
    print("ok", backend)
    """
)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_faithful_default_trains_at_any_batch_size(backend):
    """`fit` of the default AttnGen (its faithfulness loss) at batch sizes 1, 2 and 4."""
    _run_on_backend(backend, FIT_SCRIPT)
