"""Files the commands read and write: checked up front, written atomically, errors naming the file.

Every command that writes a file or directory checks the path first (so a
typo costs seconds, not a finished computation) and reports a problem as one
`FileError` naming the path: an existing file that `--force` was not given
for, a file where a directory is needed (or the reverse), a directory that
cannot be created or written, a JSON file that is corrupt or truncated.
Files are written to a temporary name and renamed into place, so a reader
never sees half a file.
"""

import contextlib
import glob
import json
import math
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

# Hidden directories inside an output directory where `staged_files` writes a result.
STAGING_PREFIX = ".attngen-partial-"


class FileError(ValueError):
    """A file or directory that cannot be read or written as asked (`PATH: problem`)."""

    def __init__(self, path, problem):
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")


def _first_existing_ancestor(path):
    for parent in Path(path).absolute().parents:
        if parent.exists():
            return parent
    return None


def check_output_dir(path, create=True):
    """Checks (and by default creates) a directory that outputs go into; returns it as a `Path`."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileError(path, "is a file, not a directory")
    if not path.exists():
        ancestor = _first_existing_ancestor(path)
        if ancestor is not None and not ancestor.is_dir():
            raise FileError(ancestor, f"is a file, not a directory (needed for {path})")
        if not create:
            return path
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise FileError(
                path, f"cannot create the directory ({error.strerror or error})"
            ) from None
    _probe_writable(path)
    return path


def _probe_writable(directory):
    """Creates and removes a hidden file in `directory`: the only test that a file can be made there.

    `os.access` is not enough: it answers yes to root everywhere, and knows
    nothing of read-only or special file systems (`/sys`, `/proc`) or full quotas.
    """
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".attngen-write-check-"):
            pass
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        raise FileError(directory, f"directory is not writable ({reason})") from None


def reproducible_gzip(raw, compresslevel=9):
    """A gzip writer onto the binary file `raw` with a fixed header (no time stamp, no file
    name), so that the same content gives the same bytes.

    Example:

    >>> import io
    >>> out = io.BytesIO()
    >>> with reproducible_gzip(out) as compressed:
    ...     _ = compressed.write(b"ACGT")
    >>> out.getvalue()[4:8]  # the time stamp
    b'\\x00\\x00\\x00\\x00'
    """
    import gzip

    return gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=compresslevel)


def check_output_file(path, force=False):
    """Checks that `path` can be written (parents created) and is not an existing file, unless `force`.

    Returns `path` as a `Path`.
    """
    path = Path(path)
    if path.is_dir():
        raise FileError(path, "is a directory; give a file name")
    if path.exists() and not force:
        raise FileError(path, "already exists; use --force to replace it, or choose another name")
    check_output_dir(path.parent if str(path.parent) else Path("."))
    return path


def _same_file(a, b):
    """Whether paths `a` and `b` name one file: the same resolved path, or (both existing) the same inode."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def check_distinct_files(inputs, outputs):
    """Refuses, before any work, an output that is also an input or another output.

    Args:
        inputs: `{option: path}` (or `(option, path)` pairs) of the files read; None paths are skipped.
        outputs: the same of the files written.

    Raises:
        FileError: naming the path and both options, e.g.
            `x.fa: --out names the same file as --fasta, which it would overwrite`.

    Example:

    >>> check_distinct_files({"--fasta": "g.fa"}, {"--out": "t.bedGraph", "--tsv": "w.tsv"})
    """
    inputs = [(k, v) for k, v in dict(inputs).items() if v is not None]
    outputs = [(k, v) for k, v in (outputs.items() if isinstance(outputs, dict) else outputs)
               if v is not None]  # fmt: skip
    for i, (option, path) in enumerate(outputs):
        for other, source in inputs:
            if _same_file(path, source):
                raise FileError(
                    path, f"{option} names the same file as {other}, which it would overwrite"
                )
        for other, earlier in outputs[:i]:
            if _same_file(path, earlier):
                raise FileError(path, f"{option} and {other} name the same file")


def unique_path(path):
    """`path` if free, else `stem.2.suffix`, `stem.3.suffix`, ... (the first free one)."""
    path = Path(path)
    if not path.exists():
        return path
    number = 2
    while True:
        candidate = path.with_name(f"{path.stem}.{number}{path.suffix}")
        if not candidate.exists():
            return candidate
        number += 1


def plural(count, singular, plural_form=None):
    """`"1 window"`, `"2 windows"`: a count and its noun for messages.

    Example:

    >>> plural(1, "allele"), plural(3, "allele"), plural(2, "record or region", "records or regions")
    ('1 allele', '3 alleles', '2 records or regions')
    """
    return f"{count} {singular if count == 1 else plural_form or singular + 's'}"


def some_names(names, most=3):
    """The first `most` names, quoted, for messages (`...` when there are more).

    Example:

    >>> some_names(["chr1", "chr2", "chr3", "chr4"])
    "'chr1', 'chr2', 'chr3', ..."
    """
    names = list(names)
    return ", ".join(repr(name) for name in names[:most]) + (", ..." if len(names) > most else "")


def _process_umask():
    umask = os.umask(0o022)  # reading the umask means setting it: done once, at import
    os.umask(umask)
    return umask


_UMASK = _process_umask()


def default_file_mode():
    """The mode a new file gets from `open` under the umask (`mkstemp` alone gives 0600)."""
    return 0o666 & ~_UMASK


