"""Benchmark: what `--deterministic` costs, and how exact a resume after SIGKILL is.

1. Speed: `attngen train` on planted-motif data (AttnGen, default XLA
   setting), with and without `--deterministic`, alternating in fresh
   processes (op determinism is process-wide); the mean epoch time excludes
   the first epoch (tracing and compilation).
2. Exactness: the same `--deterministic --checkpoint-every` run trained
   uninterrupted, and killed with SIGKILL in the middle of an epoch (a
   callback kills its own process at a chosen step) then resumed with the
   same command; the largest differences of the per-epoch losses and of the
   final weights.

    python benchmarks/resume.py            # about 5 min on 2 cores
    python benchmarks/resume.py --quick    # smaller

Prints Markdown tables and writes benchmarks/results/resume.json.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]

KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import keras
    from attngen_keras.cli import main

    kill_at = int(os.environ["KILL_AT_STEP"])

    class Kill(keras.callbacks.Callback):
        done = 0
        def on_train_batch_end(self, batch, logs=None):
            Kill.done += 1
            if Kill.done == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    import attngen_keras.training as training
    original = training.train
    training.train = lambda config, **kw: original(config, callbacks=[Kill()], **kw)
    sys.exit(main(sys.argv[1:]))
    """
)


def train_args(data, out, epochs, batch_size, extra=()):
    return ["train", "--data", str(data), "--model", "attngen", "--epochs", str(epochs), "--batch-size",
            str(batch_size), "--patience", "0", "--warmup-epochs", "1", "--out", str(out), *extra]  # fmt: skip


def cli(args, env=None):
    result = subprocess.run([sys.executable, "-m", "attngen_keras.cli", *args], capture_output=True, text=True,
                            env=env, cwd=ROOT)  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    return result


def epoch_seconds(run):
    history = pd.read_csv(run / "history.csv")
    return float(history["epoch_seconds"].iloc[1:].mean())


def speed(data, work, epochs, batch_size, repeats):
    rows = []
    for repeat in range(repeats):
        for deterministic in (False, True):
            out = work / f"speed_{int(deterministic)}_{repeat}"
            cli(
                train_args(
                    data, out, epochs, batch_size, ["--deterministic"] if deterministic else []
                )
            )
            rows.append(
                {
                    "deterministic": deterministic,
                    "repeat": repeat,
                    "epoch_seconds": epoch_seconds(out),
                }
            )
    return pd.DataFrame(rows)


def exactness(data, work, epochs, batch_size, every, kill_at):
    flags = ["--deterministic", "--checkpoint-every", str(every)]
    reference, run = work / "reference", work / "killed"
    cli(train_args(data, reference, epochs, batch_size, flags))
    env = {**os.environ, "KILL_AT_STEP": str(kill_at)}
    killed = subprocess.run([sys.executable, "-c", KILL_SCRIPT, *train_args(data, run, epochs, batch_size, flags)],
                            capture_output=True, text=True, env=env, cwd=ROOT)  # fmt: skip
    assert killed.returncode == -9, killed.stderr[-3000:]
    resumed = cli(train_args(data, run, epochs, batch_size, flags))
    import keras

    import attngen_keras  # noqa: F401  (registers the layers)

    a, b = pd.read_csv(reference / "history.csv"), pd.read_csv(run / "history.csv")
    wa = keras.saving.load_model(reference / "model.keras").weights
    wb = keras.saving.load_model(run / "model.keras").weights
    weight_diff = max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(wa, wb))
    line = next(line for line in resumed.stdout.splitlines() if "resuming at" in line)
    return {
        "killed_at_step": kill_at, "checkpoint_every": every, "resumed": line.split(": ", 1)[1],
        "epochs": int(len(a)), "max_abs_val_loss_diff": float((a["val_loss"] - b["val_loss"]).abs().max()),
        "max_abs_loss_diff": float((a["loss"] - b["loss"]).abs().max()), "max_abs_weight_diff": weight_diff,
        "identical": bool(weight_diff == 0.0 and (a["val_loss"] == b["val_loss"]).all()),
    }  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, epochs, repeats = (1000, 3, 1) if args.quick else (4000, 4, 2)
    batch_size = 128
    from attngen_keras.synthetic import planted_motif_data

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "motifs.csv"
        planted_motif_data(n=n, length=200, motifs=("TGACTCA",), seed=0).to_frame().to_csv(
            data, index=False
        )
        steps = -(-int(n * 0.8 * 0.9) // batch_size)
        timing = speed(data, work, epochs, batch_size, repeats)
        # killed mid-epoch, between two checkpoints: the resumed run redoes the steps since the last one
        every = max(steps // 3, 2)
        kill_at = next(k for k in range(steps + steps // 2, 2 * steps) if k % every)
        exact = exactness(data, work, epochs, batch_size, every=every, kill_at=kill_at)
    means = timing.groupby("deterministic")["epoch_seconds"].mean()
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores",
        "data": f"{n} planted-motif sequences of 200 nt, AttnGen, batch {batch_size}, {epochs} epochs",
        "steps_per_epoch": steps, "timing": timing.to_dict("records"),
        "mean_epoch_seconds": {"default": float(means[False]), "deterministic": float(means[True])},
        "deterministic_over_default": float(means[True] / means[False]), "exactness": exact,
    }  # fmt: skip
    print("| mode | mean epoch seconds (epochs 2+) |\n|---|---|")
    print(f"| default | {means[False]:.2f} |\n| --deterministic | {means[True]:.2f} |")
    print(f"\n--deterministic / default: {result['deterministic_over_default']:.2f}x")
    print("\n" + json.dumps(exact, indent=2))
    out = ROOT / "benchmarks" / "results" / ("resume_quick.json" if args.quick else "resume.json")
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
