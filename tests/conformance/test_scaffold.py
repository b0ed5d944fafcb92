"""``ttcs plugin new``: the generated package installs on its own and passes the core profile.

The first test is the issue's "done when": generate a plugin into a temporary directory,
install it with pip into a fresh virtual environment beside the hub, certify it at the core
profile with the CLI, verify the signed report, and see a one-byte edit fail verification.
"""

from __future__ import annotations

import importlib
import json
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conformance.support import not_passed, run
from ttcs.conformance.cases import Profile
from ttcs.conformance.scaffold import ScaffoldError, generate
from ttcs.core.plugins import PluginManager
from ttcs.schemas import DeviceKind


def fresh_venv(path: Path) -> Path:
    """A new virtual environment that sees the hub's (this interpreter's) packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig."
                              "get_paths()['purelib'])"], check=True, capture_output=True,
                             text=True).stdout.strip()
    hub_site = next(p for p in site.getsitepackages() if p.endswith("site-packages"))
    Path(purelib, "_ttcs_hub.pth").write_text(f"import site; site.addsitedir({hub_site!r})\n")
    return python


def test_a_generated_plugin_installs_beside_the_hub_and_is_certified_at_core(
        tmp_path: Path) -> None:
    package = generate("acme-loa", DeviceKind.IP_SPEAKER, "http", tmp_path / "src")
    python = fresh_venv(tmp_path / "venv")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "-e", str(package)], check=True, capture_output=True)
    env = {**os.environ, "HOME": str(tmp_path)}

    def ttcs(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(python), "-m", "ttcs.cli", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, check=check)

    listed = {p["id"]: p for p in json.loads(ttcs("plugins", "list", "--json").stdout)}
    assert listed["acme_loa"]["state"] == "loaded"
    assert listed["acme_loa"]["distribution"] == "acme-loa 0.1.0"
    done = ttcs("certify", "--plugin", "acme_loa", "--profile", "core", "--report",
                "report.json", "--html", "report.html", "--key", "certifier.pem",
                "--certifier", "Sở VHTT (test)", "--timeout", "1.5", "--json")
    summary = json.loads(done.stdout)
    assert (summary["level"], summary["summary"]["failed"]) == ("core", 0)
    report = tmp_path / "report.json"
    checked = ttcs("certify", "verify", "report.json")
    assert f"signed by Sở VHTT (test) with key {summary['key_id']}" in checked.stdout
    data = bytearray(report.read_bytes())
    at = data.index(b'"level"')
    data[at + 1] = ord("L")  # one byte
    report.write_bytes(bytes(data))
    refused = ttcs("certify", "verify", "report.json", check=False)
    assert refused.returncode == 1
    assert "does NOT verify" in refused.stderr
    assert "Level 1 — Core" in (tmp_path / "report.html").read_text()
    tests = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            str(package / "tests")], env=env, cwd=package,
                           capture_output=True, text=True, check=False)
    assert tests.returncode == 0, tests.stdout[-2000:]


@pytest.mark.parametrize(("protocol", "kind", "profiles"), [
    ("mqtt", DeviceKind.LED_BOARD, [Profile.CORE]),
    ("http", DeviceKind.FM_RECEIVER, [Profile.CORE]),
    ("modbus", DeviceKind.WIRED_ZONE_CONTROLLER, [Profile.CORE, Profile.WIRED]),
    ("snmp", DeviceKind.FM_TRANSMITTER, [Profile.CORE, Profile.FM]),
])
async def test_each_protocol_skeleton_speaks_its_protocol_and_passes_what_it_declares(
        tmp_path: Path, protocol: str, kind: DeviceKind, profiles: list[Profile]) -> None:
    name = f"gen-{protocol}-{kind.value.replace('_', '-')}"
    package = generate(name, kind, protocol, tmp_path)
    module_name = name.replace("-", "_")
    sys.path.insert(0, str(package))
    try:
        module = importlib.import_module(module_name)
        manager = PluginManager()
        loaded = manager.load(module_name, lambda: module, source=module_name)
        assert loaded.reason is None
        report = await run(module_name, manager, profiles)
    finally:
        sys.path.remove(str(package))
    assert not_passed(report) == {}
    assert set(report.profiles_run) == {p.value for p in profiles}


def test_the_scaffold_refuses_a_bad_name_and_a_used_directory(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match="not a package name"):
        generate("Acme Loa", DeviceKind.IP_SPEAKER, "http", tmp_path)
    generate("acme", DeviceKind.IP_SPEAKER, "http", tmp_path)
    with pytest.raises(ScaffoldError, match="not empty"):
        generate("acme", DeviceKind.IP_SPEAKER, "mqtt", tmp_path)
