"""`python exit_with_parent.py PID -- COMMAND...`: run COMMAND until it ends, or until the process
PID (the one that started this wrapper) is gone, then stop it.

A batch's Ray actor starts its own ComfyUI. Ray ends actors with SIGKILL (and a driver killed
hard takes its local Ray with it), so the actor cannot stop its server on the way out; the
server runs in its own session, out of reach of Ctrl-C. Without this watch, each lost actor
would leave a ComfyUI holding a GPU. Two ways out are covered: the starter dies (this wrapper
sees itself re-parented and stops COMMAND), or the wrapper itself is SIGKILLed (Ray kills a
dying worker's direct children): COMMAND was started with the kernel's parent-death signal
(Linux). Plain Python, no imports from the pack: it runs before anything is set up.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time

POLL_S = 0.5
PR_SET_PDEATHSIG = 1
GRACE_S = 10.0


def stop(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            child.kill()


def die_with_this_process(pid: int):
    """For Popen's preexec_fn (safe here: this wrapper has one thread): SIGTERM the child when
    the process that forked it dies, and exit if that happened before the request was made."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None

    def request() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != pid:
            os._exit(1)

    return request


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: exit_with_parent.py PID -- COMMAND...", file=sys.stderr)
        return 2
    parent = int(argv[0])
    child = subprocess.Popen(argv[2:], preexec_fn=die_with_this_process(os.getpid()))

    def forward(signum: int, frame: object) -> None:
        stop(child)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    while child.poll() is None:
        if os.getppid() != parent:  # re-parented: whoever started us is gone
            stop(child)
            break
        time.sleep(POLL_S)
    return child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
