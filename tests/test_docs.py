"""The committed command reference is what the CLI's parser prints (so the guides' links work on GitHub)."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(
    sys.version_info[:2] != (3, 11),
    reason="argparse formats help differently across Python versions; the file is generated on 3.11, "
    "the pinned version",
)
def test_committed_cli_reference_matches_the_parser():
    pytest.importorskip(
        "mkdocs", reason='the docs extra is not installed: pip install -e ".[docs]"'
    )
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    committed = (ROOT / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    assert committed == hooks.cli_reference(), (
        "docs/reference/cli.md is stale: run `python docs/hooks.py`"
    )
