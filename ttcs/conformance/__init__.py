"""The conformance kit: the province certifies that a vendor's plugin honours the hub's contract.

- :mod:`.cases` — the cases (``cases.yaml``: ids, profiles, steps, checks, the clause proved);
- :mod:`.declaration` — the vendor's ``conformance.yaml`` and the cases it selects;
- :mod:`.runner` — ``ttcs certify``: a real hub, the plugin's simulator (or a real device with
  a person), every selected case, and the report;
- :mod:`.report` — the report, its level, its Ed25519 signature and ``ttcs certify verify``;
- :mod:`.html` / :mod:`.docs` — the readable page and ``docs/conformance.md``;
- :mod:`.scaffold` — ``ttcs plugin new``.
"""

from .report import KIT_NAME, KIT_VERSION

__all__ = ["KIT_NAME", "KIT_VERSION"]
