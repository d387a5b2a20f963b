"""`load_dataset`: one entry point that auto-detects every supported source."""

import functools
import os
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np

from attngen_keras.data import alphabet, readers
from attngen_keras.data import cache as cache_lib
from attngen_keras.data import genomic_benchmarks as gb
from attngen_keras.data.containers import (
    CROP_MODES,
    EncodedSplit,
    GenomicDataset,
    check_lengths,
    pad_tokens,
)
from attngen_keras.data.errors import DataError, SequenceTooLongError
from attngen_keras.files import plural

# what detect_source returns; "table_dir" and "fasta_split_dirs" are directory
# forms of "table" and "fasta" (load_raw_splits reports them as those)
KINDS = (
    "genomic_benchmarks_name", "interval_list", "full_sequence_dir",
    "table", "fasta", "table_dir", "fasta_split_dirs",
)  # fmt: skip
# 3: a table's `name` column is read as the record id (cached splits held "line N")
# 4: records without an id are named by their file line also after empty lines
# 5: a lone CR ends a line; tabs in FASTA sequence lines dropped; label and length checks
_READER_VERSION = "5"
# memory-mapped caches: 2 added the label warnings to the stored meta
_MEMMAP_VERSION = "2"
# `load_dataset(memory_map="auto")` memory-maps CSV/TSV sources larger than this.
MEMORY_MAP_MIN_BYTES = 256 * 2**20


def resolve_data_paths(data):
    """`--data` items with every existing path made absolute (`class=path` keeps its class).

    Names (Genomic Benchmarks datasets) and paths that do not exist are kept
    as given. Symbolic links are not followed: a FASTA file's class is its
    file stem, which the link's own name defines.

    Example:

    >>> import tempfile
    >>> fasta = Path(tempfile.mkdtemp()) / "human.fa"
    >>> _ = fasta.write_text(">s1\\nACGT\\n")
    >>> relative = os.path.relpath(fasta)
    >>> resolve_data_paths([f"human={relative}", "demo_human_or_worm"]) == [
    ...     f"human={os.path.abspath(relative)}", "demo_human_or_worm"]
    True
    """
    items = [str(d) for d in (data if isinstance(data, (list, tuple)) else [data])]
    resolved = []
    for item in items:
        label, path = readers.class_and_path(item)
        if Path(path).exists():
            absolute = os.path.abspath(path)
            item = absolute if label is None else f"{label}={absolute}"
        resolved.append(item)
    return resolved


def resolve_sources(data, references=None):
    """`(data, references)` of a run, sweep or search with their paths made absolute
    (`resolve_data_paths`), as they are stored and compared: settings stored before paths
    were stored absolute are read relative to the working directory. No references stay none.

    Example:

    >>> resolve_sources("demo_human_or_worm")
    (['demo_human_or_worm'], None)
    """
    if references:
        references = resolve_data_paths([references])[0]
    return resolve_data_paths(data), references


def detect_source(data):
    """Returns `(kind, paths)` for a `--data` value (a path, a name, or a list).

    Kinds: `genomic_benchmarks_name`, `interval_list` (dir with
    `metadata.yaml`), `full_sequence_dir` (`{train,test}/<class>/*.txt`),
    `table` (CSV/TSV files), `table_dir` (a dir of them), `fasta` (files,
    one per class, or a dir of them), `fasta_split_dirs` (FASTA files in
    `train/` and `test/` subdirs).
    """
    items = [str(d) for d in (data if isinstance(data, (list, tuple)) else [data])]
    if not items:
        raise DataError("no --data given")
    if len(items) > 1:
        paths = [Path(readers.class_and_path(item)[1]) for item in items]
        for path in paths:
            if not path.exists():
                raise DataError("no such file or directory", path)
            _check_data_file(path, several=True)
        suffixes = {readers.base_suffix(path) for path in paths}
        if suffixes <= set(readers.TABLE_FILE_SUFFIXES):
            return "table", items
        if suffixes <= set(readers.FASTA_SUFFIXES):
            return "fasta", items
        raise DataError(
            f"cannot combine these inputs ({', '.join(items)}): give several CSV/TSV "
            "files (one per split) or several FASTA files (one per class)"
        )
    item = items[0]
    path = Path(item)
    if path.exists() and not path.is_dir():
        _check_data_file(path)
    if not path.exists():
        label, labelled_path = readers.class_and_path(item)
        if label is not None and Path(labelled_path).exists():
            return "fasta", items
        known = gb.known_datasets()
        if item in known:
            return "genomic_benchmarks_name", items
        raise DataError(
            "no such file or directory, and not a Genomic Benchmarks dataset name "
            f"(known names: {', '.join(known)})",
            item,
        )
    if path.is_file():
        if readers.base_suffix(path) in readers.TABLE_FILE_SUFFIXES:
            return "table", items
        raise DataError(
            "a single FASTA file has no classes: give one FASTA file per class "
            "(--data pos.fa neg.fa) or a CSV with seq,label columns (sequences without "
            "labels: explain/perturb --sequences FILE, or attngen predict)",
            path,
        )
    return _detect_directory(path), items


