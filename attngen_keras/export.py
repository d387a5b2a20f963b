"""SavedModel export for TensorFlow Serving: raw DNA strings in, probabilities out.

`export_run` writes `OUT/<version>/` (the layout TF Serving watches) with
Keras 3's `keras.export.ExportArchive`. Every preprocessing step runs inside
the graph, so a client sends plain sequences:

- `serving_default(sequences: tf.string [batch])` returns `probabilities`
  `[batch, n_classes]` (columns in the run's class order), `class_index`
  `[batch]`, `invalid_characters` `[batch]` and `truncated` `[batch]`;
- `saliency(sequences)` returns `importance` `[batch, length]`: AttnGen's
  attention projected to nucleotides (as `attngen explain --method
  attention`), or, for models without a SaliencyMask, `|gradient x input|` of
  the predicted class (as `--method input_x_gradient`);
- `predict_with_saliency(sequences)` returns both (the outputs of
  `serving_default` and `importance`) from one forward pass: what
  `attngen variants` uses. Exports made before it existed lack it, and the
  tools then call the two signatures.

Input handling, defined so that no request can crash the server: surrounding
whitespace is stripped (whitespace inside a sequence is an invalid character); letters are case-insensitive, `U` reads as `T`,
IUPAC codes encode as in training; any other byte encodes as `N` (uniform) and
is counted in `invalid_characters`; a sequence longer than the trained
length is cropped like the training data (the run's `--crop`, default: keep
the start) and flagged in `truncated`; a shorter one is padded (padding is
invisible to the model); an empty string gives the prediction for an
all-padding input.

The version directory is first written under a temporary name and renamed
into place, so TF Serving never sees a half-written version.
"""

import functools
import json
import os
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from attngen_keras.data import alphabet
from attngen_keras.files import check_output_dir
from attngen_keras.models.classifiers import attention_model, attention_projection_conv

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
METADATA_FILE = os.path.join("assets.extra", "attngen.json")
_WARMUP_SEQUENCES = ("ACGT" * 50, "acgtnACGTN" * 20, "GATTACA", "")


def _byte_table():
    """256 entries: byte -> token; padding byte 0 -> PAD, invalid bytes -> INVALID."""
    table = alphabet._byte_lookup().astype(np.int32)
    table[0] = alphabet.PAD
    return table


def next_version(root):
    """1 + the largest integer version directory in `root` (1 if none)."""
    root = Path(root)
    versions = (
        [int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit()]
        if root.exists()
        else []
    )
    return max(versions, default=0) + 1


def _checked_batch(endpoint):
    """Wraps an endpoint: a request that is not a 1-D batch of strings is an InvalidArgument
    error (not a crash of the server's process: the graph is traced for rank 1, and a scalar
    otherwise reaches kernels that abort), and an empty batch gives empty outputs."""

    @functools.wraps(endpoint)
    def checked(self, sequences):
        # checked when it runs: a shape assertion on the traced (static) shape would be folded away
        sequences = tf.ensure_shape(sequences, [None], name="sequences_must_be_a_1d_batch")
        n = tf.shape(sequences)[0]
        # one placeholder sequence for an empty batch (the model needs a row), cut off again
        padded = tf.concat([sequences, tf.fill([tf.maximum(1 - n, 0)], "")], axis=0)
        return {key: value[:n] for key, value in endpoint(self, padded).items()}

    return checked


