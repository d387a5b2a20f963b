"""`attngen demo`: AttnGen vs the plain CNN on a bundled sample of real DNA.

The sample (4,000 sequences, 200 bp) was drawn by `scripts/make_demo_sample.py`
from two real genomes: human chr22 (Ensembl Compara EPO subset) and the corn
smut fungus *Ustilago maydis* 521, both from Debian's maffilter-examples
package, with the protocol of Genomic Benchmarks `demo_human_or_worm`.
"""

import warnings
from importlib import resources
from pathlib import Path

from attngen_keras.data import load_dataset
from attngen_keras.training import SMALL_SET_WARNING, TrainConfig, train

DEMO_FILE = "human_or_fungus_demo.csv.gz"
DEMO_MODELS = ("attngen", "cnn")


def demo_data_path():
    """Path of the bundled demo CSV (id, seq, label, split)."""
    return Path(str(resources.files("attngen_keras") / "demo_data" / DEMO_FILE))


def run_demo(out="runs/demo", epochs=8, seed=0, models=DEMO_MODELS, verbose=None, overwrite=False):
    """Trains each model on the demo sample and prints a side-by-side table.

    Args:
        out: parent directory of the run directories (`out/<model>`).
        epochs: training epochs per model.
        seed: seed of splits, initialization and shuffling.
        models: which models to train.
        verbose: Keras verbosity.
        overwrite: train again runs already in `out` (finished or with other settings).

    Returns:
        `{model: metrics}` as written to each run's `metrics.json`.
    """
    data = str(demo_data_path())
    dataset = load_dataset(data, seed=seed, cache_dir=None, show_progress=False)
    counts = {split: len(part) for split, part in dataset.splits.items()}
    print(
        f"demo data: {data}\n  classes {dataset.class_names}, length {dataset.length}, sizes {counts}"
    )
    results = {}
    for model in models:
        print(f"\n== training {model} ==")
        config = TrainConfig(
            data=[data], out=str(Path(out) / model), model=model, epochs=epochs,
            # the masking ramp (2 epochs) ends within a shorter training too
            batch_size=64, mask_fraction=0.15, warmup_epochs=max(0, min(2, epochs - 1)),
            seed=seed, patience=0, cache_dir="none",
        )  # fmt: skip
        with warnings.catch_warnings():
            if "cnn" in models:  # the warning asks for the comparison the demo's table makes
                warnings.filterwarnings("ignore", message=SMALL_SET_WARNING)
            results[model] = train(config, overwrite=overwrite, verbose=verbose, dataset=dataset)
    print()
    print(format_table(results))
    print(
        f"\nrun directories (model.keras, history.csv, metrics.json, training_curves.png) in {out}/"
    )
    return results


def format_table(results):
    """A Markdown table of val/test accuracy, test AUROC and seconds per epoch."""
    lines = [
        "| model | val accuracy | test accuracy | test AUROC | epochs | s/epoch |",
        "|---|---|---|---|---|---|",
    ]
    for model, m in results.items():
        lines.append(
            f"| {model} | {m['val']['accuracy']:.4f} | {m['test']['accuracy']:.4f} | "
            f"{m['test']['auroc']:.4f} | {m.get('epochs_trained', '?')} | "
            f"{m.get('mean_epoch_seconds', float('nan')):.1f} |"
        )
    return "\n".join(lines)
