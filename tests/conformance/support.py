"""Running the conformance kit from the tests: short timeouts, fixture plugins loaded by path."""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path

from ttcs.conformance.cases import Profile
from ttcs.conformance.report import Report
from ttcs.conformance.runner import RunRequest, certify
from ttcs.core.plugins import PluginManager

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "conformance"
#: the hub under test waits this long for probes and acks (short, to keep the suite quick)
TIMEOUT = 1.5


#: the modules whose parametrized tests judge batch certifications (see conftest.py)
BUILTIN_MODULE = "tests.conformance.test_builtin_plugins"
BROKEN_MODULE = "tests.conformance.test_broken_plugins"


def request_for(plugin: str, plugins: PluginManager | None = None,
                profiles: list[Profile] | None = None, **request: object) -> RunRequest:
    return RunRequest(plugin=plugin, plugins=plugins, profiles=profiles,
                      probe_timeout=TIMEOUT, command_timeout=TIMEOUT,
                      **request)  # type: ignore[arg-type]


async def run(plugin: str, plugins: PluginManager | None = None,
              profiles: list[Profile] | None = None, **request: object) -> Report:
    return await certify(request_for(plugin, plugins, profiles, **request))


def builtin_plugins() -> list[str]:
    """Every plugin the hub ships (its own entry points), in name order."""
    dist = importlib.metadata.distribution("ttcs-hub")
    return sorted(ep.name for ep in dist.entry_points if ep.group == "ttcs.plugins")


def fixture_manager(name: str) -> tuple[PluginManager, str]:
    """A plugin manager with one broken fixture plugin (and nothing else) loaded."""
    module = f"tests.fixtures.conformance.{name}"
    plugin = importlib.import_module(module).PLUGIN
    manager = PluginManager()
    loaded = manager.load(name, lambda: plugin, source=f"{module}:PLUGIN")
    assert loaded.reason is None
    return manager, loaded.id


def failed(report: Report) -> set[str]:
    return {c.id for c in report.cases if c.status.value == "failed"}


def not_passed(report: Report) -> dict[str, str]:
    return {c.id: f"{c.status.value}: {c.reason}" for c in report.cases
            if c.status.value not in ("passed", "exempt")}
