"""Benchmark: speed and memory of attngen-keras against references measured in the same run.

Sections (all on `human_or_fungus` from ../shared/data unless noted):

1. input pipeline: the Genomic Benchmarks reference pipeline
   (`keras.utils.text_dataset_from_directory` + character `TextVectorization`
   + one-hot, as in its TensorFlow baseline notebook) over the 100,000-file
   layout, vs our cold cache build and our steady-state `tf.data` epoch;
2. training step time of AttnGen (masking active) vs the same backbone
   without SaliencyMask vs the Genomic Benchmarks CNN; sequences/s; achieved
   FLOP/s (TF profiler count of the forward+backward graph) as a fraction of
   this machine's measured fp32 matmul peak;
3. time to 97% validation accuracy per model (validation every 50 steps on
   2,000 held-out sequences; the evaluation and AttnGen's BatchNorm
   recalibration before it are not counted as training time);
4. serving: the exported SavedModel's `serving_default` on raw strings
   (batch-1 latency p50/p99, batch-256 throughput) vs in-process
   `model.predict` on one-hot arrays;
5. memory: peak RSS of one AttnGen training epoch on the 100,000-sequence
   dataset and of the cache build (each in a fresh child process);
6. scale: cache build and one training epoch at 10k, 100k and 1M sequences
   cut from the shared reference genomes, and streaming `predict` over a
   1M-sequence FASTA with its RSS sampled over time.
7. scale from one CSV (`--scale-csv`, needs no shared data): for each size,
   a CSV of that many 200-nt planted-motif sequences is generated (numpy,
   about 205 bytes a row), then in fresh child processes: the cache build
   (`load_dataset`; CSVs over 256 MiB are read in chunks into memory-mapped
   splits) and `attngen train` itself (`training.train`: AttnGen,
   `--steps-per-epoch`, `--validation-steps`, then the final evaluation on
   the whole val and test splits), each with its peak RSS and seconds per
   phase; the steady training step time is compared with the smallest
   size's, measured in the same run.

8. scale from FASTA per class (`--scale-fasta`, needs no shared data): for
   each size, the same sequences as two FASTA files (`pos.fa`, `neg.fa`),
   then in fresh child processes the cache build (`load_dataset`) streamed
   into memory-mapped splits against the in-memory reader (the only reader
   before; skipped above `--in-memory-max`), each with its peak RSS and
   seconds.

    python benchmarks/speed.py            # everything (about 15 min on 2 cores)
    python benchmarks/speed.py --quick    # smaller scales and fewer repeats
    python benchmarks/speed.py --scale-csv --sizes 10000 100000 2000000 10000000 \
        --workdir /tmp/scale              # section 7 only (CSVs deleted after)
    python benchmarks/speed.py --scale-fasta --sizes 100000 2000000 10000000
                                          # section 8 only (benchmarks/results/speed_scale/fasta.json)

Prints Markdown tables, writes benchmarks/results/speed.json (quick:
speed_quick.json) and benchmarks/results/speed/*.png. Linux only (reads
/proc for memory).
"""

import argparse
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
INTERVALS = SHARED / "genomic_benchmarks" / "human_or_fungus"
REFERENCES = SHARED / "references"
RESULTS = ROOT / "benchmarks" / "results"
BATCH = 128
MODELS = ("attngen", "cnn", "gb-cnn")
TARGET = 0.97


# ---------------------------------------------------------------- helpers


def _proc_status_gib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def rss_gib():
    """Current resident set size of this process, GiB (from /proc)."""
    return _proc_status_gib("VmRSS")


def peak_rss_gib():
    """Peak RSS of this process so far, GiB.

    `VmHWM` belongs to the process image, so a child started by exec does not
    inherit its parent's peak (`getrusage`'s `ru_maxrss` does on Linux).
    """
    return _proc_status_gib("VmHWM")


def run_child(task, **kwargs):
    """Runs `task` in a fresh Python process (own peak RSS); returns its JSON result."""
    spec = json.dumps({"task": task, **kwargs})
    proc = subprocess.run(
        [sys.executable, __file__, "--child", spec], capture_output=True, text=True, cwd=ROOT
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child {task} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def machine():
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = int(
            next(
                line
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")
            ).split()[1]
        )
    except (OSError, StopIteration):
        mem = 0
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem / 2**20, 1),
        "platform": platform.platform(), "python": platform.python_version(),
        "tensorflow": tf.__version__, "keras": keras.__version__,
        "gpu": [d.name for d in tf.config.list_physical_devices("GPU")],
    }  # fmt: skip


def matmul_peak_gflops(n=2048, repeats=10):
    """Best fp32 matmul GFLOP/s of an n x n product (this machine's practical peak)."""
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    matmul = tf.function(lambda x, y: tf.matmul(x, y))
    matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


# ---------------------------------------------------------------- 1. pipeline


def reference_pipeline(directory, class_names):
    """The Genomic Benchmarks TF baseline's input pipeline over a split directory.

    Returns:
        `(dataset of (one_hot, label), vocabulary, seconds to list files and adapt)`.
    """
    import tensorflow as tf

    start = time.perf_counter()
    texts = keras.utils.text_dataset_from_directory(
        str(directory),
        batch_size=BATCH,
        class_names=class_names,
        shuffle=True,
        seed=0,
        verbose=False,
    )
    vectorize = keras.layers.TextVectorization(
        output_mode="int", split="character", standardize="lower"
    )
    vectorize.adapt(texts.map(lambda x, y: x))
    adapt_seconds = time.perf_counter() - start

    def encode(x, y):
        tokens = vectorize(tf.expand_dims(x, -1)) - 2  # 0 padding, 1 OOV: bases start at 2
        return tf.one_hot(tf.cast(tokens, tf.int32), 4), y

    return (
        texts.map(encode).prefetch(tf.data.AUTOTUNE),
        vectorize.get_vocabulary()[2:],
        adapt_seconds,
    )


def reference_pipeline_epoch(directory, class_names, repeats=2):
    """Best-of-`repeats` seconds of one reference epoch (files re-read every epoch); (seconds, n, adapt seconds)."""
    pipeline, _, adapt_seconds = reference_pipeline(directory, class_names)
    best, seen = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        seen = sum(int(y.shape[0]) for _, y in pipeline)
        best = min(best, time.perf_counter() - start)
    return best, seen, adapt_seconds


def our_pipeline_epoch(split):
    """Steady-state seconds of one shuffled, RC-augmented epoch of our tf.data pipeline."""
    from attngen_keras.data import make_tf_dataset

    pipeline = make_tf_dataset(split, BATCH, shuffle=True, reverse_complement=True)
    for _ in pipeline.take(5):
        pass
    start = time.perf_counter()
    seen = sum(int(y.shape[0]) for _, y in pipeline)
    return time.perf_counter() - start, seen


