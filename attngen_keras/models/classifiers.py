"""Conv1D DNA classifiers: AttnGen, the same backbone without it, and GB's CNN."""

import inspect
import math
import numbers

import keras
from keras import layers, ops

from attngen_keras.callbacks.masking_schedule import find_saliency_masks
from attngen_keras.layers import (
    ApplyValidity,
    MaskedBatchNormalization,
    MaskedGlobalPooling1D,
    PoolValidity,
    SaliencyMask,
    ValidPositions,
)
from attngen_keras.layers.saliency_mask import lowest_fraction_mask

INPUT_NAME = "one_hot"
SALIENCY_LAYER_NAME = "saliency_mask"
STEM_LAYER_NAME = "stem_conv"
CONTEXT_LAYER_NAME = "attention_context"

BACKBONE_DEFAULTS = {
    "filters": 64,
    "kernel_size": 9,
    "conv_blocks": 2,
    "block_kernel_size": 5,
    "dilation_rate": 1,
    "pool_size": 2,
    "dropout": 0.2,
    "dense_units": 64,
    "batch_norm_momentum": 0.9,
}


MASK_PLACEMENTS = ("features", "nucleotides")
STEM_ACTIVATIONS = ("relu", "exponential")
FAITHFULNESS_TARGETS = ("uniform", "baseline")
N_ENCODING = 0.25  # one-hot value of each base for N (see attngen_keras.data.alphabet)

# The paper's AttnGen (arXiv 2605.14073): soft attention on the stem features,
# masking in training only, no faithfulness objective.
PAPER_PRESET = {
    "mask_on": "features",
    "inference": "soft",
    "temperature": 1.0,
    "normalization": "softmax",
    "stem_activation": "relu",
    "faithfulness_weight": 0.0,
    "faithfulness_target": "uniform",
}
# The default AttnGen: attention on the nucleotides themselves, trained so that
# its top `faithfulness_fraction` of positions is necessary and sufficient, with
# two-scale logits: each position's logit mixes its own with a soft maximum
# (log-mean-exp at sharpness 2) of the logits in the 9-nt window around it (the
# context convolution's width), with a weight the model learns per position
# (starting at 0.75). The window lets a whole motif rank high together, its edge
# bases with its core; the learned weight lets the model drop the window where
# single positions decide (human_or_fungus: weight 0.1-0.17, so removing the top
# 20% still takes accuracy to ~0.6) and raise it on motif tasks (planted motifs:
# ~0.8). Chosen 2026-11-28 (thirteenth session) on planted95 and human_or_fungus
# validation, then checked on the fresh heldout95e by a rule fixed before the run
# (docs/results/faithfulness.md): planted-motif AUPRC 0.919 against 0.880 for the
# previous default, at its accuracy.
FAITHFUL_PRESET = {
    "mask_on": "nucleotides",
    "inference": "soft",
    "temperature": 1.0,
    "normalization": "softmax",
    "stem_activation": "relu",
    "faithfulness_weight": 2.0,
    "faithfulness_target": "uniform",
    "attention_window": 9,
    "attention_window_weight": 0.75,
    "attention_window_pooling": "log_mean_exp",
    "attention_window_sharpness": 2.0,
    "attention_window_gate": True,
}
# The default of 2026-11-28 before the learned weight (eleventh session): a fixed
# window weight 0.75 and sharpness 1; reachable as
# `--no-attention-window-gate --attention-window-sharpness 1`.
SOFT_MAXIMUM_PRESET = {
    **FAITHFUL_PRESET,
    "attention_window_sharpness": 1.0,
    "attention_window_gate": False,
}
# The default until 2026-11-28 (the window's mean, loss weight 1.5); reachable as
# `--attention-window-pooling mean --faithfulness-weight 1.5
# --attention-window-sharpness 1 --no-attention-window-gate`.
MEAN_WINDOW_PRESET = {
    **SOFT_MAXIMUM_PRESET,
    "faithfulness_weight": 1.5,
    "attention_window_pooling": "mean",
}
# The faithful AttnGen with the attention logits replaced by their 9-nt window
# mean: the most motif-shaped maps on motif tasks (before the soft maximum), at
# the cost of necessity on compositional ones (see the faithfulness results).
MOTIF_PRESET = {**MEAN_WINDOW_PRESET, "attention_window_weight": 1.0}
PRESETS = {"faithful": FAITHFUL_PRESET, "motif": MOTIF_PRESET, "paper": PAPER_PRESET}
DEFAULT_PRESET = "faithful"


