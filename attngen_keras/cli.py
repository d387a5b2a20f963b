"""The `attngen` command line: train, evaluate, explain, perturb, sweep, demo."""

import argparse
import json
import os
import signal
import sys
from pathlib import Path

# attngen_keras.explain.METHODS, spelled out so that `--help` needs no TensorFlow import
METHOD_CHOICES = (
    "attention",
    "attention_raw",
    "saliency",
    "smoothgrad",
    "input_x_gradient",
    "gradcam",
    "ism",
)


def _int_argument(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _positive_int(text):
    value = _int_argument(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _seed(text):
    value = _int_argument(text)
    if not 0 <= value < 2**32:  # what NumPy and TensorFlow accept
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**32), got {value}")
    return value


def _odd_positive_int(text):
    value = _positive_int(text)
    if value % 2 == 0:
        raise argparse.ArgumentTypeError(f"must be odd, got {value}")
    return value


def _float_argument(text, check, requirement):
    """`float(text)` if `check(value)`, else an argparse error saying it `requirement`."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not check(value):  # NaN fails every check
        raise argparse.ArgumentTypeError(f"{requirement}, got {value}")
    return value


def _non_negative_float(text):
    return _float_argument(text, lambda v: 0.0 <= v < float("inf"), "must be a finite number >= 0")


def _positive_float(text):
    return _float_argument(text, lambda v: 0.0 < v < float("inf"), "must be a finite number > 0")


def _unit_interval(text):
    return _float_argument(text, lambda v: 0.0 <= v <= 1.0, "must be in [0, 1]")


def _add_data_arguments(parser, required=True):
    group = parser.add_argument_group("data")
    group.add_argument(
        "--data", nargs="+", required=required, metavar="D",
        help="Genomic Benchmarks dataset name, interval-list dir (with --references), "
        "full-sequence dir ({train,test}/<class>/*.txt), CSV/TSV file(s) with seq,label "
        "columns, or FASTA files one per class (class=path to name them)",
    )  # fmt: skip
    group.add_argument(
        "--references", metavar="DIR", help="reference genomes (FASTA .fa.gz) of an interval list"
    )
    group.add_argument(
        "--cache-dir", default="default",
        help="where parsed data is cached ($ATTNGEN_CACHE or ~/.cache/attngen by default; 'none' disables)",
    )  # fmt: skip


def _add_sequences_argument(parser):
    parser.add_argument(
        "--sequences", metavar="FILE",
        help="sequences without labels instead of --data (FASTA, or CSV/TSV with a seq column; "
        "optionally gzipped): each is labelled with the class the model predicts, so the importance "
        "explains that prediction (perturb: accuracy = share of predictions unchanged)",
    )  # fmt: skip


def _check_sequences_options(args):
    """`--sequences` replaces `--data` and its splits."""
    if args.sequences is None:
        return
    given = [name for name in ("data", "references", "split") if getattr(args, name) is not None]
    if given:
        raise ValueError(
            f"--sequences takes the place of --data: drop {', '.join('--' + g for g in given)}"
        )


DEFAULT_N = 3000  # explain and perturb: sequences of the split used, by default


def _load_for_importance(args, result_file, *options):
    """What `explain` and `perturb` share before their slow part.

    Loads the run and its data (`--data`/`--split`, or `--sequences` labelled by
    the model), settles the default `--method`, and refuses, unless `--force`,
    to replace a `result_file` in `--out` made with another request (its
    options `options` of `args` besides the common ones).

    Returns:
        `(model, record, split_name, split, request)`.
    """
    from attngen_keras.training import (
        label_with_predictions,
        load_run_data,
        load_unlabeled_sequences,
    )

    _check_sequences_options(args)
    given_n, args.n = args.n is not None, args.n or DEFAULT_N
    if args.sequences is None:
        model, record, split_name, split = load_run_data(
            args.run_dir, args.data, args.references, args.split, args.cache_dir
        )
    else:
        model, record, split = load_unlabeled_sequences(
            args.run_dir, args.sequences, n=args.n, seed=getattr(args, "seed", 0), label=False
        )  # the subset explain_split / perturb_split would take of a split of these sequences
        split_name = "unlabeled"
    args.method = _default_method(args, model, record)
    if given_n and args.n > len(split):
        where = "given sequences" if args.sequences is not None else f"{split_name} split"
        print(
            f"attngen: note: --n {args.n} is more than the {len(split)} sequences of the {where}: "
            "all of them are used",
            file=sys.stderr,
        )
    request = _request(args, record, split_name, split, *options)
    _keep_other_results(args.out, result_file, request, args.force)
    if args.sequences is not None:  # labelled only once nothing stands in the way
        split = label_with_predictions(model, split)
    return model, record, split_name, split, request


class _HelpFormatter(argparse.HelpFormatter):
    """Shows each option's default, where it has a value (not None, False or an empty list)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (
            "default" in text.lower()
            or default is None
            or default is False
            or default is argparse.SUPPRESS
            or (isinstance(default, (list, tuple)) and not default)
            or not action.option_strings
            or isinstance(action, argparse._HelpAction)
        ):
            return text
        if isinstance(default, (list, tuple)):
            shown = " ".join(str(v) for v in default)
        else:
            shown = "%(default)s"
        return f"{text} (default: {shown})" if text else f"default: {shown}"


