"""Ingest: device status messages per second the hub parses, validates and applies (state,
health, events), against a bare paho subscriber that only counts, on the same broker with
the same load, in the same run.

    python bench/bench_ingest.py [--devices 10000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time

from common import emit, start_publisher

from ttcs.core.config import Settings
from ttcs.core.hub import Hub
from ttcs.core.logging import configure
from ttcs.schemas import Area, DeviceInfo, DeviceKind, DeviceSpec, DeviceStatus
from ttcs.schemas.native import Birth, Presence, topic
from ttcs.testing import Mosquitto


def status_payloads(serials: list[str]) -> tuple[list[str], list[bytes]]:
    topics = [topic(s, "status") for s in serials]
    payloads = [DeviceStatus(volume=n % 100, signal=-70, temperature=30.0 + n % 10,
                             firmware="1.4.2").model_dump_json().encode()
                for n, s in enumerate(serials)]
    return topics, payloads


def floor(port: int, serials: list[str], seconds: float) -> dict[str, float]:
    """A paho subscriber that only counts what arrives while the flood runs."""
    import paho.mqtt.client as paho

    received = 0
    lock = threading.Lock()

    def on_message(_c: object, _u: object, _m: object) -> None:
        nonlocal received
        with lock:
            received += 1

    sub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="floor")
    sub.on_message = on_message
    sub.connect("127.0.0.1", port)
    sub.subscribe("ttcs/v1/dev/+/status", qos=1)
    sub.loop_start()
    time.sleep(0.5)
    topics, payloads = status_payloads(serials)
    proc, ready, _, count = start_publisher(port, topics, payloads, seconds=seconds)
    time.sleep(1.0)
    ready.set()
    start = time.monotonic()
    proc.join()
    elapsed = time.monotonic() - start
    time.sleep(0.5)
    sub.loop_stop()
    sub.disconnect()
    return {"published": count.value, "received": received, "per_second": received / elapsed}


def announce(port: int, serials: list[str]) -> None:
    """Publish each device's retained birth and presence, as native devices do."""
    import paho.mqtt.client as paho

    pub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="announce")
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    for serial in serials:
        info = DeviceInfo(serial=serial, vendor="TTCS reference", model="LOAD", firmware="1.4.2",
                          kind=DeviceKind.IP_SPEAKER)
        pub.publish(topic(serial, "birth"), Birth(info=info).model_dump_json(), qos=1,
                    retain=True)
        pub.publish(topic(serial, "conn"), Presence(online=True).model_dump_json(), qos=1,
                    retain=True).wait_for_publish()
    pub.loop_stop()
    pub.disconnect()


async def hub_phase(broker: Mosquitto, serials: list[str], seconds: float) -> dict[str, float]:

    # Devices announce themselves (retained), as native devices do, then get registered.
    announce(broker.port, serials)
    home = tempfile.mkdtemp(prefix="bench-ingest-")
    settings = Settings(home=home, mqtt_url=broker.url(), log_level="warning")
    setup = Hub(settings)
    await setup.open()
    await setup.registry.import_areas([Area(code="46", name="Huế", type="municipality")], "b")
    report = await setup.registry.import_devices([DeviceSpec(
        plugin="native", kind="ip_speaker", area_code="46", config={"serial": s})
        for s in serials], "bench")
    assert report.ok, [r.error for r in report.rows if not r.ok][:3]
    await setup.stop()

    hub = Hub(settings)
    t0 = time.monotonic()
    await hub.start()
    startup = time.monotonic() - t0
    await asyncio.sleep(2)
    topics, payloads = status_payloads(serials)
    proc, ready, _, sent = start_publisher(broker.port, topics, payloads, seconds=seconds)
    await asyncio.sleep(1.0)
    # Every status the hub took (parsed, validated, applied to state and the status writer);
    # a status equal to the last one but for its time publishes no event, so counting
    # device.status events would miss most heartbeats.
    before = hub.statuses_applied
    ready.set()
    start = time.monotonic()
    await asyncio.to_thread(proc.join)
    elapsed = time.monotonic() - start
    done = hub.statuses_applied - before
    writer = hub._status_writer.writes if hub._status_writer else 0
    await hub.stop()
    return {"published": sent.value, "applied": done, "per_second": done / elapsed,
            "store_writes": writer, "hub_startup_s": startup}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    configure(level="error")
    serials = [f"ING-{n:06d}" for n in range(args.devices)]
    broker = Mosquitto().start()
    try:
        bare = floor(broker.port, serials, args.seconds)
        hub = asyncio.run(hub_phase(broker, serials, args.seconds))
    finally:
        broker.stop()
    emit("ingest", devices=args.devices, seconds=args.seconds, floor=bare, hub=hub,
         ratio=round(hub["per_second"] / bare["per_second"], 3))


if __name__ == "__main__":
    main()
