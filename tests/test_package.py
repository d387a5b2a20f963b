"""`import attngen_keras` registers the Keras classes, as a user of the Python API meets it."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "attngen_keras"


def _registered_in_source():
    """`attngen>Name` of every class the package decorates with register_keras_serializable."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        for match in re.finditer(
            r"@keras\.saving\.register_keras_serializable\([^)]*\)\s*\nclass (\w+)", text
        ):
            names.add(f"attngen>{match.group(1)}")
    return sorted(names)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    from attngen_keras.models import build_attngen

    path = tmp_path_factory.mktemp("saved") / "model.keras"
    build_attngen(40, 2).save(path)
    return path


IMPORT_ORDERS = [
    "import attngen_keras\nimport keras",  # the README example: Keras imported after the package
    "import keras\nimport attngen_keras",
    "import attngen_keras.data\nimport keras",  # attngen_keras.data imports TensorFlow, which imports Keras
]


@pytest.fixture(scope="module")
def loaded_in_fresh_interpreters(saved_model):
    """What a fresh interpreter makes of the saved model after each import order.

    The three interpreters start together (each pays TensorFlow's start-up;
    on 2 cores they overlap), then each test reads its own outcome.
    """
    names = _registered_in_source()
    processes = {}
    for imports in IMPORT_ORDERS:
        script = f"""
import json
{imports}
model = keras.saving.load_model({str(saved_model)!r})
registered = [n for n in {names!r} if keras.saving.get_registered_object(n) is None]
print("RESULT" + json.dumps({{"name": model.name, "missing": registered}}))
"""
        processes[imports] = subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    outcomes = {}
    try:
        for imports, process in processes.items():
            stdout, stderr = process.communicate(timeout=300)
            outcomes[imports] = subprocess.CompletedProcess(
                process.args, process.returncode, stdout, stderr
            )
    finally:
        for process in processes.values():
            process.kill()
    return names, outcomes


@pytest.mark.parametrize("imports", IMPORT_ORDERS)
def test_load_model_works_after_import_attngen_keras(loaded_in_fresh_interpreters, imports):
    names, outcomes = loaded_in_fresh_interpreters
    assert "attngen>ValidPositions" in names and "attngen>SaliencyMask" in names
    result = outcomes[imports]
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT"))
    outcome = json.loads(line[len("RESULT") :])
    assert outcome == {"name": "attngen", "missing": []}


def test_cli_import_stays_free_of_keras():
    """`attngen --help` must not pay Keras' ~10 s import."""
    script = (
        "import sys, attngen_keras.cli; print('keras' in sys.modules, 'tensorflow' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_the_bundled_demo_sample_holds_each_window_once_in_its_documented_splits():
    import pandas as pd

    sample = pd.read_csv(PACKAGE / "demo_data" / "human_or_fungus_demo.csv.gz")
    assert len(sample) == 4000 and not sample["seq"].duplicated().any()
    assert not sample["id"].duplicated().any()
    assert sample.groupby(["split", "label"]).size().to_dict() == {
        ("test", "fungus"): 500, ("test", "human"): 500,
        ("train", "fungus"): 1500, ("train", "human"): 1500,
    }  # fmt: skip
    assert sample["seq"].str.fullmatch("[ACGT]{200}").all()
