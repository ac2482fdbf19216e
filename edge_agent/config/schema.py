"""The agent's whole configuration, as one validated document.

Pure data: no I/O here (loading lives in loader.py, saving in store.py). Every model forbids
unknown keys so a typo is an error, not a silently ignored setting. Numbers carry bounds.
Polygons are lists of [x, y] points in normalized image coordinates (0..1).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from edge_agent.config.base import StrictModel
from edge_agent.config.enhance_schema import RATIO_RANGE, FacesConfig, LowLightConfig  # noqa: F401  (part of this schema)
from edge_agent.config.health_schema import HEALTH_ALERT_TYPES, HealthConfig  # noqa: F401  (part of this schema)

NAME_RE = r"^[A-Za-z0-9_-]{1,64}$"

Point = Annotated[list[Annotated[float, Field(ge=0.0, le=1.0)]], Field(min_length=2, max_length=2)]


class Polygon(StrictModel):
    """A closed polygon in normalized coordinates (0..1), at least 3 points."""

    points: list[Point] = Field(min_length=3, max_length=64)


class Zone(StrictModel):
    name: str = Field(pattern=NAME_RE)
    points: list[Point] = Field(min_length=3, max_length=64)


# --------------------------------------------------------------------------- camera parts


class SourceConfig(StrictModel):
    """Where frames come from. Exactly one of url, file or device."""

    url: str | None = Field(default=None, description="RTSP/HTTP stream URL")
    file: Path | None = Field(default=None, description="video file (a recorded clip)")
    device: int | str | None = Field(default=None, description="V4L2 device index or /dev/videoN path")
    loop: bool = Field(default=False, description="restart a file at its end")
    fps_limit: float | None = Field(default=None, gt=0, le=120, description="pace reading to this rate")
    decoder_threads: int = Field(
        default=1, ge=0, le=16,
        description="decoding threads for a stream or file (0: ffmpeg's choice, one per core). One is "
        "cheapest in CPU and memory on a box with many cameras: the cameras already decode in parallel",
    )
    reconnect_initial_s: float = Field(default=0.5, gt=0, le=60)
    reconnect_max_s: float = Field(default=5.0, gt=0, le=600)

    @model_validator(mode="after")
    def _exactly_one(self) -> SourceConfig:
        given = [k for k in ("url", "file", "device") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of url, file or device (got {given or 'none'})")
        if self.url is not None and not re.match(r"^(rtsp|rtsps|http|https|rtmp)://", self.url):
            raise ValueError("url must start with rtsp://, rtsps://, http://, https:// or rtmp://")
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError("reconnect_max_s must be >= reconnect_initial_s")
        return self


class MotionConfig(StrictModel):
    frame_height: int = Field(default=180, ge=60, le=720, description="height of the downscaled gray copy")
    blur_kernel: int = Field(default=5, ge=1, le=31, description="odd Gaussian kernel size (1 = no blur)")
    threshold: int = Field(
        default=25, ge=1, le=255,
        description="per-pixel difference that counts as change; with noise_factor > 0 the highest one used",
    )
    noise_factor: float = Field(
        default=5.0, ge=0.0, le=20.0,
        description="adaptive threshold = noise_factor x measured temporal noise (0 = fixed threshold)",
    )
    min_threshold: int = Field(
        default=4, ge=1, le=255, description="the adaptive threshold never goes below this (gray levels)"
    )
    reject_lighting: bool = Field(
        default=True, description="ignore changed regions whose background texture is only re-lit (headlights)"
    )
    sensitivity: float = Field(
        default=0.5, ge=0.0, le=1.0, description="0..1; higher fires on smaller changes (scales threshold)"
    )
    background_alpha: float = Field(default=0.05, gt=0.0, le=1.0, description="running background rate")
    min_area: float = Field(default=0.002, ge=0.0, le=1.0, description="smallest contour, fraction of frame")
    min_motion_frames: int = Field(default=2, ge=1, le=100, description="consecutive frames before ON")
    off_delay_s: float = Field(default=2.0, ge=0.0, le=600.0, description="quiet time before OFF")
    lighting_change_fraction: float = Field(
        default=0.6, gt=0.0, le=1.0, description="changed fraction that means a lighting jump (re-baseline)"
    )
    masks: list[Polygon] = Field(default_factory=list, description="areas ignored by motion")
    zones: list[Zone] = Field(default_factory=list, description="if any, motion must touch a zone")

    @field_validator("blur_kernel")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError("blur_kernel must be odd")
        return v


class SnapshotConfig(StrictModel):
    jpeg_quality: int = Field(default=90, ge=10, le=100)
    max_events_per_minute: int = Field(default=30, ge=1, le=3600, description="snapshots per camera")
    interval_s: float = Field(default=1.0, ge=0.0, le=3600.0, description="min time between event updates")




class CameraConfig(StrictModel):
    name: str = Field(pattern=NAME_RE)
    enabled: bool = True
    source: SourceConfig
    motion: MotionConfig = Field(default_factory=MotionConfig)
    low_light: LowLightConfig = Field(default_factory=LowLightConfig)
    faces: FacesConfig = Field(default_factory=FacesConfig)
    snapshots: SnapshotConfig = Field(default_factory=SnapshotConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)


# --------------------------------------------------------------------------- agent-wide parts


class ModelsConfig(StrictModel):
    dir: Path = Field(default=Path("models"), description="folder with manifest.yaml")
    low_light: str = Field(default="lowlight", description="model name in the manifest")
    face_sr: str = Field(default="face_sr", description="model name in the manifest")
    precision: Literal["int8", "fp32"] = "int8"


class InferenceConfig(StrictModel):
    backend: Literal["auto", "onnxruntime", "openvino"] = "auto"
    threads: int = Field(default=0, ge=0, le=64, description="0 = runtime default")


class PipelineConfig(StrictModel):
    queue_size: int = Field(default=4, ge=1, le=256, description="bounded job queue, per agent")
    workers: int = Field(default=1, ge=1, le=16)
    stats_interval_s: float = Field(default=30.0, ge=1.0, le=3600.0)


class LocalSinkConfig(StrictModel):
    dir: Path = Field(default=Path("events"), description="where events and images are written")


class MqttTlsConfig(StrictModel):
    ca_file: Path | None = Field(default=None, description="CA bundle that signed the broker's certificate")
    cert_file: Path | None = Field(default=None, description="client certificate (PEM) if the broker wants one")
    key_file: Path | None = Field(default=None, description="client private key (PEM), with cert_file")
    insecure: bool = Field(default=False, description="skip hostname check (testing only)")

    @model_validator(mode="after")
    def _key_needs_cert(self) -> MqttTlsConfig:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file needs cert_file")
        return self


class MqttConnectionConfig(StrictModel):
    """How to reach and log in to a broker (shared by the agent and the control-room receiver)."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    password_env: str | None = Field(default=None, description="read the password from this env var")
    password_file: Path | None = Field(default=None, description="read the password from this file")
    tls: MqttTlsConfig | None = None
    prefix: str = Field(default="nightwatch", pattern=r"^[A-Za-z0-9_-]{1,64}(/[A-Za-z0-9_-]{1,64}){0,3}$")
    keepalive_s: int = Field(default=30, ge=5, le=3600)

    @model_validator(mode="after")
    def _one_password_source(self) -> MqttConnectionConfig:
        given = [k for k in ("password", "password_env", "password_file") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(
                f"give at most one of password, password_env, password_file (got {', '.join(given)})"
            )
        return self


class MqttConfig(MqttConnectionConfig):
    qos: Literal[0, 1, 2] = 1
    hmac_key_env: str | None = Field(default=None, description="env var holding the per-site HMAC key")
    hmac_key_file: Path | None = None
    spool_dir: Path = Field(default=Path("spool"))
    spool_max_mb: float = Field(default=512.0, gt=0, le=1_000_000)
    home_assistant_discovery: bool = True
    discovery_prefix: str = Field(default="homeassistant", pattern=r"^[A-Za-z0-9_/-]{1,64}$")
    reconnect_min_s: float = Field(default=1.0, gt=0, le=600, description="first reconnect delay")
    reconnect_max_s: float = Field(default=30.0, gt=0, le=3600, description="reconnect delay cap (backoff)")
    ack_timeout_s: float = Field(default=15.0, gt=0, le=600, description="wait this long for PUBACKs")
    stats_retain: bool = Field(default=True, description="retain the latest stats message per camera")

    @model_validator(mode="after")
    def _one_hmac_source(self) -> MqttConfig:
        if self.hmac_key_env is not None and self.hmac_key_file is not None:
            raise ValueError("give hmac_key_env or hmac_key_file, not both")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        return self


class PublishConfig(StrictModel):
    sink: Literal["local", "mqtt"] = "local"
    local: LocalSinkConfig = Field(default_factory=LocalSinkConfig)
    mqtt: MqttConfig | None = None

    @model_validator(mode="after")
    def _mqtt_needs_section(self) -> PublishConfig:
        if self.sink == "mqtt" and self.mqtt is None:
            raise ValueError("sink 'mqtt' needs the mqtt section")
        return self


PASSWORD_HASH_RE = r"^scrypt\$[0-9]{1,7}\$[0-9]{1,3}\$[0-9]{1,3}\$[A-Za-z0-9+/=_-]{8,128}\$[A-Za-z0-9+/=_-]{16,256}$"


class ApiAuthConfig(StrictModel):
    # A SecretStr so that config_to_data() masks it like other secrets (the YAML form is unchanged).
    password_hash: SecretStr | None = Field(
        default=None, description="hash made by `edge-agent hash-password` (scrypt$n$r$p$salt$hash)"
    )
    token_ttl_s: int = Field(default=3600, ge=60, le=7 * 24 * 3600)

    @field_validator("password_hash")
    @classmethod
    def _hash_format(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not re.match(PASSWORD_HASH_RE, v.get_secret_value()):
            raise ValueError("not a hash made by `edge-agent hash-password` (scrypt$n$r$p$salt$hash)")
        return v


def _ip_networks(values: list[str]) -> list[str]:
    """Each item an IP address or a CIDR network (10.0.0.0/8); refused otherwise."""
    for v in values:
        try:
            ipaddress.ip_network(v, strict=False)
        except ValueError:
            raise ValueError(f"{v!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)") from None
    return values


HOST_RE = r"^[A-Za-z0-9.:_\[\]-]{1,253}$"


class ApiConfig(StrictModel):
    enabled: bool = True
    bind: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535, description="0 = any free port")
    auth: ApiAuthConfig = Field(default_factory=ApiAuthConfig)
    max_body_mb: float = Field(default=10.0, gt=0, le=200)
    trusted_proxies: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="reverse proxies whose X-Forwarded-For is believed (IPs or networks); empty = none",
    )
    allowed_hosts: list[Annotated[str, Field(pattern=HOST_RE)]] | None = Field(
        default=None,
        max_length=64,
        description="names a request's Host header may carry; default: the bind address, localhost, "
        "127.0.0.1, ::1, this machine's hostname and FQDN (and its addresses when bound to all)",
    )
    monitoring: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="addresses or networks that may read /metrics and the full /api/health without login",
    )
    path_roots: list[Path] = Field(
        default_factory=list,
        max_length=32,
        description="folders that path settings changed through the API must lie in (empty = path "
        "settings cannot be changed through the API); only the config file sets this",
    )

    @field_validator("trusted_proxies", "monitoring")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        return _ip_networks(v)


class LoggingConfig(StrictModel):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class AgentConfig(StrictModel):
    site: str = Field(default="site1", pattern=NAME_RE)
    cameras: list[CameraConfig] = Field(min_length=1, max_length=64)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    publish: PublishConfig = Field(default_factory=PublishConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    state_dir: Path = Field(default=Path("state"), description="the running marker and the open events (open_events.json)")
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    @model_validator(mode="after")
    def _unique_camera_names(self) -> AgentConfig:
        names = [c.name for c in self.cameras]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"camera names must be unique: {', '.join(dupes)}")
        return self

    def camera(self, name: str) -> CameraConfig:
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise KeyError(name)
