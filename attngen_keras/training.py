"""Training and evaluation runs: run directories, checkpoints and resume."""

import contextlib
import ctypes
import dataclasses
import errno
import hashlib
import json
import math
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from attngen_keras import __version__
from attngen_keras.callbacks import BatchNormRecalibration, MaskingSchedule, recalibration_steps
from attngen_keras.data import load_dataset, make_tf_dataset, one_hot
from attngen_keras.data.cache import release_pages, sha256_array
from attngen_keras.data.containers import EncodedSplit
from attngen_keras.data.errors import DataError, SequenceTooLongError
from attngen_keras.data.loading import resolve_data_paths, resolve_sources
from attngen_keras.data.pipeline import epoch_permutation, make_step_stream
from attngen_keras.data.readers import stratified_split
from attngen_keras.evaluation import classification_metrics
from attngen_keras.files import (
    FileError,
    check_output_dir,
    check_output_file,
    plural,
    read_json,
    unique_path,
    write_json_atomic,
)
from attngen_keras.models import build_model, compile_classifier
from attngen_keras.models.classifiers import AttnGen
from attngen_keras.plotting import plot_training_curves

CONFIG_FILE = "config.json"
DATASET_FILE = "dataset.json"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
CURVES_FILE = "training_curves.png"
BEST_WEIGHTS = os.path.join("checkpoints", "best.weights.h5")
BACKUP_DIR = "backup"
# The full training state (see TrainingState), replaced atomically at every checkpoint.
STATE_FILE = os.path.join(BACKUP_DIR, "state.npz")
# Fewer training sequences than this get a warning with the faithful AttnGen: it was measured
# to miss one of two planted motifs on such sets (docs/results/faithfulness.md)
SMALL_FAITHFUL_SET = 8000
SMALL_SET_WARNING = r"[\d,]+ training sequences: on sets this small the faithful AttnGen"
FIT_DONE = os.path.join("checkpoints", "fit_complete.json")
LOCK_FILE = ".lock"
# In the hidden sibling `.<name>.overwrite` where `--overwrite` trains the new
# run: it replaces RUN_DIR only once complete.
STAGING_MARKER = ".attngen-overwrite"
# Fields that must match for a re-run to resume the run in RUN_DIR.
_IDENTITY_FIELDS = (
    "data", "references", "model", "epochs", "batch_size", "learning_rate", "length",
    "crop", "mask_fraction", "warmup_epochs", "start_epoch", "schedule", "seed",
    "val_fraction", "test_fraction", "reverse_complement", "backbone", "max_train",
    "preset", "attention", "steps_per_epoch", "validation_steps",
)  # fmt: skip


class RunError(RuntimeError):
    """A run directory that cannot be used as asked."""


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a training run (stored as `config.json`).

    Args:
        data: `--data` value(s): see `attngen_keras.data.load_dataset`.
        out: the run directory.
        references: reference genome directory for interval lists.
        model: `attngen`, `cnn` or `gb-cnn`.
        epochs: maximum epochs.
        batch_size: batch size.
        learning_rate: Adam learning rate.
        length: fixed sequence length (default: longest sequence).
        crop: how to crop longer sequences (`left`, `center`, `right`).
        mask_fraction: AttnGen's target mask fraction.
        warmup_epochs: epochs of the masking ramp.
        start_epoch: first epoch of the masking ramp.
        schedule: ramp shape, `linear`, `cosine` or `step`.
        seed: seed of initialization, splits, shuffling and augmentation.
        val_fraction: validation fraction carved from train.
        test_fraction: test fraction carved when the source has no test split.
        reverse_complement: reverse-complement augmentation in training.
        patience: early-stopping patience in epochs (0 disables it).
        strategy: `default` or `mirrored` (`tf.distribute.MirroredStrategy`).
        backbone: overrides of the backbone hyperparameters.
        cache_dir: cache directory for parsed data (`default` or a path).
        jit_compile: XLA compilation of the train step (`auto`, true, false).
        max_train: train on a seeded, class-stratified subset of at most this
            many training sequences (quick runs and sweeps; val and test are
            unchanged).
        preset: AttnGen variant, `faithful` (default), `motif` or `paper`
            (see `attngen_keras.models.PRESETS`).
        attention: AttnGen options overriding the preset (`mask_on`,
            `inference`, `temperature`, `attention_window`,
            `stem_activation`, `faithfulness_weight`, `faithfulness_fraction`).
        deterministic: TensorFlow op determinism
            (`tf.config.experimental.enable_op_determinism`); with the seeded
            data order and the full checkpointed state, a run killed at any
            moment and resumed gives the same history and weights as an
            uninterrupted one.
        checkpoint_every: also checkpoint the full training state every this
            many training steps (default: at the end of every epoch only).
        steps_per_epoch: batches per epoch (default: one pass over the
            train split). The batches run on across epochs through seeded
            passes over the data (`make_step_stream`), for training sets too
            large to pass over every epoch.
        validation_steps: validate every epoch on the same seeded sample of
            this many batches of the val split (default: all of it); the
            final metrics use the whole val and test splits.
    """

    data: list
    out: str
    references: str = None
    model: str = "attngen"
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3
    length: int = None
    crop: str = None
    mask_fraction: float = 0.15
    warmup_epochs: int = 2
    start_epoch: int = 0
    schedule: str = "linear"
    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    reverse_complement: bool = False
    patience: int = 5
    strategy: str = "default"
    backbone: dict = dataclasses.field(default_factory=dict)
    cache_dir: str = "default"
    jit_compile: object = "auto"
    max_train: int = None
    preset: str = "faithful"
    attention: dict = dataclasses.field(default_factory=dict)
    deterministic: bool = False
    checkpoint_every: int = None
    steps_per_epoch: int = None
    validation_steps: int = None

    def __post_init__(self):
        checks = [
            (self.model in ("attngen", "cnn", "gb-cnn"), f"unknown model {self.model!r} (attngen, cnn, gb-cnn)"),
            (self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.learning_rate > 0, f"--learning-rate must be > 0, got {self.learning_rate}"),
            (self.length is None or self.length >= 1, f"--length must be >= 1, got {self.length}"),
            (0.0 <= self.mask_fraction < 1.0, f"--mask-fraction must be in [0, 1), got {self.mask_fraction}"),
            (self.warmup_epochs >= 0 and self.start_epoch >= 0, "--warmup-epochs and --start-epoch must be >= 0"),
            (0.0 <= self.val_fraction < 1.0, f"--val-fraction must be in [0, 1), got {self.val_fraction}"),
            (0.0 < self.test_fraction < 1.0, f"--test-fraction must be in (0, 1), got {self.test_fraction}"),
            (self.patience >= 0, f"--patience must be >= 0, got {self.patience}"),
            (0 <= self.seed < 2**32, f"--seed must be in [0, 2**32), got {self.seed}"),
            (self.max_train is None or self.max_train >= 2, f"--max-train must be >= 2, got {self.max_train}"),
            (self.checkpoint_every is None or self.checkpoint_every >= 1,
             f"--checkpoint-every must be >= 1, got {self.checkpoint_every}"),
            (self.preset in ("faithful", "motif", "paper"), f"unknown --preset {self.preset!r} (faithful, motif, paper)"),
            (self.steps_per_epoch is None or self.steps_per_epoch >= 1,
             f"--steps-per-epoch must be >= 1, got {self.steps_per_epoch}"),
            (self.validation_steps is None or self.validation_steps >= 1,
             f"--validation-steps must be >= 1, got {self.validation_steps}"),
        ]  # fmt: skip
        b = self.backbone
        checks += [
            (b.get("filters", 1) >= 1, f"--filters must be >= 1, got {b.get('filters')}"),
            (b.get("kernel_size", 1) >= 1, f"--kernel-size must be >= 1, got {b.get('kernel_size')}"),
            (b.get("conv_blocks", 0) >= 0, f"--conv-blocks must be >= 0, got {b.get('conv_blocks')}"),
            (0.0 <= b.get("dropout", 0.0) < 1.0, f"--dropout must be in [0, 1), got {b.get('dropout')}"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        if self.crop is not None and self.length is None:
            warnings.warn(
                f"--crop {self.crop} has no effect without --length: sequences are padded to the "
                "longest one, so none is cropped",
                stacklevel=3,
            )
        # absolute paths: the run evaluates, explains and perturbs on its own
        # data from any working directory
        self.data, self.references = resolve_sources(self.data, self.references)

    def identity(self):
        return {name: getattr(self, name) for name in _IDENTITY_FIELDS}


class EpochTimer(keras.callbacks.Callback):
    """Adds the wall seconds of each epoch to the logs as `epoch_seconds`.

    An epoch finished after a resume also counts the seconds its first part
    took before the interruption, up to the checkpoint it resumed from
    (`carried`, from the training state), so that its `epoch_seconds` is
    comparable with the others' rather than only the tail's.

    Attributes:
        carried: seconds of the current epoch spent in an earlier process;
            reset to 0 at the end of the epoch.
    """

    def __init__(self):
        super().__init__()
        self.carried = 0.0
        self._start = None

    def elapsed(self):
        """Seconds of the current epoch so far (0 outside an epoch)."""
        if self._start is None:
            return 0.0
        return self.carried + time.perf_counter() - self._start

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = self.elapsed()
        self.carried, self._start = 0.0, None


class _ResumedProgbar(keras.utils.Progbar):
    """A `Progbar` that starts at batch `done`: its time estimates count only the batches it sees."""

    def __init__(self, target, done, **kwargs):
        super().__init__(target, **kwargs)
        self.done = int(done)

    def _estimate_step_duration(self, current, now):
        return super()._estimate_step_duration(max(current - self.done, 0), now)


class RunProgbar(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, counting epochs out of the whole run.

    Finishing an interrupted epoch is a `fit` of one epoch (`epochs` is that
    epoch + 1) over the batches left, for which Keras' own bar would print
    e.g. "Epoch 2/2" in a run of 3 epochs, or no epoch line at all in the
    first, and count batches from 1; this one prints "Epoch 2/3" and counts
    the epoch's batches from the one it resumes at (e.g. "4/9", not "1/6"),
    with its time estimates from the batches this process trains.

    Args:
        total_epochs: the run's number of epochs.
        batches_done: batches of the epoch trained before the resume.

    Example:

    >>> bar = RunProgbar(total_epochs=3, batches_done=3)
    >>> bar.set_params({"verbose": 2, "epochs": 2, "steps": 6})
    >>> bar.target
    9
    """

    def __init__(self, total_epochs, batches_done=0):
        super().__init__()
        self.total_epochs = int(total_epochs)
        self.batches_done = int(batches_done)

    def set_params(self, params):
        super().set_params(params)
        self.epochs = self.total_epochs
        if self.target is not None:
            self.target += self.batches_done

    def _maybe_init_progbar(self):
        if self.progbar is None:
            self.progbar = _ResumedProgbar(
                self.target, self.batches_done, verbose=self.verbose, unit_name="step",
                stateless_metrics=set(),
            )  # fmt: skip

    def _update_progbar(self, batch, logs=None):
        super()._update_progbar(batch + self.batches_done, logs)