_KNOWN_FILE_TYPES = (
    "expected .csv, .tsv or .txt (tab-separated) tables, or .fa, .fasta, .fna or .fas FASTA; "
    "optionally gzipped"
)


def _check_data_file(path, several=False):
    """A `DataError` for a `--data` path that is not a file of a known type (`several`: one of
    several items, which must all be files)."""
    if path.is_dir():
        if several:
            raise DataError(
                "is a directory: several --data items must be files (CSV/TSV files, one per "
                "split, or FASTA files, one per class); give a directory alone",
                path,
            )
        return
    if not path.is_file():
        raise DataError(
            "not a regular file (a pipe or a device?): save the data to a file first "
            f"({_KNOWN_FILE_TYPES})",
            path,
        )
    suffix = readers.base_suffix(path)
    if suffix not in readers.TABLE_FILE_SUFFIXES and suffix not in readers.FASTA_SUFFIXES:
        raise DataError(f"unrecognized file type ({_KNOWN_FILE_TYPES})", path)


def _detect_directory(path):
    if (path / "metadata.yaml").exists():
        return "interval_list"
    split_dirs = [p for p in path.iterdir() if p.is_dir() and p.name in readers.SPLIT_ALIASES]
    if split_dirs:
        if any(child.is_dir() for d in split_dirs for child in d.iterdir()):
            return "full_sequence_dir"
        if any(
            readers.base_suffix(f) in readers.FASTA_SUFFIXES
            for d in split_dirs
            for f in d.iterdir()
        ):
            return "fasta_split_dirs"
    files = sorted(p for p in path.iterdir() if p.is_file())
    tables = [p.name for p in files if readers.base_suffix(p) in readers.TABLE_SUFFIXES]
    fasta = [p.name for p in files if readers.base_suffix(p) in readers.FASTA_SUFFIXES]
    if tables and fasta:
        raise DataError(
            f"holds both CSV/TSV files ({_some(tables)}) and FASTA files ({_some(fasta)}): "
            "give the files you mean as --data items",
            path,
        )
    if tables:
        return "table_dir"
    if fasta:
        return "fasta"
    raise DataError(
        "unrecognized directory layout: expected metadata.yaml (interval list), "
        "{train,test}/<class>/*.txt (full sequences), CSV/TSV files or FASTA files (a .txt "
        "table is read when given as a file, not from a directory)",
        path,
    )


