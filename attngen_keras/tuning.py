"""KerasTuner search over the architecture and the masking fraction.

`AttnGenHyperModel` defines the search space; `run_search` runs a
`hyperband`, `bayesian` or `random` search on the foundation's data pipeline
(locally, or as chief / worker of KerasTuner's distributed mode) and writes
`trials.csv`, `summary.md` and `best_hyperparameters.json` into the project
directory; `retrain_best` trains the best configuration on train+val into a
normal run directory.

Searches resume: KerasTuner reloads the oracle from
`<directory>/<project_name>` (finished trials are kept; a trial that was
running when the process died is run again).
"""

import dataclasses
import json
import math
import os
import warnings
from pathlib import Path

import keras
import keras_tuner as kt
from keras_tuner.src import utils as _kt_utils

from attngen_keras.callbacks import BatchNormRecalibration, MaskingSchedule, recalibration_steps
from attngen_keras.files import plural, write_text_atomic
from attngen_keras.models import build_model, compile_classifier

TUNERS = ("hyperband", "bayesian", "random")
SUMMARY_FILES = ("trials.csv", "summary.md", "best_hyperparameters.json")
_KERAS_TUNER_SAVE_JSON = _kt_utils.save_json
BACKBONE_HPS = ("filters", "kernel_size", "conv_blocks", "block_kernel_size", "dilation_rate",
                "pool_size", "dropout", "dense_units")  # fmt: skip


class AttnGenHyperModel(kt.HyperModel):
    """Search space over the Conv1D backbone, learning rate and masking.

    Hyperparameters: `conv_blocks` (1-3), `filters` (32/64/96), `kernel_size`
    (stem, 7/9/11/15), `block_kernel_size` (3/5/7), `dilation_rate` (1/2),
    `pool_size` (2/3), `dropout` (0-0.5), `dense_units` (0/32/64/128),
    `learning_rate` (1e-4 to 3e-3, log), and for AttnGen `mask_fraction`
    (0-0.5, step 0.05) and `warmup_epochs` (0-3, below `max_epochs` and `shortest_epochs`).
    With `model="cnn"` the same
    backbone is searched without the SaliencyMask, for a fair comparison.

    Every AttnGen trial trains with a `MaskingSchedule` (and the
    `BatchNormRecalibration` that `attngen train` uses).

    Args:
        length: sequence length.
        num_classes: number of classes.
        model: `"attngen"` or `"cnn"`.
        recalibration_data: batches of training inputs for BatchNorm
            recalibration (AttnGen; `None` skips it).
        recalibration_steps: batches per recalibration.
        max_epochs: the search's most epochs per trial; `warmup_epochs` is
            then searched up to `max_epochs - 1` (at most 3).
        shortest_epochs: the fewest epochs a trial trains (Hyperband's first
            round of its most aggressive bracket, `hyperband_shortest_epochs`);
            `warmup_epochs` is then searched up to `shortest_epochs - 1`, so
            that every trial reaches its mask fraction.
        objective: the search's objective: an AttnGen trial is scored on the
            epochs at its full mask fraction only (`score_after_ramp`).
        seed: with it, each trial seeds Keras, NumPy and Python from it and its
            hyperparameters (`trial_seed`) before building its model, so that a
            trial does not depend on the trials run before it in the process (a
            resumed search re-runs an interrupted trial as it would have run).
        train_data: a callable returning a new training dataset, called for
            every trial (its shuffling order then starts afresh too); the search
            is then run without `x`. `recalibration_data` may be such a callable
            as well.

    Example:

    >>> hypermodel = AttnGenHyperModel(200, 2)
    >>> model = hypermodel.build(kt.HyperParameters())
    >>> model.input_shape
    (None, 200, 4)
    """

    def __init__(
        self, length, num_classes, model="attngen", recalibration_data=None, recalibration_steps=50,
        max_epochs=None, shortest_epochs=None, objective="val_accuracy", seed=None,
        train_data=None,
    ):  # fmt: skip
        if model not in ("attngen", "cnn"):
            raise ValueError(f"the search covers attngen or cnn, got {model!r}")
        super().__init__(name=f"{model}_hypermodel", tunable=True)
        self.length = length
        self.num_classes = num_classes
        self.model = model
        self.recalibration_data = recalibration_data
        self.recalibration_steps = recalibration_steps
        self.max_epochs = max_epochs
        self.shortest_epochs = shortest_epochs
        self.objective = objective
        self.seed = seed
        self.train_data = train_data

    def declare(self, hp):
        """Declares every hyperparameter; returns the values as build kwargs."""
        values = {
            "conv_blocks": hp.Int("conv_blocks", 1, 3),
            "filters": hp.Choice("filters", [32, 64, 96]),
            "kernel_size": hp.Choice("kernel_size", [7, 9, 11, 15]),
            "block_kernel_size": hp.Choice("block_kernel_size", [3, 5, 7]),
            "dilation_rate": hp.Choice("dilation_rate", [1, 2]),
            "pool_size": hp.Choice("pool_size", [2, 3]),
            "dropout": hp.Float("dropout", 0.0, 0.5, step=0.1),
            "dense_units": hp.Choice("dense_units", [0, 32, 64, 128]),
            "learning_rate": hp.Float("learning_rate", 1e-4, 3e-3, sampling="log"),
        }
        if self.model == "attngen":
            values["mask_fraction"] = hp.Float("mask_fraction", 0.0, 0.5, step=0.05)
            # a ramp that ends within every trial's epochs, so that each trial is scored at
            # its mask fraction
            budget = min(e for e in (self.max_epochs, self.shortest_epochs, 4) if e is not None)
            longest = max(0, budget - 1)
            values["warmup_epochs"] = hp.Int("warmup_epochs", 0, longest)
        return values

    def build(self, hp):
        if self.seed is not None:
            keras.utils.set_random_seed(trial_seed(self.seed, hp.values))
        values = self.declare(hp)
        model = build_model(
            self.model, self.length, self.num_classes, **{k: values[k] for k in BACKBONE_HPS}
        )
        return compile_classifier(model, self.num_classes, values["learning_rate"])

    def fit(self, hp, model, *args, callbacks=None, **kwargs):
        callbacks = list(callbacks or [])
        if self.train_data is not None:
            args = (self.train_data(), *args)
        if self.model != "attngen":
            return model.fit(*args, callbacks=callbacks, **kwargs)
        schedule = MaskingSchedule(hp.get("mask_fraction"), hp.get("warmup_epochs"))
        callbacks.insert(0, schedule)
        if self.recalibration_data is not None:
            recalibration = self.recalibration_data
            recalibration = recalibration() if callable(recalibration) else recalibration
            callbacks.insert(1, BatchNormRecalibration(recalibration, self.recalibration_steps))
        # KerasTuner's callbacks (its best-epoch checkpoint, which a Hyperband continuation
        # loads) see the ramp's epochs as the worst ones too; the training log does not
        hide = _HideRampObjective(schedule.last_ramp_epoch, self.objective)
        callbacks = [hide, *callbacks, hide.restorer()]
        history = model.fit(*args, callbacks=callbacks, **kwargs)
        return score_after_ramp(history, schedule.last_ramp_epoch, self.objective)


