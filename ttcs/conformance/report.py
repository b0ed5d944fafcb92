"""The certification report: its content, the level it earns, its signature, and its check.

A report is signed with the certifier's Ed25519 key as a detached JWS (the hub's own
:mod:`ttcs.core.content.signing`) over the canonical JSON of ``{"report", "signer",
"signed_at"}``. The file is written in one deterministic layout (sorted keys, two-space
indent), and :func:`verify` requires exactly that layout, so *any* edit of the file — even of
whitespace — is detected, not only edits that change a value.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..core.content import signing
from ..core.errors import TTCSError
from ..core.plugins import LoadedPlugin
from ..schemas.errors import explain
from .outcome import CaseResult, Status

KIT_NAME = "ttcs-conformance"
KIT_VERSION = "1.1.0"
FORMAT = "ttcs-certification/1"
SIGNATURE_TYPE = "ttcs-certification"


class ReportInvalid(TTCSError):
    """A report that does not verify (edited, badly signed, inconsistent)."""


# -- the report ----------------------------------------------------------------------------------


class DistHash(BaseModel):
    model_config = ConfigDict(extra="forbid")

    algorithm: str = "sha256"
    value: str
    basis: str = Field(description="wheel: the wheel file; record: the installed files listed "
                       "in the distribution's RECORD; source: the package's source tree "
                       "(editable installs and plugins loaded from a directory)")
    files: int
    source: str


class PluginInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    vendor: str
    version: str
    distribution: str | None
    hash: DistHash


class DeviceIdentity(BaseModel):
    model_config = ConfigDict(extra="forbid")

    serial: str
    vendor: str
    model: str
    kind: str
    firmware: str
    firmware_after: str | None = Field(default=None, description="firmware at the end of the "
                                       "run, when a case upgraded it")


class Level(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rank: int
    name: str
    summary: str


class Report(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: str = FORMAT
    kit: dict[str, str]
    plugin: PluginInfo
    target: dict[str, Any]
    device: DeviceIdentity | None
    declaration: dict[str, Any]
    profiles_run: list[str]
    functional_profiles: list[str]
    started_at: str
    finished_at: str
    seconds: float
    environment: dict[str, Any]
    figures: dict[str, Any]
    notes: list[str]
    cases: list[CaseResult]
    summary: dict[str, int]
    profiles: dict[str, str]
    level: Level


# -- levels ------------------------------------------------------------------------------------

LADDER = (
    (0, "not certified", "The core profile did not pass: the hub cannot rely on this plugin."),
    (1, "core", "Level 1 — Core: manifest, identity, status, commands, idempotency and "
        "lifecycle honour the hub's contract."),
    (2, "functional", "Level 2 — Functional: it also does its device family's job (audio, "
        "display, FM or wired) as the contract says."),
    (3, "secure", "Level 3 — Secure: it also keeps secrets out of logs, handles bad "
        "credentials and refuses unapproved or altered content."),
    (4, "resilient", "Level 4 — Resilient: it also survives outages, hung neighbours, garbage "
        "and upgrades without blocking the hub."),
)


def profile_verdicts(cases: list[CaseResult], profiles: list[str]) -> dict[str, str]:
    """passed (every case passed or exempt), failed (any failed), incomplete (some not run)."""
    verdicts = {}
    for profile in profiles:
        statuses = {c.status for c in cases if c.profile == profile}
        if Status.FAILED in statuses:
            verdicts[profile] = "failed"
        elif Status.NOT_RUN in statuses:
            verdicts[profile] = "incomplete"
        elif statuses:
            verdicts[profile] = "passed"
        else:
            verdicts[profile] = "no cases"
    return verdicts


def level_of(verdicts: dict[str, str], functional: list[str]) -> Level:
    """The highest rung whose profiles all passed (each rung needs the ones below)."""
    def passed(profile: str) -> bool:
        return verdicts.get(profile) in ("passed", "no cases")

    # a plugin whose manifest calls for no functional profile (it plays nothing, shows
    # nothing) cannot show that it does its family's job: it stays at the core level
    rungs = [["core"], functional, ["security"], ["resilience"]]
    rank = 0
    for rung in rungs:
        if not rung or not all(p in verdicts and passed(p) for p in rung):
            break
        rank += 1
    number, name, summary = LADDER[rank]
    return Level(rank=number, name=name, summary=summary)


def summary_of(cases: list[CaseResult]) -> dict[str, int]:
    counts = {s.value: 0 for s in Status if s is not Status.UNVERIFIED}
    for case in cases:
        counts[case.status.value] = counts.get(case.status.value, 0) + 1
    counts["total"] = len(cases)
    return counts


# -- the plugin's distribution hash -------------------------------------------------------------


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _combine(entries: list[tuple[str, str]]) -> str:
    lines = "".join(f"{name}\t{digest}\n" for name, digest in sorted(entries))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def _skipped(name: str) -> bool:
    return "__pycache__" in name or name.endswith((".pyc", ".pyo")) or name.endswith(
        ".dist-info/RECORD")


def tree_hash(root: Path) -> tuple[str, int]:
    files = [p for p in root.rglob("*") if p.is_file() and not _skipped(str(p))]
    entries = [(p.relative_to(root).as_posix(), _file_digest(p)) for p in files]
    return _combine(entries), len(entries)


def _installed_here(dist: importlib.metadata.Distribution, plugin: LoadedPlugin) -> bool:
    """Whether the plugin's code is among the distribution's installed files (not so for an
    editable install, or when another copy shadows the installed one on ``sys.path``)."""
    module = plugin.source.split(":", 1)[0]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return False
    if spec is None or not spec.origin or not dist.files:
        return False
    origin = Path(spec.origin).resolve()
    return any(Path(str(dist.locate_file(f))).resolve() == origin for f in dist.files
               if str(f).endswith(".py"))


def distribution_hash(plugin: LoadedPlugin, package_dir: Path | None,
                      wheel: Path | None = None) -> DistHash:
    """What identifies the certified code: the wheel if given; else the installed files of
    the plugin's distribution (from its RECORD); for an editable install or a plugin loaded
    from a directory, the source tree it runs from."""
    if wheel is not None:
        return DistHash(value=_file_digest(wheel), basis="wheel", files=1, source=wheel.name)
    dist = None
    if plugin.distribution:
        name = plugin.distribution.rsplit(" ", 1)[0]
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            dist = None
    if dist is not None and dist.files and _installed_here(dist, plugin):
        entries = []
        for item in dist.files:
            if _skipped(str(item)):
                continue
            path = Path(str(dist.locate_file(item)))
            if path.is_file():
                entries.append((item.as_posix(), _file_digest(path)))
        return DistHash(value=_combine(entries), basis="record", files=len(entries),
                        source=plugin.distribution or "")
    root = (_top_level(plugin) if dist is not None else None) or package_dir
    if root is None:
        raise ReportInvalid(f"cannot find the code of plugin {plugin.id} to hash it")
    value, count = tree_hash(root)
    return DistHash(value=value, basis="source", files=count,
                    source=f"{plugin.distribution or 'directory'}: {root.name}/")


def _top_level(plugin: LoadedPlugin) -> Path | None:
    top = plugin.source.split(":", 1)[0].split(".", 1)[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    origin = Path(spec.origin)
    return origin.parent if origin.name == "__init__.py" else None


# -- keys and signatures ------------------------------------------------------------------------


def default_key_path() -> Path:
    env = os.environ.get("TTCS_CERTIFIER_KEY")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "ttcs" / \
        "certifier-ed25519.pem"


def load_or_create_key(path: Path) -> tuple[bytes, bytes, bool]:
    """(private, public, created) — the certifier's key from a PEM file, made (0600) if
    absent."""
    created = False
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # made by another run meanwhile
            pass
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
            created = True
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ReportInvalid(f"cannot read the certifier key {path}: {exc}") from exc
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ReportInvalid(f"{path} is not an Ed25519 private key")
    return (loaded.private_bytes_raw(), loaded.public_key().public_bytes_raw(), created)


def layout(document: dict[str, Any]) -> str:
    """The one text form of a signed report file."""
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _payload(report: dict[str, Any], signer: str, signed_at: str) -> dict[str, Any]:
    return {"report": report, "signer": signer, "signed_at": signed_at}


def sign_report(report: Report, private: bytes, public: bytes, signer: str) -> str:
    """The signed report file's text."""
    body = report.model_dump(mode="json")
    signed_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    kid = signing.key_id(public)
    value = signing.sign(_payload(body, signer, signed_at), private, kid, SIGNATURE_TYPE)
    return layout({"report": body, "signature": {
        "alg": "EdDSA", "typ": SIGNATURE_TYPE, "kid": kid, "public_key": signing.b64u(public),
        "signer": signer, "signed_at": signed_at, "value": value}})