def _normalize(value):
    return json.loads(json.dumps(value))


def not_a_run_directory(out):
    """Why `out` cannot hold a run: `"a file"`, `"another directory"` (one with files but no
    run configuration), or None (no such path, an empty directory or a run directory)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        return "a file"
    if (
        out.exists()
        and not (out / CONFIG_FILE).exists()
        and any(not p.name.startswith((LOCK_FILE, STAGING_MARKER)) for p in out.iterdir())
    ):
        return "another directory"
    return None


def check_run_dir(
    out, config, overwrite=False, advice="use a new --out, or --overwrite to discard it"
):
    """`new`, `resume`, `finished` or (with `overwrite`, for a run already there) `replace`.

    Nothing is changed on disk. `advice`: what the error for a run of another configuration
    there says to do (another wording where `--overwrite` cannot help, or the run directory
    is named otherwise than `--out`).
    """
    out = Path(out)
    config_path = out / CONFIG_FILE
    problem = not_a_run_directory(out)
    if problem == "a file":
        raise RunError(f"{out} is a file, not a run directory; choose another --out")
    if not config_path.exists():
        if problem:
            raise RunError(
                f"{out} exists and is not an attngen run directory; choose another --out"
                + (" (--overwrite replaces only attngen run directories)" if overwrite else "")
            )
        return "new"
    if overwrite:
        return "replace"
    previous = read_json(config_path, "run configuration")
    previous["data"], previous["references"] = resolve_sources(
        previous.get("data") or [], previous.get("references")
    )
    mismatched = [
        name for name, value in _normalize(config.identity()).items() if previous.get(name) != value
    ]
    if mismatched:
        details = ", ".join(
            f"{n}: {previous.get(n)!r} -> {getattr(config, n)!r}" for n in mismatched
        )
        raise RunError(f"{out} holds a run with a different configuration ({details}); " + advice)
    if (out / METRICS_FILE).exists() and (out / MODEL_FILE).exists():
        return "finished"
    return "resume"


def _strategy(name):
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    raise ValueError(f"unknown strategy {name!r} (default or mirrored)")


def train(config, overwrite=False, verbose=None, dataset=None, callbacks=()):
    """Trains one model and writes a complete run directory.

    Re-running with the same config after an interruption resumes from the
    last checkpoint of the full training state (`TrainingState`: every epoch,
    and every `config.checkpoint_every` steps); a finished run is not redone. Nothing is written before the data has loaded; a run
    that fails or is interrupted before its first checkpoint leaves no directory behind.

    Args:
        config: a `TrainConfig`.
        overwrite: replace an existing run in `config.out`. The new run is
            trained in a hidden sibling directory (`.<name>.overwrite`,
            resumed if interrupted) and swapped in atomically once complete:
            until then the old run stays whole.
        verbose: Keras verbosity (default: progress bar on a terminal, one
            line per epoch otherwise).
        dataset: an already loaded `GenomicDataset` to use instead of
            loading `config.data` (it must be what `config.data` loads).
        callbacks: extra Keras callbacks, run after the built-in ones.

    Returns:
        The metrics dict written to `metrics.json`.
    """
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise RunError(f"{out} is a file, not a run directory; choose another --out")
    created = not out.exists()
    if not created:
        try:
            check_output_dir(out, create=False)
        except FileError as error:
            # read-only (an archived run): a finished run of this configuration is
            # reported as when writable; anything else would have to be written
            state = check_run_dir(
                out, config, overwrite, advice="use a new --out (this one is not writable)"
            )
            if state == "finished":
                return _report_finished(out)
            raise FileError(out, f"{error.problem}; choose another --out") from None
    try:
        with _run_lock(out):
            return _train_locked(out, config, overwrite, verbose, dataset, callbacks)
    except BaseException:
        # stopped (an error, Ctrl-C) before the first training checkpoint: nothing
        # was trained, so leave no --out behind (a corrected command then starts
        # afresh instead of being refused as another configuration)
        trained = (out / BACKUP_DIR).exists() or (out / MODEL_FILE).exists()
        if created and out.is_dir() and not trained:
            shutil.rmtree(out, ignore_errors=True)
        raise


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _run_lock(out):
    """Holds `out/.lock` (the owner's pid) so two processes never write one run directory.

    The lock appears atomically with its content (a hard link of a file that
    already holds the pid), so another process never reads it half-written.
    """
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_FILE
    staged = out / f".lock.{os.getpid()}"
    staged.write_text(str(os.getpid()))
    try:
        for _ in range(3):
            try:
                os.link(staged, path)
                break
            except FileExistsError:
                try:
                    owner = int(path.read_text().strip())
                except (OSError, ValueError):
                    owner = None
                if owner is None or (owner != os.getpid() and _process_alive(owner)):
                    raise RunError(
                        f"{out} is in use by another attngen process (pid {owner}); wait for it to finish "
                        f"or stop it (if no such process exists, delete {path})"
                    ) from None
                path.unlink(missing_ok=True)  # left by a killed process
        else:
            raise RunError(f"could not lock {out} (another process keeps taking {path})")
    finally:
        staged.unlink(missing_ok=True)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _report_finished(out):
    print(
        f"{out}: run already finished, nothing retrained (--overwrite trains it again); "
        f"metrics from {out / METRICS_FILE}"
    )
    return read_json(out / METRICS_FILE, "metrics file")


def _train_locked(out, config, overwrite, verbose, dataset, callbacks):
    state = check_run_dir(out, config, overwrite)
    if state == "finished":
        return _report_finished(out)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    if dataset is None:  # loaded (and so validated) before anything is written
        dataset = load_dataset(
            config.data, config.references, length=config.length, crop=config.crop,
            val_fraction=config.val_fraction, test_fraction=config.test_fraction,
            seed=config.seed, cache_dir=_cache_dir(config.cache_dir),
        )  # fmt: skip
    fingerprint = data_fingerprint(dataset)  # of the full splits, as evaluate loads them
    if config.max_train is not None:
        dataset = _subsample_train(dataset, config.max_train, config.seed)
    # (of the training sequences the model sees: after --max-train)
    duplicates = warn_split_overlap(dataset, _describe_data(config.data), stacklevel=4)
    if state != "replace":
        return _fit_and_write(
            out, out, state, config, verbose, dataset, callbacks, fingerprint, duplicates
        )
    staging = out.parent / f".{out.name}.overwrite"
    staged_state = _prepare_staging(staging, out, config)
    try:
        if staged_state == "finished":  # killed between finishing and the swap
            metrics = read_json(staging / METRICS_FILE, "metrics file")
        else:
            metrics = _fit_and_write(
                staging, out, staged_state, config, verbose, dataset, callbacks, fingerprint,
                duplicates,
            )  # fmt: skip
    except RunError:  # diverged: nothing worth resuming
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _exchange_dirs(staging, out)  # the old run is now at `staging`
    (out / STAGING_MARKER).unlink(missing_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
    return metrics


def _prepare_staging(staging, out, config):
    """The state of `--overwrite`'s staging directory: a matching interrupted one is resumed."""
    if staging.exists():
        state = None
        if (staging / STAGING_MARKER).exists():
            try:
                state = check_run_dir(staging, config, overwrite=False)
            except RunError:
                state = None
        if state in ("resume", "finished"):
            return state
        # another configuration's leftovers, or an old run swapped out by a killed process
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    (staging / STAGING_MARKER).write_text(json.dumps({"replaces": str(out)}))
    return "new"


def _exchange_dirs(a, b):
    """Swaps directories `a` and `b` in one atomic step (Linux `renameat2(RENAME_EXCHANGE)`).

    Where that call does not exist, falls back to three renames (not atomic).
    """
    a, b = os.fsencode(str(a)), os.fsencode(str(b))
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        renameat2 = None
    if renameat2 is not None:
        renameat2.argtypes = [
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_uint,
        ]
        at_fdcwd, rename_exchange = -100, 2
        if renameat2(at_fdcwd, a, at_fdcwd, b, rename_exchange) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code), os.fsdecode(b))
    aside = b + b".old-" + str(os.getpid()).encode()
    os.rename(b, aside)
    os.rename(a, b)
    os.rename(aside, a)