def trial_seed(seed, values):
    """The seed of one trial: from the search's `seed` and the trial's hyperparameter `values`.

    Example:

    >>> trial_seed(0, {"filters": 32, "dropout": 0.1}) == trial_seed(0, {"dropout": 0.1, "filters": 32})
    True
    >>> trial_seed(0, {"filters": 32}) == trial_seed(1, {"filters": 32})
    False
    """
    import zlib

    import numpy as np

    text = json.dumps(values, sort_keys=True, default=str)
    return int(np.random.SeedSequence([int(seed), zlib.crc32(text.encode())]).generate_state(1)[0])


def _worst(objective):
    return math.inf if objective_of(objective).direction == "min" else -math.inf


class _HideRampObjective(keras.callbacks.Callback):
    """Sets the objective in the epoch logs of the masking ramp to its worst value for the
    callbacks between it and its `restorer()`, which puts the real value back."""

    def __init__(self, first_full_epoch, objective):
        super().__init__()
        self.first_full_epoch, self.objective = first_full_epoch, objective
        self.hidden = None

    def on_epoch_end(self, epoch, logs=None):
        self.hidden = None
        if logs is not None and epoch < self.first_full_epoch and self.objective in logs:
            self.hidden = logs[self.objective]
            logs[self.objective] = _worst(self.objective)

    def restorer(self):
        hide = self

        class Restore(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if logs is not None and hide.hidden is not None:
                    logs[hide.objective] = hide.hidden

        return Restore()


def score_after_ramp(history, first_full_epoch, objective):
    """`history` with the objective of the epochs inside the masking ramp set to its worst value.

    KerasTuner scores a trial by the best epoch of the `History` its fit returns;
    so an AttnGen trial is scored, as `attngen train` selects its model, on the
    epochs at its full mask fraction (from `first_full_epoch`, 0-based; a
    Hyperband continuation's epochs count from its `initial_epoch`). The
    training log and the other metrics are left as they were.

    Example:

    >>> history = keras.callbacks.History()
    >>> history.epoch, history.history = [0, 1, 2], {"val_loss": [0.3, 0.5, 0.4]}
    >>> score_after_ramp(history, 1, "val_loss").history["val_loss"]
    [inf, 0.5, 0.4]
    """
    values = history.history.get(objective)
    if values is None:
        return history
    worst = _worst(objective)
    history.history[objective] = [
        worst if epoch < first_full_epoch else value for epoch, value in zip(history.epoch, values)
    ]
    return history


@dataclasses.dataclass
class TuneConfig:
    """A KerasTuner search (see `attngen tune --help`).

    Args:
        data: `--data` value(s), as for `attngen train`.
        project_name: name of the search (its directory under `directory`).
        references: reference genomes for interval lists.
        tuner: `hyperband`, `bayesian` or `random`.
        model: `attngen` or `cnn` (the same backbone without SaliencyMask).
        max_epochs: epochs per trial (Hyperband: the largest budget).
        max_trials: trials for `bayesian` / `random` (Hyperband derives its
            own count from `max_epochs` and `factor`).
        factor: Hyperband's reduction factor.
        objective: metric to optimize (`val_accuracy`, `val_auc` up; `val_loss` down).
        directory: where searches live.
        batch_size: batch size.
        seed: seed of the search, splits and shuffling.
        length: fixed sequence length (default: the longest).
        crop: crop mode for longer sequences.
        max_train: train on a stratified subset of this many sequences.
        strategy: `default` or `mirrored` (`tf.distribute.MirroredStrategy` per trial).
        cache_dir: parsed-data cache.
    """

    data: list
    project_name: str
    references: str = None
    tuner: str = "hyperband"
    model: str = "attngen"
    max_epochs: int = 6
    max_trials: int = 10
    factor: int = 3
    objective: str = "val_accuracy"
    directory: str = "tuning/runs"
    batch_size: int = 128
    seed: int = 0
    length: int = None
    crop: str = None
    max_train: int = None
    strategy: str = "default"
    cache_dir: str = "default"

    def __post_init__(self):
        from attngen_keras.data.loading import resolve_sources

        # absolute, as `attngen train` stores them: the search resumes from any directory
        self.data, self.references = resolve_sources(self.data, self.references)
        checks = [
            (self.tuner in TUNERS, f"--tuner must be one of {', '.join(TUNERS)}, got {self.tuner!r}"),
            (self.model in ("attngen", "cnn"), f"--model must be attngen or cnn, got {self.model!r}"),
            (self.max_epochs >= 1 and self.max_trials >= 1, "--max-epochs and --max-trials must be >= 1"),
            (self.factor >= 2, f"--factor must be >= 2, got {self.factor}"),
            (self.objective.startswith("val_"), f"--objective must be a validation metric (val_...), got {self.objective!r}"),
            (self.strategy in ("default", "mirrored"), f"--strategy must be default or mirrored, got {self.strategy!r}"),
            (bool(self.project_name) and "/" not in self.project_name, f"bad --project-name {self.project_name!r}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (0 <= self.seed < 2**32, f"--seed must be in [0, 2**32), got {self.seed}"),
            (self.length is None or self.length >= 1, f"--length must be >= 1, got {self.length}"),
            (self.max_train is None or self.max_train >= 2, f"--max-train must be >= 2, got {self.max_train}"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def project_dir(self):
        return Path(self.directory) / self.project_name


def objective_of(name):
    """A `keras_tuner.Objective` with the direction the metric implies."""
    return kt.Objective(name, direction="min" if name.endswith("loss") else "max")


def _atomic_save_json(path, obj):
    """KerasTuner's `utils.save_json`, but complete or not at all.

    KerasTuner rewrites `oracle.json` and each `trial.json` in place; a search
    killed during that write left an empty file, and the resume then failed.
    The JSON is written beside the file and renamed over it (local paths; other
    file systems keep KerasTuner's own write).
    """
    text = json.dumps(obj)
    path = str(path)
    if "://" in path:
        return _KERAS_TUNER_SAVE_JSON(path, obj)
    partial = f"{path}.partial-{os.getpid()}"
    try:
        with open(partial, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return text


def _use_atomic_state_files():
    """Routes KerasTuner's state files (`oracle.json`, `trial.json`) through `_atomic_save_json`."""
    from keras_tuner.src import utils as kt_utils

    kt_utils.save_json = _atomic_save_json


def _check_state_files(project_dir):
    """A one-line error for a state file left empty or truncated (by a kill during an older save)."""
    from attngen_keras.data.errors import DataError

    for path in [project_dir / "oracle.json", *project_dir.glob("trial_*/trial.json")]:
        if path.exists():
            try:
                json.loads(path.read_text())
            except ValueError:
                raise DataError(
                    "KerasTuner state file is empty or truncated (the search was killed while "
                    "writing it); delete it to rerun that trial, or start a new --project-name",
                    path,
                ) from None


def hyperband_shortest_epochs(max_epochs, factor):
    """The fewest epochs a Hyperband trial trains: `ceil(max_epochs / factor ** (brackets - 1))`,
    as KerasTuner's `HyperbandOracle` counts its brackets (from `max_epochs` down to 1 epoch).

    Example:

    >>> hyperband_shortest_epochs(10, 3), hyperband_shortest_epochs(30, 3), hyperband_shortest_epochs(2, 3)
    (2, 2, 2)
    """
    brackets, epochs = 0, float(max_epochs)
    while epochs >= 1:
        epochs /= factor
        brackets += 1
    return math.ceil(max_epochs / factor ** (brackets - 1))


def make_tuner(config, hypermodel):
    """The KerasTuner tuner `config.tuner`, resuming `config.project_dir` if it exists."""
    import tensorflow as tf

    _use_atomic_state_files()
    _check_state_files(Path(config.project_dir))

    common = dict(
        objective=objective_of(config.objective), seed=config.seed, directory=config.directory,
        project_name=config.project_name, overwrite=False,
        distribution_strategy=tf.distribute.MirroredStrategy() if config.strategy == "mirrored" else None,
    )  # fmt: skip
    if config.tuner == "hyperband":
        return kt.Hyperband(
            hypermodel, max_epochs=config.max_epochs, factor=config.factor, **common
        )
    if config.tuner == "bayesian":
        return kt.BayesianOptimization(hypermodel, max_trials=config.max_trials, **common)
    return kt.RandomSearch(hypermodel, max_trials=config.max_trials, **common)


def _load(config, val_fraction=0.1):
    from attngen_keras.data import load_dataset
    from attngen_keras.training import _cache_dir, _subsample_train

    dataset = load_dataset(
        config.data, config.references, length=config.length, crop=config.crop,
        val_fraction=val_fraction, seed=config.seed, cache_dir=_cache_dir(config.cache_dir),
    )  # fmt: skip
    if config.max_train is not None:
        dataset = _subsample_train(dataset, config.max_train, config.seed)
    return dataset


def _check_settings(config):
    """Refuses a search directory holding other settings (a resumed search must use the same
    ones); returns the settings to store with `_write_settings` once the data is known to be
    usable. Nothing is written."""
    from attngen_keras.data.loading import resolve_sources
    from attngen_keras.training import RunError

    path = config.project_dir / "attngen_tune.json"
    # max_trials may grow between invocations (more trials); everything else must match
    settings = {
        k: v
        for k, v in dataclasses.asdict(config).items()
        if k not in ("cache_dir", "strategy", "directory")
    }
    if config.model == "attngen":
        # the AttnGen variant the trials build (the default preset): a search started under
        # another default holds checkpoints of another model
        from attngen_keras.models.classifiers import DEFAULT_PRESET, PRESETS

        settings["model_options"] = dict(PRESETS[DEFAULT_PRESET])
        # trials scored on their epochs at full mask fraction (since 2026-11-29): a search
        # begun under the earlier rule (every epoch) would mix two scores
        settings["scoring"] = "epochs at full mask fraction"
    fixed = {k: v for k, v in settings.items() if k != "max_trials"}
    if path.exists():
        previous = json.loads(path.read_text())
        previous["data"], previous["references"] = resolve_sources(
            previous.get("data") or [], previous.get("references")
        )
        changed = [k for k, v in fixed.items() if previous.get(k) != v]
        if changed:
            details = ", ".join(f"{k}: {previous.get(k)!r} -> {fixed[k]!r}" for k in changed)
            raise RunError(
                f"{config.project_dir} holds a search with other settings ({details}); use a new --project-name"
            )
        held = previous.get("max_trials")
        if config.tuner != "hyperband" and isinstance(held, int) and config.max_trials < held:
            raise RunError(
                f"{config.project_dir} holds a search of --max-trials {held}; it may be raised "
                f"to add trials, not lowered to {config.max_trials} (its trials are already "
                "counted toward it); use a new --project-name for a smaller search"
            )
    return settings


def _write_settings(config, settings):
    path = config.project_dir / "attngen_tune.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(settings, indent=2))


def run_search(config, verbose=None):
    """Runs (or resumes) the search; returns the tuner.

    In KerasTuner's distributed mode (`KERASTUNER_TUNER_ID`,
    `KERASTUNER_ORACLE_IP`, `KERASTUNER_ORACLE_PORT` set) the chief serves the
    oracle until the workers are done and then writes the summary; workers
    run trials.
    """
    from keras_tuner.src.distribute import utils as dist_utils

    from attngen_keras.data import make_tf_dataset

    if verbose is None:
        verbose = 1 if os.isatty(1) else 2
    is_worker = dist_utils.has_chief_oracle() and not dist_utils.is_chief_oracle()
    settings = None if is_worker else _check_settings(config)
    keras.utils.set_random_seed(config.seed)
    dataset = _load(config)
    if "val" not in dataset.splits:
        raise ValueError(
            "the search needs a validation split (the data has none and none could be carved)"
        )
    available = {"val_loss", "val_accuracy"} | ({"val_auc"} if dataset.num_classes == 2 else set())
    if config.objective not in available:
        raise ValueError(
            f"--objective {config.objective} is not computed for this data; choose one of {sorted(available)}"
        )
    val_ds = make_tf_dataset(dataset["val"], config.batch_size)

    # new datasets for every trial, which seeds itself (`trial_seed`): a trial runs the same
    # whether it is the first of its process (a resumed search) or not
    def train_data():
        return make_tf_dataset(dataset["train"], config.batch_size, shuffle=True, seed=config.seed)

    def recalibration():
        return make_tf_dataset(
            dataset["train"], config.batch_size, shuffle=True, seed=config.seed + 1
        )

    steps = recalibration_steps(config.batch_size, len(dataset["train"]))
    hypermodel = AttnGenHyperModel(
        dataset.length, dataset.num_classes, config.model, recalibration, steps,
        max_epochs=config.max_epochs,
        shortest_epochs=(hyperband_shortest_epochs(config.max_epochs, config.factor)
                         if config.tuner == "hyperband" else None),
        objective=config.objective, seed=config.seed, train_data=train_data,
    )  # fmt: skip
    if not is_worker:
        # only now, with the options and the data known to be usable: a refused search
        # leaves nothing that would block the corrected command
        _write_settings(config, settings)
    tuner = make_tuner(config, hypermodel)
    if not is_worker:
        (config.project_dir / "dataset.json").write_text(
            json.dumps(
                {
                    "class_names": dataset.class_names,
                    "length": dataset.length,
                    "counts": dataset.summary(),
                    "shortest_sequence": dataset["train"].shortest_length(),
                },
                indent=2,
            )
        )
    try:
        tuner.search(
            validation_data=val_ds,
            epochs=config.max_epochs,
            verbose=verbose,
            shuffle=False,
        )
    except RuntimeError as error:  # KerasTuner gives up after consecutive failed trials
        from attngen_keras.training import RunError

        raise RunError(
            f"the search stopped: {error} (the trial tracebacks are printed above)"
        ) from None
    if not is_worker:
        write_summary(tuner, config)
    return tuner


def trial_rows(tuner):
    """One dict per trial: id, status, score, best epoch and hyperparameters."""
    rows = []
    for trial_id, trial in sorted(tuner.oracle.trials.items()):
        values = {k: v for k, v in trial.hyperparameters.values.items()}
        rows.append(
            {
                "trial": trial_id,
                "status": str(trial.status),
                "score": trial.score,
                # Hyperband continues trials from `tuner/initial_epoch`; best_step
                # counts the epochs of that continuation only
                "best_epoch": None
                if trial.best_step is None
                else int(trial.best_step) + 1 + int(values.get("tuner/initial_epoch", 0)),
                **values,
            }
        )
    return rows


def write_summary(tuner, config):
    """Writes `trials.csv`, `summary.md` and `best_hyperparameters.json`; returns the best trial's row."""
    import pandas as pd

    frame = pd.DataFrame(trial_rows(tuner))
    out = config.project_dir
    frame.to_csv(out / "trials.csv", index=False)
    finished = frame[frame["score"].notna()]
    if finished.empty:
        raise ValueError(f"no finished trials in {out}")
    failed = frame.loc[frame["status"] == "FAILED", "trial"].tolist()
    if failed:
        warnings.warn(
            f"{plural(len(failed), 'trial')} failed ({', '.join(map(str, failed))}; the "
            "tracebacks are printed above) and are left out of the ranking",
            stacklevel=2,
        )
    ascending = objective_of(config.objective).direction == "min"
    ranked = finished.sort_values("score", ascending=ascending)
    best = ranked.iloc[0].to_dict()
    shown = [c for c in ("trial", "score", "best_epoch", "mask_fraction", "warmup_epochs", *BACKBONE_HPS, "learning_rate",
                         "tuner/epochs") if c in ranked]  # fmt: skip
    lines = [
        f"{config.tuner} search of {config.model} on {' '.join(config.data)}: {len(frame)} trials "
        f"({len(finished)} finished{', ' + str(len(failed)) + ' failed' if failed else ''}), "
        f"objective {config.objective}",
        "",
        "| " + " | ".join(shown) + " |",
        "|" + "---|" * len(shown),
    ]
    for _, row in ranked.iterrows():
        lines.append("| " + " | ".join(_fmt(row[c]) for c in shown) + " |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    hps = {
        k: _plain(v)
        for k, v in best.items()
        if k in (*BACKBONE_HPS, "learning_rate", "mask_fraction", "warmup_epochs")
    }
    result = {"trial": best["trial"], "objective": config.objective, "score": float(best["score"]),
              "best_epoch": _plain(best["best_epoch"]), "model": config.model, "hyperparameters": hps}  # fmt: skip
    (out / "best_hyperparameters.json").write_text(json.dumps(result, indent=2))
    return result


def _plain(value):
    """numpy scalars -> Python values (for JSON)."""
    return value.item() if hasattr(value, "item") else value


def _fmt(value):
    if isinstance(value, float):
        return "" if value != value else f"{value:.4g}"
    return str(value)


def retrain_best(config, out=None, epochs=None, verbose=None):
    """Trains the best configuration on train+val into a run directory.

    All of train+val, also when the search used `max_train` (a subset, for
    speed). The epoch count is the best trial's best epoch (at least one epoch past
    the masking warm-up), unless `epochs` is given. The run directory works
    with `attngen evaluate`, `explain`, `perturb` and `export`. A run
    directory holding this retrained run is not trained again; one holding
    another is refused.

    Returns:
        `(run_dir, metrics, retrained)`: `retrained` is False when the run
        was already there.
    """
    from attngen_keras.files import read_json
    from attngen_keras.training import METRICS_FILE, TrainConfig, check_run_dir, train

    best_path = config.project_dir / "best_hyperparameters.json"
    if not best_path.exists():
        raise FileNotFoundError(f"{best_path} not found: run the search first")
    best = json.loads(best_path.read_text())
    hps = best["hyperparameters"]
    warmup = int(hps.get("warmup_epochs", 0))
    if epochs is None:
        epochs = max(best.get("best_epoch") or config.max_epochs, warmup + 1)
    elif int(epochs) < 1:
        raise ValueError(f"retrain epochs must be >= 1, got {epochs}")
    epochs = int(epochs)
    out = Path(out) if out else config.project_dir / "best_run"
    train_config = TrainConfig(
        data=config.data, out=str(out), references=config.references, model=config.model,
        epochs=epochs, batch_size=config.batch_size, learning_rate=float(hps["learning_rate"]),
        length=config.length, crop=config.crop, mask_fraction=float(hps.get("mask_fraction", 0.0)),
        warmup_epochs=warmup, seed=config.seed, val_fraction=0.0, patience=0,
        backbone={k: _int_if_whole(hps[k]) for k in BACKBONE_HPS}, cache_dir=config.cache_dir,
        strategy=config.strategy,
    )  # fmt: skip
    state = check_run_dir(out, train_config, advice="use another --retrain-out, or delete it")
    if state == "finished":
        return out, read_json(out / METRICS_FILE, "metrics file"), False
    return out, train(train_config, verbose=verbose), True


def _int_if_whole(value):
    return int(value) if isinstance(value, (int, float)) and float(value).is_integer() else value
