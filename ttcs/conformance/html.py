"""The report as one HTML page a non-programmer can read: the verdict in plain words first,
then what went wrong, then every case in detail. Self-contained (inline style, no scripts, no
external assets), so it can be mailed or archived as it is."""

from __future__ import annotations

from html import escape
from typing import Any

from .cases import by_id
from .outcome import CaseResult, Status
from .report import Report

PROFILE_NAMES = {"core": "Core (basic contract)", "audio": "Loudspeakers (audio)",
                 "display": "Boards (display)", "fm": "FM stations", "wired": "Wired stations",
                 "security": "Security", "resilience": "Resilience"}
STATUS_WORDS = {Status.PASSED: "passed", Status.FAILED: "FAILED", Status.NOT_RUN: "not run",
                Status.EXEMPT: "exempt", Status.UNVERIFIED: "not confirmed"}
VERDICT_WORDS = {"passed": "passed", "failed": "FAILED", "incomplete": "incomplete (some "
                 "cases not run)", "no cases": "nothing to check"}

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:62rem;
margin:2rem auto;padding:0 1rem;color:#1d2330;line-height:1.5}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{margin-top:2.2rem;border-bottom:1px solid #ccd}
.verdict{padding:1rem 1.4rem;border-radius:.6rem;margin:1.2rem 0;font-size:1.1rem}
.good{background:#e6f5ea;border:2px solid #2d8a4a} .bad{background:#fdecea;border:2px solid #b3261e}
.meh{background:#fff6e0;border:2px solid #b07d00}
table{border-collapse:collapse;width:100%;margin:.6rem 0} td,th{border:1px solid #ccd;
padding:.35rem .6rem;text-align:left;vertical-align:top} th{background:#f1f3f8}
.passed{color:#2d8a4a;font-weight:600} .failed{color:#b3261e;font-weight:700}
.not_run,.unverified{color:#8a6100;font-weight:600} .exempt{color:#555;font-weight:600}
details{border:1px solid #ccd;border-radius:.4rem;margin:.5rem 0;padding:.3rem .8rem}
summary{cursor:pointer;font-weight:600} blockquote{margin:.4rem 0;padding:.2rem .8rem;
border-left:4px solid #99a;color:#444} pre{background:#f6f7fa;padding:.6rem;overflow-x:auto;
font-size:.8rem;white-space:pre-wrap;word-break:break-all} .small{font-size:.85rem;color:#555}
"""


def _status(status: Status) -> str:
    return f'<span class="{status.value}">{STATUS_WORDS[status]}</span>'


def _plain_summary(report: Report) -> str:
    counts = report.summary
    failed, not_run = counts.get("failed", 0), counts.get("not_run", 0)
    total = counts.get("total", 0)
    parts = [f"{counts.get('passed', 0)} of {total} cases passed"]
    if failed:
        parts.append(f"{failed} failed")
    if not_run:
        parts.append(f"{not_run} could not be run here")
    if counts.get("exempt"):
        parts.append(f"{counts['exempt']} did not apply (exempt, with the vendor's reason)")
    return ", ".join(parts) + "."


def render(report: Report, signature: dict[str, Any] | None = None) -> str:
    plugin, level = report.plugin, report.level
    tone = "good" if level.rank == 4 else ("bad" if level.rank == 0 else "meh")
    if report.summary.get("failed"):
        tone = "bad" if level.rank < 2 else "meh"
    device = report.device
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>Certification: {escape(plugin.name)} {escape(plugin.version)}</title>",
           f"<style>{STYLE}</style></head><body>",
           f"<h1>Certification report: {escape(plugin.name)}</h1>",
           f'<p class="small">Plugin <b>{escape(plugin.id)}</b> version '
           f"{escape(plugin.version)} by {escape(plugin.vendor)} · tested "
           f"{escape(report.started_at[:19].replace('T', ' '))} UTC · "
           f"{escape(_target_words(report))}</p>",
           f'<div class="verdict {tone}"><b>Result: {escape(level.summary)}</b><br>'
           f"{escape(_plain_summary(report))}</div>"]
    if report.notes:
        out.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in report.notes) + "</ul>")
    out += ["<h2>By area</h2><table><tr><th>area</th><th>result</th></tr>"]
    out += [f"<tr><td>{escape(PROFILE_NAMES.get(p, p))}</td><td>"
            f"{escape(VERDICT_WORDS.get(v, v))}</td></tr>" for p, v in report.profiles.items()]
    out.append("</table>")
    problems = [c for c in report.cases if c.status is Status.FAILED]
    if problems:
        out.append("<h2>What went wrong</h2><ul>")
        out += [f"<li><b>{escape(c.id)} — {escape(c.title)}</b>: {escape(c.reason or '')}</li>"
                for c in problems]
        out.append("</ul>")
    skipped = [c for c in report.cases if c.status in (Status.NOT_RUN, Status.EXEMPT)]
    if skipped:
        out.append("<h2>Not run or exempt</h2><ul>")
        out += [f"<li>{escape(c.id)} — {escape(c.title)}: {_status(c.status)}; "
                f"{escape(c.reason or '')}</li>" for c in skipped]
        out.append("</ul>")
    out.append("<h2>The device</h2>")
    if device is not None:
        out.append(f"<p>{escape(device.vendor)} {escape(device.model)}, serial "
                   f"<b>{escape(device.serial)}</b>, kind {escape(device.kind)}, firmware "
                   f"{escape(device.firmware)}"
                   + (f" (upgraded during the test to {escape(device.firmware_after)})"
                      if device.firmware_after else "") + ".</p>")
    else:
        out.append("<p>No device could be registered.</p>")
    out.append("<h2>Every case</h2>")
    out += [_case(c) for c in report.cases]
    out.append(_footer(report, signature))
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _target_words(report: Report) -> str:
    target = report.target
    if target.get("mode") == "simulator":
        return f"against the simulator '{target.get('simulator')}'"
    return "against a real device" + (" with a person at it" if target.get("interactive")
                                      else " (not interactive)")


def _case(result: CaseResult) -> str:
    case = by_id().get(result.id)
    head = (f"<details><summary>{escape(result.id)} — {escape(result.title)}: "
            f"{_status(result.status)}</summary>")
    body = []
    if case is not None:
        body.append(f"<p>{escape(case.purpose)}</p>")
        body.append("<p><b>Steps</b></p><ol>" + "".join(f"<li>{escape(s)}</li>"
                                                        for s in case.steps) + "</ol>")
        body.append(f"<p><b>The rule it proves</b> ({escape(case.clause.source)}):</p>"
                    f"<blockquote>{escape(case.clause.quote)}</blockquote>")
    if result.reason:
        body.append(f"<p><b>Why:</b> {escape(result.reason)}</p>")
    if result.checks:
        body.append("<table><tr><th>check</th><th>result</th><th>detail</th></tr>")
        body += [f"<tr><td>{escape(c.check)}</td><td>{_status(c.status)}"
                 f"{' (confirmed by a person)' if c.by == 'person' else ''}</td>"
                 f"<td>{escape(c.detail or '')}</td></tr>" for c in result.checks]
        body.append("</table>")
    body.append(f'<p class="small">took {result.seconds:.2f} s'
                + (" · mandatory" if result.mandatory else "") + "</p>")
    if result.log:
        more = (f"\n… {result.log_lines_dropped} more lines" if result.log_lines_dropped
                else "")
        body.append("<details><summary>log</summary><pre>"
                    + escape("\n".join(result.log) + more) + "</pre></details>")
    return head + "".join(body) + "</details>"


def _footer(report: Report, signature: dict[str, Any] | None) -> str:
    h = report.plugin.hash
    lines = [f"Kit {escape(report.kit.get('name', ''))} {escape(report.kit.get('version', ''))}"
             f" on TTCS Hub {escape(report.kit.get('hub_version', ''))} (SDK "
             f"{escape(report.kit.get('sdk', ''))}).",
             f"Code certified: {escape(h.source)}, {h.algorithm} {escape(h.value)} over "
             f"{h.files} file(s) ({escape(h.basis)}).",
             f"Run took {report.seconds:.1f} s; event loop lag: "
             f"{escape(str(report.figures.get('loop_lag_seconds', {})))}."]
    if signature:
        lines.append(f"Signed by <b>{escape(str(signature.get('signer')))}</b> with Ed25519 key "
                     f"<code>{escape(str(signature.get('kid')))}</code> at "
                     f"{escape(str(signature.get('signed_at')))}. Anyone can check the signed "
                     "JSON report with <code>ttcs certify verify REPORT.json</code>; this page "
                     "is a reading aid, the JSON file is the certificate.")
    return '<h2>About this report</h2><p class="small">' + "<br>".join(lines) + "</p>"


__all__ = ["render"]
