"""Sending one message over SMTP (TLS, STARTTLS, or plain to a local relay), with the
server's answer sorted into "try again later" and "never".

A plain function: the email channel (kefu.mail.outgoing) calls it from the delivery loop,
and anything else that must send a mail can too."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from kefu.config import get_settings
from kefu.mail.imap import tls_context


class SendFailed(Exception):
    def __init__(self, message: str, *, permanent: bool, unreachable: bool = False) -> None:
        super().__init__(message[:300])
        self.permanent = permanent
        self.unreachable = unreachable


def configured() -> bool:
    return bool(get_settings().smtp_host)


def _connect() -> smtplib.SMTP:
    s = get_settings()
    timeout = s.mail_timeout_seconds
    if s.smtp_security == "tls":
        conn: smtplib.SMTP = smtplib.SMTP_SSL(
            s.smtp_host, s.smtp_port, context=tls_context(), timeout=timeout
        )
    else:
        conn = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=timeout)
        if s.smtp_security == "starttls":
            conn.starttls(context=tls_context())
    if s.smtp_user:
        conn.login(s.smtp_user, s.smtp_password)
    return conn


def send(msg: EmailMessage, sender: str, recipients: list[str]) -> str:
    """Send; returns the server's answer. Raises SendFailed (permanent or not)."""
    try:
        conn = _connect()
    except smtplib.SMTPAuthenticationError as exc:
        raise SendFailed(f"login refused: {exc.smtp_code}", permanent=False) from exc
    except (TimeoutError, OSError, ssl.SSLError, smtplib.SMTPException) as exc:
        raise SendFailed(f"{type(exc).__name__}: {exc}", permanent=False, unreachable=True) from exc
    try:
        refused = conn.send_message(msg, from_addr=sender, to_addrs=recipients)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        raise SendFailed(
            f"recipients refused: {codes}", permanent=all(c >= 500 for c in codes)
        ) from exc
    except smtplib.SMTPResponseException as exc:
        raise SendFailed(
            f"{exc.smtp_code} {exc.smtp_error!r}", permanent=exc.smtp_code >= 500
        ) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise SendFailed(f"{type(exc).__name__}: {exc}", permanent=False) from exc
    finally:
        try:
            conn.quit()
        except (OSError, smtplib.SMTPException):
            conn.close()
    if refused:
        return f"sent; refused {sorted(refused)}"[:300]
    return "250 sent " + str(msg["Message-ID"])