def _some(names, most=3):
    """`a, b, c and 2 more`."""
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def load_raw_splits(data, references=None, cache_dir=None, show_progress=True, min_classes=2):
    """Parses any supported source into `{split: RawSplit}` (cached); FASTA per class needs `min_classes`.

    Returns:
        `(splits, kind, description)`.
    """
    kind, items = detect_source(data)
    description = " ".join(items)
    if cache_dir is not None:
        cache_lib.make_cache_dir(cache_dir)

    if kind == "genomic_benchmarks_name":
        root = Path(cache_dir or cache_lib.default_cache_dir()) / "genomic_benchmarks"
        full = root / items[0]
        if not (full / "train").is_dir():
            full = gb.download_named(items[0], root)
        return _cached_full_sequence_dir(full, cache_dir, show_progress), kind, description

    if kind == "interval_list":
        directory = Path(items[0])
        _, inputs = gb.interval_list_inputs(directory, references)
        key = cache_lib.fingerprint(
            inputs, extra=f"interval_list|{_READER_VERSION}|{directory.resolve()}"
        )

        def interval_file(split, label):
            return str(directory / split / f"{label}.csv.gz")

        def build():
            print(
                f"cutting the {directory.name} intervals from the references with "
                "genomic_benchmarks (once; the result is cached)",
                file=sys.stderr,
            )
            workdir = Path(cache_dir or cache_lib.default_cache_dir())
            workdir.mkdir(parents=True, exist_ok=True)
            full = gb.build_full_sequences(directory, references, workdir)
            try:
                return readers.read_full_sequence_dir(full, show_progress, interval_file)
            finally:
                shutil.rmtree(Path(full).parent, ignore_errors=True)

        splits, _ = cache_lib.cached(cache_dir, key, build, description)
        return splits, kind, description

    if kind == "full_sequence_dir":
        return (
            _cached_full_sequence_dir(Path(items[0]), cache_dir, show_progress),
            kind,
            description,
        )

    if kind in ("table", "table_dir"):
        files = _table_files(kind, items)
        key = cache_lib.fingerprint(files, extra=f"table|{_READER_VERSION}|{files}")
        splits, _ = cache_lib.cached(
            cache_dir, key, lambda: readers.read_tables(files), description
        )
        return splits, "table", description

    # FASTA, per class (files or a directory), optionally in split directories
    split_dirs = kind == "fasta_split_dirs"
    paths = [readers.class_and_path(i)[1] for i in items]
    if kind == "fasta" and len(paths) > 1:
        _warn_identical_files(items)
    key = cache_lib.fingerprint(paths, extra=f"fasta|{_READER_VERSION}|{items}")
    splits, _ = cache_lib.cached(
        cache_dir,
        key,
        lambda: readers.read_fasta_per_class(items, split_dirs, min_classes),
        description,
    )
    return splits, "fasta", description


def _warn_identical_files(items):
    """Warns when two classes' FASTA files are the same file or have the same bytes."""
    import hashlib

    files = [(label, Path(path)) for label, path in map(readers.fasta_class_and_path, items)]
    files = [(label, path) for label, path in files if path.is_file()]
    digests = {}
    for _label, path in files:
        size = path.stat().st_size
        same_size = [
            other for other in files if other[1] != path and other[1].stat().st_size == size
        ]
        if not same_size:
            continue
        digest = hashlib.sha256()
        with open(path, "rb") as handle:  # in blocks: a large file is never read whole
            while block := handle.read(1 << 20):
                digest.update(block)
        digests[path] = digest.hexdigest()
    seen = {}
    for label, path in files:
        key = digests.get(path)
        if key is None:
            continue
        if key in seen:
            other_label, other_path = seen[key]
            warnings.warn(
                f"{other_path} (class {other_label!r}) and {path} (class {label!r}) have identical content: "
                "the classes cannot be told apart and a model trained on them stays at chance; check --data",
                stacklevel=3,
            )
        else:
            seen[key] = (label, path)


def _warn_length_outliers(raw, description):
    """Warns when a few very long sequences set the padded length of all (training gets much slower).

    The padded length is the longest sequence; when it exceeds twice the
    95th percentile of the lengths, the warning names the longest record and
    suggests `--length` with `--crop`.
    """
    lengths = np.concatenate([split.lengths for split in raw.values() if len(split)])

    def longest_record():
        longest = int(lengths.max())
        for split in raw.values():
            if len(split) and int(split.lengths.max()) == longest:
                index = int(split.lengths.argmax())
                return f"record {str(split.ids[index])!r}" + (
                    f" in {split.files[split.file_index[index]]}" if split.files else ""
                )

    message = _length_outlier_message(lengths, longest_record, description)
    if message:
        warnings.warn(message, stacklevel=3)


# the most padding an inferred length may impose: longest / typical (95th percentile) length
MAX_INFERRED_PADDING = 100


