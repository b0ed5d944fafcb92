"""Plugins are found through entry points; a broken one is refused with its reason while the
rest of the hub keeps working."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ttcs.core import DeviceDriver, hookimpl
from ttcs.core.plugins import PluginManager, PluginState
from ttcs.schemas import Capability, DeviceKind, IotClass, PluginManifest, Protocol

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "acme_plugin"
TTCS = Path(sys.executable).with_name("ttcs")


@pytest.fixture(scope="module")
def acme_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the third-party package with pip and install it into its own directory."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--target", str(target), str(FIXTURE)],
                   check=True, capture_output=True)
    return target


def _plugins_list(site: Path) -> dict[str, dict[str, object]]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([str(TTCS), "plugins", "list", "--json"], env=env, check=True,
                         capture_output=True, text=True).stdout
    return {p["source"]: p for p in json.loads(out)}


def test_third_party_plugin_is_listed_beside_the_builtin_ones(acme_site: Path) -> None:
    plugins = _plugins_list(acme_site)
    acme = plugins["acme_ttcs.plugin"]
    assert acme["id"] == "acme"
    assert acme["state"] == "loaded"
    assert acme["version"] == "2.3.0"
    assert acme["distribution"] == "acme-ttcs 2.3.0"
    assert plugins["ttcs.plugins.native"]["state"] == "loaded"


@pytest.mark.parametrize(("source", "reason"), [
    ("acme_ttcs.old_sdk", "needs SDK >=9,<10, this hub provides 1.0"),
    ("acme_ttcs.crashes", "RuntimeError: vendor SDK library libacme.so not found"),
    ("acme_ttcs.liar", "capabilities not in the manifest: ['audio.play']"),
])
def test_broken_plugins_are_refused_with_their_reason(acme_site: Path, source: str,
                                                      reason: str) -> None:
    entry = _plugins_list(acme_site)[source]
    assert entry["state"] == "refused"
    assert reason in str(entry["reason"])


class _Plugin:
    """A plugin object built in the test; attributes are the hooks."""

    def __init__(self, manifest: object, drivers: list[type[DeviceDriver]]) -> None:
        self.manifest, self.drivers = manifest, drivers

    @hookimpl
    def ttcs_plugin_manifest(self) -> object:
        return self.manifest

    @hookimpl
    def ttcs_register_drivers(self, registrar: object) -> None:
        for driver in self.drivers:
            registrar.add_driver(driver)  # type: ignore[attr-defined]


def _manifest(**overrides: object) -> dict[str, object]:
    return {"id": "x", "name": "X", "vendor": "X", "version": "1", "sdk": ">=1,<2",
            "device_kinds": ["ip_speaker"], "protocols": ["http"], "iot_class": "poll",
            **overrides}


def _native_like() -> type[DeviceDriver]:
    from ttcs.plugins.native.driver import NativeSpeakerDriver

    class Driver(NativeSpeakerDriver):
        capabilities = frozenset({Capability.AUDIO_PLAY})

    return Driver


@pytest.mark.parametrize(("manifest", "reason"), [
    (_manifest(sdk="whatever"), "not a version range"),
    (_manifest(device_kinds=["toaster"]), "device_kinds.0: Input should be"),
    (_manifest(id="native"), "already used by"),
    (None, "no manifest"),
    (_manifest(device_kinds=["ip_speaker", "led_board"], capabilities=["audio.play"]),
     "manifest lists kinds no driver handles: ['led_board']"),
])
def test_manifest_problems_are_refused_with_a_reason(manifest: object, reason: str) -> None:
    manager = PluginManager()
    manager.load_entry_points()
    if isinstance(manifest, dict):
        manifest.setdefault("capabilities", ["audio.play"])
    entry = manager.load_object("x", _Plugin(manifest, [_native_like()]))
    assert entry.state is PluginState.REFUSED
    assert reason in (entry.reason or "")
    assert manager.get("native").state is PluginState.LOADED


def test_a_driver_missing_methods_is_refused() -> None:
    class Half(DeviceDriver):
        kinds = frozenset({DeviceKind.IP_SPEAKER})

    manager = PluginManager()
    entry = manager.load_object("x", _Plugin(_manifest(), [Half]))
    assert entry.state is PluginState.REFUSED
    assert "does not implement: execute, probe, read_status" in (entry.reason or "")


def test_a_valid_plugin_object_provides_its_driver_per_kind() -> None:
    manager = PluginManager()
    driver = _native_like()
    manifest = PluginManifest(id="x", name="X", vendor="X", version="1", sdk=">=1,<2",
                              device_kinds=[DeviceKind.IP_SPEAKER],
                              capabilities=[Capability.AUDIO_PLAY], protocols=[Protocol.MQTT],
                              iot_class=IotClass.PUSH)
    entry = manager.load_object("x", _Plugin(manifest, [driver]))
    assert entry.state is PluginState.LOADED
    assert manager.driver_class("x", DeviceKind.IP_SPEAKER) is driver
