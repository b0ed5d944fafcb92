"""The dispatcher's planner wakes on request, and then waits its interval again."""

from __future__ import annotations

import asyncio
from datetime import datetime

from tests.support.content import TestContentGate
from tests.support.wait import eventually
from ttcs.core.config import Settings
from ttcs.core.dispatch import DispatchSettings
from ttcs.core.hub import Hub


async def test_a_woken_planner_plans_once_and_then_waits_its_interval(
        settings: Settings, amqtt_url: str) -> None:
    gate = await TestContentGate().start()
    hub = Hub(settings.model_copy(update={"mqtt_url": amqtt_url}), content=gate,
              dispatch=DispatchSettings(plan_interval=3600, sync_interval=3600))
    await hub.start()
    try:
        dispatcher = hub.dispatcher
        assert dispatcher is not None
        rounds: list[datetime] = []
        plan = dispatcher.plan_once

        async def counted(now: datetime) -> int:
            rounds.append(now)
            return await plan(now)

        dispatcher.plan_once = counted  # type: ignore[method-assign]
        await eventually(lambda: rounds)  # the round it plans when it starts
        for turn in (1, 2):
            dispatcher.wake()
            await eventually(lambda turn=turn: len(rounds) == 1 + turn)  # type: ignore[misc]
            for _ in range(200):  # a planner that spins plans again on nearly every turn
                await asyncio.sleep(0)
            assert len(rounds) == 1 + turn
    finally:
        await hub.stop()
        await gate.stop()
