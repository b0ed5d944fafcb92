"""Fixtures shared by the core tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.content import TestContentGate
from ttcs.core.config import Settings
from ttcs.core.dispatch import DispatchSettings
from ttcs.core.hub import Hub


@pytest.fixture
async def idle_planner(settings: Settings, amqtt_url: str
                       ) -> AsyncIterator[tuple[Hub, TestContentGate]]:
    """A started hub on the embedded broker whose planner plans once as it starts and then
    only when woken (its rounds are an hour apart), with a test content gate."""
    gate = await TestContentGate().start()
    hub = Hub(settings.model_copy(update={"mqtt_url": amqtt_url}), content=gate,
              dispatch=DispatchSettings(plan_interval=3600, sync_interval=3600))
    await hub.start()
    try:
        yield hub, gate
    finally:
        await hub.stop()
        await gate.stop()
