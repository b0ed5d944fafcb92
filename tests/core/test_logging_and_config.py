"""Secrets never reach the logs; settings come from defaults, a file and the environment."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from ttcs.core.config import load_settings, redact_url
from ttcs.core.errors import ConfigError
from ttcs.core.logging import configure


def test_secret_values_are_masked_in_json_logs() -> None:
    import structlog

    out = io.StringIO()
    configure("json", "info", stream=out)
    log = structlog.get_logger("t").bind(device="d1")
    log.info("device.connect", password="hunter2", api_key="k-123", token=SecretStr("t-9"),
             url="mqtt://user:pw-42@broker:1883", note="plain")
    record = json.loads(out.getvalue().strip().splitlines()[-1])
    text = out.getvalue()
    for secret in ("hunter2", "k-123", "t-9", "pw-42"):
        assert secret not in text
    assert record["note"] == "plain"
    assert record["url"] == "mqtt://user:***@broker:1883"
    assert record["device"] == "d1"
    assert record["event"] == "device.connect"


def test_secrets_nested_in_dicts_and_lists_are_masked() -> None:
    import structlog

    out = io.StringIO()
    configure("json", "info", stream=out)
    structlog.get_logger("t").info(
        "device.config", config={"host": "10.0.0.7", "password": "nested-pw",
                                 "auth": {"token": "deep-tok", "user": "ops"}},
        brokers=["mqtt://hub:list-pw@b1:1883", {"secret": "in-a-list"}],
        key=SecretStr("plain-secret"))
    record = json.loads(out.getvalue().strip().splitlines()[-1])
    for secret in ("nested-pw", "deep-tok", "list-pw", "in-a-list", "plain-secret"):
        assert secret not in out.getvalue()
    assert record["config"]["host"] == "10.0.0.7"  # what is not secret stays readable
    assert record["config"]["auth"] == {"token": "***", "user": "ops"}
    assert record["brokers"] == ["mqtt://hub:***@b1:1883", {"secret": "***"}]


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    conf = tmp_path / "hub.yaml"
    conf.write_text("mqtt_url: mqtt://a:1\napi_port: 9000\n")
    settings = load_settings(conf, env={"TTCS_MQTT_URL": "mqtt://b:2"})
    assert (settings.mqtt_url, settings.api_port) == ("mqtt://b:2", 9000)


def test_secrets_can_come_from_files(tmp_path: Path) -> None:
    secret = tmp_path / "db"
    secret.write_text("postgresql+asyncpg://u:p@h/db\n")
    settings = load_settings(env={"TTCS_DATABASE_URL_FILE": str(secret)})
    assert settings.database == "postgresql+asyncpg://u:p@h/db"


def test_bad_settings_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="api_port: Input should be a valid integer"):
        load_settings(env={"TTCS_API_PORT": "eighty"})
    conf = tmp_path / "x.yaml"
    conf.write_text("mqtt_urll: x\n")
    with pytest.raises(ConfigError, match="mqtt_urll: is not a known field"):
        load_settings(conf, env={})


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url("postgresql://hub:pw@db:5432/ttcs") == "postgresql://hub:***@db:5432/ttcs"
    assert redact_url("mqtt://broker:1883") == "mqtt://broker:1883"