class _OneLineErrors(argparse.ArgumentParser):
    """An argument parser whose errors are one line, as the commands' own (argparse's default
    prints the whole usage block before the error): the usage is one `--help` away."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser():
    parser = _OneLineErrors(
        prog="attngen",
        description="Interpretable DNA sequence classification with AttnGen (Keras 3).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model and write a run directory")
    _add_data_arguments(train)
    train.add_argument("--model", choices=["attngen", "cnn", "gb-cnn"], default="attngen")
    train.add_argument(
        "--out", required=True, metavar="RUN_DIR", help="run directory (re-run to resume)"
    )
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--batch-size", type=int, default=128)
    train.add_argument("--learning-rate", type=float, default=1e-3)
    train.add_argument("--length", type=int, help="fixed length (default: the longest sequence)")
    train.add_argument(
        "--crop", choices=["left", "center", "right"], help="keep this part of longer sequences"
    )
    # the masking options default to None so that giving one to another model is an error
    train.add_argument(
        "--mask-fraction", type=float, help="AttnGen target mask fraction (default: 0.15)"
    )
    train.add_argument("--warmup-epochs", type=int, help="epochs of the masking ramp (default: 2)")
    train.add_argument(
        "--start-epoch", type=int, help="first epoch of the masking ramp (default: 0)"
    )
    train.add_argument(
        "--schedule",
        choices=["linear", "cosine", "step"],
        help="shape of the ramp (default: linear)",
    )
    train.add_argument("--seed", type=_seed, default=0)
    train.add_argument("--val-fraction", type=float, default=0.1)
    train.add_argument(
        "--test-fraction", type=float, default=0.2,
        help="carved as the test split from a source without splits of its own (one CSV without "
        "a split column, FASTA per class); a source with its own splits keeps them",
    )  # fmt: skip
    train.add_argument(
        "--reverse-complement", action="store_true", help="reverse-complement augmentation"
    )
    train.add_argument("--patience", type=int, default=5, help="early-stopping patience (0: off)")
    train.add_argument(
        "--max-train", type=int, help="train on a stratified subset of this many sequences"
    )
    train.add_argument("--strategy", choices=["default", "mirrored"], default="default")
    train.add_argument("--filters", type=int, help="backbone filters")
    train.add_argument("--kernel-size", type=int, help="stem kernel size")
    train.add_argument("--conv-blocks", type=int, help="backbone conv blocks after the stem")
    train.add_argument("--dropout", type=float, help="backbone dropout")
    attn = train.add_argument_group("AttnGen variant (defaults from --preset)")
    attn.add_argument(
        "--preset", choices=["faithful", "motif", "paper"], default="faithful",
        help="faithful (default): attention on the nucleotides, trained so that its top positions are "
        "necessary and sufficient, each logit a mix of its own and the soft maximum of its 9-nt "
        "window, weighted per position by a learned gate; motif: the 9-nt window mean alone (loss "
        "weight 1.5); "
        "paper: the paper's soft attention on the stem features",
    )  # fmt: skip
    attn.add_argument(
        "--mask-on",
        choices=["features", "nucleotides"],
        help="what the SaliencyMask scores and masks",
    )
    attn.add_argument(
        "--inference",
        choices=["soft", "hard"],
        help="hard: keep only the top positions at inference too",
    )
    attn.add_argument("--temperature", type=float, help="attention temperature (< 1: sharper)")
    attn.add_argument(
        "--attention-window",
        type=_odd_positive_int,
        help="odd width of the window over which attention logits are pooled (contiguity prior; "
        "1: none)",
    )
    attn.add_argument(
        "--attention-window-weight",
        type=_unit_interval,
        help="weight in [0, 1] of the pooled window against each position's own logit "
        "(1: the window alone)",
    )
    attn.add_argument(
        "--attention-window-pooling",
        choices=["mean", "log_mean_exp"],
        help="how a window pools the logits: log_mean_exp (a soft maximum; preset faithful) or "
        "their mean (preset motif; with --faithfulness-weight 1.5 --no-attention-window-gate "
        "--attention-window-sharpness 1: the default of 2026-11-27)",
    )
    attn.add_argument(
        "--attention-window-sharpness", type=_positive_float,
        help="b of the log_mean_exp pooling, log(mean(exp(b * logits))) / b "
        "(large: the window's maximum; towards 0: its mean; preset faithful: 2, otherwise 1)",
    )  # fmt: skip
    attn.add_argument(
        "--attention-window-gate", action=argparse.BooleanOptionalAction, default=None,
        help="learn the window weight per position, starting from --attention-window-weight "
        "(the model chooses where a position's own logit counts and where its window's does; "
        "preset faithful: on)",
    )  # fmt: skip
    attn.add_argument(
        "--normalization",
        choices=["softmax", "sigmoid", "sparsemax"],
        help="attention weights: softmax, per-position sigmoid gates, or sparsemax (exact zeros; "
        "use with a high --temperature such as 20: at 1 the model did not learn in our runs)",
    )
    attn.add_argument(
        "--attention-entropy-weight", type=_non_negative_float,
        help="weight of a training penalty on the attention's normalized entropy (0: none)",
    )  # fmt: skip
    attn.add_argument(
        "--stem-activation",
        choices=["relu", "exponential"],
        help="activation of the stem convolution",
    )
    attn.add_argument(
        "--faithfulness-weight", type=float,
        help="weight of the faithfulness loss (0: off; preset faithful: 2, motif: 1.5, paper: 0)",
    )  # fmt: skip
    attn.add_argument(
        "--faithfulness-target", choices=["uniform", "baseline"],
        help="where the loss pulls the output once the top positions are removed: chance or the all-N output",
    )  # fmt: skip
    attn.add_argument(
        "--faithfulness-fraction", type=float,
        help="share of nucleotides the faithfulness loss treats as the rationale (default 0.2)",
    )  # fmt: skip
    attn.add_argument(
        "--faithfulness-batch-fraction", type=float, metavar="F",
        help="share of each batch whose perturbed copies the faithfulness loss scores (default 1: all; less is cheaper)",
    )  # fmt: skip
    train.add_argument("--no-jit", action="store_true", help="disable XLA compilation")
    train.add_argument(
        "--deterministic", action="store_true",
        help="op determinism: a run killed at any moment and resumed ends exactly as an uninterrupted one",
    )  # fmt: skip
    train.add_argument(
        "--checkpoint-every", type=_positive_int, metavar="N",
        help="also checkpoint the full training state every N steps (default: every epoch)",
    )  # fmt: skip
    train.add_argument(
        "--steps-per-epoch", type=_positive_int, metavar="N",
        help="an epoch is N batches (default: one pass over train); the data order runs on across epochs",
    )  # fmt: skip
    train.add_argument(
        "--validation-steps", type=_positive_int, metavar="N",
        help="validate each epoch on a fixed seeded sample of N batches (default: the whole val split)",
    )  # fmt: skip
    train.add_argument(
        "--overwrite", action="store_true",
        help="replace the run in --out (trained beside it, swapped in when complete; the old run stays until then)",
    )  # fmt: skip

    evaluate = sub.add_parser("evaluate", help="evaluate a trained run on any dataset")
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    _add_data_arguments(evaluate, required=False)
    evaluate.add_argument(
        "--split", choices=["test", "val", "train", "all"],
        help="split to score (default: test; other data without splits of its own is scored whole, 'all'); "
        "a split the data does not have is an error",
    )  # fmt: skip
    evaluate.add_argument(
        "--out",
        help="metrics JSON (default RUN_DIR/evaluation_<split>.json, or .2.json, ... if that exists)",
    )
    evaluate.add_argument("--force", action="store_true", help="replace an existing --out file")

    explain = sub.add_parser(
        "explain", help="per-nucleotide importance of a trained run, with plots"
    )
    explain.add_argument("run_dir", metavar="RUN_DIR")
    _add_data_arguments(explain, required=False)
    _add_sequences_argument(explain)
    explain.add_argument(
        "--split", choices=["test", "val", "train", "all"],
        help="split to use (default: test; 'all', data without splits of its own used whole, applies "
        "to --data other than the run's)",
    )  # fmt: skip
    explain.add_argument(
        "--method", choices=METHOD_CHOICES,
        help="importance to compute (default: attention for AttnGen runs, input_x_gradient for others)",
    )  # fmt: skip
    explain.add_argument(
        "--n", type=_positive_int, help=f"sequences (a fixed seeded subset; default: {DEFAULT_N})"
    )
    explain.add_argument(
        "--ground-truth", metavar="FILE",
        help="informative intervals per sequence id (CSV/TSV with id,start,end, or BED; 0-based, end "
        "excluded): adds per-sequence AUROC/AUPRC of the importance vs a random ranking",
    )  # fmt: skip
    explain.add_argument("--out", required=True, help="output directory")
    explain.add_argument(
        "--force", action="store_true",
        help="replace earlier results in --out made with other options (--method, --n, --data, "
        "--references, --sequences, --split, --ground-truth)",
    )  # fmt: skip

    perturb = sub.add_parser(
        "perturb",
        help="accuracy as the top/random/bottom-importance nucleotides are removed (or only they kept)",
    )
    perturb.add_argument("run_dir", metavar="RUN_DIR")
    _add_data_arguments(perturb, required=False)
    _add_sequences_argument(perturb)
    perturb.add_argument(
        "--split", choices=["test", "val", "train", "all"],
        help="split to use (default: test; 'all', data without splits of its own used whole, applies "
        "to --data other than the run's)",
    )  # fmt: skip
    perturb.add_argument(
        "--method", choices=METHOD_CHOICES,
        help="importance used to rank positions (default: attention for AttnGen runs, input_x_gradient "
        "for others)",
    )  # fmt: skip
    perturb.add_argument(
        "--n", type=_positive_int, help=f"sequences (a fixed seeded subset; default: {DEFAULT_N})"
    )
    perturb.add_argument(
        "--fractions", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.2, 0.3, 0.5],
        help="shares of each sequence's nucleotides to remove (and, for sufficiency, to keep)",
    )  # fmt: skip
    perturb.add_argument(
        "--replacement", choices=["N", "random", "shuffle"], default="N",
        help="what a removed nucleotide becomes: N (uniform 0.25 encoding), a seeded random base, or "
        "shuffle: the base at that position of a seeded dinucleotide-preserving shuffle of the sequence",
    )  # fmt: skip
    perturb.add_argument(
        "--seed",
        type=_seed,
        default=0,
        help="seeds the subset, random ranking, random bases and shuffles",
    )
    perturb.add_argument("--out", required=True, help="output directory")
    perturb.add_argument(
        "--force", action="store_true",
        help="replace earlier results in --out made with other options (--method, --n, --data, "
        "--references, --sequences, --split, --fractions, --replacement, --seed)",
    )  # fmt: skip

    sweep = sub.add_parser(
        "sweep", help="train AttnGen over mask fractions x seeds; tables and plots"
    )
    _add_data_arguments(sweep)
    sweep.add_argument("--out", required=True, help="sweep directory (re-run to resume)")
    sweep.add_argument(
        "--fractions", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5]
    )
    sweep.add_argument("--seeds", type=_seed, nargs="+", default=[0, 1, 2])
    sweep.add_argument(
        "--epochs", type=int, default=5, help="epoch budget of every run (no early stopping)"
    )
    sweep.add_argument("--warmup-epochs", type=int, default=2)
    sweep.add_argument("--batch-size", type=int, default=128)
    sweep.add_argument("--learning-rate", type=float, default=1e-3)
    sweep.add_argument("--length", type=int)
    sweep.add_argument("--crop", choices=["left", "center", "right"])
    sweep.add_argument(
        "--max-train", type=int, help="train on a stratified subset of this many sequences"
    )
    sweep.add_argument(
        "--target-accuracy",
        type=float,
        default=0.95,
        help="validation accuracy counted as converged",
    )
    sweep.add_argument("--method", default="attention", choices=METHOD_CHOICES)
    sweep.add_argument(
        "--n", type=int, default=1000, help="test sequences for importance and perturbation"
    )
    sweep.add_argument("--perturb-fraction", type=float, default=0.2)

    tune = sub.add_parser(
        "tune", help="KerasTuner search over architecture and mask fraction (resumable)"
    )
    _add_data_arguments(tune)
    tune.add_argument(
        "--project-name", required=True, help="name of the search (directory under --directory)"
    )
    tune.add_argument("--directory", default="tuning/runs")
    tune.add_argument("--tuner", choices=["hyperband", "bayesian", "random"], default="hyperband")
    tune.add_argument(
        "--model",
        choices=["attngen", "cnn"],
        default="attngen",
        help="cnn: same space without SaliencyMask",
    )
    tune.add_argument(
        "--max-epochs", type=int, default=6, help="epochs per trial (Hyperband: largest budget)"
    )
    tune.add_argument("--max-trials", type=int, default=10, help="trials (bayesian, random)")
    tune.add_argument("--factor", type=int, default=3, help="Hyperband reduction factor")
    tune.add_argument(
        "--objective", default="val_accuracy", help="val_accuracy, val_auc (max) or val_loss (min)"
    )
    tune.add_argument("--batch-size", type=int, default=128)
    tune.add_argument("--seed", type=_seed, default=0)
    tune.add_argument("--length", type=int)
    tune.add_argument("--crop", choices=["left", "center", "right"])
    tune.add_argument(
        "--max-train", type=int, help="search on a stratified subset of this many sequences"
    )
    tune.add_argument(
        "--strategy", choices=["default", "mirrored"], default="default", help="devices per trial"
    )
    tune.add_argument(
        "--distributed", choices=["chief", "worker"], help="KerasTuner chief/worker mode"
    )
    tune.add_argument(
        "--oracle-address", default="127.0.0.1:8000", help="chief's HOST:PORT (distributed mode)"
    )
    tune.add_argument(
        "--worker-id", type=int, default=0, help="this worker's number (distributed mode)"
    )
    tune.add_argument(
        "--retrain-best",
        action="store_true",
        help="then train the best configuration on all of train+val (also with --max-train)",
    )
    tune.add_argument(
        "--retrain-out", help="run directory of --retrain-best (default PROJECT/best_run)"
    )
    tune.add_argument(
        "--retrain-epochs",
        type=int,
        help="epochs of --retrain-best (default: the best trial's best epoch, at least one more "
        "than its masking warm-up)",
    )

    export = sub.add_parser("export", help="export a run as a versioned SavedModel for TF Serving")
    export.add_argument("run_dir", metavar="RUN_DIR")
    export.add_argument("--out", required=True, help="model base directory, e.g. saved_models/NAME")
    export.add_argument("--version", type=int, help="version number (default: next free)")

    predict = sub.add_parser(
        "predict", help="predict (and explain) sequences from FASTA or CSV, streaming"
    )
    predict.add_argument(
        "model",
        metavar="MODEL_DIR_OR_RUN_DIR",
        help="an exported SavedModel (base or version dir) or a run dir",
    )
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--fasta", help="FASTA file (optionally .gz)")
    source.add_argument("--csv", help="CSV/TSV file with a seq column (optional id)")
    predict.add_argument("--saliency", action="store_true", help="add per-nucleotide importance")
    predict.add_argument("--batch-size", type=int, default=256)
    predict.add_argument(
        "--out", required=True,
        help="output TSV (.gz: gzipped; -: standard output, the summary on stderr)",
    )  # fmt: skip
    predict.add_argument("--force", action="store_true", help="replace an existing --out file")

    synthetic = sub.add_parser(
        "synthetic", help="write planted-motif sequences with their ground truth"
    )
    synthetic.add_argument(
        "--out", required=True, help="directory for sequences.csv and planted.csv"
    )
    synthetic.add_argument("--n", type=int, default=4000, help="sequences (half carry motifs)")
    synthetic.add_argument("--length", type=int, default=200)
    synthetic.add_argument(
        "--motifs",
        nargs="+",
        default=["TGACTCA", "CCGCGNGGNGGCAG"],
        help="consensus strings (N = any base)",
    )
    synthetic.add_argument("--instances", type=int, default=1, help="motif instances per positive")
    synthetic.add_argument("--gc", type=float, default=0.5, help="background GC content")
    synthetic.add_argument("--negatives", choices=["background", "shuffled"], default="background")
    synthetic.add_argument("--seed", type=_seed, default=0)
    synthetic.add_argument(
        "--force", action="store_true", help="replace sequences.csv and planted.csv in --out"
    )

    scan = sub.add_parser(
        "scan", help="tile a genome into windows, score them, write bedGraph/bigWig tracks",
        description="Tiles a genome into windows of the model's length, scores them and writes "
        "tracks. A local scan saves its progress every 30 s in a hidden checkpoint beside --out "
        "(.NAME.scan-checkpoint): interrupted or killed, the same command resumes it and writes "
        "the same files; the checkpoint is removed when they are complete.",
    )  # fmt: skip
    scan.add_argument(
        "model",
        metavar="MODEL_OR_RUN",
        help="an exported SavedModel (base or version dir) or a run dir",
    )
    scan.add_argument("--fasta", required=True, help="genome FASTA (plain, .gz or bgzip), streamed")
    scan.add_argument(
        "--out", required=True,
        help="bedGraph track (a multi-class model writes OUT-stem.<class>.bedGraph per class)",
    )  # fmt: skip
    scan.add_argument("--stride", type=_positive_int, help="window step S (default: length // 4)")
    scan.add_argument("--regions", metavar="BED", help="scan only these intervals (BED)")
    scan.add_argument(
        "--both-strands", action="store_true", help="average each window and its reverse complement"
    )
    scan.add_argument("--bigwig", help="also write a bigWig track (pyBigWig)")
    scan.add_argument(
        "--tsv", help="one row per window with every class probability (.gz: gzipped)"
    )
    scan.add_argument(
        "--max-n-fraction", type=float, default=0.1,
        help="skip windows with more than this share of N's (default 0.1)",
    )  # fmt: skip
    scan.add_argument("--batch-size", type=_positive_int, default=256)
    scan.add_argument(
        "--class", dest="target_class", metavar="NAME",
        help="track the probability of this class (default: the second class of a binary model; "
        "a multi-class model gets one track per class)",
    )  # fmt: skip
    scan.add_argument("--runner", choices=["local", "beam"], default="local")
    scan.add_argument(
        "--beam-option", action="append", default=[], metavar="OPT",
        help="Beam pipeline option, repeatable (e.g. --beam-option=--runner=DataflowRunner)",
    )  # fmt: skip
    scan.add_argument(
        "--force", action="store_true",
        help="replace existing output files (when the new ones are complete); also discard an "
        "interrupted scan's checkpoint made with another model, FASTA or options",
    )  # fmt: skip

    variants = sub.add_parser(
        "variants", help="score VCF variants: REF and ALT windows, effect sizes, annotated VCF",
        description="Scores the REF and ALT window of every ALT allele of a VCF and writes the "
        "effects TSV (and an annotated VCF). A local run saves its progress every 30 s in a "
        "hidden checkpoint beside --out (.NAME.variants-checkpoint): interrupted or killed, the "
        "same command resumes it and writes the same files.",
    )  # fmt: skip
    variants.add_argument(
        "model",
        metavar="MODEL_OR_RUN",
        help="an exported SavedModel (base or version dir) or a run dir",
    )
    variants.add_argument("--vcf", required=True, help="variants (VCF or BCF, optionally bgzipped)")
    variants.add_argument(
        "--fasta", required=True, help="reference genome FASTA (plain, .gz, bgzip)"
    )
    variants.add_argument("--out", required=True, help="effects TSV, one row per ALT allele")
    variants.add_argument("--vcf-out", help="input VCF with ATTNGEN_PREF/PALT/DELTA INFO tags")
    variants.add_argument(
        "--both-strands", action="store_true", help="average each window and its reverse complement"
    )
    variants.add_argument(
        "--batch-size", type=_positive_int, default=512,
        help="alleles per model call (each a REF and an ALT window) and per Beam task",
    )  # fmt: skip
    variants.add_argument(
        "--max-n-fraction", type=float, default=0.1,
        help="do not score alleles whose REF window has more than this share of N's (an assembly "
        "gap; the row's note says so), as scan skips such windows (default 0.1; 1: score all)",
    )  # fmt: skip
    variants.add_argument(
        "--class", dest="target_class", metavar="NAME",
        help="p_ref and p_alt are this class's probabilities (default: the second class of a "
        "binary model; the class predicted on the REF window of a multi-class model)",
    )  # fmt: skip
    variants.add_argument("--runner", choices=["local", "beam"], default="local")
    variants.add_argument(
        "--beam-option", action="append", default=[], metavar="OPT",
        help="Beam pipeline option, repeatable (e.g. --beam-option=--runner=FlinkRunner)",
    )  # fmt: skip
    variants.add_argument(
        "--force", action="store_true",
        help="replace existing --out / --vcf-out files (when the new ones are complete); also "
        "discard an interrupted run's checkpoint made with another model, VCF, FASTA or options",
    )  # fmt: skip

    demo = sub.add_parser("demo", help="offline demo: AttnGen vs CNN on a bundled real sample")
    demo.add_argument("--out", default="runs/demo", help="where the demo run directories go")
    demo.add_argument("--epochs", type=int, default=8)
    demo.add_argument("--seed", type=_seed, default=0)
    demo.add_argument(
        "--overwrite", action="store_true", help="train again the runs already in --out"
    )
    for command in sub.choices.values():  # every subcommand's --help shows the defaults
        command.formatter_class = _HelpFormatter
        formatter = command._get_formatter()
        for action in command._actions:  # options without a help text too
            if action.help is None and action.option_strings:
                action.help = formatter._get_help_string(action) or None
    return parser


def _given(args, *names):
    """`{name: value}` of the options among `names` that were given (not None)."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _train(args):
    from attngen_keras.training import METRICS_FILE, TrainConfig, format_metrics, train

    backbone = _given(args, "filters", "kernel_size", "conv_blocks", "dropout")
    if args.model == "gb-cnn" and backbone:
        raise ValueError("--filters/--kernel-size/--conv-blocks/--dropout do not apply to gb-cnn")
    attention = _given(
        args, "mask_on", "inference", "temperature", "attention_window", "attention_window_weight",
        "attention_window_pooling", "attention_window_sharpness", "attention_window_gate",
        "attention_entropy_weight",
        "stem_activation", "faithfulness_weight", "faithfulness_fraction", "faithfulness_batch_fraction", "normalization",
        "faithfulness_target",
    )  # fmt: skip
    if args.model != "attngen" and (attention or args.preset != "faithful"):
        raise ValueError("--preset and the AttnGen variant options apply to --model attngen only")
    masking = _given(args, "mask_fraction", "warmup_epochs", "start_epoch", "schedule")
    if args.model != "attngen" and masking:
        flags = ", ".join("--" + name.replace("_", "-") for name in masking)
        raise ValueError(
            f"{flags}: the masking schedule applies to --model attngen only "
            f"(a {args.model} has no SaliencyMask)"
        )
    config = TrainConfig(
        data=args.data, out=args.out, references=args.references, model=args.model,
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        length=args.length, crop=args.crop, **masking, seed=args.seed,
        val_fraction=args.val_fraction, test_fraction=args.test_fraction,
        reverse_complement=args.reverse_complement, patience=args.patience,
        strategy=args.strategy, backbone=backbone, cache_dir=args.cache_dir,
        jit_compile=False if args.no_jit else "auto", max_train=args.max_train,
        deterministic=args.deterministic, checkpoint_every=args.checkpoint_every,
        preset=args.preset, attention=attention,
        steps_per_epoch=args.steps_per_epoch, validation_steps=args.validation_steps,
    )  # fmt: skip
    finished_before = not args.overwrite and (Path(args.out) / METRICS_FILE).is_file()
    metrics = train(config, overwrite=args.overwrite)
    for split in ("val", "test"):
        if split in metrics:
            print(f"{split}: {format_metrics(metrics[split])}")
    print(f"run unchanged in {args.out}" if finished_before else f"run written to {args.out}")