def write_text_atomic(path, text):
    """Writes `text` to `path` through a temporary file in the same directory and a rename."""
    path = Path(path)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, default_file_mode())
        with os.fdopen(handle, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def pid_alive(pid):
    """Whether a process `pid` runs on this machine (one we may not signal counts as running)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except (PermissionError, OSError):
        return True
    return True


def process_tag():
    """`HOST-PID` of this process: names of work in progress that `is_stale_tag` can judge."""
    return f"{socket.gethostname()}-{os.getpid()}"


def is_stale_tag(tag):
    """Whether `HOST-PID` (see `process_tag`) names a process of this host that no longer runs.

    Another host's work (a shared file system) is never judged stale.
    """
    host, _, pid = tag.rpartition("-")
    return host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid))


def remove_stale(parent, prefix):
    """Removes the directories and files `parent/PREFIX<HOST-PID>` that killed processes of this host left."""
    for path in Path(parent).glob(f"{glob.escape(prefix)}*"):
        if not is_stale_tag(path.name[len(prefix) :]):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


_PARTIAL = ".partial-"
_PARTS = ".parts-"
# the names of `partial_path` and `parts_dir`: `.NAME.partial-HOST-PID`, `.NAME.parts-HOST-PID`
_TEMPORARY_NAME = re.compile(
    rf"^\.(?P<name>.+)(?:{re.escape(_PARTIAL)}|{re.escape(_PARTS)}).+-\d+$"
)


def partial_path(path):
    """`.NAME.partial-HOST-PID` beside `path`: where this process writes it before renaming it into place.

    Example:

    >>> partial_path(Path("out/t.bedGraph")).name.startswith(".t.bedGraph.partial-")
    True
    """
    return _hidden_beside(path, _PARTIAL)


def parts_dir(path):
    """`.NAME.parts-HOST-PID` beside `path`: a directory of pieces this process assembles into it.

    Example:

    >>> parts_dir(Path("out/t.bedGraph")).name.startswith(".t.bedGraph.parts-")
    True
    """
    return _hidden_beside(path, _PARTS)


def _hidden_beside(path, marker):
    """`.NAME{marker}HOST-PID` in the directory of `path`."""
    path = Path(path)
    return path.with_name(f".{path.name}{marker}{process_tag()}")


def user_path(path):
    """The path a user named, for a temporary name of this module's (`partial_path`,
    `parts_dir`); any other path unchanged.

    Example:

    >>> user_path(partial_path("out/t.bedGraph")) == str(Path("out/t.bedGraph"))
    True
    >>> user_path("out/.t.bedGraph.parts-my-host-12")
    'out/t.bedGraph'
    >>> user_path("out/.config.partial-2024"), user_path(".partial-x"), user_path("reads.fa.partial")
    ('out/.config.partial-2024', '.partial-x', 'reads.fa.partial')
    """
    path = Path(path)
    match = _TEMPORARY_NAME.match(path.name)
    return str(path.with_name(match["name"])) if match else str(path)


def remove_stale_partials(path):
    """Removes the `partial_path`s of `path` that killed processes of this host left."""
    path = Path(path)
    remove_stale(path.parent, f".{path.name}{_PARTIAL}")


def check_result_names(out, names):
    """Checks that no entry `names` of the directory `out` is in the way of a result file (a
    directory of that name, say), so that `staged_files` can move every new file in.

    Example:

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> (out / "summary.json").mkdir()
    >>> check_result_names(out, ["summary.json"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    attngen_keras.files.FileError: .../summary.json: is a directory, not a result file; move it away or choose another --out
    """
    for name in names:
        path = Path(out) / name
        if path.exists() and not path.is_file():
            kind = "a directory" if path.is_dir() else "not a regular file"
            raise FileError(
                path, f"is {kind}, not a result file; move it away or choose another --out"
            )


@contextlib.contextmanager
def staged_files(out):
    """A hidden directory inside `out` to write a result's files into, moved into `out` at the end.

    Until the block ends without an error, the files already in `out` are
    untouched; then each new file replaces its namesake by a rename (atomic
    per file, all of them within milliseconds). On an error, or a kill, the
    new files are discarded (a killed process's staging directory is removed
    by the next call). Files of `out` that the new result does not write are
    kept.

    Args:
        out: the output directory (created if needed).

    Example:

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "result"
    >>> with staged_files(out) as staging:
    ...     _ = (staging / "summary.json").write_text("{}")
    >>> sorted(p.name for p in out.iterdir())
    ['summary.json']
    """
    out = check_output_dir(out)
    remove_stale(out, STAGING_PREFIX)
    staging = out / f"{STAGING_PREFIX}{process_tag()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        for path in sorted(staging.iterdir()):
            if path.is_dir():
                raise FileError(path, "staged results must be files")
        # all or nothing: every new file can replace its namesake before any is moved in
        check_result_names(out, [path.name for path in staging.iterdir()])
        for path in sorted(staging.iterdir()):
            os.replace(path, out / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _finite_or_none(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(item) for item in value]
    return value


def json_text(value):
    """`value` as indented JSON, with NaN and infinities written as `null` (strict JSON readers refuse them).

    Example:

    >>> json_text({"auroc": float("nan"), "accuracy": 0.5}).split()
    ['{', '"auroc":', 'null,', '"accuracy":', '0.5', '}']
    """
    return json.dumps(_finite_or_none(value), indent=2, allow_nan=False)


def write_json_atomic(path, value):
    """Writes `value` as JSON (see `json_text`) through a temporary file and a rename."""
    write_text_atomic(path, json_text(value))


def read_json(path, what="file"):
    """A JSON file's content; a missing, unreadable or corrupt one is an `FileError` naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileError(path, f"{what} not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FileError(path, f"corrupt or truncated {what} (invalid JSON: {error})") from None
    except OSError as error:
        raise FileError(path, f"cannot read the {what} ({error.strerror or error})") from None
