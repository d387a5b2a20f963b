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
