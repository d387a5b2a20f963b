"""Root pytest configuration: doctest collection of `attngen_keras` (see pyproject.toml).

`pytest` runs with `--doctest-modules` over `attngen_keras`, which imports
every module of the package. A module that imports an optional extra that is
not installed (a third-party package, not one of ours) is left out of the
doctest collection, and the test summary says which and why; any other import
error fails the run as usual.
"""

import importlib
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

PACKAGE = Path(__file__).resolve().parent / "attngen_keras"
_left_out = {}


def pytest_ignore_collect(collection_path, config):
    path = Path(collection_path)
    if path.suffix != ".py" or PACKAGE not in path.parents:
        return None
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    module = ".".join(parts)
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as error:
        missing = (error.name or "").split(".")[0]
        if missing and missing != "attngen_keras":
            _left_out[module] = missing
            return True
        raise
    return None


def pytest_sessionfinish(session):
    # a pytest-xdist worker hands what it left out to the controller
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["attngen_left_out"] = dict(_left_out)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    _left_out.update(getattr(node, "workeroutput", {}).get("attngen_left_out", {}))


def pytest_terminal_summary(terminalreporter):
    for module, missing in sorted(_left_out.items()):
        terminalreporter.write_line(
            f"doctests not collected: {module} needs {missing}, which is not installed "
            "(an optional extra)"
        )
