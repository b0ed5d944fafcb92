"""What scheduling and dispatch need from the content library (implemented by
:class:`ttcs.core.content.ContentLibrary`)."""

from __future__ import annotations

from typing import Protocol

from ...schemas import Content, MediaRef


class PlayableMedia(Protocol):
    @property
    def media(self) -> MediaRef: ...

    @property
    def signature(self) -> str: ...


class ContentGate(Protocol):
    async def get(self, content_id: str) -> Content:
        """The content item, or :class:`~ttcs.core.errors.NotFound`."""

    async def verify_approval(self, content: Content) -> None:
        """Raise unless ``content`` is approved and unaltered since it was signed."""

    async def media_for(self, content: Content, area_code: str) -> MediaRef:
        """Audio for speakers in ``area_code`` (the file, or speech of the text in the area's
        voice)."""

    async def playable(self, content: Content, area_code: str) -> PlayableMedia:
        """Approval verified, then the media with a fresh signed URL and the token a device
        checks it against (``PlayCommand.signature``)."""

    def approval_token(self, content: Content) -> str:
        """The approval token of an approved item (``ShowCommand.signature`` for boards)."""
