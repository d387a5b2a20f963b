# Ad hoc experiment of 2026-11-29 (eighteenth session; `offGG` with several groups and
# `distillG` added in the nineteenth, the earlier variants unchanged): it patches AttnGen in
# place (binary models only) and is not part of the library. See docs/results/faithfulness.md,
# section "The default on `attngen synthetic`'s default data".
"""`attngen train` (the arguments) with a variant of the faithfulness loss, from `VARIANT`:

- `off0`, `off1`, `off2`: group 0 (top removed), 1 (only top kept) or 2 (random removed) left out;
  `off01`: groups 0 and 1 left out (so on for any digits);
- `distill1`, `distill12`: group 1 (and 2) trained on the clean prediction of the training pass
  (a Bernoulli KL to it, no gradient through it) instead of the label;
- `gate1`: group 1 only on sequences the model classifies correctly (its clean prediction);
  `gate01`: groups 0 and 1 so; `gate0`: group 0 so;
- `conf1`: group 1's loss weighted by the copy's own probability of the label (no gradient
  through the weight), so that copies whose kept positions miss the evidence count less;
- `ramp`: `MaskingSchedule(ramp_faithfulness=True)`, the loss unchanged.

Example: `VARIANT=off1 python faithfulness_variants.py train --data syn/sequences.csv ...`
"""

import os
import sys

from keras import ops

import attngen_keras.callbacks.masking_schedule as schedule
import attngen_keras.models.classifiers as classifiers

VARIANT = os.environ["VARIANT"]


def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
    loss = super(classifiers.AttnGen, self).compute_loss(
        x, y, y_pred, sample_weight, training=training
    )
    if not training or self.faithfulness_weight == 0.0 or y is None:
        return loss
    self._clean_pred = ops.stop_gradient(y_pred)
    scale = ops.cast(self.faithfulness_scale, "float32") * self.faithfulness_weight
    return loss + ops.cast(scale, loss.dtype) * ops.cast(self.faithfulness_loss(x, y), loss.dtype)


def faithfulness_loss(self, x, y):
    x = ops.convert_to_tensor(x)
    perturbed, group, _ = self.faithfulness_inputs(x)
    eps = 1e-7
    p = ops.clip(ops.cast(self(perturbed, training=False), "float32"), eps, 1 - eps)[:, 0]
    label = ops.cast(ops.reshape(y, (-1,)), "float32")
    on_label = -(label * ops.log(p) + (1.0 - label) * ops.log(1.0 - p))
    to_uniform = 0.5 * (ops.log(0.5) - ops.log(p)) + 0.5 * (ops.log(0.5) - ops.log(1.0 - p))
    per = ops.where(group == 0, to_uniform, on_label)
    if VARIANT.startswith("off"):
        for g in VARIANT[3:]:
            per = ops.where(group == int(g), 0.0, per)
    elif VARIANT.startswith("distill"):
        clean = ops.clip(ops.cast(self._clean_pred, "float32")[:, 0], eps, 1 - eps)
        on_clean = clean * (ops.log(clean) - ops.log(p)) + (1 - clean) * (
            ops.log(1 - clean) - ops.log(1 - p)
        )
        for g in VARIANT[7:]:
            per = ops.where(group == int(g), on_clean, per)
    elif VARIANT == "conf1":
        on_true = ops.stop_gradient(label * p + (1.0 - label) * (1.0 - p))
        per = ops.where(group == 1, on_true * on_label, per)
    elif VARIANT.startswith("gate"):
        clean = ops.cast(self._clean_pred, "float32")[:, 0]
        wrong = ops.not_equal(clean > 0.5, label > 0.5)
        gated = ops.zeros_like(group, dtype="bool")
        for g in VARIANT[4:]:
            gated = ops.logical_or(gated, group == int(g))
        per = ops.where(ops.logical_and(gated, wrong), 0.0, per)
    return ops.mean(per)


if VARIANT == "ramp":
    original_init = schedule.MaskingSchedule.__init__

    def ramped_init(self, *args, **kwargs):
        original_init(self, *args, **{**kwargs, "ramp_faithfulness": True})

    schedule.MaskingSchedule.__init__ = ramped_init
else:
    classifiers.AttnGen.compute_loss = compute_loss
    classifiers.AttnGen.faithfulness_loss = faithfulness_loss

from attngen_keras.cli import main  # noqa: E402 (after the patch)

sys.exit(main(sys.argv[1:]))
