"""Content (what is broadcast) and its approval record."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AnyUrl, Field, model_validator

from .base import AwareDatetime, Identifier, Model, Sha256Hex, utcnow


class BulletinLevel(StrEnum):
    """The three bulletin levels of the ministry's rules for IP commune stations."""

    NORMAL = "normal"  # offered to the commune, which decides whether it enters its schedule
    PRIORITY = "priority"  # must play; the commune orders its own priority items
    EMERGENCY = "emergency"  # plays at once, preempting everything

    @property
    def rank(self) -> int:
        """Higher wins: emergency (2) > priority (1) > normal (0)."""
        return _RANK[self]


_RANK = {BulletinLevel.NORMAL: 0, BulletinLevel.PRIORITY: 1, BulletinLevel.EMERGENCY: 2}


class IssuingLevel(StrEnum):
    """The level of government that issued (and must approve) a bulletin."""

    CENTRAL = "central"
    PROVINCE = "province"
    DISTRICT = "district"  # pre-2025 structures
    COMMUNE = "commune"


class ContentKind(StrEnum):
    AUDIO = "audio"
    TEXT = "text"
    IMAGE = "image"
    VIDEO = "video"


class ApprovalState(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"


class MediaRef(Model):
    """Where a device fetches a media file and how it checks it was not altered."""

    url: AnyUrl
    sha256: Sha256Hex
    size: int = Field(ge=0, description="bytes")
    duration: float | None = Field(default=None, ge=0, description="seconds, for audio/video")
    mime: str = Field(default="application/octet-stream", max_length=100)


class Approval(Model):
    """Who approved a content item, when, and the signature that binds it to its bytes."""

    approved_by: str = Field(min_length=1, max_length=200)
    approved_at: AwareDatetime
    level: IssuingLevel
    key_id: str = Field(description="identifier of the Ed25519 key that signed")
    signature: str = Field(description="base64 Ed25519 signature over the content digest")


class Content(Model):
    """A bulletin: audio, text, image or video, with its level and approval."""

    id: Identifier
    title: str = Field(min_length=1, max_length=300)
    kind: ContentKind
    media: MediaRef | None = None
    text: str | None = Field(default=None, max_length=20_000)
    language: str = Field(default="vi", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
                          description="BCP 47 tag, e.g. 'vi', 'vi-VN'")
    level: BulletinLevel = BulletinLevel.NORMAL
    source_level: IssuingLevel = IssuingLevel.COMMUNE
    issuer: str = Field(min_length=1, max_length=300, description="issuing agency")
    area_code: Identifier | None = Field(default=None, description="owning area (scoping)")
    state: ApprovalState = ApprovalState.DRAFT
    approval: Approval | None = None
    created_by: str | None = None
    created_at: AwareDatetime = Field(default_factory=utcnow)

    @model_validator(mode="after")
    def _has_body(self) -> Content:
        if self.kind is ContentKind.TEXT and not self.text:
            raise ValueError("a text bulletin needs 'text'")
        if self.kind is not ContentKind.TEXT and self.media is None:
            raise ValueError(f"a {self.kind.value} bulletin needs 'media' (url, sha256, size)")
        if self.state is ApprovalState.APPROVED and self.approval is None:
            raise ValueError("an approved content item needs its 'approval' record")
        return self
