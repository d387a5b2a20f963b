"""Genomic Benchmarks sources: dataset names and interval-list directories.

Only `genomic_benchmarks.loc2seq` and `genomic_benchmarks.data_check` are
imported (`dataset_getters` pulls in torch, `models.tf` tensorflow_addons).
"""

import contextlib
import io
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import pandas as pd
import yaml

from attngen_keras.data.errors import DataError, DownloadError
from attngen_keras.data.readers import open_text


def known_datasets():
    """Names of the datasets Genomic Benchmarks knows (no network needed)."""
    from genomic_benchmarks.data_check import list_datasets

    return sorted(list_datasets())


def read_metadata(directory):
    """Reads and checks `metadata.yaml` of an interval-list directory."""
    directory = Path(directory)
    path = directory / "metadata.yaml"
    try:
        metadata = yaml.safe_load(open_text(path))
    except yaml.YAMLError as error:
        raise DataError(f"malformed YAML ({error})", path) from None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("classes"), dict):
        raise DataError("expected a mapping with a 'classes' mapping", path)
    for name, spec in metadata["classes"].items():
        if not isinstance(spec, dict) or "url" not in spec:
            raise DataError(f"class {name!r} has no 'url' of its reference", path)
    return metadata


def reference_file_name(url):
    """The file name Genomic Benchmarks looks for in `cache_path` for `url`."""
    return str(url).split("/")[-1]


def interval_list_inputs(directory, references):
    """Checks an interval list and its references; returns the files it uses.

    Raises:
        DataError: no `--references`, a missing reference (naming the file
            expected), a missing or corrupt interval file.
    """
    directory = Path(directory)
    metadata = read_metadata(directory)
    needed = sorted({reference_file_name(c["url"]) for c in metadata["classes"].values()})
    if references is None:
        raise DataError(
            "this is a Genomic Benchmarks interval list; its sequences are cut from "
            f"reference genomes ({', '.join(needed)}): pass --references DIR holding them",
            directory,
        )
    references = Path(references)
    if not references.is_dir():
        raise DataError("--references is not a directory", references)
    files = [directory / "metadata.yaml"]
    for name in needed:
        if not (references / name).is_file():
            raise DataError(
                f"missing reference genome: expected the file {name} (named as in "
                f"metadata.yaml) in {references}",
                references / name,
            )
        files.append(references / name)
    for split in ("train", "test"):
        for name in metadata["classes"]:
            path = directory / split / f"{name}.csv.gz"
            try:
                frame = pd.read_csv(open_text(path), nrows=5)
            except (pd.errors.EmptyDataError, pd.errors.ParserError) as error:
                raise DataError(f"malformed interval file ({error})", path) from None
            missing = {"id", "region", "start", "end", "strand"} - set(frame.columns)
            if missing:
                raise DataError(f"interval file lacks columns {sorted(missing)}", path)
            files.append(path)
    return metadata, files


def build_full_sequences(directory, references, workdir, version=None):
    """Cuts the sequences of an interval list with Genomic Benchmarks, offline.

    Calls `download_dataset(..., use_cloud_cache=False, local_repo=True,
    cache_path=references)` into a fresh directory under `workdir` and
    returns the path of the full-sequence dataset it wrote.
    """
    from genomic_benchmarks.loc2seq import download_dataset

    metadata = read_metadata(directory)
    dest = Path(tempfile.mkdtemp(prefix="gb_fullseq_", dir=workdir))
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            return download_dataset(
                str(Path(directory).resolve()),
                version=metadata.get("version") if version is None else version,
                dest_path=dest,
                cache_path=str(Path(references).resolve()),
                use_cloud_cache=False,
                local_repo=True,
            )
    except ValueError as error:
        shutil.rmtree(dest, ignore_errors=True)
        raise DataError(
            f"Genomic Benchmarks could not cut the intervals from the references "
            f"in {references}: {error}",
            directory,
        ) from None
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def download_named(name, dest):
    """Downloads dataset `name` to `dest` with Genomic Benchmarks (needs network).

    Returns the full-sequence directory; raises DataError offline, saying how
    to provide the data instead.
    """
    from genomic_benchmarks.loc2seq import download_dataset

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    # Download next to the final place and rename: an interrupted download
    # never looks like a complete dataset.
    partial = Path(tempfile.mkdtemp(prefix=f".partial_{name}_", dir=dest))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            written = Path(download_dataset(name, dest_path=partial))
        final = dest / name
        shutil.rmtree(final, ignore_errors=True)
        os.replace(written, final)
        return final
    except Exception as error:  # network errors come from requests, urllib, gdown
        raise DownloadError(
            f"could not download Genomic Benchmarks dataset {name!r} "
            f"({type(error).__name__}: {error}). Without internet, provide the data "
            f"instead: --data <interval-list dir with metadata.yaml> --references "
            f"<dir with its FASTA genomes>, or --data <full-sequence dir "
            f"{{train,test}}/<class>/*.txt> (e.g. copied from a machine where "
            f"genomic_benchmarks.loc2seq.download_dataset({name!r}) ran), or put that "
            f"directory at {Path(dest) / name}",
        ) from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
