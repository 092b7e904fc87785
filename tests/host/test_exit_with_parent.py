"""host/exit_with_parent.py: a server started by a process that dies goes with it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

from relight_inpaint.host.comfy_server import EXIT_WITH_PARENT

STARTER = f"""
import subprocess, sys
child = subprocess.Popen([sys.executable, {str(EXIT_WITH_PARENT)!r}, str(__import__("os").getpid()),
                          "--", sys.executable, "-c", "import time; time.sleep(120)"])
print(child.pid, flush=True)
time = __import__("time"); time.sleep(120)
"""


def gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def only_child(pid: int, timeout: float = 30.0) -> int:
    """The one child `pid` has started, waited for (a busy machine may take seconds), not
    guessed after a fixed sleep."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError):
            children = open(f"/proc/{pid}/task/{pid}/children").read().split()
            if children:
                assert len(children) == 1, children
                return int(children[0])
        time.sleep(0.02)
    raise AssertionError(f"process {pid} started no command in {timeout} s")


@contextlib.contextmanager
def killed_at_the_end(pids: list[int]) -> Iterator[None]:
    """Whatever the test's outcome, none of these processes is left behind."""
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def test_the_command_stops_when_its_starter_is_killed() -> None:
    starter = subprocess.Popen([sys.executable, "-c", STARTER], stdout=subprocess.PIPE, text=True)
    pids = [starter.pid]
    with killed_at_the_end(pids):
        wrapper = int(starter.stdout.readline())
        pids.append(wrapper)
        command = only_child(wrapper)
        pids.append(command)

        starter.send_signal(signal.SIGKILL)  # no chance to clean up: the wrapper notices alone
        starter.wait()

        assert gone(command, 5.0), "the command outlived its starter"
        assert gone(wrapper, 5.0) or open(f"/proc/{wrapper}/stat").read().split()[2] == "Z"


@contextlib.contextmanager
def wrapped_sleep() -> Iterator[tuple[subprocess.Popen, int]]:
    """The wrapper, started by this test process around `sleep`, and the sleep's pid; both
    killed at the end whatever happened."""
    wrapper = subprocess.Popen(
        [sys.executable, str(EXIT_WITH_PARENT), str(os.getpid()), "--", "sleep", "120"]
    )
    pids = [wrapper.pid]
    with killed_at_the_end(pids):
        command = only_child(wrapper.pid)
        pids.append(command)
        yield wrapper, command
    wrapper.wait(timeout=15)


def test_a_terminated_wrapper_stops_its_command() -> None:
    with wrapped_sleep() as (wrapper, command):
        wrapper.terminate()
        wrapper.wait(timeout=15)
        assert gone(command, 5.0)


def test_a_killed_wrapper_takes_its_command_with_it() -> None:
    """Ray SIGKILLs a dying worker's direct children: the wrapper, not the server below it."""
    with wrapped_sleep() as (wrapper, command):
        wrapper.kill()
        wrapper.wait()
        assert gone(command, 5.0), "the command outlived its killed wrapper"
