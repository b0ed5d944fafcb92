"""Hub workers: several processes serving one hub's devices (``ttcs serve --worker``).

- **Traffic.** Every worker subscribes to the devices' high-rate uplink (native ``status``
  and ``event``) through an MQTT 5 shared subscription (``$share/<group>/…``): the broker
  hands each message to one worker of the group. Low-rate retained state (``birth``,
  ``conn``) and command acknowledgements (``ack``) are subscribed by every worker without
  sharing: each worker then knows every device's presence, and the worker that sent a
  command hears its acknowledgement whichever worker it is.
- **Who reports what.** A device's presence changes (birth, last will) are reported by one
  worker, its *owner*: rendezvous hashing of the device over the live workers. Poll-based
  devices are polled by their owner only (children with their parent: the key is the root).
- **Workers see each other** through the ``workers`` table: each writes a heartbeat every
  ``worker_heartbeat`` seconds (database time, so host clocks do not matter); the live set
  is the rows younger than ``worker_timeout``.
- **One leader** runs the planner and the outbox sender: the worker that holds a PostgreSQL
  advisory lock on a connection of its own. Standbys try for the lock at every heartbeat; the
  lock goes with the leader's connection, so a dead leader's is free as soon as PostgreSQL
  sees the connection close. A leader whose lock connection fails steps down at once; a
  leader whose heartbeat stopped while its connection lives (a hung process) has its lock
  connection terminated by a standby. The outbox's idempotency keys make a row sent by the
  old leader and again by the new one play once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import structlog
from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import make_url

from ..aio import cancel_and_wait, wait_for
from .config import Settings, redact_url
from .errors import ConfigError
from .store import Store
from .store.tables import WorkerRow

log = structlog.get_logger("ttcs.workers")

#: PostgreSQL advisory lock key held by the leader (advisory locks are per database)
LEADER_LOCK = 0x77C5A0D2

LEADER = "leader"
STANDBY = "standby"


# -- what a worker needs ----------------------------------------------------------------------


def refuse_unsuitable(settings: Settings) -> None:
    """Refuse worker settings that cannot work, with what to do instead."""
    backend = make_url(settings.database).get_backend_name()
    if backend != "postgresql":
        raise ConfigError(
            f"workers need PostgreSQL (the database is {backend}: "
            f"{redact_url(settings.database)}); set TTCS_DATABASE_URL to "
            "postgresql+asyncpg://USER:PASSWORD@HOST/DB, or run one hub without --worker")
    if settings.embedded_broker:
        raise ConfigError(
            "workers need an external MQTT 5 broker (e.g. Mosquitto 2), not the embedded one "
            "(--embedded-broker / --demo): each worker runs in its own process and the "
            "embedded broker speaks MQTT 3.1.1 only; set TTCS_MQTT_URL to the broker")


def with_mqtt5(url: str) -> str:
    """``url`` asking for MQTT 5 (shared subscriptions are an MQTT 5 feature)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "version"]
    query.append(("version", "5"))
    return urlunsplit(parts._replace(query=urlencode(query)))


async def check_broker(settings: Settings, timeout: float = 10.0) -> None:
    """Connect to the broker with MQTT 5 and subscribe a shared filter: a broker that cannot
    (MQTT 3.1.1 only, shared subscriptions off) is refused before anything else starts."""
    from ..adapters.mqtt import MqttEndpoint
    from ..adapters.mqtt_wire import SUBSCRIBE, UNSUBSCRIBE, MqttError

    endpoint = MqttEndpoint.from_url(with_mqtt5(settings.mqtt_url))
    probe = f"$share/{settings.worker_group}/ttcs/v1/probe/{uuid.uuid4().hex}"
    try:
        async with asyncio.timeout(timeout):
            session = await endpoint.session(f"ttcs-probe-{uuid.uuid4().hex[:8]}",
                                             on_message=lambda _: None, version=5,
                                             timeout=timeout)
            try:
                granted = await session.request(SUBSCRIBE, [(probe, 1)])
                await session.request(UNSUBSCRIBE, [(probe, 0)])
            finally:
                await session.disconnect()
    except (MqttError, OSError, TimeoutError) as exc:
        raise ConfigError(
            f"workers need an MQTT 5 broker with shared subscriptions; "
            f"{endpoint.display} refused an MQTT 5 connection ({exc or type(exc).__name__}). "
            "Use Mosquitto 2 (or EMQX, VerneMQ, HiveMQ) as TTCS_MQTT_URL") from None
    if not granted or any(c >= 0x80 for c in granted):
        raise ConfigError(f"the broker {endpoint.display} refused a shared subscription "
                          f"(reason {granted}); enable shared subscriptions on it")


