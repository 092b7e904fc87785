"""host/exit_with_parent.py: a server started by a process that dies goes with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

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


def test_the_command_stops_when_its_starter_is_killed() -> None:
    starter = subprocess.Popen([sys.executable, "-c", STARTER], stdout=subprocess.PIPE, text=True)
    wrapper = int(starter.stdout.readline())
    time.sleep(0.5)  # the wrapper has started its command
    children = open(f"/proc/{wrapper}/task/{wrapper}/children").read().split()
    assert len(children) == 1
    command = int(children[0])

    starter.send_signal(signal.SIGKILL)  # no chance to clean up: the wrapper notices alone
    starter.wait()

    assert gone(command, 5.0), "the command outlived its starter"
    assert gone(wrapper, 5.0) or open(f"/proc/{wrapper}/stat").read().split()[2] == "Z"


def wrapped_sleep() -> tuple[subprocess.Popen, int]:
    """The wrapper, started by this test process around `sleep`, and the sleep's pid."""
    wrapper = subprocess.Popen(
        [sys.executable, str(EXIT_WITH_PARENT), str(os.getpid()), "--", "sleep", "120"]
    )
    time.sleep(0.5)
    [command] = open(f"/proc/{wrapper.pid}/task/{wrapper.pid}/children").read().split()
    return wrapper, int(command)


def test_a_terminated_wrapper_stops_its_command() -> None:
    wrapper, command = wrapped_sleep()
    wrapper.terminate()
    wrapper.wait(timeout=15)
    assert gone(command, 5.0)


def test_a_killed_wrapper_takes_its_command_with_it() -> None:
    """Ray SIGKILLs a dying worker's direct children: the wrapper, not the server below it."""
    wrapper, command = wrapped_sleep()
    wrapper.kill()
    wrapper.wait()
    assert gone(command, 5.0), "the command outlived its killed wrapper"
