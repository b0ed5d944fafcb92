"""What scheduling and dispatch need from the content library (implemented by
:class:`ttcs.core.content.ContentService`)."""

from __future__ import annotations

from typing import Protocol

from ...schemas import Content, MediaRef


class ContentGate(Protocol):
    async def get(self, content_id: str) -> Content:
        """The content item, or :class:`~ttcs.core.errors.NotFound`."""

    async def verify_approval(self, content: Content) -> None:
        """Raise unless ``content`` is approved and unaltered since it was signed."""

    async def media_for(self, content: Content, area_code: str) -> MediaRef | None:
        """Audio for speakers in ``area_code`` (the file, or speech of the text in the area's
        voice); ``None`` when the content has no audio form."""