def _evaluate(args):
    from attngen_keras.training import evaluate_run, format_metrics

    result = evaluate_run(
        args.run_dir, args.data, args.references, split=args.split, out=args.out,
        cache_dir=args.cache_dir, force=args.force,
    )  # fmt: skip
    print(f"{result['split']}: {format_metrics(result)}")
    undefined = [k for k in ("auroc", "auprc", "f1") if result.get(k) != result.get(k)]  # NaN
    if undefined:
        print(
            f"attngen evaluate: warning: {', '.join(undefined)} undefined on these data (they need "
            "sequences of every class); written as null",
            file=sys.stderr,
        )
    print(f"wrote {result['written']}")


def _request(args, record, split_name, split, *names):
    """What a result depends on, as recorded in its JSON and compared before it is replaced.

    The resolved values, so that one computation asked for in two ways is
    one request: the run (its real path: symlinks resolved), the split used, the sequences taken (`--n` capped at the
    split's size), `data` None for the run's own files, paths made absolute;
    and the options `names` of `args` as given.
    """
    from attngen_keras.data.loading import resolve_data_paths

    data = None if args.data is None else resolve_data_paths(args.data)
    if data is not None and data == resolve_data_paths([str(d) for d in record.get("data", [])]):
        data = None  # the run's own files, named explicitly
    request = {
        "run": os.path.realpath(args.run_dir),
        "method": args.method,
        "n": min(int(args.n), len(split)),
        "data": data,
        "references": None if data is None or args.references is None
        else os.path.abspath(args.references),
        "sequences": None if args.sequences is None else os.path.abspath(args.sequences),
        "split": None if args.sequences is not None else split_name,
    }  # fmt: skip
    for name in names:
        request[name] = getattr(args, name)
    if request.get("ground_truth") is not None:
        request["ground_truth"] = os.path.abspath(request["ground_truth"])
    return request


