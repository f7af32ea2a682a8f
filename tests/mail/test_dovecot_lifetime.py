"""The test dovecot lives no longer than the process that started it: a test run killed
with SIGKILL (no teardown, no atexit) leaves no dovecot process and no open port behind."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.mail.servers import DOVECOT

pytestmark = pytest.mark.slow

STARTER = """
import sys, time
from tests.mail.servers import Dovecot
server = Dovecot.start()
print(server.process.pid, server.port, server.root, flush=True)
time.sleep(600)
"""


def descendants(pid: int) -> set[int]:
    out: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = (task / "children").read_text().split()
            except OSError:
                continue
            for k in map(int, kids):
                if k not in out:
                    out.add(k)
                    todo.append(k)
    return out


def alive(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return b"dovecot" in cmdline and state != "Z"


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def test_a_killed_test_process_takes_its_dovecot_along() -> None:
    if not os.access(DOVECOT, os.X_OK):
        pytest.skip("dovecot is not installed")
    root = Path(__file__).resolve().parents[2]
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER],
        cwd=root,
        env={**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{root / 'src'}"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert starter.stdout is not None
        pid, number, where = starter.stdout.readline().split()
        master, port, files = int(pid), int(number), Path(where)
        # The master is the starter's own child, running in the foreground, with its
        # processes below it.
        assert master in descendants(starter.pid)
        time.sleep(0.5)  # let it spawn its processes
        family = {master} | descendants(master)
        assert len(family) > 1 and listening(port)
        os.kill(starter.pid, signal.SIGKILL)
        starter.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (any(map(alive, family)) or listening(port)):
            time.sleep(0.1)
        assert not [p for p in family if alive(p)], "dovecot outlived the test process"
        assert not listening(port)
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait()
        if "files" in locals():
            shutil.rmtree(files, ignore_errors=True)  # no teardown ran to remove them
