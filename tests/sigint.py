"""Ctrl-C sent to a child Python process at a known point of its work, for the tests that
check an interruption lands at once: exit 130, "interrupted", no traceback.

In a child process of its own because SIGINT must reach the main thread of a process with
Python's own handler (pytest's workers may run with it blocked or ignored: the child's
code unblocks it and puts the handler back, see tests/test_cli_scripting.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time


def interrupt_child(args: list[str], *, ready: str = "ready", after: float = 0.5,
                    timeout: float = 5) -> tuple[int, str, float]:
    """Run ``python -c <args...>``, wait for its stdout line ``ready``, then ``after``
    seconds (inside the work to interrupt), and send SIGINT. Return its exit status, its
    stderr and the seconds from the signal to its exit; fail if it has not exited
    ``timeout`` seconds after the signal."""
    child = subprocess.Popen([sys.executable, "-c", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == f"{ready}\n"
        time.sleep(after)
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        try:
            _, err = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"Ctrl-C did not stop it within {timeout} s") from None
        took = time.monotonic() - sent
    finally:
        child.kill()
        child.wait()
    return child.returncode, err, took


def assert_interrupted(returncode: int, err: str) -> None:
    """The interruption landed and was handled: exit 130, "interrupted", nothing else."""
    assert returncode == 130, err
    assert "interrupted" in err, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
