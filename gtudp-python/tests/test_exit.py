"""Interpreter exit with sockets left open neither hangs nor crashes."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parent / "scripts" / "exit_without_cleanup.py"


def test_exit_releases_blocked_readers_and_ends_the_background_threads():
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["exiting", "reader released"], done.stdout
