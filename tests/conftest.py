import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker more than the cores this process may use (`--maxprocesses` caps it).

    Much of a test's time is single-threaded (tracing TensorFlow functions,
    waiting on a subprocess), so a third worker keeps 2 cores busier: the
    fast suite took 382 s against 398 s with two (one quiet pair of runs on
    this project's 2-core machine; 383 s against 417 s in a second, busier
    pair).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cores or 1) + 1


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


# The test files that take longest (`pytest --durations=0`, summed per file), longest first.
# They are collected (and so, with --dist loadfile --no-loadscope-reorder, handed to the
# workers) before every other file: a long file started last would leave one core idle
# while the other finishes it. A file missing from this list only runs later.
LONGEST_FIRST = (
    "test_training.py", "test_cli.py", "test_export.py", "test_tuning.py", "test_robustness.py",
    "test_resume.py", "test_attngen_variants.py", "test_explain.py", "test_streaming.py",
    "test_models.py", "test_faithfulness.py", "test_package.py",
)  # fmt: skip


def _file_rank(item):
    name = item.path.name
    return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(config, items):
    items.sort(key=_file_rank)  # stable: each file's tests keep their order
    if config.getoption("--run-slow") or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow end-to-end test: run with --run-slow (or -m slow)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def shared_path(*parts):
    """A path in ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path} is absent (see ../shared/data/README.md)")
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNGEN_CACHE", str(tmp_path / "attngen_cache"))
