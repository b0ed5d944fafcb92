"""Every built-in plugin passes every profile it declares, against its own simulator."""

from __future__ import annotations

import pytest

from tests.conformance.support import not_passed, run
from ttcs.conformance.declaration import declaration_for
from ttcs.core.plugins import default_manager


@pytest.mark.parametrize("plugin", ["native", "ledviet", "pullboard"])
async def test_builtin_plugin_passes_every_profile_it_declares(plugin: str) -> None:
    report = await run(plugin)
    declared = declaration_for(default_manager().get(plugin)).profiles
    assert not_passed(report) == {}
    assert set(report.profiles_run) == {p.value for p in declared}
    assert set(report.profiles.values()) == {"passed"}
    assert report.level.name == "resilient"
    assert report.device is not None
    assert report.device.serial == "CERT-0001"
