"""Conv1D DNA classifiers: AttnGen, the same backbone without it, and GB's CNN."""

import keras
from keras import layers

from attngen_keras.layers import (
    ApplyValidity,
    MaskedGlobalPooling1D,
    PoolValidity,
    SaliencyMask,
    ValidPositions,
)

INPUT_NAME = "one_hot"
SALIENCY_LAYER_NAME = "saliency_mask"
STEM_LAYER_NAME = "stem_conv"

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


def build_attngen(
    length,
    num_classes,
    *,
    mask_fraction=0.0,
    attention_units=32,
    name="attngen",
    **backbone,
):
    """AttnGen: the Conv1D backbone with a `SaliencyMask` after the stem.

    The stem convolution keeps nucleotide resolution, so the SaliencyMask
    scores (and in training masks) individual positions before any pooling.

    Args:
        length: sequence length (positions) of the one-hot input.
        num_classes: number of classes; 2 gives a single sigmoid output.
        mask_fraction: initial mask fraction of the SaliencyMask (usually 0,
            ramped by `MaskingSchedule`).
        attention_units: hidden width of the attention scorer.
        name: model name.
        **backbone: overrides of `BACKBONE_DEFAULTS` (filters, kernel_size,
            conv_blocks, block_kernel_size, dilation_rate, pool_size,
            dropout, dense_units).

    Example:

    >>> model = build_attngen(200, 2)
    >>> model.output_shape
    (None, 1)
    """
    saliency = SaliencyMask(
        attention_units=attention_units,
        mask_fraction=mask_fraction,
        return_scores=True,
        name=SALIENCY_LAYER_NAME,
    )
    return _build_backbone(length, num_classes, name, saliency, **backbone)


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
    unknown = set(overrides) - set(BACKBONE_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown backbone arguments: {sorted(unknown)}")
    cfg = {**BACKBONE_DEFAULTS, **overrides}
    inputs = keras.Input((length, 4), name=INPUT_NAME)
    valid = ValidPositions(name="valid_positions")(inputs)
    x = layers.Conv1D(cfg["filters"], cfg["kernel_size"], padding="same", name=STEM_LAYER_NAME)(
        inputs
    )
    x = layers.BatchNormalization(momentum=cfg["batch_norm_momentum"], name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    x = ApplyValidity(name="stem_valid")([x, valid])
    if saliency is not None:
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
        x = layers.BatchNormalization(momentum=cfg["batch_norm_momentum"], name=f"bn_{block}")(x)
        x = layers.Activation("relu", name=f"relu_{block}")(x)
        x = ApplyValidity(name=f"valid_{block}")([x, valid])
    x = MaskedGlobalPooling1D(name="global_pool")([x, valid])
    x = layers.Dropout(cfg["dropout"], name="dropout")(x)
    if cfg["dense_units"]:
        x = layers.Dense(cfg["dense_units"], activation="relu", name="dense")(x)
        x = layers.Dropout(cfg["dropout"], name="dense_dropout")(x)
    outputs = _classification_head(x, num_classes)
    return keras.Model(inputs, outputs, name=name)


def _classification_head(x, num_classes):
    if num_classes < 2:
        raise ValueError(f"need at least 2 classes, got {num_classes}")
    if num_classes == 2:
        return layers.Dense(1, activation="sigmoid", name="probabilities")(x)
    return layers.Dense(num_classes, activation="softmax", name="probabilities")(x)


def compile_classifier(model, num_classes, learning_rate=1e-3, jit_compile="auto"):
    """Compiles `model` with Adam, the matching cross-entropy and accuracy/AUC.

    Args:
        model: a model from this module.
        num_classes: number of classes (2 means a sigmoid output).
        learning_rate: Adam learning rate.
        jit_compile: passed to `Model.compile`.
    """
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
    )
    return model


def attention_model(model):
    """A model mapping the same input to the SaliencyMask importance scores.

    Args:
        model: a model built by `build_attngen` (or loaded from `.keras`).

    Returns:
        `keras.Model` with output `(batch, length)`: softmax attention over
        the valid positions, 0 on padding.
    """
    try:
        layer = model.get_layer(SALIENCY_LAYER_NAME)
    except ValueError:
        raise ValueError(
            f"model {model.name!r} has no SaliencyMask layer; attention "
            "scores exist only for AttnGen models"
        ) from None
    return keras.Model(model.input, layer.output[1], name=f"{model.name}_attention")


BUILDERS = {"attngen": build_attngen, "cnn": build_cnn, "gb-cnn": build_gb_cnn}


def build_model(kind, length, num_classes, **kwargs):
    """Builds `kind` (`attngen`, `cnn` or `gb-cnn`) with `kwargs` overrides."""
    if kind not in BUILDERS:
        raise ValueError(f"unknown model {kind!r}; choose one of {sorted(BUILDERS)}")
    return BUILDERS[kind](length, num_classes, **kwargs)