def data_fingerprint(dataset):
    """SHA-256 per split of what the model sees (class names, tokens, labels, ids).

    It does not depend on where the files are: the same data at another path
    has the same fingerprint, and any change to the sequences, labels or the
    split changes it.
    """
    result = {}
    for name, split in sorted(dataset.splits.items()):
        digest = hashlib.sha256(
            json.dumps([dataset.class_names, list(split.tokens.shape)]).encode()
        )
        sha256_array(split.tokens, digest)  # in chunks: a memory-mapped split is not loaded whole
        digest.update(np.ascontiguousarray(split.labels, dtype=np.int32).tobytes())
        for start in range(0, len(split.ids), 65_536):
            text = "\n".join(map(str, split.ids[start : start + 65_536]))
            digest.update((text if start == 0 else "\n" + text).encode())
            release_pages(split.ids)
        result[name] = digest.hexdigest()
    return result


def model_options(model):
    """Every option an AttnGen was built with (its `get_config`, JSON types); `None` for other models.

    Stored in the run's `config.json` as `model_options`: a preset names options
    whose defaults may change between versions, and a run must resume with the
    options it started with.
    """
    if not isinstance(model, AttnGen):
        return None
    return json.loads(json.dumps(model.get_config()))


def _as_started(model, out):
    """`model`, or the model the run in `out` started with when this version's preset differs.

    Runs written before `model_options` was stored resume with today's options.
    An option added since the run started had the `AttnGen` constructor's
    default then (options are only ever added with the old behaviour as default).
    """
    started = read_json(out / CONFIG_FILE, "run configuration").get("model_options")
    now = model_options(model)
    if started is None or now is None:
        return model
    defaults = AttnGen.option_defaults()
    started = {**{k: defaults[k] for k in now if k not in started and k in defaults}, **started}
    started = json.loads(json.dumps(started))
    if started == now:
        return model
    changed = "; ".join(
        f"{key}: {started.get(key)!r} (now {now.get(key)!r})"
        for key in sorted(set(started) | set(now))
        if started.get(key) != now.get(key)
    )
    print(f"{out}: resuming with the options this run started with ({changed})", file=sys.stderr)
    return AttnGen.from_config(started)