def _length_outlier_message(lengths, longest_record, description):
    """The warning of `_warn_length_outliers` for these `lengths`, or None; `longest_record()`
    names the longest record. Past `MAX_INFERRED_PADDING` times the typical length it is a
    `DataError` instead (a length given explicitly is not checked)."""
    if len(lengths) < 20:
        return None
    typical = int(np.percentile(lengths, 95))
    longest = int(lengths.max())
    if longest <= 2 * max(typical, 1):
        return None
    outliers = int((lengths > 2 * typical).sum())
    ratio = longest / max(typical, 1)
    found = (
        f"{description}: {outliers} of {len(lengths)} sequences are more than twice the typical length "
        f"(95% are <= {typical:,} nt; the longest, {longest_record()}, has {longest:,} nt)"
    )
    advice = f"pass --length {typical} with --crop left|center|right to crop the long ones"
    if ratio > MAX_INFERRED_PADDING:
        # e.g. a chromosome left among short sequences: padding to it would exhaust memory
        raise DataError(
            f"{found}: padding every sequence to {longest:,} would be about {ratio:.0f}x the work; "
            f"{advice}, or --length {longest} to pad to it anyway"
        )
    return (
        f"{found}: every sequence is padded to {longest:,}, about {ratio:.0f}x the work; {advice}"
    )


def _cached_full_sequence_dir(root, cache_dir, show_progress):
    key = cache_lib.fingerprint(
        [root], extra=f"full_sequence_dir|{_READER_VERSION}|{Path(root).resolve()}"
    )
    splits, _ = cache_lib.cached(
        cache_dir, key, lambda: readers.read_full_sequence_dir(root, show_progress), str(root)
    )
    return splits