def _option_text(key, value):
    if key == "run":
        return f"the run {value}"
    if value is None:
        return f"no --{key.replace('_', '-')}"
    shown = " ".join(map(str, value)) if isinstance(value, list) else value
    return f"--{key.replace('_', '-')} {shown}"


def _keep_other_results(out, name, request, force):
    """Refuses, unless `force`, to replace `out/name` written with another `request`.

    A re-run with the same options replaces its earlier result (it is the
    same computation); one with another method, number of sequences, data or
    split would lose a different one. Results written before the options were
    recorded (`"request"` in the JSON) are compared by the options they hold.
    """
    from attngen_keras.files import FileError

    path = Path(out) / name
    if force or not path.is_file():
        return
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError):
        return  # not a result this command can read: replaced as before
    if not isinstance(earlier, dict):
        return
    held = earlier.get("request")
    if not isinstance(held, dict):
        held = {key: earlier[key] for key in ("method", "replacement") if key in earlier}
    changed = [key for key, value in request.items() if key in held and held[key] != value]
    if changed:
        was = ", ".join(_option_text(key, held[key]) for key in changed)
        now = ", ".join(_option_text(key, request[key]) for key in changed)
        raise FileError(
            path,
            f"holds results made with {was} (now {now}); use --force to replace them, or choose "
            "another --out",
        )


