"""`kefu serve --workers N`: N web processes on one port, each with a listening socket of its
own (SO_REUSEPORT), supervised by the process that started them.

Why not uvicorn's own supervisor: it hands one listening socket to every process, and the
process that is waiting in accept() first takes the next connection. A burst of new
keep-alive connections (an integration's connection pool opening) then mostly lands in one
process — 30 of 32 in two of three tries here — and the other processes stay idle for the
connections' lifetime. With a socket per process the kernel picks the socket by a hash of
the connection's addresses, so connections spread evenly over the processes.

The supervisor restarts a web process that dies, stops them all on SIGINT or SIGTERM (each
finishes its requests, as uvicorn does on its own), and gives up when a process cannot
start at all (a broken configuration would fail the same way on every restart).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from typing import Any

STOP_SECONDS = 30.0  # how long a process may take to finish its requests on shutdown


def reuse_port_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT") and os.name == "posix"


def _listening_socket(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _web_process(host: str, port: int, log_level: str, ready: Any) -> None:
    """One web process (the spawned child): its own socket, its app, then uvicorn on it."""
    import uvicorn

    sock = _listening_socket(host, port)
    sock.listen(2048)
    config = uvicorn.Config(
        "kefu.app:served_app",
        factory=True,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
    )
    config.load()  # builds the app: what fails here would fail on every restart too
    ready.set()
    uvicorn.Server(config).run(sockets=[sock])


class Supervisor:
    def __init__(self, host: str, port: int, workers: int, log_level: str = "warning") -> None:
        self.host, self.port, self.workers, self.log_level = host, port, workers, log_level
        self._context = multiprocessing.get_context("spawn")
        self._stop = threading.Event()
        self.processes: list[tuple[BaseProcess, Any]] = []  # each with its "app built" event

    def _start_one(self) -> tuple[BaseProcess, Any]:
        ready = self._context.Event()
        process = self._context.Process(
            target=_web_process, args=(self.host, self.port, self.log_level, ready)
        )
        process.start()
        return process, ready

    def check_port(self) -> None:
        """Raise OSError unless the web processes can listen on the port (free, or shared
        with SO_REUSEPORT by this user's own processes): said once, not by every child."""
        _listening_socket(self.host, self.port).close()

    def run(self) -> int:
        """Serve until SIGINT or SIGTERM; the exit status for the command."""
        previous = {
            sig: signal.signal(sig, lambda *_: self._stop.set())
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        status = 0
        try:
            self.processes = [self._start_one() for _ in range(self.workers)]
            while not self._stop.wait(0.5):
                for i, (process, ready) in enumerate(self.processes):
                    if process.is_alive():
                        continue
                    process.join()
                    if not ready.is_set():
                        status = process.exitcode or 1
                        self._stop.set()  # it cannot start: neither will its replacement
                        break
                    self.processes[i] = self._start_one()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return status

    def _stop_all(self) -> None:
        for process, _ in self.processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for process, _ in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
