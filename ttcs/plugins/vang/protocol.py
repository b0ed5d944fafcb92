"""The VangTech speaker API v1 as the driver sees it: paths, signing scheme, and how its
priorities and play-log results map to the hub's levels and proof-of-play phases."""

from __future__ import annotations

from ...adapters.signing import HmacScheme
from ...schemas import BulletinLevel, PlayPhase

VENDOR = "VangTech"
API = "/api/v1"
SCHEME = HmacScheme(name="VANG1-HMAC-SHA256", header_prefix="X-Vang-")

#: the speaker's priority (1-9; a job preempts one of equal or lower priority) for each level.
#: Each level takes the top of the vendor's band for it (1-3 normal, 4-6 priority, 7-9
#: emergency), so a hub bulletin preempts whatever was started on site in its band or below.
PRIORITY = {BulletinLevel.NORMAL: 3, BulletinLevel.PRIORITY: 6, BulletinLevel.EMERGENCY: 9}

#: play-log ``result`` of an ``end`` entry -> proof-of-play phase
PHASES = {"completed": PlayPhase.FINISHED, "error": PlayPhase.FAILED,
          "stopped": PlayPhase.INTERRUPTED, "preempted": PlayPhase.INTERRUPTED,
          "power_lost": PlayPhase.INTERRUPTED, "reboot": PlayPhase.INTERRUPTED}
