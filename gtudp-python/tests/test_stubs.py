"""The type stubs and annotations match the module (CI runs the same check
in `.ci/run`); skipped where mypy is not installed."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_stubtest_finds_the_stubs_match_the_module(tmp_path):
    pytest.importorskip("mypy.stubtest")
    # From an empty folder (mypy leaves its cache there), so `gtudp` is the
    # installed package.
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "gtudp"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
