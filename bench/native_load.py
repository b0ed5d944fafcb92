"""A load generator that makes many native speakers present over a few paho connections.

It runs in a process of its own (so its work is not the hub's) and speaks the native protocol
(:mod:`ttcs.schemas.native`) for every device it carries:

- on start, per device: retained ``birth`` (the device's identity), retained ``conn``
  (``online: true``) and a retained ``status``, all QoS 1, as a native device does on connect;
- every ``cmd`` is answered on ``ack`` with a :class:`~ttcs.schemas.CommandResult` naming the
  command's id; a repeated ``idempotency_key`` gets the first answer again and is not acted
  on twice; a ``play`` has its media checked (SHA-256 and size, fetched once per SHA-256 for
  all devices: the bytes are named by the hash) and is answered ``accepted``/``playing``,
  followed by a ``started`` proof of play on ``event`` (``play_events=False`` leaves it out);
- what it leaves out, on purpose, so that the machine and not the simulator is measured: a
  last will per device (one will per connection cannot name many devices) and real playback.

Each command's receive time (``time.monotonic()``, the same clock in every process on Linux)
is recorded, so the parent can tell when the last device got its command. Commands whose id
starts with ``floor-`` come from the benchmark's bare publisher: their time is recorded, and
they are neither acted on nor answered.

Control is a pipe: the parent sends ``("report", None)`` and gets the receive times,
``("reset", None)`` clears them, ``("stop", None)`` ends the process.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import threading
import time
import urllib.request
from collections import OrderedDict
from typing import Any

import common  # noqa: F401  (puts the repository on sys.path in the child process)

from ttcs.schemas import CommandResult, CommandStatus, DeviceInfo, DeviceKind, DeviceStatus
from ttcs.schemas.event import PlayEvent, PlayPhase
from ttcs.schemas.native import Birth, DeviceEvent, Presence, topic
from ttcs.simulators.native_speaker import CAPABILITIES


class _Speakers:
    """The devices of one process; callbacks run on the paho threads of its connections."""

    def __init__(self, serials: list[str], play_events: bool) -> None:
        self.serials = serials
        self.play_events = play_events
        self.lock = threading.Lock()
        self.received: dict[str, list[float]] = {s: [] for s in serials}
        self.floor: dict[str, float] = {}
        self.acks: dict[str, OrderedDict[str, str]] = {s: OrderedDict() for s in serials}
        self.media: dict[str, bool] = {}  # sha256 -> verified
        self.media_lock = threading.Lock()
        self.answered = 0
        self.rejected = 0

    def media_ok(self, media: dict[str, Any]) -> bool:
        sha = media.get("sha256", "")
        with self.media_lock:
            if sha not in self.media:
                try:
                    with urllib.request.urlopen(media["url"], timeout=30) as response:
                        body = response.read()
                    self.media[sha] = (hashlib.sha256(body).hexdigest() == sha
                                       and len(body) == media.get("size"))
                except OSError:
                    return False  # passing: not remembered
            return self.media[sha]

    def on_command(self, client: Any, message: Any) -> None:
        at = time.monotonic()
        serial = message.topic.split("/")[3]
        doc = json.loads(message.payload)
        command_id = doc["id"]
        if command_id.startswith("floor-"):
            self.floor[serial] = at
            return
        with self.lock:
            self.received[serial].append(at)
        key = doc.get("idempotency_key") or command_id
        acks = self.acks[serial]
        first = acks.get(key)
        started = False
        if first is not None:
            result = CommandResult.model_validate_json(first).model_copy(
                update={"command_id": command_id})
        elif doc.get("type") == "play" and doc.get("media") and not self.media_ok(doc["media"]):
            result = CommandResult(command_id=command_id, status=CommandStatus.REJECTED,
                                   code="checksum_mismatch")
            self.rejected += 1
        elif doc.get("type") == "play":
            result = CommandResult(command_id=command_id, status=CommandStatus.ACCEPTED,
                                   code="playing")
            started = True
        else:
            result = CommandResult(command_id=command_id, status=CommandStatus.DONE)
        payload = result.model_dump_json()
        if first is None and result.status is not CommandStatus.FAILED:
            acks[key] = payload
            if len(acks) > 200:
                acks.popitem(last=False)
        client.publish(topic(serial, "ack"), payload, qos=1)
        self.answered += 1
        if started and self.play_events:
            event = PlayEvent(phase=PlayPhase.STARTED, content_id=doc.get("content_id"),
                              command_id=command_id, broadcast_id=doc.get("broadcast_id"))
            client.publish(topic(serial, "event"), DeviceEvent(
                event=event, serial=serial).model_dump_json(), qos=1)


def _announce(client: Any, serials: list[str]) -> None:
    last = None
    for serial in serials:
        info = DeviceInfo(serial=serial, vendor="TTCS reference", model="TTCS-SPK-LOAD",
                          firmware="1.4.2", kind=DeviceKind.IP_SPEAKER,
                          capabilities=CAPABILITIES)
        client.publish(topic(serial, "birth"), Birth(info=info).model_dump_json(), qos=1,
                       retain=True)
        client.publish(topic(serial, "conn"), Presence(online=True, reason="connect")
                       .model_dump_json(), qos=1, retain=True)
        last = client.publish(topic(serial, "status"), DeviceStatus(
            volume=60, firmware="1.4.2").model_dump_json(), qos=1, retain=True)
    if last is not None:
        last.wait_for_publish(120)


def _run(port: int, serials: list[str], connections: int, play_events: bool, control: Any
         ) -> None:
    import paho.mqtt.client as paho

    speakers = _Speakers(serials, play_events)
    per = -(-len(serials) // connections)
    clients = []
    for n in range(connections):
        mine = serials[n * per:(n + 1) * per]
        if not mine:
            continue
        client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                             client_id=f"speakers-{os.getpid()}-{n}")
        client.max_inflight_messages_set(0)
        client.max_queued_messages_set(0)
        client.on_message = lambda c, _u, m: speakers.on_command(c, m)
        client.connect("127.0.0.1", port, keepalive=60)
        client.loop_start()
        for start in range(0, len(mine), 500):
            client.subscribe([(topic(s, "cmd"), 1) for s in mine[start:start + 500]])
        _announce(client, mine)
        clients.append(client)
    time.sleep(0.5)  # last SUBACKs
    control.send(("ready", len(serials)))
    while True:
        what, _ = control.recv()
        if what == "report":
            with speakers.lock:
                control.send({"received": {s: list(t) for s, t in speakers.received.items()},
                              "floor": dict(speakers.floor), "answered": speakers.answered,
                              "rejected": speakers.rejected})
        elif what == "reset":
            with speakers.lock:
                speakers.received = {s: [] for s in serials}
                speakers.floor = {}
            control.send("ok")
        elif what == "stop":
            break
    for client in clients:
        client.loop_stop()
        client.disconnect()


class SpeakerLoad:
    """The load generator process, seen from the parent."""

    def __init__(self, port: int, serials: list[str], *, connections: int = 4,
                 play_events: bool = True) -> None:
        ctx = mp.get_context("spawn")
        self._pipe, child = ctx.Pipe()
        self.proc = ctx.Process(target=_run, args=(port, serials, connections, play_events,
                                                   child), daemon=True)
        self.proc.start()
        what, count = self._pipe.recv()
        if what != "ready" or count != len(serials):
            raise RuntimeError(f"the speaker load did not start: {what} {count}")

    def report(self) -> dict[str, Any]:
        self._pipe.send(("report", None))
        return self._pipe.recv()  # type: ignore[no-any-return]

    def reset(self) -> None:
        self._pipe.send(("reset", None))
        self._pipe.recv()

    def stop(self) -> None:
        if self.proc.is_alive():
            self._pipe.send(("stop", None))
            self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
