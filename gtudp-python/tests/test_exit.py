"""Interpreter exit with sockets left open neither hangs nor crashes."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).parent / "scripts"


def exits_cleanly(script, *args, printed):
    """Runs `script` in a fresh interpreter (bounded: a hang fails with
    TimeoutExpired), checks that it exited 0 having printed the lines
    `printed`, and returns what it wrote to stderr."""
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == printed, done.stdout
    return done.stderr


def test_exit_releases_blocked_readers_and_ends_the_background_threads():
    exits_cleanly("exit_without_cleanup.py", printed=["exiting", "reader released"])


@pytest.mark.parametrize("host", [[], ["localhost"]], ids=["ip", "name"])
def test_exit_with_daemon_threads_sending_ends_cleanly(host):
    # The abort it guards against came at nearly every exit: a few runs
    # suffice, each bounded. Sending to a name, each send looks it up
    # (blocking, with the GIL released): that too must not be under way as
    # the interpreter finalizes.
    for _ in range(5):
        exits_cleanly("exit_with_daemon_senders.py", *host, printed=["exiting"])


def test_exit_with_daemon_threads_sending_and_a_slow_import_hook_ends_cleanly():
    # A gtudp call that imported as the interpreter exited (to look the
    # class of the `Closed` it raised up) took the GIL back inside the
    # extension once finalization had begun, now and then (once in CI).
    # The script's import hook makes that wait last until finalization, so
    # it aborted at every run: two suffice, each bounded.
    for _ in range(2):
        exits_cleanly("exit_with_slow_imports.py", printed=["exiting"])


def test_exit_with_daemon_threads_logging_through_gtudp_ends_cleanly():
    # A thread parked inside a logging handler's lock hung every exit: a
    # few runs, each bounded.
    for _ in range(3):
        exits_cleanly("exit_with_logging_senders.py", printed=["exiting"])


def test_exit_while_a_drain_goes_on_in_the_background_prints_nothing():
    # `cleanup(timeout)` left the drain to a background thread, which the
    # exit refused to resume: its `Closed` was printed as an exception in
    # thread "gtudp cleanup". A few runs: the thread and the exit race.
    for _ in range(3):
        stderr = exits_cleanly("exit_during_drain.py", printed=["draining"])
        assert stderr == "", stderr
