"""A careful HTTP POST for webhooks and robots.

- http and https only; redirects are not followed (a 3xx is the receiver's answer);
- SSRF: the host is resolved here and every address must be global (not private,
  loopback, link-local, multicast, reserved, CGNAT or unspecified), unless
  KEFU_WEBHOOK_ALLOW_PRIVATE_TARGETS allows it; the connection goes to the address that
  was checked (no second resolution a rebinding DNS could answer differently), while the
  Host header and TLS (SNI and certificate) use the name;
- every socket operation has KEFU_WEBHOOK_TIMEOUT_SECONDS, and the whole request ends by
  the caller's deadline; the answer is read up to KEFU_WEBHOOK_MAX_RESPONSE_BYTES;
- connections are kept alive per thread and address, so a busy receiver is not paying a
  handshake per event.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from kefu.channels.base import PermanentError, RetryableError


class UnsafeTarget(PermanentError):
    """The URL is not http(s) or points inside the network."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # with the query


def parse(url: str) -> Target:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise UnsafeTarget("only http and https URLs are delivered to")
    if not parts.hostname:
        raise UnsafeTarget("the URL names no host")
    if parts.username or parts.password:
        raise UnsafeTarget("credentials in the URL are refused")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeTarget("bad port") from exc
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port, path)


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(target: Target, allow_private: bool) -> list[str]:
    """The addresses to connect to; UnsafeTarget when any is not public (and that is not
    allowed), RetryableError when the name does not resolve (DNS may come back)."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise RetryableError(f"cannot resolve {target.host}: {exc}", unreachable=True) from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not allow_private:
        inside = [a for a in addresses if not is_public(a)]
        if inside:
            raise UnsafeTarget(f"{target.host} resolves to a non-public address ({inside[0]})")
    return addresses


def check_url(url: str, allow_private: bool) -> None:
    """For forms: refuse what delivery would refuse; a name that does not resolve now is
    accepted (delivery checks again)."""
    target = parse(url)
    with contextlib.suppress(RetryableError):
        resolve(target, allow_private)


class _Pinned(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedTLS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


_local = threading.local()


def _pool() -> dict[tuple[str, str, int, str], http.client.HTTPConnection]:
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    return pool


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    truncated: bool


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    max_response: int,
    allow_private: bool,
    deadline: float | None = None,
) -> Answer:
    """POST `body`; returns the answer, or raises RetryableError / PermanentError."""
    target = parse(url)
    addresses = resolve(target, allow_private)
    if deadline is not None:
        timeout = max(0.1, min(timeout, deadline - time.monotonic()))
    last: Exception | None = None
    for address in addresses:
        key = (target.scheme, target.host, target.port, address)
        for fresh in (False, True):
            pool = _pool()
            conn = None if fresh else pool.pop(key, None)
            reused = conn is not None
            if conn is None:
                cls = _PinnedTLS if target.scheme == "https" else _Pinned
                conn = cls(target.host, target.port, address, timeout)
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            try:
                conn.request("POST", target.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read(max_response + 1)
                truncated = len(data) > max_response
                if truncated or response.will_close:
                    conn.close()
                else:
                    response.read()  # drain (nothing left) so the connection can be reused
                    pool[key] = conn
                return Answer(response.status, data[:max_response], truncated)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                conn.close()
                last = exc
                if reused:
                    continue  # the receiver closed an idle kept-alive connection: once more
                raise RetryableError(f"connection lost: {exc}") from exc
            except ConnectionRefusedError as exc:
                conn.close()
                last = exc
                break  # next address
            except TimeoutError as exc:
                conn.close()
                raise RetryableError(f"timed out after {timeout:.0f} s") from exc
            except ssl.SSLError as exc:
                conn.close()
                raise RetryableError(f"TLS: {exc.reason or exc}") from exc
            except OSError as exc:
                conn.close()
                last = exc
                break
    raise RetryableError(f"cannot connect: {last}", unreachable=True)
