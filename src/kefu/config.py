"""Settings from the environment (prefix KEFU_) or a .env-style settings file.

Every setting is documented in docs/configuration.md; a test fails when one is not.
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DB = "sqlite:///" + str(Path("var") / "kefu.db")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KEFU_", env_file=None, extra="ignore", validate_default=True
    )

    database_url: str = Field(DEFAULT_DB, description="SQLAlchemy URL of the database.")
    database_pool_size: int = Field(
        20,
        ge=1,
        description="Database connections each web process keeps open (its concurrent requests).",
    )
    secret_key: str = Field(
        "",
        description="Key for signing and encrypting; set it in production. "
        "Empty: a random key is made and kept in var/secret_key.",
    )
    data_dir: Path = Field(Path("var"), description="Where files of the instance live.")
    default_locale: str = Field("zh_CN", description="UI language when nobody chose one.")
    unit_level_names: list[str] = Field(
        default_factory=lambda: ["province", "city", "county"],
        description="Names of the unit tree's levels, top first (JSON list).",
    )
    default_timezone: str = Field("Asia/Shanghai", description="Time zone of new units.")
    session_hours: int = Field(
        12, description="Lifetime of a web session (staff and portal), in hours."
    )
    portal_invitation_hours: int = Field(
        72, ge=1, description="How long a portal invitation (set-password) link works, in hours."
    )
    access_token_minutes: int = Field(60, description="Lifetime of an API access token.")
    cookie_secure: str = Field(
        "auto",
        description="Mark cookies Secure: 'true', 'false', or 'auto' (when served over https).",
    )
    login_max_failures: int = Field(5, description="Failed logins before an account locks.")
    login_lock_minutes: int = Field(15, description="How long a locked account stays locked.")
    login_rate_per_ip: int = Field(
        20, description="Failed logins from one address per 15 minutes before 429."
    )
    worker_interval_seconds: float = Field(30.0, description="Pause between worker sweeps.")
    visit_max_attempts: int = Field(
        3, ge=1, description="Unreached attempts before a return visit counts as failed."
    )
    visit_retry_hours: float = Field(
        4.0, gt=0, description="Hours before an unreached return visit is tried again."
    )
    survey_link_days: int = Field(14, ge=1, description="Days a survey link stays valid.")
    recovery_index_below: float = Field(
        90.0, description="A satisfaction index below this opens a recovery task."
    )
    recovery_csat_at_most: int = Field(
        2, description="A CSAT at or below this opens a recovery task."
    )
    recovery_nps_at_most: int = Field(
        6, description="An NPS score at or below this (a detractor) opens a recovery task."
    )
    churn_revenue_drop_percent: float = Field(
        30.0,
        gt=0,
        le=100,
        description="Revenue down this much (last 12 months against the "
        "12 before) flags a churn risk.",
    )
    churn_complaint_days: int = Field(
        90, ge=1, description="A complaint within this many days flags a churn risk."
    )
    repeat_contact_days: int = Field(
        7,
        ge=1,
        description="A ticket reopened or raised again within this many days of its "
        "resolution is a repeat contact.",
    )
    complaint_repeat_days: int = Field(
        90,
        ge=1,
        description="A complaint of the same customer and cause within this many days "
        "is a repeat: its severity is raised.",
    )
    complaint_compensation_threshold: Decimal = Field(
        Decimal("500"), ge=0, description="Compensation above this amount (CNY) needs approval."
    )
    complaint_approval_limits: dict[str, Decimal] = Field(
        default_factory=lambda: {"supervisor": Decimal("5000"), "manager": Decimal("50000")},
        description="The largest compensation each role may approve; administrators: any.",
    )
    recovery_hours: float = Field(
        48.0, gt=0, description="Business hours the unit head has to act on a recovery task."
    )
    retier_interval_days: int = Field(
        30, description="Re-tier every customer when the last applied run is this old (0: off)."
    )
    attachment_max_mb: float = Field(20.0, description="Largest attachment accepted, in MB.")
    attachment_kinds: list[str] = Field(
        default_factory=lambda: [
            "pdf",
            "png",
            "jpeg",
            "gif",
            "webp",
            "text",
            "docx",
            "xlsx",
            "pptx",
            "zip",
        ],
        description="Kinds of attachment accepted, recognised by content (JSON list).",
    )
    embedded_worker: bool = Field(True, description="Run the worker loop inside `kefu serve`.")
    sla_warn_share: float = Field(
        0.75,
        gt=0,
        le=1,
        description="Share of an SLA target (business time) at which the assignee is warned.",
    )
    escalate_parent_after_minutes: int = Field(
        120,
        ge=0,
        description="Minutes after a breach before the parent unit is told (上报).",
    )
    delivery_poll_seconds: float = Field(
        1.0, gt=0, description="Pause of the delivery loop when the outbox is empty, in seconds."
    )
    delivery_batch_size: int = Field(
        200, ge=1, description="Outbox events routed, and deliveries claimed, per batch."
    )
    delivery_concurrency: int = Field(
        8, ge=1, description="Deliveries one worker runs at once (threads)."
    )
    delivery_max_attempts: int = Field(
        12, ge=1, description="Failed attempts after which a delivery is dead-lettered."
    )
    delivery_backoff_base_seconds: float = Field(
        10.0, gt=0, description="Pause after the first failed attempt; doubles with each."
    )
    delivery_backoff_max_seconds: float = Field(
        3600.0, gt=0, description="Longest pause between two attempts of one delivery."
    )
    delivery_lease_seconds: float = Field(
        120.0,
        ge=10,
        description="How long a worker holds the deliveries it claimed before others may "
        "take them again (longer than the slowest attempt).",
    )
    delivery_keep_days: int = Field(
        30, ge=1, description="Days delivered notifications and read notices are kept."
    )
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, description="Timeout of each network step of a webhook or robot request."
    )
    webhook_max_response_bytes: int = Field(
        65536, ge=0, description="How much of a receiver's answer is read."
    )
    webhook_allow_private_targets: bool = Field(
        False,
        description="Allow webhook and robot URLs that resolve to private, loopback or "
        "link-local addresses (SSRF protection off for them).",
    )

    mail_max_mb: float = Field(
        25.0,
        gt=0,
        description="Largest incoming mail fetched, in MB; a larger one is quarantined unread.",
    )
    mail_fetch_batch: int = Field(
        200, ge=1, description="Most mails fetched from one mailbox per worker run."
    )
    mail_timeout_seconds: float = Field(
        30.0, gt=0, description="Network timeout of IMAP and SMTP connections, in seconds."
    )
    smtp_host: str = Field(
        "", description="SMTP server for email out; empty: no mail is sent (nothing queues)."
    )
    smtp_port: int = Field(587, ge=1, le=65535, description="Port of the SMTP server.")
    smtp_security: str = Field(
        "starttls", pattern="^(tls|starttls|plain)$", description="tls, starttls or plain."
    )
    smtp_user: str = Field("", description="SMTP user name; empty: no login.")
    smtp_password: str = Field("", description="SMTP password.")
    mail_from: str = Field(
        "",
        description="Sender of mail that no mailbox sends (staff notifications), e.g. "
        "'Kefu <kefu@example.cn>'; empty: the first active mailbox's address.",
    )
    mail_ca_file: str = Field(
        "",
        description="Extra CA certificates (PEM file) trusted for IMAP and SMTP TLS; "
        "empty: the system's trust store only.",
    )

    @model_validator(mode="after")
    def _lease_outlasts_attempts(self) -> Settings:
        # An attempt starts no later than 5 s + 3 timeouts before its lease ends.
        if self.delivery_lease_seconds < 3 * self.webhook_timeout_seconds + 15:
            raise ValueError(
                "KEFU_DELIVERY_LEASE_SECONDS must be at least 3 × KEFU_WEBHOOK_TIMEOUT_SECONDS + 15"
            )
        return self


_override: Settings | None = None


@lru_cache(maxsize=1)
def _from_env() -> Settings:
    return Settings()


def get_settings() -> Settings:
    return _override or _from_env()


def use_settings(settings: Settings | None) -> None:
    """Install settings for this process (tests and the CLI)."""
    global _override
    _override = settings
    _from_env.cache_clear()


def secret_key(settings: Settings) -> str:
    """The configured secret key, else one kept in the data dir so restarts keep sessions."""
    if settings.secret_key:
        return settings.secret_key
    path = settings.data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key
