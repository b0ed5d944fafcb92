"""The vendor's declaration selects cases, and is refused when it contradicts the manifest."""

from __future__ import annotations

import pytest

from tests.conformance.support import builtin_plugins
from ttcs.conformance.cases import Profile
from ttcs.conformance.declaration import (
    Declaration,
    DeclarationRefused,
    contradictions,
    declaration_for,
    select,
)
from ttcs.core.plugins import default_manager
from ttcs.schemas import Capability, DeviceKind, IotClass, PluginManifest, Protocol

SPEAKER = PluginManifest(
    id="acme", name="Acme", vendor="Acme", version="1.0", sdk=">=1.0,<2",
    device_kinds=[DeviceKind.IP_SPEAKER],
    capabilities=[Capability.AUDIO_PLAY, Capability.AUDIO_VOLUME],
    protocols=[Protocol.MQTT], iot_class=IotClass.PUSH)
GOOD = {"profiles": ["core", "audio", "security"], "capabilities": ["audio.play", "audio.volume"],
        "simulator": {"name": "acme"}}


def problems(**changes: object) -> list[str]:
    return contradictions(Declaration.model_validate({**GOOD, **changes}), SPEAKER, {"acme"})


def test_a_declaration_that_matches_the_manifest_is_accepted() -> None:
    assert problems() == []


@pytest.mark.parametrize(("changes", "reason"), [
    ({"profiles": ["core", "audio", "display"]},
     "claims profile display, but the manifest lacks its capability display.text"),
    ({"profiles": ["core", "security"]}, "the manifest's capabilities call for profile audio"),
    ({"profiles": ["audio"]}, "every plugin claims the core profile"),
    ({"capabilities": ["audio.play", "audio.volume", "power"]},
     "claims capability power, which the manifest does not list"),
    ({"capabilities": ["audio.play"]}, "the manifest lists capability audio.volume"),
    ({"exemptions": {"TC-CORE-006": "we never retry"}}, "exempts TC-CORE-006, which is mandatory"),
    ({"exemptions": {"TC-AUDIO-999": "no such thing here"}}, "exempts unknown case TC-AUDIO-999"),
    ({"exemptions": {"TC-AUDIO-006": "no stream input on this model"}},
     "exempts TC-AUDIO-006, which this declaration does not select"),
    ({"exemptions": {"TC-SEC-006": "no"}}, "needs a reason a certifier can judge"),
    ({"simulator": {"name": "other"}}, "names simulator other, which the plugin does not"),
])
def test_a_contradicting_declaration_is_refused_with_its_reason(changes: dict[str, object],
                                                              reason: str) -> None:
    assert any(reason in p for p in problems(**changes)), problems(**changes)


def test_cases_are_selected_by_profiles_and_capabilities() -> None:
    declaration = Declaration.model_validate(
        {**GOOD, "exemptions": {"TC-SEC-006": "no TLS on the field bus of this model"}})
    chosen = {s.case.id: s.selection.value for s in select(declaration)}
    assert chosen["TC-AUDIO-003"] == "run"  # audio.volume claimed
    assert "TC-AUDIO-006" not in chosen  # audio.stream not claimed
    assert chosen["TC-SEC-006"] == "exempt"
    assert not any(i.startswith(("TC-DISPLAY", "TC-RES", "TC-FM", "TC-WIRED")) for i in chosen)
    only_core = {s.case.profile for s in select(declaration, [Profile.CORE])}
    assert only_core == {Profile.CORE}


def test_a_run_of_a_profile_the_declaration_does_not_claim_is_refused() -> None:
    with pytest.raises(DeclarationRefused, match="does not claim profile"):
        select(Declaration.model_validate(GOOD), [Profile.DISPLAY])


@pytest.mark.parametrize("plugin", builtin_plugins())
def test_builtin_declarations_agree_with_their_manifests(plugin: str) -> None:
    declaration = declaration_for(default_manager().get(plugin))
    assert Profile.RESILIENCE in declaration.profiles
