"""Reports: signed over a canonical form, verified byte for byte, levels that follow from the
cases, certifier keys, and the hash of the certified code."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttcs.conformance.outcome import CaseResult, CheckResult, Status
from ttcs.conformance.report import (
    DistHash,
    PluginInfo,
    Report,
    ReportInvalid,
    distribution_hash,
    layout,
    level_of,
    load_or_create_key,
    profile_verdicts,
    sign_report,
    summary_of,
    tree_hash,
    verify,
)
from ttcs.core.plugins import default_manager


def case(case_id: str, profile: str, status: Status) -> CaseResult:
    return CaseResult(id=case_id, profile=profile, title=f"case {case_id}", mandatory=True,
                      status=status, checks=[CheckResult(check="it works", status=status)],
                      log=['{"event": "thông báo", "level": "info"}'])


def sample(cases: list[CaseResult] | None = None) -> Report:
    cases = cases or [case("TC-CORE-001", "core", Status.PASSED),
                      case("TC-AUDIO-001", "audio", Status.PASSED),
                      case("TC-SEC-001", "security", Status.FAILED)]
    profiles = ["core", "audio", "security"]
    verdicts = profile_verdicts(cases, profiles)
    return Report(
        kit={"name": "ttcs-conformance", "version": "1.0.0", "hub_version": "0.1.0",
             "sdk": "1.0"},
        plugin=PluginInfo(id="acme", name="Acme loa", vendor="Acme", version="2.0",
                          distribution="acme 2.0", hash=DistHash(value="ab" * 32,
                                                                 basis="record", files=3,
                                                                 source="acme 2.0")),
        target={"mode": "simulator", "simulator": "acme"}, device=None,
        declaration={"profiles": profiles}, profiles_run=profiles, functional_profiles=["audio"],
        started_at="2026-01-01T00:00:00+00:00", finished_at="2026-01-01T00:01:00+00:00",
        seconds=60.0, environment={}, figures={}, notes=[], cases=cases,
        summary=summary_of(cases), profiles=verdicts, level=level_of(verdicts, ["audio"]))


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    private, public, _ = load_or_create_key(tmp_path_factory.mktemp("key") / "k.pem")
    return private, public


@pytest.fixture(scope="module")
def signed(key: tuple[bytes, bytes]) -> str:
    return sign_report(sample(), *key, "Sở Văn hóa và Thông tin Huế")


def test_a_signed_report_verifies_and_names_its_signer(signed: str) -> None:
    verified = verify(signed.encode())
    assert verified.signer == "Sở Văn hóa và Thông tin Huế"
    assert verified.kid == json.loads(signed)["signature"]["kid"]
    assert verified.level.name == "functional"  # security failed, so level 2


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_one_byte_edit_fails_verification(signed: str, data: st.DataObject) -> None:
    raw = bytearray(signed.encode())
    at = data.draw(st.integers(0, len(raw) - 1), label="position")
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != raw[at]), label="new byte")
    raw[at] = byte
    with pytest.raises(ReportInvalid):
        verify(bytes(raw))


def test_a_report_signed_with_a_level_it_did_not_earn_is_refused(key: tuple[bytes, bytes]
                                                                   ) -> None:
    report = sample()
    bragging = report.model_copy(update={"level": level_of(
        {p: "passed" for p in report.profiles_run}, ["audio"])})
    with pytest.raises(ReportInvalid, match="level does not follow"):
        verify(sign_report(bragging, *key, "someone").encode())


def test_a_report_resigned_by_another_key_fails_when_the_key_is_expected(
        signed: str, tmp_path: Path) -> None:
    document = json.loads(signed)
    private, public, _ = load_or_create_key(tmp_path / "other.pem")
    forged = sign_report(Report.model_validate(document["report"]), private, public,
                         document["signature"]["signer"])
    assert verify(forged.encode()).kid != document["signature"]["kid"]
    with pytest.raises(ReportInvalid, match="not the expected"):
        verify(forged.encode(), expected_kid=document["signature"]["kid"])


def test_the_file_layout_is_the_only_one_accepted(signed: str) -> None:
    document = json.loads(signed)
    assert layout(document) == signed
    compact = json.dumps(document, sort_keys=True, ensure_ascii=False)
    with pytest.raises(ReportInvalid, match="edited"):
        verify(compact.encode())


def test_the_certifier_key_is_created_private_and_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "certifier.pem"
    _, public, created = load_or_create_key(path)
    assert created
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    _, again, created_again = load_or_create_key(path)
    assert (again, created_again) == (public, False)


def test_a_one_byte_change_of_the_code_changes_its_hash(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "driver.py").write_text("VOLUME = 60\n")
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "driver.pyc").write_bytes(b"compiled")
    before, files = tree_hash(tmp_path / "pkg")
    (tmp_path / "pkg" / "__pycache__" / "driver.pyc").write_bytes(b"recompiled")
    assert tree_hash(tmp_path / "pkg") == (before, files) == (before, 1)
    (tmp_path / "pkg" / "driver.py").write_text("VOLUME = 61\n")
    assert tree_hash(tmp_path / "pkg")[0] != before


def test_the_hash_is_of_the_wheel_when_one_is_given(tmp_path: Path) -> None:
    wheel = tmp_path / "acme-2.0-py3-none-any.whl"
    wheel.write_bytes(b"PK\x03\x04 a wheel")
    plugin = default_manager().get("native")
    assert distribution_hash(plugin, None, wheel).basis == "wheel"
    installed = distribution_hash(plugin, None)  # an editable install: the files it runs
    assert installed.basis in ("record", "source")
    assert installed.source.startswith("ttcs-hub 0.1.0")
    assert installed.files > 50
