"""``ttcs certify`` (run, ``verify``, ``cases``) and ``ttcs plugin new`` (the scaffold).

Exit codes of ``ttcs certify``: 0 when no case failed, 4 when some failed (the report is still
written and signed), 1 on an error that stopped the run.
"""

from __future__ import annotations

import argparse
import getpass
import json
import socket
import sys
from pathlib import Path
from typing import Any

from ..schemas import DeviceKind

EXIT_CASES_FAILED = 4


def _certifier() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = "certifier"
    return f"{user}@{socket.gethostname()}"


async def cmd_certify(args: argparse.Namespace, settings: Any) -> int:
    from ..cli import CliError
    from .cases import Profile
    from .html import render
    from .outcome import CaseResult
    from .report import default_key_path, load_or_create_key, sign_report
    from .runner import RunRequest, certify
    from .targets import ConsolePerson

    if not args.plugin or not args.report:
        raise CliError("give --plugin ID and --report FILE (or: ttcs certify verify FILE, "
                       "ttcs certify cases)")
    if args.simulator and args.device_config:
        raise CliError("give --simulator or --device-config, not both")
    try:
        profiles = [Profile(p) for p in args.profile or []] or None
    except ValueError as exc:
        raise CliError(f"{exc}; profiles: {', '.join(p.value for p in Profile)}") from exc
    interactive = args.interactive if args.interactive is not None else (
        bool(args.device_config) and sys.stdin.isatty())
    key_path = Path(args.key) if args.key else default_key_path()
    private, public, created = load_or_create_key(key_path)
    if created:
        print(f"created certifier key {key_path} (mode 0600)", file=sys.stderr)

    def progress(result: CaseResult) -> None:
        if not args.json:
            print(f"{result.id:<15} {result.status.value:<8} {result.seconds:6.2f} s  "
                  f"{result.title}" + (f"\n{'':<15} {result.reason}" if result.reason else ""),
                  flush=True)

    report = await certify(RunRequest(
        plugin=args.plugin, simulator=args.simulator,
        device_file=Path(args.device_config) if args.device_config else None,
        profiles=profiles, person=ConsolePerson() if interactive else None,
        broker=args.broker, wheel=Path(args.wheel) if args.wheel else None,
        declaration=Path(args.declaration) if args.declaration else None,
        probe_timeout=args.timeout, command_timeout=args.timeout, progress=progress))
    text = sign_report(report, private, public, args.certifier or _certifier())
    out = Path(args.report)
    signature = json.loads(text)["signature"]
    _write(out, text)
    if args.html:
        _write(Path(args.html), render(report, signature))
    summary = {"plugin": report.plugin.id, "level": report.level.name,
               "rank": report.level.rank, "summary": report.summary, "report": str(out),
               "html": args.html, "key_id": signature["kid"], "signer": signature["signer"]}
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        print(f"\n{report.level.summary}\n{report.summary}\nreport {out} signed by "
              f"{signature['signer']} (key {signature['kid']})")
    return EXIT_CASES_FAILED if report.summary.get("failed") else 0


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def cmd_verify(args: argparse.Namespace, settings: Any) -> int:
    from ..cli import CliError
    from .report import ReportInvalid, verify

    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc}") from exc
    try:
        verified = verify(data, args.expect_key)
    except ReportInvalid as exc:
        raise CliError(f"{args.file} does NOT verify: {exc}") from exc
    if args.json:
        print(verified.model_dump_json(indent=2))
    else:
        print(f"{args.file} verifies: signed by {verified.signer} with key {verified.kid} at "
              f"{verified.signed_at}\nplugin {verified.plugin} {verified.plugin_version}: "
              f"{verified.level.summary}")
    return 0


def cmd_cases(args: argparse.Namespace, settings: Any) -> int:
    from .cases import catalogue
    from .docs import markdown

    if args.markdown:
        sys.stdout.write(markdown())
    elif args.json:
        print(json.dumps([c.model_dump(mode="json") for c in catalogue()], ensure_ascii=False,
                         indent=2))
    else:
        for case in catalogue():
            print(f"{case.id:<15} {case.profile.value:<10} "
                  f"{'mandatory' if case.mandatory else 'optional ':<9} {case.title}")
    return 0


def cmd_plugin_new(args: argparse.Namespace, settings: Any) -> int:
    from ..cli import CliError
    from .scaffold import PROTOCOLS, ScaffoldError, generate

    try:
        root = generate(args.name, DeviceKind(args.kind), args.protocol, Path(args.dir))
    except ScaffoldError as exc:
        raise CliError(str(exc)) from exc
    print(f"created {root} ({args.protocol}; protocols: {', '.join(PROTOCOLS)})\nnext:\n"
          f"  pip install -e {root}\n  ttcs certify --plugin {root.name.replace('-', '_')} "
          "--profile core --report report.json --html report.html")
    return 0


def register(sub: Any) -> None:
    """Add ``certify`` and ``plugin`` to the ``ttcs`` command line."""
    from ..cli import add, group

    p = add(sub, "certify", cmd_certify, "certify a plugin with the conformance kit "
            "(or: verify FILE, cases)")
    p.add_argument("--plugin", help="plugin id (ttcs plugins list)")
    p.add_argument("--simulator", help="simulator to certify against (default: the one the "
                   "plugin's conformance.yaml names)")
    p.add_argument("--device-config", metavar="FILE", help="a real device instead (YAML: "
                   "plugin, kind, config, serial; or devices: [...])")
    p.add_argument("--profile", action="append", metavar="PROFILE",
                   help="only these profiles (repeatable; core always runs)")
    p.add_argument("--report", metavar="FILE", help="signed JSON report to write")
    p.add_argument("--html", metavar="FILE", help="readable HTML page to write")
    p.add_argument("--key", metavar="FILE", help="certifier's Ed25519 key (PEM; created 0600 "
                   "if absent; default $TTCS_CERTIFIER_KEY or ~/.config/ttcs/)")
    p.add_argument("--certifier", help="who signs (default: user@host)")
    p.add_argument("--wheel", metavar="FILE", help="hash this wheel as the certified code")
    p.add_argument("--declaration", metavar="FILE", help="use this conformance.yaml")
    p.add_argument("--broker", metavar="URL", help="MQTT broker to use (default: a private "
                   "Mosquitto, or the embedded broker)")
    p.add_argument("--timeout", type=float, default=3.0, help="probe and command timeout of "
                   "the hub under test (seconds)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--interactive", dest="interactive", action="store_true", default=None,
                      help="ask a person at the real device to do the fault steps")
    mode.add_argument("--non-interactive", dest="interactive", action="store_false",
                      help="mark steps that need a person as not run")
    actions = p.add_subparsers(dest="certify_action", metavar="ACTION")
    v = add(actions, "verify", cmd_verify, "check a report's signature and integrity")
    v.add_argument("file")
    v.add_argument("--expect-key", metavar="KID", help="fail unless signed with this key id")
    c = add(actions, "cases", cmd_cases, "list the conformance cases")
    c.add_argument("--markdown", action="store_true", help="as docs/conformance.md")

    plugin = group(sub, "plugin", "write a vendor plugin")
    n = add(plugin, "new", cmd_plugin_new, "generate a standalone plugin package", json_flag=False)
    n.add_argument("name", help="package name, e.g. acme-speakers")
    n.add_argument("--kind", required=True, choices=[k.value for k in DeviceKind])
    n.add_argument("--protocol", default="http", choices=["mqtt", "http", "modbus", "snmp"])
    n.add_argument("--dir", default=".", help="directory to create the package in")


__all__ = ["EXIT_CASES_FAILED", "register"]
