"""Fixtures for the content library: an opened hub on SQLite or PostgreSQL with areas from
three regions and approvers at each level."""

from __future__ import annotations

import io
import math
import struct
import wave
from collections.abc import AsyncIterator

import pytest

from tests.conftest import SAMPLE_AREAS
from ttcs.core.config import Settings
from ttcs.core.content import ContentDraft
from ttcs.core.hub import Hub
from ttcs.schemas import Area, AreaType, Content, IssuingLevel

#: Huế (central, from conftest) plus Hà Nội (north) and Hồ Chí Minh City (south), and a ward of
#: Hà Nội whose official code "91" is also An Giang's province code.
AREAS = [
    Area(code="VN", name="Việt Nam", type=AreaType.COUNTRY),
    *[a.model_copy(update={"parent_code": "VN"}) if a.code == "46" else a
      for a in SAMPLE_AREAS],
    Area(code="1", name="Thành phố Hà Nội", type=AreaType.MUNICIPALITY, parent_code="VN"),
    Area(code="91", name="Phường Phú Thượng", type=AreaType.WARD, parent_code="1"),
    Area(code="79", name="Thành phố Hồ Chí Minh", type=AreaType.MUNICIPALITY,
         parent_code="VN"),
    Area(code="26734", name="Phường Sài Gòn", type=AreaType.WARD, parent_code="79"),
]

#: name -> (level, area): one approver per level and place
APPROVERS = {
    "chu-tich-phu-vinh": (IssuingLevel.COMMUNE, "20101"),
    "chu-tich-thuan-an": (IssuingLevel.COMMUNE, "19900"),
    "ubnd-hue": (IssuingLevel.PROVINCE, "46"),
    "ubnd-ha-noi": (IssuingLevel.PROVINCE, "1"),
    "bo-tttt": (IssuingLevel.CENTRAL, None),
}


def wav_bytes(seconds: float = 0.25, rate: int = 8000, tone: float = 440.0) -> bytes:
    """A mono 16-bit PCM WAV of a sine tone."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * tone * n / rate)))
            for n in range(int(seconds * rate))))
    return buf.getvalue()


def draft(**overrides: object) -> ContentDraft:
    fields: dict[str, object] = {
        "title": "Thông báo lịch tiêm chủng", "issuer": "UBND xã Phú Vinh",
        "text": "Kính thưa bà con, sáng mai trạm y tế xã tổ chức tiêm chủng.",
        "area_code": "20101", "source_level": "commune"}
    return ContentDraft.model_validate({**fields, **overrides})


async def approved(hub: Hub, item: Content, approver: str = "chu-tich-phu-vinh") -> Content:
    await hub.content.submit(item.id, "test")
    return await hub.content.approve(item.id, approver, "test")


@pytest.fixture
async def content_hub(settings: Settings, database_url: str) -> AsyncIterator[Hub]:
    """An opened hub (store, registry, content) on SQLite and on PostgreSQL."""
    hub = Hub(settings.model_copy(update={"database_url": database_url}))
    await hub.open()
    await hub.registry.import_areas(AREAS, "test")
    for name, (level, area) in APPROVERS.items():
        await hub.content.approvers.add(name, level, area, "test")
    yield hub
    await hub.stop()


@pytest.fixture
async def sqlite_hub(settings: Settings) -> AsyncIterator[Hub]:
    """The same on SQLite only, for behaviour that does not depend on the database."""
    hub = Hub(settings)
    await hub.open()
    await hub.registry.import_areas(AREAS, "test")
    for name, (level, area) in APPROVERS.items():
        await hub.content.approvers.add(name, level, area, "test")
    yield hub
    await hub.stop()
