"""Benchmark: AttnGen vs CNN training and inference time on every installed Keras backend.

For each backend (TensorFlow, JAX, torch; each one importable is run, in a
fresh subprocess with `KERAS_BACKEND` set) and each batch size: this repo's
`build_attngen` (each preset of `--presets`; default the faithful one, as
`attngen train`) and `build_cnn` (the
same backbone without attention), compiled by `compile_classifier` with the
CLI's defaults, trained on synthetic planted-motif sequences with
`MaskingSchedule` and `BatchNormRecalibration` (the statistics of
`recalibration_steps` batches, 4,096 sequences, averaged before every validation) as the CLI uses them. One warm-up epoch
(tracing and compilation), then the wall and process-CPU seconds of the
next epochs (training plus validation; of which the recalibrations, timed
until their statistics are on the host) and of one `predict` pass. The
AttnGen/CNN epoch-time ratio is the figure of merit (goal: <= 1.3 on a GPU
with JAX, <= 1.15 on CPU with TensorFlow).

    python benchmarks/backends.py                       # all installed backends
    python benchmarks/backends.py --backends jax --sequences 48000 --epochs 3
    # longer epochs on a fast GPU: the training split repeated 10 times, and the
    # default preset also with the faithfulness loss on half of each batch
    python benchmarks/backends.py --backends jax --sequences 48000 --repeat 10 \
        --faithfulness-batch-fractions 1.0 0.5

Prints a Markdown table and writes benchmarks/results/backends/backends.json
and backends.md.
"""

import argparse
import collections
import contextlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "backends"
BACKENDS = ("tensorflow", "jax", "torch")


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        gpu = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20,
        ).stdout.strip()  # fmt: skip
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu or None,
            "platform": platform.platform(), "python": platform.python_version()}  # fmt: skip


def _epoch_timer():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.wall, self.cpu, self.calls = [], [], []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = (time.perf_counter(), time.process_time())

        def on_epoch_end(self, epoch, logs=None):
            self.wall.append(time.perf_counter() - self._start[0])
            self.cpu.append(time.process_time() - self._start[1])

    return EpochTimer()


def _time_calls(obj, name, timer):
    """Wraps `obj.name` so that each call's wall seconds (until its results are ready) go to `timer.calls`."""
    method = getattr(obj, name)
    timer.calls = []

    def timed(*args, **kwargs):
        import keras

        start = time.perf_counter()
        result = method(*args, **kwargs)
        # JAX and CUDA run asynchronously: wait for the updated statistics before stopping the clock
        for variable in obj.model.non_trainable_variables:
            keras.ops.convert_to_numpy(variable)
        timer.calls.append(time.perf_counter() - start)
        return result

    setattr(obj, name, timed)


