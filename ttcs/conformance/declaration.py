"""The vendor's declaration (``conformance.yaml`` in the plugin package) and the cases it selects.

Like a PICS file or Home Assistant's ``quality_scale.yaml``: the vendor says which profiles and
optional capabilities the plugin claims, and exempts cases that do not apply, with a reason.
The kit refuses a declaration that contradicts the plugin's manifest, so a certificate can never
be earned by declaring less than the plugin does::

    profiles: [core, audio, security, resilience]
    capabilities: [audio.play, audio.volume, power]
    exemptions:
      TC-AUDIO-006: "no stream input on this model"
    simulator:
      name: acme                     # a simulator this plugin registers (ttcs sim list)
      options: {heartbeat: "1"}      # its `ttcs sim run --option` values for a certification run
      config: {poll_interval: 0.5}   # merged over the simulator's registration settings
      child_config: {poll_interval: 0.5}  # ... and over those of the children reached through it
    tls:                             # how to run it over TLS ({tls_cert}, {tls_key}, {tls_ca}, ...)
      simulator_options: {cert: "{tls_cert}", key: "{tls_key}"}
      config: {ca_file: "{tls_ca}"}

A protocol without TLS that secures the link itself (SNMPv3 USM) says so, and gives the keys
that must be refused instead of a CA::

    tls:
      link: "SNMPv3 USM authPriv (SHA, AES)"
      simulator_options: {snmp_version: "3"}
      refused_config: {auth_key: "not-the-agents-key", priv_key: "not-the-agents-key"}
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..core.errors import TTCSError
from ..core.plugins import LoadedPlugin
from ..schemas import Capability, PluginManifest
from ..schemas.errors import explain
from .cases import PROFILE_GATES, Case, Profile, by_id, catalogue

FILENAME = "conformance.yaml"


class DeclarationRefused(TTCSError):
    """The declaration is missing, malformed, or contradicts the plugin's manifest."""


class SimulatorUse(BaseModel):
    """How the kit runs the plugin's simulator."""

    model_config = ConfigDict(extra="forbid")

    name: str
    options: dict[str, str] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    child_config: dict[str, Any] = Field(default_factory=dict, description="merged over the "
                                         "registration settings of every child device (a "
                                         "controller's lines, a transmitter's receivers)")


class TlsUse(BaseModel):
    """How to run the simulator and register the device over a secured link (placeholders
    filled in): TLS, or a protocol's own security where it has no TLS (SNMPv3 USM)."""

    model_config = ConfigDict(extra="forbid")

    link: str = Field(default="TLS", description="what secures the link, as the report says "
                      "it (\"TLS\", \"SNMPv3 USM authPriv (SHA, AES)\")")
    simulator_options: dict[str, str] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    broker: bool = Field(default=False, description="the link is the MQTT broker's: run the "
                         "broker with TLS and passwords ({mqtt_tls_url}, {mqtt_tls_hub_url})")
    refused_config: dict[str, Any] | None = Field(
        default=None, description="merged over the secured registration for the attempt that "
        "must be refused: keys the device does not share. Without it the attempt trusts a CA "
        "that did not sign the device's certificate ({tls_ca} is that CA)")


class Declaration(BaseModel):
    """The parsed ``conformance.yaml``."""

    model_config = ConfigDict(extra="forbid")

    profiles: list[Profile] = Field(min_length=1)
    capabilities: list[Capability] = Field(default_factory=list)
    exemptions: dict[str, str] = Field(default_factory=dict)
    simulator: SimulatorUse | None = None
    tls: TlsUse | None = None


def declaration_path(plugin: LoadedPlugin) -> Path:
    """Where the plugin's ``conformance.yaml`` lives: beside the module its entry point names."""
    module = plugin.source.split(":", 1)[0]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        raise DeclarationRefused(f"cannot locate module {module} of plugin {plugin.id}: "
                                 f"{exc}") from exc
    if spec is None or not spec.origin:
        raise DeclarationRefused(f"cannot locate module {module} of plugin {plugin.id}")
    return Path(spec.origin).parent / FILENAME


def load_declaration(path: Path) -> Declaration:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DeclarationRefused(f"no declaration: ship {FILENAME} in the plugin package "
                                 f"({path})") from None
    except (OSError, yaml.YAMLError) as exc:
        raise DeclarationRefused(f"cannot read {path}: {exc}") from exc
    try:
        return Declaration.model_validate(raw or {})
    except ValidationError as exc:
        raise DeclarationRefused(f"{path}: {explain(exc)}") from exc


