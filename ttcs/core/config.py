"""Hub settings: defaults for a laptop, a file for a deployment, environment on top.

Precedence, lowest first: built-in defaults, the config file (YAML), ``TTCS_*`` environment
variables. Secrets (database or broker passwords) can sit in the URLs or be read from files
named by ``*_FILE`` variables; they are never logged (see :func:`redact_url`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..schemas.errors import explain
from .errors import ConfigError

DEFAULT_MQTT_PORT = 11883  # not 1883: the embedded broker must not collide with a system one


class AlarmSettings(BaseModel):
    """Alarm thresholds. A value must cross the threshold to raise an alarm and fall below
    threshold minus margin to clear it, so a reading hovering at the limit raises once."""

    model_config = ConfigDict(extra="forbid")

    offline_after: float = Field(default=900.0, gt=0, description="seconds offline before "
                                 "'offline_too_long' is raised")
    vswr_max: float = Field(default=2.0, gt=1, description="telemetry 'vswr' above this raises "
                            "'high_vswr'")
    vswr_margin: float = Field(default=0.2, ge=0, description="clears below vswr_max - margin")
    temperature_max: float = Field(default=70.0, description="°C: device or PA temperature "
                                   "above this raises 'high_temperature'")
    temperature_margin: float = Field(default=5.0, ge=0)
    temperature_keys: list[str] = Field(default_factory=lambda: ["pa_temperature",
                                                                 "temperature"],
                                        description="telemetry readings taken as temperatures")
    command_failures: int = Field(default=3, ge=1, description="failed commands in a row "
                                  "(within the window) that raise 'command_failures'")
    command_failure_window: float = Field(default=600.0, gt=0, description="seconds")
    ignored_rejections: list[str] = Field(default_factory=lambda: ["busy"],
                                          description="rejection codes that are not failures "
                                          "(a speaker busy with an emergency is working)")
    debounce: float = Field(default=30.0, ge=0, description="seconds a battery, VSWR or "
                            "temperature condition must last before it is raised or cleared")
    check_interval: float = Field(default=5.0, gt=0, description="seconds between checks of "
                                  "time-based conditions (offline too long, debounce)")


class Rate(BaseModel):
    """``count`` attempts per ``seconds`` (bursts up to ``count``)."""

    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=1)
    seconds: float = Field(gt=0)


class ApiSettings(BaseModel):
    """The northbound API: tokens, rate limits, event stream, webhooks."""

    model_config = ConfigDict(extra="forbid")

    token_days: float = Field(default=90, gt=0, description="default validity of API tokens")
    session_hours: float = Field(default=12, gt=0, description="validity of a login's token")
    login_per_account: Rate = Field(default_factory=lambda: Rate(count=5, seconds=60),
                                    description="login attempts per user name")
    login_per_address: Rate = Field(default_factory=lambda: Rate(count=20, seconds=60),
                                    description="login attempts (and bad tokens) per source "
                                    "address")
    broadcasts_per_account: Rate = Field(default_factory=lambda: Rate(count=30, seconds=60))
    broadcasts_per_address: Rate = Field(default_factory=lambda: Rate(count=60, seconds=60))
    stream_queue: int = Field(default=1000, ge=1, description="events buffered per event-"
                              "stream client; a client that falls this far behind is dropped")
    webhook_timeout: float = Field(default=10.0, gt=0, description="seconds per delivery")
    webhook_attempts: int = Field(default=12, ge=1, description="deliveries tried before an "
                                  "event is given up for a webhook")
    webhook_backoff: float = Field(default=2.0, gt=0, description="seconds before the first "
                                   "retry; doubles per attempt (with jitter), at most 1 h")
    trusted_proxies: list[str] = Field(default_factory=list, description="addresses of "
                                       "reverse proxies whose X-Forwarded-For is believed")


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    home: Path = Field(default=Path("var"), description="state directory (SQLite, media, keys)")
    database_url: str | None = Field(default=None, description="SQLAlchemy async URL; "
                                     "default: SQLite under home")
    mqtt_url: str = f"mqtt://127.0.0.1:{DEFAULT_MQTT_PORT}"
    embedded_broker: bool = Field(default=False, description="start an in-process MQTT broker "
                                  "listening on mqtt_url's host and port")
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=0, le=65535)
    tls_cert: str | None = Field(default=None, description="PEM certificate (chain) for the "
                                 "API: a path, or the PEM itself (TTCS_TLS_CERT_FILE)")
    tls_key: str | None = Field(default=None, description="PEM private key for the API: a "
                                "path, or the PEM itself (TTCS_TLS_KEY_FILE)")
    api: ApiSettings = Field(default_factory=ApiSettings)
    hub_id: str = "hub"
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    command_timeout: float = Field(default=10.0, gt=0, description="seconds to wait for an ack")
    probe_timeout: float = Field(default=5.0, gt=0)
    dispatch_concurrency: int = Field(default=500, ge=1, le=100_000,
                                      description="device commands in flight at once")
    policy_file: Path | None = Field(default=None, description="broadcast policy by area type;"
                                     " default: the shipped Hanoi 2021 sample")
    media_base_url: str = Field(default="http://{api_host}:{api_port}",
                                description="base of the media URLs handed to devices; "
                                "{api_host} and {api_port} are filled in. Set it to an address "
                                "the devices can reach when the API listens on 0.0.0.0")
    media_url_ttl: float = Field(default=6 * 3600, gt=0,
                                 description="seconds a signed media URL stays valid")
    tts_engine: str = Field(default="espeak-ng", description="default text-to-speech engine")
    tts_voices: dict[str, str] = Field(
        default_factory=dict, description="area code -> voice ('VOICE' or 'ENGINE:VOICE'); "
        "inherited down the area tree, overrides the regional voice")
    alarms: AlarmSettings = Field(default_factory=AlarmSettings)
    clock_skew_tolerance: float = Field(default=30.0, gt=0, description="seconds between a "
                                        "device's reported time and the hub's receive time "
                                        "beyond which the device clock is flagged as skewed")
    worker: bool = Field(default=False, description="run as one of several hub worker "
                         "processes sharing device traffic (PostgreSQL and an external MQTT 5 "
                         "broker required; see docs/operator-guide.md)")
    worker_group: str = Field(default="ttcs", pattern=r"^[A-Za-z0-9_.-]{1,64}$",
                              description="MQTT shared-subscription group of the workers")
    worker_heartbeat: float = Field(default=2.0, gt=0, description="seconds between a "
                                    "worker's heartbeats (and a standby's bids for leadership)")
    worker_timeout: float = Field(default=10.0, gt=0, description="seconds without a "
                                  "heartbeat after which a worker is taken for dead")

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.home / 'ttcs.db'}"

    @property
    def media_base(self) -> str:
        """``media_base_url`` with the API host and port filled in, without a trailing /."""
        return self.media_base_url.format(api_host=self.api_host,
                                          api_port=self.api_port).rstrip("/")

    def ensure_home(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home


_ENV = {
    "TTCS_HOME": "home",
    "TTCS_DATABASE_URL": "database_url",
    "TTCS_MQTT_URL": "mqtt_url",
    "TTCS_EMBEDDED_BROKER": "embedded_broker",
    "TTCS_API_HOST": "api_host",
    "TTCS_API_PORT": "api_port",
    "TTCS_TLS_CERT": "tls_cert",
    "TTCS_TLS_KEY": "tls_key",
    "TTCS_HUB_ID": "hub_id",
    "TTCS_LOG_FORMAT": "log_format",
    "TTCS_LOG_LEVEL": "log_level",
    "TTCS_POLICY_FILE": "policy_file",
    "TTCS_DISPATCH_CONCURRENCY": "dispatch_concurrency",
    "TTCS_MEDIA_BASE_URL": "media_base_url",
    "TTCS_TTS_ENGINE": "tts_engine",
    "TTCS_WORKER": "worker",
    "TTCS_WORKER_GROUP": "worker_group",
    "TTCS_WORKER_HEARTBEAT": "worker_heartbeat",
    "TTCS_WORKER_TIMEOUT": "worker_timeout",
}


def load_settings(path: Path | str | None = None, env: dict[str, str] | None = None,
                  **overrides: Any) -> Settings:
    """Settings from defaults, ``path`` (YAML), the environment and explicit overrides."""
    env = dict(os.environ) if env is None else env
    data: dict[str, Any] = {}
    path = path or env.get("TTCS_CONFIG")
    if path:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of settings")
        data.update(loaded)
    for var, key in _ENV.items():
        if var in env and env[var] != "":
            data[key] = env[var]
        if f"{var}_FILE" in env:  # secrets from files (Docker/systemd credentials style)
            try:
                data[key] = Path(env[f"{var}_FILE"]).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"cannot read {var}_FILE: {exc}") from exc
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {explain(exc)}") from exc


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (safe to log or print)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))