def child(spec):
    """Runs in a subprocess with KERAS_BACKEND set: times both models at each batch size."""
    import keras
    import numpy as np

    from attngen_keras.callbacks import BatchNormRecalibration, MaskingSchedule, recalibration_steps
    from attngen_keras.models import build_model, compile_classifier
    from attngen_keras.synthetic import planted_motif_data

    data = planted_motif_data(n=spec["sequences"], length=spec["length"], seed=0)
    table = np.zeros((256, 4), np.float32)
    for i, base in enumerate(b"ACGT"):
        table[base] = np.eye(4, dtype=np.float32)[i]
    tokens = np.frombuffer("".join(data.sequences).encode(), np.uint8).reshape(
        len(data.sequences), -1
    )
    x, y = table[tokens], np.asarray(data.labels, np.int32)
    n_val = len(x) // 10
    x_val, y_val, x, y = x[:n_val], y[:n_val], x[n_val:], y[n_val:]
    # longer epochs without generating more sequences: the training split repeated
    repeat = spec.get("repeat", 1)
    x, y = np.concatenate([x] * repeat), np.concatenate([y] * repeat)
    fractions = spec.get("faithfulness_batch_fractions", [1.0])
    variants = [("attngen", p, f) for p in spec["presets"]
                for f in (fractions if p == "faithful" else [1.0])]  # fmt: skip
    rows = []
    for batch in spec["batch_sizes"]:
        for kind, preset, fraction in [*variants, ("cnn", None, None)]:
            keras.utils.set_random_seed(0)
            options = {"mask_fraction": 0.0, "seed": 0, "preset": preset} if preset else {}
            if fraction is not None and fraction != 1.0:
                options["faithfulness_batch_fraction"] = fraction
            model = build_model(kind, spec["length"], 2, **options)
            compile_classifier(model, 2, steps_per_execution=spec.get("steps_per_execution", 1))
            callbacks = []
            if kind == "attngen":

                def batches(batch=batch):
                    order = np.random.default_rng(1).permutation(len(x))
                    while True:
                        for first in range(0, len(x) - batch + 1, batch):
                            yield x[order[first : first + batch]]

                recalibration = BatchNormRecalibration(
                    batches(), steps=recalibration_steps(batch, len(x))
                )
                callbacks = [MaskingSchedule(0.15, warmup_epochs=0), recalibration]
            fit = dict(
                batch_size=batch, validation_data=(x_val, y_val), verbose=0, callbacks=callbacks
            )
            timer = _epoch_timer()
            fit["callbacks"] = [*callbacks, timer]
            if kind == "attngen":
                _time_calls(recalibration, "recalibrate", timer)
            # one fit, as `attngen train`: the first epoch (tracing, compilation) is not timed
            history = model.fit(x, y, epochs=1 + spec["epochs"], **fit)
            wall, cpu = np.sum(timer.wall[1:]), np.sum(timer.cpu[1:])
            # recalibrations inside the timed epochs (each epoch's validation; not the one at train end)
            if timer.calls:  # one per epoch's validation, one at the end of training
                assert len(timer.calls) == spec["epochs"] + 2, timer.calls
            recal = float(np.sum(timer.calls[1 : 1 + spec["epochs"]])) if timer.calls else 0.0
            # warm-up over the same array: the full batches and the last, partial one
            # are two shapes, each traced and compiled once (not timed)
            model.predict(x_val, batch_size=batch, verbose=0)
            pwall = time.perf_counter()
            model.predict(x_val, batch_size=batch, verbose=0)
            pwall = time.perf_counter() - pwall
            rows.append({
                "batch_size": batch, "model": kind, "preset": preset,
                "faithfulness_batch_fraction": fraction, "epoch_seconds": float(wall) / spec["epochs"],
                "epoch_cpu_seconds": float(cpu) / spec["epochs"],
                "recalibration_seconds_per_epoch": recal / spec["epochs"], "predict_sequences_per_second": len(x_val) / pwall,
                "val_accuracy": float(history.history["val_accuracy"][-1]),
            })  # fmt: skip
            row = rows[-1]
            print(
                f"  {spec['backend']} batch {batch} {kind} {_label(preset, fraction)}: {row['epoch_seconds']:.2f} s/epoch "
                f"({row['epoch_cpu_seconds']:.1f} CPU s, recalibration {recal / spec['epochs']:.2f} s), "
                f"predict {row['predict_sequences_per_second']:,.0f} seq/s, val acc {row['val_accuracy']:.3f}",
                file=sys.stderr, flush=True,
            )  # fmt: skip
    versions = {"keras": keras.__version__}
    backend = keras.backend.backend()
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend]
    versions[module] = __import__(module).__version__
    return {"backend": backend, "versions": versions, "rows": rows}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backends", nargs="+", default=None, help=f"default: the installed ones of {BACKENDS}"
    )
    parser.add_argument(
        "--sequences", type=int, default=4096, help="planted-motif sequences (10%% validation)"
    )
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after the warm-up one")
    parser.add_argument(
        "--presets", nargs="+", default=["faithful"],
        help="AttnGen presets to time against the CNN (default: faithful, as `attngen train`)",
    )  # fmt: skip
    parser.add_argument(
        "--faithfulness-batch-fractions", type=float, nargs="+", default=[1.0],
        help="for the faithful preset: shares of each batch the faithfulness loss sees (default 1.0)",
    )  # fmt: skip
    parser.add_argument(
        "--repeat", type=int, default=1,
        help="repeat the training split N times: longer epochs (for fast GPUs) from the same sequences",
    )  # fmt: skip
    parser.add_argument(
        "--steps-per-execution", type=int, default=1,
        help="batches per compiled call (Model.compile; more: less per-step dispatch on a GPU)",
    )  # fmt: skip
    parser.add_argument("--out", default=str(RESULTS / "backends.json"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps_per_execution < 1:
        parser.error(f"--steps-per-execution must be >= 1, got {args.steps_per_execution}")
    if args.repeat < 1:
        parser.error(f"--repeat must be >= 1, got {args.repeat}")
    # each fraction once (a repeated one would be timed twice and shown once)
    args.faithfulness_batch_fractions = sorted(set(args.faithfulness_batch_fractions), reverse=True)
    if not all(0.0 < f <= 1.0 for f in args.faithfulness_batch_fractions):
        parser.error("--faithfulness-batch-fractions must be in (0, 1]")
    if args.child:
        spec = json.loads(args.child)
        Path(spec["result"]).write_text(json.dumps(child(spec)))
        return
    backends = args.backends or [b for b in BACKENDS if importlib.util.find_spec(b) is not None]
    results = {"machine": machine(), "sequences": args.sequences, "length": args.length,
               "epochs": args.epochs, "repeat": args.repeat,
               "steps_per_execution": args.steps_per_execution, "backends": {}}  # fmt: skip
    for backend in backends:
        spec = {"backend": backend, "sequences": args.sequences, "length": args.length,
                "batch_sizes": args.batch_sizes, "epochs": args.epochs, "presets": args.presets,
                "faithfulness_batch_fractions": args.faithfulness_batch_fractions,
                "repeat": args.repeat, "steps_per_execution": args.steps_per_execution}  # fmt: skip
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
        with tempfile.TemporaryDirectory() as tmp:
            spec["result"] = str(Path(tmp) / "result.json")
            # the child's output passes through as it comes (a run cut short still shows it);
            # its result comes back in a file
            proc = subprocess.Popen(
                [sys.executable, __file__, "--child", json.dumps(spec)], env=env, cwd=ROOT,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            tail = collections.deque(maxlen=40)
            for line in proc.stderr:
                print(line, end="", file=sys.stderr, flush=True)
                tail.append(line)
            proc.wait()
            result = Path(spec["result"])
            if proc.returncode != 0 or not result.exists():
                results["backends"][backend] = {"error": "".join(tail)[-2000:]}
                print(f"{backend}: failed", file=sys.stderr)
                continue
            results["backends"][backend] = json.loads(result.read_text())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    table = report(results)
    out.with_suffix(".md").write_text(table)
    print(table)
    print(f"wrote {out} and {out.with_suffix('.md')}")


def _label(preset, fraction):
    """The table's name of an AttnGen variant (empty for the CNN)."""
    if preset is None:
        return ""
    return (
        preset if fraction in (None, 1.0) else f"{preset}, faithfulness batch fraction {fraction:g}"
    )


def report(results):
    m = results["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores"
        + (f", GPU {m['gpu']}" if m["gpu"] else ", no GPU")
        + ".",
        f"{results['sequences']:,} planted-motif sequences of {results['length']} nt (10% validation"
        + (
            f"; the training split repeated {results['repeat']} times"
            if results.get("repeat", 1) > 1
            else ""
        )
        + "), "
        + (
            f"{results['steps_per_execution']} batches per compiled call, "
            if results.get("steps_per_execution", 1) > 1
            else ""
        )
        + f"{results['epochs']} timed epochs after a warm-up one; wall and process-CPU seconds per epoch "
        "(training + BatchNorm recalibration + validation).",
        "",
        "| backend | batch | AttnGen preset | AttnGen s/epoch (CPU s) | CNN s/epoch (CPU s) "
        "| **AttnGen / CNN** (wall, CPU) | predict seq/s AttnGen / CNN | val acc AttnGen / CNN |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for backend, entry in results["backends"].items():
        if "error" in entry:
            lines.append(f"| {backend} | failed (see JSON) | | | | | | |")
            continue
        version = ", ".join(f"{k} {v}" for k, v in entry["versions"].items())
        # rows written before --presets had no "preset": they are the faithful preset
        by = {(r["batch_size"], r["model"],
               _label(r.get("preset") or ("faithful" if r["model"] == "attngen" else None),
                      r.get("faithfulness_batch_fraction"))): r
              for r in entry["rows"]}  # fmt: skip
        for batch in sorted({r["batch_size"] for r in entry["rows"]}):
            c = by[(batch, "cnn", "")]
            for (b, model, preset), a in by.items():
                if b != batch or model != "attngen":
                    continue
                lines.append(
                    f"| {backend} ({version}) | {batch} | {preset} | {a['epoch_seconds']:.2f} ({a['epoch_cpu_seconds']:.1f}) | "
                    f"{c['epoch_seconds']:.2f} ({c['epoch_cpu_seconds']:.1f}) | "
                    f"**{a['epoch_seconds'] / c['epoch_seconds']:.2f}x**, "
                    f"{a['epoch_cpu_seconds'] / c['epoch_cpu_seconds']:.2f}x | "
                    f"{a['predict_sequences_per_second']:,.0f} / {c['predict_sequences_per_second']:,.0f} | "
                    f"{a['val_accuracy']:.3f} / {c['val_accuracy']:.3f} |"
                )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
