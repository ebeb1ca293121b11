"""The Python examples of the documentation do what they say: the README's
example runs as written, and the migration guide shows the original's
example exactly as ``test_seed_example.py`` runs it."""

import re
import subprocess
import sys
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parents[2]
SEED_EXAMPLE = Path(__file__).parent / "scripts" / "seed_example.py"


def python_blocks(page: Path) -> List[str]:
    """The bodies of the page's ```python blocks, in order."""
    return re.findall(r"^```python\n(.*?)^```$", page.read_text(), re.S | re.M)


def test_the_readme_python_example_runs_as_written():
    [example] = python_blocks(ROOT / "README.md")
    result = subprocess.run(
        [sys.executable, "-c", example],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # It prints the message and where it came from.
    assert result.stdout.startswith("b'hello' ('127.0.0.1', "), result.stdout


def test_the_migration_guide_shows_the_tested_seed_example():
    assert SEED_EXAMPLE.read_text() in python_blocks(ROOT / "docs" / "migrating.md")
