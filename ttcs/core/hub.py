"""The hub runtime: plugins loaded, a driver supervised per device, health tracked.

Data flows one way down (command → driver → transport → device) and one way up (device →
transport → driver → :class:`DeviceSupervisor` → status/events → store and bus). A device that
is offline at start-up, hangs, or answers garbage costs its own supervisor some retries and
nothing else: no supervisor waits on another.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import structlog
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from ..adapters.errors import with_timeout
from ..adapters.pool import Transports
from ..aio import cancel_and_wait, wait_for
from ..schemas import (
    AlarmEvent,
    Command,
    CommandResult,
    CommandResultEvent,
    Connectivity,
    ConnectivityEvent,
    Device,
    DeviceChanges,
    DeviceDiscoveredEvent,
    DeviceInfo,
    DeviceKind,
    DeviceSpec,
    DeviceStatus,
    DeviceStatusEvent,
    IotClass,
    PlayEvent,
)
from ..schemas.base import fast_id, utcnow
from .access.accounts import Accounts
from .config import Settings
from .content import ContentLibrary
from .dispatch import Dispatcher, DispatchSettings
from .driver import DeviceDriver, DriverContext, require_capability
from .errors import AuthFailed, DeviceError, InvalidInput, PermanentDeviceError
from .events import EventBus
from .monitor import Monitor
from .plugins import PluginManager, default_manager
from .poller import Poller
from .recorder import EventRecorder, StatusWriter
from .registry import Registry
from .schedule.content_gate import ContentGate
from .schedule.service import BroadcastService
from .store import Store

if TYPE_CHECKING:
    from .workers import WorkerSet

log = structlog.get_logger("ttcs.hub")

#: commands that present content: only ever built from approved content by the dispatcher
CONTENT_COMMANDS = frozenset({"play", "show", "sync_schedule"})

#: consecutive failed polls before a poll device is declared offline (degraded before that)
OFFLINE_AFTER_FAILURES = 3

#: an offline device is polled less often the longer it has been offline — at half its rate
#: at first, then about once in half the time it has been away, at most once in this many
#: seconds — and at its own rate
#: again from its first answer: a device back after an outage of T is seen within ~T/2, and
#: 100,000 unreachable devices do not keep the loop busy as if they were live
OFFLINE_POLL_MAX = 300.0

#: discovered devices recorded in the store at once
FINDING_AT_ONCE = 4


def _driver_settings(device: Device) -> tuple[Any, ...]:
    """What a running driver was built from: a change means a new driver."""
    return device.plugin, device.kind, device.parent_id, device.config


def _differs(old: DeviceStatus, new: DeviceStatus) -> bool:
    """Whether two statuses differ in anything but ``reported_at``."""
    a, b = old.__dict__, new.__dict__
    if a["reported_at"] == b["reported_at"]:
        return a != b
    # two dict copies compared in C cost less than a comparison per field in Python
    return {**a, "reported_at": None} != {**b, "reported_at": None}


class DeviceSupervisor:
    """Runs one device's driver: starts it (retrying), polls it, and relays what it reports."""

    def __init__(self, hub: Hub, device: Device) -> None:
        self.hub = hub
        self.device = device
        self.driver: DeviceDriver | None = None
        self.status: DeviceStatus | None = None
        self.connectivity = Connectivity.UNKNOWN
        self.failures = 0
        self.last_error: str | None = None
        self._offline_since: float | None = None  # monotonic; while polls keep failing
        self._starter: asyncio.Task[None] | None = None
        self.log = log.bind(device=device.id, plugin=device.plugin, area=device.area_code)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the driver and start it in the background (never blocks on the device)."""
        self.driver = self.hub.make_driver(self.device, link=self)
        self._starter = asyncio.create_task(self._start_with_retry(),
                                            name=f"start:{self.device.id}")

    async def _start_with_retry(self) -> None:
        assert self.driver is not None
        delay = 1.0
        while True:
            try:
                await with_timeout(self.hub.settings.probe_timeout * 2,
                                   f"starting driver for {self.device.id}", self.driver.start())
                break
            except DeviceError as exc:
                self._failed(exc)
            except Exception as exc:  # a plugin bug: log it, keep the hub running
                self.log.exception("driver.start_crashed")
                self._failed(DeviceError(f"driver crashed on start: {exc!r}"))
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, 60.0)
        driver_cls = type(self.driver)
        if driver_cls.iot_class is IotClass.POLL:
            self.hub.poller.add(self.device.id, self.driver.poll_every(), self.poll,
                                timeout=self.hub.settings.command_timeout + 1)

    async def stop(self) -> None:
        self.hub.poller.remove(self.device.id)
        if self._starter is not None:
            await cancel_and_wait(self._starter, f"start of {self.device.id}")
        if self.driver is not None:
            try:
                await wait_for(self.driver.stop(), 5)
            except Exception:
                self.log.warning("driver.stop_failed", exc_info=True)

    # -- polling ------------------------------------------------------------------------------

    @property
    def poll_key(self) -> str:
        """What poll work is partitioned by between workers: a device with its parent."""
        return self.device.parent_id or self.device.id

    async def poll(self) -> None:
        assert self.driver is not None
        workers = self.hub.workers
        if workers is not None and not workers.owns(self.poll_key):
            return  # another worker polls this device
        parent = self.hub.parent_of(self.device)
        if parent is not None and parent.connectivity is Connectivity.OFFLINE:
            self.parent_lost(parent.device.id, f"parent device {parent.device.id} is offline")
            return  # reached only through the parent: nothing to ask
        try:
            status = await with_timeout(self.hub.settings.command_timeout,
                                        f"polling {self.device.id}", self.driver.read_status())
        except DeviceError as exc:
            self._failed(exc)
            self._pace()
            return
        except Exception as exc:
            self.log.exception("driver.poll_crashed")
            self._failed(DeviceError(f"driver crashed while polling: {exc!r}"))
            self._pace()
            return
        if parent is not None and parent.connectivity is Connectivity.OFFLINE:
            return  # the parent went offline while we asked: what we heard is stale
        self.failures = 0
        self._pace()
        if status.connectivity is Connectivity.UNKNOWN:
            status = status.model_copy(update={"connectivity": Connectivity.ONLINE})
        self.report_status(status)

    def _pace(self) -> None:
        """Poll an offline device at half its rate, or once in half the time it has been
        offline if that is longer (see :data:`OFFLINE_POLL_MAX`); any other state polls at
        the device's own rate."""
        job = self.hub.poller.job(self.device.id)
        if job is None:
            return
        if self.connectivity is not Connectivity.OFFLINE or self.failures == 0:
            self._offline_since = None
            self.hub.poller.pace(self.device.id, 1)
            return
        now = time.monotonic()
        if self._offline_since is None:
            self._offline_since = now
        gap = min(max((now - self._offline_since) / 2, 2 * job.interval), OFFLINE_POLL_MAX)
        self.hub.poller.pace(self.device.id, max(1, int(gap // job.interval)))

    def _failed(self, exc: DeviceError) -> None:
        self.failures += 1
        self.last_error = str(exc)
        # refused credentials or a permanent error (another device at the address): asking
        # again will not help, so offline at once rather than after a few failed polls
        hopeless = (isinstance(exc, AuthFailed | PermanentDeviceError)
                    or self.failures >= OFFLINE_AFTER_FAILURES)
        if hopeless or self.connectivity in (Connectivity.UNKNOWN, Connectivity.OFFLINE):
            target = Connectivity.OFFLINE
        else:
            target = Connectivity.DEGRADED
        if target is not self.connectivity:
            base = self.status or DeviceStatus()
            self.report_status(base.model_copy(update={"connectivity": target}),
                               reason=self.last_error)

    # -- children follow their parent (a wired line its controller, a receiver its transmitter)

    def parent_lost(self, parent_id: str, reason: str) -> None:
        """The parent went offline: so is this device, whatever it last said."""
        self.last_error = reason
        if self.connectivity is not Connectivity.OFFLINE:
            base = self.status or DeviceStatus()
            self.hub.apply_status(
                self, base.model_copy(update={"connectivity": Connectivity.OFFLINE}),
                reason, via_parent=parent_id)

    def parent_back(self) -> None:
        """The parent is back: ask a polled child at once instead of at its next turn (the
        poller skips it if a poll of the child is already under way)."""
        self.hub.poller.poll_now(self.device.id)

    # -- HubLink: what the driver reports -----------------------------------------------------

    def report_status(self, status: DeviceStatus, reason: str | None = None) -> None:
        self.hub.apply_status(self, status, reason)

    def report_event(self, event: PlayEvent | AlarmEvent) -> None:
        self.hub.bus.publish(event.model_copy(update={"device_id": self.device.id,
                                                      "area_code": self.device.area_code}))


class Hub:
    """The hub process: store, plugins, transports, supervisors, poller, event bus."""

    def __init__(self, settings: Settings, plugins: PluginManager | None = None, *,
                 content: ContentGate | None = None,
                 dispatch: DispatchSettings | None = None) -> None:
        if settings.worker:  # shared subscriptions are MQTT 5
            from .workers import with_mqtt5

            settings = settings.model_copy(update={"mqtt_url": with_mqtt5(settings.mqtt_url)})
        self.settings = settings
        # Tests may substitute a gate with the dispatch-facing methods of ContentLibrary.
        self._content_override = cast("ContentLibrary | None", content)
        self.broadcasts: BroadcastService | None = None
        self.dispatcher: Dispatcher | None = None
        self._dispatch_settings = dispatch
        self.plugins = plugins or default_manager()
        self.bus = EventBus()
        self.poller = Poller()
        self.transports = Transports(settings)
        self.supervisors: dict[str, DeviceSupervisor] = {}
        #: (vendor, serial) of every supervised device: a discovered device is looked up here
        #: (a scan of the supervisors per birth was quadratic in the fleet at start-up)
        self._identities: dict[tuple[str, str], str] = {}
        #: identities being recorded as discovered (a device announcing itself again meanwhile
        #: is not recorded twice); at most FINDING_AT_ONCE store lookups run at once
        self._finding: set[tuple[str, str]] = set()
        self._finding_slots = asyncio.Semaphore(FINDING_AT_ONCE)
        self._children: dict[str, set[str]] = {}  # parent device id -> supervised children
        self._store: Store | None = None
        self._registry: Registry | None = None
        self._content: ContentLibrary | None = None
        self._accounts: Accounts | None = None
        self._discoveries: list[Any] = []
        self._status_writer: StatusWriter | None = None
        self._recorder: EventRecorder | None = None
        self._broker: Any = None
        self.monitor: Monitor | None = None  # proof of play, alarms, metrics (while started)
        self._background: set[asyncio.Task[Any]] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._registry_mark: tuple[int, datetime | None] = (0, None)
        #: seconds between looks at the registry for changes made by other processes
        self.registry_watch_interval = 2.0
        self.started = False
        #: statuses taken by apply_status (every heartbeat, changed or not)
        self.statuses_applied = 0
        #: this process as one of several workers (``settings.worker``), while started
        self.workers: WorkerSet | None = None
        self.api_url: str | None = None  # set by whoever serves the API (heartbeats show it)

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("hub not opened: call await hub.open() first")
        return self._store

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            raise RuntimeError("hub not opened: call await hub.open() first")
        return self._registry

    @property
    def content(self) -> ContentLibrary:
        """The content library: media, text-to-speech, approval (see :mod:`ttcs.core.content`)."""
        if self._content is None:
            raise RuntimeError("hub not opened: call await hub.open() first")
        return self._content

    @property
    def accounts(self) -> Accounts:
        """Users and API tokens (see :mod:`ttcs.core.access`)."""
        if self._accounts is None:
            raise RuntimeError("hub not opened: call await hub.open() first")
        return self._accounts

    # -- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> Hub:
        """Open the store (migrating it) — enough for the CLI's one-shot commands."""
        if self._store is None:
            self._store = await Store.open(self.settings)
            self._registry = Registry(self._store, self.plugins, self.probe)
            self._content = self._content_override or ContentLibrary(
                self._store, self._registry, self.settings, self.plugins)
            self.broadcasts = BroadcastService(self._store, self._registry, self._content,
                                               self.settings.policy_file)
            self._accounts = Accounts(self._store, self._registry, self.settings.api)
        return self

    async def start(self) -> None:
        """Run: embedded broker, discovery, a supervisor per device, poller, recorders."""
        if self.settings.worker:  # refused before anything starts, with the reason
            from .workers import check_broker, refuse_unsuitable

            refuse_unsuitable(self.settings)
            await check_broker(self.settings)
        await self.open()
        if self.settings.embedded_broker:
            from .broker import EmbeddedBroker

            self._broker = EmbeddedBroker.from_url(self.settings.mqtt_url)
            await self._broker.start()
        self._status_writer = StatusWriter(self.registry)
        self._status_writer.start()
        self._recorder = EventRecorder(self.store, self.bus)
        self._recorder.start()
        self.monitor = await Monitor.start(self, recorder=self._recorder)
        if self.settings.worker:
            from .workers import WorkerSet

            self.workers = WorkerSet(self.settings, self.store, lead=self._lead,
                                     stand_by=self._stand_by, stats=self._worker_stats,
                                     api_url=self.api_url)
            self.transports.owns = self.workers.owns
            await self.workers.join()  # ownership known before the retained messages come
        self._registry_mark = await self.registry.change_mark()
        # Loading the registry makes objects that all live on; the collector, run again and
        # again over a growing heap while it does, cost more than the loading (100,000 devices)
        collecting = gc.isenabled()
        gc.disable()
        try:
            for device in await self.registry.list_devices():
                await self.supervise(device)
        finally:
            if collecting:
                gc.enable()
        # after the supervisors: what announces itself is then known or new, not "not yet"
        for plugin in self.plugins.loaded():
            for service_cls in plugin.discoveries:
                service = service_cls(self.settings, self.transports, self._found)
                try:
                    await service.start()
                    self._discoveries.append(service)
                except Exception:
                    log.exception("discovery.failed", plugin=plugin.id)
        self.poller.start()
        self._watcher = asyncio.create_task(self._watch_registry(), name="registry-watch")
        if self.broadcasts is not None:
            # a worker's dispatcher runs only while it leads; a standby's only resumes
            # interrupted items it hears of (see _stand_by)
            self._new_dispatcher(run=self.workers is None)
            self.broadcasts.created.append(self._broadcast_created)
        if self.workers is not None:
            await self.workers.begin()
        self.started = True
        # What start-up built (the registry's devices, supervisors, drivers, plugins) lives as
        # long as the hub: out of the collector's way, a full collection no longer walks it
        # (with 10,000 devices each one cost ~0.2 s of the loop, several a minute at ingest)
        gc.freeze()
        log.info("hub.started", devices=len(self.supervisors),
                 plugins=[p.id for p in self.plugins.loaded()])

    async def stop(self) -> None:
        if self.started:
            gc.unfreeze()  # (collectable again once this hub lets go of them)
        self.started = False
        if self._watcher is not None:
            await cancel_and_wait(self._watcher, "registry watch")
            self._watcher = None
        for service in self._discoveries:
            with contextlib.suppress(Exception):
                await service.stop()
        self._discoveries.clear()
        if self.workers is not None:
            await self.workers.pause()  # no leadership changes while stopping
        if self.dispatcher is not None:
            if self.broadcasts is not None and self._broadcast_created in self.broadcasts.created:
                self.broadcasts.created.remove(self._broadcast_created)
            await self.dispatcher.stop()
            self.dispatcher = None
        if self.workers is not None:  # (the lock only once this process sends no more)
            await self.workers.stop()
            self.workers = None
        await self.poller.stop()
        await asyncio.gather(*(s.stop() for s in self.supervisors.values()),
                             return_exceptions=True)
        self.supervisors.clear()
        self._identities.clear()
        if self._background:  # short jobs (a firmware update, a child's poll): let them end
            await asyncio.wait(set(self._background), timeout=5)
        await cancel_and_wait(list(self._background), "hub background")
        if self.monitor is not None:
            await self.monitor.stop()
            self.monitor = None
        if self._status_writer is not None:
            await self._status_writer.stop()
        if self._recorder is not None:
            await self._recorder.stop()
        await self.transports.close()
        if self._broker is not None:
            await self._broker.stop()
            self._broker = None
        if self._store is not None:
            await self._store.close()
            self._store = None
            self._registry = None
            self._content = None
            self._accounts = None
            self.broadcasts = None

    async def __aenter__(self) -> Hub:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def spawn(self, coro: Any, name: str | None = None) -> asyncio.Task[Any]:
        """Run ``coro`` in the background, kept until done and cancelled on stop."""
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # -- workers: only the leader dispatches -------------------------------------------------

    def _new_dispatcher(self, *, run: bool) -> Dispatcher:
        assert self.broadcasts is not None
        self.dispatcher = Dispatcher(
            self, self.broadcasts, self.content, self._dispatch_settings or
            DispatchSettings(concurrency=self.settings.dispatch_concurrency))
        if run:
            self.dispatcher.start()
        return self.dispatcher

    async def _lead(self) -> None:
        """This worker became the leader: a fresh dispatcher, planning and sending (what the
        old leader left pending is in the outbox; what it planned is planned again and the
        unique idempotency keys drop the duplicates)."""
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        self._new_dispatcher(run=True)

    async def _stand_by(self) -> None:
        """This worker lost leadership: stop planning and sending at once. The dispatcher
        left in place is not started: it only queues the resumption of items that devices
        report interrupted to this worker (a database write the leader's sender picks up)."""
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        if self.broadcasts is not None and self.started:
            self._new_dispatcher(run=False)

    def _worker_stats(self) -> tuple[int, int, int]:
        """(statuses applied, devices supervised, poll-based devices this worker owns), for
        its heartbeat."""
        workers = self.workers
        polled = 0
        if workers is not None:
            for sup in self.supervisors.values():
                if sup.driver is not None and type(sup.driver).iot_class is IotClass.POLL \
                        and workers.owns(sup.poll_key):
                    polled += 1
        return self.statuses_applied, len(self.supervisors), polled

    def _broadcast_created(self, plan: Any) -> None:
        """A broadcast created in this process is planned at once (an emergency must not wait
        for the planner's next round); one created elsewhere is found at that round."""
        if self.dispatcher is not None:
            self.dispatcher.wake()

    # -- drivers ------------------------------------------------------------------------------

    def driver_config(self, device: Device) -> BaseModel:
        return self.registry.validate_config(device.plugin, device.kind, device.config)

    def make_driver(self, device: Device, link: Any = None, *,
                    parent: DeviceDriver | None = None) -> DeviceDriver:
        """A driver for ``device``; a child reaches its parent through ``parent`` if given
        (a short-lived parent driver), else through the parent's supervisor."""
        cls = self.plugins.driver_class(device.plugin, device.kind)
        sup_log = getattr(link, "log", None) or log.bind(  # a supervisor's is the same
            device=device.id, plugin=device.plugin, area=device.area_code)
        context = DriverContext(
            config=self.driver_config(device), settings=self.settings,
            transports=self.transports, device=device, log=sup_log,
            parent=(lambda: parent) if parent is not None
            else (lambda: self._parent_driver(device)))
        if link is not None:
            context.link = link
        return cls(context)

    def _parent_driver(self, device: Device) -> DeviceDriver | None:
        parent = self.parent_of(device)
        return parent.driver if parent else None

    # -- devices registered, changed or removed by another process ---------------------------

    async def _watch_registry(self) -> None:
        while True:
            await asyncio.sleep(self.registry_watch_interval)
            try:
                await self.reconcile()
            except Exception:  # the store was away: look again next time
                log.warning("registry.watch_failed", exc_info=True)

    async def reconcile(self) -> tuple[int, int, int]:
        """Bring supervision in line with the registry when another process (the CLI on this
        machine, another worker) changed it: supervise new devices, restart those whose
        driver settings changed, stop those removed. Returns (started, restarted, stopped).
        Cheap when nothing changed: one count and one max() on the devices table."""
        mark = await self.registry.change_mark()
        if mark == self._registry_mark:
            return 0, 0, 0
        since = self._registry_mark[1]
        started = restarted = stopped = 0
        for device in await self.registry.devices_changed_since(since):
            sup = self.supervisors.get(device.id)
            if sup is None:
                await self.supervise(device)
                started += 1
            elif _driver_settings(sup.device) != _driver_settings(device):
                await self.supervise(device.model_copy(update={"groups": sup.device.groups}))
                restarted += 1
            else:  # renamed, moved, new firmware: the running driver stays
                sup.device = device.model_copy(update={"groups": sup.device.groups})
        if mark[0] != len(self.supervisors):  # something was removed
            for device_id in set(self.supervisors) - await self.registry.device_ids():
                await self.unsupervise(device_id)
                stopped += 1
        self._registry_mark = mark
        if started or restarted or stopped:
            log.info("registry.reconciled", started=started, restarted=restarted,
                     stopped=stopped)
        return started, restarted, stopped

    def parent_of(self, device: Device) -> DeviceSupervisor | None:
        """The supervisor of ``device``'s parent (``via_device``), if it is supervised."""
        return None if device.parent_id is None else self.supervisors.get(device.parent_id)

    def _follow_parent(self, parent_id: str, current: Connectivity, previous: Connectivity,
                       reason: str | None) -> None:
        for child_id in list(self._children.get(parent_id, ())):
            child = self.supervisors.get(child_id)
            if child is None:
                continue
            if current is Connectivity.OFFLINE:
                child.parent_lost(parent_id, f"parent device {parent_id} is offline"
                                  + (f": {reason}" if reason else ""))
            elif previous is Connectivity.OFFLINE:
                child.parent_back()

    async def supervise(self, device: Device) -> DeviceSupervisor:
        """Start (or restart) supervising ``device``. While the old supervisor stops it stays
        in ``supervisors`` (a lookup meanwhile finds the device, not a gap)."""
        old = self.supervisors.get(device.id)
        if old is not None:
            await old.stop()
        sup = DeviceSupervisor(self, device)
        self.supervisors[device.id] = sup
        self._identities[(device.vendor, device.serial)] = device.id
        if device.parent_id is not None:
            self._children.setdefault(device.parent_id, set()).add(device.id)
        try:
            await sup.start()
        except Exception as exc:  # bad stored config, plugin gone: keep the others going
            sup.last_error = str(exc)
            log.error("device.unsupervised", device=device.id, error=str(exc))
        return sup

    async def unsupervise(self, device_id: str) -> None:
        sup = self.supervisors.pop(device_id, None)
        if self._status_writer is not None:
            self._status_writer.forget(device_id)
        if sup is not None:
            identity = (sup.device.vendor, sup.device.serial)
            if self._identities.get(identity) == device_id:
                del self._identities[identity]
            if sup.device.parent_id is not None:
                self._children.get(sup.device.parent_id, set()).discard(device_id)
            await sup.stop()

    @contextlib.asynccontextmanager
    async def driver_for(self, device: Device) -> AsyncIterator[DeviceDriver]:
        """The running driver of ``device``, or a short-lived one (CLI use without a hub);
        a child without a running parent gets a short-lived parent driver too."""
        sup = self.supervisors.get(device.id)
        if sup is not None and sup.driver is not None:
            yield sup.driver
            return
        async with self._parent_for(device.parent_id) as parent:
            driver = self.make_driver(device, parent=parent)
            try:
                await with_timeout(self.settings.probe_timeout,
                                   f"starting driver for {device.id}", driver.start())
                yield driver
            finally:
                with contextlib.suppress(Exception):
                    await driver.stop()

    @contextlib.asynccontextmanager
    async def _parent_for(self, parent_id: str | None) -> AsyncIterator[DeviceDriver | None]:
        """The driver a child reaches its parent through, when no supervisor runs the parent
        (None when the parent is supervised: the child finds it through the hub)."""
        if parent_id is None or (parent_id in self.supervisors
                                 and self.supervisors[parent_id].driver is not None):
            yield None
            return
        parent = await self.registry.get_device(parent_id)
        async with self.driver_for(parent) as driver:
            yield driver

    async def probe(self, plugin_id: str, kind: DeviceKind, config: BaseModel, *,
                    parent_id: str | None = None) -> DeviceInfo:
        """Probe a device that is not registered yet (test before configure); a child device
        is probed through its parent ``parent_id``."""
        cls = self.plugins.driver_class(plugin_id, kind)
        async with self._parent_for(parent_id) as parent:
            running = self.supervisors.get(parent_id) if parent_id else None
            reach = parent or (running.driver if running else None)
            driver = cls(DriverContext(config=config, settings=self.settings,
                                       transports=self.transports, parent=lambda: reach))
            try:
                await with_timeout(self.settings.probe_timeout, "starting driver",
                                   driver.start())
                return await with_timeout(self.settings.probe_timeout * 2, "probe",
                                          driver.probe())
            finally:
                with contextlib.suppress(Exception):
                    await driver.stop()

    # -- commands and status ------------------------------------------------------------------

    async def execute(self, device_id: str, command: Command, *, actor: str | None = None
                      ) -> CommandResult:
        """Check the capability, run ``command`` on the device, publish and audit the result."""
        device = await self.registry.get_device(device_id)
        try:
            result = await self.dispatch(device, command)
        except DeviceError as exc:
            if actor:
                await self.store.audit.record(actor, "device.command", device_id,
                                              outcome="failed", detail={
                                                  "type": command.type, "id": command.id,
                                                  "error": str(exc)})
            raise
        if actor:
            await self.store.audit.record(actor, "device.command", device_id, detail={
                "type": command.type, "id": command.id, "status": result.status.value,
                "code": result.code})
        return result

    async def execute_direct(self, device_id: str, command: Command, *, actor: str
                             ) -> CommandResult:
        """A command a person sends straight to a device (the API). Commands that present
        content (play, show, sync_schedule) are refused: what a device presents must be
        approved content, and that road goes through a broadcast."""
        if command.type in CONTENT_COMMANDS:
            raise InvalidInput(f"'{command.type}' commands are not accepted directly: create "
                               "a broadcast of approved content instead (POST "
                               "/api/v1/broadcasts)")
        return await self.execute(device_id, command, actor=actor)

    # -- registering devices while running ----------------------------------------------------

    async def register_device(self, spec: DeviceSpec, actor: str) -> Device:
        """Probe and register a device, and supervise it at once if the hub is running."""
        device = await self.registry.add_device(spec, actor)
        if self.started:
            await self.supervise(device)
        return device

    async def update_device(self, device_id: str, changes: DeviceChanges, actor: str
                            ) -> Device:
        """Change a device; a running hub restarts its supervision with the new settings."""
        device = await self.registry.update_device(device_id, changes, actor)
        if self.started and device_id in self.supervisors:
            await self.supervise(device)
        return device

    async def remove_device(self, device_id: str, actor: str) -> None:
        await self.registry.remove_device(device_id, actor)
        await self.unsupervise(device_id)

    async def dispatch(self, device: Device, command: Command) -> CommandResult:
        """Run ``command`` on ``device`` (capability checked) and publish the result."""
        require_capability(device.capabilities, command)
        async with self.driver_for(device) as driver:
            result = await driver.execute(command)
        self.bus.publish(CommandResultEvent(device_id=device.id, area_code=device.area_code,
                                            result=result))
        return result

    async def read_status(self, device_id: str) -> DeviceStatus:
        """Live status from the device (through its driver)."""
        device = await self.registry.get_device(device_id)
        async with self.driver_for(device) as driver:
            status = await with_timeout(self.settings.command_timeout, f"status of {device_id}",
                                        driver.read_status())
        if status.connectivity is Connectivity.UNKNOWN and type(driver).iot_class is IotClass.POLL:
            status = status.model_copy(update={"connectivity": Connectivity.ONLINE})
        return status

    def apply_status(self, sup: DeviceSupervisor, status: DeviceStatus,
                     reason: str | None = None, *, via_parent: str | None = None) -> None:
        """Take a status reported for a supervised device: state, events, store.

        This runs for every heartbeat of every device, so it stays cheap: a status that
        differs from the last one only by its timestamp updates the store but publishes no
        event, and internal events are built without re-validating data already validated.
        """
        self.statuses_applied += 1
        previous = sup.connectivity
        current = status.connectivity
        changed = sup.status is None or _differs(sup.status, status)
        sup.status = status
        device = sup.device
        if current is not previous:
            sup.connectivity = current
            if current is Connectivity.OFFLINE:
                sup.log.warning("device.offline", reason=reason or sup.last_error)
            elif current is Connectivity.ONLINE and previous is not Connectivity.UNKNOWN:
                sup.log.info("device.online")
            self.bus.publish(ConnectivityEvent(device_id=device.id, area_code=device.area_code,
                                               previous=previous, current=current, reason=reason,
                                               via_parent=via_parent))
            if device.id in self._children:
                self._follow_parent(device.id, current, previous, reason)
        if status.firmware and status.firmware != device.firmware:
            sup.log.info("device.firmware_changed", old=device.firmware, new=status.firmware)
            sup.device = device = device.model_copy(update={"firmware": status.firmware})
            info = DeviceInfo(serial=device.serial, vendor=device.vendor, model=device.model,
                              firmware=status.firmware, kind=device.kind)
            self.spawn(self.registry.update_identity(device.id, info))
        if changed:
            self.bus.publish(DeviceStatusEvent.model_construct(
                id=fast_id("evt"), at=utcnow(), device_id=device.id,
                area_code=device.area_code, status=status, type="device.status"))
        if self._status_writer is not None:
            self._status_writer.put(device.id, status, changed=changed)

    # -- discovery ----------------------------------------------------------------------------

    def _found(self, plugin_id: str, info: DeviceInfo, config: dict[str, Any]) -> None:
        identity = (info.vendor, info.serial)
        if identity in self._identities or identity in self._finding:
            return
        self._finding.add(identity)
        self.spawn(self._record_found(plugin_id, info, config))

    async def _record_found(self, plugin_id: str, info: DeviceInfo,
                            config: dict[str, Any]) -> None:
        try:
            async with self._finding_slots:  # a fleet announcing itself at once waits here,
                # not for the store's connections (the status writer needs one too)
                recorded = await self.registry.record_discovered(plugin_id, info, config)
        except IntegrityError:  # another worker recorded it at the same moment
            return
        except Exception as exc:  # the store is away: the device's next birth tries again
            log.warning("device.discovery_not_recorded", serial=info.serial, error=str(exc))
            return
        finally:
            self._finding.discard((info.vendor, info.serial))
        if recorded:
            log.info("device.discovered", plugin=plugin_id, serial=info.serial,
                     model=info.model)
            self.bus.publish(DeviceDiscoveredEvent(plugin=plugin_id, info=info))
