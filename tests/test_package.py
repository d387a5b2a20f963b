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


@pytest.mark.parametrize(
    "imports",
    [
        "import attngen_keras\nimport keras",  # the README example: Keras imported after the package
        "import keras\nimport attngen_keras",
        "import attngen_keras.data\nimport keras",  # attngen_keras.data imports TensorFlow, which imports Keras
    ],
)
def test_load_model_works_after_import_attngen_keras(saved_model, imports):
    names = _registered_in_source()
    assert "attngen>ValidPositions" in names and "attngen>SaliencyMask" in names
    script = f"""
import json
{imports}
model = keras.saving.load_model({str(saved_model)!r})
registered = [n for n in {names!r} if keras.saving.get_registered_object(n) is None]
print("RESULT" + json.dumps({{"name": model.name, "missing": registered}}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
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