def load_dataset(
    data,
    references=None,
    *,
    length=None,
    crop=None,
    val_fraction=0.1,
    test_fraction=0.2,
    seed=0,
    class_names=None,
    cache_dir="default",
    show_progress=True,
    carve=True,
    memory_map="auto",
):
    """Loads any supported DNA classification source, ready for training.

    Args:
        data: a Genomic Benchmarks dataset name, an interval-list directory
            (with `references`), a full-sequence directory, CSV/TSV file(s)
            with `seq` and `label` columns, or FASTA files (one per class), or
            a list of such files. The kind is detected automatically.
        references: directory with the reference genomes of an interval list.
        length: fixed length; default the longest sequence. Shorter sequences
            are right-padded (padding is all-zero one-hot and never counts as
            a position); longer ones are an error unless `crop` is set.
        crop: `"left"`, `"center"` or `"right"`: which part of a too-long
            sequence to keep.
        val_fraction: fraction of train carved out (stratified, seeded) as
            the validation split when the source has none.
        test_fraction: fraction carved out as the test split when the source
            has no split of its own (one CSV, FASTA per class).
        seed: seed of the carving.
        class_names: fix the class order (e.g. of a trained run); by default
            the sorted class names of the train split (numerically sorted
            when all are integers).
        cache_dir: where parsed sources are cached; `"default"` is
            `$ATTNGEN_CACHE` or `~/.cache/attngen`, `None` disables it.
        show_progress: show a progress bar while parsing many files.
        carve: carve test/val splits as described above. With `False` (for
            evaluating a trained model on other data) a source without splits
            keeps all its records in one split named `all`, no validation
            split is carved, and no train split is required.
        memory_map: for CSV/TSV and FASTA-per-class sources, read the files
            in chunks and keep the tokens in memory-mapped `.npy` files in
            the cache (memory stays flat in the data size; see
            `cache.scan_tables` and `cache.scan_fasta`). `"auto"`
            does so for files of more than `MEMORY_MAP_MIN_BYTES` in all;
            `True` always (needs a cache directory), `False` never. The
            splits, tokens, labels and ids are the same either way.

    Returns:
        A `GenomicDataset` with `train`, `val` (if any) and `test` splits.

    Raises:
        DataError: for every kind of bad input, naming file and record.

    Example:

    >>> import tempfile
    >>> table = Path(tempfile.mkdtemp()) / "examples.csv"
    >>> rows = [f"{'ACGT' * 5},a" if i % 2 else f"{'TTGA' * 4},b" for i in range(40)]
    >>> _ = table.write_text("seq,label\\n" + "\\n".join(rows) + "\\n")
    >>> ds = load_dataset(str(table), cache_dir=None, show_progress=False)
    >>> ds.class_names, ds.length, {name: len(split) for name, split in ds.splits.items()}
    (['a', 'b'], 20, {'train': 28, 'test': 8, 'val': 4})
    """
    if cache_dir == "default":
        cache_dir = cache_lib.default_cache_dir()
    if cache_dir is not None:
        cache_lib.make_cache_dir(cache_dir)
    if not 0.0 <= val_fraction < 1.0 or not 0.0 < test_fraction < 1.0:
        raise ValueError("val_fraction must be in [0, 1) and test_fraction in (0, 1)")
    # known classes (a trained run's): one FASTA of one class is data to score, e.g. known positives
    min_classes = 1 if class_names is not None else 2
    if memory_map and cache_dir is not None:
        kind, items = detect_source(data)
        if kind in ("table", "table_dir", "fasta", "fasta_split_dirs"):
            if kind in ("table", "table_dir"):
                files = _table_files(kind, items)
                scan = functools.partial(cache_lib.scan_tables, files, show_progress=show_progress)
                reader = f"table-memmap|{_READER_VERSION}|{_MEMMAP_VERSION}|{files}"
            else:
                sources = readers.fasta_sources(items, kind == "fasta_split_dirs", min_classes)
                files = [path for _, _, path in sources]
                scan = functools.partial(cache_lib.scan_fasta, sources, show_progress=show_progress)
                reader = f"fasta-memmap|{_READER_VERSION}|{_MEMMAP_VERSION}|{sources}"
            size = sum(Path(f).stat().st_size for f in files if Path(f).is_file())
            if memory_map is True or size > MEMORY_MAP_MIN_BYTES:
                if kind == "fasta" and len(files) > 1:
                    _warn_identical_files(items)
                return _load_memory_mapped(
                    files, reader, scan, " ".join(items), cache_dir, length=length, crop=crop,
                    val_fraction=val_fraction, test_fraction=test_fraction, seed=seed,
                    class_names=class_names, carve=carve,
                    kind="table" if kind.startswith("table") else "fasta",
                )  # fmt: skip
    elif memory_map is True:
        raise ValueError("memory_map=True needs a cache directory")
    raw, kind, description = load_raw_splits(
        data, references, cache_dir, show_progress, min_classes
    )
    raw = dict(raw)
    if carve:
        if "all" in raw:
            everything = raw.pop("all")
            keep, carved = readers.stratified_split(everything.labels, test_fraction, seed)
            raw["train"], raw["test"] = everything.subset(keep), everything.subset(carved)
        if "train" not in raw:
            raise DataError(f"no train split found (found: {sorted(raw)})", description)
        if "val" not in raw and val_fraction > 0:
            keep, carved = readers.stratified_split(raw["train"].labels, val_fraction, seed)
            raw["val"], raw["train"] = raw["train"].subset(carved), raw["train"].subset(keep)
    _drop_empty_splits(raw, description, carve, stacklevel=3)

    if class_names is None:
        # The train split defines the classes; without one (carve=False), all splits.
        labelled = [raw["train"]] if "train" in raw else list(raw.values())
        class_names = _sorted_classes(np.unique(np.concatenate([s.labels for s in labelled])))
        if len(class_names) < 2:
            raise DataError(f"need at least two classes, found only {class_names}", description)
    class_names = [str(c) for c in class_names]
    if length is None:
        _warn_length_outliers(raw, description)
        length = int(max(int(split.lengths.max()) for split in raw.values() if len(split)))
    if crop is None:  # one error that counts the too-long records of every split
        order = sorted(raw, key=lambda n: (["train", "val", "test"] + [n]).index(n))
        check_lengths({name: raw[name] for name in order}, length)
    splits = {}
    for name, split in raw.items():
        labels = _label_indices(split, class_names, name)
        tokens = pad_tokens(split, int(length), crop, name)
        splits[name] = EncodedSplit(tokens=tokens, labels=labels, ids=split.ids)
    _warn_label_problems(raw, class_names, description)  # once the labels are known to be classes
    return GenomicDataset(
        class_names=class_names, length=int(length), splits=splits,
        source=description, kind=kind,
    )  # fmt: skip


# Labels that are missing values in most tables (compared case-insensitively).
MISSING_LABELS = frozenset({"na", "n/a", "nan", "null", "none", "?", "-"})


def _warn_label_problems(raw, class_names, description):
    """Warns of labels that look like missing values and of classes absent from a split."""
    counts = {}
    for name, split in raw.items():
        labels, numbers = np.unique(np.asarray(split.labels).astype(str), return_counts=True)
        counts[name] = dict(zip(labels.tolist(), numbers.tolist()))
    for message in label_problem_messages(counts, class_names, description):
        warnings.warn(message, stacklevel=4)


