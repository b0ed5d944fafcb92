"""``ttcs serve``: run the hub until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import structlog

from ..simulators.control import serve_control
from .config import Settings, redact_url
from .http import start_http
from .hub import Hub

log = structlog.get_logger("ttcs.serve")


async def serve(settings: Settings, *, demo: bool = False, demo_devices: int = 12) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    hub = Hub(settings)
    fleet = control = None
    try:
        await hub.start()
        runner, api_url = await start_http(hub)
        if hub.workers is not None:
            hub.workers.api_url = api_url
        if demo:
            from .demo import prepare

            fleet = await prepare(hub, demo_devices)
            control, control_url = await serve_control(fleet)
        _banner(hub, api_url, control_url if demo else None)
        await stop.wait()
        await runner.cleanup()
    finally:
        if fleet is not None:
            # Stop watching the demo speakers before they power down (that is not news worth
            # recording as every speaker going offline), and power them down while the
            # embedded broker still runs, so they leave cleanly.
            for device_id in list(hub.supervisors):
                await hub.unsupervise(device_id)
            await fleet.stop()
        if control is not None:
            await control.cleanup()
        await hub.stop()
    return 0


def _banner(hub: Hub, api_url: str, control_url: str | None) -> None:
    some = next(iter(hub.supervisors), "DEVICE_ID")
    lines = [
        "",
        "TTCS Hub is running.",
        f"  health      {api_url}/healthz",
        f"  API         {api_url}/api/v1 (reference: {api_url}/api/v1/docs)",
        f"  database    {redact_url(hub.settings.database)}",
        f"  MQTT        {redact_url(hub.settings.mqtt_url)}"
        + (" (embedded broker)" if hub.settings.embedded_broker else ""),
        f"  devices     {len(hub.supervisors)} supervised",
        *([f"  worker      {hub.workers.id} ({'leader' if hub.workers.leader else 'standby'}"
           f"; {len(hub.workers.live)} live, see: ttcs workers list)"] if hub.workers else []),
        "",
        "Try, in another terminal (same directory):",
        "  .venv/bin/ttcs devices list",
        f"  .venv/bin/ttcs devices status {some}",
        f"  .venv/bin/ttcs devices command {some} '{{\"type\": \"set_volume\", \"volume\": 40}}'",
        "  .venv/bin/ttcs areas list --parent 46",
        "  .venv/bin/ttcs audit verify",
        "  .venv/bin/ttcs users add admin --role administrator && "
        ".venv/bin/ttcs tokens create admin   # an API token",
    ]
    if control_url:
        lines += [
            "Simulated fleet control plane (ground truth, fault injection):",
            f"  curl {control_url}/devices",
            f"  curl -X POST {control_url}/devices/HUE-SPK-0001/faults -d '{{\"fault\": "
            "\"power_loss\"}'   # then: ttcs devices list",
        ]
    lines.append("Stop with Ctrl-C.")
    print("\n".join(lines), flush=True)
