"""The case catalogue: stable ids, an implementation per case, verbatim clauses, and the
generated docs/conformance.md in step with it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ttcs.conformance.cases import CatalogueError, Profile, catalogue, parse_catalogue, quote_found
from ttcs.conformance.checks import implementations
from ttcs.conformance.docs import markdown

ROOT = Path(__file__).resolve().parents[2]
DESIGN = Path("/work/shared/DESIGN.md")
TTCS = str(Path(sys.executable).with_name("ttcs"))

#: ids published so far; an id may be added, never dropped or reused for another case
PUBLISHED = {f"TC-CORE-{n:03d}" for n in range(1, 10)} | {
    f"TC-AUDIO-{n:03d}" for n in range(1, 7)} | {f"TC-DISPLAY-{n:03d}" for n in range(1, 7)} | {
    f"TC-FM-{n:03d}" for n in range(1, 5)} | {f"TC-WIRED-{n:03d}" for n in range(1, 4)} | {
    f"TC-SEC-{n:03d}" for n in range(1, 7)} | {f"TC-RES-{n:03d}" for n in range(1, 7)}


def test_no_published_case_id_disappears() -> None:
    assert {c.id for c in catalogue()} >= PUBLISHED


def test_every_profile_has_cases_and_core_is_all_mandatory() -> None:
    cases = catalogue()
    assert {c.profile for c in cases} == set(Profile)
    assert all(c.mandatory for c in cases if c.profile is Profile.CORE)


def test_every_case_has_an_implementation_and_every_implementation_a_case() -> None:
    assert set(implementations()) == {c.id for c in catalogue()}


@pytest.mark.parametrize("case", catalogue(), ids=lambda c: c.id)
def test_the_clause_is_quoted_verbatim_from_its_source(case: object) -> None:
    clause = case.clause  # type: ignore[attr-defined]
    source = DESIGN if clause.source == "DESIGN.md" else ROOT / clause.source
    if clause.source == "DESIGN.md" and not source.exists():
        pytest.skip("the project's DESIGN.md is not on this machine")
    assert quote_found(clause, source.read_text(encoding="utf-8")), clause.quote


@pytest.mark.parametrize(("text", "reason"), [
    ("- {id: TC-CORE-1, profile: core}", "is not a case id"),
    ("- {id: TC-AUDIO-001, profile: core, title: A title, purpose: A purpose, "
     "preconditions: [p], steps: [s], checks: [c], clause: {source: x, quote: 0123456789}}",
     "whose ids start with TC-CORE-"),
    ("{id: TC-CORE-001}", "must be a list"),
])
def test_a_broken_catalogue_is_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(CatalogueError, match=reason):
        parse_catalogue(text)


def test_docs_conformance_md_is_generated_from_the_catalogue() -> None:
    published = (ROOT / "docs" / "conformance.md").read_text(encoding="utf-8")
    assert published == markdown(), "run `make spec` to regenerate docs/conformance.md"


def test_the_cli_prints_the_same_markdown() -> None:
    out = subprocess.run([TTCS, "certify", "cases", "--markdown"], capture_output=True,
                         text=True, check=True).stdout
    assert out == markdown()
    assert all(f"### {c.id} — {c.title}" in out for c in catalogue())