def pipeline_section(work, quick):
    from attngen_keras.data import genomic_benchmarks as gb
    from attngen_keras.data import load_dataset

    print("## 1. input pipeline", flush=True)
    start = time.perf_counter()
    full = Path(gb.build_full_sequences(INTERVALS, REFERENCES, work))
    build_layout_seconds = time.perf_counter() - start
    files = sum(1 for _ in full.rglob("*.txt"))
    split_dir = full / ("test" if quick else "train")
    classes = sorted(p.name for p in split_dir.iterdir())
    ref_seconds, ref_n, adapt_seconds = reference_pipeline_epoch(split_dir, classes)

    cache = work / "cache"
    child = run_child("cache_build", data=str(full), cache=str(cache))
    dataset = load_dataset(str(full), cache_dir=str(cache), show_progress=False)
    start = time.perf_counter()
    load_dataset(str(full), cache_dir=str(cache), show_progress=False)
    warm_load_seconds = time.perf_counter() - start
    split = dataset["test" if quick else "train"]
    epochs = [our_pipeline_epoch(split) for _ in range(2)]
    ours_seconds, ours_n = min(epochs)
    ref_rate, ours_rate = ref_n / ref_seconds, ours_n / ours_seconds
    return dataset, {
        "files": files, "epoch_split": split_dir.name, "epoch_sequences": ours_n,
        "gb_layout_build_seconds": build_layout_seconds,
        "reference_adapt_seconds": adapt_seconds, "reference_epoch_seconds": ref_seconds,
        "reference_examples_per_second": ref_rate,
        "cache_build_seconds": child["seconds"], "cache_build_peak_rss_gib": child["peak_rss_gib"],
        "cached_load_seconds": warm_load_seconds,
        "pipeline_epoch_seconds": ours_seconds, "pipeline_examples_per_second": ours_rate,
        "pipeline_speedup_vs_reference": ours_rate / ref_rate,
        # the one-time build (all 100,000 files) plus one epoch, vs one reference epoch
        "first_epoch_speedup_vs_reference": ref_seconds / (child["seconds"] + ours_seconds),
        "layout": str(full), "cache": str(cache),
    }  # fmt: skip


# ---------------------------------------------------------------- 2. training step


def build_compiled(kind, length, mask_fraction=0.15, **options):
    from attngen_keras.models import build_model, compile_classifier

    keras.utils.set_random_seed(0)
    model = build_model(kind, length, 2, **options)
    compile_classifier(model, 2)
    if kind == "attngen":
        # masking active at the target fraction, as after the warm-up
        model.get_layer("saliency_mask").mask_fraction.assign(mask_fraction)
    return model


def train_step_flops(model, length):
    """Float ops of one forward+backward pass on a batch, counted by the TF profiler."""
    import tensorflow as tf

    loss_fn = model.loss

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        return tape.gradient(loss, model.trainable_variables)

    graph = step.get_concrete_function(
        tf.TensorSpec((BATCH, length, 4), tf.float32), tf.TensorSpec((BATCH, 1), tf.float32)
    ).graph
    return graph_float_ops(graph)


def graph_float_ops(graph):
    """Float ops of a traced `tf.function` graph, counted by the TF profiler."""
    import tensorflow as tf

    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph, options=options).total_float_ops


