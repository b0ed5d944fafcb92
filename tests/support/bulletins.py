"""A real approved emergency bulletin: spoken by espeak-ng, added to the hub's content
library, submitted and approved by the province's approver (Ed25519-signed)."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from ttcs.core.content import ContentDraft
from ttcs.core.hub import Hub

ISSUER = "UBND Thành phố Huế"


async def approved_flood_warning(hub: Hub, workdir: Path) -> str:
    """The id of an approved province-level emergency ("Cảnh báo lũ") in ``hub``'s library."""
    library = hub.content
    await library.approvers.add(ISSUER, "province", "46", "test")
    wav = workdir / "siren.wav"
    await asyncio.to_thread(subprocess.run, ["espeak-ng", "-v", "vi", "-w", str(wav),
                                             "Cảnh báo lũ"], check=True)
    item = await library.add(ContentDraft(
        title="Cảnh báo lũ", kind="audio", level="emergency", source_level="province",
        issuer=ISSUER, area_code="46"), "duty", file=wav)
    await library.submit(item.id, "duty")
    await library.approve(item.id, ISSUER, "duty-officer")
    return item.id