def label_problem_messages(counts, class_names, description):
    """Messages on labels that look like missing values, classes that differ only in case or are
    the same number written differently (`1`, `1.0`), and classes absent from val or test.

    Args:
        counts: split name -> {label: number of sequences}.
        class_names: the dataset's classes.
        description: the data source, named in each message.

    Returns:
        list of str (empty when all is well).
    """
    totals = {}
    for split_counts in counts.values():
        for name, count in split_counts.items():
            totals[name] = totals.get(name, 0) + int(count)
    messages = []
    for name in class_names:
        if name.strip().lower() in MISSING_LABELS and totals.get(name):
            messages.append(
                f"{description}: label {name!r} ({totals[name]} sequences) looks like a missing "
                "value; it is read as a class of its own"
            )
    folded = {}
    for name in class_names:
        folded.setdefault(name.strip().casefold(), []).append(name)
    for group in folded.values():
        if len(group) > 1:
            listed = ", ".join(f"{name!r} ({totals.get(name, 0)} sequences)" for name in group)
            messages.append(
                f"{description}: classes {listed} differ only in case: each is a class of its own"
            )
    as_numbers = {}
    for name in class_names:
        number = _as_number(name)
        if number is not None:
            as_numbers.setdefault(number, []).append(name)
    for group in as_numbers.values():
        if len(group) > 1:
            listed = ", ".join(f"{name!r} ({totals.get(name, 0)} sequences)" for name in group)
            messages.append(
                f"{description}: classes {listed} are the same number written differently: "
                "each is a class of its own"
            )
    for split_name in ("val", "test"):
        present = {name for name, count in counts.get(split_name, {}).items() if count}
        if not present:
            continue
        absent = [name for name in class_names if name not in present]
        if absent:
            listed = ", ".join(f"{name!r} ({totals.get(name, 0)} in all)" for name in absent)
            messages.append(
                f"{description}: the {split_name} split has no sequences of class {listed}"
            )
    return messages


def _as_number(label):
    """`label` read as a number (`"1.0"` -> 1.0), or None."""
    try:
        number = float(label)
    except ValueError:
        return None
    return None if number != number else number  # NaN is no number to compare


def _drop_empty_splits(splits, description, carve, stacklevel):
    """Removes empty splits from `splits` (name -> sized) with a warning; an empty train is an error."""
    for name in [n for n, split in splits.items() if len(split) == 0]:
        if name == "train":
            raise DataError("the train split is empty", description)
        warnings.warn(
            f"{description}: the {name} split is empty (too few sequences per class "
            f"to carve it); continuing without it",
            stacklevel=stacklevel,
        )
        del splits[name]
    if carve and "test" not in splits:
        # (said by every command that loads the data, not only train: no train-only advice)
        warnings.warn(
            f"{description}: no test split (the splits are {', '.join(sorted(splits))}; a test "
            "split is carved only from a source without splits of its own)",
            stacklevel=stacklevel,
        )


def _sorted_classes(names):
    names = [str(n) for n in names]
    if all(n.lstrip("-").isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)


def _label_indices(split, class_names, split_name):
    lookup = {name: i for i, name in enumerate(class_names)}
    unknown = sorted(str(u) for u in set(np.unique(split.labels)) - set(lookup))
    if unknown:
        first = int(np.flatnonzero(split.labels == unknown[0])[0])
        raise DataError(
            f"label/class mismatch: the {split_name} split has class(es) {unknown} "
            f"that are not among the classes {class_names}",
            split.files[split.file_index[first]] if split.files else None,
            str(split.ids[first]),
        )
    return np.asarray([lookup[label] for label in split.labels], dtype=np.int32)


def _table_files(kind, items):
    if kind == "table_dir":
        return sorted(
            str(p) for p in Path(items[0]).iterdir()
            if p.is_file() and readers.base_suffix(p) in readers.TABLE_SUFFIXES
        )  # fmt: skip
    return list(items)


