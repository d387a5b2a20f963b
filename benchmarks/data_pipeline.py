"""Benchmark: compact cache vs re-reading 100,000 files, and tf.data vs training.

On `human_or_fungus` (the interval list and references in ../shared/data),
measured in one run:

1. cold parse of the 100,000-file full-sequence layout (as written by
   `genomic_benchmarks.loc2seq.download_dataset`) vs loading the compact
   cache of the same data: the ratio is the speed-up of every later run;
2. steady-state examples/s of the `tf.data` training pipeline (one-hot,
   shuffle, reverse-complement augmentation) vs the examples/s AttnGen's
   training consumes: the ratio says whether the pipeline can be the
   bottleneck.

    python benchmarks/data_pipeline.py [--quick]

Prints a Markdown table and writes benchmarks/results/data_pipeline.json.
"""

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def _time(fn, repeat=1):
    best = float("inf")
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer training steps")
    parser.add_argument(
        "--out", default=str(ROOT / "benchmarks" / "results" / "data_pipeline.json")
    )
    args = parser.parse_args()

    intervals = SHARED / "genomic_benchmarks" / "human_or_fungus"
    references = SHARED / "references"
    if not intervals.exists():
        raise SystemExit(f"needs {intervals} (see ../shared/data/README.md)")

    import keras

    from attngen_keras.callbacks import MaskingSchedule
    from attngen_keras.data import genomic_benchmarks as gb
    from attngen_keras.data import load_dataset, make_tf_dataset
    from attngen_keras.data.readers import read_full_sequence_dir
    from attngen_keras.models import build_attngen, compile_classifier

    work = Path(tempfile.mkdtemp(prefix="attngen_bench_"))
    try:
        build_seconds, full = _time(lambda: gb.build_full_sequences(intervals, references, work))
        n_files = sum(1 for _ in Path(full).rglob("*.txt"))
        cold_seconds, _ = _time(
            lambda: load_dataset(str(full), cache_dir=None, show_progress=False)
        )
        parse_seconds, _ = _time(lambda: read_full_sequence_dir(full, show_progress=False))
        cache = work / "cache"
        first_seconds, _ = _time(
            lambda: load_dataset(str(full), cache_dir=str(cache), show_progress=False)
        )
        warm_seconds, dataset = _time(
            lambda: load_dataset(str(full), cache_dir=str(cache), show_progress=False), repeat=3
        )

        train = dataset["train"]
        pipeline = make_tf_dataset(train, 128, shuffle=True, reverse_complement=True)
        for _ in pipeline.take(20):  # warm up
            pass
        start = time.perf_counter()
        seen = 0
        for _, y in pipeline:
            seen += int(y.shape[0])
        pipeline_rate = seen / (time.perf_counter() - start)

        keras.utils.set_random_seed(0)
        model = build_attngen(dataset.length, dataset.num_classes)
        compile_classifier(model, dataset.num_classes)
        steps = 60 if args.quick else 200
        schedule = MaskingSchedule(0.15, warmup_epochs=0)
        model.fit(
            pipeline.take(10), epochs=1, verbose=0, shuffle=False, callbacks=[schedule]
        )  # compile
        start = time.perf_counter()
        model.fit(pipeline.take(steps), epochs=1, verbose=0, shuffle=False, callbacks=[schedule])
        train_rate = steps * 128 / (time.perf_counter() - start)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    results = {
        "dataset": "human_or_fungus",
        "files": n_files,
        "gb_build_full_sequence_seconds": build_seconds,
        "cold_parse_seconds": parse_seconds,
        "cold_load_without_cache_seconds": cold_seconds,
        "first_load_building_cache_seconds": first_seconds,
        "warm_cached_load_seconds": warm_seconds,
        "cache_speedup_vs_reparse": cold_seconds / warm_seconds,
        "pipeline_examples_per_second": pipeline_rate,
        "training_examples_per_second": train_rate,
        "pipeline_over_training_rate": pipeline_rate / train_rate,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    rows = [
        ("files in the full-sequence layout", f"{n_files:,}"),
        ("genomic_benchmarks cuts intervals -> files (s)", f"{build_seconds:.1f}"),
        ("load without cache: parse every file (s)", f"{cold_seconds:.2f}"),
        ("first load, building the cache (s)", f"{first_seconds:.2f}"),
        ("later loads from the cache (s, best of 3)", f"{warm_seconds:.3f}"),
        ("**cache speed-up vs re-parsing**", f"**{cold_seconds / warm_seconds:.0f}x**"),
        ("tf.data pipeline (examples/s, RC augmentation)", f"{pipeline_rate:,.0f}"),
        ("AttnGen training consumes (examples/s)", f"{train_rate:,.0f}"),
        ("**pipeline / training rate**", f"**{pipeline_rate / train_rate:.1f}x**"),
    ]
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
