"""Random access to a reference FASTA (pysam's `FastaFile`, htslib faidx) for variants and Beam workers.

A plain or bgzip FASTA is read in place; its `.fai` (and `.gzi`) index is
used when it lies beside it, else built in a temporary directory (so a
read-only reference works). A gzip (not bgzip) FASTA cannot be read at
random, and faidx cannot index a record whose lines differ in length: such a
FASTA is rewritten once to a temporary plain file with 60-column lines, with
a one-line note on stderr.
"""

import atexit
import hashlib
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from attngen_keras.data.errors import DataError, missing_file_error
from attngen_keras.files import is_stale_tag, process_tag

_TEMP = {}


def compression(path):
    """`"bgzip"`, `"gzip"` or `"plain"`."""
    with open(path, "rb") as handle:
        head = handle.read(18)
    if head[:2] != b"\x1f\x8b":
        return "plain"
    return "bgzip" if len(head) >= 14 and head[3] & 4 and head[12:14] == b"BC" else "gzip"


_TEMP_PREFIX = "attngen-reference-"


def temp_dir():
    """This process's directory for temporary rewritten inputs (indexes, plain copies), removed at exit.

    Its name holds the process's `HOST-PID` tag: the first call removes the
    directories of killed processes of this host (a plain copy of a genome
    is gigabytes).
    """
    if "dir" not in _TEMP:
        remove_stale_temp_dirs()
        prefix = f"{_TEMP_PREFIX}{process_tag()}."
        _TEMP["dir"] = Path(tempfile.mkdtemp(prefix=prefix))
    return _TEMP["dir"]


def remove_stale_temp_dirs(parent=None):
    """Removes the `temp_dir`s that killed processes of this host left in `parent` (default: the
    system's temporary directory)."""
    parent = Path(parent or tempfile.gettempdir())
    for path in parent.glob(f"{_TEMP_PREFIX}*.*"):
        tag = path.name[len(_TEMP_PREFIX) :].rpartition(".")[0]
        if tag and path.is_dir() and is_stale_tag(tag):
            shutil.rmtree(path, ignore_errors=True)


def remove_temp_dir():
    """Removes this process's `temp_dir`, if it made one (the next call of `temp_dir` makes a new one)."""
    directory = _TEMP.pop("dir", None)
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


atexit.register(remove_temp_dir)


def random_access_path(path, quiet=False):
    """`(fasta, fai, gzi)` paths pysam can open at random, with the index built.

    A plain-gzip FASTA, or one whose lines are not all of one length within
    a record (which faidx cannot index), is first rewritten once to a
    temporary plain FASTA with 60-column lines (one stderr note says so).
    """
    import pysam

    path = Path(path)
    if not path.is_file():
        raise missing_file_error(path)
    kind = compression(path)
    key = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16]
    if kind == "gzip":
        return _normalized(path, key, "gzip (not bgzip), so it cannot be read at random", quiet)
    fai = Path(f"{path}.fai")
    gzi = Path(f"{path}.gzi") if kind == "bgzip" else None
    if fai.exists() and (gzi is None or gzi.exists()):
        if kind == "plain":
            check_index(path, fai)
            return str(path), str(fai), None
        older = older_index(path, fai, gzi)
        if older is None:
            return str(path), str(fai), str(gzi)
        if not quiet:
            print(
                f"attngen: note: {path}: its index {older} is older than it (made before it "
                "changed, or copied before it): indexing it afresh in a temporary directory "
                "(run samtools faidx again to avoid this)",
                file=sys.stderr,
            )
    fai = temp_dir() / f"{key}.fai"
    gzi = temp_dir() / f"{key}.gzi" if kind == "bgzip" else None
    if not fai.exists():
        options = ["--fai-idx", str(fai)] + (["--gzi-idx", str(gzi)] if gzi else [])
        messages = _CapturedStderr()
        try:
            with messages:
                pysam.faidx(str(path), *options)
        except (OSError, ValueError, pysam.utils.SamtoolsError):
            fai.unlink(missing_ok=True)
            return _normalized(path, key, "not indexable by faidx (lines of unequal length)", quiet)
        duplicate = _DUPLICATE.search(messages.text)
        if duplicate:  # faidx indexes the first record of a name and ignores the others
            fai.unlink(missing_ok=True)
            raise DataError("duplicate record name in the FASTA", path, duplicate["name"])
    return str(path), str(fai), (str(gzi) if gzi else None)


_GAP_BYTES = 1 << 20


def older_index(path, *indexes):
    """The first of a bgzip FASTA's own index files (`.fai`, `.gzi`) older than the FASTA, or None.

    Its records cannot be checked against the compressed file without
    decompressing it, so, as htslib does for the indexes of BAM and VCF files
    (where it warns), the modification times are compared: a FASTA rewritten
    after `samtools faidx` would be read at stale offsets, giving windows of
    the wrong sequence. Such an index is not used (a copy that wrote the
    index before the FASTA only costs a fresh index).
    """
    written = Path(path).stat().st_mtime
    return next((str(index) for index in indexes if Path(index).stat().st_mtime < written), None)


