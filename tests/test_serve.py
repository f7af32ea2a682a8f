"""`kefu serve` as a newcomer runs it: a real process on a real port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_with_demo_data(tmp_path: Path):
    env = {
        **os.environ,
        "KEFU_DATABASE_URL": f"sqlite:///{tmp_path}/serve.db",
        "KEFU_DATA_DIR": str(tmp_path / "var"),
    }
    kefu = [sys.executable, "-m", "kefu.cli"]
    subprocess.run(
        [*kefu, "demo", "--customers", "300", "--tickets", "500"],
        env=env,
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    port = free_port()
    proc = subprocess.Popen(
        [*kefu, "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "kefu serve did not become ready"
            time.sleep(0.1)
        token = httpx.post(
            f"{base}/api/v1/auth/token", json={"username": "admin", "password": "kefu-demo-2026"}
        ).json()
        units = httpx.get(
            f"{base}/api/v1/units",
            params={"limit": 200},
            headers={"Authorization": f"Bearer {token['access_token']}"},
        ).json()
        assert any(u["name"] == "浙江省公司" for u in units["items"])
        assert len(units["items"]) >= 15
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc").exists(), reason="counts processes through /proc")
def test_serve_with_several_web_processes(tmp_path: Path):
    env = {
        **os.environ,
        "KEFU_DATABASE_URL": f"sqlite:///{tmp_path}/serve.db",
        "KEFU_DATA_DIR": str(tmp_path / "var"),
    }
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kefu.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 90  # two processes start at once on a busy machine
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "kefu serve --workers 2 did not become ready"
            time.sleep(0.1)
        # Both web processes answer (each builds its own app), supervised by the first.
        workers = [
            p
            for p in _children(proc.pid)
            if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()
        ]
        assert len(workers) == 2
        for _ in range(6):
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        # A burst of keep-alive connections (an integration's pool opening) is spread over
        # both processes, not left to whichever was waiting in accept() first.
        held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(32)]
        try:
            for conn in held:
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: kefu\r\n\r\n")
                assert conn.recv(4096).startswith(b"HTTP/1.1 200")
            per_process = [_connections_on(pid, port) for pid in workers]
        finally:
            for conn in held:
                conn.close()
        assert sum(per_process) == 32
        assert min(per_process) >= 4, per_process  # a fair split is 16/16; 4 or fewer: p<1e-5
        # A web process that dies is replaced; the port keeps answering meanwhile.
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while True:
            now = [
                p
                for p in _children(proc.pid)
                if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()
            ]
            if len(now) == 2 and workers[0] not in now:
                break
            assert time.monotonic() < deadline, f"no replacement for {workers[0]}: {now}"
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
            time.sleep(0.2)
        workers = now
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        assert proc.returncode == 0, proc.stdout.read().decode() if proc.stdout else ""
        assert not [p for p in workers if Path(f"/proc/{p}").exists()]  # none left behind


def _connections_on(pid: int, port: int) -> int:
    """Established TCP connections on local `port` whose socket the process holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            local_port = int(cols[1].rsplit(":", 1)[1], 16)
            if local_port == port and cols[3] == "01" and cols[9] in inodes:
                count += 1
    return count