def gated_profiles(manifest: PluginManifest) -> set[Profile]:
    """The functional profiles the manifest's capabilities and kinds call for."""
    caps, kinds = set(manifest.capabilities), set(manifest.device_kinds)
    return {p for p, (cap, gate_kinds) in PROFILE_GATES.items()
            if cap in caps and (not gate_kinds or gate_kinds & kinds)}


def contradictions(declaration: Declaration, manifest: PluginManifest,
                   simulators: set[str]) -> list[str]:
    """Every way ``declaration`` contradicts ``manifest`` (empty: it is acceptable)."""
    problems: list[str] = []
    claimed = set(declaration.profiles)
    if Profile.CORE not in claimed:
        problems.append("every plugin claims the core profile")
    gated = gated_profiles(manifest)
    for profile in sorted(claimed & set(PROFILE_GATES) - gated):
        cap, kinds = PROFILE_GATES[profile]
        need = f"capability {cap.value}" + (
            f" and a kind among {', '.join(sorted(k.value for k in kinds))}" if kinds else "")
        problems.append(f"claims profile {profile.value}, but the manifest lacks its {need}")
    for profile in sorted(gated - claimed):
        problems.append(f"the manifest's capabilities call for profile {profile.value}; claim "
                        "it (and exempt single cases with a reason where needed)")
    declared_caps, manifest_caps = set(declaration.capabilities), set(manifest.capabilities)
    for cap in sorted(declared_caps - manifest_caps):
        problems.append(f"claims capability {cap.value}, which the manifest does not list")
    for cap in sorted(manifest_caps - declared_caps):
        problems.append(f"the manifest lists capability {cap.value}; claim it too")
    cases = by_id()
    selected = {c.id for c in applicable(declaration)}
    for case_id, reason in sorted(declaration.exemptions.items()):
        case = cases.get(case_id)
        if case is None:
            problems.append(f"exempts unknown case {case_id}")
        elif case.mandatory:
            problems.append(f"exempts {case_id}, which is mandatory")
        elif case_id not in selected:
            problems.append(f"exempts {case_id}, which this declaration does not select "
                            f"(profile {case.profile.value}, needs "
                            f"{', '.join(c.value for c in case.requires) or 'nothing'})")
        elif len(reason.strip()) < 10:
            problems.append(f"exemption of {case_id} needs a reason a certifier can judge")
    if declaration.simulator and declaration.simulator.name not in simulators:
        problems.append(f"names simulator {declaration.simulator.name}, which the plugin does "
                        f"not register (it registers: {', '.join(sorted(simulators)) or 'none'})")
    return problems


def applicable(declaration: Declaration) -> list[Case]:
    """The cases the declaration's profiles and capabilities select, in catalogue order."""
    claimed = set(declaration.profiles) | {Profile.CORE}
    caps = set(declaration.capabilities)
    return [c for c in catalogue() if c.profile in claimed and c.applies_to(caps)]


class Selection(StrEnum):
    RUN = "run"
    EXEMPT = "exempt"


@dataclass(frozen=True)
class Selected:
    case: Case
    selection: Selection
    reason: str | None = None


def select(declaration: Declaration, profiles: list[Profile] | None = None) -> list[Selected]:
    """The cases of a run: those of ``profiles`` (default: every claimed one; core always)."""
    wanted = set(profiles or declaration.profiles) | {Profile.CORE}
    if unclaimed := wanted - set(declaration.profiles):
        raise DeclarationRefused(f"the declaration does not claim profile(s) "
                                 f"{', '.join(sorted(p.value for p in unclaimed))}")
    chosen = []
    for case in applicable(declaration):
        if case.profile not in wanted:
            continue
        reason = declaration.exemptions.get(case.id)
        chosen.append(Selected(case, Selection.EXEMPT if reason else Selection.RUN, reason))
    return chosen


def declaration_for(plugin: LoadedPlugin, path: Path | None = None) -> Declaration:
    """The plugin's declaration, checked against its manifest (raises DeclarationRefused)."""
    assert plugin.manifest is not None
    path = path or declaration_path(plugin)
    declaration = load_declaration(path)
    sims = {s.name for s in plugin.simulators}
    if problems := contradictions(declaration, plugin.manifest, sims):
        raise DeclarationRefused(f"{path} contradicts plugin {plugin.id}: "
                                 + "; ".join(problems))
    return declaration


__all__ = ["FILENAME", "Declaration", "DeclarationRefused", "Selected", "Selection",
           "SimulatorUse", "TlsUse", "applicable", "contradictions", "declaration_for",
           "declaration_path", "gated_profiles", "load_declaration", "select"]
