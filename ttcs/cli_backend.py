"""Where a CLI command does its work: the local store (and plugins) or a running hub's API.

``ttcs --url https://hub.example …`` (or ``TTCS_URL``) sends the commands that the API offers
to a running hub, with the token from ``TTCS_TOKEN`` or the file named by
``TTCS_TOKEN_FILE`` (never from the command line); without a URL the same commands open the
local store. Both implement :class:`Backend`, so a command prints the same output and exits
with the same code either way; an API problem becomes the same one-line ``error:``.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from pydantic import TypeAdapter

from .adapters.http import map_http_errors
from .core.config import Settings
from .core.errors import TTCSError
from .schemas import (
    COMMAND_ADAPTER,
    Area,
    Broadcast,
    Command,
    CommandResult,
    Device,
    DeviceStatus,
)


class RemoteError(TTCSError):
    """The hub's API answered with a problem (its ``detail`` is the message)."""


class Backend(Protocol):
    async def list_areas(self, *, parent: str | None, type_: str | None,
                         under: str | None) -> list[Area]: ...
    async def list_devices(self, **filters: Any) -> list[Device]: ...
    async def connectivity_of(self, device_ids: list[str]) -> dict[str, str]: ...
    async def get_device(self, device_id: str) -> Device: ...
    async def stored_status(self, device_id: str) -> DeviceStatus: ...
    async def live_status(self, device_id: str) -> DeviceStatus: ...
    async def execute(self, device_id: str, command: Command, actor: str) -> CommandResult: ...
    async def remove_device(self, device_id: str, actor: str) -> None: ...
    async def create_broadcast(self, broadcast: Broadcast, actor: str,
                               owner: str | None) -> dict[str, Any]: ...
    async def list_broadcasts(self, *, state: str | None, limit: int) -> list[Broadcast]: ...
    async def cancel_broadcast(self, broadcast_id: str, actor: str) -> None: ...
    async def verify_audit(self) -> dict[str, Any]: ...


class LocalBackend:
    """The hub's services on the local store (what the CLI always did)."""

    def __init__(self, hub: Any) -> None:
        self.hub = hub

    async def list_areas(self, *, parent: str | None, type_: str | None,
                         under: str | None) -> list[Area]:
        return list(await self.hub.registry.list_areas(parent=parent, type_=type_,
                                                       under=under))

    async def list_devices(self, **filters: Any) -> list[Device]:
        return list(await self.hub.registry.list_devices(**filters))

    async def connectivity_of(self, device_ids: list[str]) -> dict[str, str]:
        return dict(await self.hub.registry.connectivity_of(device_ids))

    async def get_device(self, device_id: str) -> Device:
        device: Device = await self.hub.registry.get_device(device_id)
        return device

    async def stored_status(self, device_id: str) -> DeviceStatus:
        status: DeviceStatus = await self.hub.registry.get_status(device_id)
        return status

    async def live_status(self, device_id: str) -> DeviceStatus:
        status: DeviceStatus = await self.hub.read_status(device_id)
        return status

    async def execute(self, device_id: str, command: Command, actor: str) -> CommandResult:
        result: CommandResult = await self.hub.execute(device_id, command, actor=actor)
        return result

    async def remove_device(self, device_id: str, actor: str) -> None:
        await self.hub.registry.remove_device(device_id, actor)

    async def create_broadcast(self, broadcast: Broadcast, actor: str,
                               owner: str | None) -> dict[str, Any]:
        plan = await self.hub.broadcasts.create(broadcast, actor, owner_area=owner)
        return {"id": broadcast.id, "level": plan.broadcast.level,
                "devices": len(plan.devices), "seconds": plan.seconds,
                "offers": {c: state for c, (state, _) in plan.offers.items()}}

    async def list_broadcasts(self, *, state: str | None, limit: int) -> list[Broadcast]:
        return list(await self.hub.broadcasts.list_broadcasts(state=state, limit=limit))

    async def cancel_broadcast(self, broadcast_id: str, actor: str) -> None:
        await self.hub.broadcasts.cancel(broadcast_id, actor)

    async def verify_audit(self) -> dict[str, Any]:
        return dict((await self.hub.store.audit.verify()).__dict__)