class Verified(BaseModel):
    signer: str
    kid: str
    signed_at: str
    plugin: str
    plugin_version: str
    level: Level
    summary: dict[str, int]


def verify(text: bytes, expected_kid: str | None = None) -> Verified:
    """Check a report file: layout, signature, key id, structure, and that its summary and
    level follow from its cases. Raises :class:`ReportInvalid` saying what is wrong."""
    try:
        decoded = text.decode("utf-8")
        document = json.loads(decoded)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ReportInvalid(f"not a report: {exc}") from exc
    if not isinstance(document, dict) or set(document) != {"report", "signature"}:
        raise ReportInvalid("not a report: expected the keys 'report' and 'signature'")
    if layout(document) != decoded:
        raise ReportInvalid("the file is not in the layout the kit writes: it was edited")
    sig = document["signature"]
    if not isinstance(sig, dict):
        raise ReportInvalid("the signature is malformed")
    try:
        public = signing.b64u_decode(str(sig["public_key"]))
        kid, value = str(sig["kid"]), str(sig["value"])
        signer, signed_at = str(sig["signer"]), str(sig["signed_at"])
    except (KeyError, ValueError) as exc:
        raise ReportInvalid(f"the signature is malformed: {exc}") from exc
    if sig.get("alg") != "EdDSA" or sig.get("typ") != SIGNATURE_TYPE or len(public) != 32:
        raise ReportInvalid("the signature is not an Ed25519 certification signature")
    if signing.key_id(public) != kid:
        raise ReportInvalid("the key id does not belong to the public key")
    if not signing.signature_valid(_payload(document["report"], signer, signed_at), public,
                                   kid, SIGNATURE_TYPE, value):
        raise ReportInvalid("the signature does not verify: the report was altered")
    if expected_kid is not None and expected_kid != kid:
        raise ReportInvalid(f"signed with key {kid}, not the expected {expected_kid}")
    try:
        report = Report.model_validate(document["report"])
    except ValidationError as exc:
        raise ReportInvalid(f"the report is malformed: {explain(exc)}") from exc
    if report.summary != summary_of(report.cases):
        raise ReportInvalid("the summary does not match the case results")
    verdicts = profile_verdicts(report.cases, report.profiles_run)
    if verdicts != report.profiles or level_of(verdicts, report.functional_profiles) != \
            report.level:
        raise ReportInvalid("the level does not follow from the case results")
    return Verified(signer=signer, kid=kid, signed_at=signed_at, plugin=report.plugin.id,
                    plugin_version=report.plugin.version, level=report.level,
                    summary=report.summary)


__all__ = ["FORMAT", "KIT_NAME", "KIT_VERSION", "LADDER", "DeviceIdentity", "DistHash",
           "Level", "PluginInfo", "Report", "ReportInvalid", "Verified", "default_key_path",
           "distribution_hash", "layout", "level_of", "load_or_create_key",
           "profile_verdicts", "sign_report", "summary_of", "tree_hash", "verify"]