# -- partitioning -----------------------------------------------------------------------------


def _weight(worker_id: str, key: str) -> bytes:
    return hashlib.blake2b(f"{worker_id}\x00{key}".encode(), digest_size=8).digest()


def rendezvous(key: str, workers: tuple[str, ...]) -> str:
    """The worker that owns ``key`` (highest random weight): every worker computes the same
    answer from the same live set, and a worker leaving moves only its own keys."""
    return max(workers, key=lambda w: _weight(w, key))


# -- the worker set ---------------------------------------------------------------------------


class WorkerSet:
    """This process as one worker: heartbeats, the live set, ownership, leadership."""

    def __init__(self, settings: Settings, store: Store, *,
                 lead: Callable[[], Awaitable[None]],
                 stand_by: Callable[[], Awaitable[None]],
                 stats: Callable[[], tuple[int, int, int]],
                 api_url: str | None = None) -> None:
        self.settings = settings
        self.store = store
        self._lead = lead
        self._stand_by = stand_by
        self._stats = stats  # (statuses applied, devices supervised, poll devices owned)
        self.api_url = api_url
        host = socket.gethostname()
        self.id = f"{settings.hub_id}-{host}-{os.getpid()}-{uuid.uuid4().hex[:4]}"
        self.host = host
        self.started_at = datetime.now(UTC)
        self.live: tuple[str, ...] = (self.id,)
        self.leader = False
        self._owned: dict[str, bool] = {}
        self._lock_conn: Any = None  # asyncpg connection holding the leader lock
        self._task: asyncio.Task[None] | None = None
        self.takeovers = 0  # times this worker became leader

    # -- ownership ----------------------------------------------------------------------------

    def owns(self, key: str) -> bool:
        """Whether this worker is the owner of ``key`` (a device id or serial)."""
        owned = self._owned.get(key)
        if owned is None:
            if len(self._owned) > 1_000_000:
                self._owned.clear()
            owned = self._owned[key] = len(self.live) == 1 or rendezvous(key, self.live) == \
                self.id
        return owned

    # -- lifecycle ----------------------------------------------------------------------------

    async def join(self) -> None:
        """Announce this worker and learn the others (before devices are supervised, so
        ownership is known when the retained messages arrive)."""
        await self.heartbeat()
        await self.refresh()

    async def begin(self) -> None:
        """Bid for leadership once, then keep beating in the background."""
        await self._leadership()
        self._task = asyncio.create_task(self._run(), name="worker-heartbeat")

    async def pause(self) -> None:
        """Stop beating and bidding (leadership, if held, is kept until :meth:`stop`)."""
        if self._task is not None:
            await cancel_and_wait(self._task, "worker heartbeat")
            self._task = None

    async def stop(self) -> None:
        """Leave: give up leadership and remove this worker's row."""
        await self.pause()
        self.leader = False
        await self._release()
        with contextlib.suppress(Exception):
            async with self.store.sessions.begin() as s:
                await s.execute(delete(WorkerRow).where(WorkerRow.id == self.id))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.worker_heartbeat)
            try:
                await self.tick()
            except Exception:  # the database was away: try again at the next beat
                log.warning("worker.tick_failed", worker=self.id, exc_info=True)

    async def tick(self) -> None:
        await self._leadership()
        await self.heartbeat()
        await self.refresh()

    # -- heartbeats and the live set ----------------------------------------------------------

    async def heartbeat(self) -> None:
        statuses, devices, polled = self._stats()
        values = {"host": self.host, "pid": os.getpid(),
                  "role": LEADER if self.leader else STANDBY, "heartbeat_at": func.now(),
                  "statuses": statuses, "devices": devices, "polled": polled,
                  "api_url": self.api_url}
        statement = pg_insert(WorkerRow).values(id=self.id, started_at=self.started_at,
                                                **values)
        statement = statement.on_conflict_do_update(index_elements=["id"], set_=values)
        async with self.store.sessions.begin() as s:
            await s.execute(statement)

    async def refresh(self) -> None:
        """Read the live set; forget ownership when it changed."""
        cutoff = func.now() - text(f"interval '{float(self.settings.worker_timeout)} seconds'")
        async with self.store.sessions.begin() as s:
            ids = tuple(sorted((await s.execute(select(WorkerRow.id).where(
                WorkerRow.heartbeat_at >= cutoff))).scalars()))
            # rows of workers long dead (killed, never stopped) are cleared after a while
            await s.execute(delete(WorkerRow).where(WorkerRow.heartbeat_at < func.now() - text(
                f"interval '{float(self.settings.worker_timeout) * 30} seconds'")))
        if self.id not in ids:
            ids = tuple(sorted((*ids, self.id)))
        if ids != self.live:
            log.info("workers.changed", worker=self.id, live=len(ids),
                     joined=sorted(set(ids) - set(self.live)),
                     left=sorted(set(self.live) - set(ids)))
            self.live = ids
            self._owned.clear()

    # -- leadership ---------------------------------------------------------------------------

    async def _leadership(self) -> None:
        if self.leader:
            try:
                await wait_for(self._lock_conn.fetchval("SELECT 1"),
                                       self.settings.worker_heartbeat * 2)
                return
            except Exception as exc:  # the lock went with the connection
                log.error("worker.leadership_lost", worker=self.id, error=repr(exc))
                self.leader = False
                await self._release()
                await self._stand_by()
                return
        if await self._try_lock():
            self.leader = True
            self.takeovers += 1
            log.warning("worker.leader", worker=self.id)
            try:
                await self._lead()
            except BaseException:
                self.leader = False
                await self._release()
                raise
            await self.heartbeat()  # others see the new leader at once
            return
        await self._fence_hung_leader()

    async def _connect(self) -> Any:
        import asyncpg

        dsn = make_url(self.settings.database).set(drivername="postgresql")
        return await asyncpg.connect(dsn.render_as_string(hide_password=False),
                                     timeout=self.settings.worker_heartbeat * 5,
                                     server_settings={"application_name": f"ttcs-leader "
                                                      f"{self.id}"[:63]})

    async def _try_lock(self) -> bool:
        try:
            if self._lock_conn is None or self._lock_conn.is_closed():
                self._lock_conn = await self._connect()
            return bool(await self._lock_conn.fetchval("SELECT pg_try_advisory_lock($1)",
                                                       LEADER_LOCK))
        except Exception as exc:
            log.warning("worker.lock_failed", worker=self.id, error=repr(exc))
            await self._release()
            return False

    async def _fence_hung_leader(self) -> None:
        """A leader whose heartbeat is older than the timeout but whose lock connection is
        still open (its process hangs) keeps every standby out: end that connection."""
        if self._lock_conn is None or self._lock_conn.is_closed():
            return
        stale = await self._lock_conn.fetch(
            "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "JOIN workers w ON a.application_name = left('ttcs-leader ' || w.id, 63) "
            "AND w.heartbeat_at < now() - make_interval(secs => $2) "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.objsubid = 1 AND ((l.classid::bigint << 32) | l.objid::bigint) = $1",
            LEADER_LOCK, float(self.settings.worker_timeout))
        for row in stale[:1]:
            log.error("worker.fencing_hung_leader", worker=self.id, backend=row["pid"])
            await self._lock_conn.execute("SELECT pg_terminate_backend($1)", row["pid"])

    async def _release(self) -> None:
        conn, self._lock_conn = self._lock_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await wait_for(conn.close(), 5)


async def list_workers(store: Store, timeout: float) -> list[dict[str, Any]]:
    """Every worker row, with whether it is alive (a heartbeat within ``timeout``) and the
    age of its heartbeat in seconds (database time)."""
    async with store.sessions() as s:
        if store.dialect == "postgresql":
            now = (await s.execute(select(func.now()))).scalar_one()
        else:
            now = datetime.now(UTC)
        rows = list((await s.execute(select(WorkerRow).order_by(WorkerRow.started_at)))
                    .scalars())
    out = []
    for r in rows:
        age = (now - r.heartbeat_at).total_seconds()
        out.append({"id": r.id, "role": r.role, "alive": age <= timeout,
                    "heartbeat_age_s": round(age, 1), "heartbeat_at": r.heartbeat_at,
                    "host": r.host, "pid": r.pid,
                    "started_at": r.started_at, "statuses": r.statuses, "devices": r.devices,
                    "polled": r.polled,
                    "api": r.api_url})
    return out


__all__ = ["LEADER_LOCK", "WorkerSet", "check_broker", "list_workers", "refuse_unsuitable",
           "rendezvous", "with_mqtt5"]
