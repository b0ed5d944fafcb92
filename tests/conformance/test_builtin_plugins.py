"""Every built-in plugin passes every profile it declares, against its own simulator.

The list is the hub's own entry points, so a plugin added to the hub is certified here (and
fails here without a declaration). The runs go side by side (``conftest.py``).
"""

from __future__ import annotations

import pytest

from tests.conformance.conftest import Certifications
from tests.conformance.support import builtin_plugins, not_passed
from ttcs.conformance.declaration import declaration_for
from ttcs.conformance.report import Report
from ttcs.core.plugins import default_manager


def test_the_hub_ships_the_seven_plugins_certified_here() -> None:
    assert builtin_plugins() == ["ledviet", "native", "pullboard", "radivina", "saokhue",
                                 "vang", "zonetech"]


@pytest.mark.parametrize("plugin", builtin_plugins())
def test_builtin_plugin_passes_every_profile_it_declares(
        plugin: str, certifications: Certifications) -> None:
    report = certifications[f"builtin:{plugin}"]
    assert isinstance(report, Report), report
    declaration = declaration_for(default_manager().get(plugin))
    assert not_passed(report) == {}
    assert set(report.profiles_run) == {p.value for p in declaration.profiles}
    assert set(report.profiles.values()) == {"passed"}
    assert report.level.name == "resilient"
    assert report.device is not None
    assert report.device.serial.startswith("CERT-")  # the kit names it, the plugin numbers it
    exempt = {c.id for c in report.cases if c.status.value == "exempt"}
    assert exempt == set(declaration.exemptions)
