"""Typed settings read from the environment (prefix RATHAUS_) with embedded defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything an operator may set; the defaults run the embedded single-box hub."""

    model_config = SettingsConfigDict(env_prefix="RATHAUS_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Folder for the SQLite files of the embedded default.")
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite in data_dir.")
    broker_url: str = Field(
        "",
        description="Celery broker: redis://…, or a database URL for kombu's SQLAlchemy transport; empty: SQLite.",
    )
    public_url: str = Field(
        "http://127.0.0.1:8000",
        description="Base URL at which providers reach the hub; webhook signatures are checked against it.",
    )
    host: str = Field("127.0.0.1", description="Address the web app listens on.")
    trusted_proxies: str = Field(
        "",
        description="Addresses or networks (comma-separated, e.g. 10.0.0.0/8) of the reverse proxies whose "
        "X-Forwarded-For and X-Forwarded-Proto are believed; empty: none, every peer is the client itself.",
    )
    port: int = Field(8000, description="Port the web app listens on.")
    smtp_host: str = Field("127.0.0.1", description="Address of the inbound SMTP listener.")
    smtp_port: int = Field(2525, description="Port of the inbound SMTP listener.")
    sandbox_host: str = Field("127.0.0.1", description="Address of the provider emulators.")
    sandbox_port: int = Field(8025, description="HTTP port of the provider emulators.")
    sandbox_smtp_port: int = Field(8026, description="SMTP port of the emulators' mail sink.")
    max_webhook_bytes: int = Field(1_048_576, description="Largest webhook body accepted (413 above it).")
    max_email_bytes: int = Field(26_214_400, description="Largest inbound email accepted by the SMTP listener.")
    reopen_resolved: bool = Field(
        True,
        description="A message after resolution reopens the conversation (true) or opens a new one (false).",
    )
    reopen_window_days: int = Field(30, description="How long after resolution a new message still reopens.")
    send_acknowledgement: bool = Field(True, description="Answer a new conversation with its reference.")
    retry_base_seconds: float = Field(2.0, description="First retry delay of a transient send error.")
    max_send_attempts: int = Field(6, description="Attempts before a transiently failing send is given up.")
    sweep_interval_seconds: float = Field(15.0, description="How often beat runs the sweeper.")
    rate_limit_url: str = Field(
        "", description="Storage of the per-channel rate limits; empty means the Redis broker, or memory when embedded."
    )
    broadcast_start_seconds: float = Field(2.0, description="How often beat starts scheduled broadcasts that are due.")
    imap_poll_seconds: float = Field(60.0, description="How often email channels with an IMAP mailbox are polled.")
    stale_after_seconds: float = Field(60.0, description="Age after which the sweeper re-queues work.")
    templates_dir: Path = Field(
        Path(__file__).resolve().parent.parent / "templates",
        description="Jinja2 templates (ui/, messages/).",
    )
    secret_key: str = Field(
        "",
        description="Key for signed links and one-time-code hashes; production sets a long random value.",
    )
    session_idle_minutes: int = Field(480, description="A staff session ends after this long without a request.")
    session_max_hours: int = Field(12, description="A staff session ends this long after sign-in in any case.")
    sign_in_max_failures: int = Field(
        5,
        description="Failed sign-ins for one address from one client before that client waits; "
        "also the wrong second-factor codes that lock an account.",
    )
    sign_in_client_max_failures: int = Field(
        20, description="Failed sign-ins from one client, for any addresses, before it waits."
    )
    sign_in_lock_minutes: int = Field(15, description="The window of those counts, and how long the wait lasts.")
    log_level: str = Field("INFO", description="Python logging level.")
    log_format: Literal["text", "json"] = Field(
        "text",
        description="How log lines are written: text to read in a terminal, json (one object per line with "
        "request_id and town) for a log collector in production.",
    )
    metrics_token: str = Field(
        "", description="Bearer token Prometheus sends to /metrics; empty: /metrics answers only on loopback."
    )
    geocoder_url: str = Field(
        "",
        description="Base URL of a Nominatim-compatible geocoder (a town's own, or the public one within its usage "
        "policy); empty: the sandbox's emulator.",
    )
    warning_api_url: str = Field(
        "",
        description="Base URL of the federal warning API (https://warnung.bund.de/api31); empty: the sandbox's "
        "emulator.",
    )
    warning_poll_seconds: float = Field(120.0, description="How often beat asks the warning API for new warnings.")
    problem_duplicate_metres: float = Field(
        50.0, description="Open reports of the same category this close to a new one are suggested as duplicates."
    )
    max_photo_bytes: int = Field(10_485_760, description="Largest photo accepted with a problem report.")
    max_photo_pixels: int = Field(
        40_000_000, description="Largest photo in pixels (width × height); beyond it a file is refused as a bomb."
    )
    photo_display_pixels: int = Field(1280, description="Longest side of the copy of a photo shown on pages.")
    map_tile_url: str = Field(
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        description="Tile server of the maps ({z}/{x}/{y} template, e.g. a town's own); empty: maps without tiles.",
    )
    map_tile_attribution: str = Field(
        "© OpenStreetMap-Mitwirkende", description="The credit the tile server asks for, shown on every map."
    )

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'rathaus.sqlite').resolve()}"

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or f"sqlite:///{(self.data_dir / 'broker.sqlite').resolve()}"

    @property
    def is_embedded(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def sandbox_url(self) -> str:
        return f"http://{self.sandbox_host}:{self.sandbox_port}"

    @property
    def effective_geocoder_url(self) -> str:
        return self.geocoder_url or f"{self.sandbox_url}/nominatim"

    @property
    def effective_warning_api_url(self) -> str:
        return self.warning_api_url or f"{self.sandbox_url}/api31"


@lru_cache
def get_settings() -> Settings:
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings
