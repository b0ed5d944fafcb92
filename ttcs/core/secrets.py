"""Encryption of device secrets at rest (Fernet: AES-128-CBC + HMAC-SHA256).

The key comes from ``TTCS_SECRET_KEY`` (or ``TTCS_SECRET_KEY_FILE``) or, on a single machine,
from ``<home>/secret.key``, created with mode 0600 on first use.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from .errors import ConfigError


class SecretBox:
    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except ValueError as exc:
            raise ConfigError("the secret key must be 32 url-safe base64-encoded bytes "
                              "(generate one with `ttcs keygen` or Fernet.generate_key())") from exc

    @classmethod
    def for_home(cls, home: Path, env: dict[str, str] | None = None) -> SecretBox:
        env = dict(os.environ) if env is None else env
        if env.get("TTCS_SECRET_KEY"):
            return cls(env["TTCS_SECRET_KEY"].encode())
        path = Path(env["TTCS_SECRET_KEY_FILE"]) if env.get("TTCS_SECRET_KEY_FILE") else (
            home / "secret.key")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def seal(self, values: dict[str, str]) -> str:
        return self._fernet.encrypt(json.dumps(values, sort_keys=True).encode()).decode()

    def open(self, token: str) -> dict[str, str]:
        try:
            data = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise ConfigError("cannot decrypt stored device secrets: the secret key changed "
                              "or the data was altered") from exc
        if not isinstance(data, dict):
            raise ConfigError("stored device secrets are not a mapping")
        return {str(k): str(v) for k, v in data.items()}
