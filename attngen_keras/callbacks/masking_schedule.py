"""`MaskingSchedule`: ramps the mask fraction of every SaliencyMask during fit."""

import math
import warnings

import keras

from attngen_keras.layers.saliency_mask import SaliencyMask

SHAPES = ("linear", "cosine", "step")


@keras.saving.register_keras_serializable(package="attngen")
class MaskingSchedule(keras.callbacks.Callback):
    """Ramps `mask_fraction` of every `SaliencyMask` from 0 to `target`.

    At the beginning of epoch `e` (0-based) every SaliencyMask in the model
    (nested models included) gets `value(e)`, assigned to its
    `mask_fraction` variable so compiled train steps see it. With
    `progress = clip((e - start_epoch) / warmup_epochs, 0, 1)`:

    - `linear`: `target * progress`
    - `cosine`: `target * (1 - cos(pi * progress)) / 2`
    - `step`: `0` until `progress == 1`, then `target`

    Epochs before `start_epoch` are unmasked; `warmup_epochs=0` jumps to
    `target` at `start_epoch`. With `ramp_faithfulness=True`, a model with a
    `faithfulness_scale` variable (`AttnGen`) gets the same ramp from 0 to 1
    (`progress(e)`), which switches its faithfulness loss on gradually (off by
    default: the loss shapes the attention from the first step). The fraction used in the epoch is written to
    the epoch logs as `mask_fraction`, so it appears in `History` and
    `CSVLogger` output (put this callback before `CSVLogger`).

    Args:
        target: final mask fraction, in `[0, 1)`.
        warmup_epochs: epochs the ramp takes.
        start_epoch: first epoch of the ramp.
        shape: `"linear"`, `"cosine"` or `"step"`.
        ramp_faithfulness: also ramp an AttnGen's `faithfulness_scale`.

    Example:

    >>> schedule = MaskingSchedule(target=0.2, warmup_epochs=2)
    >>> [round(schedule.value(e), 3) for e in range(4)]
    [0.0, 0.1, 0.2, 0.2]
    """

    def __init__(
        self, target=0.15, warmup_epochs=2, start_epoch=0, shape="linear", ramp_faithfulness=False
    ):
        super().__init__()
        if not 0.0 <= float(target) < 1.0:
            raise ValueError(f"target must be in [0, 1), got {target}")
        if int(warmup_epochs) < 0 or int(start_epoch) < 0:
            raise ValueError("warmup_epochs and start_epoch must be >= 0")
        if shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
        self.target = float(target)
        self.warmup_epochs = int(warmup_epochs)
        self.start_epoch = int(start_epoch)
        self.shape = shape
        self.ramp_faithfulness = bool(ramp_faithfulness)
        self._current = 0.0

    def value(self, epoch):
        """The mask fraction for 0-based `epoch`."""
        if epoch < self.start_epoch:
            return 0.0
        if self.warmup_epochs == 0:
            return self.target
        progress = min(max((epoch - self.start_epoch) / self.warmup_epochs, 0.0), 1.0)
        if self.shape == "linear":
            return self.target * progress
        if self.shape == "cosine":
            return self.target * (1.0 - math.cos(math.pi * progress)) / 2.0
        return self.target if progress >= 1.0 else 0.0

    @property
    def last_ramp_epoch(self):
        """First epoch at which the full `target` is in force."""
        return self.start_epoch + self.warmup_epochs

    def on_train_begin(self, logs=None):
        if not find_saliency_masks(self.model):
            raise ValueError("MaskingSchedule was given a model without any SaliencyMask layer")
        # a model's own training loss (AttnGen's faithfulness loss) is computed by the model
        # that `fit` trains, not by the models nested in it
        nested = [
            layer.name
            for layer in all_layers(self.model)
            if float(getattr(layer, "faithfulness_weight", 0.0) or 0.0) > 0
            and hasattr(layer, "faithfulness_loss")
        ]
        if nested and not hasattr(self.model, "faithfulness_loss"):
            warnings.warn(
                f"the model being trained nests AttnGen {nested[0]!r}, whose faithfulness loss "
                "is not trained this way (only the model that fit trains computes its own loss); "
                f"train {nested[0]!r} itself to keep its attention faithful",
                stacklevel=2,
            )

    def progress(self, epoch):
        """Share of the ramp done at 0-based `epoch` (0 before `start_epoch`, 1 from `last_ramp_epoch`)."""
        if epoch < self.start_epoch:
            return 0.0
        if self.warmup_epochs == 0:
            return 1.0
        return (
            self.value(epoch) / self.target
            if self.target > 0
            else min((epoch - self.start_epoch) / self.warmup_epochs, 1.0)
        )

    def on_epoch_begin(self, epoch, logs=None):
        self._current = self.value(epoch)
        for layer in find_saliency_masks(self.model):
            layer.mask_fraction.assign(self._current)
        scale = getattr(self.model, "faithfulness_scale", None)
        if self.ramp_faithfulness and scale is not None:
            scale.assign(self.progress(epoch))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["mask_fraction"] = self._current

    def get_config(self):
        return {
            "target": self.target,
            "warmup_epochs": self.warmup_epochs,
            "start_epoch": self.start_epoch,
            "shape": self.shape,
            "ramp_faithfulness": self.ramp_faithfulness,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def all_layers(model):
    """Every layer in `model`, nested models' layers included, breadth first."""
    found, stack = [], list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop(0)
        found.append(layer)
        stack.extend(getattr(layer, "layers", []))
    return found


def find_saliency_masks(model):
    """All `SaliencyMask` layers in `model`, searching nested models."""
    return [layer for layer in all_layers(model) if isinstance(layer, SaliencyMask)]
