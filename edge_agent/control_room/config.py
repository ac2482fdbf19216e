"""The control room's config file: the receiver and its operators' console (validated like the
agent's: unknown keys are errors)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from edge_agent.config.loader import load_config
from edge_agent.config.schema import NAME_RE, PASSWORD_HASH_RE, MqttConnectionConfig, StrictModel


class SiteKeyConfig(StrictModel):
    """Where the HMAC key of one site is (the same key as the site's mqtt.hmac_key_*)."""

    hmac_key_env: str | None = None
    hmac_key_file: Path | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SiteKeyConfig:
        if (self.hmac_key_env is None) == (self.hmac_key_file is None):
            raise ValueError("give exactly one of hmac_key_env or hmac_key_file")
        return self


class ReceiverMqttConfig(MqttConnectionConfig):
    client_id: str | None = "nightwatch-receiver"
    persistent_session: bool = Field(
        default=True, description="keep the subscription on the broker while the receiver is away"
    )
    session_expiry_s: int = Field(
        default=7 * 86400, ge=60, le=0xFFFFFFFE,
        description="how long the broker keeps a persistent session (and its queued messages) for an absent receiver",
    )
    share_group: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="receivers with the same group share the load (MQTT 5 shared subscription "
        "$share/<group>/...); each needs its own client_id (`receive --instance N` appends -N)",
    )
    reconnect_max_s: float = Field(default=30.0, gt=0, le=3600)


class OperatorConfig(StrictModel):
    """An operator account. password_hash: from `edge-agent hash-password` (scrypt)."""

    name: str = Field(pattern=NAME_RE)
    password_hash: SecretStr = Field(description="scrypt$n$r$p$salt$hash, from `nightwatch-control-room hash-password`")
    role: Literal["operator", "viewer"] = Field(
        default="viewer", description="operator: may put events on hold; viewer: reads only"
    )


    @field_validator("password_hash")
    @classmethod
    def _hash_format(cls, v: SecretStr) -> SecretStr:
        if not re.match(PASSWORD_HASH_RE, v.get_secret_value()):
            raise ValueError("not a hash made by `nightwatch-control-room hash-password` (scrypt$n$r$p$salt$hash)")
        return v


class ConsoleConfig(StrictModel):
    enabled: bool = False
    bind: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535, description="0 = a free port (tests)")
    session_ttl_s: float = Field(default=8 * 3600, ge=60, le=7 * 86400, description="a login lasts this long")
    secure_cookies: bool = Field(
        default=False, description="send the session cookie over HTTPS only (set it behind a TLS proxy)"
    )
    operators: list[OperatorConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _accounts(self) -> ConsoleConfig:
        names = [o.name for o in self.operators]
        if len(set(names)) != len(names):
            raise ValueError("operator names must be unique")
        if self.enabled and not self.operators:
            raise ValueError("the console is enabled but has no operators: add one (edge-agent hash-password)")
        return self


class S3Config(StrictModel):
    endpoint: str | None = Field(default=None, description="e.g. http://seaweed:8333; unset: AWS")
    bucket: str = Field(default="nightwatch", pattern=r"^[a-z0-9][a-z0-9.-]{2,62}$")
    region: str = "us-east-1"
    access_key_env: str | None = Field(default=None, description="env var with the access key id")
    secret_key_env: str | None = Field(default=None, description="env var with the secret key")


class StorageConfig(StrictModel):
    """The embedded default: the index in SQLite and the files in store_dir. For a control room
    that grows: the index in PostgreSQL, the files in an S3-compatible object store."""

    index: Literal["sqlite", "postgresql"] = "sqlite"
    postgres_dsn_env: str | None = Field(
        default=None, description="env var holding the libpq connection string (it carries the password)"
    )
    files: Literal["folder", "s3"] = "folder"
    s3: S3Config = Field(default_factory=S3Config)

    @model_validator(mode="after")
    def _dsn(self) -> StorageConfig:
        if self.index == "postgresql" and not self.postgres_dsn_env:
            raise ValueError("index: postgresql needs postgres_dsn_env (the env var with the connection string)")
        return self


class ReceiverConfig(StrictModel):
    mqtt: ReceiverMqttConfig = Field(default_factory=ReceiverMqttConfig)
    store_dir: Path = Field(default=Path("received"), description="dated folder tree + index.sqlite3")
    sites: dict[str, SiteKeyConfig] = Field(default_factory=dict, description="per-site HMAC keys")
    require_signature: bool = Field(default=False, description="flag unsigned events from every site")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    retention_days: float | None = Field(
        default=None, gt=0, le=36500,
        description="delete events that started longer ago than this (files and rows), except those on hold; "
        "unset: keep everything",
    )
    retention_check_s: float = Field(default=3600.0, ge=10, le=86400, description="how often retention runs")
    orphan_image_hours: float = Field(
        default=24.0, gt=0, le=8760,
        description="an image whose event never arrived is kept this long (unverified), then deleted and logged",
    )

    @model_validator(mode="after")
    def _site_names(self) -> ReceiverConfig:
        bad = [s for s in self.sites if not re.match(NAME_RE, s)]
        if bad:
            raise ValueError(f"invalid site names: {', '.join(bad)}")
        return self


def load_receiver_config(path: str | Path) -> ReceiverConfig:
    return load_config(path, ReceiverConfig)
