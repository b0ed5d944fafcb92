"""Capture every log line the hub and the plugin write during a certification run.

The kit reconfigures structlog (JSON lines, debug level, through the hub's own processors —
including the secret mask, which is what is under test) and the standard library's root logger
to write into memory, and restores the previous configuration afterwards. Cases read the
lines written while they ran; TC-SEC-001 searches all of them for the configured secrets.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterable
from typing import Any

import structlog

from ..core.logging import configure

#: libraries that log every packet at debug level; kept at warning so the capture stays small
CHATTY = ("amqtt", "transitions", "pymodbus", "pysnmp", "aiohttp.access", "asyncio",
          "mqtt", "aiomqtt", "paho", "aiosqlite", "sqlalchemy", "alembic", "PIL")

REDACTED = "«secret»"


class _Lines(io.TextIOBase):
    """A text stream that keeps complete lines (thread-safe: stdlib handlers may be in threads)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._partial = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            data = self._partial + text
            *complete, self._partial = data.split("\n")
            self.lines.extend(line for line in complete if line)
        return len(text)

    def flush(self) -> None:
        return None


class LogCapture:
    """``with LogCapture() as logs:`` … ``logs.lines`` holds every line written meanwhile."""

    def __init__(self) -> None:
        self._stream = _Lines()
        self._saved: dict[str, Any] | None = None
        self._saved_root: tuple[list[logging.Handler], int] | None = None
        self._saved_levels: dict[str, int] = {}

    @property
    def lines(self) -> list[str]:
        return self._stream.lines

    def mark(self) -> int:
        """A position to read the lines written from now on (:meth:`since`)."""
        return len(self._stream.lines)

    def since(self, mark: int) -> list[str]:
        return self._stream.lines[mark:]

    def __enter__(self) -> LogCapture:
        self._saved = structlog.get_config()
        root = logging.getLogger()
        self._saved_root = (list(root.handlers), root.level)
        configure("json", "debug", stream=self._stream)
        root.setLevel(logging.DEBUG)  # a plugin's own stdlib logger at info/debug is captured too
        for name in CHATTY:
            lib = logging.getLogger(name)
            self._saved_levels[name] = lib.level
            lib.setLevel(logging.WARNING)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            structlog.configure(**self._saved)
        if self._saved_root is not None:
            root = logging.getLogger()
            for handler in list(root.handlers):
                root.removeHandler(handler)
            for handler in self._saved_root[0]:
                root.addHandler(handler)
            root.setLevel(self._saved_root[1])
        for name, level in self._saved_levels.items():
            logging.getLogger(name).setLevel(level)


def leaks(lines: Iterable[str], secrets: Iterable[str]) -> list[tuple[int, str]]:
    """(line number, secret's first characters) for every line containing a secret."""
    found = []
    forms = _forms(secrets)
    for n, line in enumerate(lines, 1):
        for secret, form in forms:
            if form in line:
                found.append((n, secret[:2] + "…"))
                break
    return found


def _forms(secrets: Iterable[str]) -> list[tuple[str, str]]:
    """(secret, how it may appear): as is, and JSON-escaped (the JSON renderer escapes
    non-ASCII). Shorter "secrets" than 4 characters would match everywhere and are skipped."""
    forms = []
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 4:
            forms.append((secret, secret))
            escaped = json.dumps(secret)[1:-1]
            if escaped != secret:
                forms.append((secret, escaped))
    return forms


def redact(line: str, secrets: Iterable[str]) -> str:
    """``line`` with every secret replaced, so a report never republishes a leak."""
    for _, form in _forms(secrets):
        line = line.replace(form, REDACTED)
    return line


__all__ = ["REDACTED", "LogCapture", "leaks", "redact"]
