"""Real mail servers on 127.0.0.1 for the tests and the benchmark: Debian's dovecot for IMAP
(plain, STARTTLS and TLS, with a self-signed certificate made here) and aiosmtpd for SMTP.

Dovecot runs from a private directory with its own configuration, as the current user —
or, under root, with the mail processes as `nobody` (dovecot refuses to serve mail as root).
Each test makes its own IMAP user, so tests never see each other's mail.

Dovecot's life is tied to the process that started it (a pytest process or xdist worker,
the benchmark): its master runs in the foreground (`-F`) as our child, and the kernel sends
it SIGKILL when we die (Linux `PR_SET_PDEATHSIG`), however we die — a killed test run, a
crashed worker — and its own processes exit when their master is gone. A normal end stops
it at teardown, and at interpreter exit if teardown never ran.
"""

from __future__ import annotations

import atexit
import ctypes
import datetime as dt
import imaplib
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# Looked up here, in the parent: between fork and exec the child only calls it.
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def _tie_to(parent: int) -> None:
    """Run in the child between fork and exec: SIGKILL when the parent dies — and exit at
    once if it died before this call (then the child was already re-parented)."""
    if _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        os._exit(126)
    if os.getppid() != parent:
        os._exit(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost / 127.0.0.1 and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


@dataclass
class Dovecot:
    root: Path
    port: int  # plain and STARTTLS
    tls_port: int  # implicit TLS
    cert: Path
    password: str
    users: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls) -> Dovecot:
        if not os.access(DOVECOT, os.X_OK):
            raise RuntimeError("dovecot is not installed: run `make system-deps`")
        root = Path(tempfile.mkdtemp(prefix="kefu-dovecot-"))
        root.chmod(0o755)  # the mail processes (maybe `nobody`) walk into it
        for sub in ("run", "state", "home"):
            (root / sub).mkdir()
        cert, key = self_signed(root)
        if os.getuid() == 0:
            nobody = pwd.getpwnam("nobody")
            uid, gid = nobody.pw_uid, nobody.pw_gid
            os.chown(root / "home", uid, gid)
        else:
            uid, gid = os.getuid(), os.getgid()
        port, tls_port = free_port(), free_port()
        # One password for every user: a user exists as soon as it logs in (each test makes
        # its own), and no password file must be re-read between tests.
        password = uuid.uuid4().hex
        me = "dovenull" if os.getuid() == 0 else pwd.getpwuid(uid).pw_name
        internal = "dovecot" if os.getuid() == 0 else pwd.getpwuid(uid).pw_name
        (root / "dovecot.conf").write_text(
            f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = {min(uid, 1)}
mail_fsync = never
default_login_user = {me}
default_internal_user = {internal}
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""
        )
        parent = os.getpid()
        process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(root / "dovecot.conf")],
            stdin=subprocess.DEVNULL,
            preexec_fn=lambda: _tie_to(parent),
        )
        server = cls(root, port, tls_port, cert, password, process=process)
        atexit.register(server.stop)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return server
            except OSError:
                time.sleep(0.1)
        log = root / "dovecot.log"
        detail = log.read_text() if log.exists() else f"exit status {process.poll()}"
        server.stop()
        raise RuntimeError("dovecot did not start: " + detail)

    def stop(self) -> None:
        """Stop our dovecot (and only ours: by the pid we started) and remove its files."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()  # the master stops its own processes
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)

    def add_user(self, name: str | None = None) -> tuple[str, str]:
        name = name or f"u{uuid.uuid4().hex[:10]}"
        self.users[name] = self.password
        return name, self.password

    def client(self, user: str) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.port, timeout=30)
        conn.login(user, self.users[user])
        conn.select("INBOX")
        return conn

    def deliver(self, user: str, *mails: bytes) -> None:
        conn = self.client(user)
        try:
            for raw in mails:
                typ, data = conn.append("INBOX", None, None, raw)
                assert typ == "OK", data
        finally:
            conn.logout()

    def flags(self, user: str) -> dict[int, str]:
        """{uid: flags} of every mail in the user's INBOX."""
        conn = self.client(user)
        try:
            _typ, data = conn.uid("FETCH", "1:*", "(FLAGS)")
            out = {}
            for line in data:
                if isinstance(line, bytes) and b"UID" in line:
                    text = line.decode()
                    uid = int(text.split("UID ")[1].split()[0].rstrip(")"))
                    out[uid] = text.split("FLAGS (")[1].split(")")[0]
            return out
        finally:
            conn.logout()

    def unflag_all(self, user: str) -> None:
        conn = self.client(user)
        try:
            conn.uid("STORE", "1:*", "-FLAGS.SILENT", "(\\Seen)")
        finally:
            conn.logout()


class Inbox:
    """What an aiosmtpd server on 127.0.0.1 received; refuses recipients at `refused`."""

    def __init__(self) -> None:
        self.envelopes: list[tuple[str, list[str], bytes]] = []
        self.refused_domain = "refused.example.cn"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address.endswith("@" + self.refused_domain):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"

    def messages(self) -> list[EmailMessage]:
        return [
            BytesParser(policy=default).parsebytes(content) for _f, _t, content in self.envelopes
        ]


def smtp_server(
    ssl_context: ssl.SSLContext | None = None, **kw: object
) -> tuple[Controller, Inbox]:
    inbox = Inbox()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=free_port(), ssl_context=ssl_context, **kw
    )
    controller.start()
    return controller, inbox
