"""The dispatcher's planner wakes on request, and then waits its interval again."""

from __future__ import annotations

import asyncio
from datetime import datetime

from tests.support.content import TestContentGate
from tests.support.wait import eventually
from ttcs.core.hub import Hub


async def test_a_woken_planner_plans_once_and_then_waits_its_interval(
        idle_planner: tuple[Hub, TestContentGate]) -> None:
    hub, _ = idle_planner
    dispatcher = hub.dispatcher
    assert dispatcher is not None
    # the round it plans when it starts (a plan, then a sync of local schedules) is over
    await eventually(lambda: dispatcher.syncs == 1)
    rounds: list[datetime] = []
    plan = dispatcher.plan_once

    async def counted(now: datetime) -> int:
        rounds.append(now)
        return await plan(now)

    dispatcher.plan_once = counted  # type: ignore[method-assign]
    for turn in (1, 2):
        dispatcher.wake()
        await eventually(lambda turn=turn: len(rounds) == turn)  # type: ignore[misc]
        for _ in range(200):  # a planner that spins plans again on nearly every turn
            await asyncio.sleep(0)
        assert len(rounds) == turn
    assert dispatcher.syncs == 1  # woken to plan, not to sync
