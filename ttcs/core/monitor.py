"""Monitoring inside a running hub: proof of play, health and alarms, metrics.

:meth:`Monitor.start` is called by ``Hub.start`` before any device is supervised, so every
event from the first one on is stored, watched and counted; ``Hub.stop`` stops it after the
supervisors (the last play events are still written).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .health import HealthMonitor
from .metrics import Dropping, Metrics
from .playlog import PlayLogWriter

if TYPE_CHECKING:
    from .hub import Hub


class Monitor:
    """The running play-log writer, health monitor and metrics of one hub."""

    def __init__(self, playlog: PlayLogWriter, health: HealthMonitor, metrics: Metrics) -> None:
        self.playlog = playlog
        self.health = health
        self.metrics = metrics

    @classmethod
    async def start(cls, hub: Hub, *, recorder: Dropping | None = None) -> Monitor:
        """Subscribe everything to ``hub.bus``; ``recorder`` is the event recorder, whose
        drops the metrics report."""

        def village_of(device_id: str) -> str | None:
            sup = hub.supervisors.get(device_id)
            return sup.device.village_code if sup is not None else None

        playlog = PlayLogWriter(hub.store, hub.bus, village_of=village_of,
                                skew_tolerance=hub.settings.clock_skew_tolerance)
        playlog.start()
        health = HealthMonitor(hub.store, hub.bus, hub.settings.alarms)
        await health.start()
        consumers: dict[str, Dropping] = {"playlog": playlog}
        if recorder is not None:
            consumers["event_recorder"] = recorder
        metrics = Metrics(hub, health=health, playlog=playlog, consumers=consumers)
        return cls(playlog, health, metrics)

    async def stop(self) -> None:
        self.metrics.close()
        await self.health.stop()
        await self.playlog.stop()