def check_index(path, fai):
    """Checks a plain FASTA's own `.fai` against it: between the end of each indexed record's
    sequence and the next one's, only that record's header line.

    `samtools faidx` indexes the first record of a name and skips the others (with a warning that
    is long gone when its index is used): a duplicate name, or an index older than the FASTA,
    is a `DataError` here, not a variant scored on the wrong sequence. Reads only the header
    lines (one seek per record).
    """
    entries = []
    try:
        with open(fai) as lines:
            for line in lines:
                name, length, offset, line_bases, line_width = line.split("\t")[:5]
                entries.append((int(offset), name, int(length), int(line_bases), int(line_width)))
    except (ValueError, UnicodeDecodeError):
        raise DataError("not a FASTA index (.fai): run samtools faidx again", fai) from None
    entries.sort()
    names = {entry[1] for entry in entries}
    stale = DataError(f"the index {fai} does not match the FASTA (made before it changed?): "
                      "remove it or run samtools faidx again", path)  # fmt: skip
    size = Path(path).stat().st_size
    with open(path, "rb") as handle:
        end = 0
        for offset, name, length, line_bases, line_width in [*entries, (size, None, 0, 1, 1)]:
            if offset < end or offset > size or line_bases < 1:
                raise stale
            handle.seek(end)
            gap = handle.read(min(offset - end, _GAP_BYTES))
            lines = [line.strip() for line in gap.split(b"\n") if line.strip()]
            headers = [line for line in lines if line.startswith(b">")]
            expected = [] if name is None else [name]
            found = [(h[1:].split() or [b""])[0].decode("utf-8", "replace") for h in headers]
            if found != expected or len(lines) != len(headers) or offset - end > _GAP_BYTES:
                extra = next((n for n in found if n != name), None)
                if extra in names:
                    raise DataError("duplicate record name in the FASTA", path, extra)
                raise stale
            full, rest = divmod(length, line_bases)
            end = offset + full * line_width + (rest + line_width - line_bases if rest else 0)
            end = min(end, size)  # (the last line may lack its line break)
    return True


def _normalized(path, key, reason, quiet):
    """A temporary plain copy of a FASTA with 60-column lines, indexed."""
    import pysam

    from attngen_keras.genome.windows import iter_fasta_pieces

    plain = temp_dir() / f"{key}.fa"
    if not plain.exists():
        partial = plain.with_suffix(".partial")
        with open(partial, "wb") as target:
            carry = b""
            noted = quiet
            for kind, value in iter_fasta_pieces(path):
                if kind == "record":
                    if not noted:  # once the file reads as a FASTA: its own errors come alone
                        noted = True
                        print(
                            f"attngen: note: {path}: FASTA is {reason}: rewriting it to a "
                            "temporary file for random access (use a bgzip FASTA with lines of "
                            "one length per record to avoid this)",
                            file=sys.stderr,
                        )
                    if carry:
                        target.write(carry + b"\n")
                    carry = b""
                    target.write(b">" + value.encode() + b"\n")
                    continue
                carry += value
                cut = len(carry) - len(carry) % 60
                for i in range(0, cut, 60):
                    target.write(carry[i : i + 60] + b"\n")
                carry = carry[cut:]
            if carry:
                target.write(carry + b"\n")
        partial.replace(plain)
    fai = Path(f"{plain}.fai")
    if not fai.exists():
        try:
            pysam.faidx(str(plain))
        except (OSError, ValueError, pysam.utils.SamtoolsError) as error:
            raise DataError(f"cannot index the FASTA ({error})", path) from None
    return str(plain), str(fai), None


# htslib's warning when it indexes a FASTA with two records of one name
_DUPLICATE = re.compile(r'Ignoring duplicate sequence "(?P<name>[^"]*)"')


class _CapturedStderr:
    """Sends fd 2 (htslib's messages) to a temporary file inside the block; `text` holds them after."""

    text = ""

    def __enter__(self):
        sys.stderr.flush()
        self._saved = os.dup(2)
        self._file = tempfile.TemporaryFile()
        os.dup2(self._file.fileno(), 2)

    def __exit__(self, *exc):
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        self.text = self._file.read().decode("utf-8", "replace")
        self._file.close()
        return False


def open_fasta(paths):
    """A `pysam.FastaFile` of `random_access_path`'s result."""
    import pysam

    fasta, fai, gzi = paths
    try:
        return pysam.FastaFile(fasta, filepath_index=fai, filepath_index_compressed=gzi)
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read the indexed FASTA ({error})", fasta) from None
