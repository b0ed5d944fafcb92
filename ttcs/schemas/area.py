"""Administrative areas: a tree of any depth, keyed by official unit codes."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from .base import Identifier, Model


class AreaType(StrEnum):
    """The kind of administrative unit. Policies are keyed by it (ward = urban, commune = rural)."""

    COUNTRY = "country"
    PROVINCE = "province"  # tỉnh
    MUNICIPALITY = "municipality"  # thành phố trực thuộc trung ương
    DISTRICT = "district"  # huyện/quận/thị xã — abolished 1 July 2025, kept for older data
    WARD = "ward"  # phường (urban)
    COMMUNE = "commune"  # xã (rural)
    TOWNSHIP = "township"  # thị trấn — pre-2025 urban commune
    SPECIAL_ZONE = "special_zone"  # đặc khu
    VILLAGE = "village"  # thôn, bản, ấp, buôn
    RESIDENTIAL_GROUP = "residential_group"  # tổ dân phố, khu phố


#: Area types at the level of a commune (the level that runs a station).
COMMUNE_LEVEL = frozenset({AreaType.WARD, AreaType.COMMUNE, AreaType.TOWNSHIP,
                           AreaType.SPECIAL_ZONE})
#: Area types below a commune.
VILLAGE_LEVEL = frozenset({AreaType.VILLAGE, AreaType.RESIDENTIAL_GROUP})


class Area(Model):
    """One administrative unit. ``parent_code`` links it into the tree; the root has none."""

    code: Identifier = Field(description="official administrative unit code, or a local code "
                             "for villages (e.g. '19900-01')", examples=["46", "19900"])
    name: str = Field(min_length=1, max_length=200, examples=["Phường Thuận An"])
    type: AreaType
    parent_code: Identifier | None = None