def saliency_layer_profile(length, channels=64, repeats=30):
    """Forward+backward ms of the SaliencyMask alone (with and without masking) next to one conv block.

    Where AttnGen's extra step time goes: the attention scorer on full-resolution
    features, or the masking (two argsorts per sequence).
    """
    import tensorflow as tf

    from attngen_keras.layers import SaliencyMask

    x = tf.random.normal((BATCH, length, channels))
    valid = tf.ones((BATCH, length))
    saliency = SaliencyMask(32, mask_fraction=0.15)
    saliency.build([(None, length, channels), (None, length)])
    conv = keras.layers.Conv1D(channels, 5, padding="same")
    conv.build((None, length // 2, channels))
    pooled = tf.random.normal((BATCH, length // 2, channels))

    def timed(fn, inputs, weights):
        @tf.function(jit_compile=True)
        def step(inputs):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                loss = tf.reduce_sum(tf.square(fn(inputs)))
            return tape.gradient(loss, [inputs, *weights])

        step(inputs)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step(inputs)[0].numpy()
            times.append(time.perf_counter() - start)
        return float(np.median(times) * 1000)

    weights = saliency.trainable_weights
    return {
        "saliency_mask_training_ms": timed(
            lambda f: saliency([f, valid], training=True), x, weights
        ),
        "saliency_mask_no_masking_ms": timed(
            lambda f: saliency([f, valid], training=False), x, weights
        ),
        "conv_block_1_ms": timed(conv, pooled, conv.trainable_weights),
    }


def step_time_section(split, quick):
    import tensorflow as tf

    print("## 2. training step time", flush=True)
    length = split.tokens.shape[1]
    # 40 real batches held in memory: the step time excludes the input pipeline
    x, y = split.one_hot()[: 40 * BATCH], split.labels[: 40 * BATCH]
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH).repeat()
    models = {kind: build_compiled(kind, length) for kind in MODELS}
    steps, repeats = (20, 3) if quick else (40, 5)
    for model in models.values():
        model.fit(data, steps_per_epoch=10, epochs=1, verbose=0)  # trace
    times = {kind: [] for kind in MODELS}
    for _ in range(repeats):  # interleaved, so drifts in machine load hit every model alike
        for kind, model in models.items():
            timer = _BatchTimer()
            model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[timer])
            times[kind] += timer.seconds[2:]
    peak = matmul_peak_gflops()
    result = {
        "matmul_peak_gflops": peak,
        "steps_per_repeat": steps,
        "repeats": repeats,
        "models": {},
    }
    for kind, model in models.items():
        step = float(np.median(times[kind]))
        flops = train_step_flops(model, length)
        result["models"][kind] = {
            "step_ms_median": step * 1000, "step_ms_p10_p90": [float(np.percentile(times[kind], q) * 1000) for q in (10, 90)],
            "sequences_per_second": BATCH / step, "train_gflop_per_step": flops / 1e9,
            "achieved_gflops": flops / step / 1e9, "fraction_of_matmul_peak": flops / step / 1e9 / peak,
            "parameters": model.count_params(),
        }  # fmt: skip
    result["attngen_over_cnn_step_time"] = (
        result["models"]["attngen"]["step_ms_median"] / result["models"]["cnn"]["step_ms_median"]
    )
    result["saliency_layer_profile"] = saliency_layer_profile(length)
    result["attngen_over_gb_cnn_step_time"] = (
        result["models"]["attngen"]["step_ms_median"] / result["models"]["gb-cnn"]["step_ms_median"]
    )
    return result


# ---------------------------------------------------------------- 3. time to accuracy


class _TrainClock(keras.callbacks.Callback):
    """Training wall time only: an epoch's clock stops when validation begins.

    Put it first in the callback list, so that it stops before other
    `on_test_begin` work (AttnGen's BatchNorm recalibration).
    """

    def __init__(self, target):
        super().__init__()
        self.target = target
        self.seconds, self.curve, self.reached = 0.0, [], None
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_test_begin(self, logs=None):
        if self._start is not None:
            self.seconds += time.perf_counter() - self._start
            self._start = None

    def on_epoch_end(self, epoch, logs=None):
        accuracy = float(logs.get("val_accuracy", 0.0))
        self.curve.append((self.seconds, accuracy))
        if accuracy >= self.target and self.reached is None:
            self.reached = (epoch + 1, self.seconds)
            self.model.stop_training = True


class _BatchTimer(keras.callbacks.Callback):
    """Wall seconds of every training batch (step plus callback dispatch)."""

    def __init__(self):
        super().__init__()
        self.seconds = []
        self._start = None

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def _trace_then_reset(model, train_ds, val_ds):
    """Traces the train and test steps (one batch each), then restores the initial state.

    So that tracing time is not charged to the first training chunk.
    """
    model.optimizer.build(model.trainable_variables)
    saved = [v.numpy() for v in model.weights]
    saved_optimizer = [v.numpy() for v in model.optimizer.variables]
    model.fit(train_ds.take(1), epochs=1, verbose=0)
    model.evaluate(val_ds.take(1), verbose=0)
    for variable, value in zip(model.weights, saved):
        variable.assign(value)
    for variable, value in zip(model.optimizer.variables, saved_optimizer):
        variable.assign(value)


def time_to_accuracy_section(dataset, quick):
    from attngen_keras.callbacks import BatchNormRecalibration, MaskingSchedule, recalibration_steps
    from attngen_keras.data import make_tf_dataset
    from attngen_keras.explain.report import select_subset

    print(f"## 3. time to {TARGET:.0%} validation accuracy", flush=True)
    train, val = dataset["train"], dataset["val"]
    chunk = 50  # steps between validations
    chunks_per_epoch = max(1, len(train) // BATCH // chunk)
    max_chunks = 4 * chunks_per_epoch if not quick else 2 * chunks_per_epoch
    index = select_subset(len(val), 2000, seed=0)
    val_ds = make_tf_dataset(
        dataclasses.replace(
            val, tokens=val.tokens[index], labels=val.labels[index], ids=val.ids[index]
        ),
        500,
    )
    result, trained = {}, {}
    for kind in MODELS:
        model = build_compiled(kind, train.tokens.shape[1], mask_fraction=0.0)
        train_ds = make_tf_dataset(train, BATCH, shuffle=True, seed=0).repeat()
        _trace_then_reset(model, train_ds, val_ds)
        clock = _TrainClock(TARGET)
        callbacks = [clock]
        if kind == "attngen":  # the library's schedule: ramp to 0.15 over two real epochs
            callbacks += [
                MaskingSchedule(0.15, warmup_epochs=2 * chunks_per_epoch),
                BatchNormRecalibration(
                    make_tf_dataset(train, BATCH, shuffle=True, seed=1).repeat(),
                    steps=recalibration_steps(BATCH, len(train)),
                ),
            ]
        model.fit(train_ds, steps_per_epoch=chunk, epochs=max_chunks, validation_data=val_ds,
                  callbacks=callbacks, verbose=0)  # fmt: skip
        reached = clock.reached
        result[kind] = {
            "seconds_to_target": reached[1] if reached else None,
            "steps_to_target": reached[0] * chunk if reached else None,
            "sequences_to_target": reached[0] * chunk * BATCH if reached else None,
            "curve_seconds_accuracy": clock.curve,
        }
        trained[kind] = model
        print(f"  {kind}: {result[kind]['seconds_to_target']} s", flush=True)
    return result, trained


# ---------------------------------------------------------------- 4. serving


def serving_section(model, split, class_names, work, quick):
    import tensorflow as tf

    from attngen_keras.data.alphabet import one_hot
    from attngen_keras.export import export_model

    print("## 4. serving", flush=True)
    length = split.tokens.shape[1]
    path = export_model(model, work / "saved_models" / "hof", class_names, length)
    loaded = tf.saved_model.load(str(path))
    serve = loaded.signatures["serving_default"]
    n = 2560 if quick else 10240
    tokens = split.tokens[:n]
    strings = np.array(split.sequences()[:n], dtype=object)
    serve(sequences=tf.constant(strings[:256]))  # warm up

    latencies = []
    for i in range(100 if quick else 300):
        batch = tf.constant(strings[i : i + 1])
        start = time.perf_counter()
        serve(sequences=batch)["probabilities"].numpy()
        latencies.append(time.perf_counter() - start)

    def serving_pass():
        start = time.perf_counter()
        for i in range(0, n, 256):
            serve(sequences=tf.constant(strings[i : i + 256]))["probabilities"].numpy()
        return n / (time.perf_counter() - start)

    x = one_hot(tokens)
    model.predict(x[:256], batch_size=256, verbose=0)

    def inprocess_pass():
        start = time.perf_counter()
        model.predict(x, batch_size=256, verbose=0)
        return n / (time.perf_counter() - start)

    serving_rates, inprocess_rates = [], []
    for _ in range(3):  # interleaved
        serving_rates.append(serving_pass())
        inprocess_rates.append(inprocess_pass())
    served = serve(sequences=tf.constant(strings[:512]))["probabilities"].numpy()[:, 1]
    direct = model.predict(x[:512], verbose=0)[:, 0]
    return path, {
        "serving_latency_ms_p50_batch1": float(np.percentile(latencies, 50) * 1000),
        "serving_latency_ms_p99_batch1": float(np.percentile(latencies, 99) * 1000),
        "serving_sequences_per_second_batch256": max(serving_rates),
        "inprocess_predict_sequences_per_second_batch256": max(inprocess_rates),
        "serving_over_inprocess_throughput": max(serving_rates) / max(inprocess_rates),
        "max_abs_difference_serving_vs_predict": float(np.max(np.abs(served - direct))),
        "sequences": n,
    }


# ---------------------------------------------------------------- 5/6. memory and scale


def write_genome_windows(path_for_class, n_per_class, length=200, seed=0):
    """Writes `n_per_class` random windows (no N, random strand) per reference genome as FASTA."""
    import gzip

    from Bio import SeqIO

    rng = np.random.default_rng(seed)
    complement = np.frombuffer(bytes.maketrans(b"ACGT", b"TGCA"), dtype=np.uint8)
    genomes = {"human": "hsap_chr22_epo_subset.fa.gz", "fungus": "umaydis_521.fa.gz"}
    for label, filename in genomes.items():
        with gzip.open(REFERENCES / filename, "rt") as handle:
            genome = "".join(str(record.seq).upper() for record in SeqIO.parse(handle, "fasta"))
        seq = np.frombuffer(genome.encode(), dtype=np.uint8)
        bad = np.concatenate([[0], np.cumsum(~np.isin(seq, np.frombuffer(b"ACGT", np.uint8)))])
        starts = rng.integers(0, len(seq) - length, n_per_class * 3)
        starts = starts[bad[starts + length] - bad[starts] == 0][:n_per_class]
        if len(starts) < n_per_class:
            raise RuntimeError(f"{filename}: too few N-free windows")
        flip = rng.random(n_per_class) < 0.5
        with open(path_for_class[label], "w") as out:
            for first in range(0, n_per_class, 50_000):  # blocks keep the index arrays small
                block = seq[starts[first : first + 50_000, None] + np.arange(length)]
                turn = flip[first : first + 50_000]
                block[turn] = complement[block[turn][:, ::-1]]
                out.write(
                    "".join(
                        f">{label}_{first + i}\n{row.tobytes().decode()}\n"
                        for i, row in enumerate(block)
                    )
                )


def scale_section(work, sizes, predict_model, quick):
    print("## 6. scale", flush=True)
    rows = []
    for size in sizes:
        folder = work / f"scale_{size}"
        folder.mkdir(parents=True, exist_ok=True)
        files = {label: folder / f"{label}.fa" for label in ("fungus", "human")}
        write_genome_windows(files, size // 2, seed=size)
        data = [f"{label}={path}" for label, path in files.items()]
        build = run_child("cache_build", data=data, cache=str(folder / "cache"))
        max_steps = 300 if size > 200_000 else None
        epoch = run_child(
            "train_epoch", data=data, cache=str(folder / "cache"), max_steps=max_steps
        )
        rows.append(
            {"sequences": size, **{f"cache_build_{k}": v for k, v in build.items()}, **epoch}
        )
        print(f"  {size:,}: cache {build['seconds']:.1f} s, epoch {epoch['epoch_seconds']:.0f} s"
              f"{' (projected)' if epoch['projected'] else ''}, peak {epoch['peak_rss_gib']:.2f} GiB", flush=True)  # fmt: skip
    largest = max(sizes)
    fasta = work / f"scale_{largest}" / "all.fa"
    with open(fasta, "w") as out:
        for label in ("fungus", "human"):
            with open(work / f"scale_{largest}" / f"{label}.fa") as part:
                shutil.copyfileobj(part, out)
    predict = run_child(
        "predict_stream", model=str(predict_model), fasta=str(fasta), out=str(work / "preds.tsv")
    )
    return {"sizes": rows, "predict": {"sequences": largest, **predict}}


# ---------------------------------------------------------------- 7. scale from one CSV


SCALE_LENGTH = 200
SCALE_MOTIF = b"TGACTCA"


def write_scale_csv(path, n, length=SCALE_LENGTH, seed=0, block=500_000):
    """One CSV of `n` random sequences, half `pos` with `SCALE_MOTIF` planted at a random place.

    Rows have a fixed width (`seq,label`), built as one numpy byte array per block.
    """
    rng = np.random.default_rng(seed)
    bases = np.frombuffer(b"ACGT", np.uint8)
    motif = np.frombuffer(SCALE_MOTIF, np.uint8)
    width = length + 5  # ",pos\n"
    with open(path, "wb") as out:
        out.write(b"seq,label\n")
        for first in range(0, n, block):
            rows = min(block, n - first)
            data = np.empty((rows, width), np.uint8)
            data[:, :length] = bases[rng.integers(0, 4, (rows, length), dtype=np.uint8)]
            positive = rng.random(rows) < 0.5
            starts = rng.integers(0, length - len(motif) + 1, rows)
            where = np.flatnonzero(positive)
            data[where[:, None], starts[where, None] + np.arange(len(motif))] = motif
            data[:, length : length + 4] = np.frombuffer(b",neg", np.uint8)
            data[where, length + 1 : length + 4] = np.frombuffer(b"pos", np.uint8)
            data[:, -1] = ord("\n")
            out.write(data.tobytes())


def scale_csv_section(work, sizes, steps, validation_steps, evaluation_batches):
    print("## 7. scale from one CSV", flush=True)
    rows = []
    for size in sizes:
        folder = work / f"csv_{size}"
        folder.mkdir(parents=True, exist_ok=True)
        csv = folder / "data.csv"
        start = time.perf_counter()
        write_scale_csv(csv, size, seed=size)
        written = time.perf_counter() - start
        try:
            build = run_child("file_cache_build", data=str(csv), cache=str(folder / "cache"))
            run = run_child(
                "csv_train", data=str(csv), cache=str(folder / "cache"), out=str(folder / "run"),
                steps=steps, validation_steps=validation_steps, evaluation_batches=evaluation_batches,
            )  # fmt: skip
        finally:
            csv_bytes = csv.stat().st_size
            shutil.rmtree(folder, ignore_errors=True)  # the CSV, the cache and the run
        rows.append({"sequences": size, "csv_gib": csv_bytes / 2**30, "csv_write_seconds": written,
                     **{f"cache_build_{k}": v for k, v in build.items()}, **run})  # fmt: skip
        print(f"  {size:,}: cache {build['seconds']:.1f} s / {build['peak_rss_gib']:.2f} GiB; "
              f"train {run['fit_seconds']:.0f} s ({run['steady_step_ms']:.0f} ms/step, "
              f"{run['steady_step_cpu_ms']:.0f} ms CPU), evaluation "
              f"{run['evaluate_seconds']:.0f} s; train peak {run['peak_rss_gib']:.2f} GiB", flush=True)  # fmt: skip
    for key in ("steady_step_ms", "steady_step_cpu_ms"):
        for row in rows:
            row[f"{key}_over_smallest"] = row[key] / rows[0][key]
    return {"sizes": rows, "steps": steps, "validation_steps": validation_steps,
            "evaluation_batches": evaluation_batches, "length": SCALE_LENGTH}  # fmt: skip


def write_scale_fasta(folder, n, length=SCALE_LENGTH, seed=0, block=500_000):
    """The sequences of `write_scale_csv(n, seed)` as two FASTA files, `pos.fa` and `neg.fa`."""
    csv = folder / "rows.csv"
    write_scale_csv(csv, n, length, seed, block)
    counts = {"pos": 0, "neg": 0}
    with (
        open(csv, "rb") as rows,
        open(folder / "pos.fa", "wb") as pos,
        open(folder / "neg.fa", "wb") as neg,
    ):
        rows.readline()
        for line in rows:
            label = line[length + 1 : length + 4].decode()
            counts[label] += 1
            (pos if label == "pos" else neg).write(
                b">%s%d\n%s\n" % (label.encode(), counts[label], line[:length])
            )
    csv.unlink()
    return [str(folder / "pos.fa"), str(folder / "neg.fa")]


def scale_fasta_section(work, sizes, in_memory_max):
    print("## 8. scale from FASTA per class: cache build", flush=True)
    rows = []
    for size in sizes:
        folder = work / f"fasta_{size}"
        folder.mkdir(parents=True, exist_ok=True)
        try:
            files = write_scale_fasta(folder, size, seed=size)
            fasta_bytes = sum(Path(f).stat().st_size for f in files)
            row = {"sequences": size, "fasta_gib": fasta_bytes / 2**30}
            modes = [("streamed", True)] + ([("in_memory", False)] if size <= in_memory_max else [])
            for name, memory_map in modes:
                build = run_child("file_cache_build", data=files, cache=str(folder / f"cache_{name}"),
                                  memory_map=memory_map)  # fmt: skip
                row[name] = build
                print(f"  {size:,} ({row['fasta_gib']:.2f} GiB), {name}: {build['seconds']:.1f} s, "
                      f"peak {build['peak_rss_gib']:.2f} GiB", flush=True)  # fmt: skip
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        rows.append(row)
    return {"sizes": rows, "length": SCALE_LENGTH, "in_memory_max": in_memory_max}


def _machine_line(machine):
    return (
        "Machine: {cpu}, {cores} cores, {memory_gib} GiB; TensorFlow {tensorflow}, Keras {keras}, "
        "CPU only.".format(**machine)
    )


def report_scale_fasta(results):
    section = results["scale_fasta"]
    lines = [
        _machine_line(results["machine"]),
        "",
        f"Cache build (`load_dataset`) of two FASTA files (`pos.fa`, `neg.fa`) of {section['length']}-nt "
        "sequences, each in a fresh process: streamed into memory-mapped splits vs the in-memory reader.",
        "",
        "| sequences | FASTA | streamed: seconds / peak RSS | in memory: seconds / peak RSS |",
        "|---|---|---|---|",
    ]
    for row in section["sizes"]:
        streamed = row["streamed"]
        memory = row.get("in_memory")
        other = (
            f"{memory['seconds']:.1f} s / {memory['peak_rss_gib']:.2f} GiB" if memory else "not run"
        )
        lines.append(
            f"| {row['sequences']:,} | {row['fasta_gib']:.2f} GiB | {streamed['seconds']:.1f} s / "
            f"**{streamed['peak_rss_gib']:.2f} GiB** | {other} |"
        )
    return "\n".join(lines) + "\n"


def main_scale_fasta(args):
    sizes = args.sizes or [100_000, 2_000_000, 10_000_000]
    out = Path(args.out or RESULTS / "speed_scale" / "fasta.json")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="attngen_scale_fasta_"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        results = {"machine": machine()}
        results["scale_fasta"] = scale_fasta_section(work, sizes, args.in_memory_max)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    results["wall_seconds"] = time.perf_counter() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=float))
    table = report_scale_fasta(results)
    out.with_suffix(".md").write_text(table)
    print(table)
    print(f"wrote {out} and {out.with_suffix('.md')}")


def plot_scale_csv(section, out, before=None):
    from attngen_keras.plotting import plt, save_figure

    out.mkdir(parents=True, exist_ok=True)
    rows = section["sizes"]
    sizes = [r["sequences"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.semilogx(sizes, [r["cache_build_peak_rss_gib"] for r in rows], "o-", label="cache build")
    ax.semilogx(
        sizes, [r["peak_rss_gib"] for r in rows], "s-", label="attngen train (fit + evaluation)"
    )
    if before:
        ax.semilogx([r["sequences"] for r in before], [r["peak_rss_gib"] for r in before], "x--",
                    color="grey", label="training before (in memory, FASTA; speed.json)")  # fmt: skip
    ax.axhline(1.5, color="black", linestyle=":", label="goal 1.5 GiB")
    highest = max(r["peak_rss_gib"] for r in rows + (before or []))
    ax.set_ylim(0, max(2.0, highest * 1.1))
    ax.set_xlabel(f"sequences of {section['length']} nt in one CSV")
    ax.set_ylabel("peak resident memory (GiB)")
    ax.set_title("peak RSS vs data size (2 CPU cores)", fontsize=10)
    save_figure(fig, ax, out / "scale.png")


def report_scale_csv(results):
    section = results["scale_csv"]
    lines = [
        _machine_line(results["machine"]),
        "",
        f"AttnGen (faithful preset), batch {BATCH}, `--steps-per-epoch {section['steps']}` for one epoch, "
        f"`--validation-steps {section['validation_steps']}`, then the final evaluation streaming "
        + (
            "the whole val and test splits"
            if not section["evaluation_batches"]
            else f"the first {section['evaluation_batches']} batches (of 256) of val and test"
        )
        + "; the cache build and `attngen train` each in a fresh process. Step times are medians over the "
        "steps after the fifth, in wall and in process CPU time (the machine is shared: wall times are noisy).",
        "",
        "| sequences | CSV GiB | cache build s | cache build peak RSS GiB | memory-mapped | train: open + fingerprint s "
        "| train: fit s | step ms wall / CPU | step CPU time vs smallest | evaluation s (sequences) | test accuracy "
        "| train peak RSS GiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in section["sizes"]:
        lines.append(
            f"| {r['sequences']:,} | {r['csv_gib']:.2f} | {r['cache_build_seconds']:.1f} | "
            f"{r['cache_build_peak_rss_gib']:.2f} | {'yes' if r['memory_mapped'] else 'no'} | "
            f"{r['open_seconds']:.1f} | {r['fit_seconds']:.1f} | {r['steady_step_ms']:.0f} / "
            f"{r['steady_step_cpu_ms']:.0f} | {r['steady_step_cpu_ms_over_smallest']:.2f}x | "
            f"{r['evaluate_seconds']:.0f} ({r['evaluated_sequences']:,} of {r['evaluation_sequences_total']:,}) | "
            f"{r['test_accuracy']:.3f} | **{r['peak_rss_gib']:.2f}** |"
        )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- children


def child_cache_build(spec):
    from attngen_keras.data import load_dataset

    start = time.perf_counter()
    dataset = load_dataset(spec["data"], cache_dir=spec["cache"], show_progress=False)
    return {"seconds": time.perf_counter() - start, "peak_rss_gib": peak_rss_gib(),
            "sequences": sum(len(s) for s in dataset.splits.values())}  # fmt: skip


def child_train_epoch(spec):
    """One AttnGen epoch (masking and recalibration on, as `attngen train`) on a cached dataset."""
    from attngen_keras.callbacks import BatchNormRecalibration, MaskingSchedule, recalibration_steps
    from attngen_keras.data import load_dataset, make_tf_dataset

    dataset = load_dataset(spec["data"], cache_dir=spec["cache"], show_progress=False)
    if spec.get("max_train"):
        from attngen_keras.training import _subsample_train

        dataset = _subsample_train(dataset, spec["max_train"], 0)
    train = dataset["train"]
    model = build_compiled("attngen", train.tokens.shape[1], mask_fraction=0.15)
    data = make_tf_dataset(train, BATCH, shuffle=True)
    total_steps = -(-len(train) // BATCH)
    steps = min(total_steps, spec.get("max_steps") or total_steps)
    callbacks = [MaskingSchedule(0.15, warmup_epochs=0),
                 BatchNormRecalibration(make_tf_dataset(train, BATCH, shuffle=True, seed=1),
                                        steps=recalibration_steps(BATCH, len(train)))]  # fmt: skip
    model.fit(data.take(5), epochs=1, verbose=0)  # trace outside the timing
    timer = _BatchTimer()
    start = time.perf_counter()
    model.fit(data.take(steps), epochs=1, verbose=0, callbacks=[timer, *callbacks])
    seconds = time.perf_counter() - start
    step = float(np.median(timer.seconds[2:] or timer.seconds))
    projected = steps < total_steps
    if projected:
        # measured one-off costs (iterator and shuffle buffer, recalibration) once, plus
        # the steady-state step time for the steps that were not run
        seconds += step * (total_steps - steps)
    return {"train_sequences": len(train), "steps_run": steps, "steps_per_epoch": total_steps,
            "epoch_seconds": seconds, "projected": projected, "steady_step_ms": step * 1000,
            "peak_rss_gib": peak_rss_gib()}  # fmt: skip


def child_predict_stream(spec):
    from attngen_keras.predict import predict_file

    samples, done = [], threading.Event()
    start = time.perf_counter()

    def sample():
        while not done.is_set():
            samples.append((time.perf_counter() - start, rss_gib()))
            done.wait(0.5)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    count = predict_file(spec["model"], spec["fasta"], spec["out"], show_progress=False)
    seconds = time.perf_counter() - start
    done.set()
    thread.join()
    rss = np.array([s[1] for s in samples])
    tenth = min(max(1, len(rss) // 10), len(rss) - 1)
    return {"seconds": seconds, "sequences_per_second": count / seconds, "sequences": count,
            "rss_gib_samples": samples[:: max(1, len(samples) // 60)],
            "rss_gib_after_first_10pct": float(rss[tenth]), "rss_gib_end": float(rss[-1]),
            "rss_growth_gib_after_first_10pct": float(rss[-1] - rss[tenth]), "peak_rss_gib": peak_rss_gib()}  # fmt: skip


def child_file_cache_build(spec):
    """`load_dataset` of CSV or FASTA files (`memory_map`: "auto" unless given), timed, with peak RSS."""
    from attngen_keras.data import load_dataset
    from attngen_keras.data.cache import is_memory_mapped

    start = time.perf_counter()
    dataset = load_dataset(spec["data"], cache_dir=spec["cache"], show_progress=False,
                           memory_map=spec.get("memory_map", "auto"))  # fmt: skip
    return {"seconds": time.perf_counter() - start, "peak_rss_gib": peak_rss_gib(),
            "memory_mapped": is_memory_mapped(dataset["train"].tokens),
            "sequences": sum(len(s) for s in dataset.splits.values())}  # fmt: skip


def child_csv_train(spec):
    """`attngen train` (`training.train`) on the cached CSV, timed by phase.

    With `evaluation_batches`, the final evaluation streams only the first that
    many batches of val and test (the same `make_tf_dataset` loop as the full
    pass, whose memory is per batch): on 2 shared cores the full pass over
    millions of sequences would take hours.
    """
    from attngen_keras import training
    from attngen_keras.data import make_tf_dataset
    from attngen_keras.evaluation import classification_metrics
    from attngen_keras.training import TrainConfig, train

    marks = {"start": time.perf_counter()}
    evaluated = {"n": 0}
    cap = spec.get("evaluation_batches")

    def capped_evaluate(model, split, batch_size=256):
        n = len(split) if cap is None else min(len(split), cap * batch_size)
        data = make_tf_dataset(split, batch_size, include_labels=False).take(-(-n // batch_size))
        evaluated["n"] += n
        return classification_metrics(np.asarray(split.labels[:n]), model.predict(data, verbose=0))

    training.evaluate_split = capped_evaluate

    class Phases(_BatchTimer):
        def on_train_begin(self, logs=None):
            marks.setdefault("fit_begin", time.perf_counter())

        def on_train_batch_begin(self, batch, logs=None):
            super().on_train_batch_begin(batch, logs)
            self._cpu = time.process_time()

        def on_train_batch_end(self, batch, logs=None):
            super().on_train_batch_end(batch, logs)
            self.cpu_seconds = getattr(self, "cpu_seconds", [])
            self.cpu_seconds.append(time.process_time() - self._cpu)

        def on_train_end(self, logs=None):
            marks["fit_end"] = time.perf_counter()

    timer = Phases()
    config = TrainConfig(
        data=[spec["data"]], out=spec["out"], model="attngen", epochs=1, batch_size=BATCH,
        cache_dir=spec["cache"], steps_per_epoch=spec["steps"],
        validation_steps=spec["validation_steps"], warmup_epochs=0,
    )  # fmt: skip
    metrics = train(config, verbose=0, callbacks=[timer])
    end = time.perf_counter()
    counts = json.loads((Path(spec["out"]) / "dataset.json").read_text())["counts"]
    return {
        "open_seconds": marks["fit_begin"] - marks["start"],
        "fit_seconds": marks["fit_end"] - marks["fit_begin"],
        "evaluate_seconds": end - marks["fit_end"],
        "total_seconds": end - marks["start"],
        "steady_step_ms": float(np.median(timer.seconds[5:] or timer.seconds)) * 1000,
        "steady_step_cpu_ms": float(np.median(timer.cpu_seconds[5:] or timer.cpu_seconds)) * 1000,
        "steps_run": len(timer.seconds),
        "evaluated_sequences": evaluated["n"],
        "evaluation_sequences_total": sum(
            sum(counts[s].values()) for s in ("val", "test") if s in counts
        ),
        "train_sequences": sum(counts["train"].values()),
        "test_accuracy": metrics["test"]["accuracy"],
        "memory_mapped": _is_mapped_cache(spec["cache"]),
        "peak_rss_gib": peak_rss_gib(),
    }


def _is_mapped_cache(cache):
    return (Path(cache) / "encoded").is_dir() and any((Path(cache) / "encoded").iterdir())


CHILDREN = {
    "file_cache_build": child_file_cache_build,
    "csv_train": child_csv_train,
    "cache_build": child_cache_build,
    "train_epoch": child_train_epoch,
    "predict_stream": child_predict_stream,
}


# ---------------------------------------------------------------- report


def plot(results, out):
    from attngen_keras.plotting import plt, save_figure

    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for kind, entry in results["time_to_accuracy"].items():
        curve = np.array(entry["curve_seconds_accuracy"])
        ax.plot(curve[:, 0], curve[:, 1], marker=".", label=kind)
    ax.axhline(TARGET, color="black", linestyle=":", label=f"{TARGET:.0%}")
    ax.set_ylim(0.5, 1.0)
    ax.set_xlabel("training wall seconds (2 CPU cores)")
    ax.set_ylabel("validation accuracy (2,000 sequences)")
    save_figure(fig, ax, out / "time_to_accuracy.png")

    samples = np.array(results["scale"]["predict"]["rss_gib_samples"])
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.plot(samples[:, 0], samples[:, 1], color="tab:purple", label="RSS of attngen predict")
    ax.set_ylim(0, max(1.0, samples[:, 1].max() * 1.3))
    ax.set_xlabel("seconds")
    ax.set_ylabel("resident memory (GiB)")
    ax.set_title(
        f"streaming predict over {results['scale']['predict']['sequences']:,} sequences",
        fontsize=10,
    )
    save_figure(fig, ax, out / "predict_memory.png")

    rows = results["scale"]["sizes"]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    sizes = [r["sequences"] for r in rows]
    ax.loglog(sizes, [r["cache_build_seconds"] for r in rows], "o-", label="cache build (s)")
    ax.loglog(sizes, [r["epoch_seconds"] for r in rows], "s-", label="AttnGen epoch (s)")
    ax.loglog(sizes, [r["peak_rss_gib"] for r in rows], "^-", label="training peak RSS (GiB)")
    ax.set_xlabel("sequences")
    save_figure(fig, ax, out / "scale.png")


def report(results):
    """The Markdown tables (also written to speed.md)."""
    lines = []
    emit = lines.append
    p, s, t, v, m = (
        results[k] for k in ("pipeline", "step_time", "time_to_accuracy", "serving", "memory")
    )
    hw = results["machine"]
    emit(f"Machine: {hw['cpu']}, {hw['cores']} cores, {hw['memory_gib']} GiB; TensorFlow {hw['tensorflow']}, "
         f"Keras {hw['keras']}, {'GPU ' + ', '.join(hw['gpu']) if hw['gpu'] else 'CPU only'}.")  # fmt: skip
    emit("\n| measure | value | goal |\n|---|---|---|")
    rows = [
        (
            f"reference pipeline epoch ({p['epoch_sequences']:,} seq; files read, vectorized, one-hot)",
            f"{p['reference_epoch_seconds']:.1f} s ({p['reference_examples_per_second']:,.0f} seq/s)",
            "",
        ),
        (
            f"our cache build, first load of the {p['files']:,} files (in the OS page cache, as for the reference)",
            f"{p['cache_build_seconds']:.1f} s, peak RSS {p['cache_build_peak_rss_gib']:.2f} GiB",
            "",
        ),
        (
            "our tf.data epoch from the cache (RC augmentation)",
            f"{p['pipeline_epoch_seconds']:.2f} s ({p['pipeline_examples_per_second']:,.0f} seq/s)",
            "",
        ),
        (
            "**pipeline speed-up vs reference (per epoch)**",
            f"**{p['pipeline_speedup_vs_reference']:.1f}x**",
            "≥ 5x",
        ),
        (
            "**pipeline / AttnGen training rate**",
            f"**{results['pipeline_over_training_rate']:.0f}x**",
            "≥ 10x",
        ),
    ]
    for kind, entry in s["models"].items():
        rows.append((f"{kind} train step (batch {BATCH})",
                     f"{entry['step_ms_median']:.1f} ms, {entry['sequences_per_second']:,.0f} seq/s, "
                     f"{entry['achieved_gflops']:.1f} GFLOP/s = {entry['fraction_of_matmul_peak']:.1%} of peak", ""))  # fmt: skip
    rows += [
        ("fp32 matmul peak (2048², measured)", f"{s['matmul_peak_gflops']:.1f} GFLOP/s", ""),
        ("**AttnGen / CNN step time**", f"**{s['attngen_over_cnn_step_time']:.2f}x**", "≤ 1.15x"),
        ("AttnGen / GB CNN step time", f"{s['attngen_over_gb_cnn_step_time']:.2f}x", ""),
        ("profile: SaliencyMask fwd+bwd with masking / without / one conv block",
         " / ".join(f"{v:.1f}" for v in s["saliency_layer_profile"].values()) + " ms", ""),
    ]  # fmt: skip
    for kind, entry in t.items():
        reached = entry["seconds_to_target"]
        rows.append((f"{kind}: training seconds to {TARGET:.0%} val acc",
                     "not reached" if reached is None else f"{reached:.0f} s ({entry['sequences_to_target']:,} seq)", ""))  # fmt: skip
    rows += [
        ("serving_default batch 1 latency p50 / p99", f"{v['serving_latency_ms_p50_batch1']:.2f} / {v['serving_latency_ms_p99_batch1']:.2f} ms", ""),
        ("serving batch 256 vs in-process predict", f"{v['serving_sequences_per_second_batch256']:,.0f} vs "
         f"{v['inprocess_predict_sequences_per_second_batch256']:,.0f} seq/s", ""),
        ("**serving / in-process throughput**", f"**{v['serving_over_inprocess_throughput']:.2f}x**", "≥ 0.8x"),
        (f"**peak RSS, AttnGen epoch on {m['train_sequences']:,} train seq**", f"**{m['peak_rss_gib']:.2f} GiB**", "≤ 2 GiB"),
    ]  # fmt: skip
    for name, value, goal in rows:
        emit(f"| {name} | {value} | {goal} |")
    emit(
        "\n| sequences | cache build s | cache peak RSS GiB | train seq | epoch s | training peak RSS GiB |\n|---|---|---|---|---|---|"
    )
    for row in results["scale"]["sizes"]:
        projected = (
            f" (projected from {row['steps_run']} of {row['steps_per_epoch']} steps)"
            if row["projected"]
            else ""
        )
        emit(f"| {row['sequences']:,} | {row['cache_build_seconds']:.1f} | {row['cache_build_peak_rss_gib']:.2f} | "
              f"{row['train_sequences']:,} | {row['epoch_seconds']:.0f}{projected} | {row['peak_rss_gib']:.2f} |")  # fmt: skip
    pr = results["scale"]["predict"]
    emit(f"\npredict over {pr['sequences']:,} FASTA sequences: {pr['seconds']:.0f} s ({pr['sequences_per_second']:,.0f} seq/s); "
          f"RSS {pr['rss_gib_after_first_10pct']:.2f} GiB after 10% -> {pr['rss_gib_end']:.2f} GiB at the end "
          f"(growth {pr['rss_growth_gib_after_first_10pct'] * 1024:+.0f} MiB)")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="test split for the pipeline, scales 10k and 100k, fewer repeats",
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", help="scale sizes (default 10000 100000 1000000)"
    )
    parser.add_argument(
        "--out", default=None, help="JSON path (default benchmarks/results/speed.json)"
    )
    parser.add_argument(
        "--workdir", default=None, help="scratch directory (default: a temporary one, removed)"
    )
    parser.add_argument(
        "--scale-csv", action="store_true",
        help="only section 7 (scale from one CSV) at --sizes (default 10000 100000 2000000 10000000)",
    )  # fmt: skip
    parser.add_argument(
        "--steps", type=int, default=300, help="section 7: training steps (--steps-per-epoch)"
    )
    parser.add_argument(
        "--validation-steps", type=int, default=20, help="section 7: --validation-steps"
    )
    parser.add_argument(
        "--evaluation-batches", type=int, default=100,
        help="section 7: the final evaluation streams this many batches of val and test (0: all)",
    )  # fmt: skip
    parser.add_argument(
        "--append", action="store_true",
        help="section 7: merge into an existing --out JSON (its other sizes are kept)",
    )  # fmt: skip
    parser.add_argument(
        "--scale-fasta", action="store_true",
        help="only section 8 (cache build from FASTA per class) at --sizes (default 100000 2000000 10000000)",
    )  # fmt: skip
    parser.add_argument(
        "--in-memory-max", type=int, default=2_000_000,
        help="section 8: largest size also built with the in-memory reader",
    )  # fmt: skip
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(CHILDREN[spec["task"]](spec)))
        return
    if args.scale_csv:
        return main_scale_csv(args)
    if args.scale_fasta:
        return main_scale_fasta(args)
    if not INTERVALS.exists():
        sys.exit(f"needs {INTERVALS} and {REFERENCES} (see ../shared/data/README.md)")
    sizes = args.sizes or ([10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000])
    out = Path(args.out or RESULTS / ("speed_quick.json" if args.quick else "speed.json"))
    work = Path(args.workdir or tempfile.mkdtemp(prefix="attngen_speed_"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        results = {"machine": machine(), "quick": args.quick}
        dataset, results["pipeline"] = pipeline_section(work, args.quick)
        results["step_time"] = step_time_section(dataset["train"], args.quick)
        training_rate = results["step_time"]["models"]["attngen"]["sequences_per_second"]
        results["pipeline_over_training_rate"] = (
            results["pipeline"]["pipeline_examples_per_second"] / training_rate
        )
        results["time_to_accuracy"], trained = time_to_accuracy_section(dataset, args.quick)
        export_path, results["serving"] = serving_section(
            trained["attngen"], dataset["test"], dataset.class_names, work, args.quick
        )
        print("## 5. memory", flush=True)
        results["memory"] = run_child(
            "train_epoch", data=results["pipeline"]["layout"], cache=results["pipeline"]["cache"],
            max_train=10_000 if args.quick else None,
        )  # fmt: skip
        results["scale"] = scale_section(work, sizes, export_path.parent, args.quick)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    results["wall_seconds"] = time.perf_counter() - started
    summary = {
        "pipeline_speedup_vs_reference": results["pipeline"]["pipeline_speedup_vs_reference"],
        "pipeline_over_training_rate": results["pipeline_over_training_rate"],
        "attngen_over_cnn_step_time": results["step_time"]["attngen_over_cnn_step_time"],
        "train_flops_fraction_of_peak": results["step_time"]["models"]["attngen"][
            "fraction_of_matmul_peak"
        ],
        "serving_over_inprocess_throughput": results["serving"][
            "serving_over_inprocess_throughput"
        ],
        "serving_latency_ms_p50_batch1": results["serving"]["serving_latency_ms_p50_batch1"],
        "train_peak_rss_gib": results["memory"]["peak_rss_gib"],
    }
    results = {**summary, **results}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=float))
    plot(results, out.with_suffix(""))
    table = report(results)
    out.with_suffix(".md").write_text(table)
    print(table)
    print(f"wrote {out}, {out.with_suffix('.md')} and {out.with_suffix('')}/*.png")


def main_scale_csv(args):
    sizes = args.sizes or [10_000, 100_000, 2_000_000, 10_000_000]
    args.evaluation_batches = args.evaluation_batches or None
    out = Path(args.out or RESULTS / "speed_scale" / "scale.json")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="attngen_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        results = {"machine": machine()}
        results["scale_csv"] = scale_csv_section(
            work, sizes, args.steps, args.validation_steps, args.evaluation_batches
        )
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    results["wall_seconds"] = time.perf_counter() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.append and out.exists():  # sizes run by another invocation (e.g. in parallel) are kept
        earlier = json.loads(out.read_text())
        mine = {row["sequences"] for row in results["scale_csv"]["sizes"]}
        rows = [r for r in earlier["scale_csv"]["sizes"] if r["sequences"] not in mine]
        rows = sorted(rows + results["scale_csv"]["sizes"], key=lambda r: r["sequences"])
        for key in ("steady_step_ms", "steady_step_cpu_ms"):
            for row in rows:
                row[f"{key}_over_smallest"] = row[key] / rows[0][key]
        results["scale_csv"]["sizes"] = rows
        results["wall_seconds"] += earlier.get("wall_seconds", 0.0)
    out.write_text(json.dumps(results, indent=2, default=float))
    before = None
    if (RESULTS / "speed.json").exists():
        before = json.loads((RESULTS / "speed.json").read_text()).get("scale", {}).get("sizes")
    plot_scale_csv(results["scale_csv"], out.parent, before)
    table = report_scale_csv(results)
    out.with_suffix(".md").write_text(table)
    print(table)
    print(f"wrote {out}, {out.with_suffix('.md')} and {out.parent / 'scale.png'}")


if __name__ == "__main__":
    main()
