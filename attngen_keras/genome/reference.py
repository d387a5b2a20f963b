"""Random access to a reference FASTA (pysam's `FastaFile`, htslib faidx) for variants and Beam workers.

A plain or bgzip FASTA is read in place; its `.fai` (and `.gzi`) index is
used when it lies beside it, else built in a temporary directory (so a
read-only reference works). A gzip (not bgzip) FASTA cannot be read at
random: it is decompressed once to a temporary plain file, with a one-line
note suggesting `bgzip` to avoid it.
"""

import atexit
import gzip
import hashlib
import shutil
import sys
import tempfile
from pathlib import Path

from attngen_keras.data.errors import DataError

_TEMP = {}


def compression(path):
    """`"bgzip"`, `"gzip"` or `"plain"`."""
    with open(path, "rb") as handle:
        head = handle.read(18)
    if head[:2] != b"\x1f\x8b":
        return "plain"
    return "bgzip" if len(head) >= 14 and head[3] & 4 and head[12:14] == b"BC" else "gzip"


def _temp_dir():
    if "dir" not in _TEMP:
        _TEMP["dir"] = Path(tempfile.mkdtemp(prefix="attngen-reference-"))
        atexit.register(shutil.rmtree, _TEMP["dir"], True)
    return _TEMP["dir"]


def random_access_path(path, quiet=False):
    """`(fasta, fai, gzi)` paths pysam can open at random (decompressing a plain-gzip FASTA once)."""
    path = Path(path)
    if not path.is_file():
        raise DataError("no such file", path)
    kind = compression(path)
    key = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16]
    if kind == "gzip":
        plain = _temp_dir() / f"{key}.fa"
        if not plain.exists():
            if not quiet:
                print(
                    f"attngen: {path}: gzip (not bgzip) FASTA: decompressing it to a temporary file for "
                    "random access (compress it with `bgzip` to avoid this)",
                    file=sys.stderr,
                )
            partial = plain.with_suffix(".partial")
            with gzip.open(path, "rb") as source, open(partial, "wb") as target:
                shutil.copyfileobj(source, target, 1 << 22)
            partial.replace(plain)
        path, kind = plain, "plain"
    fai = Path(f"{path}.fai")
    gzi = Path(f"{path}.gzi") if kind == "bgzip" else None
    if not fai.exists() or (gzi is not None and not gzi.exists()):
        fai = _temp_dir() / f"{key}.fai"
        gzi = _temp_dir() / f"{key}.gzi" if kind == "bgzip" else None
    return str(path), str(fai), (str(gzi) if gzi else None)


def open_fasta(paths):
    """A `pysam.FastaFile` of `random_access_path`'s result (builds the index if needed)."""
    import pysam

    fasta, fai, gzi = paths
    try:
        if not Path(fai).exists() or (gzi and not Path(gzi).exists()):
            options = ["--fai-idx", fai] + (["--gzi-idx", gzi] if gzi else [])
            pysam.faidx(fasta, *options)
        return pysam.FastaFile(fasta, filepath_index=fai, filepath_index_compressed=gzi)
    except (OSError, ValueError, pysam.utils.SamtoolsError) as error:
        raise DataError(f"cannot index or read the FASTA ({error})", fasta) from None