def _fit_and_write(
    out, final_out, state, config, verbose, dataset, callbacks, fingerprint=None, duplicates=None
):
    """Trains in `out` (a run directory, or the staging one of `final_out`) and writes the run files.

    `duplicates`: `warn_split_overlap`'s counts, recorded as `held_out_duplicates`.
    """
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)
    out.mkdir(parents=True, exist_ok=True)
    record = dataclasses.asdict(config)
    record["out"] = str(Path(final_out).absolute())
    record["data_fingerprint"] = fingerprint or data_fingerprint(dataset)
    record["held_out_duplicates"] = dict(duplicates or {})
    record.update(
        length=dataset.length,
        class_names=dataset.class_names,
        data_kind=dataset.kind,
        counts=dataset.summary(),
        # `predict` says when inputs are shorter than any the model was trained on
        shortest_sequence=dataset["train"].shortest_length() if "train" in dataset.splits else None,
        versions={
            "attngen_keras": __version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
    )
    has_val = "val" in dataset.splits
    strategy = _strategy(config.strategy)
    with strategy.scope():
        kwargs = dict(config.backbone)
        if config.model == "attngen":
            kwargs.update(
                mask_fraction=0.0, preset=config.preset, seed=config.seed, **config.attention
            )
        model = build_model(config.model, dataset.length, dataset.num_classes, **kwargs)
        if state != "new":
            model = _as_started(model, out)
        compile_classifier(model, dataset.num_classes, config.learning_rate, config.jit_compile)
    record["model_options"] = model_options(model)
    if state == "new":
        # The resolved length is part of the identity; store what the user asked.
        write_json_atomic(out / CONFIG_FILE, {**record, "length": config.length})
        _warn_small_faithful_set(model, len(dataset["train"]))
    if state == "new" or not (out / DATASET_FILE).exists():
        write_json_atomic(out / DATASET_FILE, record)

    train_split = dataset["train"]
    full_pass = -(-len(train_split) // config.batch_size)
    steps_per_epoch = config.steps_per_epoch or full_pass
    val_ds = None
    if has_val:
        val_ds = make_tf_dataset(
            _validation_sample(
                dataset["val"], config.validation_steps, config.batch_size, config.seed
            ),
            config.batch_size,
        )
    monitor = "val_loss" if has_val else "loss"
    extra_callbacks, callbacks = list(callbacks), []
    schedule = recalibration = None
    if config.model == "attngen":
        schedule = MaskingSchedule(
            config.mask_fraction, config.warmup_epochs, config.start_epoch, config.schedule
        )
        recalibration = _StreamRecalibration(
            train_split, config.batch_size, config.seed + 1,
            steps=recalibration_steps(config.batch_size, len(train_split)),
        )  # fmt: skip
        callbacks += [schedule, recalibration]
        if schedule.last_ramp_epoch >= config.epochs and config.mask_fraction > 0:
            warnings.warn(
                f"the masking ramp (--start-epoch {config.start_epoch} + --warmup-epochs "
                f"{config.warmup_epochs}) does not finish within --epochs {config.epochs}: the "
                f"last epoch trains at mask fraction {schedule.value(config.epochs - 1):.3g}, not "
                f"--mask-fraction {config.mask_fraction:g}; raise --epochs or lower --warmup-epochs",
                stacklevel=2,
            )
    elif "mask_fraction" in _history_columns(out / HISTORY_FILE):
        # resuming a run whose history.csv was begun with the column (older versions logged
        # it for every model): its appended rows must keep the same columns
        callbacks.append(_LogValue("mask_fraction", 0.0))
    # For AttnGen the saved model is the best epoch once the mask fraction has
    # reached its target (if training gets there).
    select_from = min(schedule.last_ramp_epoch, config.epochs - 1) if schedule else 0
    (out / "checkpoints").mkdir(exist_ok=True)
    # The state is removed only once the whole run is written, so a kill after
    # fit (saving, evaluating) does not restart training.
    tracker = TrainingState(
        out / STATE_FILE, out / BEST_WEIGHTS, steps_per_epoch=steps_per_epoch, every=config.checkpoint_every,
        monitor=monitor, select_from=select_from, patience=config.patience,
        patience_from=schedule.last_ramp_epoch if schedule else 0, recalibration=recalibration,
    )  # fmt: skip
    if not tracker.load() and (out / BACKUP_DIR / "training_metadata.json").exists():
        print(f"{out}: the backup of this run was written by an older attngen-keras (weights only, no full "
              "training state): training starts again from epoch 1")  # fmt: skip
    timer = EpochTimer()
    if tracker.step > 0:  # the interrupted epoch's seconds up to its checkpoint
        timer.carried = tracker.epoch_seconds
    tracker.timer = timer
    callbacks += [
        timer,
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.CSVLogger(str(out / HISTORY_FILE), append=True),
        tracker,  # after the logs are complete: best weights, early stopping, then the state
    ]  # fmt: skip
    if not (out / FIT_DONE).exists():
        if tracker.step == 0 and (tracker.epoch >= config.epochs or tracker.stopped):
            ended = (
                f"stopped early after epoch {tracker.epoch} of {config.epochs}"
                if tracker.stopped and tracker.epoch < config.epochs
                else f"all {config.epochs} epochs done"
            )
            print(f"{out}: training had ended ({ended}); writing the run")
        elif tracker.epoch > 0 or tracker.step > 0:
            where = (
                f"after batch {tracker.step} of {steps_per_epoch}"
                if tracker.step
                else "from its start"
            )
            print(f"{out}: resuming epoch {tracker.epoch + 1} of {config.epochs} {where}")
        epoch, step = tracker.epoch, tracker.step
        with strategy.scope():
            _build_compiled_metrics(model, train_split)
        fit = dict(validation_data=val_ds, callbacks=[tracker.restorer()] + callbacks + extra_callbacks,
                   verbose=verbose, shuffle=False)  # fmt: skip
        if (
            step > 0 and not tracker.stopped and epoch < config.epochs
        ):  # finish the interrupted epoch first
            stream = make_step_stream(
                train_split, config.batch_size, seed=config.seed, start_step=epoch * steps_per_epoch + step,
                end_step=(epoch + 1) * steps_per_epoch, reverse_complement=config.reverse_complement,
            )  # fmt: skip
            tracker.batch_offset = step
            model.fit(
                stream,
                initial_epoch=epoch,
                epochs=epoch + 1,
                steps_per_epoch=steps_per_epoch - step,
                **{
                    **fit,
                    "callbacks": fit["callbacks"] + [RunProgbar(config.epochs, batches_done=step)],
                },
            )
            epoch = tracker.epoch
        if not tracker.stopped and not model.stop_training and epoch < config.epochs:
            stream = make_step_stream(
                train_split, config.batch_size, seed=config.seed, start_step=epoch * steps_per_epoch,
                end_step=config.epochs * steps_per_epoch, reverse_complement=config.reverse_complement,
            )  # fmt: skip
            tracker.batch_offset = 0
            model.fit(
                stream,
                initial_epoch=epoch,
                epochs=config.epochs,
                steps_per_epoch=steps_per_epoch,
                **fit,
            )
        write_json_atomic(out / FIT_DONE, {"finished": time.time()})
    else:
        print(f"{out}: training had finished; writing the run files")
        tracker.restore_model_now(model)  # the random-generator states of the final recalibration
    history = _tidy_history(out / HISTORY_FILE, constant={} if schedule else {"mask_fraction": 0.0})
    if history[monitor].isna().any() or not (out / BEST_WEIGHTS).exists():
        raise RunError(
            f"training diverged or produced no usable epoch ({monitor} is NaN); "
            "try a lower --learning-rate, then re-run with --overwrite"
        )
    if (
        not model.optimizer.built
    ):  # (when no step ran in this process) the weight file holds its variables too
        model.optimizer.build(model.trainable_variables)
    model.load_weights(str(out / BEST_WEIGHTS))
    if recalibration is not None:
        recalibration.set_model(model)
        recalibration.recalibrate()
    model.save(str(out / MODEL_FILE))
    plot_training_curves(
        history, out / CURVES_FILE, title=f"{config.model} on {dataset.source}",
        train_loss_label=_train_loss_label(model),
    )  # fmt: skip
    metrics = {
        split: evaluate_split(model, dataset[split], config.batch_size)
        for split in ("val", "test")
        if split in dataset.splits
    }
    metrics["epochs_trained"] = int(len(history))
    eligible = history[history["epoch"] >= select_from]
    best = eligible.loc[eligible[monitor].idxmin()]
    # counted from 1, like Keras' "Epoch k/N" lines and the plots (history.csv's `epoch` column counts from 0)
    metrics["best_epoch"] = int(best["epoch"]) + 1
    metrics["best_epoch_mask_fraction"] = float(best.get("mask_fraction", 0.0))
    if "epoch_seconds" in history:
        metrics["mean_epoch_seconds"] = float(history["epoch_seconds"].mean())
    write_json_atomic(out / METRICS_FILE, metrics)
    shutil.rmtree(out / BACKUP_DIR, ignore_errors=True)
    return metrics


def _warn_small_faithful_set(model, n_train):
    """Warns when a faithful AttnGen (soft-maximum window) trains on fewer than
    `SMALL_FAITHFUL_SET` sequences, where it was measured to miss features a CNN finds."""
    if (
        float(getattr(model, "faithfulness_weight", 0.0) or 0.0) > 0
        and getattr(model, "attention_window_pooling", None) == "log_mean_exp"
        and n_train < SMALL_FAITHFUL_SET
    ):
        warnings.warn(
            f"{n_train:,} training sequences: on sets this small the faithful AttnGen can settle on "
            "one feature of several (it found only one of `attngen synthetic`'s two motifs on 3 of 10 "
            "seeds at 2,880 sequences, 1 of 6 at 4,320, 0 of 5 at 8,640); compare its test "
            "accuracy with a CNN's (`attngen train --model cnn`), or use `attngen train --preset "
            "motif`",
            stacklevel=5,  # train()'s caller (train > _train_locked > _fit_and_write > here)
        )


def _train_loss_label(model):
    """The training loss's legend: what it holds beside the cross-entropy that `val loss` is."""
    terms = []
    if float(getattr(model, "faithfulness_weight", 0.0) or 0.0) > 0:
        terms.append("faithfulness term")
    if any(getattr(layer, "entropy_weight", 0.0) for layer in model.layers):
        terms.append("entropy penalty")
    if not terms:
        return "train loss"
    return f"train loss (cross-entropy + {' + '.join(terms)})"


def _validation_sample(split, steps, batch_size, seed):
    """The val split, or with `steps` a fixed seeded sample of `steps` batches of it (in file order)."""
    if steps is None or steps * batch_size >= len(split):
        return split
    chosen = np.sort(epoch_permutation(len(split), seed, 0)[: steps * batch_size])
    sample = EncodedSplit(split.tokens[chosen], split.labels[chosen], split.ids[chosen])
    # memory-mapped: the gather mapped pages around every row (+169 MiB at 10M); release them
    release_pages(split.tokens)
    release_pages(split.ids)
    return sample


def _subsample_train(dataset, max_train, seed):
    """`dataset` with a seeded, class-stratified subset of `max_train` training sequences."""
    part = dataset["train"]
    if len(part) <= max_train:
        return dataset
    _, chosen = stratified_split(part.labels, max_train / len(part), seed)
    subset = EncodedSplit(part.tokens[chosen], part.labels[chosen], part.ids[chosen])
    return dataclasses.replace(dataset, splits={**dataset.splits, "train": subset})


def _cache_dir(value):
    return "default" if value in (None, "default") else (None if value == "none" else value)


def _build_compiled_metrics(model, split):
    """Creates the compiled metrics' variables before `fit` (Keras builds them lazily).

    So that a resumed run's saved metric states have variables to be
    restored into (`compile_classifier` builds the optimizer's). One
    inference pass on two sequences; the metric values are reset when the
    epoch starts, and every model variable is restored from the state.
    """
    x = one_hot(split.tokens[:2])
    model.compute_metrics(x, split.labels[:2], model(x, training=False), None)


class _StreamRecalibration(BatchNormRecalibration):
    """`BatchNormRecalibration` over a seeded stream of training batches whose position is saved.

    Batch `p` of the stream is batch `p mod S` of pass `p div S` over the
    split (S batches per pass, in the order `epoch_permutation(n, seed,
    pass)`): a function of `p` alone, so a resumed run recalibrates on the same
    batches as an uninterrupted one. The recalibration at the end of `fit` is
    left to the caller (it runs once, after the best weights are loaded).
    """

    def __init__(self, split, batch_size, seed, steps=50):
        super().__init__(data=None, steps=steps)
        self.split, self.batch_size, self.seed = split, int(batch_size), int(seed)
        self.position = 0
        self._per_pass = -(-len(split) // self.batch_size)
        self._order = (None, None)

    def _next_batch(self):
        repeat, index = divmod(self.position, self._per_pass)
        if self._order[0] != repeat:
            self._order = (repeat, epoch_permutation(len(self.split), self.seed, repeat))
        chosen = self._order[1][index * self.batch_size : (index + 1) * self.batch_size]
        self.position += 1
        batch = one_hot(self.split.tokens[chosen])
        release_pages(self.split.tokens)  # a memory-mapped split: its pages leave this process
        return batch

    def on_train_end(self, logs=None):
        pass


class TrainingState(keras.callbacks.Callback):
    """The full training state, checkpointed atomically and restored on resume.

    Saved in one `.npz` (written to a temporary file, then renamed over the
    previous one, so a kill at any moment leaves one complete state): every
    model variable (weights, BatchNorm statistics, mask fractions, random
    generator states), the optimizer's variables (Adam moments, iteration
    count), the metric accumulators of an unfinished epoch, and as JSON the
    position (epoch and batch), the best monitored value and the
    early-stopping counter, and the position of the BatchNorm recalibration
    stream. Saved at the end of every epoch and, with `every`, every `every`
    training steps; the best epoch's weights go to `best_path` (also via a
    rename). With the data order a function of the seed and the epoch
    (`make_epoch_stream`), a resumed run takes the same steps as an
    uninterrupted one.

    Early stopping (`patience` epochs without improvement of `monitor`,
    counted from epoch `patience_from`) and the best-epoch selection (epochs
    from `select_from`) follow `keras.callbacks.EarlyStopping` and
    `ModelCheckpoint(save_best_only=True)`, with their state in the
    checkpoint.
    """

    FORMAT = 1

    def __init__(self, path, best_path, *, steps_per_epoch, every=None, monitor="val_loss", select_from=0,
                 patience=0, patience_from=0, recalibration=None):  # fmt: skip
        super().__init__()
        self.path, self.best_path = Path(path), Path(best_path)
        self.steps_per_epoch, self.every = int(steps_per_epoch), every
        self.monitor, self.select_from = monitor, select_from
        self.patience, self.patience_from = patience, patience_from
        self.recalibration = recalibration
        self.epoch = self.step = 0  # the next batch to train: batch `step` of epoch `epoch`
        self.best = None
        self.wait, self.stop_best, self.stopped = 0, math.inf, False
        self.batch_offset = 0  # batches of the current epoch trained before this `fit` call
        self.timer = (
            None  # an EpochTimer: the current epoch's seconds go into mid-epoch checkpoints
        )
        self.epoch_seconds = 0.0  # loaded: the interrupted epoch's seconds up to its checkpoint
        self._pending = None

    # -- saving ---------------------------------------------------------------------------------

    def _arrays(self, model):
        arrays = {f"model/{i}": np.asarray(v) for i, v in enumerate(model.variables)}
        if model.optimizer is not None and model.optimizer.built:
            arrays.update(
                {f"optimizer/{i}": np.asarray(v) for i, v in enumerate(model.optimizer.variables)}
            )
        if self.step > 0:
            metric_vars = [v for m in model.metrics for v in m.variables]
            arrays.update({f"metrics/{i}": np.asarray(v) for i, v in enumerate(metric_vars)})
        return arrays

    def save(self):
        meta = {
            "format": self.FORMAT, "epoch": self.epoch, "step": self.step, "steps_per_epoch": self.steps_per_epoch,
            "best": self.best, "wait": self.wait, "stop_best": None if math.isinf(self.stop_best) else self.stop_best,
            "stopped": self.stopped,
            "recalibration_position": self.recalibration.position if self.recalibration is not None else 0,
            "epoch_seconds": self.timer.elapsed() if self.timer is not None and self.step > 0 else 0.0,
        }  # fmt: skip
        arrays = self._arrays(self.model)
        arrays["meta"] = np.asarray(json.dumps(meta))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as handle:
                np.savez(handle, **arrays)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)

    def _save_best(self):
        tmp = self.best_path.with_name(".best-partial.weights.h5")
        self.model.save_weights(str(tmp), overwrite=True)
        os.replace(tmp, self.best_path)

    # -- loading --------------------------------------------------------------------------------

    def load(self):
        """Reads the saved state, if any (its variables are assigned when training starts)."""
        if not self.path.exists():
            return False
        try:
            with np.load(self.path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
            meta = json.loads(str(arrays.pop("meta")))
        except Exception as error:
            raise RunError(
                f"{self.path}: corrupt or truncated training state ({type(error).__name__}); "
                "re-run with --overwrite to start the run again"
            ) from None
        if meta.get("steps_per_epoch") != self.steps_per_epoch:
            raise RunError(
                f"{self.path} was saved with {meta.get('steps_per_epoch')} steps per epoch, not "
                f"{self.steps_per_epoch}: the training data changed; re-run with --overwrite"
            )
        self.epoch, self.step = int(meta["epoch"]), int(meta["step"])
        self.best, self.wait, self.stopped = meta["best"], int(meta["wait"]), bool(meta["stopped"])
        self.stop_best = math.inf if meta["stop_best"] is None else float(meta["stop_best"])
        if self.recalibration is not None:
            self.recalibration.position = int(meta["recalibration_position"])
        self.epoch_seconds = float(meta.get("epoch_seconds", 0.0))  # absent in older states
        self._pending = arrays
        return True

    def _assign(self, group, variables):
        saved = sorted(
            (k for k in self._pending if k.startswith(group + "/")),
            key=lambda k: int(k.split("/")[1]),
        )
        if len(saved) != len(variables):
            raise RunError(
                f"{self.path}: the saved training state has {len(saved)} {group} variables, the model "
                f"{len(variables)}; it belongs to another model: re-run with --overwrite"
            )
        for key, variable in zip(saved, variables):
            value = self._pending[key]
            if tuple(value.shape) != tuple(variable.shape):
                raise RunError(
                    f"{self.path}: {group} variable {variable.path} has another shape; re-run with --overwrite"
                )
            variable.assign(value)

    def restore_model_now(self, model):
        """Assigns the saved model variables (weights and random-generator states) to a built model."""
        if self._pending is not None:
            self._assign("model", model.variables)

    def restorer(self):
        """A callback to put first: restores the state when `fit` starts (variables exist by then)."""
        tracker = self

        class _Restore(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                if tracker._pending is not None:
                    tracker._assign("model", self.model.variables)
                    if any(k.startswith("optimizer/") for k in tracker._pending):
                        optimizer = self.model.optimizer
                        if not optimizer.built:  # built lazily at the first step otherwise
                            optimizer.build(self.model.trainable_variables)
                        tracker._assign("optimizer", optimizer.variables)

            def on_epoch_begin(self, epoch, logs=None):
                # after fit has reset the metrics: the accumulators of the unfinished epoch
                if tracker._pending is not None and tracker.step > 0:
                    tracker._assign("metrics", [v for m in self.model.metrics for v in m.variables])
                tracker._pending = None

        return _Restore()

    # -- callback -------------------------------------------------------------------------------

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.step = self.batch_offset + batch + 1
        done = self.epoch * self.steps_per_epoch + self.step
        if self.every and done % self.every == 0 and self.step < self.steps_per_epoch:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        current = logs.get(self.monitor)
        current = None if current is None else float(current)
        improved = (
            current is not None
            and not math.isnan(current)
            and (self.best is None or current < self.best)
        )
        if improved and epoch >= self.select_from:
            self.best = current
            self._save_best()
        if self.patience > 0 and current is not None and epoch >= self.patience_from:
            self.wait += 1
            if current < self.stop_best:
                self.stop_best, self.wait = current, 0
            elif self.wait >= self.patience and epoch > 0:
                self.stopped = True
                self.model.stop_training = True
        self.epoch, self.step, self.batch_offset = epoch + 1, 0, 0
        self.save()


class _LogValue(keras.callbacks.Callback):
    """Writes a constant into the epoch logs (e.g. `mask_fraction` 0 for a CNN)."""

    def __init__(self, name, value):
        super().__init__()
        self.name, self.value = name, value

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs[self.name] = self.value


def _history_columns(path):
    """The header of a `history.csv` (empty when there is none yet)."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return next(csv.reader(handle), [])
    except OSError:
        return []


# values `train` logs every epoch beside the metrics (history.csv columns)
NOT_METRICS = ("mask_fraction", "epoch_seconds")


def _tidy_history(path, constant=None):
    """Deduplicates epochs written twice around a resume (keeps the last), and adds the
    `constant` columns a model does not log (a CNN's `mask_fraction` 0, so that every run's
    history has the same columns without the training log printing them every epoch)."""
    history = pd.read_csv(path)
    history = history.drop_duplicates("epoch", keep="last").sort_values("epoch")
    history = history.reset_index(drop=True)
    # Keras' CSVLogger, logging no validation, adds an empty `val_` column for every key,
    # also for the logged values that are not metrics
    history = history.drop(columns=[f"val_{c}" for c in NOT_METRICS], errors="ignore")
    for name, value in (constant or {}).items():
        if name not in history:
            history[name] = value
    leading = [
        c
        for c in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "mask_fraction")
        if c in history
    ]
    history = history[leading + [c for c in history.columns if c not in leading]]
    history.to_csv(path, index=False)
    return history


def predict_probabilities(model, split, batch_size=256):
    """Model outputs for an `EncodedSplit`, batched through `tf.data`."""
    dataset = make_tf_dataset(split, batch_size, include_labels=False)
    return model.predict(dataset, verbose=0)


def evaluate_split(model, split, batch_size=256):
    """Metrics of `model` on an `EncodedSplit`."""
    return classification_metrics(split.labels, predict_probabilities(model, split, batch_size))


def _what_the_directory_is(directory):
    """What to do with a directory that is not a finished run, by what it holds."""
    try:
        config = json.loads((directory / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        config = None
    if isinstance(config, dict) and {"data", "model", "epochs"} <= set(config):
        if (directory / MODEL_FILE).exists() and (directory / METRICS_FILE).exists():
            # finished, less a file that `train` would not write again
            return (
                "its training finished, but a file of it was removed: restore it, or train the "
                "run again with `attngen train ... --overwrite`"
            )
        return "resume its training with the `attngen train` command that started it"
    if (directory / "saved_model.pb").exists() or any(directory.glob("[0-9]*/saved_model.pb")):
        return "it is an exported SavedModel: `attngen predict` serves it; evaluate the run it was exported from"
    # a folder of runs (`attngen demo`'s), or of a sweep's (`runs/mask*_seed*/`)
    runs = sorted(
        str(p.parent.relative_to(directory))
        for pattern in (f"*/{MODEL_FILE}", f"*/*/{MODEL_FILE}")
        for p in directory.glob(pattern)
    )
    if runs:
        shown = ", ".join(runs[:4]) + (", ..." if len(runs) > 4 else "")
        return f"it holds runs ({shown}): give one of them"
    return "train one there first with `attngen train --out` this directory"


def load_run(run_dir):
    """`(model, config_dict)` of a finished run directory.

    Raises:
        RunError: a missing or unfinished run, or a corrupt or truncated
            `model.keras` / `dataset.json` (naming the file).
    """
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise RunError(f"{run_dir} is not a finished attngen run (no such directory)")
    if not run_dir.is_dir():
        raise RunError(f"{run_dir} is a file, not a run directory")
    missing = [name for name in (MODEL_FILE, DATASET_FILE) if not (run_dir / name).exists()]
    if missing:
        raise RunError(f"{run_dir} is not a finished attngen run (no {' and no '.join(missing)}); "
                       + _what_the_directory_is(run_dir))  # fmt: skip
    record = read_json(run_dir / DATASET_FILE, "run record")
    return load_model_file(run_dir / MODEL_FILE), record


def load_model_file(path):
    """`keras.models.load_model(path)`, with a one-line `RunError` naming the file when it cannot load."""
    import zipfile

    path = Path(path)
    try:
        return keras.models.load_model(path)
    except Exception as error:
        if not zipfile.is_zipfile(path):
            problem = "corrupt or truncated Keras model file (not a complete .keras zip archive)"
        else:
            reason = " ".join(str(error).split())[:200]
            problem = (
                f"cannot load the Keras model ({type(error).__name__}: {reason}); the file may be corrupt, "
                "or saved by another version of attngen-keras"
            )
        raise RunError(f"{path}: {problem}") from None


def _describe_data(data):
    return " ".join(map(str, data)) if isinstance(data, (list, tuple)) else str(data)


def load_unlabeled_sequences(run_dir, path, n=None, seed=0, batch_size=256, label=True):
    """A trained run's model and record, and sequences without labels to explain, labelled by the model.

    The sequences of `path` (FASTA, or CSV/TSV with a `seq` column and
    optional `id`; plain or gzipped; any label column is not read) are
    subsampled as `explain` and `perturb` subsample a split (the same `n` and
    `seed` give the same records), encoded like the run's training data (its
    length; a longer sequence is cropped as the run crops, else to its first
    `length` bases, as `predict` and the export crop it, said on stderr), and
    labelled with the class the model predicts for each.
    `explain` then shows the evidence for each prediction; `perturb`'s
    accuracies become the share of sequences whose prediction survives.

    Args:
        run_dir: a finished run.
        path: the sequences (read whole: meant for up to a few hundred
            thousand records).
        n: sequences to keep (`None`: all).
        seed: seeds the subset.
        batch_size: prediction batch size.
        label: `False` leaves every label 0, for a caller that checks
            something first and then calls `label_with_predictions`.

    Returns:
        `(model, record, encoded_split)`.

    Raises:
        DataError: no (non-empty) sequences, or a character that is not a nucleotide or
            IUPAC code (in any record of the subset; empty records are left out, said on
            stderr).
    """
    from attngen_keras.explain.report import select_subset
    from attngen_keras.predict import iter_records

    model, record = load_run(run_dir)
    records = list(iter_records(path))
    empty = sum(not sequence.strip() for _, sequence in records)
    if empty:  # nothing to explain in them; `predict` scores them, flagged
        records = [(record_id, sequence) for record_id, sequence in records if sequence.strip()]
        print(f"attngen: note: {path}: {plural(empty, 'empty sequence')} left out", file=sys.stderr)
    if not records:
        raise DataError("no sequences", path)
    chosen = [records[i] for i in select_subset(len(records), n, seed)]
    length, crop = int(record["length"]), record.get("crop") or "left"
    longer = sum(len(sequence.strip()) > length for _, sequence in chosen)
    if longer:
        kept = {"left": "first", "right": "last", "center": "central"}[crop]
        print(
            f"attngen: note: {path}: {plural(longer, 'sequence')} longer than the run's {length} nt, "
            f"cut to their {kept} {length} nt (as predict does)",
            file=sys.stderr,
        )
    shortest = _shortest_trained(record)
    if shortest is not None:
        short = sum(len(sequence.strip()) < shortest for _, sequence in chosen)
        _note_short_inputs(path, short, shortest, length)
    split = EncodedSplit.from_sequences(
        [sequence for _, sequence in chosen], np.zeros(len(chosen), np.int32), length,
        ids=[record_id for record_id, _ in chosen], crop=crop, source=str(path),
    )  # fmt: skip
    if label:
        split = label_with_predictions(model, split, batch_size)
    return model, record, split


def _shortest_trained(record):
    """The length of the run's shortest training sequence (at most its padded length); None
    for runs trained before it was recorded."""
    if record.get("shortest_sequence") is None:
        return None
    return min(int(record["shortest_sequence"]), int(record["length"]))


def _note_short_inputs(where, short, shortest, length):
    """Says on stderr that `short` sequences (of `where`) are shorter than the run's `shortest`
    training sequence, as `predict` warns: padded to `length`, they are inputs unlike it."""
    if short:
        print(
            f"attngen: note: {where}: {plural(short, 'sequence')} shorter than any the model was "
            f"trained on ({shortest} nt), padded to {length} nt: inputs unlike its training data",
            file=sys.stderr,
        )


def label_with_predictions(model, split, batch_size=256):
    """`split` with each label replaced by the class `model` predicts for the sequence.

    Args:
        model: a trained classifier.
        split: an `EncodedSplit`.
        batch_size: prediction batch size.

    Returns:
        a new `EncodedSplit` with the same tokens and ids.
    """
    from attngen_keras.explain.importance import predicted_targets
    from attngen_keras.models.batched_prediction import predict_batched

    predicted = predicted_targets(predict_batched(model, split.one_hot(), batch_size))
    return EncodedSplit(split.tokens, predicted, split.ids)


def load_run_data(run_dir, data=None, references=None, split=None, cache_dir="default"):
    """`_load_run_data`, with the too-long-sequence error's advice fitted to a trained run."""
    try:
        return _load_run_data(run_dir, data, references, split, cache_dir)
    except SequenceTooLongError as error:
        raise error.with_advice(
            "the run was trained without --crop, so its model takes sequences of at most its "
            "--length: shorten these, or train a run with --crop",
            length_name="the run's --length",
        ) from None


def _load_run_data(run_dir, data=None, references=None, split=None, cache_dir="default"):
    """A trained run's model, record and one split of data encoded like its training data.

    The run's own data (the default, at the absolute paths recorded at
    training) is split exactly as in training. Data given at another path is
    recognized as the run's own when its content fingerprint matches the
    recorded one, and split the same way. Other data is not carved: it has
    the splits of its own source, or is used whole (`all`).

    Args:
        split: `test`, `val`, `train` or `all`; a split the data does not
            have is an error, never replaced by another. `None`: `test` of
            the run's own data; for other data its `test` split if it has
            one, else all of it.

    Returns:
        `(model, record, split_name, encoded_split)`.
    """
    model, record = load_run(run_dir)
    own_paths = [str(d) for d in record["data"]]
    if data is None:
        data, references = own_paths, references or record.get("references")
        missing = _missing_paths(data)
        if missing:
            relative = [p for p in missing if not Path(p).is_absolute()]
            where = (
                " (recorded relative to the directory it was trained in: run from there, or give --data)"
                if relative
                else ""
            )
            raise RunError(
                f"{run_dir}: the run's training data {', '.join(missing)} is not there any more{where}; "
                "give its new location with --data (recognized as the training data by its content)"
            )
    else:
        data, references = resolve_sources(data, references)
    options = dict(
        length=record["length"], crop=record.get("crop"), class_names=record["class_names"],
        val_fraction=record.get("val_fraction", 0.1), test_fraction=record.get("test_fraction", 0.2),
        seed=record.get("seed", 0), cache_dir=_cache_dir(cache_dir),
    )  # fmt: skip
    recorded = record.get("data_fingerprint")
    own = data == resolve_data_paths(own_paths)
    dataset = None
    probe_warnings = []
    if own or recorded:
        # other data is loaded as the run's (carved) only to compare fingerprints, also with
        # per-class FASTA files put in the order of the training's classes (the carving
        # depends on the order the files were read in); its warnings (e.g. a class missing
        # from the carved test split) are shown only if it is kept that way
        reordered = None if own else _in_class_order(data, own_paths)
        for candidate in [data] if reordered is None else [data, reordered]:
            try:
                with warnings.catch_warnings(record=True) as probe_warnings:
                    warnings.simplefilter("always")
                    dataset = load_dataset(candidate, references, carve=True, **options)
            except DataError:
                if own:
                    raise
                dataset = None
                continue  # (the files in the training's order may still load)
            if not recorded:
                break
            same = data_fingerprint(dataset) == recorded
            if own and not same:
                warnings.warn(
                    f"{_describe_data(data)} has changed since {run_dir} was trained (its content fingerprint "
                    "differs): the splits may no longer be the training ones, and the test split may hold "
                    "training sequences",
                    stacklevel=2,
                )
            elif not own and same:
                print(
                    f"{_describe_data(data)} holds the run's training data (same content): split as in training"
                )
                own = True
                break
        if not own:
            dataset = None
    if dataset is not None:
        for caught in probe_warnings:
            warnings.warn(caught.message, caught.category, stacklevel=3)
    if dataset is None:
        dataset = load_dataset(data, references, carve=False, **options)
    if split is None:
        split = (
            "test"
            if own or "test" in dataset.splits
            else "all"
            if "all" in dataset.splits
            else None
        )
        if split == "all":
            print(
                f"{_describe_data(data)} has no splits of its own: using all {len(dataset['all'])} sequences"
            )
    if not own and split in dataset.splits:
        _warn_training_overlap(run_dir, record, own_paths, options, data, split, dataset[split])
    if split not in dataset.splits:
        hint = ""
        if "all" in dataset.splits:
            hint = (
                " (it is not the run's training data and has no splits of its own: use --split all to score "
                "all of it, or omit --data to use the run's own test split)"
            )
        raise RunError(
            f"{_describe_data(data)} has no {split!r} split (it has: {', '.join(dataset.splits)}){hint}"
        )
    shortest = _shortest_trained(record)
    if not own and shortest is not None:
        where = f"{_describe_data(data)} ({split} split, {len(dataset[split])} sequences)"
        short = dataset[split].count_shorter(shortest)
        _note_short_inputs(where, short, shortest, int(record["length"]))
    return model, record, split, dataset[split]


def row_hashes(tokens, chunk=16_384):
    """One 64-bit hash per row of `(n, length)` uint8 tokens (equal rows, equal hashes).

    A random linear hash modulo 2**64 (collisions of different rows are
    vanishingly rare), computed in chunks so that memory-mapped splits stream.

    Example:

    >>> t = np.array([[1, 2, 3], [1, 2, 3], [3, 2, 1]], np.uint8)
    >>> h = row_hashes(t)
    >>> bool(h[0] == h[1]), bool(h[0] == h[2])
    (True, False)
    """
    weights = np.random.default_rng(20261128).integers(1, 2**63, tokens.shape[1], dtype=np.uint64)
    weights |= np.uint64(1)  # odd: every position changes the hash
    out = np.empty(len(tokens), np.uint64)
    for start in range(0, len(tokens), chunk):
        block = np.asarray(tokens[start : start + chunk], dtype=np.uint64) + np.uint64(1)
        out[start : start + chunk] = (block * weights).sum(axis=1, dtype=np.uint64)
        release_pages(tokens)  # a memory-mapped split streams through, as in `data_fingerprint`
    return out


def _sorted_row_hashes(tokens):
    """`row_hashes(tokens)`, sorted (in place) for `_rows_in`."""
    hashes = row_hashes(tokens)
    hashes.sort()
    return hashes


def _rows_in(hashes, sorted_hashes):
    """Which of `hashes` occur in `sorted_hashes`, by binary search (`np.isin` would copy and
    sort both sides again: at 10M rows 10 s and +450 MiB against 3 s and +33 MiB)."""
    if not len(sorted_hashes):
        return np.zeros(len(hashes), bool)
    where = np.minimum(np.searchsorted(sorted_hashes, hashes), len(sorted_hashes) - 1)
    return sorted_hashes[where] == hashes


def warn_split_overlap(dataset, description, stacklevel=2):
    """Warns when held-out splits (`val`, `test`) hold sequences identical to training sequences.

    Duplicated records or repeats in the input land in different splits when
    they are carved, and the scores on them are not held-out estimates. The
    sequences are compared as encoded (after cropping), by `row_hashes`.

    Args:
        dataset: a `GenomicDataset`.
        description: what to name as the data in the warning.
        stacklevel: as for `warnings.warn` (2: the caller of this function).

    Returns:
        `{split: count}` of the held-out sequences also in `train` (empty: none).
    """
    if "train" not in dataset.splits or not len(dataset["train"].tokens):
        return {}
    seen = _sorted_row_hashes(dataset["train"].tokens)
    found = {}
    for name in ("val", "test"):
        if name in dataset.splits and len(dataset[name].tokens):
            count = int(_rows_in(row_hashes(dataset[name].tokens), seen).sum())
            if count:
                found[name] = (count, len(dataset[name].tokens))
    if found:
        where = " and ".join(f"{c} of {n} {name}" for name, (c, n) in found.items())
        warnings.warn(
            f"{description}: {where} sequences are identical to training sequences (duplicated "
            "records or repeats in the data): scores on them are not held-out estimates",
            stacklevel=stacklevel,
        )
    return {name: c for name, (c, _) in found.items()}


def _warn_training_overlap(run_dir, record, own_paths, options, data, split_name, split):
    """Warns when sequences of other data given to a run are among its training sequences.

    The run's own data (if still at its recorded paths) is split as in
    training; a re-ordered or re-formatted copy of it is not recognized as the
    run's data by its fingerprint, and would be scored whole as held-out data.
    """
    if _missing_paths(own_paths) or not len(split.tokens):
        return  # nothing to compare with
    try:
        with warnings.catch_warnings():  # the training data's own warnings were shown at training
            warnings.simplefilter("ignore")
            own = load_dataset(own_paths, record.get("references"), carve=True,
                               show_progress=False, **options)  # fmt: skip
    except (DataError, OSError):
        return
    seen = {
        name: _sorted_row_hashes(own[name].tokens)
        for name in ("train", "val")
        if name in own.splits
    }
    if not seen:
        return
    given = row_hashes(split.tokens)
    found = {name: _rows_in(given, hashes) for name, hashes in seen.items()}
    overlap = int(np.logical_or.reduce(list(found.values())).sum())
    if overlap:
        where = ", ".join(
            f"{int(hits.sum())} in its {name} split" for name, hits in found.items() if hits.any()
        )
        warnings.warn(
            f"{overlap} of {len(given)} sequences of {_describe_data(data)} (split {split_name}) are "
            f"in the training data of {run_dir} ({where}): scores on them are not held-out "
            "estimates",
            stacklevel=3,
        )


def _in_class_order(data, own_paths):
    """`data`, FASTA files one per class, reordered to the class order of the run's own files.

    `None` when `data` is not such a list, names other classes, or is already in that order.
    """
    from attngen_keras.data.readers import FASTA_SUFFIXES, base_suffix, fasta_class_and_path

    items = [str(d) for d in data]
    if len(items) < 2 or len(items) != len(own_paths):
        return None
    if any(
        base_suffix(fasta_class_and_path(i)[1]) not in FASTA_SUFFIXES for i in items + own_paths
    ):
        return None
    given = {fasta_class_and_path(i)[0]: i for i in items}
    order = [fasta_class_and_path(i)[0] for i in own_paths]
    if len(given) != len(items) or set(given) != set(order):
        return None
    reordered = [given[label] for label in order]
    return None if reordered == items else reordered


def _missing_paths(items):
    """Paths among `--data` items that do not exist (a dataset name is not a path)."""
    from attngen_keras.data.readers import base_suffix, class_and_path

    missing = []
    for item in items:
        label, path = class_and_path(item)
        looks_like_path = label is not None or os.sep in path or base_suffix(path) != ""
        if looks_like_path and not Path(path).exists():
            missing.append(path)
    return missing


def evaluate_run(
    run_dir,
    data=None,
    references=None,
    split=None,
    batch_size=256,
    out=None,
    cache_dir="default",
    force=False,
):
    """Evaluates a trained run on any supported dataset.

    The data is encoded like the training data (same length, crop and class
    order); classes must match the run's classes.

    Args:
        run_dir: a finished run directory.
        data: `--data` value(s); default: the run's own training data.
        references: reference genomes for interval lists.
        split: which split to evaluate (`test`, `val`, `train` or `all`);
            see `load_run_data` (default: test, or all of other data without splits).
        batch_size: prediction batch size.
        out: JSON file to write; an existing one is replaced only with
            `force`. Default `RUN_DIR/evaluation_<split>.json`, or
            `evaluation_<split>.2.json`, ... when that exists (earlier
            evaluations are kept).
        cache_dir: cache directory for parsed data.
        force: replace an existing `out`.

    Returns:
        The metrics dict (with `written`: the path of the JSON file).
    """
    if out is not None:
        out = check_output_file(out, force)  # before the (slow) work
    elif (Path(run_dir) / MODEL_FILE).is_file():  # (not a run: `load_run_data` says what it is)
        try:  # the default place, the run directory, can be read-only (a shared copy)
            check_output_dir(run_dir, create=False)
        except FileError as error:
            raise FileError(
                error.path, f"{error.problem}; use --out FILE to write the evaluation elsewhere"
            ) from None
    model, record, split, part = load_run_data(run_dir, data, references, split, cache_dir)
    metrics = evaluate_split(model, part, batch_size)
    used = resolve_data_paths(data) if data is not None else record["data"]
    result = {"run": str(Path(run_dir).absolute()), "data": used, "split": split, **metrics}
    out = out or unique_path(Path(run_dir) / f"evaluation_{split}.json")
    write_json_atomic(out, result)
    return {**result, "written": str(out)}


def format_metrics(metrics):
    """One line: accuracy, AUROC, AUPRC, F1, loss and n."""
    return " ".join(
        f"{k}={metrics[k]:.4f}" if isinstance(metrics[k], float) else f"{k}={metrics[k]}"
        for k in ("accuracy", "auroc", "auprc", "f1", "loss", "n")
        if k in metrics
    )


__all__ = [
    "EpochTimer",
    "RunError",
    "TrainConfig",
    "TrainingState",
    "evaluate_run",
    "evaluate_split",
    "format_metrics",
    "data_fingerprint",
    "warn_split_overlap",
    "label_with_predictions",
    "load_unlabeled_sequences",
    "load_model_file",
    "load_run",
    "load_run_data",
    "predict_probabilities",
    "train",
]
