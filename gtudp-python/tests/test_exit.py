"""Interpreter exit with sockets left open neither hangs nor crashes."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).parent / "scripts"
SCRIPT = SCRIPTS / "exit_without_cleanup.py"


def test_exit_releases_blocked_readers_and_ends_the_background_threads():
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["exiting", "reader released"], done.stdout


@pytest.mark.parametrize("host", [[], ["localhost"]], ids=["ip", "name"])
def test_exit_with_daemon_threads_sending_ends_cleanly(host):
    # The abort it guards against came at nearly every exit: a few runs
    # suffice, each bounded. Sending to a name, each send looks it up
    # (blocking, with the GIL released): that too must not be under way as
    # the interpreter finalizes.
    for _ in range(5):
        done = subprocess.run(
            [sys.executable, str(SCRIPTS / "exit_with_daemon_senders.py"), *host],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["exiting"], done.stdout


def test_exit_with_daemon_threads_logging_through_gtudp_ends_cleanly():
    # A thread parked inside a logging handler's lock hung every exit: a
    # few runs, each bounded (a hang fails with TimeoutExpired).
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, str(SCRIPTS / "exit_with_logging_senders.py")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["exiting"], done.stdout


def test_exit_while_a_drain_goes_on_in_the_background_prints_nothing():
    # `cleanup(timeout)` left the drain to a background thread, which the
    # exit refused to resume: its `Closed` was printed as an exception in
    # thread "gtudp cleanup". A few runs: the thread and the exit race.
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, str(SCRIPTS / "exit_during_drain.py")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["draining"], done.stdout
        assert done.stderr == "", done.stderr