def _default_method(args, model, record):
    """`args.method`, or when not given the run's natural importance: its attention for a model
    with a SaliencyMask, |gradient x input| for one without (said on stderr)."""
    if args.method is not None:
        return args.method
    from attngen_keras.layers import SaliencyMask

    if any(isinstance(layer, SaliencyMask) for layer in getattr(model, "layers", [])):
        return "attention"  # (several ambiguous ones are `attention`'s own error)
    print(
        f"attngen: note: {args.run_dir}'s model {record.get('model', model.name)!r} has no "
        "attention; using --method input_x_gradient (|gradient x input|)",
        file=sys.stderr,
    )
    return "input_x_gradient"


def _explain(args):
    from attngen_keras.explain.report import REPORT_FILES, explain_split, write_report
    from attngen_keras.files import check_output_dir, check_result_names, staged_files

    check_output_dir(args.out, create=False)  # a file there is an error before the slow part
    check_result_names(args.out, REPORT_FILES)
    intervals = None
    if args.ground_truth:  # checked before the (slow) importance computation
        from attngen_keras.explain.ground_truth import ground_truth_mask, read_intervals

        intervals = read_intervals(args.ground_truth)
    model, record, split_name, split, request = _load_for_importance(
        args, "summary.json", "ground_truth"
    )
    crop = record.get("crop")
    if args.sequences is not None:
        crop = crop or "left"  # how `load_unlabeled_sequences` cut longer sequences
    if intervals is not None and crop in ("center", "right"):
        raise ValueError(
            f"--ground-truth coordinates refer to the uncropped sequences, but this run crops long "
            f"sequences at the {crop}; use a run trained with --crop left or without cropping"
        )
    result = explain_split(
        model, split, record["class_names"], args.method, n=args.n, show_progress=True
    )
    planted = None
    if intervals is not None:
        planted = ground_truth_mask(
            args.ground_truth,
            result["ids"],
            result["valid"].sum(axis=1),
            clip=crop == "left",
            intervals=intervals,
        )
    with staged_files(args.out) as staging:  # the previous results stay until these are complete
        summary = write_report(
            result, staging, args.method, planted=planted, request=request,
            labels="given" if args.sequences is None else "predicted",
        )  # fmt: skip
    if args.sequences is not None:
        print(
            f"{args.sequences}: labels (if any) not read; each sequence is explained for the class "
            "the model predicts"
        )
    c = summary["concentration"]
    print(
        f"{args.method} importance of {summary['n']} sequences: Gini {c['gini']:.3f}, "
        f"normalized entropy {c['entropy']:.3f}, top-10% mass {c['top10_mass']:.3f}"
    )
    top = ", ".join(f"{r['kmer']} ({r['enrichment']:.1f}x)" for r in summary["enriched_kmers"][:5])
    print(
        f"most enriched 6-mers in high-importance windows: {top}"
        if top
        else "no 6-mer is enriched in the high-importance windows"
    )
    if "localization" in summary:
        from attngen_keras.files import plural

        found, random = summary["localization"]["importance"], summary["localization"]["random"]
        print(
            f"ground truth ({plural(found['n'], 'sequence')} with informative positions): AUROC {found['auroc']:.3f} "
            f"(random {random['auroc']:.3f}), AUPRC {found['auprc']:.3f} (baseline {found['auprc_baseline']:.3f})"
        )
    if "ism" in result:
        print(
            "importance.npz also holds ism (n, length, 4): p_mutant - p_ref of the predicted class per base"
        )
    print(f"wrote importance.npz, summary.json and plots to {args.out}")