def _load_memory_mapped(
    files, reader, scan, description, cache_dir, *, length, crop, val_fraction, test_fraction,
    seed, class_names, carve, kind,
):  # fmt: skip
    """`load_dataset` for CSV/TSV or FASTA files, with memory-mapped token arrays (same splits, same
    order). `scan(flat_path)` reads the files (`cache.scan_tables` or `cache.scan_fasta`);
    `reader` names it in the cache key."""
    options = [length, crop, val_fraction, test_fraction, seed, class_names, carve]
    key = cache_lib.fingerprint(files, extra=f"{reader}|{options}")
    directory = cache_lib.memmap_dir(cache_dir, key)
    if directory.exists():
        try:
            opened, meta = cache_lib.load_memmap_splits(directory)
            return _memmap_dataset(opened, meta, description, kind)
        except cache_lib.CacheError as error:
            warnings.warn(f"{error}; rebuilding it", stacklevel=3)
            shutil.rmtree(directory, ignore_errors=True)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = directory.parent / f".{directory.name}.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        meta = _build_memmap_splits(
            scan, description, staging, length=length, crop=crop, val_fraction=val_fraction,
            test_fraction=test_fraction, seed=seed, class_names=class_names, carve=carve,
        )  # fmt: skip
        try:
            os.replace(staging, directory)
        except OSError:  # another process finished the same cache first
            if not directory.exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    opened, meta = cache_lib.load_memmap_splits(directory, verify=False)
    return _memmap_dataset(opened, meta, description, kind)


def _memmap_dataset(opened, meta, description, kind):
    for message in meta.get("warnings", []):  # found when the cache was built: on every load
        warnings.warn(message, stacklevel=4)
    splits = {
        name: EncodedSplit(tokens=tokens, labels=labels, ids=ids)
        for name, (tokens, labels, ids) in opened.items()
    }
    return GenomicDataset(
        class_names=meta["class_names"], length=int(meta["length"]), splits=splits,
        source=description, kind=kind, info={"memory_mapped": True},
    )  # fmt: skip


def _build_memmap_splits(
    scan_files, description, staging, *, length, crop, val_fraction, test_fraction, seed,
    class_names, carve,
):  # fmt: skip
    """Scans the files (`scan_files(flat_path)`) into `staging` and writes each split's arrays
    there; returns the meta."""
    if crop is not None and crop not in CROP_MODES:
        raise ValueError(f"crop must be one of {CROP_MODES} or None, got {crop!r}")
    scan = scan_files(staging / "flat.tmp")
    names = cache_lib.TableScan.SPLIT_NAMES
    present = [name for code, name in enumerate(names) if (scan.splits == code).any()]
    # Row indices as int32 where they fit (4 bytes a record, not 8); the
    # intermediate index arrays are dropped as soon as they are used.
    row_type = np.int32 if len(scan.splits) < 2**31 else np.int64
    index = {
        name: np.flatnonzero(scan.splits == names.index(name)).astype(row_type, copy=False)
        for name in present
    }
    codes = scan.labels  # sorted like the label names: the carving matches the in-memory one
    if carve:
        if "all" in index:
            everything = index.pop("all")
            keep, carved = readers.stratified_split(codes[everything], test_fraction, seed)
            index["train"], index["test"] = everything[keep], everything[carved]
            del everything, keep, carved
        if "train" not in index:
            raise DataError(f"no train split found (found: {sorted(index)})", description)
        if "val" not in index and val_fraction > 0:
            train = index["train"]
            keep, carved = readers.stratified_split(codes[train], val_fraction, seed)
            index["val"], index["train"] = train[carved], train[keep]
            del train, keep, carved
    _drop_empty_splits(index, description, carve, stacklevel=5)
    if class_names is None:
        labelled = [index["train"]] if "train" in index else list(index.values())
        found = np.unique(np.concatenate([codes[rows] for rows in labelled]))
        class_names = _sorted_classes([scan.label_names[c] for c in found])
        if len(class_names) < 2:
            raise DataError(f"need at least two classes, found only {class_names}", description)
    class_names = [str(c) for c in class_names]
    lengths = _chunked_lengths(scan.offsets)
    warned = []
    if length is None:
        rows_used = np.concatenate(list(index.values()))
        used = lengths[rows_used]

        def longest_record(scan=scan, rows_used=rows_used, used=used):
            row = int(rows_used[int(used.argmax())])
            return f"record {_scan_id(scan, row)!r} in {scan.file_of(row)}"

        message = _length_outlier_message(used, longest_record, description)
        warned = [message] if message else []
        del rows_used, used
        length = int(max(int(lengths[rows].max()) for rows in index.values()))
    length = int(length)
    counts = {
        name: {
            scan.label_names[code]: int(count)
            for code, count in enumerate(np.bincount(codes[rows], minlength=len(scan.label_names)))
            if count
        }
        for name, rows in index.items()
    }
    warned += label_problem_messages(counts, class_names, description)
    lookup = {name: i for i, name in enumerate(class_names)}
    to_class = np.array([lookup.get(name, -1) for name in scan.label_names], dtype=np.int32)
    # utf-8 bytes >= characters: wide enough for every id
    id_width = max(1, int(_chunked_lengths(scan.id_offsets).max()) if len(scan.labels) else 1)
    meta = {"class_names": class_names, "length": length, "source": description, "splits": {},
            "warnings": warned}  # fmt: skip
    for name, rows in index.items():
        labels = to_class[codes[rows]]
        unknown = np.flatnonzero(labels < 0)
        if unknown.size:
            missing = sorted({scan.label_names[c] for c in codes[rows[unknown]]})
            first = int(rows[np.flatnonzero(codes[rows] == scan.label_names.index(missing[0]))[0]])
            raise DataError(
                f"label/class mismatch: the {name} split has class(es) {missing} "
                f"that are not among the classes {class_names}",
                scan.file_of(first),
                _scan_id(scan, first),
            )
        too_long = np.flatnonzero(lengths[rows] > length)
        if too_long.size and crop is None:
            first = int(rows[too_long[0]])
            raise SequenceTooLongError(
                lengths[first],
                length,
                f"{plural(too_long.size, 'such record')}: {too_long.size} in {name}",
                scan.file_of(first),
                _scan_id(scan, first),
            )
        meta["splits"][name] = {"n": len(rows), "sha256": _write_memmap_split(
            staging, name, scan, rows, labels, length, crop, id_width
        )}  # fmt: skip
    del scan
    (staging / "flat.tmp").unlink()
    for suffix in (".ids", ".offsets", ".id_offsets"):
        (staging / f"flat.tmp{suffix}").unlink()
    cache_lib.write_memmap_meta(staging, meta)
    return meta


