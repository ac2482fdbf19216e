"""The control-room receiver's config file (validated like the agent's: unknown keys are errors)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from edge_agent.config.loader import load_config
from edge_agent.config.schema import NAME_RE, MqttConnectionConfig, StrictModel


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
    reconnect_max_s: float = Field(default=30.0, gt=0, le=3600)


class ReceiverConfig(StrictModel):
    mqtt: ReceiverMqttConfig = Field(default_factory=ReceiverMqttConfig)
    store_dir: Path = Field(default=Path("received"), description="dated folder tree + index.sqlite3")
    sites: dict[str, SiteKeyConfig] = Field(default_factory=dict, description="per-site HMAC keys")
    require_signature: bool = Field(default=False, description="flag unsigned events from every site")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _site_names(self) -> ReceiverConfig:
        bad = [s for s in self.sites if not re.match(NAME_RE, s)]
        if bad:
            raise ValueError(f"invalid site names: {', '.join(bad)}")
        return self


def load_receiver_config(path: str | Path) -> ReceiverConfig:
    return load_config(path, ReceiverConfig)