def read_token(env: dict[str, str] | None = None) -> str:
    """The API token from ``TTCS_TOKEN`` or the file ``TTCS_TOKEN_FILE`` names."""
    env = dict(os.environ) if env is None else env
    if env.get("TTCS_TOKEN"):
        return env["TTCS_TOKEN"].strip()
    if env.get("TTCS_TOKEN_FILE"):
        try:
            return Path(env["TTCS_TOKEN_FILE"]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise RemoteError(f"cannot read TTCS_TOKEN_FILE: {exc}") from exc
    raise RemoteError("talking to a hub needs a token: set TTCS_TOKEN_FILE (or TTCS_TOKEN); "
                      "create one with `ttcs tokens create USER --out FILE` on the hub")


class RemoteBackend:
    """The same operations through a running hub's ``/api/v1``."""

    def __init__(self, url: str, token: str, session: aiohttp.ClientSession,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.base = url.rstrip("/") + "/api/v1"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._session = session
        self._ssl = ssl_context

    async def _call(self, method: str, path: str, *, body: Any = None,
                    params: dict[str, Any] | None = None) -> Any:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        with map_http_errors(f"the hub at {self.base}"):
            async with self._session.request(
                    method, self.base + path if path.startswith("/") else path, json=body,
                    params=query, headers=self._headers,
                    ssl=self._ssl if self._ssl is not None else True) as response:
                text = await response.text()
                status = response.status
        data = json.loads(text) if text else None
        if status >= 400:
            detail = data.get("detail") if isinstance(data, dict) else None
            raise RemoteError(detail or f"the hub answered {status}")
        return data

    async def _pages(self, path: str, params: dict[str, Any], limit: int | None) -> list[Any]:
        items: list[Any] = []
        page = await self._call("GET", path, params={**params, "limit": min(limit or 500,
                                                                            500)})
        while True:
            items += page["items"]
            if not page.get("next") or (limit is not None and len(items) >= limit):
                break
            page = await self._call("GET", self.base.rsplit("/api/v1", 1)[0] + page["next"])
        return items[:limit] if limit is not None else items

    async def list_areas(self, *, parent: str | None, type_: str | None,
                         under: str | None) -> list[Area]:
        rows = await self._pages("/areas", {"parent": parent, "type": type_,
                                            "under": under}, None)
        return [Area.model_validate(r) for r in rows]

    async def list_devices(self, **filters: Any) -> list[Device]:
        limit = filters.pop("limit", None)
        offset = filters.pop("offset", 0)
        rows = await self._pages("/devices", {**filters, "offset": offset or None}, limit)
        return [Device.model_validate(r) for r in rows]

    async def connectivity_of(self, device_ids: list[str]) -> dict[str, str]:
        found = {}
        for device_id in device_ids:
            status = await self._call("GET", f"/devices/{device_id}/status")
            found[device_id] = status["connectivity"]
        return found

    async def get_device(self, device_id: str) -> Device:
        return Device.model_validate(await self._call("GET", f"/devices/{device_id}"))

    async def stored_status(self, device_id: str) -> DeviceStatus:
        return DeviceStatus.model_validate(
            await self._call("GET", f"/devices/{device_id}/status"))

    async def live_status(self, device_id: str) -> DeviceStatus:
        return DeviceStatus.model_validate(
            await self._call("POST", f"/devices/{device_id}/status"))

    async def execute(self, device_id: str, command: Command, actor: str) -> CommandResult:
        body = COMMAND_ADAPTER.dump_python(command, mode="json")
        return CommandResult.model_validate(
            await self._call("POST", f"/devices/{device_id}/commands", body=body))

    async def remove_device(self, device_id: str, actor: str) -> None:
        await self._call("DELETE", f"/devices/{device_id}")

    async def create_broadcast(self, broadcast: Broadcast, actor: str,
                               owner: str | None) -> dict[str, Any]:
        if owner is not None:
            raise RemoteError("--owner is not used over the API: a broadcast belongs to the "
                              "area of the account that creates it")
        body = broadcast.model_dump(mode="json", include={
            "content_id", "targets", "schedule", "level", "volume", "repeat", "valid_from",
            "valid_until"}, exclude_none=True)
        made = await self._call("POST", "/broadcasts", body=body)
        return {"id": made["broadcast"]["id"], "level": made["broadcast"]["level"],
                "devices": made["devices"], "seconds": made["seconds"],
                "offers": made["offers"]}

    async def list_broadcasts(self, *, state: str | None, limit: int) -> list[Broadcast]:
        rows = await self._pages("/broadcasts", {"state": state}, limit)
        return TypeAdapter(list[Broadcast]).validate_python(rows)

    async def cancel_broadcast(self, broadcast_id: str, actor: str) -> None:
        await self._call("POST", f"/broadcasts/{broadcast_id}/cancel")

    async def verify_audit(self) -> dict[str, Any]:
        return dict(await self._call("GET", "/audit/verify"))


async def with_backend(settings: Settings, url: str | None,
                       work: Callable[[Backend], Awaitable[int]]) -> int:
    """Run ``work`` on the hub at ``url`` (API) or, without one, on the local store."""
    if url:
        token = read_token()
        context = None
        if ca := os.environ.get("TTCS_CA_FILE"):
            context = ssl.create_default_context(cafile=ca)
        timeout = aiohttp.ClientTimeout(total=settings.command_timeout * 3 + 30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            return await work(RemoteBackend(url, token, session, context))
    from .cli import with_hub

    return await with_hub(settings, lambda hub: work(LocalBackend(hub)))