class _Serving(tf.Module):
    """The in-graph preprocessing and the endpoints (tracked by the archive)."""

    def __init__(self, model, length, crop):
        super().__init__()
        self.model = model
        self.length = int(length)
        self.crop = crop or "left"
        self.byte_table = tf.constant(_byte_table())
        self.one_hot_table = tf.constant(alphabet.ONE_HOT_TABLE)
        self.sigmoid = model.output_shape[-1] == 1
        self.attention = None
        self.with_attention = None  # [probabilities, attention] in one forward pass
        try:  # models without attention scores explain with input x gradient instead
            self.attention = attention_model(model)
            self.with_attention = keras.Model(
                model.inputs, [model.outputs[0], self.attention.outputs[0]]
            )
        except ValueError:
            pass
        # the conv whose receptive field maps the attention to nucleotides (None:
        # the attention already scores nucleotides, as in the faithful AttnGen)
        stem = attention_projection_conv(model)
        self.stem_kernel = int(stem.kernel_size[0]) if stem is not None else 1
        self.stem_dilation = int(stem.dilation_rate[0]) if stem is not None else 1

    def encode(self, sequences):
        """Strings -> `(one_hot [b, length, 4], flags)`: `flags` holds `invalid_characters`,
        `truncated` and `length` (the characters the model reads, after stripping and
        cropping; 0 for an empty string), each `[b]`."""
        sequences = tf.strings.strip(sequences)  # a 1-D batch: see _checked_batch
        lengths = tf.strings.length(sequences)
        excess = tf.maximum(lengths - self.length, 0)
        start = {"left": tf.zeros_like(excess), "right": excess, "center": excess // 2}[self.crop]
        cropped = tf.strings.substr(sequences, start, tf.fill(tf.shape(start), self.length))
        raw = tf.io.decode_raw(cropped, tf.uint8, fixed_length=self.length)
        tokens = tf.gather(self.byte_table, tf.cast(raw, tf.int32))
        # byte 0 pads past the string's end; within it, a NUL is an invalid character
        within = (
            tf.range(self.length)[tf.newaxis, :] < tf.minimum(lengths, self.length)[:, tf.newaxis]
        )
        invalid = (tokens == alphabet.INVALID) | (within & (tokens == alphabet.PAD))
        tokens = tf.where(invalid, alphabet.SYMBOLS.index("N"), tokens)
        one_hot = tf.gather(self.one_hot_table, tokens)
        flags = {
            "invalid_characters": tf.reduce_sum(tf.cast(invalid, tf.int32), axis=1),
            "truncated": excess > 0,
            "length": tf.minimum(lengths, self.length),
        }
        return one_hot, flags

    @_checked_batch
    def predict(self, sequences):
        one_hot, flags = self.encode(sequences)
        return self._outputs(self.model(one_hot, training=False), flags)

    def _outputs(self, probs, flags):
        if self.sigmoid:
            p = probs[:, 0]
            probabilities = tf.stack([1.0 - p, p], axis=1)
        else:
            probabilities = probs
        return {
            "probabilities": probabilities,
            "class_index": tf.argmax(probabilities, axis=1, output_type=tf.int32),
            **flags,
        }

    @_checked_batch
    def importance(self, sequences):
        one_hot, _ = self.encode(sequences)
        valid = tf.reduce_sum(one_hot, axis=-1)
        if self.attention is not None:
            scores = self.attention(one_hot, training=False)
            return {"importance": self._attention_importance(scores, valid)}
        _, importance = self._input_x_gradient(one_hot, valid)
        return {"importance": importance}

    @_checked_batch
    def predict_with_saliency(self, sequences):
        """`predict`'s outputs and `importance` from one forward pass (what `attngen variants` needs)."""
        one_hot, flags = self.encode(sequences)
        valid = tf.reduce_sum(one_hot, axis=-1)
        if self.with_attention is not None:
            probs, scores = self.with_attention(one_hot, training=False)
            importance = self._attention_importance(scores, valid)
        else:
            probs, importance = self._input_x_gradient(one_hot, valid)
        return {**self._outputs(probs, flags), "importance": importance}

    def _attention_importance(self, scores, valid):
        """The attention of valid positions, projected to nucleotides (zero on padding)."""
        return self._project(scores * valid) * valid

    def _input_x_gradient(self, one_hot, valid):
        """`(model output, |gradient x input| of the predicted class)`."""
        with tf.GradientTape() as tape:
            tape.watch(one_hot)
            probs = self.model(one_hot, training=False)
            if self.sigmoid:
                p = probs[:, 0]
                chosen = tf.where(p >= 0.5, p, 1.0 - p)
            else:
                chosen = tf.reduce_max(probs, axis=1)
        grads = tape.gradient(chosen, one_hot)
        return probs, tf.abs(tf.reduce_sum(grads * one_hot, axis=-1)) * valid

    def _project(self, scores):
        """`explain.project_to_nucleotides` in TensorFlow (same arithmetic)."""
        kernel, dilation = self.stem_kernel, self.stem_dilation
        pad = ((kernel - 1) * dilation) // 2
        out = tf.zeros_like(scores)
        for t in range(kernel):
            shift = t * dilation - pad
            if shift >= 0:
                moved = tf.pad(scores[:, : self.length - shift], [[0, 0], [shift, 0]])
            else:
                moved = tf.pad(scores[:, -shift:], [[0, 0], [0, -shift]])
            out += moved / kernel
        return out


def _warmup_records(path, sequences):
    """`assets.extra/tf_serving_warmup_requests`: PredictionLog records TF Serving replays at load."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature in ("serving_default", "saliency", "predict_with_saliency"):
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(signature_name=signature),
            )
            request.inputs["sequences"].CopyFrom(
                tf.make_tensor_proto(list(sequences), dtype=tf.string)
            )
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())


def models_config(name, base_path):
    """A TF Serving `--model_config_file` text for one model."""
    return (
        "model_config_list {\n"
        "  config {\n"
        f'    name: "{name}"\n'
        f'    base_path: "{base_path}"\n'
        '    model_platform: "tensorflow"\n'
        "  }\n"
        "}\n"
    )


def export_model(model, out, class_names, length, crop=None, version=None, metadata=None):
    """Exports a classifier as `out/<version>/` SavedModel; returns that path.

    Args:
        model: a trained classifier (one-hot input).
        out: the model's base directory (TF Serving's `base_path`).
        class_names: class names, in output column order.
        length: the trained sequence length.
        crop: how longer sequences were cropped in training (`left` default).
        version: integer version (default: the next free one).
        metadata: extra JSON-serializable facts to store in `assets.extra/attngen.json`.

    Example:

    >>> export_model(model, "saved_models/hof", ["fungus", "human"], 200)  # doctest: +SKIP
    PosixPath('saved_models/hof/1')
    """
    if version is not None and int(version) < 1:
        raise ValueError(f"--version must be a positive integer, got {version}")
    created = not Path(out).exists()
    if (Path(out) / "model.keras").is_file() or (Path(out) / "config.json").is_file():
        # a run directory (or another Keras model's): `predict` and `evaluate` would then
        # find two models there
        raise FileExistsError(
            f"{out} holds a trained run (model.keras or config.json), not exported models; "
            "choose another --out, e.g. saved_models/NAME"
        )
    out = check_output_dir(
        out
    )  # a file there, or an unwritable place, is a one-line error up front
    version = next_version(out) if version is None else int(version)
    final = out / str(version)
    if final.exists():
        raise FileExistsError(
            f"{final} already exists; choose another --version (next free: {next_version(out)})"
        )
    serving = _Serving(model, length, crop)
    strings = tf.TensorSpec([None], tf.string, name="sequences")
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(serving)
    archive.add_endpoint("serving_default", tf.function(serving.predict), input_signature=[strings])
    archive.add_endpoint("saliency", tf.function(serving.importance), input_signature=[strings])
    archive.add_endpoint(
        "predict_with_saliency",
        tf.function(serving.predict_with_saliency),
        input_signature=[strings],
    )
    staging = out / f".{version}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        archive.write_out(str(staging), verbose=False)
        _warmup_records(staging / WARMUP_FILE, _WARMUP_SEQUENCES)
        facts = {
            "class_names": list(class_names), "length": int(length), "crop": crop or "left",
            "importance": "attention" if serving.attention is not None else "input_x_gradient",
            **(metadata or {}),
        }  # fmt: skip
        (staging / METADATA_FILE).write_text(json.dumps(facts, indent=2))
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not any(out.iterdir()):
            out.rmdir()  # leave no empty base directory behind
        raise
    config = out / "models.config"
    if not config.exists():
        config.write_text(models_config(out.name, f"/models/{out.name}"))
    return final


def export_run(run_dir, out, version=None):
    """Exports a finished run directory (see `export_model`)."""
    from attngen_keras.training import load_run

    model, record = load_run(run_dir)
    return export_model(
        model, out, record["class_names"], record["length"], record.get("crop"), version,
        metadata={
            "run": str(Path(run_dir).resolve()), "model": record.get("model"),
            "shortest_sequence": record.get("shortest_sequence"),
        },
    )  # fmt: skip
