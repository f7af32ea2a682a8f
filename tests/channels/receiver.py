"""A real HTTP receiver on 127.0.0.1 for webhook and robot tests: a small threaded server
that records every request and, like a well-behaved receiver, processes each
Idempotency-Key once (duplicates are counted, not processed)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.status = 200
        self.delay = 0.0
        self.answer = b"ok"
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.seen: Counter[str] = Counter()
        self.processed: list[str] = []  # keys processed (once each)
        self._done: set[str] = set()
        self.on_request: Callable[[Receiver], None] | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def duplicates(self) -> int:
        """Requests that repeated a key the receiver had already accepted."""
        with self._lock:
            return sum(n - 1 for n in self.seen.values())

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def setup(self) -> None:
                super().setup()
                with receiver._lock:
                    receiver._connections.add(self.connection)

            def finish(self) -> None:
                with receiver._lock:
                    receiver._connections.discard(self.connection)
                super().finish()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                if receiver.delay:
                    time.sleep(receiver.delay)
                key = self.headers.get("Idempotency-Key") or ""
                with receiver._lock:
                    receiver.requests.append((self.path, dict(self.headers.items()), body))
                    receiver.seen[key] += 1
                    if receiver.status < 300 and key not in receiver._done:
                        receiver._done.add(key)
                        receiver.processed.append(key)
                    status, answer = receiver.status, receiver.answer
                if receiver.on_request:
                    receiver.on_request(receiver)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:  # kept-alive connections too: down is down
            for conn in list(self._connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(b) for _, _, b in self.requests]