@keras.saving.register_keras_serializable(package="attngen")
class AttnGen(keras.Model):
    """AttnGen: a Conv1D classifier with a `SaliencyMask`, optionally faithful by training.

    A functional model (`model.input`, `get_layer` and `.keras` files work as
    for any functional model) built from its constructor arguments, which
    `get_config` stores. Copy it with
    `type(model).from_config(model.get_config())` and `set_weights`:
    `keras.models.clone_model` returns a plain functional copy, without the
    faithfulness loss.

    - `mask_on="features"` (the paper): the SaliencyMask scores and masks the
      stem convolution's output; a nucleotide's attention is the projection
      of the scores through the stem's receptive field.
    - `mask_on="nucleotides"`: a small context convolution scores every
      nucleotide and the SaliencyMask masks the one-hot input itself (a
      masked nucleotide becomes N), so the attention ranks exactly what a
      perturbation removes.
    - `faithfulness_weight > 0` adds, in training only, a loss on a second
      forward pass (in inference mode) of perturbed copies of the batch, split
      in three: with the
      top `faithfulness_fraction` of nucleotides by the model's own attention
      replaced by N, the output is pulled to the uniform distribution
      (comprehensiveness: the top positions are necessary); with only those
      kept and everything else N, and with a random `faithfulness_fraction`
      of the *other* positions replaced by N, the output is trained on the
      label (sufficiency, and: removing what is not the rationale does not
      matter). The loss
      is multiplied by `faithfulness_scale` (a non-trainable variable, 1 by
      default), which `MaskingSchedule(ramp_faithfulness=True)` ramps from 0
      to 1 with the mask fraction.

    Args:
        length: sequence length of the one-hot input.
        num_classes: number of classes; 2 gives a single sigmoid output.
        mask_fraction: initial mask fraction (usually 0, ramped by
            `MaskingSchedule`).
        attention_units: hidden width of the attention scorer.
        mask_on: `"features"` or `"nucleotides"`.
        inference: SaliencyMask inference mode, `"soft"` or `"hard"`.
        temperature: attention temperature (< 1: sharper).
        normalization: SaliencyMask weights: `"softmax"`, `"sigmoid"` gates
            or `"sparsemax"` (exact zeros; see `SaliencyMask`).
        faithfulness_target: where the loss pulls the output when the top
            positions are removed: `"uniform"` (chance) or `"baseline"` (the
            model's own output on the all-N sequence, so that e.g. a motif
            classifier may call "no motif" once its motif is removed).
        attention_window: odd width of the window over which the
            SaliencyMask pools the attention logits (1: none), a contiguity
            prior so that the attention selects runs of neighbouring positions.
        attention_window_weight: weight of the pooled window against each
            position's own logit (1: the window alone; see `SaliencyMask`).
        attention_window_pooling: `"mean"` of the window's logits or
            `"log_mean_exp"`, their soft maximum (see `SaliencyMask`).
        attention_window_sharpness: `b` of the log-mean-exp pooling,
            `log(mean(exp(b * logits))) / b` (see `SaliencyMask`).
        attention_window_gate: learn the window weight per position,
            starting from `attention_window_weight` (see
            `SaliencyMask(window_gate=...)`).
        attention_entropy_weight: weight of a training penalty on the
            normalized entropy of the attention scores (0: none; see
            `SaliencyMask(entropy_weight=...)`).
        stem_activation: `"relu"` or `"exponential"` (Koo & Ploenzke 2021).
        faithfulness_weight: weight of the faithfulness loss (0: off).
        faithfulness_fraction: share of nucleotides that the loss treats as
            the model's rationale.
        faithfulness_batch_fraction: share of each batch's sequences (the
            first ones of the shuffled batch) whose perturbed copies the loss
            scores, in `(0, 1]`; below 1 it costs less per step, with a
            noisier loss.
        seed: seed of the random positions of the faithfulness loss.
        backbone: overrides of `BACKBONE_DEFAULTS`.
        name: model name.

    Example:

    >>> model = AttnGen(200, 2, mask_on="nucleotides", faithfulness_weight=1.0)
    >>> model.output_shape
    (None, 1)
    """

    def __init__(
        self,
        length,
        num_classes,
        mask_fraction=0.0,
        attention_units=32,
        mask_on="features",
        inference="soft",
        temperature=1.0,
        stem_activation="relu",
        faithfulness_weight=0.0,
        faithfulness_fraction=0.2,
        normalization="softmax",
        faithfulness_target="uniform",
        faithfulness_batch_fraction=1.0,
        attention_window=1,
        attention_window_weight=1.0,
        attention_entropy_weight=0.0,
        attention_window_pooling="mean",
        attention_window_sharpness=1.0,
        attention_window_gate=False,
        seed=None,
        backbone=None,
        name="attngen",
        **kwargs,
    ):
        if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 1:
            raise ValueError(
                f"length must be a positive integer (AttnGen takes sequences of one length; "
                f"pad or crop them to it), got {length!r}"
            )
        if (
            isinstance(num_classes, bool)
            or not isinstance(num_classes, numbers.Integral)
            or num_classes < 2
        ):
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        if mask_on not in MASK_PLACEMENTS:
            raise ValueError(f"mask_on must be one of {MASK_PLACEMENTS}, got {mask_on!r}")
        if stem_activation not in STEM_ACTIVATIONS:
            raise ValueError(
                f"stem_activation must be one of {STEM_ACTIVATIONS}, got {stem_activation!r}"
            )
        if float(faithfulness_weight) < 0:
            raise ValueError(f"faithfulness_weight must be >= 0, got {faithfulness_weight}")
        if faithfulness_target not in FAITHFULNESS_TARGETS:
            raise ValueError(
                f"faithfulness_target must be one of {FAITHFULNESS_TARGETS}, got {faithfulness_target!r}"
            )
        if not 0.0 < float(faithfulness_fraction) < 1.0:
            raise ValueError(
                f"faithfulness_fraction must be in (0, 1), got {faithfulness_fraction}"
            )
        if not 0.0 < float(faithfulness_batch_fraction) <= 1.0:
            raise ValueError(
                f"faithfulness_batch_fraction must be in (0, 1], got {faithfulness_batch_fraction}"
            )
        backbone = dict(backbone or {})
        saliency = SaliencyMask(
            attention_units=attention_units,
            mask_fraction=mask_fraction,
            return_scores=True,
            inference=inference,
            temperature=temperature,
            normalization=normalization,
            window=attention_window,
            window_weight=attention_window_weight,
            window_pooling=attention_window_pooling,
            window_sharpness=attention_window_sharpness,
            window_gate=attention_window_gate,
            entropy_weight=attention_entropy_weight,
            fill_value=N_ENCODING if mask_on == "nucleotides" else 0.0,
            name=SALIENCY_LAYER_NAME,
        )
        inputs, outputs = _backbone_graph(
            length,
            num_classes,
            saliency,
            mask_on=mask_on,
            stem_activation=stem_activation,
            **backbone,
        )
        super().__init__(inputs, outputs, name=name, **kwargs)
        self.length = int(length)
        self.num_classes = int(num_classes)
        self.attention_units = int(attention_units)
        self.mask_on = mask_on
        self.inference = inference
        self.temperature = float(temperature)
        self.normalization = normalization
        self.faithfulness_target = faithfulness_target
        self.attention_window = int(attention_window)
        self.attention_window_weight = float(attention_window_weight)
        self.attention_window_pooling = attention_window_pooling
        self.attention_window_sharpness = float(attention_window_sharpness)
        self.attention_window_gate = bool(attention_window_gate)
        self.attention_entropy_weight = float(attention_entropy_weight)
        self.stem_activation = stem_activation
        self.faithfulness_weight = float(faithfulness_weight)
        self.faithfulness_fraction = float(faithfulness_fraction)
        self.faithfulness_batch_fraction = float(faithfulness_batch_fraction)
        self.seed = seed
        self.backbone = backbone
        self._initial_mask_fraction = float(mask_fraction)
        self._faithfulness_seed = keras.random.SeedGenerator(seed)
        # scales the faithfulness loss; `MaskingSchedule(ramp_faithfulness=True)` ramps it 0 -> 1
        self.faithfulness_scale = keras.Variable(
            1.0, trainable=False, dtype="float32", name="faithfulness_scale"
        )
        scores = self.get_layer(SALIENCY_LAYER_NAME).output[1]
        # not a Layer, so not tracked: the ranking the faithfulness loss uses
        self._attention_function = keras.Function(inputs, scores)

    def get_build_config(self):
        return {"input_shape": (None, self.length, 4)}

    def build_from_config(self, config):
        # built at construction (a functional graph over its `Input`), so there is
        # nothing to build. KerasTuner's Hyperband calls this before it loads a
        # parent trial's weights, with the `get_build_config` it saved; before
        # 2026-11-28 that was `{"input_shape": None}`, which Keras cannot build from
        if not self.built:
            super().build_from_config(config)

    def load_own_variables(self, store):
        if not len(store.keys()):
            return  # saved before `faithfulness_scale` existed: it keeps its value
        super().load_own_variables(store)

    def nucleotide_attention(self, x):
        """Per-nucleotide attention `(batch, length)` of one-hot `x` (inference mode).

        The same ranking as `importance_scores(model, x, "attention")`: the
        SaliencyMask scores, projected through the stem's receptive field
        when the mask acts on stem features.
        """
        scores = ops.cast(self._attention_function(x), "float32")
        if self.mask_on == "features":
            stem = self.get_layer(STEM_LAYER_NAME)
            scores = project_scores(scores, int(stem.kernel_size[0]), int(stem.dilation_rate[0]))
        return scores

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # first: it adds the layers' own losses (the attention entropy penalty)
        # of the training forward pass, which the faithfulness loss's second
        # forward pass below clears on the TensorFlow backend
        loss = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        if not training or self.faithfulness_weight == 0.0 or y is None:
            return loss
        scale = ops.cast(self.faithfulness_scale, "float32") * self.faithfulness_weight
        return loss + ops.cast(scale, loss.dtype) * ops.cast(
            self.faithfulness_loss(x, y), loss.dtype
        )

    def faithfulness_inputs(self, x):
        """The perturbed copies of one-hot `x` that the faithfulness loss scores.

        Row `i` belongs to group `i % 3`: 0 has its top `faithfulness_fraction`
        of nucleotides by `nucleotide_attention` replaced by N, 1 keeps only
        those, 2 has as many random *other* nucleotides replaced. In a batch
        of fewer than 3 rows (batch size 1 or 2, a short last batch, or few
        rows left by `faithfulness_batch_fraction`) the groups turn from one
        call to the next, so that every group is trained.

        Returns:
            `(perturbed, group, valid)`: `(batch, length, 4)`, `(batch,)` int
            and the `(batch, length)` bool real positions.
        """
        x = ops.convert_to_tensor(x)
        # the random generator's counter advances by the same number of draws every call
        # (below): it turns the groups of a batch of fewer than 3 rows from call to call, on
        # every backend (model state), with neither a new draw nor a new variable; 0 at first
        turn = ops.cast(self._faithfulness_seed.state[1] % 3, "int32")
        valid = ops.sum(x, axis=-1) > 0.5
        ranking = ops.stop_gradient(self.nucleotide_attention(x))
        if self.normalization == "sparsemax":
            # many exact zeros: rank them below every positive score, in random
            # order (ties would otherwise go to the leftmost positions)
            ties = keras.random.uniform(ops.shape(ranking), seed=self._faithfulness_seed)
            ranking = ops.where(ranking > 0, ranking + 1.0, ties)
        fraction = self.faithfulness_fraction
        top = lowest_fraction_mask(-ranking, valid, fraction)
        noise = keras.random.uniform(ops.shape(ranking), seed=self._faithfulness_seed)
        random = lowest_fraction_mask(ops.where(top, 2.0, noise), valid, fraction)
        rows = ops.arange(ops.shape(x)[0])
        group = (rows + ops.where(ops.shape(x)[0] < 3, turn, 0)) % 3
        rows = ops.expand_dims(group, -1)
        only_top = ops.logical_and(valid, ops.logical_not(top))
        replaced = ops.where(rows == 0, top, ops.where(rows == 1, only_top, random))
        perturbed = ops.where(ops.expand_dims(replaced, -1), ops.cast(N_ENCODING, x.dtype), x)
        return perturbed, group, valid

    def faithfulness_loss(self, x, y):
        """The faithfulness loss of one batch (see the class docstring)."""
        x = ops.convert_to_tensor(x)
        if self.faithfulness_batch_fraction < 1.0:
            # the batch is shuffled: its first rows are a random subset
            kept = _leading_rows(ops.shape(x)[0], self.faithfulness_batch_fraction)
            x, y = x[:kept], ops.reshape(y, (-1,))[:kept]
        perturbed, group, valid = self.faithfulness_inputs(x)
        # inference mode: BatchNorm uses its moving statistics (which the
        # perturbed copies leave alone) and the SaliencyMask behaves as when the
        # model is evaluated, so the loss trains exactly what a perturbation test measures
        eps = keras.config.epsilon()
        if self.faithfulness_target == "baseline":
            # the model's own output with no evidence: every real position N
            empty = ops.where(ops.expand_dims(valid, -1), ops.cast(N_ENCODING, x.dtype), x)
            both = ops.cast(
                self(ops.concatenate([perturbed, empty], axis=0), training=False), "float32"
            )
            probs, baseline = both[: ops.shape(x)[0]], ops.stop_gradient(both[ops.shape(x)[0] :])
        else:
            probs = ops.cast(self(perturbed, training=False), "float32")
            baseline = ops.ones_like(probs) / (
                2.0 if self.num_classes == 2 else float(self.num_classes)
            )
        probs = ops.clip(probs, eps, 1.0 - eps)
        baseline = ops.clip(baseline, eps, 1.0 - eps)
        if self.num_classes == 2:
            p, q = probs[:, 0], baseline[:, 0]
            label = ops.cast(ops.reshape(y, (-1,)), "float32")
            on_label = -(label * ops.log(p) + (1.0 - label) * ops.log(1.0 - p))
            # KL(q || p) of Bernoulli distributions: 0 when p = q
            to_baseline = q * (ops.log(q) - ops.log(p)) + (1.0 - q) * (
                ops.log(1.0 - q) - ops.log(1.0 - p)
            )
        else:
            label = ops.cast(ops.reshape(y, (-1, 1)), "int32")
            on_label = -ops.log(ops.squeeze(ops.take_along_axis(probs, label, axis=-1), -1))
            to_baseline = ops.sum(baseline * (ops.log(baseline) - ops.log(probs)), axis=-1)
        per_sequence = ops.where(group == 0, to_baseline, on_label)
        return ops.mean(per_sequence)

    def get_config(self):
        return {
            "name": self.name,
            "length": self.length,
            "num_classes": self.num_classes,
            "mask_fraction": float(
                ops.convert_to_numpy(self.get_layer(SALIENCY_LAYER_NAME).mask_fraction)
            ),
            "attention_units": self.attention_units,
            "mask_on": self.mask_on,
            "inference": self.inference,
            "temperature": self.temperature,
            "normalization": self.normalization,
            "faithfulness_target": self.faithfulness_target,
            "attention_window": self.attention_window,
            "attention_window_weight": self.attention_window_weight,
            "attention_window_pooling": self.attention_window_pooling,
            "attention_window_sharpness": self.attention_window_sharpness,
            "attention_window_gate": self.attention_window_gate,
            "attention_entropy_weight": self.attention_entropy_weight,
            "stem_activation": self.stem_activation,
            "faithfulness_weight": self.faithfulness_weight,
            "faithfulness_fraction": self.faithfulness_fraction,
            "faithfulness_batch_fraction": self.faithfulness_batch_fraction,
            "seed": self.seed,
            "backbone": dict(self.backbone),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @classmethod
    def option_defaults(cls):
        """`{option: default}` of the constructor: what a config written before an option
        existed had (options are only ever added with the old behaviour as default)."""
        return {
            name: parameter.default
            for name, parameter in inspect.signature(cls.__init__).parameters.items()
            if parameter.default is not inspect.Parameter.empty
        }


def project_scores(scores, kernel_size, dilation_rate=1):
    """`project_to_nucleotides` in `keras.ops`: position scores spread over a 'same' Conv1D's window.

    Args:
        scores: `(batch, length)` scores of a Conv1D's output positions.
        kernel_size: the Conv1D's kernel size.
        dilation_rate: its dilation.

    Example:

    >>> s = keras.ops.convert_to_tensor([[0.0, 3.0, 0.0, 0.0]])
    >>> keras.ops.convert_to_numpy(project_scores(s, 3)).tolist()
    [[1.0, 1.0, 1.0, 0.0]]
    """
    pad = ((kernel_size - 1) * dilation_rate) // 2
    out = ops.zeros_like(scores)
    length = ops.shape(scores)[1]
    for t in range(kernel_size):
        shift = t * dilation_rate - pad  # input j = i + shift receives scores[i]
        if shift >= 0:
            shifted = ops.pad(scores, [[0, 0], [shift, 0]])[:, :length]
        else:
            shifted = ops.pad(scores, [[0, 0], [0, -shift]])[:, -shift:]
        out = out + shifted / kernel_size
    return out


def build_attngen(
    length,
    num_classes,
    *,
    mask_fraction=0.0,
    attention_units=32,
    preset=DEFAULT_PRESET,
    name="attngen",
    seed=None,
    mask_on=None,
    inference=None,
    temperature=None,
    stem_activation=None,
    faithfulness_weight=None,
    faithfulness_fraction=0.2,
    normalization=None,
    faithfulness_target=None,
    faithfulness_batch_fraction=None,
    attention_window=None,
    attention_window_weight=None,
    attention_entropy_weight=None,
    attention_window_pooling=None,
    attention_window_sharpness=None,
    attention_window_gate=None,
    **backbone,
):
    """AttnGen: the Conv1D backbone with a `SaliencyMask` (see `AttnGen`).

    `preset` picks the AttnGen variant: `"faithful"` (the default:
    attention on the nucleotides, trained to be necessary and sufficient,
    each logit a mix of its own and the log-mean-exp of its 9-nt window,
    with a window weight learned per position),
    `"motif"` (the 9-nt window mean alone, loss weight 1.5) or
    `"paper"` (the paper's configuration: soft attention on the stem
    features, no faithfulness loss). Any option given explicitly overrides the
    preset.

    Args:
        length: sequence length (positions) of the one-hot input.
        num_classes: number of classes; 2 gives a single sigmoid output.
        mask_fraction: initial mask fraction of the SaliencyMask (usually 0,
            ramped by `MaskingSchedule`).
        attention_units: hidden width of the attention scorer.
        preset: `"faithful"`, `"motif"` or `"paper"` (see `PRESETS`).
        name: model name.
        seed: seed of the faithfulness loss's random positions.
        mask_on: see `AttnGen`, as for `inference`, `temperature`,
            `stem_activation`, `faithfulness_weight`, `faithfulness_fraction`,
            `normalization`, `faithfulness_target`,
            `faithfulness_batch_fraction`, `attention_window`,
            `attention_window_weight`, `attention_window_pooling`,
            `attention_window_sharpness`, `attention_window_gate` and
            `attention_entropy_weight`.
        **backbone: overrides of `BACKBONE_DEFAULTS` (filters, kernel_size,
            conv_blocks, block_kernel_size, dilation_rate, pool_size,
            dropout, dense_units).

    Example:

    >>> model = build_attngen(200, 2)
    >>> model.output_shape, model.mask_on
    ((None, 1), 'nucleotides')
    >>> build_attngen(200, 2, preset="paper").faithfulness_weight
    0.0
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    unknown = set(backbone) - set(BACKBONE_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown backbone arguments: {sorted(unknown)}")
    options = dict(PRESETS[preset])
    for key, value in (
        ("mask_on", mask_on), ("inference", inference), ("temperature", temperature),
        ("stem_activation", stem_activation), ("faithfulness_weight", faithfulness_weight),
        ("normalization", normalization), ("faithfulness_target", faithfulness_target),
        ("attention_window", attention_window),
        ("attention_window_weight", attention_window_weight),
        ("attention_window_pooling", attention_window_pooling),
        ("attention_window_sharpness", attention_window_sharpness),
        ("attention_window_gate", attention_window_gate),
        ("attention_entropy_weight", attention_entropy_weight),
        ("faithfulness_batch_fraction", faithfulness_batch_fraction),
    ):  # fmt: skip
        if value is not None:
            options[key] = value
    window, weight = options.get("attention_window", 1), options.get("attention_window_weight", 1.0)
    if attention_window_gate is None and not (window > 1 and 0.0 < weight < 1.0):
        # a preset's gate needs a window and a weight to mix: without them there is nothing to learn
        options["attention_window_gate"] = False
    return AttnGen(
        length, num_classes, mask_fraction=mask_fraction, attention_units=attention_units,
        faithfulness_fraction=faithfulness_fraction, seed=seed, backbone=backbone, name=name, **options,
    )  # fmt: skip


def _leading_rows(batch, fraction):
    """`ceil(fraction * batch)` rows (at least 1): a Python int for a static batch size."""
    if isinstance(batch, int):
        return max(1, math.ceil(fraction * batch))
    rows = ops.cast(ops.ceil(fraction * ops.cast(batch, "float32")), "int32")
    return ops.maximum(rows, 1)


def build_cnn(length, num_classes, *, name="cnn", **backbone):
    """The paper's baseline: the AttnGen backbone without the SaliencyMask.

    Args:
        length: sequence length of the one-hot input.
        num_classes: number of classes; 2 gives a single sigmoid output.
        name: model name.
        **backbone: overrides of `BACKBONE_DEFAULTS`.

    Example:

    >>> build_cnn(200, 3).output_shape
    (None, 3)
    """
    return _build_backbone(length, num_classes, name, None, **backbone)


def build_gb_cnn(length, num_classes, *, name="gb_cnn"):
    """Keras 3 port of the Genomic Benchmarks reference TensorFlow CNN.

    Three `Conv1D(kernel_size=8, relu)` layers with 32, 16 and 4 filters, each
    followed by BatchNorm and MaxPool(2); Dropout 0.3, GlobalAveragePooling and
    a Dense output, as in the Genomic Benchmarks TF baseline. The input is
    the same one-hot tensor as the other models (the original one-hot encodes
    a character vectorization inside the model).

    Args:
        length: sequence length of the one-hot input.
        num_classes: number of classes; 2 gives a single sigmoid output.
        name: model name.

    Example:

    >>> build_gb_cnn(200, 2).count_params() > 0
    True
    """
    remaining = length
    for _ in range(3):
        remaining -= 7  # unpadded kernel-8 convolution
        if remaining < 2:
            raise ValueError(
                "gb-cnn needs sequences of at least 57 positions (3 unpadded "
                f"kernel-8 convolutions, each followed by pooling), got length {length}"
            )
        remaining //= 2
    inputs = keras.Input((length, 4), name=INPUT_NAME)
    x = inputs
    for filters in (32, 16, 4):
        x = layers.Conv1D(filters, kernel_size=8, activation="relu")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling1D(pool_size=2)(x)
    x = layers.Dropout(0.3)(x)
    x = layers.GlobalAveragePooling1D()(x)
    outputs = _classification_head(x, num_classes)
    return keras.Model(inputs, outputs, name=name)


def _build_backbone(length, num_classes, name, saliency, **overrides):
    inputs, outputs = _backbone_graph(length, num_classes, saliency, **overrides)
    return keras.Model(inputs, outputs, name=name)


def _backbone_graph(
    length, num_classes, saliency, mask_on="features", stem_activation="relu", **overrides
):
    unknown = set(overrides) - set(BACKBONE_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown backbone arguments: {sorted(unknown)}")
    cfg = {**BACKBONE_DEFAULTS, **overrides}
    inputs = keras.Input((length, 4), name=INPUT_NAME)
    valid = ValidPositions(name="valid_positions")(inputs)
    x = inputs
    if saliency is not None and mask_on == "nucleotides":
        context = layers.Conv1D(
            cfg["filters"],
            cfg["kernel_size"],
            padding="same",
            activation="relu",
            name=CONTEXT_LAYER_NAME,
        )(inputs)
        x, _ = saliency([inputs, valid, context])
    x = layers.Conv1D(cfg["filters"], cfg["kernel_size"], padding="same", name=STEM_LAYER_NAME)(x)
    # BatchNorm's training statistics over the real positions only (`mask`):
    # padding must not dilute them, or padded batches train a different network
    x = MaskedBatchNormalization(momentum=cfg["batch_norm_momentum"], name="stem_bn")(x, mask=valid)
    x = layers.Activation(stem_activation, name="stem_relu")(x)
    x = ApplyValidity(name="stem_valid")([x, valid])
    if saliency is not None and mask_on == "features":
        x, _ = saliency([x, valid])
    for block in range(cfg["conv_blocks"]):
        x = layers.MaxPooling1D(cfg["pool_size"], padding="same", name=f"pool_{block}")(x)
        valid = PoolValidity(cfg["pool_size"], name=f"pool_valid_{block}")(valid)
        x = layers.Conv1D(
            cfg["filters"],
            cfg["block_kernel_size"],
            padding="same",
            dilation_rate=cfg["dilation_rate"],
            name=f"conv_{block}",
        )(x)
        x = MaskedBatchNormalization(momentum=cfg["batch_norm_momentum"], name=f"bn_{block}")(
            x, mask=valid
        )
        x = layers.Activation("relu", name=f"relu_{block}")(x)
        x = ApplyValidity(name=f"valid_{block}")([x, valid])
    x = MaskedGlobalPooling1D(name="global_pool")([x, valid])
    x = layers.Dropout(cfg["dropout"], name="dropout")(x)
    if cfg["dense_units"]:
        x = layers.Dense(cfg["dense_units"], activation="relu", name="dense")(x)
        x = layers.Dropout(cfg["dropout"], name="dense_dropout")(x)
    outputs = _classification_head(x, num_classes)
    return inputs, outputs


def _classification_head(x, num_classes):
    if num_classes < 2:
        raise ValueError(f"need at least 2 classes, got {num_classes}")
    if num_classes == 2:
        return layers.Dense(1, activation="sigmoid", name="probabilities")(x)
    return layers.Dense(num_classes, activation="softmax", name="probabilities")(x)


def compile_classifier(
    model, num_classes, learning_rate=1e-3, jit_compile="auto", steps_per_execution=1
):
    """Compiles `model` with Adam, the matching cross-entropy and accuracy/AUC.

    Args:
        model: a model from this module.
        num_classes: number of classes (2 means a sigmoid output).
        learning_rate: Adam learning rate.
        jit_compile: passed to `Model.compile`.
        steps_per_execution: batches per compiled call, passed to `Model.compile`
            (more: less per-step dispatch on a fast accelerator; batch-level
            callbacks then run every that many batches).

    The optimizer's variables are created here (call it inside a
    distribution strategy's scope where one is used): left to Keras, the
    TensorFlow backend creates them inside the first trace of the train step,
    and TensorFlow then traces the step twice.
    """
    if int(num_classes) < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    units = 1 if int(num_classes) == 2 else int(num_classes)
    outputs = getattr(model, "output_shape", None)
    if isinstance(outputs, tuple) and outputs and outputs[-1] not in (None, units):
        has = outputs[-1]
        if has == 1:
            fits = "a sigmoid: num_classes=2"
        elif has == 2:
            fits = "2 classes take 1 sigmoid unit here, as the build_* functions make them"
        else:
            fits = f"num_classes={has}"
        raise ValueError(
            f"num_classes={num_classes} needs {units} output unit(s), but model {model.name!r} "
            f"has {has} ({fits})"
        )
    if num_classes == 2:
        loss = keras.losses.BinaryCrossentropy()
        metrics = [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")]
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=loss,
        metrics=metrics,
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    model.optimizer.build(model.trainable_variables)
    return model


def saliency_mask_layer(model):
    """The model's `SaliencyMask` layer: its only one, or of several the one named
    `saliency_mask` (as in `build_attngen`).

    Only the top-level layers of a functional model are searched (the scores must be
    an output of its own graph).

    Args:
        model: a Keras model (AttnGen, or your own with a `SaliencyMask`).

    Raises:
        ValueError: the model has no `SaliencyMask`, or several and none deliberately
            named `saliency_mask` (Keras also gives the first unnamed one that name, so
            it counts only when no other is named `saliency_mask_<n>`).

    Example:

    >>> saliency_mask_layer(build_attngen(40, 2)).name
    'saliency_mask'
    """
    found = [layer for layer in getattr(model, "layers", []) if isinstance(layer, SaliencyMask)]
    if len(found) == 1:
        return found[0]
    if not found:
        nested = [
            layer.name
            for layer in getattr(model, "layers", [])
            if isinstance(layer, keras.Model) and find_saliency_masks(layer)
        ]
        if nested:
            raise ValueError(
                f"model {model.name!r} has no SaliencyMask layer of its own: it is inside the "
                f"nested model {nested[0]!r}; explain that model "
                f"(model.get_layer({nested[0]!r})), whose graph holds the attention scores"
            )
        raise ValueError(
            f"model {model.name!r} has no SaliencyMask layer; attention scores exist only for "
            "models with one (use another method: saliency, input_x_gradient, smoothgrad, ism or gradcam)"
        )
    names = [layer.name for layer in found]
    prefix = f"{SALIENCY_LAYER_NAME}_"
    automatic = [n for n in names if n.startswith(prefix) and n[len(prefix) :].isdigit()]
    if SALIENCY_LAYER_NAME in names and not automatic:
        return found[names.index(SALIENCY_LAYER_NAME)]
    raise ValueError(
        f"model {model.name!r} has {len(found)} SaliencyMask layers "
        f"({', '.join(repr(n) for n in names)}); name the one whose scores explain the "
        f"model {SALIENCY_LAYER_NAME!r} and give the others names of their own"
    )


def attention_model(model):
    """A model mapping the same input to the SaliencyMask importance scores.

    Args:
        model: a model built by `build_attngen` (or loaded from `.keras`), or
            your own functional model with a `SaliencyMask` built with
            `return_scores=True` at the input's resolution (see
            `saliency_mask_layer` for which one is used).

    Returns:
        `keras.Model` with output `(batch, length)`: the attention scores
        (softmax, or sparsemax) over the valid positions, 0 on padding.

    Example:

    >>> attention_model(build_attngen(40, 2)).output_shape
    (None, 40)
    """
    layer = saliency_mask_layer(model)
    if not layer.return_scores:
        raise ValueError(
            f"the SaliencyMask layer {layer.name!r} of model {model.name!r} was built with "
            "return_scores=False, so its scores are not in the model's graph; build it with "
            "return_scores=True (it then returns (values, scores): pass the values on)"
        )
    try:
        scores = layer.output[1]
    except (AttributeError, ValueError):  # a subclassed model: no graph to take it from
        raise ValueError(
            f"the scores of SaliencyMask {layer.name!r} cannot be taken from model "
            f"{model.name!r}: it is not a functional model (build it with keras.Input)"
        ) from None
    length = model.input.shape[1]
    if scores.shape[1] != length:
        raise ValueError(
            f"the SaliencyMask {layer.name!r} of model {model.name!r} scores {scores.shape[1]} "
            f"positions, not the input's {length} nucleotides (a pooling, strided or 'valid' "
            "layer comes before it); attention maps need it at the input's resolution (use "
            "another method: saliency, input_x_gradient, smoothgrad, ism or gradcam)"
        )
    return keras.Model(model.input, scores, name=f"{model.name}_attention")


def attention_projection_conv(model):
    """The Conv1D whose receptive field maps the attention to nucleotides, or `None`.

    `None` when the SaliencyMask scores the nucleotides themselves (or the
    model has none); the stem convolution when it scores the stem features
    (the paper's AttnGen, and AttnGen models saved before `mask_on` existed);
    in other models, a Conv1D (`padding="same"`, stride 1) that reads the
    model's input and feeds the SaliencyMask directly.
    """
    try:
        layer = saliency_mask_layer(model)
    except ValueError:
        return None
    if getattr(model, "mask_on", None) == "nucleotides":
        return None
    inbound = layer.input[0] if isinstance(layer.input, (list, tuple)) else layer.input
    if any(inbound is tensor for tensor in model.inputs):
        return None
    for conv in model.layers:
        if (
            isinstance(conv, layers.Conv1D)
            and conv.padding == "same"
            and tuple(conv.strides) == (1,)
            and conv.output is inbound
            and any(conv.input is tensor for tensor in model.inputs)
        ):
            return conv
    try:
        return model.get_layer(STEM_LAYER_NAME)
    except ValueError:
        return None


BUILDERS = {"attngen": build_attngen, "cnn": build_cnn, "gb-cnn": build_gb_cnn}


def build_model(kind, length, num_classes, **kwargs):
    """Builds `kind` (`attngen`, `cnn` or `gb-cnn`) with `kwargs` overrides."""
    if kind not in BUILDERS:
        raise ValueError(f"unknown model {kind!r}; choose one of {sorted(BUILDERS)}")
    return BUILDERS[kind](length, num_classes, **kwargs)
