"""What window weight each position gets in runs trained with `--attention-window-gate`.

For each run, the SaliencyMask's per-position window weights
(`SaliencyMask.window_weights`) on the first `--n` sequences of a CSV (a `seq`
column; cropped to the model's length keeping the start, the default `--crop`, or padded): their mean
and 10th / 90th percentiles over the real positions. Prints a table and
writes JSON.

    python benchmarks/window_gate_values.py runs/hof_s1 runs/hof_s2 \\
        --sequences attngen_keras/demo_data/human_or_fungus_demo.csv.gz --out gates.json
"""

import argparse
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from attngen_keras.data.alphabet import PAD, encode, one_hot
from attngen_keras.files import write_json_atomic
from attngen_keras.models.classifiers import SALIENCY_LAYER_NAME


def window_weight_summary(run, sequences):
    """`{"mean", "p10", "p90", "positions"}` of a run's window weights on `sequences`."""
    model = keras.saving.load_model(Path(run) / "model.keras")
    layer = model.get_layer(SALIENCY_LAYER_NAME)
    length = model.input_shape[1]
    tokens = np.full((len(sequences), length), PAD, dtype=np.uint8)
    for row, sequence in enumerate(sequences):
        encoded = encode(sequence)[:length]
        tokens[row, : len(encoded)] = encoded
    inputs = keras.Model(model.inputs, layer.input).predict(one_hot(tokens), verbose=0)
    context = inputs[2] if isinstance(inputs, (list, tuple)) and len(inputs) == 3 else inputs
    if isinstance(context, (list, tuple)):
        context = context[0]
    weights = np.asarray(layer.window_weights(context))[tokens != PAD]
    return {
        "mean": float(weights.mean()),
        "p10": float(np.percentile(weights, 10)),
        "p90": float(np.percentile(weights, 90)),
        "positions": int(weights.size),
        "window_gate": bool(layer.window_gate),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories (model.keras)")
    parser.add_argument("--sequences", required=True, help="CSV with a seq column (.gz allowed)")
    parser.add_argument("--n", type=int, default=500, help="sequences to read (default 500)")
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    sequences = pd.read_csv(args.sequences, nrows=args.n)["seq"].astype(str).tolist()
    rows = {}
    print(f"{'run':<40} {'mean':>6} {'p10':>6} {'p90':>6}")
    for run in args.runs:
        summary = window_weight_summary(run, sequences)
        rows[str(run)] = summary
        print(
            f"{Path(run).name:<40} {summary['mean']:6.3f} {summary['p10']:6.3f} {summary['p90']:6.3f}"
        )
    write_json_atomic(
        args.out, {"sequences": str(args.sequences), "n": len(sequences), "runs": rows}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
