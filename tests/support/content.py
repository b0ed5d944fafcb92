"""A small content library for scheduling tests: media served over real HTTP, approval as a
digest recorded at approval time (the real library signs with Ed25519)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from aiohttp import web

from tests.support.net import free_port
from ttcs.core.errors import InvalidInput, NotFound
from ttcs.schemas import Approval, ApprovalState, Content, MediaRef


class TestContentGate:
    __test__ = False  # not a test class

    def __init__(self) -> None:
        self.items: dict[str, Content] = {}
        self.blobs: dict[str, bytes] = {}
        self._approved: dict[str, str] = {}
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    async def start(self) -> TestContentGate:
        app = web.Application()
        app.router.add_get("/media/{sha}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, request: web.Request) -> web.Response:
        blob = self.blobs.get(request.match_info["sha"])
        if blob is None:
            raise web.HTTPNotFound()
        return web.Response(body=blob, content_type="audio/wav")

    def add_audio(self, content_id: str, seconds: float, *, level: str = "normal",
                  approved: bool = True, area: str | None = None) -> Content:
        blob = f"RIFF-{content_id}-{seconds}".encode() * 10
        sha = hashlib.sha256(blob).hexdigest()
        self.blobs[sha] = blob
        media = MediaRef(url=f"http://127.0.0.1:{self.port}/media/{sha}", sha256=sha,
                         size=len(blob), duration=seconds, mime="audio/wav")
        content = Content(id=content_id, title=content_id, kind="audio", media=media,
                          level=level, issuer="UBND test", area_code=area)
        self.items[content_id] = content
        if approved:
            self.approve(content_id)
        return content

    def approve(self, content_id: str) -> None:
        content = self.items[content_id]
        approval = Approval(approved_by="approver", approved_at=datetime.now(UTC),
                            level="province", key_id="k1", signature="sig")
        content = content.model_copy(update={"state": ApprovalState.APPROVED,
                                             "approval": approval})
        self.items[content_id] = content
        self._approved[content_id] = self._digest(content)

    def alter(self, content_id: str, **changes: object) -> None:
        self.items[content_id] = self.items[content_id].model_copy(update=changes)

    @staticmethod
    def _digest(content: Content) -> str:
        return hashlib.sha256(content.model_dump_json(exclude={"approval", "state"}).encode()
                              ).hexdigest()

    async def get(self, content_id: str) -> Content:
        if content_id not in self.items:
            raise NotFound(f"no content {content_id}")
        return self.items[content_id]

    async def verify_approval(self, content: Content) -> None:
        if content.state is not ApprovalState.APPROVED or content.id not in self._approved:
            raise InvalidInput(f"content {content.id} is not approved")
        if self._digest(content) != self._approved[content.id]:
            raise InvalidInput(f"content {content.id} was altered after approval")

    async def media_for(self, content: Content, area_code: str) -> MediaRef | None:
        return content.media