def _perturb(args):
    from attngen_keras.explain.perturbation import (
        PERTURB_FILES,
        check_fractions,
        perturb_split,
        write_perturbation,
    )
    from attngen_keras.files import check_output_dir, check_result_names, staged_files

    check_fractions(args.fractions)  # before the slow part, as a file at --out
    check_output_dir(args.out, create=False)
    check_result_names(args.out, PERTURB_FILES)
    model, _, split_name, split, request = _load_for_importance(
        args, "perturb.json", "fractions", "replacement", "seed"
    )
    result = perturb_split(
        model, split, args.method, n=args.n, fractions=args.fractions,
        replacement=args.replacement, seed=args.seed, show_progress=True,
    )  # fmt: skip
    result = {
        "run": request["run"], "split": split_name, **result, "request": request,
        "labels": "given" if args.sequences is None else "predicted",
    }  # fmt: skip
    with staged_files(args.out) as staging:  # the previous results stay until these are complete
        write_perturbation(result, staging)
    print(
        f"{args.method} perturbation of {result['n']} {split_name} sequences (removed -> {args.replacement}):"
    )
    if args.sequences is not None:
        print(
            f"{args.sequences}: labels (if any) not read; accuracy here is the share of sequences "
            "whose prediction is the model's prediction on the intact sequence"
        )
    print("fraction  " + "  ".join(f"{r:>7}" for r in result["accuracy"]))
    for i, fraction in enumerate(result["fractions"]):
        print(f"{fraction:8.2f}  " + "  ".join(f"{v[i]:7.4f}" for v in result["accuracy"].values()))
    print("deletion AUC " + ", ".join(f"{r} {v:.4f}" for r, v in result["deletion_auc"].items()))
    print("sufficiency (accuracy with only that fraction kept):")
    print("fraction  " + "  ".join(f"{r:>7}" for r in result["sufficiency"]))
    for i, fraction in enumerate(result["fractions"]):
        print(
            f"{fraction:8.2f}  " + "  ".join(f"{v[i]:7.4f}" for v in result["sufficiency"].values())
        )
    percents = "/".join(f"{f:.0%}" for f in result["aopc_fractions"])
    for mode, values in result["aopc"].items():
        print(f"AOPC {mode} (probability drop, mean over k = {percents}): "
              + ", ".join(f"{r} {v:.4f}" for r, v in values.items()))  # fmt: skip
    if result["uniform_attention"] is not None:
        uniform = result["uniform_attention"]
        print(_uniform_attention_line(uniform))
    print(f"wrote perturb.json and perturbation_curve.png to {args.out}")


def _uniform_attention_line(uniform):
    """`perturb`'s line on the uniform-attention control, read for the user when it changes little."""
    line = (
        f"uniform attention: accuracy {uniform['accuracy']:.4f} "
        f"(learned attention {uniform['baseline_accuracy']:.4f})"
    )
    change = uniform["accuracy"] - uniform["baseline_accuracy"]
    ranking = ("(whether they depend on the nucleotides it ranks highest is what the deletion and "
               "sufficiency figures above show)")  # fmt: skip
    if abs(change) < 0.01:
        line += f"; about the same: the predictions do not depend on the soft attention weights {ranking}"
    elif change > 0:
        line += (
            "; higher: the accuracy does not rest on the soft attention weights, uniform weights "
            f"do better {ranking}"
        )
    return line


def _sweep(args):
    from attngen_keras.sweep import SweepConfig, run_sweep

    config = SweepConfig(
        data=args.data, out=args.out, references=args.references, fractions=args.fractions,
        seeds=args.seeds, epochs=args.epochs, warmup_epochs=args.warmup_epochs,
        batch_size=args.batch_size, learning_rate=args.learning_rate, length=args.length,
        crop=args.crop, max_train=args.max_train, target_accuracy=args.target_accuracy,
        eval_n=args.n, method=args.method, perturb_fraction=args.perturb_fraction,
        cache_dir=args.cache_dir,
    )  # fmt: skip
    run_sweep(config)
    print((Path(args.out) / "sweep.md").read_text())
    print(f"wrote sweep.csv, sweep_summary.csv, sweep.md and plots to {args.out}")


