"""The one exception type data loading raises for bad input."""


class DataError(ValueError):
    """Bad or missing input data, with the file and record it concerns.

    Args:
        problem: what is wrong, in words a user can act on.
        file: the file or directory concerned, if any.
        record: the record (FASTA id, CSV row, ...) concerned, if any.

    Example:

    >>> str(DataError("invalid letter 'X' at position 3", "a.fa", "seq1"))
    "a.fa: record 'seq1': invalid letter 'X' at position 3"
    """

    def __init__(self, problem, file=None, record=None):
        self.problem = problem
        self.file = None if file is None else str(file)
        self.record = record
        parts = []
        if self.file:
            parts.append(self.file)
        if record is not None:
            parts.append(f"record {record!r}")
        parts.append(problem)
        super().__init__(": ".join(parts))


class DownloadError(DataError):
    """A Genomic Benchmarks dataset that could not be downloaded (offline), saying how to provide it."""


class SequenceTooLongError(DataError):
    """A record longer than the length sequences are padded to, with advice on what to change.

    Args:
        longest: the record's length.
        length: the length allowed.
        counts: where such records are, e.g. `"3 such records: 2 in train, 1 in test"`.
        file: the file of the record, if any.
        record: the record's id, if any.
        advice: what the user can do; the default names `attngen train`'s options.
        length_name: how the message names the length (default `--length`).

    Example:

    >>> error = SequenceTooLongError(250, 200, "1 such record: 1 in train", "a.fa", "s1")
    >>> str(error.with_advice("shorten it"))
    "a.fa: record 's1': sequence of length 250 is longer than --length 200 (1 such record: 1 in train); shorten it"
    """

    TRAIN_ADVICE = "raise --length or choose --crop left|center|right"

    def __init__(self, longest, length, counts, file=None, record=None, advice=None,
                 length_name="--length"):  # fmt: skip
        self.longest, self.length, self.counts = int(longest), int(length), counts
        self.advice = self.TRAIN_ADVICE if advice is None else advice
        self.length_name = length_name
        super().__init__(
            f"sequence of length {self.longest} is longer than {length_name} {self.length} "
            f"({counts}); {self.advice}",
            file,
            record,
        )

    def with_advice(self, advice, length_name=None):
        """The same error with other advice (and a name for the length, e.g. "the run's --length")."""
        return SequenceTooLongError(
            self.longest, self.length, self.counts, self.file, self.record, advice,
            length_name or self.length_name,
        )  # fmt: skip


def missing_file_error(path, shown=None):
    """The `DataError` for an input `path` that is not a file: a directory, or nothing at all.

    Args:
        path: the path checked.
        shown: the name the message gives (default: `path`).

    Example:

    >>> str(missing_file_error("/"))
    '/: is a directory, not a file'
    """
    from pathlib import Path

    if Path(path).is_dir():
        return DataError("is a directory, not a file", shown or path)
    if Path(path).exists():  # a pipe, say (`--vcf <(bcftools view ...)`)
        return DataError("is not a regular file (a pipe?): give a file on disk", shown or path)
    return DataError("no such file", shown or path)
