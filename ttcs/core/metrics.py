"""The hub's metrics in the Prometheus text format (version 0.0.4), served at ``GET /metrics``.

Counters come from a bus subscription (events by type, command results by status, play
events by phase, alarms raised and cleared); gauges are computed when scraped from the hub's
live state (devices by kind and connectivity, active alarms, poller lag, queue drops).

The exposition is written here rather than with ``prometheus_client``: most of what we expose
is a gauge read from hub state at scrape time, which that library would need a custom
collector for anyway, and the format is a few lines of text. The tests parse the output
with ``prometheus_client``'s parser (a test-only dependency) to keep us honest.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

from .. import __version__
from ..schemas import (
    AlarmEvent,
    CommandResultEvent,
    CommandStatus,
    Connectivity,
    Event,
    PlayEvent,
    PlayPhase,
)

if TYPE_CHECKING:
    from .health import HealthMonitor
    from .hub import Hub
    from .playlog import PlayLogWriter

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = Mapping[str, str]
Sample = tuple[Labels, float]


class Dropping(Protocol):
    """Anything that takes events off the bus into a bounded queue and counts what it drops."""

    dropped: int


class Metrics:
    """Counts bus events and renders the hub's metrics on demand."""

    def __init__(self, hub: Hub, *, health: HealthMonitor | None = None,
                 playlog: PlayLogWriter | None = None,
                 consumers: Mapping[str, Dropping] | None = None) -> None:
        self._hub = hub
        self._health = health
        self._playlog = playlog
        self._consumers = dict(consumers or {})
        self.events: Counter[str] = Counter()
        self.commands: Counter[str] = Counter({s.value: 0 for s in CommandStatus})
        self.plays: Counter[str] = Counter({p.value: 0 for p in PlayPhase})
        self.alarms_raised: Counter[str] = Counter()
        self.alarms_cleared: Counter[str] = Counter()
        self._unsubscribe: Callable[[], None] = hub.bus.subscribe(self._count)

    def close(self) -> None:
        self._unsubscribe()

    def _count(self, event: Event) -> None:
        self.events[event.type] += 1
        if isinstance(event, CommandResultEvent):
            self.commands[event.result.status.value] += 1
        elif isinstance(event, PlayEvent):
            self.plays[event.phase.value] += 1
        elif isinstance(event, AlarmEvent):
            (self.alarms_raised if event.raised else self.alarms_cleared)[event.code] += 1

    # -- exposition ---------------------------------------------------------------------------

    def render(self) -> str:
        """The whole exposition, as Prometheus scrapes it."""
        hub, out = self._hub, Exposition()
        out.family("ttcs_info", "gauge", "Hub version and id.",
                   [({"version": __version__, "hub_id": hub.settings.hub_id}, 1)])
        out.family("ttcs_devices", "gauge", "Supervised devices by kind and connectivity.",
                   self._devices())
        out.family("ttcs_events_total", "counter", "Events published on the bus, by type.",
                   _by("type", self.events))
        out.family("ttcs_bus_events_published_total", "counter",
                   "Events published on the bus.", [({}, hub.bus.published)])
        drops: list[Sample] = [({"consumer": "streams"}, hub.bus.dropped)]
        drops += [({"consumer": name}, c.dropped) for name, c in sorted(self._consumers.items())]
        out.family("ttcs_bus_dropped_events_total", "counter",
                   "Events a bus consumer dropped because its queue was full.", drops)
        out.family("ttcs_commands_total", "counter", "Command results, by status.",
                   _by("status", self.commands))
        out.family("ttcs_play_events_total", "counter", "Proof-of-play events, by phase.",
                   _by("phase", self.plays))
        if self._playlog is not None:
            out.family("ttcs_playlog_rows_written_total", "counter",
                       "Play events written to the play log.", [({}, self._playlog.written)])
            out.family("ttcs_playlog_write_failures_total", "counter",
                       "Play events lost to store errors.", [({}, self._playlog.failed)])
        out.family("ttcs_alarms_raised_total", "counter", "Alarms raised, by code.",
                   _by("code", self.alarms_raised))
        out.family("ttcs_alarms_cleared_total", "counter", "Alarms cleared, by code.",
                   _by("code", self.alarms_cleared))
        if self._health is not None:
            out.family("ttcs_alarms_active", "gauge", "Active alarms, by code and severity.",
                       [({"code": code, "severity": severity}, n) for (code, severity), n
                        in sorted(self._health.active_counts().items())])
        self._poller(out)
        return out.text()

    def _devices(self) -> list[Sample]:
        counts: Counter[tuple[str, str]] = Counter()
        kinds: set[str] = set()
        for sup in self._hub.supervisors.values():
            kinds.add(sup.device.kind.value)
            counts[(sup.device.kind.value, sup.connectivity.value)] += 1
        # every (kind, connectivity) pair, zeros included, so a series never just vanishes
        return [({"kind": kind, "connectivity": c.value}, counts[(kind, c.value)])
                for kind in sorted(kinds) for c in Connectivity]

    def _poller(self, out: Exposition) -> None:
        jobs = [job for key in self._hub.supervisors
                if (job := self._hub.poller.job(key)) is not None]
        lateness = sorted(x for job in jobs for x in job.lateness)
        out.family("ttcs_poller_jobs", "gauge", "Devices polled by the shared poll loop.",
                   [({}, len(jobs))])
        out.family("ttcs_poller_skipped_runs_total", "counter", "Polls skipped because the "
                   "previous one was still running.", [({}, sum(j.skipped for j in jobs))])
        if lateness:
            stats = {"p50": statistics.median(lateness),
                     "p99": lateness[min(len(lateness) - 1, math.ceil(len(lateness) * 0.99) - 1)],
                     "max": lateness[-1]}
            out.family("ttcs_poller_lag_seconds", "gauge", "How late polls started against "
                       "their schedule (last 100 runs of each job).",
                       [({"stat": k}, v) for k, v in stats.items()])


def _by(label: str, counter: Mapping[str, int]) -> list[Sample]:
    return [({label: key}, value) for key, value in sorted(counter.items())]


class Exposition:
    """Builds text in the Prometheus exposition format."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(self, name: str, kind: str, help_: str, samples: Iterable[Sample]) -> None:
        self._lines.append(f"# HELP {name} {_escape_help(help_)}")
        self._lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self._lines.append(f"{name}{_labels(labels)} {_value(value)}")

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    body = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels.items())
    return "{" + body + "}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _value(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
