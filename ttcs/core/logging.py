"""Structured logging: readable console lines in development, JSON lines in production.

Every line has one event name (``device.offline``) and the context bound once
(``device=…, plugin=…, area=…``). A processor masks anything that looks like a secret so a
careless ``log.info(..., password=p)`` still prints ``***``.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog
from pydantic import SecretStr

_SECRET_KEY = re.compile(r"(pass(word)?|secret|token|api_?key|credential|private)", re.I)
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]*):[^@\s]+@", re.I)


def _masked(key: str, value: Any, depth: int = 0) -> Any:
    if isinstance(value, SecretStr) or (_SECRET_KEY.search(key) and value not in (None, "")):
        return "***"
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\g<scheme>:***@", value) if "@" in value else value
    if depth >= 5:  # deeper than any config or payload a log line carries
        return value
    if isinstance(value, Mapping):
        return {k: _masked(str(k), v, depth + 1) for k, v in value.items()}
    if type(value) in (list, tuple):  # (not subclasses: a named tuple takes fields)
        return type(value)(_masked("", v, depth + 1) for v in value)
    return value


def mask_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: hide secret-looking keys, SecretStr values and URL passwords, in
    nested dicts and lists too (``config={"password": …}``)."""
    for key, value in list(event.items()):
        event[key] = _masked(key, value)
    return event


def configure(fmt: str = "console", level: str = "info", stream: Any = None) -> None:
    """Configure structlog and the standard library's root logger once per process."""
    lvl = getattr(logging, level.upper(), logging.INFO)
    renderer: Any = (structlog.processors.JSONRenderer() if fmt == "json"
                     else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            mask_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(lvl, logging.WARNING), stream=stream or sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s", force=True)
    # Libraries log chatty details (broker sessions, pymodbus frames) at INFO/DEBUG.
    for name in ("amqtt", "transitions", "pymodbus", "pysnmp", "aiohttp.access"):
        logging.getLogger(name).setLevel(logging.ERROR)