def _chunked_lengths(offsets, chunk=1 << 20):
    """int32 `diff(offsets)` of memory-mapped offsets, read in chunks (their pages released)."""
    lengths = np.empty(len(offsets) - 1, np.int32)
    for first in range(0, len(lengths), chunk):
        lengths[first : first + chunk] = np.diff(offsets[first : first + chunk + 1])
        cache_lib.release_pages(offsets)
    return lengths


def _scan_id(scan, row):
    return bytes(scan.ids_flat[scan.id_offsets[row] : scan.id_offsets[row + 1]]).decode()


def _write_memmap_split(staging, name, scan, rows, labels, length, crop, id_width, chunk=8192):
    """Writes `<name>.{tokens,labels,ids}.npy` chunk by chunk; returns their SHA-256s."""
    from numpy.lib.format import open_memmap

    tokens = open_memmap(staging / f"{name}.tokens.npy", "w+", np.uint8, (len(rows), length))
    ids = open_memmap(staging / f"{name}.ids.npy", "w+", f"<U{id_width}", (len(rows),))
    token_digest, id_digest = cache_lib.hashlib.sha256(), cache_lib.hashlib.sha256()
    for first in range(0, len(rows), chunk):
        part = rows[first : first + chunk]
        block = cache_lib.gather_ragged(scan.flat, scan.offsets, part, length, crop, alphabet.PAD)
        tokens[first : first + len(part)] = block
        token_digest.update(block.tobytes())
        raw = cache_lib.gather_ragged(scan.ids_flat, scan.id_offsets, part, id_width)
        decoded = np.char.decode(raw.view(f"S{id_width}").reshape(-1), "utf-8").astype(
            f"<U{id_width}"
        )
        ids[first : first + len(part)] = decoded
        id_digest.update(decoded.tobytes())
        for array in (scan.flat, scan.ids_flat, scan.offsets, scan.id_offsets, tokens, ids):
            cache_lib.release_pages(array)
    tokens.flush()
    ids.flush()
    del tokens, ids
    np.save(staging / f"{name}.labels.npy", labels.astype(np.int32))
    labels_digest = cache_lib.sha256_array(labels.astype(np.int32))
    return [token_digest.hexdigest(), labels_digest.hexdigest(), id_digest.hexdigest()]