def _tune(args):
    # the retraining's options are checked before the search, which can take hours
    if not args.retrain_best:
        given = [n for n, v in (("--retrain-out", args.retrain_out),
                                ("--retrain-epochs", args.retrain_epochs)) if v is not None]  # fmt: skip
        if given:
            verb = "needs" if len(given) == 1 else "need"
            raise ValueError(f"{' and '.join(given)} {verb} --retrain-best")
    if args.retrain_epochs is not None and args.retrain_epochs < 1:
        raise ValueError(f"--retrain-epochs must be >= 1, got {args.retrain_epochs}")
    if args.retrain_out is not None:
        from attngen_keras.training import not_a_run_directory

        problem = not_a_run_directory(args.retrain_out)
        if problem == "a file":
            raise ValueError(f"--retrain-out {args.retrain_out} is a file, not a run directory")
        if problem:
            raise ValueError(
                f"--retrain-out {args.retrain_out} exists and is not an attngen run directory; "
                "choose another"
            )
    if args.distributed:
        host, _, port = args.oracle_address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"--oracle-address must be HOST:PORT, got {args.oracle_address!r}")
        os.environ["KERASTUNER_TUNER_ID"] = (
            "chief" if args.distributed == "chief" else f"tuner{args.worker_id}"
        )
        os.environ["KERASTUNER_ORACLE_IP"], os.environ["KERASTUNER_ORACLE_PORT"] = host, port
    from attngen_keras.tuning import TuneConfig, retrain_best, run_search

    config = TuneConfig(
        data=args.data, project_name=args.project_name, references=args.references, tuner=args.tuner,
        model=args.model, max_epochs=args.max_epochs, max_trials=args.max_trials, factor=args.factor,
        objective=args.objective, directory=args.directory, batch_size=args.batch_size, seed=args.seed,
        length=args.length, crop=args.crop, max_train=args.max_train, strategy=args.strategy,
        cache_dir=args.cache_dir,
    )  # fmt: skip
    if args.distributed == "worker":  # KerasTuner's worker waits for the chief without a word
        print(
            f"worker {args.worker_id}: asking the chief at {args.oracle_address} for trials (it "
            "waits up to an hour, KerasTuner's limit, for the chief to answer; start it with "
            "--distributed chief)",
            flush=True,
        )
    try:
        run_search(config)
    except Exception as error:
        import grpc

        from attngen_keras.training import RunError

        if not isinstance(error, grpc.RpcError):
            raise
        code = getattr(error, "code", lambda: None)()
        raise RunError(
            f"--distributed {args.distributed}: the oracle at {args.oracle_address} did not answer "
            f"({getattr(code, 'name', 'no answer')}): is the chief running there?"
        ) from None
    if args.distributed == "worker":
        print(f"worker {args.worker_id}: no trials left; done")
        return
    print((config.project_dir / "summary.md").read_text())
    print(f"wrote trials.csv, summary.md and best_hyperparameters.json to {config.project_dir}")
    if args.retrain_best:
        out, metrics, retrained = retrain_best(config, args.retrain_out, args.retrain_epochs)
        from attngen_keras.training import format_metrics

        if retrained:
            print(
                f"best configuration retrained on train+val: test {format_metrics(metrics['test'])}"
            )
            print(f"run written to {out}")
        else:
            print(
                f"{out}: the best configuration was already retrained there, nothing retrained; "
                f"test {format_metrics(metrics['test'])}"
            )


def _export(args):
    from attngen_keras.export import export_run

    path = export_run(args.run_dir, args.out, args.version)
    print(f"exported SavedModel version {path.name} to {path}")
    print(f"serve it with: {serving_command(args.out)}")


def serving_command(base):
    """The `tensorflow_model_server` command line serving the export base directory `base`, ready to
    paste: the path quoted for the shell, the model name (the directory's, which REST URLs hold:
    `/v1/models/NAME:predict`) with characters other than letters, digits, `.`, `_`, `-` as `_`.

    Example:

    >>> serving_command("/srv/my models/hof v2")
    "tensorflow_model_server --rest_api_port=8501 --model_name=hof_v2 --model_base_path='/srv/my models/hof v2'"
    """
    import re
    import shlex

    base = Path(base).resolve()
    name = re.sub(r"[^A-Za-z0-9._-]", "_", base.name) or "model"
    return (f"tensorflow_model_server --rest_api_port=8501 --model_name={shlex.quote(name)} "
            f"--model_base_path={shlex.quote(str(base))}")  # fmt: skip


def _predict(args):
    from attngen_keras.predict import STDOUT, predict_file

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    kind = "fasta" if args.fasta else "table"
    try:
        count = predict_file(
            args.model,
            args.fasta or args.csv,
            args.out,
            args.saliency,
            args.batch_size,
            kind=kind,
            force=args.force,
        )
    except BrokenPipeError:
        if args.out != STDOUT:
            raise
        # the reader of standard output stopped (`| head`): end quietly, as on SIGPIPE
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush
        raise SystemExit(128 + signal.SIGPIPE) from None
    from attngen_keras.files import plural

    if args.out == STDOUT:  # the TSV went to standard output
        print(f"wrote {plural(count, 'prediction')} to standard output", file=sys.stderr)
    else:
        print(f"wrote {plural(count, 'prediction')} to {args.out}")


def _synthetic(args):
    from attngen_keras.files import check_output_dir, check_output_file, write_text_atomic
    from attngen_keras.synthetic import planted_motif_data

    out = check_output_dir(args.out, create=False)  # a file there is an error before any work
    if out.exists():
        for name in ("sequences.csv", "planted.csv"):
            check_output_file(out / name, args.force)  # earlier data is kept unless --force
    data = planted_motif_data(
        n=args.n, length=args.length, motifs=args.motifs, instances=args.instances, gc=args.gc,
        negatives=args.negatives, seed=args.seed,
    )  # fmt: skip
    check_output_dir(out)
    write_text_atomic(out / "sequences.csv", data.to_frame().to_csv(index=False))
    write_text_atomic(out / "planted.csv", data.planted_intervals().to_csv(index=False))
    print(
        f"wrote {len(data.sequences)} sequences to {out / 'sequences.csv'} and their motif intervals to {out / 'planted.csv'}"
    )


def _quiet_beam_interrupts(args):
    """This process exits after a Ctrl-C: Beam's threads winding down need not be reported."""
    if getattr(args, "runner", None) == "beam":
        from attngen_keras.genome import beam

        beam.QUIET_INTERRUPTS = True


def _scan(args):
    _quiet_beam_interrupts(args)
    from attngen_keras.files import plural
    from attngen_keras.genome.scan import scan_genome

    summary = scan_genome(
        args.model, args.fasta, args.out, stride=args.stride, regions=args.regions,
        both_strands=args.both_strands, bigwig=args.bigwig, tsv=args.tsv,
        max_n_fraction=args.max_n_fraction, batch_size=args.batch_size, runner=args.runner,
        beam_options=args.beam_option, target_class=args.target_class, force=args.force,
    )  # fmt: skip
    print(
        f"scored {plural(summary['windows'], 'window')} ({summary['length']} nt, stride "
        f"{summary['stride']}) in a FASTA of {plural(summary['records'], 'record')}; "
        f"wrote {', '.join(summary['outputs'])}"
    )


def _variants(args):
    _quiet_beam_interrupts(args)
    from attngen_keras.genome.variants import score_variants

    summary = score_variants(
        args.model, args.vcf, args.fasta, args.out, vcf_out=args.vcf_out,
        both_strands=args.both_strands, batch_size=args.batch_size,
        max_n_fraction=args.max_n_fraction, runner=args.runner,
        beam_options=args.beam_option, target_class=args.target_class, force=args.force,
    )  # fmt: skip
    print(
        f"scored {summary['scored']} of {summary['alleles']} ALT alleles; wrote {', '.join(summary['outputs'])}"
    )


def _demo(args):
    from attngen_keras.demo import run_demo

    run_demo(args.out, epochs=args.epochs, seed=args.seed, overwrite=args.overwrite)


COMMANDS = {
    "train": _train, "evaluate": _evaluate, "explain": _explain, "perturb": _perturb,
    "sweep": _sweep, "tune": _tune, "synthetic": _synthetic, "export": _export, "predict": _predict, "demo": _demo,
    "scan": _scan, "variants": _variants,
}  # fmt: skip


def _start_tensorflow_quietly(debug=False):
    """Imports TensorFlow and Keras and probes the devices with fd 2 sent to a temporary file.

    TensorFlow, XLA and CUDA log several lines at import and at the first
    device query, before `absl::InitializeLog()` (so `TF_CPP_MIN_LOG_LEVEL`
    does not reach them); a user would see them before every message, even a
    one-line error. They are shown only if the import itself fails (and
    always with `ATTNGEN_DEBUG=1`).
    """
    import tempfile

    if debug:
        import tensorflow as tf

        tf.config.list_physical_devices()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        failed = False
        try:
            import keras  # noqa: F401
            import tensorflow as tf

            tf.config.list_physical_devices()  # CUDA probing logs here, not at import
        except BaseException:
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                sink.seek(0)
                sys.stderr.write(sink.read().decode(errors="replace"))


def _one_line_warnings(command):
    """Python warnings as `attngen COMMAND: warning: ...`, one line each."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"attngen {command}: warning: {message}", file=file or sys.stderr)

    warnings.showwarning = show


# commands that never touch TensorFlow (they skip its ~10 s import)
_WITHOUT_TENSORFLOW = ("synthetic",)
# Commands that checkpoint: interrupted, the same command resumes them (and `scan` and `variants`
# with `--runner local`).
RESUMABLE_COMMANDS = ("train", "sweep", "tune", "demo")


def main(argv=None):
    """Entry point of the `attngen` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the command's parser, whose --help lists the options it has
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        commands.choices[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    debug = bool(os.environ.get("ATTNGEN_DEBUG"))
    if not debug:
        _one_line_warnings(args.command)
    # ValueError: invalid arguments caught by the library's own checks (and
    # DataError, one of them); OSError: a file that cannot be read or written
    # (it names the file)
    handled = (ValueError, OSError)
    if args.command not in _WITHOUT_TENSORFLOW:
        _start_tensorflow_quietly(debug)
        from attngen_keras.genome.beam import PipelineError
        from attngen_keras.training import RunError  # (imports TensorFlow)

        handled += (RunError, PipelineError)
    previous_handlers = _stop_on_signals()
    finished = False
    try:
        COMMANDS[args.command](args)
        finished = True
        if _SIGNALLED:
            # the signal's exception was raised where Python drops it (a weakref or garbage
            # collection callback), and the command went on: it still ends as stopped
            raise Terminated if _SIGNALLED[-1] == signal.SIGTERM else KeyboardInterrupt
    except handled as error:
        if debug:
            raise
        if _SIGNALLED:  # an error that the interruption caused (a Beam pipeline cancelled, say)
            return _stopped(args, Terminated() if _SIGNALLED[-1] == signal.SIGTERM else None)
        print(f"attngen {args.command}: error: {_describe(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        return _stopped(args, interrupt, finished)
    finally:
        _restore_signals(previous_handlers)
        _remove_temporaries()
    return 0


def _stopped(args, interrupt, finished=False):
    """The line and exit status (143 for SIGTERM, else 130) of a command stopped by a signal;
    `finished`: it had done its work when the signal was noted."""
    if finished:
        advice = "it had finished: its results were written"
    elif args.command == "train" and not Path(args.out).exists():
        advice = "nothing was trained yet, and no --out directory was left"
    elif args.command in RESUMABLE_COMMANDS or (
        args.command in ("scan", "variants") and args.runner == "local"
    ):
        advice = "re-run the same command to resume"
    else:
        advice = "earlier outputs are unchanged; re-run the command to start again"
    if isinstance(interrupt, Terminated):
        print(f"\nattngen {args.command}: terminated (SIGTERM); {advice}", file=sys.stderr)
        return 128 + signal.SIGTERM
    print(f"\nattngen {args.command}: interrupted; {advice}", file=sys.stderr)
    return 130


class Terminated(KeyboardInterrupt):
    """SIGTERM (a job scheduler's time limit, `kill`), raised where a Ctrl-C would be: a command
    stops as it does on Ctrl-C, saving what it checkpoints and removing its temporary files."""


# the signals received while a command runs (their exception may be dropped: see `main`)
_SIGNALLED = []


def _raise_on_signal(signum, frame):
    _SIGNALLED.append(signum)
    raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


def _stop_on_signals():
    """Turns SIGTERM into `Terminated` and SIGINT into `KeyboardInterrupt`, noting each (in the
    main thread only), and keeps a dropped interrupt from printing a traceback; returns what
    `_restore_signals` puts back (None off the main thread)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    # a signal the process was started ignoring (a background job of a script) stays ignored
    handlers = {signum: signal.signal(signum, _raise_on_signal)
                for signum in (signal.SIGTERM, signal.SIGINT)
                if signal.getsignal(signum) is not signal.SIG_IGN}  # fmt: skip
    hook = sys.unraisablehook

    def quiet_interrupts(unraisable):
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            hook(unraisable)

    sys.unraisablehook = quiet_interrupts
    return handlers, hook


def _restore_signals(previous):
    _SIGNALLED.clear()
    if previous is None:
        return
    handlers, hook = previous
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    sys.unraisablehook = hook


def _remove_temporaries():
    """The command's temporary reference copies and indexes (also removed at exit; this is for in-process calls)."""
    reference = sys.modules.get("attngen_keras.genome.reference")
    if reference is not None:
        reference.remove_temp_dir()


def _describe(error):
    """One line for an error: OSErrors as `FILE: problem`."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        problem = {
            "Not a directory": "is a file or lies under one, not a directory",
            "Is a directory": "is a directory, not a file",
        }.get(error.strerror, error.strerror.lower())
        from attngen_keras.files import user_path

        # a temporary name (`.X.partial-HOST-PID`) is reported as the user's own path X
        return f"{user_path(error.filename)}: {problem}"
    return " ".join(str(error).split())


def console_main():
    """The `attngen` console script: `main()`, then an exit that Ctrl-C no longer turns into a failure.

    Once the command has finished and written its outputs, a Ctrl-C during
    the interpreter's shutdown (TensorFlow's can take a second) would end the
    process with status 130 and no message, so that a script would take a
    complete result for a failed one; the first one is ignored from then on
    (a second stops a shutdown that hangs).
    """
    code = main()
    if code == 0:
        # the first Ctrl-C is ignored; a second one (a shutdown that hangs) stops the process
        signal.signal(signal.SIGINT, _ignore_once)
    sys.exit(code)


def _ignore_once(signum, frame):
    signal.signal(signal.SIGINT, signal.SIG_DFL)


if __name__ == "__main__":
    console_main()
